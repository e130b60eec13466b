/* control_proto.c — the control protocol's op table, request codec and reply helpers
 * (see control_proto.h, docs/protocol.md). */
#include "proto/control_proto.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/logtext.h"
#include "lib/strutil.h"

const struct control_op_info control_ops[CONTROL_OP_COUNT_] = {
    [CONTROL_OP_VERSION] = {CONTROL_OP_VERSION, "version", 0},
    [CONTROL_OP_LIST] = {CONTROL_OP_LIST, "list", 0},
    [CONTROL_OP_TOP] = {CONTROL_OP_TOP, "top", 0},
    [CONTROL_OP_STATUS] = {CONTROL_OP_STATUS, "status", CONTROL_F_NAME},
    [CONTROL_OP_START] = {CONTROL_OP_START, "start", CONTROL_F_NAME | CONTROL_F_WAITS},
    [CONTROL_OP_STOP] = {CONTROL_OP_STOP, "stop", CONTROL_F_NAME | CONTROL_F_WAITS},
    [CONTROL_OP_RESTART] = {CONTROL_OP_RESTART, "restart", CONTROL_F_NAME | CONTROL_F_WAITS},
    [CONTROL_OP_KILL] = {CONTROL_OP_KILL, "kill", CONTROL_F_NAME},
    [CONTROL_OP_LOGS] = {CONTROL_OP_LOGS, "logs", CONTROL_F_NAME | CONTROL_F_STREAM},
    [CONTROL_OP_EXEC] = {CONTROL_OP_EXEC, "exec", CONTROL_F_NAME | CONTROL_F_FRAMES},
    [CONTROL_OP_SET] = {CONTROL_OP_SET, "set", CONTROL_F_NAME},
    [CONTROL_OP_EVENTS] = {CONTROL_OP_EVENTS, "events", CONTROL_F_STREAM},
    [CONTROL_OP_RELOAD] = {CONTROL_OP_RELOAD, "reload", 0},
    [CONTROL_OP_AUDIT] = {CONTROL_OP_AUDIT, "audit", CONTROL_F_NAME},
    [CONTROL_OP_VOLUMES] = {CONTROL_OP_VOLUMES, "volumes", 0},
    /* not CONTROL_F_NAME: the volume's tenant may have no manifest any more */
    [CONTROL_OP_VOLUME_RM] = {CONTROL_OP_VOLUME_RM, "volume-rm", 0},
    [CONTROL_OP_BACKUP] = {CONTROL_OP_BACKUP, "backup", CONTROL_F_NAME | CONTROL_F_WAITS},
    [CONTROL_OP_CONSOLE] = {CONTROL_OP_CONSOLE, "console", CONTROL_F_NAME | CONTROL_F_FRAMES},
};

const struct control_op_info *control_op_lookup(const char *name)
{
        for (size_t i = 0; i < CONTROL_OP_COUNT_; i++)
                if (strcmp(control_ops[i].name, name) == 0)
                        return &control_ops[i];
        return NULL;
}

const char *control_op_name(enum control_op op)
{
        return (unsigned)op < CONTROL_OP_COUNT_ ? control_ops[op].name : NULL;
}

/* ---- signals ---- */

static const struct {
        const char *name;
        int sig;
} signals[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},
               {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
               {"TERM", SIGTERM}, {"CONT", SIGCONT}, {"WINCH", SIGWINCH}};

#define SIGNAL_ERROR                                                                               \
        "\"signal\" must be a signal name (TERM, KILL, HUP, INT, QUIT, USR1, USR2, CONT, WINCH) "  \
        "or number"

int control_signal_parse(const char *s, int *ret)
{
        char *end;
        errno = 0;
        long n = strtol(s, &end, 10);
        if (*s >= '0' && *s <= '9' && !*end && !errno) {
                if (n < 1 || n > 64)
                        return -EINVAL;
                *ret = (int)n;
                return 0;
        }
        if (strncmp(s, "SIG", 3) == 0)
                s += 3;
        for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
                if (strcmp(s, signals[i].name) == 0) {
                        *ret = signals[i].sig;
                        return 0;
                }
        return -EINVAL;
}

/* ---- decoding ---- */

static const struct json_limits request_limits = {
    .max_bytes = CONTROL_REQUEST_MAX, .max_depth = CONTROL_DEPTH_MAX, .allow_comments = false};

/* At most `max` bytes of s, cut at a character boundary (s is valid UTF-8: the parser
 * refused anything else), for quoting it back in a message. */
static int cut(const char *s, size_t max)
{
        size_t n = strnlen(s, max + 1);
        if (n <= max)
                return (int)n;
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
                n--;
        return (int)n;
}

static int opt_int(const struct json_value *req, const char *key, int64_t min, int64_t max,
                   int64_t *ret, struct tn_err **err)
{
        const struct json_value *v = json_get(req, key);
        int64_t n;
        if (!v)
                return 0;
        if (!json_number_int64(v, &n) || n < min || n > max)
                return tn_err_setx(err, EINVAL,
                                   "\"%s\" must be an integer from %" PRId64 " to %" PRId64, key,
                                   min, max);
        *ret = n;
        return 0;
}

static int opt_bool(const struct json_value *req, const char *key, bool *ret, struct tn_err **err)
{
        const struct json_value *v = json_get(req, key);
        if (!v)
                return 0;
        if (v->type != JSON_BOOL)
                return tn_err_setx(err, EINVAL, "\"%s\" must be true or false", key);
        *ret = v->u.boolean;
        return 0;
}

static int decode_signal(const struct json_value *v, int *ret, struct tn_err **err)
{
        int64_t n;
        if (!v)
                return 0;
        if (v->type == JSON_NUMBER && json_number_int64(v, &n) && n > 0 && n < 65) {
                *ret = (int)n;
                return 0;
        }
        /* A string names a signal; a number is sent as a number. */
        bool digits = v->type == JSON_STRING && v->u.str.text[0] >= '0' && v->u.str.text[0] <= '9';
        if (v->type != JSON_STRING || digits || control_signal_parse(v->u.str.text, ret) < 0)
                return tn_err_setx(err, EINVAL, SIGNAL_ERROR);
        return 0;
}

static int decode_exec(const struct json_value *req, struct control_request *r, struct tn_err **err)
{
        const struct json_value *av = json_get(req, CTL_ARGV);
        if (!av || av->type != JSON_ARRAY || av->u.array.n == 0 || av->u.array.n > CONTROL_ARGV_MAX)
                return tn_err_setx(err, EINVAL, "\"argv\" must be an array of 1 to %d strings",
                                   CONTROL_ARGV_MAX);
        r->vec_ = calloc(av->u.array.n + 1, sizeof(char *));
        if (!r->vec_)
                return tn_err_setx(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < av->u.array.n; i++) {
                const struct json_value *s = av->u.array.items[i];
                if (s->type != JSON_STRING || strlen(s->u.str.text) != s->u.str.len)
                        return tn_err_setx(err, EINVAL, "\"argv\" must hold strings without NUL");
                r->vec_[i] = s->u.str.text;
        }
        r->argv = (const char *const *)r->vec_;
        r->argc = av->u.array.n;
        if (r->argv[0][0] != '/')
                return tn_err_setx(err, EINVAL,
                                   "the command must be an absolute path inside the tenant");
        int64_t rows = r->rows, cols = r->cols;
        if (opt_bool(req, CTL_TTY, &r->tty, err) < 0 ||
            opt_int(req, CTL_ROWS, 1, 65535, &rows, err) < 0 ||
            opt_int(req, CTL_COLS, 1, 65535, &cols, err) < 0)
                return -EINVAL;
        r->rows = (uint16_t)rows;
        r->cols = (uint16_t)cols;
        return 0;
}

static int decode_set(const struct json_value *req, struct control_request *r, struct tn_err **err)
{
        const struct json_value *vals = json_get(req, CTL_VALUES);
        if (!vals || vals->type != JSON_OBJECT || vals->u.object.n == 0 ||
            vals->u.object.n > CONTROL_VALUES_MAX)
                return tn_err_setx(err, EINVAL,
                                   "\"values\" must be an object of 1 to %d KEY: VALUE strings",
                                   CONTROL_VALUES_MAX);
        size_t n = vals->u.object.n;
        r->vec_ = calloc(2 * n + 2, sizeof(char *));
        if (!r->vec_)
                return tn_err_setx(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                const struct json_member *mb = &vals->u.object.items[i];
                if (mb->value->type != JSON_STRING || mb->value->u.str.len > CONTROL_VALUE_MAX ||
                    strlen(mb->value->u.str.text) != mb->value->u.str.len)
                        return tn_err_setx(
                            err, EINVAL, "%.*s: the value must be a string of at most %d bytes",
                            cut(mb->key, CONTROL_NAME_SHOW_MAX), mb->key, CONTROL_VALUE_MAX);
                r->vec_[i] = mb->key;
                r->vec_[n + 1 + i] = mb->value->u.str.text;
        }
        r->keys = (const char *const *)r->vec_;
        r->values = (const char *const *)r->vec_ + n + 1;
        r->n_values = n;
        return opt_bool(req, CTL_SAVE, &r->save, err);
}

const char *const control_backup_actions[CONTROL_BACKUP_COUNT_] = {"run", "list", "check",
                                                                   "restore"};

static int decode_backup(const struct json_value *req, struct control_request *r,
                         struct tn_err **err)
{
        const struct json_value *a = json_get(req, CTL_ACTION);
        if (a) {
                size_t i = 0;
                while (a->type == JSON_STRING && i < CONTROL_BACKUP_COUNT_ &&
                       strcmp(a->u.str.text, control_backup_actions[i]) != 0)
                        i++;
                if (a->type != JSON_STRING || i == CONTROL_BACKUP_COUNT_)
                        return tn_err_setx(err, EINVAL,
                                           "\"" CTL_ACTION "\" must be \"run\", \"list\", "
                                           "\"check\" or \"restore\"");
                r->action = (enum control_backup_action)i;
        }
        if (opt_bool(req, CTL_YES, &r->yes, err) < 0)
                return -EINVAL;
        const struct json_value *as = json_get(req, CTL_AS);
        if (as) {
                /* a tenant's name, as a manifest's "name" takes it: it becomes a file
                 * name in the manifest and storage directories */
                if (as->type != JSON_STRING || strlen(as->u.str.text) != as->u.str.len ||
                    as->u.str.len > CONTROL_TENANT_NAME_MAX || !is_simple_name(as->u.str.text))
                        return tn_err_setx(err, EINVAL,
                                           "\"" CTL_AS "\" must be a tenant name: 1 to %d "
                                           "characters of a-z, 0-9 and \"-\", not starting or "
                                           "ending with \"-\"",
                                           CONTROL_TENANT_NAME_MAX);
                r->as = as->u.str.text;
        }
        const struct json_value *s = json_get(req, CTL_SNAPSHOT);
        if (!s)
                return 0;
        bool ok =
            s->type == JSON_STRING && s->u.str.len > 0 && s->u.str.len <= CONTROL_SNAPSHOT_MAX;
        for (size_t i = 0; ok && i < s->u.str.len; i++) {
                char ch = s->u.str.text[i];
                ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
        }
        if (!ok && !(s->type == JSON_STRING && strcmp(s->u.str.text, "latest") == 0))
                return tn_err_setx(err, EINVAL,
                                   "\"" CTL_SNAPSHOT "\" must be a snapshot id (1 to %d hex "
                                   "digits) or \"latest\"",
                                   CONTROL_SNAPSHOT_MAX);
        r->snapshot = s->u.str.text;
        return 0;
}

/* The members of an op, into r (already holding the defaults). */
static int decode_members(const struct json_value *req, struct control_request *r,
                          struct tn_err **err)
{
        int64_t n;
        switch (r->op) {
        case CONTROL_OP_STOP:
        case CONTROL_OP_RESTART:
                n = 0;
                if (opt_int(req, CTL_TIMEOUT_MS, 0, CONTROL_TIMEOUT_MAX_MS, &n, err) < 0)
                        return -EINVAL;
                r->timeout_ms = (uint64_t)n;
                return 0;
        case CONTROL_OP_KILL:
                return decode_signal(json_get(req, CTL_SIGNAL), &r->signal, err);
        case CONTROL_OP_LOGS:
        case CONTROL_OP_EVENTS:
                if (opt_int(req, CTL_LINES, 0,
                            r->op == CONTROL_OP_LOGS ? CONTROL_LOG_LINES_MAX
                                                     : CONTROL_EVENT_LINES_MAX,
                            &r->lines, err) < 0)
                        return -EINVAL;
                return opt_bool(req, CTL_FOLLOW, &r->follow, err);
        case CONTROL_OP_EXEC:
                return decode_exec(req, r, err);
        case CONTROL_OP_SET:
                return decode_set(req, r, err);
        case CONTROL_OP_CONSOLE: {
                int64_t rows = r->rows, cols = r->cols;
                if (opt_bool(req, CTL_FORCE, &r->force, err) < 0 ||
                    opt_int(req, CTL_ROWS, 1, 65535, &rows, err) < 0 ||
                    opt_int(req, CTL_COLS, 1, 65535, &cols, err) < 0)
                        return -EINVAL;
                r->rows = (uint16_t)rows;
                r->cols = (uint16_t)cols;
                return 0;
        }
        case CONTROL_OP_VOLUME_RM: {
                const struct json_value *v = json_get(req, CTL_VOLUME);
                if (!v || v->type != JSON_STRING || strlen(v->u.str.text) != v->u.str.len ||
                    v->u.str.len > 2 * CONTROL_NAME_SHOW_MAX)
                        return tn_err_setx(err, EINVAL, "\"volume\" must be a string, TENANT/NAME");
                r->volume = v->u.str.text;
                return 0;
        }
        case CONTROL_OP_BACKUP:
                return decode_backup(req, r, err);
        default:
                return 0;
        }
}

void control_request_init(struct control_request *req, enum control_op op)
{
        *req = (struct control_request){.op = op, .signal = SIGTERM, .rows = 24, .cols = 80};
        req->lines = op == CONTROL_OP_EVENTS ? 20 : 50;
}

void control_request_clear(struct control_request *req)
{
        if (!req)
                return;
        json_free(req->tree);
        free(req->vec_);
        control_request_init(req, CONTROL_OP_VERSION);
}

int control_request_decode(const char *line, size_t len, struct control_request *ret,
                           struct tn_err **err)
{
        _cleanup_json_ struct json_value *req = NULL;
        int r = json_parse_err(line, len, &request_limits, "bad request", &req, err);
        if (r < 0)
                return r;
        int64_t v;
        const struct json_value *vv = json_get(req, CTL_V);
        if (req->type != JSON_OBJECT || !vv || !json_number_int64(vv, &v))
                return tn_err_setx(err, EINVAL, "a request is an object with \"v\" and \"op\"");
        if (v != CONTROL_PROTO_VERSION)
                return tn_err_setx(err, EINVAL,
                                   "protocol version %" PRId64
                                   " is not supported; this tenantd speaks %d",
                                   v, CONTROL_PROTO_VERSION);
        const struct json_value *op = json_get(req, CTL_OP);
        if (!op || op->type != JSON_STRING)
                return tn_err_setx(err, EINVAL, "\"op\" is missing");
        const struct control_op_info *info = control_op_lookup(op->u.str.text);
        if (!info)
                return tn_err_setx(err, EINVAL, "unknown op \"%.*s\"",
                                   cut(op->u.str.text, CONTROL_NAME_SHOW_MAX), op->u.str.text);
        struct control_request res;
        control_request_init(&res, info->op);
        const struct json_value *name = json_get(req, CTL_NAME);
        if (name && (info->flags & CONTROL_F_NAME)) {
                if (name->type != JSON_STRING || strlen(name->u.str.text) != name->u.str.len)
                        return tn_err_setx(err, EINVAL, "\"name\" must be a string");
                res.name = name->u.str.text;
        }
        r = decode_members(req, &res, err);
        if (r < 0) {
                free(res.vec_);
                return r;
        }
        res.tree = TAKE_PTR(req);
        *ret = res;
        return 0;
}

/* ---- encoding ---- */

int control_request_encode(const struct control_request *req, char **ret, size_t *ret_len)
{
        const char *op = control_op_name(req->op);
        if (!op)
                return -EINVAL;
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(false);
        if (!g)
                return -ENOMEM;
        json_gen_object_open(g);
        json_gen_key(g, CTL_V);
        json_gen_int(g, CONTROL_PROTO_VERSION);
        json_gen_key(g, CTL_OP);
        json_gen_string(g, op);
        if (req->name && (control_ops[req->op].flags & CONTROL_F_NAME)) {
                json_gen_key(g, CTL_NAME);
                json_gen_string(g, req->name);
        }
        switch (req->op) {
        case CONTROL_OP_STOP:
        case CONTROL_OP_RESTART:
                if (req->timeout_ms) {
                        json_gen_key(g, CTL_TIMEOUT_MS);
                        json_gen_int(g, (int64_t)req->timeout_ms);
                }
                break;
        case CONTROL_OP_KILL:
                json_gen_key(g, CTL_SIGNAL);
                json_gen_int(g, req->signal);
                break;
        case CONTROL_OP_LOGS:
        case CONTROL_OP_EVENTS:
                json_gen_key(g, CTL_LINES);
                json_gen_int(g, req->lines);
                json_gen_key(g, CTL_FOLLOW);
                json_gen_bool(g, req->follow);
                break;
        case CONTROL_OP_EXEC:
                json_gen_key(g, CTL_ARGV);
                json_gen_array_open(g);
                for (size_t i = 0; i < req->argc; i++)
                        json_gen_string(g, req->argv[i]);
                json_gen_array_close(g);
                json_gen_key(g, CTL_TTY);
                json_gen_bool(g, req->tty);
                if (req->tty) {
                        json_gen_key(g, CTL_ROWS);
                        json_gen_int(g, req->rows);
                        json_gen_key(g, CTL_COLS);
                        json_gen_int(g, req->cols);
                }
                break;
        case CONTROL_OP_CONSOLE:
                json_gen_key(g, CTL_FORCE);
                json_gen_bool(g, req->force);
                json_gen_key(g, CTL_ROWS);
                json_gen_int(g, req->rows);
                json_gen_key(g, CTL_COLS);
                json_gen_int(g, req->cols);
                break;
        case CONTROL_OP_SET:
                json_gen_key(g, CTL_SAVE);
                json_gen_bool(g, req->save);
                json_gen_key(g, CTL_VALUES);
                json_gen_object_open(g);
                for (size_t i = 0; i < req->n_values; i++) {
                        json_gen_key(g, req->keys[i]);
                        json_gen_string(g, req->values[i]);
                }
                json_gen_object_close(g);
                break;
        case CONTROL_OP_VOLUME_RM:
                json_gen_key(g, CTL_VOLUME);
                json_gen_string(g, req->volume ? req->volume : "");
                break;
        case CONTROL_OP_BACKUP:
                json_gen_key(g, CTL_ACTION);
                json_gen_string(g, control_backup_actions[req->action]);
                if (req->snapshot) {
                        json_gen_key(g, CTL_SNAPSHOT);
                        json_gen_string(g, req->snapshot);
                }
                if (req->as) {
                        json_gen_key(g, CTL_AS);
                        json_gen_string(g, req->as);
                }
                if (req->yes) {
                        json_gen_key(g, CTL_YES);
                        json_gen_bool(g, true);
                }
                break;
        default:
                break;
        }
        json_gen_object_close(g);
        return json_gen_line(g, CONTROL_REQUEST_MAX + 1, ret, ret_len);
}

int control_request_check(const struct control_request *req, struct tn_err **err)
{
        _cleanup_free_ char *line = NULL;
        size_t len;
        int r = control_request_encode(req, &line, &len);
        if (r == -EMSGSIZE)
                return tn_err_setx(err, EMSGSIZE, "the request is longer than %u bytes",
                                   CONTROL_REQUEST_MAX);
        if (r == -EINVAL)
                return tn_err_setx(err, EINVAL, "the request holds text that is not UTF-8");
        if (r < 0)
                return tn_err_setx(err, -r, "cannot encode the request");
        struct control_request back;
        r = control_request_decode(line, len - 1, &back, err);
        if (r < 0)
                return r;
        control_request_clear(&back);
        return 0;
}

/* ---- replies ---- */

const char *control_error_code(int r)
{
        switch (-r) {
        case EBUSY:
                return "busy";
        case ENOENT:
                return "not-found";
        case EINVAL:
                return "invalid";
        case EACCES:
        case EPERM:
                return "denied";
        case EALREADY:
                return "already";
        case EOPNOTSUPP:
                return "unsupported";
        case ESRCH:
                return "not-running";
        default:
                return "failed";
        }
}

struct json_gen *control_stream_open(void)
{
        struct json_gen *g = json_gen_new(false);
        if (!g)
                return NULL;
        json_gen_object_open(g);
        json_gen_key(g, CTL_V);
        json_gen_int(g, CONTROL_PROTO_VERSION);
        return g;
}

struct json_gen *control_reply_open(bool ok)
{
        struct json_gen *g = control_stream_open();
        if (!g)
                return NULL;
        json_gen_key(g, CTL_OK);
        json_gen_bool(g, ok);
        return g;
}

void control_gen_text(struct json_gen *g, const char *s)
{
        size_t len = strlen(s);
        char small[LOGTEXT_MAX(256)];
        char *out = len <= 256 ? small : malloc(LOGTEXT_MAX(len));
        if (!out) {
                json_gen_string(g, "(out of memory)");
                return;
        }
        size_t n = logtext_show(s, len, out);
        json_gen_string_len(g, out, n);
        if (out != small)
                free(out);
}

int control_error_encode(int r, const char *msg, char **ret, size_t *ret_len)
{
        _cleanup_json_gen_ struct json_gen *g = control_reply_open(false);
        if (!g)
                return -ENOMEM;
        json_gen_key(g, CTL_ERROR);
        control_gen_text(g, msg && *msg ? msg : strerror(-r));
        json_gen_key(g, CTL_CODE);
        json_gen_string(g, control_error_code(r));
        json_gen_object_close(g);
        return json_gen_line(g, SIZE_MAX, ret, ret_len);
}
