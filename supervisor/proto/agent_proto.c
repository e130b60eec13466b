/* agent_proto.c — the tenantd <-> tenant-agent protocol: frame reader, typed decoders
 * and encoders (see agent_proto.h and docs/agent-protocol.md).
 *
 * Decoding is two steps: json_parse() with the agent limits (1 MiB, depth 8, strict
 * UTF-8, no NUL, no duplicate keys, no trailing bytes) builds a tree, then the code
 * here walks it with a list of allowed keys per message and a checked getter per field.
 * Encoders run the matching decoder over what they produced, so an end can never send
 * a frame the other end is bound to refuse. */
#include "proto/agent_proto.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/json.h"

/* ---- frame reader ---- */

#define READER_INITIAL (64 * 1024)

void agent_reader_init(struct agent_reader *r)
{
        *r = (struct agent_reader){0};
}

void agent_reader_free(struct agent_reader *r)
{
        free(r->buf);
        *r = (struct agent_reader){0};
}

/* Moves the unread bytes to the front and makes room for at least `want` more bytes
 * when the cap allows. Returns the free space at the end. */
static size_t reader_room(struct agent_reader *r, size_t want)
{
        if (r->start > 0) {
                memmove(r->buf, r->buf + r->start, r->len - r->start);
                r->len -= r->start;
                r->start = 0;
        }
        if (r->cap - r->len < want && r->cap < AGENT_FRAME_MAX) {
                size_t cap = r->cap ? r->cap : READER_INITIAL;
                while (cap - r->len < want && cap < AGENT_FRAME_MAX)
                        cap *= 2;
                if (cap > AGENT_FRAME_MAX)
                        cap = AGENT_FRAME_MAX;
                char *buf = realloc(r->buf, cap);
                if (buf) {
                        r->buf = buf;
                        r->cap = cap;
                }
        }
        return r->cap - r->len;
}

/* While discarding an oversized line, drops data up to and including the next
 * newline. Returns the bytes dropped. */
static size_t reader_discard(struct agent_reader *r, const char *data, size_t len)
{
        const char *nl = memchr(data, '\n', len);
        if (!nl)
                return len;
        r->discarding = false;
        return (size_t)(nl - data) + 1;
}

size_t agent_reader_feed(struct agent_reader *r, const void *data, size_t len)
{
        const char *p = data;
        size_t used = 0;
        if (r->discarding) {
                used = reader_discard(r, p, len);
                if (r->discarding || used == len)
                        return used;
        }
        size_t room = reader_room(r, len - used);
        size_t n = len - used < room ? len - used : room;
        if (n > 0)
                memcpy(r->buf + r->len, p + used, n);
        r->len += n;
        return used + n;
}

ssize_t agent_reader_fill(struct agent_reader *r, int fd)
{
        size_t room = reader_room(r, READER_INITIAL);
        if (room == 0)
                return -ENOBUFS; /* agent_reader_next() was not called */
        ssize_t n = read(fd, r->buf + r->len, room);
        if (n < 0)
                return -errno;
        if (r->discarding && n > 0) {
                size_t drop = reader_discard(r, r->buf + r->len, (size_t)n);
                memmove(r->buf + r->len, r->buf + r->len + drop, (size_t)n - drop);
                r->len += (size_t)n - drop;
                return n;
        }
        r->len += (size_t)n;
        return n;
}

enum agent_read agent_reader_next(struct agent_reader *r, const char **ret_line, size_t *ret_len)
{
        if (!r->buf)
                return AGENT_READ_NONE;
        size_t held = r->len - r->start;
        char *from = r->buf + r->start;
        char *nl = held > r->scanned ? memchr(from + r->scanned, '\n', held - r->scanned) : NULL;
        if (nl) {
                *ret_line = from;
                *ret_len = (size_t)(nl - from);
                r->start += *ret_len + 1;
                r->scanned = 0;
                if (r->start == r->len)
                        r->start = r->len = 0;
                return AGENT_READ_FRAME;
        }
        r->scanned = held;
        /* A frame is at most AGENT_FRAME_MAX bytes with its newline: as many bytes
         * without one cannot become a valid frame. Drop them and the rest of the line. */
        if (held >= AGENT_FRAME_MAX) {
                r->start = r->len = r->scanned = 0;
                r->discarding = true;
                return AGENT_READ_OVERSIZED;
        }
        return AGENT_READ_NONE;
}

/* ---- names ---- */

static const char *const op_names[] = {
    [AGENT_OP_HELLO] = "hello",   [AGENT_OP_SETUP] = "setup",       [AGENT_OP_START] = "start",
    [AGENT_OP_SIGNAL] = "signal", [AGENT_OP_EXEC] = "exec",         [AGENT_OP_STATS] = "stats",
    [AGENT_OP_HEALTH] = "health", [AGENT_OP_SHUTDOWN] = "shutdown", [AGENT_OP_STDIN] = "stdin",
    [AGENT_OP_RESIZE] = "resize", [AGENT_OP_CONSOLE] = "console",   [AGENT_OP_LIMITS] = "limits",
};

const char *agent_op_name(enum agent_op op)
{
        if ((unsigned)op >= ARRAY_SIZE(op_names))
                return NULL;
        return op_names[op];
}

static int op_from_name(const char *name)
{
        for (size_t i = 1; i < ARRAY_SIZE(op_names); i++)
                if (strcmp(op_names[i], name) == 0)
                        return (int)i;
        return -1;
}

/* ---- clearing ---- */

static void proc_clear(struct agent_proc *p)
{
        strv_free(p->argv);
        strv_free(p->env);
        free(p->groups);
        free(p->workdir);
        free(p->seccomp.notify);
        free(p->seccomp.refuse);
        *p = (struct agent_proc){0};
}

void agent_request_clear(struct agent_request *req)
{
        switch (req->op) {
        case AGENT_OP_SETUP:
                free(req->u.setup.hostname);
                for (size_t i = 0; i < req->u.setup.n_mounts; i++) {
                        free(req->u.setup.mounts[i].tag);
                        free(req->u.setup.mounts[i].target);
                }
                free(req->u.setup.mounts);
                for (size_t i = 0; i < req->u.setup.net.n_dns; i++)
                        free(req->u.setup.net.dns[i]);
                break;
        case AGENT_OP_START:
                proc_clear(&req->u.start);
                break;
        case AGENT_OP_EXEC:
                proc_clear(&req->u.exec.proc);
                free(req->u.exec.stdin_data);
                break;
        case AGENT_OP_STDIN:
                free(req->u.stdin.data);
                break;
        case AGENT_OP_CONSOLE:
                proc_clear(&req->u.console.proc);
                break;
        case AGENT_OP_HEALTH:
                strv_free(req->u.health.argv);
                free(req->u.health.path);
                break;
        default:
                break;
        }
        *req = (struct agent_request){0};
}

void agent_reply_clear(struct agent_reply *reply)
{
        free(reply->error);
        if (reply->ok && reply->op == AGENT_OP_HELLO) {
                free(reply->u.hello.agent);
                free(reply->u.hello.kernel);
        } else if (reply->ok && reply->op == AGENT_OP_HEALTH) {
                free(reply->u.health.detail);
        }
        *reply = (struct agent_reply){0};
}

void agent_event_clear(struct agent_event *ev)
{
        free(ev->data);
        free(ev->calls);
        *ev = (struct agent_event){0};
}

void agent_msg_clear(struct agent_msg *msg)
{
        agent_reply_clear(&msg->reply);
        agent_event_clear(&msg->event);
        msg->is_event = false;
}

/* ---- field checks ---- */

/* A key or value quoted in an error message: ASCII only (a cut could split a UTF-8
 * sequence), control characters replaced, at most 48 bytes. */
struct quoted {
        char s[56];
};

static struct quoted quote(const char *s)
{
        struct quoted q;
        size_t o = 0;
        for (size_t i = 0; s[i] && o < 48; i++) {
                unsigned char c = (unsigned char)s[i];
                q.s[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        if (strlen(s) > 48) {
                memcpy(q.s + o, "...", 3);
                o += 3;
        }
        q.s[o] = '\0';
        return q;
}

static bool has_control(const char *s, size_t len)
{
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return true;
        return false;
}

/* Every member of obj must be named in `allowed` (NULL-terminated). */
static int check_keys(const struct json_value *obj, const char *const *allowed, const char *where,
                      struct tn_err **err)
{
        for (size_t i = 0; i < obj->u.object.n; i++) {
                const char *key = obj->u.object.items[i].key;
                bool known = false;
                for (const char *const *a = allowed; *a && !known; a++)
                        known = strcmp(*a, key) == 0;
                if (!known)
                        return tn_err_setx(err, EINVAL, "unknown key \"%s\"%s%s", quote(key).s,
                                           where ? " in " : "", where ? where : "");
        }
        return 0;
}

/* Getters: return 1 when the key is present and valid, 0 when absent and optional,
 * negative on error (absent but required included). */
static int need(const struct json_value *v, const char *key, bool required, enum json_type type,
                struct tn_err **err)
{
        if (!v)
                return required ? tn_err_setx(err, EINVAL, "missing key \"%s\"", key) : 0;
        if (v->type != type)
                return tn_err_setx(err, EINVAL, "\"%s\" must be %s, not %s", key,
                                   json_type_name(type), json_type_name(v->type));
        return 1;
}

static int get_uint(const struct json_value *obj, const char *key, bool required, uint64_t min,
                    uint64_t max, uint64_t *ret, struct tn_err **err)
{
        const struct json_value *v = json_get(obj, key);
        int r = need(v, key, required, JSON_NUMBER, err);
        if (r <= 0)
                return r;
        int64_t n;
        if (!json_number_int64(v, &n) || n < 0 || (uint64_t)n < min || (uint64_t)n > max)
                return tn_err_setx(err, EINVAL,
                                   "\"%s\" must be an integer from %" PRIu64 " to %" PRIu64, key,
                                   min, max);
        *ret = (uint64_t)n;
        return 1;
}

static int get_u32(const struct json_value *obj, const char *key, bool required, uint32_t min,
                   uint32_t max, uint32_t *ret, struct tn_err **err)
{
        uint64_t n = 0;
        int r = get_uint(obj, key, required, min, max, &n, err);
        if (r > 0)
                *ret = (uint32_t)n;
        return r;
}

static int get_bool(const struct json_value *obj, const char *key, bool required, bool *ret,
                    struct tn_err **err)
{
        const struct json_value *v = json_get(obj, key);
        int r = need(v, key, required, JSON_BOOL, err);
        if (r > 0)
                *ret = v->u.boolean;
        return r;
}

/* A string of min..max bytes; `text` also refuses control characters. Returns the
 * tree's own text through *ret (not a copy). */
static int peek_string(const struct json_value *v, const char *key, bool required, size_t min,
                       size_t max, bool text, const char **ret, struct tn_err **err)
{
        int r = need(v, key, required, JSON_STRING, err);
        if (r <= 0)
                return r;
        if (v->u.str.len < min || v->u.str.len > max)
                return tn_err_setx(err, EINVAL, "\"%s\" must be %zu to %zu bytes long", key, min,
                                   max);
        if (text && has_control(v->u.str.text, v->u.str.len))
                return tn_err_setx(err, EINVAL, "\"%s\" contains a control character", key);
        *ret = v->u.str.text;
        return 1;
}

static int get_string(const struct json_value *obj, const char *key, bool required, size_t min,
                      size_t max, bool text, char **ret, struct tn_err **err)
{
        const char *s = "";
        int r = peek_string(json_get(obj, key), key, required, min, max, text, &s, err);
        if (r <= 0)
                return r;
        char *copy = strdup(s);
        if (!copy)
                return tn_err_setx(err, ENOMEM, "out of memory");
        free(*ret);
        *ret = copy;
        return 1;
}

static int get_array(const struct json_value *obj, const char *key, bool required, size_t min,
                     size_t max, const struct json_value **ret, struct tn_err **err)
{
        const struct json_value *v = json_get(obj, key);
        int r = need(v, key, required, JSON_ARRAY, err);
        if (r <= 0)
                return r;
        if (v->u.array.n < min || v->u.array.n > max)
                return tn_err_setx(err, EINVAL, "\"%s\" must have %zu to %zu items", key, min, max);
        *ret = v;
        return 1;
}

/* An argv: min..AGENT_ARGV_MAX strings of at most AGENT_STRING_MAX bytes; the first
 * one not empty. */
static int get_argv(const struct json_value *obj, const char *key, char ***ret, size_t *ret_n,
                    struct tn_err **err)
{
        const struct json_value *a = NULL;
        int r = get_array(obj, key, true, 1, AGENT_ARGV_MAX, &a, err);
        if (r <= 0)
                return r;
        _cleanup_strv_free_ char **argv = calloc(a->u.array.n + 1, sizeof(char *));
        if (!argv)
                return tn_err_setx(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < a->u.array.n; i++) {
                const char *s = "";
                r = peek_string(a->u.array.items[i], key, true, i == 0 ? 1 : 0, AGENT_STRING_MAX,
                                false, &s, err);
                if (r < 0)
                        return tn_err_wrap(err, "item %zu", i);
                argv[i] = strdup(s);
                if (!argv[i])
                        return tn_err_setx(err, ENOMEM, "out of memory");
        }
        *ret_n = a->u.array.n;
        *ret = TAKE_PTR(argv);
        return 1;
}

/* An absolute path in canonical form: "/" or "/a/b", no empty, "." or ".." component,
 * no trailing "/", no control character. */
static bool path_is_canonical(const char *p)
{
        size_t len = strlen(p);
        if (len == 0 || len > AGENT_STRING_MAX || p[0] != '/' || has_control(p, len))
                return false;
        if (len == 1)
                return true;
        if (p[len - 1] == '/')
                return false;
        for (const char *c = p + 1;;) {
                size_t n = strcspn(c, "/");
                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                if (!c[n])
                        return true;
                c += n + 1;
        }
}

static int get_path(const struct json_value *obj, const char *key, bool required, char **ret,
                    struct tn_err **err)
{
        const char *s = "";
        int r = peek_string(json_get(obj, key), key, required, 1, AGENT_STRING_MAX, true, &s, err);
        if (r <= 0)
                return r;
        if (!path_is_canonical(s))
                return tn_err_setx(err, EINVAL,
                                   "\"%s\" must be an absolute path without \"//\", \".\", \"..\" "
                                   "or a trailing \"/\"",
                                   key);
        return get_string(obj, key, required, 1, AGENT_STRING_MAX, true, ret, err);
}

static bool env_name_valid(const char *s)
{
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
                return false;
        for (s++; *s; s++)
                if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                      (*s >= '0' && *s <= '9') || *s == '_'))
                        return false;
        return true;
}

static int get_env(const struct json_value *obj, char ***ret, size_t *ret_n, struct tn_err **err)
{
        const struct json_value *e = json_get(obj, "env");
        int r = need(e, "env", false, JSON_OBJECT, err);
        size_t n = r > 0 ? e->u.object.n : 0;
        if (r < 0)
                return r;
        if (n > AGENT_ENV_MAX)
                return tn_err_setx(err, EINVAL, "\"env\" must have at most %d entries",
                                   AGENT_ENV_MAX);
        _cleanup_strv_free_ char **env = calloc(n + 1, sizeof(char *));
        if (!env)
                return tn_err_setx(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                const struct json_member *m = &e->u.object.items[i];
                if (strlen(m->key) > 256 || !env_name_valid(m->key))
                        return tn_err_setx(err, EINVAL,
                                           "\"env\": \"%s\" is not a variable name "
                                           "([A-Za-z_][A-Za-z0-9_]*, at most 256 bytes)",
                                           quote(m->key).s);
                const char *val = "";
                r = peek_string(m->value, m->key, true, 0, AGENT_STRING_MAX, false, &val, err);
                if (r < 0)
                        return tn_err_wrap(err, "env");
                if (asprintf(&env[i], "%s=%s", m->key, val) < 0) {
                        env[i] = NULL;
                        return tn_err_setx(err, ENOMEM, "out of memory");
                }
        }
        *ret = TAKE_PTR(env);
        *ret_n = n;
        return 0;
}

/* uid and gid 4294967295 are (uid_t)-1, "no change" to setresuid(): refused. */
#define ID_MAX 4294967294u

static int get_proc(const struct json_value *obj, bool with_groups, struct agent_proc *ret,
                    struct tn_err **err)
{
        struct agent_proc p = {0};
        int r = get_argv(obj, "argv", &p.argv, &p.argc, err);
        if (r >= 0)
                r = get_env(obj, &p.env, &p.n_env, err);
        if (r >= 0)
                r = get_u32(obj, "uid", true, 0, ID_MAX, &p.uid, err);
        if (r >= 0)
                r = get_u32(obj, "gid", true, 0, ID_MAX, &p.gid, err);
        const struct json_value *g = NULL;
        if (r >= 0 && with_groups)
                r = get_array(obj, "groups", false, 0, AGENT_GROUPS_MAX, &g, err);
        if (r >= 0 && g && g->u.array.n > 0) {
                p.groups = calloc(g->u.array.n, sizeof(*p.groups));
                if (!p.groups)
                        r = tn_err_setx(err, ENOMEM, "out of memory");
                for (size_t i = 0; r >= 0 && i < g->u.array.n; i++) {
                        int64_t n;
                        if (g->u.array.items[i]->type != JSON_NUMBER ||
                            !json_number_int64(g->u.array.items[i], &n) || n < 0 || n > ID_MAX)
                                r = tn_err_setx(err, EINVAL,
                                                "\"groups\" item %zu must be an integer from 0 "
                                                "to %u",
                                                i, ID_MAX);
                        else
                                p.groups[p.n_groups++] = (uint32_t)n;
                }
        }
        if (r >= 0)
                r = get_path(obj, "workdir", false, &p.workdir, err);
        if (r == 0) {
                p.workdir = strdup("/");
                if (!p.workdir)
                        r = tn_err_setx(err, ENOMEM, "out of memory");
        }
        if (r < 0) {
                proc_clear(&p);
                return r;
        }
        *ret = p;
        return 0;
}

/* ---- requests ---- */

static bool hostname_valid(const char *s)
{
        size_t len = strlen(s);
        if (len == 0 || len > AGENT_HOSTNAME_MAX)
                return false;
        for (const char *label = s;;) {
                size_t n = strcspn(label, ".");
                if (n == 0 || n > 63 || label[0] == '-' || label[n - 1] == '-')
                        return false;
                for (size_t i = 0; i < n; i++) {
                        char c = label[i];
                        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') || c == '-'))
                                return false;
                }
                if (!label[n])
                        return true;
                label += n + 1;
        }
}

static bool tag_valid(const char *s)
{
        size_t len = strlen(s);
        if (len == 0 || len > AGENT_TAG_MAX)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
                        return false;
        return true;
}

static const char *const mount_keys[] = {"tag",    "target", "fstype", "readonly",
                                         "noexec", "size",   NULL};

/* The keys of one kind only: a share has a tag and no size, a tmpfs a size and no tag
 * (both may be noexec). A key of the other kind is an error, never ignored. */
static int check_mount_kind(const struct json_value *m, enum agent_fstype fs, struct tn_err **err)
{
        static const char *const share_only[] = {"tag"};
        static const char *const tmpfs_only[] = {"size"};
        bool tmpfs = fs == AGENT_FS_TMPFS;
        const char *const *wrong = tmpfs ? share_only : tmpfs_only;
        size_t n = tmpfs ? ARRAY_SIZE(share_only) : ARRAY_SIZE(tmpfs_only);
        for (size_t i = 0; i < n; i++)
                if (json_get(m, wrong[i]))
                        return tn_err_setx(err, EINVAL, "a %s mount has no \"%s\"",
                                           tmpfs ? "tmpfs" : "share", wrong[i]);
        return 0;
}

static int decode_fstype(const struct json_value *m, enum agent_fstype *ret, struct tn_err **err)
{
        const char *fs = "";
        int r = peek_string(json_get(m, "fstype"), "fstype", true, 1, 16, true, &fs, err);
        if (r < 0)
                return r;
        if (strcmp(fs, "virtiofs") == 0)
                *ret = AGENT_FS_VIRTIOFS;
        else if (strcmp(fs, "9p") == 0)
                *ret = AGENT_FS_9P;
        else if (strcmp(fs, "tmpfs") == 0)
                *ret = AGENT_FS_TMPFS;
        else
                return tn_err_setx(err, EINVAL,
                                   "\"fstype\" must be \"virtiofs\", \"9p\" or \"tmpfs\"");
        return 0;
}

static int decode_mount(const struct json_value *m, size_t index, struct agent_mount *ret,
                        struct tn_err **err)
{
        if (m->type != JSON_OBJECT)
                return tn_err_setx(err, EINVAL, "\"mounts\" item %zu must be an object", index);
        int r = check_keys(m, mount_keys, NULL, err);
        if (r >= 0)
                r = decode_fstype(m, &ret->fstype, err);
        if (r >= 0)
                r = check_mount_kind(m, ret->fstype, err);
        bool tmpfs = ret->fstype == AGENT_FS_TMPFS;
        if (r >= 0 && !tmpfs)
                r = get_string(m, "tag", true, 1, AGENT_TAG_MAX, true, &ret->tag, err);
        if (r >= 0 && !tmpfs && !tag_valid(ret->tag))
                r = tn_err_setx(err, EINVAL, "\"tag\" must be 1 to %d of [A-Za-z0-9._-]",
                                AGENT_TAG_MAX);
        if (r >= 0)
                r = get_path(m, "target", true, &ret->target, err);
        if (r >= 0)
                r = get_bool(m, "readonly", false, &ret->readonly, err);
        if (r >= 0 && tmpfs)
                r = get_uint(m, "size", true, AGENT_TMPFS_SIZE_MIN, AGENT_TMPFS_SIZE_MAX,
                             &ret->size, err);
        if (r >= 0)
                r = get_bool(m, "noexec", false, &ret->noexec, err);
        /* The root share: tag "root" is the one and only mount at "/". */
        bool root_tag = r >= 0 && !tmpfs && strcmp(ret->tag, "root") == 0;
        if (r >= 0 && root_tag != (strcmp(ret->target, "/") == 0))
                r = tn_err_setx(err, EINVAL, "only the share tagged \"root\" mounts at \"/\"");
        if (r >= 0 && root_tag && index != 0)
                r = tn_err_setx(err, EINVAL, "the \"root\" share must be the first mount");
        if (r < 0)
                return tn_err_wrap(err, "mounts[%zu]", index);
        return 0;
}

static int parse_ipv4(const char *s, struct in_addr *ret)
{
        /* inet_pton takes exactly dotted quads: no octal, no short forms. */
        return inet_pton(AF_INET, s, ret) == 1 ? 0 : -EINVAL;
}

static const char *const net_keys[] = {"address", "gateway", "address6", "gateway6", "dns", NULL};

/* "address6": an IPv6 "ADDR/N", N 1..128; "gateway6": an IPv6 address, only with it. */
static int decode_net6(const struct json_value *n, struct agent_net *ret, struct tn_err **err)
{
        const char *s = "";
        int r = peek_string(json_get(n, "address6"), "address6", false, 4, 43, true, &s, err);
        if (r <= 0) {
                if (r == 0 && json_get(n, "gateway6"))
                        return tn_err_setx(err, EINVAL, "net: \"gateway6\" needs \"address6\"");
                return r;
        }
        char addr[INET6_ADDRSTRLEN];
        const char *slash = strchr(s, '/');
        char *end = NULL;
        unsigned long prefix = slash ? strtoul(slash + 1, &end, 10) : 0;
        if (!slash || (size_t)(slash - s) >= sizeof(addr) || slash[1] < '1' || slash[1] > '9' ||
            *end || prefix < 1 || prefix > 128)
                return tn_err_setx(err, EINVAL, "net: \"address6\" must be an IPv6 ADDR/N");
        memcpy(addr, s, (size_t)(slash - s));
        addr[slash - s] = '\0';
        if (inet_pton(AF_INET6, addr, &ret->address6) != 1)
                return tn_err_setx(err, EINVAL, "net: \"address6\" must be an IPv6 ADDR/N");
        ret->prefix6 = (unsigned)prefix;
        ret->has_address6 = true;
        r = peek_string(json_get(n, "gateway6"), "gateway6", false, 2, 39, true, &s, err);
        if (r > 0 && inet_pton(AF_INET6, s, &ret->gateway6) != 1)
                return tn_err_setx(err, EINVAL, "net: \"gateway6\" must be an IPv6 address");
        ret->has_gateway6 = r > 0;
        return r < 0 ? r : 0;
}

static int decode_net(const struct json_value *n, struct agent_net *ret, struct tn_err **err)
{
        int r = check_keys(n, net_keys, "\"net\"", err);
        if (r < 0)
                return r;
        const char *s = "";
        r = peek_string(json_get(n, "address"), "address", true, 9, 18, true, &s, err);
        if (r < 0)
                return tn_err_wrap(err, "net");
        char addr[19];
        const char *slash = strchr(s, '/');
        char *end = NULL;
        unsigned long prefix = slash ? strtoul(slash + 1, &end, 10) : 99;
        if (!slash || (size_t)(slash - s) >= sizeof(addr) || slash[1] < '0' || slash[1] > '9' ||
            *end || prefix > 32 || (slash[1] == '0' && slash[2]))
                return tn_err_setx(err, EINVAL, "net: \"address\" must be an IPv4 A.B.C.D/N");
        memcpy(addr, s, (size_t)(slash - s));
        addr[slash - s] = '\0';
        if (parse_ipv4(addr, &ret->address) < 0)
                return tn_err_setx(err, EINVAL, "net: \"address\" must be an IPv4 A.B.C.D/N");
        ret->prefix = (unsigned)prefix;
        r = peek_string(json_get(n, "gateway"), "gateway", false, 7, 15, true, &s, err);
        if (r < 0)
                return tn_err_wrap(err, "net");
        if (r > 0 && parse_ipv4(s, &ret->gateway) < 0)
                return tn_err_setx(err, EINVAL, "net: \"gateway\" must be an IPv4 address");
        ret->has_gateway = r > 0;
        r = decode_net6(n, ret, err);
        if (r < 0)
                return tn_err_wrap(err, "net");
        const struct json_value *dns = NULL;
        r = get_array(n, "dns", false, 0, AGENT_DNS_MAX, &dns, err);
        if (r < 0)
                return tn_err_wrap(err, "net");
        for (size_t i = 0; r > 0 && i < dns->u.array.n; i++) {
                unsigned char buf[sizeof(struct in6_addr)];
                if (peek_string(dns->u.array.items[i], "dns", true, 2, 45, true, &s, err) < 0)
                        return tn_err_wrap(err, "net");
                if (inet_pton(AF_INET, s, buf) != 1 && inet_pton(AF_INET6, s, buf) != 1)
                        return tn_err_setx(err, EINVAL,
                                           "net: \"dns\" item %zu is not an IP address", i);
                ret->dns[i] = strdup(s);
                if (!ret->dns[i])
                        return tn_err_setx(err, ENOMEM, "out of memory");
                ret->n_dns = i + 1;
        }
        return 0;
}

static int decode_setup(const struct json_value *root, struct agent_setup *ret, struct tn_err **err)
{
        int r =
            get_string(root, "hostname", false, 1, AGENT_HOSTNAME_MAX, true, &ret->hostname, err);
        if (r < 0)
                return r;
        if (r > 0 && !hostname_valid(ret->hostname))
                return tn_err_setx(err, EINVAL,
                                   "\"hostname\" must be dot-separated labels of [A-Za-z0-9-]");
        const struct json_value *mounts = NULL;
        r = get_array(root, "mounts", false, 0, AGENT_MOUNTS_MAX, &mounts, err);
        if (r < 0)
                return r;
        if (r > 0 && mounts && mounts->u.array.n > 0) {
                ret->mounts = calloc(mounts->u.array.n, sizeof(*ret->mounts));
                if (!ret->mounts)
                        return tn_err_setx(err, ENOMEM, "out of memory");
                for (size_t i = 0; i < mounts->u.array.n; i++) {
                        ret->n_mounts = i + 1;
                        r = decode_mount(mounts->u.array.items[i], i, &ret->mounts[i], err);
                        if (r < 0)
                                return r;
                        const struct agent_mount *mi = &ret->mounts[i];
                        if (!mi->target || (!mi->tag) != (mi->fstype == AGENT_FS_TMPFS))
                                return -EINVAL; /* cannot happen: decode_mount checked */
                        for (size_t k = 0; k < i; k++) {
                                const struct agent_mount *mk = &ret->mounts[k];
                                if (strcmp(mk->target, mi->target) == 0 ||
                                    (mk->tag && mi->tag && strcmp(mk->tag, mi->tag) == 0))
                                        return tn_err_setx(err, EINVAL,
                                                           "mounts[%zu]: tag or target repeats "
                                                           "mounts[%zu]",
                                                           i, k);
                        }
                }
        }
        const struct json_value *net = json_get(root, "net");
        r = need(net, "net", false, JSON_OBJECT, err);
        if (r > 0) {
                ret->has_net = true;
                r = decode_net(net, &ret->net, err);
        }
        if (r >= 0)
                r = get_u32(root, "pids_max", false, 1, AGENT_PIDS_MAX, &ret->pids_max, err);
        return r < 0 ? r : 0;
}

bool agent_http_path_ok(const char *path, size_t len)
{
        if (!path || len == 0 || len > AGENT_HEALTH_PATH_MAX || path[0] != '/' ||
            strnlen(path, len) != len || has_control(path, len))
                return false;
        return memchr(path, ' ', len) == NULL;
}

int agent_http_status(const char *buf, size_t len)
{
        static const char pre[] = "HTTP/";
        size_t p = sizeof(pre) - 1;
        if (len < p + 7 || memcmp(buf, pre, p) != 0)
                return -1;
        const char *v = buf + p; /* "1.1 200" */
        if (!isdigit((unsigned char)v[0]) || v[1] != '.' || !isdigit((unsigned char)v[2]) ||
            v[3] != ' ')
                return -1;
        const char *c = v + 4;
        if (!isdigit((unsigned char)c[0]) || !isdigit((unsigned char)c[1]) ||
            !isdigit((unsigned char)c[2]))
                return -1;
        size_t end = p + 7;
        if (end < len && buf[end] != ' ' && buf[end] != '\r' && buf[end] != '\n')
                return -1;
        int code = (c[0] - '0') * 100 + (c[1] - '0') * 10 + (c[2] - '0');
        return code >= 100 && code <= 599 ? code : -1;
}

static int decode_health(const struct json_value *root, struct agent_health *ret,
                         struct tn_err **err)
{
        bool tcp = json_get(root, "tcp") != NULL, http = json_get(root, "http") != NULL,
             exec = json_get(root, "exec") != NULL;
        if (tcp + http + exec != 1)
                return tn_err_setx(err, EINVAL,
                                   "health needs exactly one of \"tcp\", \"http\" and \"exec\"");
        if (!http && json_get(root, "path"))
                return tn_err_setx(err, EINVAL, "\"path\" goes only with \"http\"");
        int r;
        if (tcp || http) {
                uint32_t port = 0;
                r = get_u32(root, tcp ? "tcp" : "http", true, 1, 65535, &port, err);
                ret->kind = tcp ? AGENT_HEALTH_TCP : AGENT_HEALTH_HTTP;
                ret->port = (uint16_t)port;
                const char *path = NULL;
                if (r >= 0 && http)
                        r = peek_string(json_get(root, "path"), "path", true, 1,
                                        AGENT_HEALTH_PATH_MAX, true, &path, err);
                if (r >= 0 && http && (!path || !agent_http_path_ok(path, strlen(path))))
                        return tn_err_setx(err, EINVAL,
                                           "\"path\" must start with '/' and hold no space");
                if (r >= 0 && http && !(ret->path = strdup(path)))
                        return tn_err_setx(err, ENOMEM, "out of memory");
        } else {
                r = get_argv(root, "exec", &ret->argv, &ret->argc, err);
                ret->kind = AGENT_HEALTH_EXEC;
        }
        ret->timeout_ms = AGENT_HEALTH_TIMEOUT_DEFAULT_MS;
        if (r >= 0)
                r = get_u32(root, "timeout_ms", false, 1, AGENT_TIMEOUT_MAX_MS, &ret->timeout_ms,
                            err);
        return r < 0 ? r : 0;
}

static int get_winsize(const struct json_value *root, uint16_t *rows, uint16_t *cols,
                       struct tn_err **err)
{
        uint32_t r32 = 0, c32 = 0;
        int r = get_u32(root, "rows", true, 1, 65535, &r32, err);
        if (r >= 0)
                r = get_u32(root, "cols", true, 1, 65535, &c32, err);
        *rows = (uint16_t)r32;
        *cols = (uint16_t)c32;
        return r < 0 ? r : 0;
}

static int decode_exec(const struct json_value *root, struct agent_exec *ret, struct tn_err **err)
{
        int r = get_u32(root, "session", true, 1, UINT32_MAX, &ret->session, err);
        if (r >= 0)
                r = get_proc(root, false, &ret->proc, err);
        if (r >= 0)
                r = get_bool(root, "stdin_open", false, &ret->stdin_open, err);
        if (r >= 0)
                r = get_bool(root, "tty", false, &ret->tty, err);
        if (r >= 0 && ret->tty)
                r = get_winsize(root, &ret->rows, &ret->cols, err);
        else if (r >= 0 && (json_get(root, "rows") || json_get(root, "cols")))
                return tn_err_setx(err, EINVAL, "\"rows\" and \"cols\" go only with \"tty\"");
        if (r >= 0 && ret->tty)
                ret->stdin_open = true; /* what is typed goes to the terminal */
        const char *in = "";
        if (r >= 0)
                r = peek_string(json_get(root, "stdin"), "stdin", false, 0, AGENT_FRAME_MAX, false,
                                &in, err);
        if (r > 0 && ret->stdin_open)
                return tn_err_setx(err, EINVAL,
                                   "\"stdin\" goes with neither \"stdin_open\" nor \"tty\"");
        if (r > 0) {
                ret->has_stdin = true;
                r = agent_base64_decode(in, strlen(in), &ret->stdin_data, &ret->stdin_len,
                                        AGENT_DATA_MAX);
                if (r == -ENOMEM)
                        return tn_err_setx(err, ENOMEM, "out of memory");
                if (r < 0)
                        return tn_err_setx(err, EINVAL,
                                           "\"stdin\" must be padded base64 of at most %d bytes",
                                           AGENT_DATA_MAX);
        }
        return r < 0 ? r : 0;
}

static int decode_stdin(const struct json_value *root, struct agent_stdin *ret, struct tn_err **err)
{
        int r = get_u32(root, "session", true, 1, UINT32_MAX, &ret->session, err);
        if (r >= 0)
                r = get_bool(root, "eof", false, &ret->eof, err);
        const char *in = "";
        int has_data = 0;
        if (r >= 0)
                r = has_data = peek_string(json_get(root, "data"), "data", false, 1,
                                           AGENT_FRAME_MAX, false, &in, err);
        if (r < 0)
                return r;
        if (!has_data && !ret->eof)
                return tn_err_setx(err, EINVAL, "stdin needs \"data\", \"eof\":true or both");
        if (has_data) {
                r = agent_base64_decode(in, strlen(in), &ret->data, &ret->len, AGENT_DATA_MAX);
                if (r == -ENOMEM)
                        return tn_err_setx(err, ENOMEM, "out of memory");
                if (r < 0 || ret->len == 0)
                        return tn_err_setx(err, EINVAL,
                                           "\"data\" must be padded base64 of 1 to %d bytes",
                                           AGENT_DATA_MAX);
        }
        return 0;
}

/* Keys each request may carry besides "v", "id" and "op". */
/* An integer item of an array: 0..max. */
static bool item_uint(const struct json_value *v, uint64_t max, uint64_t *ret)
{
        int64_t n;
        if (v->type != JSON_NUMBER || !json_number_int64(v, &n) || n < 0 || (uint64_t)n > max)
                return false;
        *ret = (uint64_t)n;
        return true;
}

/* A pair [A, B] of integers A in 0..max_a, B in min_b..max_b. */
static bool item_pair(const struct json_value *v, uint64_t max_a, uint64_t min_b, uint64_t max_b,
                      uint64_t *ret_a, uint64_t *ret_b)
{
        return v->type == JSON_ARRAY && v->u.array.n == 2 &&
               item_uint(v->u.array.items[0], max_a, ret_a) &&
               item_uint(v->u.array.items[1], max_b, ret_b) && *ret_b >= min_b;
}

static const char *const seccomp_keys[] = {"notify", "learn", "refuse", NULL};

/* start's "seccomp": {"notify":[NR...]} or {"learn":true,"refuse":[[NR,ERRNO]...]}. */
static int decode_seccomp(const struct json_value *v, struct agent_seccomp *ret,
                          struct tn_err **err)
{
        if (!v)
                return 0;
        if (v->type != JSON_OBJECT)
                return tn_err_setx(err, EINVAL, "\"seccomp\" must be an object");
        int r = check_keys(v, seccomp_keys, "\"seccomp\"", err);
        if (r >= 0)
                r = get_bool(v, "learn", false, &ret->learn, err);
        const struct json_value *a = NULL;
        if (r >= 0)
                r = get_array(v, ret->learn ? "refuse" : "notify", !ret->learn, ret->learn ? 0 : 1,
                              AGENT_NR_MAX, &a, err);
        if (r >= 0 && json_get(v, ret->learn ? "notify" : "refuse"))
                r = tn_err_setx(err, EINVAL,
                                "\"seccomp\" has \"notify\" without \"learn\", \"refuse\" only "
                                "with \"learn\":true");
        if (r < 0)
                return r;
        ret->set = true;
        if (!a || a->u.array.n == 0)
                return 0;
        bool seen[AGENT_NR_MAX] = {0};
        if (ret->learn) {
                ret->refuse = calloc(a->u.array.n, sizeof(*ret->refuse));
                if (!ret->refuse)
                        return tn_err_setx(err, ENOMEM, "out of memory");
        } else {
                ret->notify = calloc(a->u.array.n, sizeof(*ret->notify));
                if (!ret->notify)
                        return tn_err_setx(err, ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < a->u.array.n; i++) {
                uint64_t nr = 0, e = 0;
                bool ok = ret->learn
                              ? item_pair(a->u.array.items[i], AGENT_NR_MAX - 1, 1, 4095, &nr, &e)
                              : item_uint(a->u.array.items[i], AGENT_NR_MAX - 1, &nr);
                if (!ok || seen[nr]) {
                        int ret_r = tn_err_setx(
                            err, EINVAL,
                            ret->learn ? "\"refuse\" item %zu must be [NR, ERRNO], NR 0 to %d "
                                         "and not repeated, ERRNO 1 to 4095"
                                       : "\"notify\" item %zu must be a system call number from 0 "
                                         "to %d, not repeated",
                            i, AGENT_NR_MAX - 1);
                        free(TAKE_PTR(ret->notify));
                        free(TAKE_PTR(ret->refuse));
                        *ret = (struct agent_seccomp){0};
                        return ret_r;
                }
                seen[nr] = true;
                if (ret->learn)
                        ret->refuse[ret->n_refuse++] =
                            (struct agent_errno_rule){.nr = (uint16_t)nr, .err = (uint16_t)e};
        }
        /* notify: kept sorted (the order the agent's filter tests them in). */
        for (size_t nr = 0; !ret->learn && nr < AGENT_NR_MAX; nr++)
                if (seen[nr])
                        ret->notify[ret->n_notify++] = (uint16_t)nr;
        return 0;
}

static const char *const *request_keys(enum agent_op op)
{
        static const char *const none[] = {"v", "id", "op", NULL};
        static const char *const setup[] = {"v",      "id",  "op",       "hostname",
                                            "mounts", "net", "pids_max", NULL};
        static const char *const start[] = {"v",   "id",     "op",      "argv",    "env", "uid",
                                            "gid", "groups", "workdir", "seccomp", NULL};
        static const char *const signal[] = {"v", "id", "op", "session", "signal", NULL};
        static const char *const exec[] = {"v",   "id",   "op",   "session",    "argv",
                                           "env", "uid",  "gid",  "workdir",    "stdin",
                                           "tty", "rows", "cols", "stdin_open", NULL};
        static const char *const stdin_keys[] = {"v", "id", "op", "session", "data", "eof", NULL};
        static const char *const resize[] = {"v", "id", "op", "session", "rows", "cols", NULL};
        static const char *const console[] = {"v",   "id",      "op",   "argv", "env", "uid",
                                              "gid", "workdir", "rows", "cols", NULL};
        static const char *const health[] = {"v",    "id",   "op",         "tcp", "http",
                                             "path", "exec", "timeout_ms", NULL};
        static const char *const shutdown[] = {"v", "id", "op", "timeout_ms", NULL};
        static const char *const limits[] = {"v", "id", "op", "pids_max", NULL};
        switch (op) {
        case AGENT_OP_SETUP:
                return setup;
        case AGENT_OP_START:
                return start;
        case AGENT_OP_SIGNAL:
                return signal;
        case AGENT_OP_EXEC:
                return exec;
        case AGENT_OP_STDIN:
                return stdin_keys;
        case AGENT_OP_RESIZE:
                return resize;
        case AGENT_OP_CONSOLE:
                return console;
        case AGENT_OP_HEALTH:
                return health;
        case AGENT_OP_SHUTDOWN:
                return shutdown;
        case AGENT_OP_LIMITS:
                return limits;
        default:
                return none;
        }
}

static int parse_frame(const char *line, size_t len, struct json_value **ret, struct tn_err **err)
{
        struct json_error je;
        int r = json_parse(line, len, &json_limits_agent, ret, &je);
        if (r == -ENOMEM)
                return tn_err_setx(err, ENOMEM, "out of memory");
        if (r < 0) {
                if (je.pos.col > 0)
                        return tn_err_setx(err, EINVAL, "bad frame at byte %u: %s", je.pos.col,
                                           je.msg);
                return tn_err_setx(err, EINVAL, "bad frame: %s", je.msg);
        }
        if ((*ret)->type != JSON_OBJECT) {
                json_free(TAKE_PTR(*ret));
                return tn_err_setx(err, EINVAL, "a frame must be a JSON object");
        }
        return 0;
}

static int check_version(const struct json_value *root, struct tn_err **err)
{
        uint32_t v = 0;
        int r = get_u32(root, "v", true, 0, UINT32_MAX, &v, err);
        if (r < 0)
                return r;
        if (v != AGENT_PROTO_VERSION)
                return tn_err_setx(
                    err, EINVAL, "unsupported protocol version %" PRIu32 " (this end speaks 1)", v);
        return 0;
}

static int decode_request(const struct json_value *root, struct agent_request *req,
                          struct tn_err **err)
{
        int r = check_version(root, err);
        if (r < 0)
                return r;
        const char *name = "";
        r = peek_string(json_get(root, "op"), "op", true, 1, 64, true, &name, err);
        if (r < 0)
                return r;
        int op = op_from_name(name);
        if (op < 0)
                return tn_err_setx(err, EINVAL, "unknown op");
        req->op = (enum agent_op)op;
        r = check_keys(root, request_keys(req->op), NULL, err);
        if (r < 0)
                return r;
        switch (req->op) {
        case AGENT_OP_SETUP:
                return decode_setup(root, &req->u.setup, err);
        case AGENT_OP_START:
                r = get_proc(root, true, &req->u.start, err);
                if (r >= 0)
                        r = decode_seccomp(json_get(root, "seccomp"), &req->u.start.seccomp, err);
                return r < 0 ? r : 0;
        case AGENT_OP_SIGNAL: {
                uint32_t signo = 0;
                r = get_u32(root, "session", true, 0, UINT32_MAX, &req->u.signal.session, err);
                if (r >= 0)
                        r = get_u32(root, "signal", true, 1, 64, &signo, err);
                req->u.signal.signo = (int)signo;
                return r < 0 ? r : 0;
        }
        case AGENT_OP_EXEC:
                return decode_exec(root, &req->u.exec, err);
        case AGENT_OP_STDIN:
                return decode_stdin(root, &req->u.stdin, err);
        case AGENT_OP_RESIZE:
                r = get_u32(root, "session", true, 1, UINT32_MAX, &req->u.resize.session, err);
                if (r >= 0)
                        r = get_winsize(root, &req->u.resize.rows, &req->u.resize.cols, err);
                return r < 0 ? r : 0;
        case AGENT_OP_CONSOLE:
                r = get_proc(root, false, &req->u.console.proc, err);
                if (r >= 0)
                        r = get_winsize(root, &req->u.console.rows, &req->u.console.cols, err);
                return r < 0 ? r : 0;
        case AGENT_OP_HEALTH:
                return decode_health(root, &req->u.health, err);
        case AGENT_OP_SHUTDOWN:
                req->u.shutdown_timeout_ms = AGENT_SHUTDOWN_TIMEOUT_DEFAULT_MS;
                r = get_u32(root, "timeout_ms", false, 0, AGENT_TIMEOUT_MAX_MS,
                            &req->u.shutdown_timeout_ms, err);
                return r < 0 ? r : 0;
        case AGENT_OP_LIMITS:
                r = get_u32(root, "pids_max", true, 0, AGENT_PIDS_MAX, &req->u.limits.pids_max,
                            err);
                return r < 0 ? r : 0;
        default:
                return 0;
        }
}

int agent_request_decode(const char *line, size_t len, struct agent_request *ret, uint32_t *ret_id,
                         struct tn_err **err)
{
        _cleanup_json_ struct json_value *root = NULL;
        if (ret_id)
                *ret_id = 0;
        *ret = (struct agent_request){0};
        int r = parse_frame(line, len, &root, err);
        if (r < 0)
                return r;
        struct agent_request req = {0};
        r = get_u32(root, "id", true, 1, UINT32_MAX, &req.id, err);
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = req.id;
        r = decode_request(root, &req, err);
        if (r < 0) {
                agent_request_clear(&req);
                return r;
        }
        *ret = req;
        return 0;
}

/* ---- replies and events ---- */

static int get_text(const struct json_value *obj, const char *key, size_t min, size_t max,
                    char **ret, struct tn_err **err)
{
        return get_string(obj, key, true, min, max, true, ret, err);
}

static int get_double(const struct json_value *obj, const char *key, double max, double *ret,
                      struct tn_err **err)
{
        const struct json_value *v = json_get(obj, key);
        int r = need(v, key, true, JSON_NUMBER, err);
        if (r < 0)
                return r;
        char *end = NULL;
        double d = strtod(v->u.str.text, &end);
        if (!end || *end || !isfinite(d) || d < 0 || d > max)
                return tn_err_setx(err, EINVAL, "\"%s\" must be a number from 0 to %g", key, max);
        *ret = d;
        return 0;
}

#define U53 9007199254740991ull /* exactly representable everywhere JSON goes */

static int decode_result(const struct json_value *root, struct agent_reply *rep,
                         struct tn_err **err)
{
        static const char *const empty[] = {"v", "id", "ok", NULL};
        static const char *const hello[] = {"v", "id", "ok", "agent", "kernel", "boot_ms", NULL};
        static const char *const pid[] = {"v", "id", "ok", "pid", NULL};
        static const char *const stats[] = {
            "v", "id", "ok", "cpu_ns", "mem_total", "mem_available", "load1", "uptime_ms", NULL};
        static const char *const health[] = {"v", "id", "ok", "healthy", "detail", NULL};
        int r = 0;
        uint32_t pidv = 0;
        switch (rep->op) {
        case AGENT_OP_HELLO:
                r = check_keys(root, hello, "a hello reply", err);
                if (r >= 0)
                        r = get_text(root, "agent", 1, AGENT_NAME_MAX, &rep->u.hello.agent, err);
                if (r >= 0)
                        r = get_text(root, "kernel", 1, AGENT_NAME_MAX, &rep->u.hello.kernel, err);
                if (r >= 0)
                        r = get_uint(root, "boot_ms", true, 0, U53, &rep->u.hello.boot_ms, err);
                break;
        case AGENT_OP_START:
        case AGENT_OP_EXEC:
        case AGENT_OP_CONSOLE:
                r = check_keys(root, pid, "a start, exec or console reply", err);
                if (r >= 0)
                        r = get_u32(root, "pid", true, 1, INT32_MAX, &pidv, err);
                rep->u.pid = (int32_t)pidv;
                break;
        case AGENT_OP_STATS:
                r = check_keys(root, stats, "a stats reply", err);
                if (r >= 0)
                        r = get_uint(root, "cpu_ns", true, 0, U53, &rep->u.stats.cpu_ns, err);
                if (r >= 0)
                        r = get_uint(root, "mem_total", true, 0, U53, &rep->u.stats.mem_total, err);
                if (r >= 0)
                        r = get_uint(root, "mem_available", true, 0, U53,
                                     &rep->u.stats.mem_available, err);
                if (r >= 0)
                        r = get_double(root, "load1", 1e6, &rep->u.stats.load1, err);
                if (r >= 0)
                        r = get_uint(root, "uptime_ms", true, 0, U53, &rep->u.stats.uptime_ms, err);
                break;
        case AGENT_OP_HEALTH:
                r = check_keys(root, health, "a health reply", err);
                if (r >= 0)
                        r = get_bool(root, "healthy", true, &rep->u.health.healthy, err);
                if (r >= 0)
                        r = get_text(root, "detail", 0, AGENT_TEXT_MAX, &rep->u.health.detail, err);
                break;
        default:
                r = check_keys(root, empty, "this reply", err);
                break;
        }
        return r < 0 ? r : 0;
}

static int decode_reply(const struct json_value *root, agent_op_lookup op_of, void *userdata,
                        struct agent_reply *rep, struct tn_err **err)
{
        static const char *const error_keys[] = {"v", "id", "ok", "error", NULL};
        int r = get_u32(root, "id", true, 0, UINT32_MAX, &rep->id, err);
        if (r >= 0)
                r = get_bool(root, "ok", true, &rep->ok, err);
        if (r < 0)
                return r;
        if (!rep->ok) {
                r = check_keys(root, error_keys, "an error reply", err);
                if (r >= 0)
                        r = get_text(root, "error", 1, AGENT_TEXT_MAX, &rep->error, err);
                return r < 0 ? r : 0;
        }
        if (rep->id == 0)
                return tn_err_setx(err, EINVAL, "a successful reply needs an id from 1");
        int op = op_of ? op_of(rep->id, userdata) : -1;
        if (op < 0 || !agent_op_name((enum agent_op)op))
                return tn_err_setx(err, EINVAL, "reply to id %" PRIu32 ", which no request has",
                                   rep->id);
        rep->op = (enum agent_op)op;
        return decode_result(root, rep, err);
}

static int decode_event(const struct json_value *root, struct agent_event *ev, struct tn_err **err)
{
        static const char *const ready[] = {"v", "event", NULL};
        static const char *const log[] = {"v", "event", "session", "stream", "data", NULL};
        static const char *const exit_keys[] = {"v", "event", "session", "code", "signal", NULL};
        static const char *const denied_keys[] = {"v", "event", "nr", "count", NULL};
        static const char *const learned_keys[] = {"v", "event", "calls", NULL};
        static const char *const limits_keys[] = {"v", "event", "oom_kills", "pids_max_hits", NULL};
        const char *name = "";
        int r = peek_string(json_get(root, "event"), "event", true, 1, 16, true, &name, err);
        if (r < 0)
                return r;
        if (strcmp(name, "ready") == 0) {
                ev->kind = AGENT_EVENT_READY;
                return check_keys(root, ready, "a ready event", err);
        }
        if (strcmp(name, "log") == 0) {
                ev->kind = AGENT_EVENT_LOG;
                r = check_keys(root, log, "a log event", err);
                if (r >= 0)
                        r = get_u32(root, "session", true, 0, UINT32_MAX, &ev->session, err);
                const char *s = "";
                if (r >= 0)
                        r = peek_string(json_get(root, "stream"), "stream", true, 1, 8, true, &s,
                                        err);
                if (r >= 0 && strcmp(s, "stdout") != 0 && strcmp(s, "stderr") != 0)
                        r = tn_err_setx(err, EINVAL, "\"stream\" must be \"stdout\" or \"stderr\"");
                if (r < 0)
                        return r;
                ev->stream = strcmp(s, "stderr") == 0 ? AGENT_STREAM_STDERR : AGENT_STREAM_STDOUT;
                r = peek_string(json_get(root, "data"), "data", true, 4, AGENT_FRAME_MAX, false, &s,
                                err);
                if (r < 0)
                        return r;
                r = agent_base64_decode(s, strlen(s), &ev->data, &ev->len, AGENT_DATA_MAX);
                if (r == -ENOMEM)
                        return tn_err_setx(err, ENOMEM, "out of memory");
                if (r < 0)
                        return tn_err_setx(err, EINVAL,
                                           "\"data\" must be padded base64 of 1 to %d bytes",
                                           AGENT_DATA_MAX);
                return 0;
        }
        if (strcmp(name, "exit") == 0) {
                ev->kind = AGENT_EVENT_EXIT;
                r = check_keys(root, exit_keys, "an exit event", err);
                if (r >= 0)
                        r = get_u32(root, "session", true, 0, UINT32_MAX, &ev->session, err);
                if (r < 0)
                        return r;
                bool code = json_get(root, "code") != NULL;
                if (code == (json_get(root, "signal") != NULL))
                        return tn_err_setx(err, EINVAL,
                                           "an exit event has exactly one of \"code\" and "
                                           "\"signal\"");
                uint32_t n = 0;
                r = code ? get_u32(root, "code", true, 0, 255, &n, err)
                         : get_u32(root, "signal", true, 1, 64, &n, err);
                ev->signaled = !code;
                ev->code = (int)n;
                return r < 0 ? r : 0;
        }
        if (strcmp(name, "denied") == 0) {
                ev->kind = AGENT_EVENT_DENIED;
                uint64_t nr = 0;
                r = check_keys(root, denied_keys, "a denied event", err);
                if (r >= 0)
                        r = get_uint(root, "nr", true, 0, AGENT_NR_MAX, &nr, err);
                if (r >= 0)
                        r = get_uint(root, "count", true, 1, AGENT_COUNT_MAX, &ev->denied.count,
                                     err);
                ev->denied.nr = (uint16_t)nr;
                return r < 0 ? r : 0;
        }
        if (strcmp(name, "limits") == 0) {
                ev->kind = AGENT_EVENT_LIMITS;
                r = check_keys(root, limits_keys, "a limits event", err);
                if (r >= 0)
                        r = get_uint(root, "oom_kills", true, 0, AGENT_COUNT_MAX,
                                     &ev->limits.oom_kills, err);
                if (r >= 0)
                        r = get_uint(root, "pids_max_hits", true, 0, AGENT_COUNT_MAX,
                                     &ev->limits.pids_max_hits, err);
                return r < 0 ? r : 0;
        }
        if (strcmp(name, "learned") == 0) {
                ev->kind = AGENT_EVENT_LEARNED;
                const struct json_value *a = NULL;
                r = check_keys(root, learned_keys, "a learned event", err);
                if (r >= 0)
                        r = get_array(root, "calls", true, 0, AGENT_NR_MAX + 1, &a, err);
                if (r < 0)
                        return r;
                if (!a) /* required: get_array() refused its absence already */
                        return tn_err_setx(err, EINVAL, "a learned event without \"calls\"");
                ev->calls = calloc(a->u.array.n + 1, sizeof(*ev->calls));
                if (!ev->calls)
                        return tn_err_setx(err, ENOMEM, "out of memory");
                bool seen[AGENT_NR_MAX + 1] = {0};
                for (size_t i = 0; i < a->u.array.n; i++) {
                        uint64_t nr = 0, count = 0;
                        if (!item_pair(a->u.array.items[i], AGENT_NR_MAX, 1, AGENT_COUNT_MAX, &nr,
                                       &count) ||
                            seen[nr])
                                return tn_err_setx(err, EINVAL,
                                                   "\"calls\" item %zu must be [NR, COUNT], NR 0 "
                                                   "to %d and not repeated, COUNT 1 to 2^53-1",
                                                   i, AGENT_NR_MAX);
                        seen[nr] = true;
                        ev->calls[ev->n_calls++] =
                            (struct agent_call_count){.nr = (uint16_t)nr, .count = count};
                }
                return 0;
        }
        return tn_err_setx(err, EINVAL, "unknown event \"%s\"", quote(name).s);
}

int agent_msg_decode(const char *line, size_t len, agent_op_lookup op_of, void *userdata,
                     struct agent_msg *ret, struct tn_err **err)
{
        _cleanup_json_ struct json_value *root = NULL;
        *ret = (struct agent_msg){0};
        int r = parse_frame(line, len, &root, err);
        if (r < 0)
                return r;
        r = check_version(root, err);
        if (r < 0)
                return r;
        struct agent_msg msg = {0};
        if (json_get(root, "event")) {
                msg.is_event = true;
                r = decode_event(root, &msg.event, err);
        } else if (json_get(root, "id")) {
                r = decode_reply(root, op_of, userdata, &msg.reply, err);
        } else {
                r = tn_err_setx(err, EINVAL, "a frame is a reply (\"id\") or an event (\"event\")");
        }
        if (r < 0) {
                agent_msg_clear(&msg);
                return r;
        }
        *ret = msg;
        return 0;
}

/* ---- encoding ---- */

/* Takes the generator's output as a frame: a copy with "\n" appended, within the cap. */
static int finish(struct json_gen *g, char **ret, size_t *ret_len)
{
        const char *buf;
        size_t len;
        int r = json_gen_finish(g, &buf, &len);
        if (r < 0)
                return r;
        if (len + 1 > AGENT_FRAME_MAX)
                return -EMSGSIZE;
        char *out = malloc(len + 2);
        if (!out)
                return -ENOMEM;
        memcpy(out, buf, len);
        out[len] = '\n';
        out[len + 1] = '\0';
        *ret = out;
        *ret_len = len + 1;
        return 0;
}

static void gen_kv_int(struct json_gen *g, const char *key, int64_t n)
{
        json_gen_key(g, key);
        json_gen_int(g, n);
}

static void gen_kv_str(struct json_gen *g, const char *key, const char *s)
{
        json_gen_key(g, key);
        json_gen_string(g, s ? s : "");
}

static void gen_strv(struct json_gen *g, const char *key, char *const *v)
{
        json_gen_key(g, key);
        json_gen_array_open(g);
        for (; v && *v; v++)
                json_gen_string(g, *v);
        json_gen_array_close(g);
}

static int gen_base64(struct json_gen *g, const char *key, const uint8_t *data, size_t len)
{
        _cleanup_free_ char *b64 = malloc(agent_base64_encoded_len(len) + 1);
        if (!b64)
                return -ENOMEM;
        agent_base64_encode(data, len, b64);
        gen_kv_str(g, key, b64);
        return 0;
}

static int gen_proc(struct json_gen *g, const struct agent_proc *p, bool with_groups)
{
        gen_strv(g, "argv", p->argv);
        json_gen_key(g, "env");
        json_gen_object_open(g);
        for (char **e = p->env; e && *e; e++) {
                const char *eq = strchr(*e, '=');
                if (!eq)
                        return -EINVAL;
                json_gen_string_len(g, *e, (size_t)(eq - *e));
                json_gen_string(g, eq + 1);
        }
        json_gen_object_close(g);
        gen_kv_int(g, "uid", p->uid);
        gen_kv_int(g, "gid", p->gid);
        if (with_groups) {
                json_gen_key(g, "groups");
                json_gen_array_open(g);
                for (size_t i = 0; i < p->n_groups; i++)
                        json_gen_int(g, p->groups[i]);
                json_gen_array_close(g);
        } else if (p->n_groups > 0) {
                return -EINVAL;
        }
        gen_kv_str(g, "workdir", p->workdir ? p->workdir : "/");
        return 0;
}

static int gen_setup(struct json_gen *g, const struct agent_setup *s)
{
        if (s->hostname)
                gen_kv_str(g, "hostname", s->hostname);
        json_gen_key(g, "mounts");
        json_gen_array_open(g);
        for (size_t i = 0; i < s->n_mounts; i++) {
                const struct agent_mount *m = &s->mounts[i];
                json_gen_object_open(g);
                if (m->fstype != AGENT_FS_TMPFS)
                        gen_kv_str(g, "tag", m->tag);
                gen_kv_str(g, "target", m->target);
                gen_kv_str(g, "fstype",
                           m->fstype == AGENT_FS_9P      ? "9p"
                           : m->fstype == AGENT_FS_TMPFS ? "tmpfs"
                                                         : "virtiofs");
                json_gen_key(g, "readonly");
                json_gen_bool(g, m->readonly);
                if (m->fstype == AGENT_FS_TMPFS) {
                        if (m->size > AGENT_TMPFS_SIZE_MAX)
                                return -EINVAL; /* json_gen_int takes an int64_t */
                        gen_kv_int(g, "size", (int64_t)m->size);
                } else if (m->size) {
                        return -EINVAL; /* what the agent would refuse */
                }
                if (m->noexec) {
                        json_gen_key(g, "noexec");
                        json_gen_bool(g, true);
                }
                json_gen_object_close(g);
        }
        json_gen_array_close(g);
        if (s->pids_max > AGENT_PIDS_MAX)
                return -EINVAL;
        if (s->pids_max)
                gen_kv_int(g, "pids_max", s->pids_max);
        if (!s->has_net)
                return 0;
        char addr[INET_ADDRSTRLEN], cidr[INET_ADDRSTRLEN + 4];
        json_gen_key(g, "net");
        json_gen_object_open(g);
        inet_ntop(AF_INET, &s->net.address, addr, sizeof(addr));
        snprintf(cidr, sizeof(cidr), "%s/%u", addr, s->net.prefix);
        gen_kv_str(g, "address", cidr);
        if (s->net.has_gateway) {
                inet_ntop(AF_INET, &s->net.gateway, addr, sizeof(addr));
                gen_kv_str(g, "gateway", addr);
        }
        if (s->net.has_address6) {
                char a6[INET6_ADDRSTRLEN], cidr6[INET6_ADDRSTRLEN + 5];
                inet_ntop(AF_INET6, &s->net.address6, a6, sizeof(a6));
                snprintf(cidr6, sizeof(cidr6), "%s/%u", a6, s->net.prefix6);
                gen_kv_str(g, "address6", cidr6);
                if (s->net.has_gateway6) {
                        inet_ntop(AF_INET6, &s->net.gateway6, a6, sizeof(a6));
                        gen_kv_str(g, "gateway6", a6);
                }
        }
        if (s->net.n_dns > AGENT_DNS_MAX)
                return -EINVAL;
        json_gen_key(g, "dns");
        json_gen_array_open(g);
        for (size_t i = 0; i < s->net.n_dns; i++)
                json_gen_string(g, s->net.dns[i]);
        json_gen_array_close(g);
        json_gen_object_close(g);
        return 0;
}

/* What decode_seccomp accepts, and nothing else. */
static int gen_seccomp(struct json_gen *g, const struct agent_seccomp *sc)
{
        if (!sc->set)
                return 0;
        if (sc->learn ? sc->n_notify > 0 || sc->n_refuse > AGENT_NR_MAX
                      : sc->n_refuse > 0 || sc->n_notify < 1 || sc->n_notify > AGENT_NR_MAX)
                return -EINVAL;
        bool seen[AGENT_NR_MAX] = {0};
        json_gen_key(g, "seccomp");
        json_gen_object_open(g);
        if (sc->learn) {
                json_gen_key(g, "learn");
                json_gen_bool(g, true);
        }
        json_gen_key(g, sc->learn ? "refuse" : "notify");
        json_gen_array_open(g);
        size_t n = sc->learn ? sc->n_refuse : sc->n_notify;
        for (size_t i = 0; i < n; i++) {
                unsigned nr = sc->learn ? sc->refuse[i].nr : sc->notify[i];
                if (nr >= AGENT_NR_MAX || seen[nr] ||
                    (sc->learn && (sc->refuse[i].err < 1 || sc->refuse[i].err > 4095)))
                        return -EINVAL;
                seen[nr] = true;
                if (sc->learn) {
                        json_gen_array_open(g);
                        json_gen_int(g, nr);
                        json_gen_int(g, sc->refuse[i].err);
                        json_gen_array_close(g);
                } else {
                        json_gen_int(g, nr);
                }
        }
        json_gen_array_close(g);
        json_gen_object_close(g);
        return 0;
}

static int gen_request_args(struct json_gen *g, const struct agent_request *req)
{
        switch (req->op) {
        case AGENT_OP_SETUP:
                return gen_setup(g, &req->u.setup);
        case AGENT_OP_START:
                if (gen_proc(g, &req->u.start, true) < 0)
                        return -EINVAL;
                return gen_seccomp(g, &req->u.start.seccomp);
        case AGENT_OP_SIGNAL:
                gen_kv_int(g, "session", req->u.signal.session);
                gen_kv_int(g, "signal", req->u.signal.signo);
                return 0;
        case AGENT_OP_EXEC:
                gen_kv_int(g, "session", req->u.exec.session);
                if (gen_proc(g, &req->u.exec.proc, false) < 0)
                        return -EINVAL;
                if (req->u.exec.tty) {
                        if (req->u.exec.has_stdin || !req->u.exec.rows || !req->u.exec.cols)
                                return -EINVAL;
                        json_gen_key(g, "tty");
                        json_gen_bool(g, true);
                        gen_kv_int(g, "rows", req->u.exec.rows);
                        gen_kv_int(g, "cols", req->u.exec.cols);
                } else if (req->u.exec.stdin_open) {
                        if (req->u.exec.has_stdin)
                                return -EINVAL;
                        json_gen_key(g, "stdin_open");
                        json_gen_bool(g, true);
                }
                if (req->u.exec.has_stdin)
                        return gen_base64(g, "stdin", req->u.exec.stdin_data,
                                          req->u.exec.stdin_len);
                return 0;
        case AGENT_OP_STDIN:
                if (req->u.stdin.session == 0 || req->u.stdin.len > AGENT_DATA_MAX ||
                    (req->u.stdin.len == 0 && !req->u.stdin.eof))
                        return -EINVAL;
                gen_kv_int(g, "session", req->u.stdin.session);
                if (req->u.stdin.eof) {
                        json_gen_key(g, "eof");
                        json_gen_bool(g, true);
                }
                if (req->u.stdin.len)
                        return gen_base64(g, "data", req->u.stdin.data, req->u.stdin.len);
                return 0;
        case AGENT_OP_RESIZE:
                if (req->u.resize.session == 0 || !req->u.resize.rows || !req->u.resize.cols)
                        return -EINVAL;
                gen_kv_int(g, "session", req->u.resize.session);
                gen_kv_int(g, "rows", req->u.resize.rows);
                gen_kv_int(g, "cols", req->u.resize.cols);
                return 0;
        case AGENT_OP_CONSOLE:
                if (!req->u.console.rows || !req->u.console.cols ||
                    gen_proc(g, &req->u.console.proc, false) < 0)
                        return -EINVAL;
                gen_kv_int(g, "rows", req->u.console.rows);
                gen_kv_int(g, "cols", req->u.console.cols);
                return 0;
        case AGENT_OP_HEALTH:
                if (req->u.health.kind == AGENT_HEALTH_TCP) {
                        gen_kv_int(g, "tcp", req->u.health.port);
                } else if (req->u.health.kind == AGENT_HEALTH_HTTP) {
                        const char *path = req->u.health.path;
                        if (!path || !agent_http_path_ok(path, strlen(path)))
                                return -EINVAL;
                        gen_kv_int(g, "http", req->u.health.port);
                        gen_kv_str(g, "path", path);
                } else {
                        gen_strv(g, "exec", req->u.health.argv);
                }
                gen_kv_int(g, "timeout_ms", req->u.health.timeout_ms);
                return 0;
        case AGENT_OP_SHUTDOWN:
                gen_kv_int(g, "timeout_ms", req->u.shutdown_timeout_ms);
                return 0;
        case AGENT_OP_LIMITS:
                if (req->u.limits.pids_max > AGENT_PIDS_MAX)
                        return -EINVAL;
                gen_kv_int(g, "pids_max", req->u.limits.pids_max);
                return 0;
        default:
                return 0;
        }
}

int agent_request_encode(const struct agent_request *req, char **ret, size_t *ret_len)
{
        const char *name = agent_op_name(req->op);
        if (!name || req->id == 0)
                return -EINVAL;
        _cleanup_(json_gen_freep) struct json_gen *g = json_gen_new(false);
        if (!g)
                return -ENOMEM;
        json_gen_object_open(g);
        gen_kv_int(g, "v", AGENT_PROTO_VERSION);
        gen_kv_int(g, "id", req->id);
        gen_kv_str(g, "op", name);
        int r = gen_request_args(g, req);
        if (r < 0)
                return r;
        json_gen_object_close(g);
        _cleanup_free_ char *out = NULL;
        size_t len = 0;
        r = finish(g, &out, &len);
        if (r < 0)
                return r;
        /* The agent would refuse what its decoder refuses: check here, where the
         * mistake is made. */
        struct agent_request check;
        r = agent_request_decode(out, len - 1, &check, NULL, NULL);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL;
        agent_request_clear(&check);
        *ret = TAKE_PTR(out);
        *ret_len = len;
        return 0;
}

static void gen_double(struct json_gen *g, const char *key, double d)
{
        char buf[64];
        if (!isfinite(d) || d < 0)
                d = 0;
        snprintf(buf, sizeof(buf), "%.2f", d);
        json_gen_key(g, key);
        json_gen_number(g, buf);
}

static void gen_result(struct json_gen *g, const struct agent_reply *rep)
{
        switch (rep->op) {
        case AGENT_OP_HELLO:
                gen_kv_str(g, "agent", rep->u.hello.agent);
                gen_kv_str(g, "kernel", rep->u.hello.kernel);
                gen_kv_int(g, "boot_ms", (int64_t)rep->u.hello.boot_ms);
                break;
        case AGENT_OP_START:
        case AGENT_OP_EXEC:
        case AGENT_OP_CONSOLE:
                gen_kv_int(g, "pid", rep->u.pid);
                break;
        case AGENT_OP_STATS:
                gen_kv_int(g, "cpu_ns", (int64_t)rep->u.stats.cpu_ns);
                gen_kv_int(g, "mem_total", (int64_t)rep->u.stats.mem_total);
                gen_kv_int(g, "mem_available", (int64_t)rep->u.stats.mem_available);
                gen_double(g, "load1", rep->u.stats.load1);
                gen_kv_int(g, "uptime_ms", (int64_t)rep->u.stats.uptime_ms);
                break;
        case AGENT_OP_HEALTH:
                json_gen_key(g, "healthy");
                json_gen_bool(g, rep->u.health.healthy);
                gen_kv_str(g, "detail", rep->u.health.detail);
                break;
        default:
                break;
        }
}

static int op_of_reply(uint32_t id, void *userdata)
{
        const struct agent_reply *rep = userdata;
        return id == rep->id ? (int)rep->op : -1;
}

int agent_reply_encode(const struct agent_reply *rep, char **ret, size_t *ret_len)
{
        if (!rep->ok)
                return agent_error_encode(rep->id, rep->error ? rep->error : "error", ret, ret_len);
        _cleanup_(json_gen_freep) struct json_gen *g = json_gen_new(false);
        if (!g)
                return -ENOMEM;
        json_gen_object_open(g);
        gen_kv_int(g, "v", AGENT_PROTO_VERSION);
        gen_kv_int(g, "id", rep->id);
        json_gen_key(g, "ok");
        json_gen_bool(g, true);
        gen_result(g, rep);
        json_gen_object_close(g);
        _cleanup_free_ char *out = NULL;
        size_t len = 0;
        int r = finish(g, &out, &len);
        if (r < 0)
                return r;
        struct agent_msg check;
        r = agent_msg_decode(out, len - 1, op_of_reply, (void *)rep, &check, NULL);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL;
        agent_msg_clear(&check);
        *ret = TAKE_PTR(out);
        *ret_len = len;
        return 0;
}

int agent_error_encode(uint32_t id, const char *text, char **ret, size_t *ret_len)
{
        /* ASCII only, so a cut never splits a character; control characters become
         * '?'. The text may quote a hostile frame. */
        char clean[AGENT_TEXT_MAX + 1];
        size_t o = 0;
        for (size_t i = 0; text[i] && o < AGENT_TEXT_MAX; i++) {
                unsigned char c = (unsigned char)text[i];
                clean[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        if (o == 0)
                clean[o++] = '?';
        clean[o] = '\0';
        _cleanup_(json_gen_freep) struct json_gen *g = json_gen_new(false);
        if (!g)
                return -ENOMEM;
        json_gen_object_open(g);
        gen_kv_int(g, "v", AGENT_PROTO_VERSION);
        gen_kv_int(g, "id", id);
        json_gen_key(g, "ok");
        json_gen_bool(g, false);
        gen_kv_str(g, "error", clean);
        json_gen_object_close(g);
        return finish(g, ret, ret_len);
}

int agent_event_encode(const struct agent_event *ev, char **ret, size_t *ret_len)
{
        _cleanup_(json_gen_freep) struct json_gen *g = json_gen_new(false);
        if (!g)
                return -ENOMEM;
        json_gen_object_open(g);
        gen_kv_int(g, "v", AGENT_PROTO_VERSION);
        switch (ev->kind) {
        case AGENT_EVENT_READY:
                gen_kv_str(g, "event", "ready");
                break;
        case AGENT_EVENT_LOG:
                if (ev->len == 0 || ev->len > AGENT_DATA_MAX)
                        return -EINVAL;
                gen_kv_str(g, "event", "log");
                gen_kv_int(g, "session", ev->session);
                gen_kv_str(g, "stream", ev->stream == AGENT_STREAM_STDERR ? "stderr" : "stdout");
                if (gen_base64(g, "data", ev->data, ev->len) < 0)
                        return -ENOMEM;
                break;
        case AGENT_EVENT_EXIT:
                if (ev->signaled ? ev->code < 1 || ev->code > 64 : ev->code < 0 || ev->code > 255)
                        return -EINVAL;
                gen_kv_str(g, "event", "exit");
                gen_kv_int(g, "session", ev->session);
                gen_kv_int(g, ev->signaled ? "signal" : "code", ev->code);
                break;
        case AGENT_EVENT_DENIED:
                if (ev->denied.nr > AGENT_NR_MAX || ev->denied.count < 1 ||
                    ev->denied.count > AGENT_COUNT_MAX)
                        return -EINVAL;
                gen_kv_str(g, "event", "denied");
                gen_kv_int(g, "nr", ev->denied.nr);
                gen_kv_int(g, "count", (int64_t)ev->denied.count);
                break;
        case AGENT_EVENT_LIMITS:
                if (ev->limits.oom_kills > AGENT_COUNT_MAX ||
                    ev->limits.pids_max_hits > AGENT_COUNT_MAX)
                        return -EINVAL;
                gen_kv_str(g, "event", "limits");
                gen_kv_int(g, "oom_kills", (int64_t)ev->limits.oom_kills);
                gen_kv_int(g, "pids_max_hits", (int64_t)ev->limits.pids_max_hits);
                break;
        case AGENT_EVENT_LEARNED: {
                if (ev->n_calls > AGENT_NR_MAX + 1)
                        return -EINVAL;
                bool seen[AGENT_NR_MAX + 1] = {0};
                gen_kv_str(g, "event", "learned");
                json_gen_key(g, "calls");
                json_gen_array_open(g);
                for (size_t i = 0; i < ev->n_calls; i++) {
                        const struct agent_call_count *c = &ev->calls[i];
                        if (c->nr > AGENT_NR_MAX || seen[c->nr] || c->count < 1 ||
                            c->count > AGENT_COUNT_MAX)
                                return -EINVAL;
                        seen[c->nr] = true;
                        json_gen_array_open(g);
                        json_gen_int(g, c->nr);
                        json_gen_int(g, (int64_t)c->count);
                        json_gen_array_close(g);
                }
                json_gen_array_close(g);
                break;
        }
        default:
                return -EINVAL;
        }
        json_gen_object_close(g);
        return finish(g, ret, ret_len);
}

/* ---- base64 ----
 *
 * Debian offers no base64 library that is both strict and available as a static
 * archive (glibc's b64_pton in libresolv skips whitespace and accepts unpadded input,
 * OpenSSL's EVP decoder is lenient too and heavy for the static agent), and the
 * routine is thirty lines: written here, strict (padding required, no whitespace,
 * unused bits zero, so one byte string has exactly one encoding). */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t agent_base64_encoded_len(size_t n)
{
        return (n + 2) / 3 * 4;
}

void agent_base64_encode(const uint8_t *in, size_t n, char *out)
{
        size_t o = 0;
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)in[i] << 16;
                if (i + 1 < n)
                        v |= (uint32_t)in[i + 1] << 8;
                if (i + 2 < n)
                        v |= in[i + 2];
                out[o++] = b64_alphabet[(v >> 18) & 63];
                out[o++] = b64_alphabet[(v >> 12) & 63];
                out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
                out[o++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
        }
        out[o] = '\0';
}

static int b64_value(char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int agent_base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len, size_t max_out)
{
        if (len % 4 != 0)
                return -EINVAL;
        size_t pad = len >= 1 && in[len - 1] == '=' ? (len >= 2 && in[len - 2] == '=' ? 2 : 1) : 0;
        size_t out_len = len / 4 * 3 - pad;
        if (out_len > max_out)
                return -EMSGSIZE;
        _cleanup_free_ uint8_t *out = malloc(out_len + 1);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        for (size_t i = 0; i < len; i += 4) {
                bool last = i + 4 == len;
                int v[4];
                for (size_t k = 0; k < 4; k++) {
                        bool padded = last && k >= 4 - pad;
                        v[k] = padded ? 0 : b64_value(in[i + k]);
                        if (v[k] < 0)
                                return -EINVAL;
                }
                uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                             (uint32_t)v[3];
                /* Bits that padding leaves over must be zero: one encoding per input. */
                if (last && ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff))))
                        return -EINVAL;
                out[o++] = (uint8_t)(w >> 16);
                if (!last || pad < 2)
                        out[o++] = (uint8_t)(w >> 8);
                if (!last || pad < 1)
                        out[o++] = (uint8_t)w;
        }
        *ret = TAKE_PTR(out);
        *ret_len = o;
        return 0;
}
