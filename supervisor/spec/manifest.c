/* manifest.c — manifest schema v1: JSON tree -> validated struct manifest (pure).
 *
 * Each object of the schema is read by one function that names its keys in a table;
 * take_fields() matches members against the table and reports unknown keys with a
 * "did you mean". Typed getters (get_string, get_size, get_path, ...) check one value
 * and report what was wrong and what is accepted, at the value's line:column and under
 * the key path kept in the context. Parsing never stops at the first problem: every
 * diagnostic is collected, and the struct is handed out only when there is none.
 * Cross-field rules are checked at the end, once every default is known. */
#include "spec/manifest.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>

#include "spec/backup_sftp.h"
#include "spec/caps.h"
#include "spec/manifest_edit.h"
#include "lib/json.h"
#include "lib/strutil.h"
#include "lib/units.h"

#define MANIFEST_VERSION 1
#define MAX_DIAGS 100    /* printed */
#define MAX_COLLECT 1000 /* collected before sorting */

/* ---- diagnostics ---- */

void diag_list_clear(struct diag_list *l)
{
        for (size_t i = 0; i < l->n; i++) {
                free(l->items[i].path);
                free(l->items[i].msg);
        }
        free(l->items);
        *l = (struct diag_list){0};
}

static void scrub(char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        *s = '?';
}

void diag_add(struct diag_list *l, uint32_t line, uint32_t col, const char *path, const char *fmt,
              ...)
{
        if (l->n >= MAX_COLLECT) {
                l->dropped++;
                return;
        }
        if (l->n == l->cap) {
                size_t ncap = l->cap ? l->cap * 2 : 8;
                struct diag *n = reallocarray(l->items, ncap, sizeof(*n));
                if (!n) {
                        l->oom = true;
                        return;
                }
                l->items = n;
                l->cap = ncap;
        }
        struct diag *d = &l->items[l->n];
        *d = (struct diag){.line = line, .col = col};
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&d->msg, fmt, ap) < 0)
                d->msg = NULL;
        va_end(ap);
        d->path = strdup(path ? path : "");
        if (!d->path || !d->msg) {
                free(d->path);
                free(d->msg);
                l->oom = true;
                return;
        }
        scrub(d->msg);
        scrub(d->path);
        l->n++;
}

static int diag_cmp(const void *a, const void *b)
{
        const struct diag *x = a, *y = b;
        if (x->line != y->line)
                return x->line < y->line ? -1 : 1;
        if (x->col != y->col)
                return x->col < y->col ? -1 : 1;
        return 0;
}

/* Orders diagnostics by position so the operator reads them top to bottom, then keeps
 * the first MAX_DIAGS. Insertion order breaks ties (insertion sort: at most
 * MAX_COLLECT items). */
static void diag_sort(struct diag_list *l)
{
        for (size_t i = 1; i < l->n; i++) {
                struct diag d = l->items[i];
                size_t j = i;
                for (; j > 0 && diag_cmp(&l->items[j - 1], &d) > 0; j--)
                        l->items[j] = l->items[j - 1];
                l->items[j] = d;
        }
        while (l->n > MAX_DIAGS) {
                l->n--;
                free(l->items[l->n].path);
                free(l->items[l->n].msg);
                l->dropped++;
        }
}

void diag_print(const struct diag_list *l, const char *file, FILE *out)
{
        for (size_t i = 0; i < l->n; i++) {
                const struct diag *d = &l->items[i];
                if (d->line)
                        fprintf(out, "%s:%u:%u: ", file, d->line, d->col);
                else
                        fprintf(out, "%s: ", file);
                if (d->path[0])
                        fprintf(out, "%s: ", d->path);
                fprintf(out, "%s\n", d->msg);
        }
        if (l->dropped)
                fprintf(out, "%s: %zu more error%s not shown\n", file, l->dropped,
                        l->dropped == 1 ? "" : "s");
        if (l->oom)
                fprintf(out, "%s: out of memory while collecting errors\n", file);
}

/* ---- parse context and key paths ---- */

struct ctx {
        struct diag_list *diags;
        struct manifest *m;
        char path[512];
        size_t path_len;
        struct json_pos root_pos;
        /* positions of values that cross-field checks point back to */
        struct json_pos pos_memory_max, pos_memory_high;
        bool memory_max_set;
};

static size_t path_push(struct ctx *c, const char *key)
{
        size_t saved = c->path_len;
        int n = snprintf(c->path + c->path_len, sizeof(c->path) - c->path_len, "%s%s",
                         c->path_len ? "." : "", key);
        if (n > 0)
                c->path_len = strnlen(c->path, sizeof(c->path) - 1);
        return saved;
}

static size_t path_push_index(struct ctx *c, size_t i)
{
        size_t saved = c->path_len;
        snprintf(c->path + c->path_len, sizeof(c->path) - c->path_len, "[%zu]", i);
        c->path_len = strnlen(c->path, sizeof(c->path) - 1);
        return saved;
}

static void path_pop(struct ctx *c, size_t saved)
{
        c->path_len = saved;
        c->path[saved] = '\0';
}

static void err_pos(struct ctx *c, struct json_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err_pos(struct ctx *c, struct json_pos pos, const char *fmt, ...)
{
        char *msg = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (!msg) {
                c->diags->oom = true;
                return;
        }
        diag_add(c->diags, pos.line, pos.col, c->path, "%s", msg);
        free(msg);
}

#define err_at(c, v, ...) err_pos((c), (v)->pos, __VA_ARGS__)

/* Runs `stmt` with `key` appended to the key path. */
#define WITH_KEY(c, key, stmt)                                                                     \
        do {                                                                                       \
                size_t _saved = path_push((c), (key));                                             \
                stmt;                                                                              \
                path_pop((c), _saved);                                                             \
        } while (0)

/* A string shown inside a message: bounded and with control characters replaced, so a
 * hostile manifest cannot forge lines in the operator's terminal or log. */
static const char *shown(const char *s, char *buf, size_t len)
{
        size_t o = 0;
        for (size_t i = 0; s[i] && o + 4 < len; i++) {
                unsigned char ch = (unsigned char)s[i];
                buf[o++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
                if (i == 60 && s[i + 1]) {
                        buf[o++] = '.';
                        buf[o++] = '.';
                        buf[o++] = '.';
                        break;
                }
        }
        buf[o] = '\0';
        return buf;
}

#define SHOWN(s) shown((s), (char[80]){0}, 80)

/* ---- object walking ---- */

/* Matches obj's members against keys[0..n): vals[i] receives the member named keys[i]
 * (or NULL). Unknown keys are reported with a suggestion. Returns false (and reports)
 * when obj is not an object. */
static bool take_fields(struct ctx *c, const struct json_value *obj, const char *const *keys,
                        size_t n, const struct json_value **vals)
{
        for (size_t i = 0; i < n; i++)
                vals[i] = NULL;
        if (obj->type != JSON_OBJECT) {
                err_at(c, obj, "expected an object, got %s", json_type_name(obj->type));
                return false;
        }
        for (size_t m = 0; m < obj->u.object.n; m++) {
                const struct json_member *mem = &obj->u.object.items[m];
                size_t i;
                for (i = 0; i < n; i++)
                        if (strcmp(mem->key, keys[i]) == 0)
                                break;
                if (i < n) {
                        vals[i] = mem->value;
                        continue;
                }
                const char *near = suggest_nearest(mem->key, keys, n);
                size_t saved = path_push(c, SHOWN(mem->key));
                if (near) {
                        err_pos(c, mem->pos, "unknown key; did you mean \"%s\"?", near);
                } else {
                        char list[512] = "";
                        size_t off = 0;
                        for (i = 0; i < n && off < sizeof(list); i++)
                                off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s",
                                                        i ? ", " : "", keys[i]);
                        err_pos(c, mem->pos, "unknown key; expected one of: %s", list);
                }
                path_pop(c, saved);
        }
        return true;
}

static void err_missing(struct ctx *c, const struct json_value *obj, const char *key,
                        const char *expected)
{
        WITH_KEY(c, key, err_at(c, obj, "required key is missing; expected %s", expected));
}

/* ---- typed getters: each reports its own errors and returns false on them ---- */

static bool want_type(struct ctx *c, const struct json_value *v, enum json_type t,
                      const char *expected)
{
        if (v->type == t)
                return true;
        err_at(c, v, "expected %s, got %s", expected, json_type_name(v->type));
        return false;
}

static bool has_control_chars(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* The rule for a command's arguments and environment values: newline and tab are
 * ordinary there (an `sh -c` or `python3 -c` script), NUL cannot be (the JSON parser
 * refuses \u0000). The other C0 controls, DEL and C1 (U+0080..U+009F) are refused:
 * no command line needs them, and each drives a terminal or a log reader (a CR
 * rewrites the line it is on, ESC and CSI start terminal sequences, a backspace
 * erases what was shown). Where arguments are shown, they are escaped (explain is
 * JSON; events use key="value" with \xNN). Returns the offset of the first refused
 * byte, or -1. */
static ssize_t arg_bad_byte(const char *s)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if ((*p < 0x20 && *p != '\t' && *p != '\n') || *p == 0x7f)
                        return (const char *)p - s;
                if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
                        return (const char *)p - s;
        }
        return -1;
}

/* An argument or environment value: reports a refused control character, naming it. */
static bool check_arg(struct ctx *c, const struct json_value *v, const char *s)
{
        ssize_t at = arg_bad_byte(s);
        if (at < 0)
                return true;
        const unsigned char *p = (const unsigned char *)s + at;
        char shown[16];
        if (*p == '\r')
                snprintf(shown, sizeof(shown), "\\r");
        else if (*p == 0xc2)
                snprintf(shown, sizeof(shown), "\\u%04x", p[1]);
        else
                snprintf(shown, sizeof(shown), "\\u%04x", *p);
        err_at(c, v,
               "string contains the control character %s at byte %zd; only newline and tab "
               "are allowed here",
               shown, at);
        return false;
}

/* A string without control characters and at most max bytes long; *out is a copy. */
static bool get_text(struct ctx *c, const struct json_value *v, size_t max, char **out)
{
        if (!want_type(c, v, JSON_STRING, "a string"))
                return false;
        if (v->u.str.len > max) {
                err_at(c, v, "string is %zu bytes; the limit is %zu", v->u.str.len, max);
                return false;
        }
        if (has_control_chars(v->u.str.text)) {
                err_at(c, v, "string contains control characters");
                return false;
        }
        char *copy = strdup(v->u.str.text);
        if (!copy) {
                c->diags->oom = true;
                return false;
        }
        free(*out);
        *out = copy;
        return true;
}

static bool get_bool(struct ctx *c, const struct json_value *v, bool *out)
{
        if (!want_type(c, v, JSON_BOOL, "true or false"))
                return false;
        *out = v->u.boolean;
        return true;
}

static bool get_uint(struct ctx *c, const struct json_value *v, uint64_t min, uint64_t max,
                     uint64_t *out)
{
        int64_t n;
        if (v->type != JSON_NUMBER || !json_number_int64(v, &n) || n < 0 || (uint64_t)n < min ||
            (uint64_t)n > max) {
                if (v->type == JSON_NUMBER || v->type == JSON_STRING)
                        err_at(c, v,
                               "%s%s%s is not valid; expected a whole number from %llu to %llu",
                               v->type == JSON_STRING ? "\"" : "", SHOWN(v->u.str.text),
                               v->type == JSON_STRING ? "\"" : "", (unsigned long long)min,
                               (unsigned long long)max);
                else
                        err_at(c, v, "expected a whole number from %llu to %llu, got %s",
                               (unsigned long long)min, (unsigned long long)max,
                               json_type_name(v->type));
                return false;
        }
        *out = (uint64_t)n;
        return true;
}

static bool get_u32(struct ctx *c, const struct json_value *v, uint32_t min, uint32_t max,
                    uint32_t *out)
{
        uint64_t n;
        if (!get_uint(c, v, min, max, &n))
                return false;
        *out = (uint32_t)n;
        return true;
}

static bool is_unlimited_word(const struct json_value *v)
{
        return v->type == JSON_STRING &&
               (strcmp(v->u.str.text, "max") == 0 || strcmp(v->u.str.text, "unlimited") == 0);
}

/* A size: a string with a unit, or a JSON integer of bytes; "max" when allowed. */
static bool get_size(struct ctx *c, const struct json_value *v, bool allow_max, uint64_t min,
                     uint64_t max, uint64_t *out)
{
        char why[UNITS_WHY_MAX], a[UNITS_FMT_MAX], b[UNITS_FMT_MAX];
        uint64_t bytes;
        if (allow_max && is_unlimited_word(v)) {
                *out = MANIFEST_UNLIMITED;
                return true;
        }
        if (v->type == JSON_NUMBER) {
                int64_t n;
                if (!json_number_int64(v, &n) || n < 0) {
                        err_at(c, v,
                               "%s is not a size; expected a size such as \"512M\" or a whole "
                               "number of bytes",
                               SHOWN(v->u.str.text));
                        return false;
                }
                bytes = (uint64_t)n;
        } else if (v->type == JSON_STRING) {
                int r = parse_size(v->u.str.text, &bytes, why, sizeof(why));
                if (r < 0) {
                        err_at(c, v, "%s%s", why, allow_max && r == -EINVAL ? ", or \"max\"" : "");
                        return false;
                }
        } else {
                err_at(c, v, "expected a size such as \"512M\"%s, got %s",
                       allow_max ? " or \"max\"" : "", json_type_name(v->type));
                return false;
        }
        if (bytes < min || bytes > max) {
                const char *q = v->type == JSON_STRING ? "\"" : "";
                err_at(c, v, "%s%s%s (%llu bytes) is out of range; expected from %s to %s", q,
                       SHOWN(v->u.str.text), q, (unsigned long long)bytes, format_size(min, a),
                       format_size(max, b));
                return false;
        }
        *out = bytes;
        return true;
}

static bool get_rate(struct ctx *c, const struct json_value *v, uint64_t *out)
{
        char why[UNITS_WHY_MAX];
        uint64_t bits;
        if (!want_type(c, v, JSON_STRING, "a rate such as \"20mbit\""))
                return false;
        if (parse_rate(v->u.str.text, &bits, why, sizeof(why)) < 0) {
                err_at(c, v, "%s", why);
                return false;
        }
        if (bits < 8000 || bits > 100ULL * 1000 * 1000 * 1000) {
                err_at(c, v, "\"%s\" is out of range; expected from 8kbit to 100gbit",
                       SHOWN(v->u.str.text));
                return false;
        }
        *out = bits;
        return true;
}

static bool get_duration(struct ctx *c, const struct json_value *v, uint64_t min_ms,
                         uint64_t max_ms, uint64_t *out)
{
        char why[UNITS_WHY_MAX], a[UNITS_FMT_MAX], b[UNITS_FMT_MAX];
        uint64_t ms;
        if (v->type == JSON_NUMBER) {
                err_at(c, v, "a duration needs a unit; write \"%ss\" for %s seconds",
                       SHOWN(v->u.str.text), SHOWN(v->u.str.text));
                return false;
        }
        if (!want_type(c, v, JSON_STRING, "a duration such as \"30s\""))
                return false;
        if (parse_duration(v->u.str.text, &ms, why, sizeof(why)) < 0) {
                err_at(c, v, "%s", why);
                return false;
        }
        if (ms < min_ms || ms > max_ms) {
                err_at(c, v, "\"%s\" is out of range; expected from %s to %s", SHOWN(v->u.str.text),
                       format_duration(min_ms, a), format_duration(max_ms, b));
                return false;
        }
        *out = ms;
        return true;
}

/* One of names[0..n) (exact match); *out is the index. */
static bool get_enum(struct ctx *c, const struct json_value *v, const char *const *names, size_t n,
                     int *out)
{
        char list[256] = "";
        size_t off = 0;
        for (size_t i = 0; i < n && off < sizeof(list); i++)
                off += (size_t)snprintf(list + off, sizeof(list) - off, "%s\"%s\"",
                                        i == 0 ? "" : (i + 1 == n ? " or " : ", "), names[i]);
        if (v->type != JSON_STRING) {
                err_at(c, v, "expected %s, got %s", list, json_type_name(v->type));
                return false;
        }
        for (size_t i = 0; i < n; i++) {
                if (strcmp(v->u.str.text, names[i]) == 0) {
                        *out = (int)i;
                        return true;
                }
        }
        const char *near = suggest_nearest(v->u.str.text, names, n);
        if (near)
                err_at(c, v, "\"%s\" is not valid; did you mean \"%s\"?", SHOWN(v->u.str.text),
                       near);
        else
                err_at(c, v, "\"%s\" is not valid; expected %s", SHOWN(v->u.str.text), list);
        return false;
}

/* An absolute, normalised path: starts with '/', no empty, "." or ".." component, no
 * trailing '/', no control characters. Such paths are refused, not rewritten, so what
 * the operator reads is what tenantd uses. */
static bool check_path(struct ctx *c, const struct json_value *v, const char *s)
{
        if (s[0] != '/') {
                err_at(c, v, "\"%s\" is not an absolute path; expected a path starting with \"/\"",
                       SHOWN(s));
                return false;
        }
        if (strcmp(s, "/") == 0)
                return true;
        for (const char *p = s + 1;;) {
                const char *slash = strchr(p, '/');
                size_t n = slash ? (size_t)(slash - p) : strlen(p);
                if (n == 0) {
                        err_at(c, v, "\"%s\" has an empty component (\"//\" or a trailing \"/\")",
                               SHOWN(s));
                        return false;
                }
                if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
                        err_at(c, v,
                               "\"%s\" contains a \"%.*s\" component; write the path without it",
                               SHOWN(s), (int)n, p);
                        return false;
                }
                if (n > 255) {
                        err_at(c, v, "\"%s\" has a component longer than 255 bytes", SHOWN(s));
                        return false;
                }
                if (!slash)
                        return true;
                p = slash + 1;
        }
}

static bool get_path(struct ctx *c, const struct json_value *v, char **out)
{
        _cleanup_free_ char *s = NULL;
        if (!get_text(c, v, 4095, &s))
                return false;
        if (!check_path(c, v, s))
                return false;
        free(*out);
        *out = TAKE_PTR(s);
        return true;
}

/* An array of at most max strings (each without control characters; with `argv`, the
 * strings after the first, a program's arguments, may hold newline and tab);
 * NULL-terminated copy in *out. */
static bool get_strv(struct ctx *c, const struct json_value *v, size_t min, size_t max, bool argv,
                     char ***out, size_t *out_n)
{
        if (!want_type(c, v, JSON_ARRAY, "an array of strings"))
                return false;
        size_t n = v->u.array.n;
        if (n < min || n > max) {
                err_at(c, v, "array has %zu elements; expected %zu to %zu", n, min, max);
                return false;
        }
        _cleanup_strv_free_ char **strv = calloc(n + 1, sizeof(*strv));
        if (!strv) {
                c->diags->oom = true;
                return false;
        }
        bool good = true;
        for (size_t i = 0; i < n; i++) {
                size_t saved = path_push_index(c, i);
                const struct json_value *item = v->u.array.items[i];
                if (argv && i > 0) {
                        if (!want_type(c, item, JSON_STRING, "a string") ||
                            !check_arg(c, item, item->u.str.text)) {
                                good = false;
                        } else if (item->u.str.len > MANIFEST_MAX_STRING) {
                                err_at(c, item, "string is %zu bytes; the limit is %d",
                                       item->u.str.len, MANIFEST_MAX_STRING);
                                good = false;
                        } else if (!(strv[i] = strdup(item->u.str.text))) {
                                c->diags->oom = true;
                                good = false;
                        }
                } else if (!get_text(c, item, MANIFEST_MAX_STRING, &strv[i])) {
                        good = false;
                }
                path_pop(c, saved);
        }
        if (!good) {
                for (size_t i = 0; i < n; i++) {
                        free(strv[i]);
                        strv[i] = NULL;
                }
                return false;
        }
        strv_free(*out);
        *out = TAKE_PTR(strv);
        *out_n = n;
        return true;
}

/* "10.0.0.0/8", "2001:db8::/32", or a single address (a /32 or /128). */
static bool get_cidr(struct ctx *c, const struct json_value *v, struct cidr *out)
{
        if (!want_type(c, v, JSON_STRING, "an address or network such as \"192.0.2.0/24\""))
                return false;
        const char *s = v->u.str.text;
        char addr[64];
        const char *slash = strchr(s, '/');
        size_t alen = slash ? (size_t)(slash - s) : strlen(s);
        struct cidr r = {0};
        if (alen == 0 || alen >= sizeof(addr))
                goto bad;
        memcpy(addr, s, alen);
        addr[alen] = '\0';
        if (inet_pton(AF_INET, addr, r.addr) == 1)
                r.family = AF_INET;
        else if (inet_pton(AF_INET6, addr, r.addr) == 1)
                r.family = AF_INET6;
        else
                goto bad;
        unsigned maxp = r.family == AF_INET ? 32 : 128;
        r.prefix = (uint8_t)maxp;
        if (slash) {
                const char *p = slash + 1;
                unsigned prefix = 0;
                if (!*p || strlen(p) > 3)
                        goto bad;
                for (; *p; p++) {
                        if (*p < '0' || *p > '9')
                                goto bad;
                        prefix = prefix * 10 + (unsigned)(*p - '0');
                }
                if (prefix > maxp)
                        goto bad;
                r.prefix = (uint8_t)prefix;
        }
        for (unsigned bit = r.prefix; bit < maxp; bit++) {
                if (r.addr[bit / 8] & (0x80 >> (bit % 8))) {
                        struct cidr net = r;
                        for (unsigned b2 = r.prefix; b2 < maxp; b2++)
                                net.addr[b2 / 8] &= (uint8_t) ~(0x80 >> (b2 % 8));
                        char txt[INET6_ADDRSTRLEN];
                        inet_ntop(net.family, net.addr, txt, sizeof(txt));
                        err_at(c, v, "\"%s\" has host bits set; did you mean \"%s/%u\"?", SHOWN(s),
                               txt, r.prefix);
                        return false;
                }
        }
        *out = r;
        return true;
bad:
        err_at(c, v,
               "\"%s\" is not an address or network; expected e.g. \"192.0.2.0/24\", "
               "\"203.0.113.7\" or \"2001:db8::/32\"",
               SHOWN(s));
        return false;
}

/* The items of an array of at most `max` (`noun` names them in the message), as a
 * zeroed allocation of `size` bytes each, and their number in *ret_n: NULL after
 * reporting a wrong type or too many items (or out of memory). */
static void *array_items(struct ctx *c, const struct json_value *v, const char *expect,
                         const char *noun, size_t max, size_t size, size_t *ret_n)
{
        if (!want_type(c, v, JSON_ARRAY, expect))
                return NULL;
        size_t n = v->u.array.n;
        if (n > max) {
                err_at(c, v, "%zu %s; the limit is %zu", n, noun, max);
                return NULL;
        }
        void *items = calloc(n ? n : 1, size);
        if (!items) {
                c->diags->oom = true;
                return NULL;
        }
        *ret_n = n;
        return items;
}

static bool get_cidrs(struct ctx *c, const struct json_value *v, struct cidr **out, size_t *out_n)
{
        size_t n = 0;
        struct cidr *list = array_items(c, v, "an array of networks such as [\"192.0.2.0/24\"]",
                                        "networks", MANIFEST_MAX_CIDRS, sizeof(*list), &n);
        if (!list)
                return false;
        bool good = true;
        for (size_t i = 0; i < n; i++) {
                size_t saved = path_push_index(c, i);
                good &= get_cidr(c, v->u.array.items[i], &list[i]);
                path_pop(c, saved);
        }
        if (!good) {
                free(list);
                return false;
        }
        free(*out);
        *out = list;
        *out_n = n;
        return true;
}

static bool get_port(struct ctx *c, const struct json_value *v, uint16_t *out)
{
        uint64_t n;
        if (!get_uint(c, v, 1, 65535, &n))
                return false;
        *out = (uint16_t)n;
        return true;
}

/* ---- sections ---- */

static const char *const isolation_names[] = {"sandbox", "microvm"};

const char *isolation_name(enum isolation i)
{
        return isolation_names[i];
}

/* "UID" or "UID:GID" as a string, or a bare integer UID. */
static void parse_user(struct ctx *c, const struct json_value *v)
{
        const char *accepted = "expected \"UID\" or \"UID:GID\" with numbers from 0 to 65535 "
                               "(user names cannot be looked up before the tenant's root exists)";
        if (v->type == JSON_NUMBER) {
                uint32_t uid;
                if (get_u32(c, v, 0, MANIFEST_UID_MAX, &uid))
                        c->m->uid = c->m->gid = uid;
                return;
        }
        if (!want_type(c, v, JSON_STRING, "a string such as \"1000:1000\""))
                return;
        const char *s = v->u.str.text;
        unsigned long ids[2];
        int n = 0;
        const char *p = s;
        while (n < 2) {
                if (*p < '0' || *p > '9')
                        break;
                unsigned long id = 0;
                size_t digits = 0;
                for (; *p >= '0' && *p <= '9'; p++, digits++)
                        id = digits < 6 ? id * 10 + (unsigned long)(*p - '0') : 999999;
                ids[n++] = id;
                if (*p != ':' || n == 2)
                        break;
                p++;
                if (*p < '0' || *p > '9') {
                        n = 0; /* "1000:" */
                        break;
                }
        }
        if (n == 0 || *p != '\0' || ids[0] > MANIFEST_UID_MAX ||
            (n == 2 && ids[1] > MANIFEST_UID_MAX)) {
                err_at(c, v, "\"%s\" is not valid; %s", SHOWN(s), accepted);
                return;
        }
        c->m->uid = (uint32_t)ids[0];
        c->m->gid = (uint32_t)ids[n == 2 ? 1 : 0];
}

static void parse_groups(struct ctx *c, const struct json_value *v)
{
        if (!want_type(c, v, JSON_ARRAY, "an array of group ids"))
                return;
        if (v->u.array.n > 32) {
                err_at(c, v, "array has %zu elements; the limit is 32", v->u.array.n);
                return;
        }
        uint32_t *g = calloc(v->u.array.n ? v->u.array.n : 1, sizeof(*g));
        if (!g) {
                c->diags->oom = true;
                return;
        }
        bool good = true;
        for (size_t i = 0; i < v->u.array.n; i++) {
                size_t saved = path_push_index(c, i);
                if (get_u32(c, v->u.array.items[i], 0, MANIFEST_UID_MAX, &g[i])) {
                        for (size_t j = 0; j < i; j++) {
                                if (g[j] == g[i]) {
                                        err_at(c, v->u.array.items[i], "group %u is listed twice",
                                               g[i]);
                                        good = false;
                                        break;
                                }
                        }
                } else {
                        good = false;
                }
                path_pop(c, saved);
        }
        if (!good) {
                free(g);
                return;
        }
        c->m->groups = g;
        c->m->groups_n = v->u.array.n;
}

static bool env_name_ok(const char *s)
{
        if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                      (*p >= '0' && *p <= '9') || *p == '_'))
                        return false;
        return strlen(s) <= 128;
}

static void parse_env(struct ctx *c, const struct json_value *v)
{
        if (!want_type(c, v, JSON_OBJECT, "an object of strings such as {\"TZ\": \"UTC\"}"))
                return;
        size_t n = v->u.object.n;
        if (n > MANIFEST_MAX_ENV) {
                err_at(c, v, "%zu variables; the limit is %d", n, MANIFEST_MAX_ENV);
                return;
        }
        struct env_var *env = calloc(n ? n : 1, sizeof(*env));
        if (!env) {
                c->diags->oom = true;
                return;
        }
        bool good = true;
        for (size_t i = 0; i < n; i++) {
                const struct json_member *mem = &v->u.object.items[i];
                size_t saved = path_push(c, SHOWN(mem->key));
                if (!env_name_ok(mem->key)) {
                        err_pos(c, mem->pos,
                                "not a valid variable name; expected letters, digits and \"_\", "
                                "not starting with a digit");
                        good = false;
                } else if (mem->value->type != JSON_STRING) {
                        err_at(c, mem->value, "expected a string, got %s (quote numbers: \"8080\")",
                               json_type_name(mem->value->type));
                        good = false;
                } else if (mem->value->u.str.len > MANIFEST_MAX_STRING) {
                        err_at(c, mem->value, "value is %zu bytes; the limit is %d",
                               mem->value->u.str.len, MANIFEST_MAX_STRING);
                        good = false;
                } else if (!check_arg(c, mem->value, mem->value->u.str.text)) {
                        good = false;
                } else {
                        env[i].name = strdup(mem->key);
                        env[i].value = strdup(mem->value->u.str.text);
                        if (!env[i].name || !env[i].value) {
                                c->diags->oom = true;
                                good = false;
                        }
                }
                path_pop(c, saved);
        }
        c->m->env = env;
        c->m->env_n = n;
        if (!good) {
                for (size_t i = 0; i < n; i++) {
                        free(env[i].name);
                        free(env[i].value);
                }
                free(env);
                c->m->env = NULL;
                c->m->env_n = 0;
        }
}

static void parse_root(struct ctx *c, const struct json_value *v)
{
        if (v->type == JSON_STRING) {
                if (strcmp(v->u.str.text, "host-system") == 0) {
                        c->m->root.kind = ROOT_HOST_SYSTEM;
                        return;
                }
                err_at(c, v,
                       "\"%s\" is not valid; expected \"host-system\" or an object such as "
                       "{\"path\": \"/srv/images/debian\", \"readonly\": true}",
                       SHOWN(v->u.str.text));
                return;
        }
        enum { PATH, READONLY, N };
        static const char *const keys[N] = {"path", "readonly"};
        const struct json_value *f[N];
        if (v->type != JSON_OBJECT) {
                err_at(c, v, "expected \"host-system\" or an object, got %s",
                       json_type_name(v->type));
                return;
        }
        take_fields(c, v, keys, N, f);
        c->m->root.kind = ROOT_PATH;
        if (!f[PATH])
                err_missing(c, v, "path", "the absolute path of an image directory");
        else
                WITH_KEY(c, "path", {
                        if (get_path(c, f[PATH], &c->m->root.path) &&
                            strcmp(c->m->root.path, "/") == 0)
                                err_at(c, f[PATH],
                                       "\"/\" is the host's whole tree; use "
                                       "\"host-system\" or an image directory");
                });
        if (f[READONLY])
                WITH_KEY(c, "readonly", get_bool(c, f[READONLY], &c->m->root.readonly));
}

static bool target_reserved(const char *t)
{
        static const char *const reserved[] = {"/proc", "/dev", "/sys"};
        if (strcmp(t, "/") == 0)
                return true;
        for (size_t i = 0; i < ARRAY_SIZE(reserved); i++) {
                size_t n = strlen(reserved[i]);
                if (strncmp(t, reserved[i], n) == 0 && (t[n] == '\0' || t[n] == '/'))
                        return true;
        }
        return false;
}

static void parse_mount(struct ctx *c, const struct json_value *v, struct mount_spec *ms)
{
        enum { TYPE, SOURCE, TARGET, MODE, NOEXEC, SIZE, N };
        static const char *const keys[N] = {"type", "source", "target", "mode", "noexec", "size"};
        static const char *const types[] = {"bind", "tmpfs"};
        static const char *const modes[] = {"ro", "rw"};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;

        int type = MOUNT_BIND;
        bool type_ok = true;
        if (f[TYPE])
                WITH_KEY(c, "type", type_ok = get_enum(c, f[TYPE], types, 2, &type));
        if (!type_ok)
                return; /* the other keys' meaning depends on the type */
        ms->type = (enum mount_type)type;
        ms->readonly = ms->type == MOUNT_BIND; /* binds are read-only unless declared rw */

        if (!f[TARGET])
                err_missing(c, v, "target", "the absolute path inside the tenant");
        else
                WITH_KEY(c, "target", {
                        if (get_path(c, f[TARGET], &ms->target) && target_reserved(ms->target))
                                err_at(c, f[TARGET],
                                       "\"%s\" is managed by tenantd; mount somewhere other than "
                                       "/, /proc, /dev or /sys",
                                       SHOWN(ms->target));
                });

        if (ms->type == MOUNT_BIND) {
                if (!f[SOURCE])
                        err_missing(c, v, "source", "the absolute host path to bind");
                else
                        WITH_KEY(c, "source", {
                                if (get_path(c, f[SOURCE], &ms->source) &&
                                    strcmp(ms->source, "/") == 0)
                                        err_at(c, f[SOURCE],
                                               "\"/\" is the host's whole tree; "
                                               "declare the directories the tenant needs");
                        });
                if (f[SIZE])
                        WITH_KEY(c, "size", err_at(c, f[SIZE], "only a tmpfs mount has a size"));
        } else {
                if (f[SOURCE])
                        WITH_KEY(c, "source",
                                 err_at(c, f[SOURCE], "a tmpfs mount has no source; remove it"));
                ms->size = 64ULL << 20;
                if (f[SIZE])
                        WITH_KEY(c, "size",
                                 get_size(c, f[SIZE], false, 1ULL << 20, 64ULL << 30, &ms->size));
        }
        if (f[MODE]) {
                int mode;
                bool ok;
                WITH_KEY(c, "mode", ok = get_enum(c, f[MODE], modes, 2, &mode));
                if (ok)
                        ms->readonly = mode == 0;
        }
        if (f[NOEXEC])
                WITH_KEY(c, "noexec", get_bool(c, f[NOEXEC], &ms->noexec));
}

static void parse_mounts(struct ctx *c, const struct json_value *v)
{
        size_t n = 0;
        c->m->mounts = array_items(c, v, "an array of mount objects", "mounts", MANIFEST_MAX_MOUNTS,
                                   sizeof(*c->m->mounts), &n);
        if (!c->m->mounts)
                return;
        c->m->mounts_n = n;
        for (size_t i = 0; i < n; i++) {
                size_t saved = path_push_index(c, i);
                parse_mount(c, v->u.array.items[i], &c->m->mounts[i]);
                for (size_t j = 0; j < i && c->m->mounts[i].target; j++) {
                        if (c->m->mounts[j].target &&
                            strcmp(c->m->mounts[i].target, c->m->mounts[j].target) == 0) {
                                WITH_KEY(c, "target",
                                         err_at(c, json_get(v->u.array.items[i], "target"),
                                                "\"%s\" is already the target of mounts[%zu]",
                                                SHOWN(c->m->mounts[i].target), j));
                                break;
                        }
                }
                path_pop(c, saved);
        }
}

/* Bytes per second: a size with an optional "/s", such as "20M" or "20M/s". */
static bool get_byte_rate(struct ctx *c, const struct json_value *v, uint64_t min, uint64_t max,
                          uint64_t *out)
{
        char why[UNITS_WHY_MAX], a[UNITS_FMT_MAX], b[UNITS_FMT_MAX];
        if (!want_type(c, v, JSON_STRING, "bytes per second such as \"20M\""))
                return false;
        char num[32];
        size_t len = v->u.str.len;
        if (len >= 2 && strcmp(v->u.str.text + len - 2, "/s") == 0)
                len -= 2;
        uint64_t bytes;
        if (len == 0 || len >= sizeof(num) ||
            (memcpy(num, v->u.str.text, len), num[len] = '\0',
             parse_size(num, &bytes, why, sizeof(why)) < 0)) {
                err_at(c, v,
                       "\"%s\" is not a byte rate; expected bytes per second such as \"20M\", or "
                       "\"max\"",
                       SHOWN(v->u.str.text));
                return false;
        }
        if (bytes < min || bytes > max) {
                err_at(c, v, "\"%s\" is out of range; expected from %s/s to %s/s",
                       SHOWN(v->u.str.text), format_size(min, a), format_size(max, b));
                return false;
        }
        *out = bytes;
        return true;
}

static void parse_volume_io(struct ctx *c, const struct json_value *v, struct volume_spec *vs)
{
        enum { READ, WRITE, IOPS, N };
        static const char *const keys[N] = {"read", "write", "iops"};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        /* 64K/s and 10 operations a second: below that a file system stalls on its
         * own journal; "max" (or no key) leaves a direction unlimited. */
        if (f[READ] && !is_unlimited_word(f[READ]))
                WITH_KEY(c, "read",
                         get_byte_rate(c, f[READ], 64ULL << 10, 100ULL << 30, &vs->io.read));
        if (f[WRITE] && !is_unlimited_word(f[WRITE]))
                WITH_KEY(c, "write",
                         get_byte_rate(c, f[WRITE], 64ULL << 10, 100ULL << 30, &vs->io.write));
        if (f[IOPS] && !is_unlimited_word(f[IOPS]))
                WITH_KEY(c, "iops", get_uint(c, f[IOPS], 10, 10000000, &vs->io.iops));
}

static void parse_volume(struct ctx *c, const struct json_value *v, struct volume_spec *vs)
{
        enum { NAME, TARGET, SIZE, ENCRYPT, IO, NOEXEC, N };
        static const char *const keys[N] = {"name", "target", "size", "encrypt", "io", "noexec"};
        const struct json_value *f[N];
        vs->encrypt = true;
        if (!take_fields(c, v, keys, N, f))
                return;
        if (!f[NAME])
                err_missing(c, v, "name", "a name such as \"data\" (a-z, 0-9, \"-\")");
        else
                WITH_KEY(c, "name", {
                        _cleanup_free_ char *name = NULL;
                        if (get_text(c, f[NAME], 256, &name)) {
                                if (!is_simple_name(name) || strlen(name) > MANIFEST_NAME_MAX)
                                        err_at(c, f[NAME],
                                               "\"%s\" is not a valid volume name; expected 1 to "
                                               "%d characters of a-z, 0-9 and \"-\", not starting "
                                               "or ending with \"-\"",
                                               SHOWN(name), MANIFEST_NAME_MAX);
                                else
                                        vs->name = TAKE_PTR(name);
                        }
                });
        if (!f[TARGET])
                err_missing(c, v, "target", "the absolute path inside the tenant");
        else
                WITH_KEY(c, "target", {
                        if (get_path(c, f[TARGET], &vs->target) && target_reserved(vs->target))
                                err_at(c, f[TARGET],
                                       "\"%s\" is managed by tenantd; mount the volume somewhere "
                                       "other than /, /proc, /dev or /sys",
                                       SHOWN(vs->target));
                });
        /* 16M: ext4 with its journal and an encryption policy fits with room to spare;
         * 16T: the most an ext4 image of 4K blocks holds without the 64bit feature. */
        if (!f[SIZE])
                err_missing(c, v, "size", "the volume's size such as \"2G\"");
        else
                WITH_KEY(c, "size",
                         get_size(c, f[SIZE], false, 16ULL << 20, 16ULL << 40, &vs->size));
        if (f[ENCRYPT])
                WITH_KEY(c, "encrypt", get_bool(c, f[ENCRYPT], &vs->encrypt));
        if (f[IO])
                WITH_KEY(c, "io", parse_volume_io(c, f[IO], vs));
        if (f[NOEXEC])
                WITH_KEY(c, "noexec", get_bool(c, f[NOEXEC], &vs->noexec));
}

static void parse_volumes(struct ctx *c, const struct json_value *v)
{
        size_t n = 0;
        c->m->volumes = array_items(c, v, "an array of volume objects", "volumes",
                                    MANIFEST_MAX_VOLUMES, sizeof(*c->m->volumes), &n);
        if (!c->m->volumes)
                return;
        c->m->volumes_n = n;
        for (size_t i = 0; i < n; i++) {
                const struct json_value *item = v->u.array.items[i];
                struct volume_spec *vs = &c->m->volumes[i];
                size_t saved = path_push_index(c, i);
                parse_volume(c, item, vs);
                for (size_t j = 0; j < i && vs->name; j++) {
                        if (c->m->volumes[j].name && strcmp(vs->name, c->m->volumes[j].name) == 0) {
                                WITH_KEY(c, "name",
                                         err_at(c, json_get(item, "name"),
                                                "\"%s\" is already the name of volumes[%zu]",
                                                SHOWN(vs->name), j));
                                break;
                        }
                }
                for (size_t j = 0; j < i && vs->target; j++) {
                        if (c->m->volumes[j].target &&
                            strcmp(vs->target, c->m->volumes[j].target) == 0) {
                                WITH_KEY(c, "target",
                                         err_at(c, json_get(item, "target"),
                                                "\"%s\" is already the target of volumes[%zu]",
                                                SHOWN(vs->target), j));
                                break;
                        }
                }
                for (size_t j = 0; j < c->m->mounts_n && vs->target; j++) {
                        if (c->m->mounts[j].target &&
                            strcmp(vs->target, c->m->mounts[j].target) == 0) {
                                WITH_KEY(c, "target",
                                         err_at(c, json_get(item, "target"),
                                                "\"%s\" is already the target of mounts[%zu]",
                                                SHOWN(vs->target), j));
                                break;
                        }
                }
                path_pop(c, saved);
        }
}

static bool cpuset_ok(const char *s)
{
        const char *p = s;
        if (!*p)
                return false;
        for (;;) {
                unsigned a = 0;
                size_t d = 0;
                for (; *p >= '0' && *p <= '9'; p++, d++)
                        a = d < 5 ? a * 10 + (unsigned)(*p - '0') : 99999;
                if (d == 0 || a > 4095)
                        return false;
                if (*p == '-') {
                        unsigned b = 0;
                        p++;
                        for (d = 0; *p >= '0' && *p <= '9'; p++, d++)
                                b = d < 5 ? b * 10 + (unsigned)(*p - '0') : 99999;
                        if (d == 0 || b > 4095 || b < a)
                                return false;
                }
                if (*p == '\0')
                        return true;
                if (*p != ',')
                        return false;
                p++;
        }
}

static void parse_cpu_section(struct ctx *c, const struct json_value *v)
{
        enum { MAX, WEIGHT, CPUS, N };
        static const char *const keys[N] = {"max", "weight", "cpus"};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        if (f[MAX]) {
                const struct json_value *x = f[MAX];
                char why[UNITS_WHY_MAX];
                uint32_t mc;
                WITH_KEY(c, "max", {
                        if (is_unlimited_word(x))
                                c->m->cpu.max_millicpus = 0;
                        else if (x->type != JSON_NUMBER && x->type != JSON_STRING)
                                err_at(c, x,
                                       "expected a number of CPUs such as 1.5 or \"max\", got %s",
                                       json_type_name(x->type));
                        else if (parse_cpu(x->u.str.text, &mc, why, sizeof(why)) < 0)
                                err_at(c, x, "%s, or \"max\"", why);
                        else if (mc < 10 || mc > 1024000)
                                err_at(c, x,
                                       "%s is out of range; expected from 0.01 to 1024 CPUs, or "
                                       "\"max\"",
                                       SHOWN(x->u.str.text));
                        else
                                c->m->cpu.max_millicpus = mc;
                });
        }
        if (f[WEIGHT])
                WITH_KEY(c, "weight", get_u32(c, f[WEIGHT], 1, 10000, &c->m->cpu.weight));
        if (f[CPUS])
                WITH_KEY(c, "cpus", {
                        if (get_text(c, f[CPUS], 256, &c->m->cpu.cpuset) &&
                            !cpuset_ok(c->m->cpu.cpuset))
                                err_at(c, f[CPUS],
                                       "\"%s\" is not a CPU list; expected e.g. \"0-3\" or "
                                       "\"0,2,4-5\"",
                                       SHOWN(c->m->cpu.cpuset));
                });
}

static void parse_memory(struct ctx *c, const struct json_value *v)
{
        enum { MAX, HIGH, SWAP, N };
        static const char *const keys[N] = {"max", "high", "swap"};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        if (f[MAX]) {
                c->pos_memory_max = f[MAX]->pos;
                WITH_KEY(c, "max",
                         c->memory_max_set =
                             get_size(c, f[MAX], true, 8ULL << 20, 1ULL << 50, &c->m->memory.max));
        }
        if (f[HIGH]) {
                c->pos_memory_high = f[HIGH]->pos;
                WITH_KEY(c, "high",
                         get_size(c, f[HIGH], true, 8ULL << 20, 1ULL << 50, &c->m->memory.high));
        }
        if (f[SWAP])
                WITH_KEY(c, "swap", get_size(c, f[SWAP], true, 0, 1ULL << 50, &c->m->memory.swap));
}

static void parse_pids(struct ctx *c, const struct json_value *v)
{
        enum { MAX, N };
        static const char *const keys[N] = {"max"};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        if (f[MAX])
                WITH_KEY(c, "max", {
                        if (is_unlimited_word(f[MAX]))
                                c->m->pids.max = MANIFEST_UNLIMITED;
                        else
                                get_uint(c, f[MAX], 1, 4194304, &c->m->pids.max);
                });
}

static void parse_egress(struct ctx *c, const struct json_value *v)
{
        enum { RATE, ALLOW, DENY, DENY_LAN, ALLOW_HOST, N };
        static const char *const keys[N] = {"rate", "allow", "deny", "deny_lan", "allow_host"};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        if (f[RATE])
                WITH_KEY(c, "rate", get_rate(c, f[RATE], &c->m->network.egress_rate));
        if (f[ALLOW])
                WITH_KEY(c, "allow",
                         get_cidrs(c, f[ALLOW], &c->m->network.allow, &c->m->network.allow_n));
        if (f[DENY])
                WITH_KEY(c, "deny",
                         get_cidrs(c, f[DENY], &c->m->network.deny, &c->m->network.deny_n));
        if (f[DENY_LAN])
                WITH_KEY(c, "deny_lan", get_bool(c, f[DENY_LAN], &c->m->network.deny_lan));
        if (f[ALLOW_HOST])
                WITH_KEY(c, "allow_host", get_bool(c, f[ALLOW_HOST], &c->m->network.allow_host));
}

static void parse_ingress(struct ctx *c, const struct json_value *v)
{
        enum { RATE, N };
        static const char *const keys[N] = {"rate"};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        if (f[RATE])
                WITH_KEY(c, "rate", get_rate(c, f[RATE], &c->m->network.ingress_rate));
}

static void parse_on_exceed(struct ctx *c, const struct json_value *v)
{
        char why[UNITS_WHY_MAX];
        const char *accepted =
            "expected \"alert\", \"cut\" or \"throttle:RATE\" such as \"throttle:1mbit\"";
        if (!want_type(c, v, JSON_STRING, "a string"))
                return;
        const char *s = v->u.str.text;
        if (strcmp(s, "alert") == 0) {
                c->m->network.transfer.action = TRANSFER_ALERT;
        } else if (strcmp(s, "cut") == 0) {
                c->m->network.transfer.action = TRANSFER_CUT;
        } else if (strncmp(s, "throttle:", 9) == 0) {
                uint64_t bits;
                if (parse_rate(s + 9, &bits, why, sizeof(why)) < 0) {
                        err_at(c, v, "%s", why);
                        return;
                }
                if (bits < 8000 || bits > 100ULL * 1000 * 1000 * 1000) {
                        err_at(
                            c, v,
                            "throttle rate \"%s\" is out of range; expected from 8kbit to 100gbit",
                            SHOWN(s + 9));
                        return;
                }
                c->m->network.transfer.action = TRANSFER_THROTTLE;
                c->m->network.transfer.throttle_rate = bits;
        } else {
                err_at(c, v, "\"%s\" is not valid; %s", SHOWN(s), accepted);
        }
}

static void parse_transfer(struct ctx *c, const struct json_value *v)
{
        enum { MONTHLY, WEEKLY, DAILY, ON_EXCEED, N };
        static const char *const keys[N] = {"monthly", "weekly", "daily", "on_exceed"};
        static const enum transfer_period periods[] = {TRANSFER_MONTHLY, TRANSFER_WEEKLY,
                                                       TRANSFER_DAILY};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        int given = 0;
        for (int i = MONTHLY; i <= DAILY; i++) {
                if (!f[i])
                        continue;
                if (++given > 1) {
                        WITH_KEY(c, keys[i],
                                 err_at(c, f[i], "give only one of monthly, weekly or daily"));
                        continue;
                }
                c->m->network.transfer.period = periods[i];
                WITH_KEY(c, keys[i],
                         get_size(c, f[i], false, 1ULL << 20, 1ULL << 60,
                                  &c->m->network.transfer.limit));
        }
        if (given == 0)
                err_at(c, v,
                       "needs a volume: one of \"monthly\", \"weekly\" or \"daily\", e.g. "
                       "{\"monthly\": \"200G\"}");
        if (f[ON_EXCEED])
                WITH_KEY(c, "on_exceed", parse_on_exceed(c, f[ON_EXCEED]));
}

static bool get_ip(struct ctx *c, const struct json_value *v, int *family, uint8_t addr[16])
{
        if (!want_type(c, v, JSON_STRING, "an IP address"))
                return false;
        if (inet_pton(AF_INET, v->u.str.text, addr) == 1) {
                *family = AF_INET;
                return true;
        }
        if (inet_pton(AF_INET6, v->u.str.text, addr) == 1) {
                *family = AF_INET6;
                return true;
        }
        err_at(c, v,
               "\"%s\" is not an IP address; expected e.g. \"203.0.113.7\" or \"2001:db8::1\"",
               SHOWN(v->u.str.text));
        return false;
}

static void parse_publish_one(struct ctx *c, const struct json_value *v, struct publish_spec *p)
{
        enum { HOST, PORT, PROTO, ADDRESS, N };
        static const char *const keys[N] = {"host", "port", "proto", "address"};
        static const char *const protos[] = {"tcp", "udp"};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        if (!f[HOST])
                err_missing(c, v, "host", "the port on the host, 1 to 65535");
        else
                WITH_KEY(c, "host", get_port(c, f[HOST], &p->host_port));
        if (!f[PORT])
                err_missing(c, v, "port", "the port inside the tenant, 1 to 65535");
        else
                WITH_KEY(c, "port", get_port(c, f[PORT], &p->port));
        int proto = PROTO_TCP;
        if (f[PROTO])
                WITH_KEY(c, "proto", get_enum(c, f[PROTO], protos, 2, &proto));
        p->proto = (enum proto)proto;
        if (f[ADDRESS])
                WITH_KEY(c, "address", get_ip(c, f[ADDRESS], &p->bind_family, p->bind_addr));
}

static void parse_publish(struct ctx *c, const struct json_value *v)
{
        size_t n = 0;
        struct publish_spec *list =
            array_items(c, v, "an array of {\"host\": PORT, \"port\": PORT}", "published ports",
                        MANIFEST_MAX_PUBLISH, sizeof(*list), &n);
        if (!list)
                return;
        c->m->network.publish = list;
        c->m->network.publish_n = n;
        for (size_t i = 0; i < n; i++) {
                size_t saved = path_push_index(c, i);
                parse_publish_one(c, v->u.array.items[i], &list[i]);
                for (size_t j = 0; j < i && list[i].host_port; j++)
                        if (list[j].host_port == list[i].host_port &&
                            list[j].proto == list[i].proto)
                                WITH_KEY(
                                    c, "host",
                                    err_at(c, json_get(v->u.array.items[i], "host"),
                                           "host port %u/%s is already published by publish[%zu]",
                                           list[i].host_port,
                                           list[i].proto == PROTO_TCP ? "tcp" : "udp", j));
                path_pop(c, saved);
        }
}

/* network.public_ipv4: an address of the host's (or routed to it) that becomes the
 * tenant's own, both ways. It must be one host's unicast address: not this host's
 * loopback, link-local, multicast, broadcast or reserved ranges, nor the tenants' own
 * pool, where it would shadow a tenant. A LAN address is fine (a home server giving one
 * tenant an address of its own on the LAN). That no two tenants name the same address
 * is checked where all manifests are known: tenantd's reload. */
static void parse_public_ipv4(struct ctx *c, const struct json_value *v)
{
        if (!want_type(c, v, JSON_STRING, "an IPv4 address, e.g. \"203.0.113.7\""))
                return;
        struct in_addr in;
        if (inet_pton(AF_INET, v->u.str.text, &in) != 1) {
                err_at(c, v, "\"%s\" is not an IPv4 address; expected e.g. \"203.0.113.7\"",
                       SHOWN(v->u.str.text));
                return;
        }
        uint32_t a = ntohl(in.s_addr);
        static const struct {
                uint32_t net, mask;
                const char *what;
        } refused[] = {
            {0x00000000U, 0xff000000U, "\"this network\" (0.0.0.0/8)"},
            {0x7f000000U, 0xff000000U, "loopback (127.0.0.0/8)"},
            {0xa9fe0000U, 0xffff0000U, "link-local (169.254.0.0/16)"},
            {0xe0000000U, 0xf0000000U, "multicast (224.0.0.0/4)"},
            {0xf0000000U, 0xf0000000U, "reserved or broadcast (240.0.0.0/4)"},
            {0x0a580000U, 0xffff0000U, "the tenants' own address pool (10.88.0.0/16)"},
        };
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
                if ((a & refused[i].mask) == refused[i].net) {
                        err_at(c, v, "%s is %s; expected a unicast address that reaches this host",
                               v->u.str.text, refused[i].what);
                        return;
                }
        c->m->network.public_ipv4 = a;
}

static void parse_dns(struct ctx *c, const struct json_value *v)
{
        if (!want_type(c, v, JSON_ARRAY, "an array of resolver addresses"))
                return;
        if (v->u.array.n < 1 || v->u.array.n > 3) {
                err_at(c, v, "%zu resolvers; expected 1 to 3", v->u.array.n);
                return;
        }
        char **dns = NULL;
        size_t n = 0;
        if (!get_strv(c, v, 1, 3, false, &dns, &n))
                return;
        bool good = true;
        for (size_t i = 0; i < n; i++) {
                int fam;
                uint8_t a[16];
                size_t saved = path_push_index(c, i);
                good &= get_ip(c, v->u.array.items[i], &fam, a);
                path_pop(c, saved);
        }
        if (!good) {
                strv_free(dns);
                return;
        }
        c->m->network.dns = dns;
        c->m->network.dns_n = n;
}

/* Reads 1 to 9 decimal digits at *p into *out and moves *p past them. */
static bool take_digits(const char **p, unsigned long *out)
{
        unsigned long n = 0;
        size_t k = 0;
        while (isdigit((unsigned char)(*p)[k]) && k < 9)
                n = n * 10 + (unsigned long)((*p)[k++] - '0');
        if (k == 0 || isdigit((unsigned char)(*p)[k]))
                return false;
        *p += k;
        *out = n;
        return true;
}

/* A count: a JSON integer, or a string with an optional k (thousands) or m (millions)
 * suffix, "50k"; "max" (or "unlimited") is 0, no limit. */
static bool get_count(struct ctx *c, const struct json_value *v, uint32_t min, uint32_t max,
                      uint32_t *out)
{
        if (is_unlimited_word(v)) {
                *out = 0;
                return true;
        }
        if (v->type == JSON_NUMBER)
                return get_u32(c, v, min, max, out);
        if (!want_type(c, v, JSON_STRING, "a number such as 50000 or \"50k\", or \"max\""))
                return false;
        const char *s = v->u.str.text, *p = s;
        unsigned long n = 0, mult = 1;
        bool good = take_digits(&p, &n);
        if (good && (*p == 'k' || *p == 'K'))
                mult = 1000, p++;
        else if (good && (*p == 'm' || *p == 'M'))
                mult = 1000 * 1000, p++;
        if (!good || *p) {
                err_at(c, v, "\"%s\" is not a number; expected e.g. 50000 or \"50k\", or \"max\"",
                       SHOWN(s));
                return false;
        }
        if (n > max / mult || n * mult < min) {
                err_at(c, v, "\"%s\" is out of range; expected from %u to %u", SHOWN(s), min, max);
                return false;
        }
        *out = (uint32_t)(n * mult);
        return true;
}

/* new_conns: "RATE/s" or "RATE/m", optionally " burst N" (connections beyond the rate
 * at once; by default twice the rate per second, at least 5); "max" is no limit. */
static void parse_new_conns(struct ctx *c, const struct json_value *v)
{
        typeof(c->m->network.limits) *l = &c->m->network.limits;
        if (is_unlimited_word(v)) {
                l->new_conns = 0;
                l->new_burst = 0;
                return;
        }
        if (!want_type(c, v, JSON_STRING, "a rate such as \"200/s\" or \"200/s burst 400\""))
                return;
        const char *s = v->u.str.text, *p = s;
        unsigned long rate = 0, burst = 0;
        char unit = 0;
        bool good = take_digits(&p, &rate) && *p++ == '/' && (*p == 's' || *p == 'm');
        bool has_burst = false;
        if (good) {
                unit = *p++;
                if (*p) {
                        has_burst = true;
                        good = strncmp(p, " burst ", 7) == 0 && (p += 7, take_digits(&p, &burst)) &&
                               !*p;
                }
        }
        if (!good) {
                err_at(c, v,
                       "\"%s\" is not valid; expected new connections per second or minute, "
                       "such as \"200/s\", \"3000/m\" or \"200/s burst 400\", or \"max\"",
                       SHOWN(s));
                return;
        }
        unsigned long per_s = unit == 's' ? rate : (rate + 59) / 60;
        if (rate < 1 || rate > 1000000 || per_s > 1000000) {
                err_at(c, v, "\"%s\": the rate is out of range; expected from 1/m to 1000000/s",
                       SHOWN(s));
                return;
        }
        if (has_burst && (burst < 1 || burst > 1000000)) {
                err_at(c, v, "\"%s\": the burst is out of range; expected from 1 to 1000000",
                       SHOWN(s));
                return;
        }
        /* Kept per second: nft's limit takes /minute too, but one unit keeps the rules,
         * the counters and explain simple; n/m is rounded up to whole connections per
         * second. */
        l->new_conns = (uint32_t)per_s;
        l->new_burst = has_burst ? (uint32_t)burst : (uint32_t)(per_s * 2 > 5 ? per_s * 2 : 5);
}

static void parse_on_abuse(struct ctx *c, const struct json_value *v)
{
        typeof(c->m->network.limits) *l = &c->m->network.limits;
        char why[UNITS_WHY_MAX];
        if (!want_type(c, v, JSON_STRING, "a string"))
                return;
        const char *s = v->u.str.text;
        if (strcmp(s, "alert") == 0) {
                l->on_abuse = ABUSE_ALERT;
        } else if (strncmp(s, "throttle:", 9) == 0) {
                uint64_t bits;
                if (parse_rate(s + 9, &bits, why, sizeof(why)) < 0) {
                        err_at(c, v, "%s", why);
                        return;
                }
                if (bits < 8000 || bits > 100ULL * 1000 * 1000 * 1000) {
                        err_at(
                            c, v,
                            "throttle rate \"%s\" is out of range; expected from 8kbit to 100gbit",
                            SHOWN(s + 9));
                        return;
                }
                l->on_abuse = ABUSE_THROTTLE;
                l->throttle_rate = bits;
        } else if (strncmp(s, "cut:", 4) == 0) {
                uint64_t ms;
                if (parse_duration(s + 4, &ms, why, sizeof(why)) < 0) {
                        err_at(c, v, "%s", why);
                        return;
                }
                if (ms < 10 * 1000 || ms > 24 * 3600 * 1000) {
                        err_at(c, v,
                               "cut duration \"%s\" is out of range; expected from 10s to 24h",
                               SHOWN(s + 4));
                        return;
                }
                l->on_abuse = ABUSE_CUT;
                l->cut_ms = ms;
        } else {
                err_at(c, v,
                       "\"%s\" is not valid; expected \"alert\", \"throttle:RATE\" such as "
                       "\"throttle:1mbit\", or \"cut:DURATION\" such as \"cut:10m\"",
                       SHOWN(s));
        }
}

static void parse_limits(struct ctx *c, const struct json_value *v)
{
        typeof(c->m->network.limits) *l = &c->m->network.limits;
        enum { CONNS, NEW_CONNS, PPS, SMTP, ON_ABUSE, N };
        static const char *const keys[N] = {"conns", "new_conns", "pps", "smtp", "on_abuse"};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        if (f[CONNS])
                WITH_KEY(c, "conns", get_count(c, f[CONNS], 16, 1000000, &l->conns));
        if (f[NEW_CONNS])
                WITH_KEY(c, "new_conns", parse_new_conns(c, f[NEW_CONNS]));
        if (f[PPS])
                WITH_KEY(c, "pps", get_count(c, f[PPS], 100, 100000000, &l->pps));
        if (f[SMTP])
                WITH_KEY(c, "smtp", get_bool(c, f[SMTP], &l->smtp));
        if (f[ON_ABUSE])
                WITH_KEY(c, "on_abuse", parse_on_abuse(c, f[ON_ABUSE]));
}

/* network.ipv6: true (or "address": one address, the default), false (none), or
 * "prefix": a /64 of its own, which needs tenantd.conf's ipv6-prefix (checked when the
 * tenant starts: the manifest alone cannot know it). */
static bool parse_ipv6(struct ctx *c, const struct json_value *v)
{
        if (v->type == JSON_BOOL) {
                c->m->network.ipv6 = v->u.boolean;
                return true;
        }
        bool address = v->type == JSON_STRING && strcmp(v->u.str.text, "address") == 0;
        bool prefix = v->type == JSON_STRING && strcmp(v->u.str.text, "prefix") == 0;
        if (!address && !prefix) {
                if (v->type == JSON_STRING)
                        err_at(c, v,
                               "\"%s\" is not valid; expected true, false, \"address\" or "
                               "\"prefix\"",
                               SHOWN(v->u.str.text));
                else
                        err_at(c, v, "expected true, false, \"address\" or \"prefix\", got %s",
                               json_type_name(v->type));
                return false;
        }
        c->m->network.ipv6 = true;
        c->m->network.ipv6_prefix = prefix;
        return true;
}

static void parse_network(struct ctx *c, const struct json_value *v)
{
        enum { MODE, EGRESS, INGRESS, TRANSFER, PUBLISH, DNS, LIMITS, PUBLIC_IPV4, IPV6, N };
        static const char *const keys[N] = {"mode", "egress", "ingress",     "transfer", "publish",
                                            "dns",  "limits", "public_ipv4", "ipv6"};
        static const char *const modes[] = {"none", "private"};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        int mode = NET_NONE;
        if (f[MODE])
                WITH_KEY(c, "mode", get_enum(c, f[MODE], modes, 2, &mode));
        c->m->network.mode = (enum net_mode)mode;

        /* Everything but "mode" describes a private network; with "none" it would be
         * silently ignored, so it is an error instead. */
        for (int i = EGRESS; i < N; i++)
                if (f[i] && mode == NET_NONE)
                        WITH_KEY(c, keys[i],
                                 err_at(c, f[i],
                                        "needs network.mode \"private\" (the tenant has only "
                                        "loopback with \"none\")"));
        if (mode == NET_NONE)
                return;
        if (f[EGRESS])
                WITH_KEY(c, "egress", parse_egress(c, f[EGRESS]));
        if (f[INGRESS])
                WITH_KEY(c, "ingress", parse_ingress(c, f[INGRESS]));
        if (f[TRANSFER])
                WITH_KEY(c, "transfer", parse_transfer(c, f[TRANSFER]));
        if (f[PUBLISH])
                WITH_KEY(c, "publish", parse_publish(c, f[PUBLISH]));
        if (f[DNS])
                WITH_KEY(c, "dns", parse_dns(c, f[DNS]));
        if (f[LIMITS])
                WITH_KEY(c, "limits", parse_limits(c, f[LIMITS]));
        if (f[PUBLIC_IPV4])
                WITH_KEY(c, "public_ipv4", parse_public_ipv4(c, f[PUBLIC_IPV4]));
        if (f[IPV6])
                WITH_KEY(c, "ipv6", parse_ipv6(c, f[IPV6]));
}

static void parse_vm(struct ctx *c, const struct json_value *v)
{
        enum { VCPUS, MEMORY, KERNEL, INITRD, CMDLINE, N };
        static const char *const keys[N] = {"vcpus", "memory", "kernel", "initrd", "cmdline"};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        c->m->vm.set = true;
        if (f[VCPUS])
                WITH_KEY(c, "vcpus", get_u32(c, f[VCPUS], 1, 64, &c->m->vm.vcpus));
        if (f[MEMORY])
                WITH_KEY(c, "memory",
                         get_size(c, f[MEMORY], false, 64ULL << 20, 1ULL << 40, &c->m->vm.memory));
        if (f[KERNEL])
                WITH_KEY(c, "kernel", get_path(c, f[KERNEL], &c->m->vm.kernel));
        if (f[INITRD])
                WITH_KEY(c, "initrd", get_path(c, f[INITRD], &c->m->vm.initrd));
        if (f[CMDLINE])
                WITH_KEY(c, "cmdline", {
                        if (get_text(c, f[CMDLINE], 1024, &c->m->vm.cmdline)) {
                                const char *s = c->m->vm.cmdline;
                                if (strncmp(s, "init=", 5) == 0 || strstr(s, " init=") ||
                                    strncmp(s, "rdinit=", 7) == 0 || strstr(s, " rdinit="))
                                        err_at(c, f[CMDLINE],
                                               "must not set init= or rdinit=: tenant-agent is the "
                                               "guest's init");
                        }
                });
}

static void parse_capabilities(struct ctx *c, const struct json_value *v)
{
        char **caps = NULL;
        size_t n = 0;
        if (!get_strv(c, v, 0, MANIFEST_MAX_CAPS, false, &caps, &n))
                return;
        bool good = true;
        for (size_t i = 0; i < n; i++) {
                const struct json_value *item = v->u.array.items[i];
                size_t saved = path_push_index(c, i);
                const char *s = caps[i];
                char buf[64];
                if (s[0] == '@') {
                        if (!is_simple_name(s + 1) || strlen(s) > 64) {
                                err_at(c, item,
                                       "\"%s\" is not a capability set name; expected \"@\" and "
                                       "a-z, 0-9, \"-\"",
                                       SHOWN(s));
                                good = false;
                        }
                } else {
                        int cap = caps_from_name(s);
                        const char *why;
                        if (cap < 0) {
                                const char *near = caps_suggest(s, buf, sizeof(buf));
                                if (near)
                                        err_at(c, item,
                                               "unknown capability \"%s\"; did you mean \"%s\"?",
                                               SHOWN(s), near);
                                else
                                        err_at(c, item,
                                               "unknown capability \"%s\"; expected a name such as "
                                               "\"CAP_NET_BIND_SERVICE\" or a set such as "
                                               "\"@net-bind\"",
                                               SHOWN(s));
                                good = false;
                        } else if (caps_forbidden_in_sandbox(cap, &why) &&
                                   c->m->isolation == ISOLATION_SANDBOX) {
                                err_at(c, item,
                                       "%s is never granted to a sandbox: %s; use isolation "
                                       "\"microvm\" if the service needs it",
                                       caps_to_name(cap, buf, sizeof(buf)), why);
                                good = false;
                        } else {
                                /* Store the canonical spelling. */
                                char *canon = strdup(caps_to_name(cap, buf, sizeof(buf)));
                                if (!canon) {
                                        c->diags->oom = true;
                                        good = false;
                                } else {
                                        free(caps[i]);
                                        caps[i] = canon;
                                }
                        }
                }
                for (size_t j = 0; j < i; j++) {
                        int a = caps_from_name(caps[j]), b = caps_from_name(caps[i]);
                        if (strcmp(caps[j], caps[i]) == 0 || (a >= 0 && a == b)) {
                                err_at(c, item, "\"%s\" is listed twice", SHOWN(caps[i]));
                                good = false;
                                break;
                        }
                }
                path_pop(c, saved);
        }
        if (!good) {
                strv_free(caps);
                return;
        }
        c->m->policy.capabilities = caps;
        c->m->policy.capabilities_n = n;
}

static void parse_policy(struct ctx *c, const struct json_value *v)
{
        enum { SECCOMP, CAPS, N };
        static const char *const keys[N] = {"seccomp", "capabilities"};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        if (f[SECCOMP])
                WITH_KEY(c, "seccomp", {
                        _cleanup_free_ char *name = NULL;
                        if (get_text(c, f[SECCOMP], 64, &name)) {
                                if (!is_simple_name(name))
                                        err_at(c, f[SECCOMP],
                                               "\"%s\" is not a profile name; expected a-z, 0-9 "
                                               "and \"-\" such as \"default\" or \"strict\"",
                                               SHOWN(name));
                                else {
                                        free(c->m->policy.seccomp);
                                        c->m->policy.seccomp = TAKE_PTR(name);
                                }
                        }
                });
        if (f[CAPS])
                WITH_KEY(c, "capabilities", parse_capabilities(c, f[CAPS]));
}

/* "MIN..MAX", both durations. */
static void parse_backoff(struct ctx *c, const struct json_value *v)
{
        char why[UNITS_WHY_MAX];
        if (!want_type(c, v, JSON_STRING, "a range of durations such as \"1s..5m\""))
                return;
        const char *s = v->u.str.text;
        const char *dots = strstr(s, "..");
        if (!dots) {
                err_at(c, v, "\"%s\" is not a range; expected \"MIN..MAX\" such as \"1s..5m\"",
                       SHOWN(s));
                return;
        }
        char lo[32];
        size_t n = (size_t)(dots - s);
        if (n >= sizeof(lo)) {
                err_at(c, v, "\"%s\" is not a range; expected \"MIN..MAX\" such as \"1s..5m\"",
                       SHOWN(s));
                return;
        }
        memcpy(lo, s, n);
        lo[n] = '\0';
        uint64_t min, max;
        if (parse_duration(lo, &min, why, sizeof(why)) < 0 ||
            parse_duration(dots + 2, &max, why, sizeof(why)) < 0) {
                err_at(c, v, "%s", why);
                return;
        }
        if (min < 100 || max > 24ULL * 3600 * 1000 || min > max) {
                err_at(c, v, "\"%s\" is not a valid range; expected 100ms <= MIN <= MAX <= 1d",
                       SHOWN(s));
                return;
        }
        c->m->restart.backoff_min_ms = min;
        c->m->restart.backoff_max_ms = max;
}

static void parse_restart(struct ctx *c, const struct json_value *v)
{
        enum { ON, BACKOFF, BURST, STABLE, N };
        static const char *const keys[N] = {"on", "backoff", "burst", "stable"};
        static const char *const ons[] = {"no", "on-failure", "always"};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        if (f[ON]) {
                int on;
                bool ok;
                WITH_KEY(c, "on", ok = get_enum(c, f[ON], ons, 3, &on));
                if (ok)
                        c->m->restart.on = (enum restart_on)on;
        }
        if (f[BACKOFF])
                WITH_KEY(c, "backoff", parse_backoff(c, f[BACKOFF]));
        if (f[BURST])
                WITH_KEY(c, "burst", get_u32(c, f[BURST], 1, 1000, &c->m->restart.burst));
        if (f[STABLE])
                WITH_KEY(c, "stable",
                         get_duration(c, f[STABLE], 1000, 7ULL * 24 * 3600 * 1000,
                                      &c->m->restart.stable_ms));
}

static const struct {
        const char *name;
        int sig;
} stop_signals[] = {
    {"SIGTERM", SIGTERM}, {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT},   {"SIGHUP", SIGHUP},
    {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGWINCH", SIGWINCH}, {"SIGKILL", SIGKILL},
};

const char *manifest_signal_name(int sig)
{
        for (size_t i = 0; i < ARRAY_SIZE(stop_signals); i++)
                if (stop_signals[i].sig == sig)
                        return stop_signals[i].name;
        return "SIGTERM";
}

static void parse_stop(struct ctx *c, const struct json_value *v)
{
        enum { SIGNAL, TIMEOUT, N };
        static const char *const keys[N] = {"signal", "timeout"};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        if (f[SIGNAL])
                WITH_KEY(c, "signal", {
                        const char *names[ARRAY_SIZE(stop_signals)];
                        for (size_t i = 0; i < ARRAY_SIZE(stop_signals); i++)
                                names[i] = stop_signals[i].name;
                        int i;
                        if (get_enum(c, f[SIGNAL], names, ARRAY_SIZE(stop_signals), &i))
                                c->m->stop.signal = stop_signals[i].sig;
                });
        if (f[TIMEOUT])
                WITH_KEY(c, "timeout",
                         get_duration(c, f[TIMEOUT], 100, 3600ULL * 1000, &c->m->stop.timeout_ms));
}

static void parse_http_probe(struct ctx *c, const struct json_value *v)
{
        enum { PORT, PATH, N };
        static const char *const keys[N] = {"port", "path"};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        c->m->health.kind = HEALTH_HTTP;
        if (!f[PORT])
                err_missing(c, v, "port", "the port inside the tenant, 1 to 65535");
        else
                WITH_KEY(c, "port", get_port(c, f[PORT], &c->m->health.port));
        if (f[PATH])
                WITH_KEY(c, "path", {
                        if (get_text(c, f[PATH], 1024, &c->m->health.path) &&
                            (c->m->health.path[0] != '/' || strchr(c->m->health.path, ' ')))
                                err_at(c, f[PATH],
                                       "\"%s\" is not a URL path; expected e.g. \"/healthz\"",
                                       SHOWN(c->m->health.path));
                });
}

static void parse_health(struct ctx *c, const struct json_value *v)
{
        enum { TCP, HTTP, EXEC, INTERVAL, TIMEOUT, RETRIES, START_PERIOD, N };
        static const char *const keys[N] = {"tcp",     "http",    "exec",        "interval",
                                            "timeout", "retries", "start_period"};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        int probes = !!f[TCP] + !!f[HTTP] + !!f[EXEC];
        if (probes != 1) {
                err_at(c, v,
                       "needs exactly one probe: \"tcp\": PORT, \"http\": {\"port\": PORT, "
                       "\"path\": \"/\"} or \"exec\": [COMMAND...]");
        } else if (f[TCP]) {
                c->m->health.kind = HEALTH_TCP;
                WITH_KEY(c, "tcp", get_port(c, f[TCP], &c->m->health.port));
        } else if (f[HTTP]) {
                WITH_KEY(c, "http", parse_http_probe(c, f[HTTP]));
        } else {
                c->m->health.kind = HEALTH_EXEC;
                WITH_KEY(c, "exec", {
                        if (get_strv(c, f[EXEC], 1, MANIFEST_MAX_EXEC_ARGS, true,
                                     &c->m->health.exec, &c->m->health.exec_n) &&
                            c->m->health.exec[0][0] != '/') {
                                size_t saved = path_push_index(c, 0);
                                err_at(c, f[EXEC]->u.array.items[0],
                                       "\"%s\" is not an absolute path; expected the program's "
                                       "full path",
                                       SHOWN(c->m->health.exec[0]));
                                path_pop(c, saved);
                        }
                });
        }
        if (f[INTERVAL])
                WITH_KEY(c, "interval",
                         get_duration(c, f[INTERVAL], 1000, 24ULL * 3600 * 1000,
                                      &c->m->health.interval_ms));
        if (f[TIMEOUT])
                WITH_KEY(c, "timeout",
                         get_duration(c, f[TIMEOUT], 100, 600ULL * 1000, &c->m->health.timeout_ms));
        if (f[RETRIES])
                WITH_KEY(c, "retries", get_u32(c, f[RETRIES], 1, 100, &c->m->health.retries));
        if (f[START_PERIOD])
                WITH_KEY(c, "start_period",
                         get_duration(c, f[START_PERIOD], 0, 3600ULL * 1000,
                                      &c->m->health.start_period_ms));
        if (c->m->health.timeout_ms > c->m->health.interval_ms)
                WITH_KEY(c, "timeout",
                         err_at(c, f[TIMEOUT] ? f[TIMEOUT] : v, "%s",
                                f[TIMEOUT] ? "must not be longer than health.interval"
                                           : "the default of 2s is longer than health.interval; "
                                             "set a shorter timeout"));
}

/* "PCT% [for DURATION] [clear PCT%]" */
static void parse_alert_rule(struct ctx *c, const struct json_value *v, struct alert_rule *r)
{
        const char *accepted =
            "expected \"PERCENT% [for DURATION] [clear PERCENT%]\" such as \"90% for 60s\"";
        char why[UNITS_WHY_MAX];
        if (!want_type(c, v, JSON_STRING, "a rule such as \"90% for 60s\""))
                return;
        char buf[128];
        if (v->u.str.len >= sizeof(buf)) {
                err_at(c, v, "rule is too long; %s", accepted);
                return;
        }
        memcpy(buf, v->u.str.text, v->u.str.len + 1);
        struct alert_rule out = {.set = true};
        bool have_clear = false;
        char *save = NULL;
        char *tok = strtok_r(buf, " ", &save);
        if (!tok || parse_percent(tok, &out.threshold_bp, why, sizeof(why)) < 0) {
                err_at(c, v, "\"%s\": %s", SHOWN(v->u.str.text), tok ? why : accepted);
                return;
        }
        int stage = 0; /* 1 after "for", 2 after "clear" */
        while ((tok = strtok_r(NULL, " ", &save))) {
                char *arg = strtok_r(NULL, " ", &save);
                if (strcmp(tok, "for") == 0 && stage < 1 && arg) {
                        if (parse_duration(arg, &out.for_ms, why, sizeof(why)) < 0) {
                                err_at(c, v, "\"%s\": %s", SHOWN(v->u.str.text), why);
                                return;
                        }
                        stage = 1;
                } else if (strcmp(tok, "clear") == 0 && stage < 2 && arg) {
                        if (parse_percent(arg, &out.clear_bp, why, sizeof(why)) < 0) {
                                err_at(c, v, "\"%s\": %s", SHOWN(v->u.str.text), why);
                                return;
                        }
                        have_clear = true;
                        stage = 2;
                } else {
                        err_at(c, v, "\"%s\" is not a rule; %s", SHOWN(v->u.str.text), accepted);
                        return;
                }
        }
        if (out.threshold_bp < 100 || out.threshold_bp > 10000) {
                err_at(c, v, "threshold must be from 1%% to 100%%");
                return;
        }
        if (out.for_ms > 24ULL * 3600 * 1000) {
                err_at(c, v, "duration must be at most 1d");
                return;
        }
        if (!have_clear)
                /* 10 points below, or half way down for thresholds up to 20% */
                out.clear_bp =
                    out.threshold_bp > 2000 ? out.threshold_bp - 1000 : out.threshold_bp / 2;
        else if (out.clear_bp >= out.threshold_bp) {
                err_at(c, v, "the clear level must be below the threshold");
                return;
        }
        *r = out;
}

static void parse_alerts(struct ctx *c, const struct json_value *v)
{
        enum { CPU, MEMORY, PIDS, NETWORK, TRANSFER, DISK, N };
        static const char *const keys[N] = {"cpu", "memory", "pids", "network", "transfer", "disk"};
        struct alert_rule *rules[N] = {&c->m->alerts.cpu,      &c->m->alerts.memory,
                                       &c->m->alerts.pids,     &c->m->alerts.network,
                                       &c->m->alerts.transfer, &c->m->alerts.disk};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        for (int i = 0; i < N; i++)
                if (f[i])
                        WITH_KEY(c, keys[i], parse_alert_rule(c, f[i], rules[i]));
}

static void parse_logs(struct ctx *c, const struct json_value *v)
{
        enum { MAX_SIZE, KEEP, RATE, SYSLOG, N };
        static const char *const keys[N] = {"max_size", "keep", "rate", "syslog"};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        if (f[MAX_SIZE])
                WITH_KEY(
                    c, "max_size",
                    get_size(c, f[MAX_SIZE], false, 64ULL << 10, 1ULL << 30, &c->m->logs.max_size));
        if (f[KEEP])
                WITH_KEY(c, "keep", get_u32(c, f[KEEP], 0, 100, &c->m->logs.keep));
        if (f[RATE])
                WITH_KEY(c, "rate", {
                        const struct json_value *x = f[RATE];
                        char why[UNITS_WHY_MAX];
                        uint64_t bytes;
                        size_t len = x->type == JSON_STRING ? x->u.str.len : 0;
                        if (is_unlimited_word(x)) {
                                c->m->logs.rate = 0;
                        } else if (len < 3 || strcmp(x->u.str.text + len - 2, "/s") != 0) {
                                err_at(c, x,
                                       "expected bytes per second such as \"256K/s\", or "
                                       "\"unlimited\"");
                        } else {
                                char num[32];
                                if (len - 2 >= sizeof(num) ||
                                    (memcpy(num, x->u.str.text, len - 2), num[len - 2] = '\0',
                                     parse_size(num, &bytes, why, sizeof(why)) < 0))
                                        err_at(
                                            c, x,
                                            "\"%s\" is not a byte rate; expected e.g. \"256K/s\"",
                                            SHOWN(x->u.str.text));
                                else if (bytes < 1024)
                                        err_at(c, x, "\"%s\" is below the minimum of 1K/s",
                                               SHOWN(x->u.str.text));
                                else
                                        c->m->logs.rate = bytes;
                        }
                });
        if (f[SYSLOG])
                WITH_KEY(c, "syslog", get_bool(c, f[SYSLOG], &c->m->logs.syslog));
}

/* ---- backup ---- */

bool backup_includes(const struct manifest *m, const char *name)
{
        if (!m->backup.volumes)
                return true;
        for (size_t i = 0; i < m->backup.volumes_n; i++)
                if (strcmp(m->backup.volumes[i], name) == 0)
                        return true;
        return false;
}

/* restic's repository forms: a local absolute path, or one of its backends by prefix. */
static const char *const restic_schemes[] = {
    "sftp:", "rest:", "s3:", "b2:", "azure:", "gs:", "swift:", "rclone:"};

static void parse_repository(struct ctx *c, const struct json_value *v)
{
        _cleanup_free_ char *s = NULL;
        if (!get_text(c, v, MANIFEST_MAX_STRING, &s))
                return;
        for (size_t i = 0; i < ARRAY_SIZE(restic_schemes); i++) {
                size_t n = strlen(restic_schemes[i]);
                if (strncmp(s, restic_schemes[i], n) == 0) {
                        if (!s[n]) {
                                err_at(c, v, "\"%s\" names no place after the backend", SHOWN(s));
                                return;
                        }
                        struct backup_sftp sftp;
                        const char *why;
                        if (backup_is_sftp(s) && backup_sftp_parse(s, &sftp, &why) < 0) {
                                err_at(c, v, "\"%s\": %s", SHOWN(s), why);
                                return;
                        }
                        c->m->backup.repository = TAKE_PTR(s);
                        return;
                }
        }
        if (s[0] != '/') {
                err_at(c, v,
                       "\"%s\" is not a repository; expected an absolute path such as "
                       "\"/srv/backup/restic\", or \"sftp:USER@HOST:/PATH\", \"rest:https://...\" "
                       "(restic's backends: sftp, rest, s3, b2, azure, gs, swift, rclone)",
                       SHOWN(s));
                return;
        }
        if (check_path(c, v, s))
                c->m->backup.repository = TAKE_PTR(s);
}

/* "daily HH:MM", or a duration from 15m to 31d such as "6h". */
static void parse_schedule(struct ctx *c, const struct json_value *v)
{
        struct backup_spec *b = &c->m->backup;
        if (!want_type(c, v, JSON_STRING, "a schedule such as \"daily 03:30\" or \"6h\""))
                return;
        const char *s = v->u.str.text;
        if (strncmp(s, "daily ", 6) == 0) {
                unsigned h, mi;
                char tail;
                if (strlen(s) != 11 || sscanf(s + 6, "%2u:%2u%c", &h, &mi, &tail) != 2 ||
                    !isdigit((unsigned char)s[6]) || !isdigit((unsigned char)s[9]) || h > 23 ||
                    mi > 59) {
                        err_at(c, v,
                               "\"%s\" is not a time of day; expected \"daily HH:MM\" such as "
                               "\"daily 03:30\" (00:00 to 23:59, local time)",
                               SHOWN(s));
                        return;
                }
                b->schedule = BACKUP_DAILY;
                b->daily_minute = h * 60 + mi;
                return;
        }
        char why[UNITS_WHY_MAX];
        uint64_t ms;
        if (parse_duration(s, &ms, why, sizeof(why)) < 0) {
                err_at(c, v,
                       "\"%s\" is not a schedule; expected \"daily HH:MM\" such as \"daily "
                       "03:30\", or an interval such as \"6h\"",
                       SHOWN(s));
                return;
        }
        if (ms < 15ULL * 60 * 1000 || ms > 31ULL * 24 * 3600 * 1000) {
                err_at(c, v, "\"%s\" is out of range; expected an interval from 15m to 31d",
                       SHOWN(s));
                return;
        }
        b->schedule = BACKUP_EVERY;
        b->every_ms = ms;
}

static void parse_keep(struct ctx *c, const struct json_value *v)
{
        enum { LAST, HOURLY, DAILY, WEEKLY, MONTHLY, YEARLY, N };
        static const char *const keys[N] = {"last",   "hourly",  "daily",
                                            "weekly", "monthly", "yearly"};
        typeof(c->m->backup.keep) *k = &c->m->backup.keep;
        uint32_t *out[N] = {&k->last, &k->hourly, &k->daily, &k->weekly, &k->monthly, &k->yearly};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        *k = (typeof(*k)){0};
        bool good = true, any = false;
        for (int i = 0; i < N; i++)
                if (f[i]) {
                        any = true;
                        WITH_KEY(c, keys[i], good &= get_u32(c, f[i], 0, 10000, out[i]));
                }
        /* (only unknown keys: those were reported, one message is enough) */
        if (good && (any || v->u.object.n == 0) &&
            !(k->last | k->hourly | k->daily | k->weekly | k->monthly | k->yearly))
                err_at(c, v,
                       "keeps no snapshot at all; expected at least one of last, hourly, "
                       "daily, weekly, monthly or yearly above 0, such as {\"daily\": 7}");
}

static void parse_backup_volumes(struct ctx *c, const struct json_value *v)
{
        struct backup_spec *b = &c->m->backup;
        if (!get_strv(c, v, 1, MANIFEST_MAX_VOLUMES, false, &b->volumes, &b->volumes_n))
                return;
        for (size_t i = 0; i < b->volumes_n; i++) {
                size_t saved = path_push_index(c, i);
                const struct json_value *item = v->u.array.items[i];
                bool known = false;
                for (size_t j = 0; j < c->m->volumes_n; j++)
                        known |= c->m->volumes[j].name &&
                                 strcmp(c->m->volumes[j].name, b->volumes[i]) == 0;
                if (!known)
                        err_at(c, item, "\"%s\" is not one of this manifest's volumes",
                               SHOWN(b->volumes[i]));
                for (size_t j = 0; j < i; j++)
                        if (strcmp(b->volumes[i], b->volumes[j]) == 0) {
                                err_at(c, item, "\"%s\" is already backup.volumes[%zu]",
                                       SHOWN(b->volumes[i]), j);
                                break;
                        }
                path_pop(c, saved);
        }
}

static const char *const backup_io_names[] = {"best-effort", "idle"};

static void parse_backup_limits(struct ctx *c, const struct json_value *v)
{
        enum { CPU, MEMORY, NICE, IO, N };
        static const char *const keys[N] = {"cpu", "memory", "nice", "io"};
        typeof(c->m->backup.limits) *l = &c->m->backup.limits;
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        if (f[CPU])
                WITH_KEY(c, "cpu", {
                        const struct json_value *x = f[CPU];
                        char why[UNITS_WHY_MAX];
                        uint32_t mc;
                        if (is_unlimited_word(x))
                                l->cpu_millicpus = 0;
                        else if (x->type != JSON_NUMBER && x->type != JSON_STRING)
                                err_at(c, x,
                                       "expected a number of CPUs such as 0.5 or \"max\", got %s",
                                       json_type_name(x->type));
                        else if (parse_cpu(x->u.str.text, &mc, why, sizeof(why)) < 0)
                                err_at(c, x, "%s, or \"max\"", why);
                        else if (mc < 10 || mc > 1024000)
                                err_at(c, x,
                                       "%s is out of range; expected from 0.01 to 1024 CPUs, or "
                                       "\"max\"",
                                       SHOWN(x->u.str.text));
                        else
                                l->cpu_millicpus = mc;
                });
        /* 64M: restic's index and its buffers need about that for a small repository */
        if (f[MEMORY])
                WITH_KEY(c, "memory",
                         get_size(c, f[MEMORY], true, 64ULL << 20, 1ULL << 40, &l->memory));
        if (f[NICE])
                WITH_KEY(c, "nice", get_u32(c, f[NICE], 0, 19, &l->nice));
        if (f[IO]) {
                int io;
                bool ok;
                WITH_KEY(c, "io", ok = get_enum(c, f[IO], backup_io_names, 2, &io));
                if (ok)
                        l->io = (enum backup_io_class)io;
        }
}

/* A host path restic's ssh gets on its command line (backup_sftp_path_ok). */
static void get_ssh_path(struct ctx *c, const struct json_value *v, char **out)
{
        if (get_path(c, v, out) && !backup_sftp_path_ok(*out)) {
                err_at(c, v,
                       "\"%s\" holds a space, a quote or a backslash, which restic's ssh command "
                       "line cannot carry; expected a path without them",
                       SHOWN(*out));
                free(*out);
                *out = NULL;
        }
}

/* ssh_key and known_hosts: both wanted with an sftp repository (restic's ssh then
 * reads no ssh config: docs/backup.md#sftp), refused with any other. */
static void parse_backup_ssh(struct ctx *c, const struct json_value *v,
                             const struct json_value *key, const struct json_value *known)
{
        struct backup_spec *b = &c->m->backup;
        const char *repo = b->repository;
        if (repo && !backup_is_sftp(repo)) {
                if (key)
                        WITH_KEY(c, "ssh_key",
                                 err_at(c, key,
                                        "only an sftp repository uses it; this one is \"%s\"",
                                        SHOWN(repo)));
                if (known)
                        WITH_KEY(c, "known_hosts",
                                 err_at(c, known,
                                        "only an sftp repository uses it; this one is \"%s\"",
                                        SHOWN(repo)));
                return;
        }
        if (key)
                WITH_KEY(c, "ssh_key", get_ssh_path(c, key, &b->ssh_key));
        if (known)
                WITH_KEY(c, "known_hosts", get_ssh_path(c, known, &b->known_hosts));
        if (!repo)
                return;
        if (!key)
                err_missing(c, v, "ssh_key",
                            "(with an sftp repository) the ssh identity file restic logs in "
                            "with, such as \"/etc/tenantd/backup_ed25519\"");
        if (!known)
                err_missing(c, v, "known_hosts",
                            "(with an sftp repository) a known_hosts file holding the server's "
                            "host key, such as \"/etc/tenantd/backup_known_hosts\"");
}

static void parse_backup(struct ctx *c, const struct json_value *v)
{
        enum { REPOSITORY, PASSWORD_FILE, SCHEDULE, KEEP, VOLUMES, PRE, LIMITS, SSH_KEY, KNOWN, N };
        static const char *const keys[N] = {"repository", "password_file", "schedule",
                                            "keep",       "volumes",       "pre",
                                            "limits",     "ssh_key",       "known_hosts"};
        struct backup_spec *b = &c->m->backup;
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        b->set = true;
        if (!f[REPOSITORY])
                err_missing(c, v, "repository",
                            "restic's repository such as \"/srv/backup/restic\" or "
                            "\"sftp:backup@nas:/restic\"");
        else
                WITH_KEY(c, "repository", parse_repository(c, f[REPOSITORY]));
        if (!f[PASSWORD_FILE])
                err_missing(c, v, "password_file",
                            "the file holding the repository's password such as "
                            "\"/etc/tenantd/backup.pass\"");
        else
                WITH_KEY(c, "password_file", get_path(c, f[PASSWORD_FILE], &b->password_file));
        parse_backup_ssh(c, v, f[SSH_KEY], f[KNOWN]);
        if (f[SCHEDULE])
                WITH_KEY(c, "schedule", parse_schedule(c, f[SCHEDULE]));
        if (f[KEEP])
                WITH_KEY(c, "keep", parse_keep(c, f[KEEP]));
        if (c->m->volumes_n == 0)
                err_at(c, v,
                       "backs up the tenant's volumes, and this manifest has none; add a "
                       "\"volumes\" section");
        else if (f[VOLUMES])
                WITH_KEY(c, "volumes", parse_backup_volumes(c, f[VOLUMES]));
        if (f[PRE])
                WITH_KEY(c, "pre", {
                        if (get_strv(c, f[PRE], 1, MANIFEST_MAX_EXEC_ARGS, true, &b->pre,
                                     &b->pre_n) &&
                            b->pre[0][0] != '/') {
                                size_t saved = path_push_index(c, 0);
                                err_at(c, f[PRE]->u.array.items[0],
                                       "\"%s\" is not an absolute path; expected the program's "
                                       "full path inside the tenant such as "
                                       "\"/usr/bin/pg_dumpall\"",
                                       SHOWN(b->pre[0]));
                                path_pop(c, saved);
                        }
                });
        if (f[LIMITS])
                WITH_KEY(c, "limits", parse_backup_limits(c, f[LIMITS]));
}

static void parse_exec(struct ctx *c, const struct json_value *v)
{
        if (!get_strv(c, v, 1, MANIFEST_MAX_EXEC_ARGS, true, &c->m->exec, &c->m->exec_n))
                return;
        if (c->m->exec[0][0] != '/') {
                size_t saved = path_push_index(c, 0);
                err_at(c, v->u.array.items[0],
                       "\"%s\" is not an absolute path; expected the program's full path such as "
                       "\"/usr/sbin/nginx\"",
                       SHOWN(c->m->exec[0]));
                path_pop(c, saved);
        }
}

/* ---- access: which host users may do what to this tenant ---- */

static const char *const access_op_names[ACCESS_OP_COUNT_] = {
    [ACCESS_STATUS] = "status",   [ACCESS_LOGS] = "logs",       [ACCESS_START] = "start",
    [ACCESS_STOP] = "stop",       [ACCESS_RESTART] = "restart", [ACCESS_KILL] = "kill",
    [ACCESS_EXEC] = "exec",       [ACCESS_SET] = "set",         [ACCESS_AUDIT] = "audit",
    [ACCESS_RESTORE] = "restore", [ACCESS_CONSOLE] = "console", [ACCESS_BACKUP] = "backup",
};

const char *access_op_name(enum access_op op)
{
        return (unsigned)op < ACCESS_OP_COUNT_ ? access_op_names[op] : NULL;
}

int access_op_lookup(const char *name)
{
        for (size_t i = 0; i < ACCESS_OP_COUNT_; i++)
                if (strcmp(access_op_names[i], name) == 0)
                        return (int)i;
        return -1;
}

/* A host account's name as useradd(8) takes it by default: a lower-case letter or "_",
 * then lower-case letters, digits, "_", "-" and ".", at most MANIFEST_ACCOUNT_MAX bytes.
 * (Names only: a uid would outlive the account it once was.) */
static void get_account(struct ctx *c, const struct json_value *v, const char *what, char **out)
{
        _cleanup_free_ char *name = NULL;
        if (!get_text(c, v, 256, &name))
                return;
        bool ok = (name[0] >= 'a' && name[0] <= 'z') || name[0] == '_';
        for (const char *p = name + 1; ok && *p; p++)
                ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
                     *p == '-' || *p == '.';
        if (!ok || strlen(name) > MANIFEST_ACCOUNT_MAX)
                err_at(c, v,
                       "\"%s\" is not a valid %s name; expected 1 to %d characters of a-z, 0-9, "
                       "\"_\", \"-\" and \".\", starting with a letter or \"_\"",
                       SHOWN(name), what, MANIFEST_ACCOUNT_MAX);
        else
                *out = TAKE_PTR(name);
}

static void parse_access_allow(struct ctx *c, const struct json_value *v, uint32_t *out)
{
        if (!want_type(c, v, JSON_ARRAY, "an array of verbs such as [\"status\", \"logs\"]"))
                return;
        if (v->u.array.n == 0 || v->u.array.n > ACCESS_OP_COUNT_) {
                err_at(c, v, "array has %zu elements; expected 1 to %d verbs", v->u.array.n,
                       ACCESS_OP_COUNT_);
                return;
        }
        for (size_t i = 0; i < v->u.array.n; i++) {
                int op;
                size_t saved = path_push_index(c, i);
                if (get_enum(c, v->u.array.items[i], access_op_names, ACCESS_OP_COUNT_, &op)) {
                        if (*out & (1U << op))
                                err_at(c, v->u.array.items[i], "\"%s\" is listed twice",
                                       access_op_names[op]);
                        *out |= 1U << op;
                }
                path_pop(c, saved);
        }
}

static void parse_access_set(struct ctx *c, const struct json_value *v, struct access_entry *e)
{
        if (!get_strv(c, v, 1, 16, false, &e->set, &e->set_n))
                return;
        for (size_t i = 0; i < e->set_n; i++)
                if (!manifest_settable_path(e->set[i])) {
                        size_t saved = path_push_index(c, i);
                        err_at(c, v->u.array.items[i],
                               "\"%s\" cannot be set; expected one of: " MANIFEST_SETTABLE_KEYS,
                               SHOWN(e->set[i]));
                        path_pop(c, saved);
                }
}

static void parse_access_entry(struct ctx *c, const struct json_value *v, struct access_entry *e)
{
        enum { USER, GROUP, ALLOW, SET, N };
        static const char *const keys[N] = {"user", "group", "allow", "set"};
        const struct json_value *f[N];
        if (!take_fields(c, v, keys, N, f))
                return;
        if (f[USER] && f[GROUP])
                WITH_KEY(c, "group",
                         err_at(c, f[GROUP],
                                "an entry names a user or a group, not both; write two entries"));
        else if (!f[USER] && !f[GROUP])
                err_at(c, v,
                       "an entry needs \"user\" (a host account's name) or \"group\" (a host "
                       "group's name)");
        if (f[USER])
                WITH_KEY(c, "user", get_account(c, f[USER], "user", &e->user));
        else if (f[GROUP])
                WITH_KEY(c, "group", get_account(c, f[GROUP], "group", &e->group));
        if (!f[ALLOW])
                err_missing(c, v, "allow",
                            "the verbs granted, such as [\"status\", \"logs\", \"restart\"]");
        else
                WITH_KEY(c, "allow", parse_access_allow(c, f[ALLOW], &e->allow));
        if (f[SET]) {
                WITH_KEY(c, "set", parse_access_set(c, f[SET], e));
                if (f[ALLOW] && !(e->allow & (1U << ACCESS_SET)))
                        WITH_KEY(c, "set",
                                 err_at(c, f[SET],
                                        "lists keys, but \"allow\" does not grant "
                                        "\"set\""));
        }
}

static void parse_access(struct ctx *c, const struct json_value *v)
{
        size_t n = 0;
        struct access_entry *list = array_items(
            c, v, "an array of {\"user\": NAME, \"allow\": [VERBS]} or {\"group\": NAME, ...}",
            "access entries", MANIFEST_MAX_ACCESS, sizeof(*list), &n);
        if (!list)
                return;
        c->m->access = list;
        c->m->access_n = n;
        for (size_t i = 0; i < n; i++) {
                size_t saved = path_push_index(c, i);
                parse_access_entry(c, v->u.array.items[i], &list[i]);
                for (size_t j = 0; j < i; j++) {
                        const struct access_entry *a = &list[j], *b = &list[i];
                        bool same = (a->user && b->user && strcmp(a->user, b->user) == 0) ||
                                    (a->group && b->group && strcmp(a->group, b->group) == 0);
                        if (same)
                                err_at(c, v->u.array.items[i],
                                       "%s \"%s\" already has access[%zu]; one entry each",
                                       b->user ? "user" : "group", b->user ? b->user : b->group, j);
                }
                path_pop(c, saved);
        }
}

static void parse_name(struct ctx *c, const struct json_value *v)
{
        _cleanup_free_ char *name = NULL;
        if (!get_text(c, v, 256, &name))
                return;
        if (!is_simple_name(name) || strlen(name) > MANIFEST_NAME_MAX)
                err_at(c, v,
                       "\"%s\" is not a valid name; expected 1 to %d characters of a-z, 0-9 and "
                       "\"-\", not starting or ending with \"-\"",
                       SHOWN(name), MANIFEST_NAME_MAX);
        else if (strncmp(name, MANIFEST_BACKUP_CGROUP_PREFIX,
                         strlen(MANIFEST_BACKUP_CGROUP_PREFIX)) == 0)
                err_at(c, v,
                       "\"%s\": names starting with \"" MANIFEST_BACKUP_CGROUP_PREFIX
                       "\" are tenantd's own (the cgroups of backups); choose another",
                       SHOWN(name));
        else
                c->m->name = TAKE_PTR(name);
}

static void set_defaults(struct manifest *m)
{
        m->isolation = ISOLATION_SANDBOX;
        m->autostart = true;
        m->root.kind = ROOT_HOST_SYSTEM;
        m->root.readonly = true;
        m->cpu.max_millicpus = 1000;
        m->cpu.weight = 100;
        m->memory.max = 512ULL << 20;
        m->memory.high = MANIFEST_UNLIMITED;
        m->memory.swap = 0;
        m->pids.max = 512;
        m->network.mode = NET_NONE;
        m->network.deny_lan = true;
        m->network.ipv6 = true;
        m->network.limits.conns = LIMITS_DEFAULT_CONNS;
        m->network.limits.new_conns = LIMITS_DEFAULT_NEW_CONNS;
        m->network.limits.new_burst = 2 * LIMITS_DEFAULT_NEW_CONNS;
        m->network.limits.pps = LIMITS_DEFAULT_PPS;
        m->network.limits.on_abuse = ABUSE_ALERT;
        m->vm.vcpus = 1;
        m->vm.memory = 256ULL << 20;
        m->restart.on = RESTART_ON_FAILURE;
        m->restart.backoff_min_ms = 1000;
        m->restart.backoff_max_ms = 5 * 60 * 1000;
        m->restart.burst = 5;
        m->restart.stable_ms = 10 * 60 * 1000;
        m->stop.signal = SIGTERM;
        m->stop.timeout_ms = 10 * 1000;
        m->health.interval_ms = 10 * 1000;
        m->health.timeout_ms = 2 * 1000;
        m->health.retries = 3;
        m->logs.max_size = 10ULL << 20;
        m->logs.keep = 3;
        m->logs.rate = 1ULL << 20;
        m->backup.keep.daily = 7;
        m->backup.keep.weekly = 4;
        m->backup.keep.monthly = 6;
        m->backup.limits.cpu_millicpus = BACKUP_DEFAULT_CPU;
        m->backup.limits.memory = BACKUP_DEFAULT_MEMORY;
        m->backup.limits.nice = BACKUP_DEFAULT_NICE;
}

/* Rules that involve more than one section, checked once all are read. */
static void check_cross_fields(struct ctx *c, const struct json_value *root)
{
        struct manifest *m = c->m;
        /* A sandbox ignores a vm section (checked all the same), so that one manifest runs
         * in either backend with only "isolation" changed; `validate` warns. */
        if (m->isolation == ISOLATION_MICROVM) {
                /* QEMU itself needs memory beyond the guest's: the tenant's memory limit
                 * covers both, so it defaults to the guest's plus 256M of headroom and
                 * must leave at least 64M when given. */
                uint64_t need = m->vm.memory + (64ULL << 20);
                if (!c->memory_max_set)
                        m->memory.max = m->vm.memory + (256ULL << 20);
                else if (m->memory.max != MANIFEST_UNLIMITED && m->memory.max < need) {
                        char a[UNITS_FMT_MAX], b[UNITS_FMT_MAX];
                        WITH_KEY(c, "memory.max",
                                 err_pos(c, c->pos_memory_max,
                                         "%s is smaller than vm.memory plus 64M for QEMU; expected "
                                         "at least %s",
                                         format_size(m->memory.max, b), format_size(need, a)));
                }
        }

        if (m->memory.high != MANIFEST_UNLIMITED && m->memory.max != MANIFEST_UNLIMITED &&
            m->memory.high > m->memory.max) {
                char a[UNITS_FMT_MAX];
                WITH_KEY(c, "memory.high",
                         err_pos(c, c->pos_memory_high, "must not exceed memory.max (%s)",
                                 format_size(m->memory.max, a)));
        }

        const struct json_value *alerts = json_get(root, "alerts");
        if (m->alerts.network.set && !m->network.egress_rate && !m->network.ingress_rate)
                WITH_KEY(c, "alerts.network",
                         err_at(c, json_get(alerts, "network"),
                                "needs a rate to compare with: set network.egress.rate or "
                                "network.ingress.rate"));
        if (m->alerts.transfer.set && m->network.transfer.period == TRANSFER_NONE)
                WITH_KEY(c, "alerts.transfer",
                         err_at(c, json_get(alerts, "transfer"),
                                "needs a volume to compare with: set network.transfer"));
        if (m->alerts.memory.set && m->memory.max == MANIFEST_UNLIMITED)
                WITH_KEY(
                    c, "alerts.memory",
                    err_at(c, json_get(alerts, "memory"), "needs a limit: memory.max is \"max\""));
        if (m->alerts.pids.set && m->pids.max == MANIFEST_UNLIMITED)
                WITH_KEY(c, "alerts.pids",
                         err_at(c, json_get(alerts, "pids"), "needs a limit: pids.max is \"max\""));
        if (m->alerts.cpu.set && m->cpu.max_millicpus == 0)
                WITH_KEY(c, "alerts.cpu",
                         err_at(c, json_get(alerts, "cpu"), "needs a limit: cpu.max is \"max\""));
        if (m->alerts.disk.set && m->volumes_n == 0)
                WITH_KEY(c, "alerts.disk",
                         err_at(c, json_get(alerts, "disk"),
                                "needs a volume to compare with: the manifest has no volumes"));
}

static void parse_root_object(struct ctx *c, const struct json_value *root)
{
        enum {
                VERSION,
                NAME,
                DESCRIPTION,
                ISOLATION,
                AUTOSTART,
                EXEC,
                USER,
                GROUPS,
                ENV,
                WORKDIR,
                ROOT,
                MOUNTS,
                VOLUMES,
                CPU,
                MEMORY,
                PIDS,
                NETWORK,
                VM,
                POLICY,
                RESTART,
                STOP,
                HEALTH,
                ALERTS,
                LOGS,
                BACKUP,
                ACCESS,
                N
        };
        static const char *const keys[N] = {
            "version", "name",   "description", "isolation", "autostart", "exec",    "user",
            "groups",  "env",    "workdir",     "root",      "mounts",    "volumes", "cpu",
            "memory",  "pids",   "network",     "vm",        "policy",    "restart", "stop",
            "health",  "alerts", "logs",        "backup",    "access",
        };
        const struct json_value *f[N];
        struct manifest *m = c->m;
        if (!take_fields(c, root, keys, N, f))
                return;

        if (f[VERSION]) {
                uint64_t ver;
                WITH_KEY(c, "version", {
                        if (get_uint(c, f[VERSION], 0, UINT32_MAX, &ver) && ver != MANIFEST_VERSION)
                                err_at(c, f[VERSION],
                                       "unsupported manifest version %llu; this tenantd reads "
                                       "version %d",
                                       (unsigned long long)ver, MANIFEST_VERSION);
                });
        }
        /* isolation first: capability checks depend on it */
        if (f[ISOLATION]) {
                int iso;
                bool ok;
                WITH_KEY(c, "isolation", ok = get_enum(c, f[ISOLATION], isolation_names, 2, &iso));
                if (ok)
                        m->isolation = (enum isolation)iso;
        }
        if (!f[NAME])
                err_missing(c, root, "name", "a name such as \"photos\" (a-z, 0-9, \"-\")");
        else
                WITH_KEY(c, "name", parse_name(c, f[NAME]));
        if (f[DESCRIPTION])
                WITH_KEY(c, "description", get_text(c, f[DESCRIPTION], 256, &m->description));
        if (f[AUTOSTART])
                WITH_KEY(c, "autostart", get_bool(c, f[AUTOSTART], &m->autostart));
        if (!f[EXEC])
                err_missing(c, root, "exec",
                            "the command as an array such as [\"/usr/bin/redis-server\", "
                            "\"--port\", \"6379\"]");
        else
                WITH_KEY(c, "exec", parse_exec(c, f[EXEC]));
        if (f[USER])
                WITH_KEY(c, "user", parse_user(c, f[USER]));
        if (f[GROUPS])
                WITH_KEY(c, "groups", parse_groups(c, f[GROUPS]));
        if (f[ENV])
                WITH_KEY(c, "env", parse_env(c, f[ENV]));
        if (f[WORKDIR])
                WITH_KEY(c, "workdir", get_path(c, f[WORKDIR], &m->workdir));
        if (f[ROOT])
                WITH_KEY(c, "root", parse_root(c, f[ROOT]));
        if (f[MOUNTS])
                WITH_KEY(c, "mounts", parse_mounts(c, f[MOUNTS]));
        /* after mounts: a volume's target may not be a mount's */
        if (f[VOLUMES])
                WITH_KEY(c, "volumes", parse_volumes(c, f[VOLUMES]));
        if (f[CPU])
                WITH_KEY(c, "cpu", parse_cpu_section(c, f[CPU]));
        if (f[MEMORY])
                WITH_KEY(c, "memory", parse_memory(c, f[MEMORY]));
        if (f[PIDS])
                WITH_KEY(c, "pids", parse_pids(c, f[PIDS]));
        if (f[NETWORK])
                WITH_KEY(c, "network", parse_network(c, f[NETWORK]));
        if (f[VM])
                WITH_KEY(c, "vm", parse_vm(c, f[VM]));
        if (f[POLICY])
                WITH_KEY(c, "policy", parse_policy(c, f[POLICY]));
        if (f[RESTART])
                WITH_KEY(c, "restart", parse_restart(c, f[RESTART]));
        if (f[STOP])
                WITH_KEY(c, "stop", parse_stop(c, f[STOP]));
        if (f[HEALTH])
                WITH_KEY(c, "health", parse_health(c, f[HEALTH]));
        if (f[ALERTS])
                WITH_KEY(c, "alerts", parse_alerts(c, f[ALERTS]));
        if (f[LOGS])
                WITH_KEY(c, "logs", parse_logs(c, f[LOGS]));
        /* after volumes: it names them */
        if (f[BACKUP])
                WITH_KEY(c, "backup", parse_backup(c, f[BACKUP]));
        if (f[ACCESS])
                WITH_KEY(c, "access", parse_access(c, f[ACCESS]));

        check_cross_fields(c, root);
}

int manifest_parse(const char *buf, size_t len, struct manifest **ret, struct diag_list *diags)
{
        struct json_error jerr;
        _cleanup_json_ struct json_value *root = NULL;
        int r = json_parse(buf, len, &json_limits_config, &root, &jerr);
        if (r < 0) {
                diag_add(diags, jerr.pos.line, jerr.pos.col, "", "%s", jerr.msg);
                return r == -ENOMEM ? r : -EINVAL;
        }
        if (root->type != JSON_OBJECT) {
                diag_add(diags, root->pos.line, root->pos.col, "",
                         "a manifest is a JSON object such as {\"name\": \"web\", \"exec\": "
                         "[\"/usr/sbin/nginx\"]}, not %s",
                         json_type_name(root->type));
                return -EINVAL;
        }

        _cleanup_manifest_ struct manifest *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        set_defaults(m);
        struct ctx c = {.diags = diags, .m = m, .root_pos = root->pos};
        size_t before = diags->n;
        parse_root_object(&c, root);
        diag_sort(diags);
        if (diags->n > before || diags->oom)
                return diags->oom ? -ENOMEM : -EINVAL;

        if (!m->workdir && !(m->workdir = strdup("/")))
                return -ENOMEM;
        if (!m->policy.seccomp && !(m->policy.seccomp = strdup("default")))
                return -ENOMEM;
        *ret = TAKE_PTR(m);
        return 0;
}

void manifest_free(struct manifest *m)
{
        if (!m)
                return;
        free(m->name);
        free(m->description);
        strv_free(m->exec);
        free(m->groups);
        for (size_t i = 0; i < m->env_n; i++) {
                free(m->env[i].name);
                free(m->env[i].value);
        }
        free(m->env);
        free(m->workdir);
        free(m->root.path);
        for (size_t i = 0; i < m->mounts_n; i++) {
                free(m->mounts[i].source);
                free(m->mounts[i].target);
        }
        free(m->mounts);
        for (size_t i = 0; i < m->volumes_n; i++) {
                free(m->volumes[i].name);
                free(m->volumes[i].target);
        }
        free(m->volumes);
        free(m->cpu.cpuset);
        free(m->network.allow);
        free(m->network.deny);
        free(m->network.publish);
        strv_free(m->network.dns);
        free(m->vm.kernel);
        free(m->vm.initrd);
        free(m->vm.cmdline);
        free(m->policy.seccomp);
        strv_free(m->policy.capabilities);
        free(m->health.path);
        strv_free(m->health.exec);
        free(m->backup.repository);
        free(m->backup.password_file);
        free(m->backup.ssh_key);
        free(m->backup.known_hosts);
        strv_free(m->backup.volumes);
        strv_free(m->backup.pre);
        for (size_t i = 0; i < m->access_n; i++) {
                free(m->access[i].user);
                free(m->access[i].group);
                strv_free(m->access[i].set);
        }
        free(m->access);
        free(m);
}
