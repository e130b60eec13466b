/* json.c — bounded, positioned JSON parsing and generation over yajl (see json.h).
 *
 * yajl's event parser does the lexing and grammar; the callbacks here build the tree.
 * yajl reports only how many bytes it has consumed, which inside a callback is the
 * offset just past the current token. A token's start is therefore found by skipping
 * what cannot start a value (whitespace, ',' ':' and comments) from the end of the
 * previous token; that offset is turned into line:column by a cursor that only moves
 * forward, so positions cost O(input) in total. */
#include "lib/json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

const struct json_limits json_limits_config = {
    .max_bytes = 256 * 1024,
    .max_depth = 16,
    .allow_comments = true,
};

const struct json_limits json_limits_agent = {
    .max_bytes = 1024 * 1024,
    .max_depth = 8,
    .allow_comments = false,
};

struct frame {
        struct json_value *container;
        size_t cap;
        char *pending_key; /* objects: the key whose value comes next */
        struct json_pos key_pos;
};

struct parser {
        yajl_handle handle;
        const char *buf;
        size_t len;
        const struct json_limits *limits;
        bool completing; /* inside yajl_complete_parse: offsets are no longer absolute */
        size_t prev_end; /* offset just past the last token seen */

        size_t cur_off; /* position cursor */
        struct json_pos cur_pos;

        struct json_value *root;
        struct frame *stack;
        unsigned depth;

        struct json_error *err;
        bool failed; /* err was filled by a callback */
};

static void set_error(struct json_error *err, struct json_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(struct json_error *err, struct json_pos pos, const char *fmt, ...)
{
        if (!err)
                return;
        err->pos = pos;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
}

/* Moves the cursor to `off` and returns its line:column. Columns count characters:
 * UTF-8 continuation bytes do not advance them. */
static struct json_pos pos_at(struct parser *p, size_t off)
{
        if (off > p->len)
                off = p->len;
        if (off < p->cur_off) {
                p->cur_off = 0;
                p->cur_pos = (struct json_pos){1, 1};
        }
        for (; p->cur_off < off; p->cur_off++) {
                unsigned char c = (unsigned char)p->buf[p->cur_off];
                if (c == '\n') {
                        p->cur_pos.line++;
                        p->cur_pos.col = 1;
                } else if ((c & 0xC0) != 0x80) {
                        p->cur_pos.col++;
                }
        }
        return p->cur_pos;
}

/* Skips whitespace and comments and, when `punctuation`, the ',' and ':' separators. */
static size_t skip_blank(const char *buf, size_t len, size_t off, bool punctuation)
{
        while (off < len) {
                char c = buf[off];
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
                    (punctuation && (c == ',' || c == ':'))) {
                        off++;
                } else if (c == '/' && off + 1 < len && buf[off + 1] == '/') {
                        while (off < len && buf[off] != '\n')
                                off++;
                } else if (c == '/' && off + 1 < len && buf[off + 1] == '*') {
                        const char *end = memmem(buf + off + 2, len - off - 2, "*/", 2);
                        off = end ? (size_t)(end - buf) + 2 : len;
                } else {
                        break;
                }
        }
        return off;
}

static size_t skip_insignificant(const char *buf, size_t len, size_t off)
{
        return skip_blank(buf, len, off, true);
}

static size_t consumed(struct parser *p)
{
        return p->completing ? p->len : yajl_get_bytes_consumed(p->handle);
}

/* Position of the token that yajl has just reported, and advance past it. */
static struct json_pos token_pos(struct parser *p)
{
        size_t start = skip_insignificant(p->buf, p->len, p->prev_end);
        struct json_pos pos = pos_at(p, start);
        size_t end = consumed(p);
        if (end > p->prev_end)
                p->prev_end = end;
        return pos;
}

/* Validates UTF-8 strictly (no overlong forms, surrogates or code points past
 * U+10FFFF). Returns the offset of the first bad byte, or len if all is well. */
static size_t utf8_invalid_at(const char *s, size_t len)
{
        const unsigned char *u = (const unsigned char *)s;
        size_t i = 0;
        while (i < len) {
                unsigned char c = u[i];
                size_t n;
                uint32_t cp;
                if (c < 0x80) {
                        i++;
                        continue;
                } else if (c >= 0xC2 && c <= 0xDF) {
                        n = 1;
                        cp = c & 0x1F;
                } else if (c >= 0xE0 && c <= 0xEF) {
                        n = 2;
                        cp = c & 0x0F;
                } else if (c >= 0xF0 && c <= 0xF4) {
                        n = 3;
                        cp = c & 0x07;
                } else {
                        return i;
                }
                if (i + n >= len)
                        return i;
                for (size_t k = 1; k <= n; k++) {
                        if ((u[i + k] & 0xC0) != 0x80)
                                return i;
                        cp = (cp << 6) | (u[i + k] & 0x3F);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
                    (cp >= 0xD800 && cp <= 0xDFFF))
                        return i;
                i += n + 1;
        }
        return len;
}

static struct json_value *value_new(enum json_type type, struct json_pos pos)
{
        struct json_value *v = calloc(1, sizeof(*v));
        if (v) {
                v->type = type;
                v->pos = pos;
        }
        return v;
}

static bool grow(void **items, size_t *cap, size_t n, size_t size)
{
        if (n < *cap)
                return true;
        size_t ncap = *cap ? *cap * 2 : 8;
        void *nitems = reallocarray(*items, ncap, size);
        if (!nitems)
                return false;
        *items = nitems;
        *cap = ncap;
        return true;
}

/* Attaches v to the container being built (or makes it the root). Takes ownership
 * of v on success and on failure. */
static int attach(struct parser *p, struct json_value *v)
{
        if (!v) {
                set_error(p->err, (struct json_pos){0, 0}, "out of memory");
                p->failed = true;
                return 0;
        }
        if (p->depth == 0) {
                p->root = v;
                return 1;
        }
        struct frame *f = &p->stack[p->depth - 1];
        struct json_value *c = f->container;
        if (c->type == JSON_ARRAY) {
                size_t item_size =
                    sizeof(*c->u.array.items); /* NOLINT(bugprone-sizeof-expression) */
                if (!grow((void **)&c->u.array.items, &f->cap, c->u.array.n, item_size))
                        goto oom;
                c->u.array.items[c->u.array.n++] = v;
                return 1;
        }
        if (!grow((void **)&c->u.object.items, &f->cap, c->u.object.n, sizeof(*c->u.object.items)))
                goto oom;
        c->u.object.items[c->u.object.n++] = (struct json_member){
            .key = TAKE_PTR(f->pending_key),
            .pos = f->key_pos,
            .value = v,
        };
        return 1;
oom:
        json_free(v);
        set_error(p->err, (struct json_pos){0, 0}, "out of memory");
        p->failed = true;
        return 0;
}

static int on_null(void *ctx)
{
        struct parser *p = ctx;
        return attach(p, value_new(JSON_NULL, token_pos(p)));
}

static int on_boolean(void *ctx, int b)
{
        struct parser *p = ctx;
        struct json_value *v = value_new(JSON_BOOL, token_pos(p));
        if (v)
                v->u.boolean = b;
        return attach(p, v);
}

static int scalar_text(struct parser *p, enum json_type type, const char *s, size_t len)
{
        struct json_pos pos = token_pos(p);
        if (memchr(s, '\0', len)) {
                set_error(p->err, pos, "string contains a NUL character (\\u0000)");
                p->failed = true;
                return 0;
        }
        struct json_value *v = value_new(type, pos);
        if (v) {
                v->u.str.text = strndup(s, len);
                v->u.str.len = len;
                if (!v->u.str.text) {
                        free(v);
                        v = NULL;
                }
        }
        return attach(p, v);
}

static int on_number(void *ctx, const char *s, size_t len)
{
        return scalar_text(ctx, JSON_NUMBER, s, len);
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
        return scalar_text(ctx, JSON_STRING, (const char *)s, len);
}

static int open_container(struct parser *p, enum json_type type)
{
        struct json_pos pos = token_pos(p);
        if (p->depth >= p->limits->max_depth) {
                set_error(p->err, pos, "nesting deeper than %u levels", p->limits->max_depth);
                p->failed = true;
                return 0;
        }
        struct json_value *v = value_new(type, pos);
        if (!attach(p, v))
                return 0;
        p->stack[p->depth++] = (struct frame){.container = v};
        return 1;
}

static int on_start_map(void *ctx)
{
        return open_container(ctx, JSON_OBJECT);
}

static int on_start_array(void *ctx)
{
        return open_container(ctx, JSON_ARRAY);
}

static int on_map_key(void *ctx, const unsigned char *s, size_t len)
{
        struct parser *p = ctx;
        struct json_pos pos = token_pos(p);
        if (memchr(s, '\0', len)) {
                set_error(p->err, pos, "object key contains a NUL character (\\u0000)");
                p->failed = true;
                return 0;
        }
        struct frame *f = &p->stack[p->depth - 1];
        free(f->pending_key);
        f->pending_key = strndup((const char *)s, len);
        f->key_pos = pos;
        if (!f->pending_key) {
                set_error(p->err, (struct json_pos){0, 0}, "out of memory");
                p->failed = true;
                return 0;
        }
        return 1;
}

static int member_cmp(const void *a, const void *b)
{
        const struct json_member *ma = *(const struct json_member *const *)a;
        const struct json_member *mb = *(const struct json_member *const *)b;
        int r = strcmp(ma->key, mb->key);
        if (r)
                return r;
        return ma < mb ? -1 : ma > mb;
}

/* Finds a duplicate key in O(n log n): sort pointers by (key, position in object). */
static int check_duplicates(struct parser *p, const struct json_value *obj)
{
        size_t n = obj->u.object.n;
        if (n < 2)
                return 1;
        /* An array of pointers to members, sorted by key. */
        _cleanup_free_ const struct json_member **sorted =
            calloc(n, sizeof(*sorted)); /* NOLINT(bugprone-sizeof-expression) */
        if (!sorted) {
                set_error(p->err, (struct json_pos){0, 0}, "out of memory");
                p->failed = true;
                return 0;
        }
        for (size_t i = 0; i < n; i++)
                sorted[i] = &obj->u.object.items[i];
        qsort(sorted, n, sizeof(*sorted), member_cmp); /* NOLINT(bugprone-sizeof-expression) */
        for (size_t i = 1; i < n; i++) {
                if (strcmp(sorted[i - 1]->key, sorted[i]->key) == 0) {
                        set_error(p->err, sorted[i]->pos,
                                  "duplicate key \"%.64s\" (first at %u:%u)", sorted[i]->key,
                                  sorted[i - 1]->pos.line, sorted[i - 1]->pos.col);
                        p->failed = true;
                        return 0;
                }
        }
        return 1;
}

static int close_container(struct parser *p)
{
        (void)token_pos(p);
        struct frame *f = &p->stack[--p->depth];
        free(TAKE_PTR(f->pending_key));
        if (f->container->type == JSON_OBJECT)
                return check_duplicates(p, f->container);
        return 1;
}

static int on_end_map(void *ctx)
{
        return close_container(ctx);
}

static int on_end_array(void *ctx)
{
        return close_container(ctx);
}

static const yajl_callbacks callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end_map,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end_array,
};

/* Turns yajl's own error into ours: its text without the "parse error: " noise, at the
 * token where the parser stopped. */
static void set_yajl_error(struct parser *p)
{
        unsigned char *text = yajl_get_error(p->handle, 0, NULL, 0);
        const char *msg = text ? (const char *)text : "syntax error";
        if (strncmp(msg, "parse error: ", 13) == 0)
                msg += 13;
        else if (strncmp(msg, "lexical error: ", 15) == 0)
                msg += 15;
        size_t start = skip_insignificant(p->buf, p->len, p->prev_end);
        struct json_pos pos = pos_at(p, start);
        size_t before = skip_blank(p->buf, p->len, p->prev_end, false);
        if (start >= p->len && p->len > 0)
                snprintf(p->err->msg, sizeof(p->err->msg),
                         "unexpected end of input (an object or array is not closed)");
        else if (before < start && p->buf[before] == ',' &&
                 (p->buf[start] == '}' || p->buf[start] == ']'))
                snprintf(p->err->msg, sizeof(p->err->msg),
                         "invalid JSON: trailing comma before \"%c\"", p->buf[start]);
        else
                snprintf(p->err->msg, sizeof(p->err->msg), "invalid JSON: %.*s",
                         (int)strcspn(msg, ".\n"), msg);
        p->err->pos = pos;
        if (text)
                yajl_free_error(p->handle, text);
}

int json_parse(const char *buf, size_t len, const struct json_limits *limits,
               struct json_value **ret, struct json_error *ret_err)
{
        struct json_error scratch;
        struct parser p = {
            .buf = buf,
            .len = len,
            .limits = limits,
            .cur_pos = {1, 1},
            .err = ret_err ? ret_err : &scratch,
        };
        *p.err = (struct json_error){0};

        /* A UTF-8 byte order mark, as some editors write, is not part of the text. */
        if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
                buf += 3;
                len -= 3;
                p.buf = buf;
                p.len = len;
        }
        if (len > limits->max_bytes) {
                set_error(p.err, (struct json_pos){0, 0},
                          "input is %zu bytes; the limit is %zu bytes", len, limits->max_bytes);
                return -EFBIG;
        }
        size_t bad = utf8_invalid_at(buf, len);
        if (bad < len) {
                set_error(p.err, pos_at(&p, bad), "invalid UTF-8 (byte 0x%02x)",
                          (unsigned char)buf[bad]);
                return -EINVAL;
        }
        if (skip_blank(buf, len, 0, false) >= len) {
                set_error(p.err, (struct json_pos){0, 0}, "empty input (no JSON value)");
                return -EINVAL;
        }

        p.stack = calloc(limits->max_depth + 1, sizeof(*p.stack));
        if (!p.stack)
                return -ENOMEM;
        p.handle = yajl_alloc(&callbacks, NULL, &p);
        if (!p.handle) {
                free(p.stack);
                return -ENOMEM;
        }
        yajl_config(p.handle, yajl_allow_comments, limits->allow_comments ? 1 : 0);

        yajl_status st = yajl_parse(p.handle, (const unsigned char *)buf, len);
        if (st == yajl_status_ok) {
                p.completing = true;
                st = yajl_complete_parse(p.handle);
        }

        int r = 0;
        if (st != yajl_status_ok) {
                if (!p.failed)
                        set_yajl_error(&p);
                r = -EINVAL;
        }
        yajl_free(p.handle);
        for (unsigned i = 0; i < p.depth; i++)
                free(p.stack[i].pending_key);
        free(p.stack);

        if (r < 0) {
                json_free(p.root);
                return r;
        }
        *ret = p.root;
        return 0;
}

int json_parse_err(const char *buf, size_t len, const struct json_limits *limits, const char *what,
                   struct json_value **ret, struct tn_err **err)
{
        struct json_error je;
        int r = json_parse(buf, len, limits, ret, &je);
        if (r == -ENOMEM)
                return tn_err_setx(err, ENOMEM, "out of memory");
        if (r < 0)
                return tn_err_setx(err, EINVAL, "%s at %u:%u: %s", what, je.pos.line, je.pos.col,
                                   je.msg);
        return 0;
}

void json_free(struct json_value *v)
{
        if (!v)
                return;
        switch (v->type) {
        case JSON_NUMBER:
        case JSON_STRING:
                free(v->u.str.text);
                break;
        case JSON_ARRAY:
                for (size_t i = 0; i < v->u.array.n; i++)
                        json_free(v->u.array.items[i]);
                free(v->u.array.items);
                break;
        case JSON_OBJECT:
                for (size_t i = 0; i < v->u.object.n; i++) {
                        free(v->u.object.items[i].key);
                        json_free(v->u.object.items[i].value);
                }
                free(v->u.object.items);
                break;
        case JSON_NULL:
        case JSON_BOOL:
                break;
        }
        free(v);
}

const char *json_type_name(enum json_type type)
{
        switch (type) {
        case JSON_NULL:
                return "null";
        case JSON_BOOL:
                return "a boolean";
        case JSON_NUMBER:
                return "a number";
        case JSON_STRING:
                return "a string";
        case JSON_ARRAY:
                return "an array";
        case JSON_OBJECT:
                return "an object";
        }
        return "an unknown value";
}

const struct json_value *json_get(const struct json_value *v, const char *key)
{
        if (!v || v->type != JSON_OBJECT)
                return NULL;
        for (size_t i = 0; i < v->u.object.n; i++)
                if (strcmp(v->u.object.items[i].key, key) == 0)
                        return v->u.object.items[i].value;
        return NULL;
}

bool json_number_int64(const struct json_value *v, int64_t *ret)
{
        if (!v || v->type != JSON_NUMBER || strpbrk(v->u.str.text, ".eE"))
                return false;
        char *end = NULL;
        errno = 0;
        long long n = strtoll(v->u.str.text, &end, 10);
        if (errno != 0 || !end || *end != '\0')
                return false;
        *ret = n;
        return true;
}

/* ---- generation ---- */

struct json_gen {
        yajl_gen gen;
        yajl_gen_status status;
        bool pretty;
        char *tidy; /* pretty output with empty containers collapsed */
};

struct json_gen *json_gen_new(bool pretty)
{
        struct json_gen *g = calloc(1, sizeof(*g));
        if (!g)
                return NULL;
        g->gen = yajl_gen_alloc(NULL);
        if (!g->gen) {
                free(g);
                return NULL;
        }
        yajl_gen_config(g->gen, yajl_gen_validate_utf8, 1);
        g->pretty = pretty;
        if (pretty) {
                yajl_gen_config(g->gen, yajl_gen_beautify, 1);
                yajl_gen_config(g->gen, yajl_gen_indent_string, "  ");
        }
        return g;
}

void json_gen_free(struct json_gen *g)
{
        if (!g)
                return;
        yajl_gen_free(g->gen);
        free(g->tidy);
        free(g);
}

static void gen_status(struct json_gen *g, yajl_gen_status st)
{
        if (g->status == yajl_gen_status_ok)
                g->status = st;
}

void json_gen_object_open(struct json_gen *g)
{
        gen_status(g, yajl_gen_map_open(g->gen));
}

void json_gen_object_close(struct json_gen *g)
{
        gen_status(g, yajl_gen_map_close(g->gen));
}

void json_gen_array_open(struct json_gen *g)
{
        gen_status(g, yajl_gen_array_open(g->gen));
}

void json_gen_array_close(struct json_gen *g)
{
        gen_status(g, yajl_gen_array_close(g->gen));
}

void json_gen_string_len(struct json_gen *g, const char *s, size_t len)
{
        gen_status(g, yajl_gen_string(g->gen, (const unsigned char *)s, len));
}

void json_gen_string(struct json_gen *g, const char *s)
{
        json_gen_string_len(g, s, strlen(s));
}

void json_gen_key(struct json_gen *g, const char *key)
{
        json_gen_string(g, key);
}

void json_gen_int(struct json_gen *g, int64_t n)
{
        gen_status(g, yajl_gen_integer(g->gen, n));
}

void json_gen_bool(struct json_gen *g, bool b)
{
        gen_status(g, yajl_gen_bool(g->gen, b));
}

void json_gen_null(struct json_gen *g)
{
        gen_status(g, yajl_gen_null(g->gen));
}

void json_gen_number(struct json_gen *g, const char *literal)
{
        gen_status(g, yajl_gen_number(g->gen, literal, strlen(literal)));
}

void json_gen_value(struct json_gen *g, const struct json_value *v)
{
        if (!v)
                return;
        /* depth-first, with an explicit stack */
        struct frame {
                const struct json_value *v;
                size_t i;
        } stack[32];
        size_t sp = 0;
        stack[sp++] = (struct frame){v, 0};
        bool opened[32] = {false};
        while (sp) {
                struct frame *f = &stack[sp - 1];
                const struct json_value *x = f->v;
                if (!x) {
                        sp--;
                        continue;
                }
                if (x->type == JSON_OBJECT || x->type == JSON_ARRAY) {
                        bool obj = x->type == JSON_OBJECT;
                        size_t n = obj ? x->u.object.n : x->u.array.n;
                        if (!opened[sp - 1]) {
                                obj ? json_gen_object_open(g) : json_gen_array_open(g);
                                opened[sp - 1] = true;
                        }
                        if (f->i == n || sp == 32) {
                                obj ? json_gen_object_close(g) : json_gen_array_close(g);
                                opened[--sp] = false;
                                continue;
                        }
                        const struct json_value *child;
                        if (obj) {
                                json_gen_key(g, x->u.object.items[f->i].key);
                                child = x->u.object.items[f->i].value;
                        } else {
                                child = x->u.array.items[f->i];
                        }
                        f->i++;
                        stack[sp] = (struct frame){child, 0};
                        opened[sp] = false;
                        sp++;
                        continue;
                }
                switch (x->type) {
                case JSON_NULL:
                        json_gen_null(g);
                        break;
                case JSON_BOOL:
                        json_gen_bool(g, x->u.boolean);
                        break;
                case JSON_NUMBER:
                        json_gen_number(g, x->u.str.text);
                        break;
                default:
                        json_gen_string_len(g, x->u.str.text, x->u.str.len);
                        break;
                }
                sp--;
        }
}

int json_gen_finish(struct json_gen *g, const char **ret_buf, size_t *ret_len)
{
        if (g->status != yajl_gen_status_ok)
                return -EINVAL;
        const unsigned char *buf;
        size_t len;
        if (yajl_gen_get_buf(g->gen, &buf, &len) != yajl_gen_status_ok)
                return -EINVAL;
        if (!g->pretty) {
                *ret_buf = (const char *)buf;
                *ret_len = len;
                return 0;
        }
        /* yajl's beautifier prints an empty container over three lines; collapse
         * "[<newline and spaces>]" to "[]". A raw newline never occurs inside a
         * generated string (it is escaped), so this cannot alter a value. */
        char *out = malloc(len + 1);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
                out[o++] = (char)buf[i];
                if (buf[i] != '[' && buf[i] != '{')
                        continue;
                size_t j = i + 1;
                while (j < len && (buf[j] == ' ' || buf[j] == '\n'))
                        j++;
                if (j < len && j > i + 1 && buf[j] == (buf[i] == '[' ? ']' : '}') &&
                    memchr(buf + i + 1, '\n', j - i - 1)) {
                        out[o++] = (char)buf[j];
                        i = j;
                }
        }
        out[o] = '\0';
        free(g->tidy);
        g->tidy = out;
        *ret_buf = out;
        *ret_len = o;
        return 0;
}

int json_gen_line(struct json_gen *g, size_t max, char **ret, size_t *ret_len)
{
        const char *buf;
        size_t len;
        int r = json_gen_finish(g, &buf, &len);
        if (r < 0)
                return r;
        if (len + 1 > max)
                return -EMSGSIZE;
        char *line = malloc(len + 2);
        if (!line)
                return -ENOMEM;
        memcpy(line, buf, len);
        line[len] = '\n';
        line[len + 1] = '\0';
        *ret = line;
        *ret_len = len + 1;
        return 0;
}
