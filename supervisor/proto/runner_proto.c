/* runner_proto.c — the VM runner's exec socket codec (see runner_proto.h). */
#include "proto/runner_proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/agent_proto.h"

static const struct json_limits runner_limits = {
    .max_bytes = RUNNER_REQUEST_MAX, .max_depth = 4, .allow_comments = false};

static bool argv_ok(const char *const *argv, size_t argc)
{
        if (argc == 0 || argc > RUNNER_ARGV_MAX || !argv || !argv[0] || argv[0][0] != '/')
                return false;
        for (size_t i = 0; i < argc; i++)
                if (!argv[i])
                        return false;
        return true;
}

static int console_encode(const struct runner_request *req, char **ret, size_t *ret_len)
{
        if (!req->rows || !req->cols)
                return -EINVAL;
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(false);
        if (!g)
                return -ENOMEM;
        json_gen_object_open(g);
        json_gen_key(g, "console");
        json_gen_object_open(g);
        json_gen_key(g, "rows");
        json_gen_int(g, req->rows);
        json_gen_key(g, "cols");
        json_gen_int(g, req->cols);
        json_gen_key(g, "force");
        json_gen_bool(g, req->force);
        json_gen_object_close(g);
        json_gen_object_close(g);
        return json_gen_line(g, RUNNER_REQUEST_MAX, ret, ret_len);
}

static int limits_encode(const struct runner_request *req, char **ret, size_t *ret_len)
{
        if (req->pids_max > AGENT_PIDS_MAX)
                return -EINVAL;
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(false);
        if (!g)
                return -ENOMEM;
        json_gen_object_open(g);
        json_gen_key(g, "limits");
        json_gen_object_open(g);
        json_gen_key(g, "pids_max");
        json_gen_int(g, req->pids_max);
        json_gen_object_close(g);
        json_gen_object_close(g);
        return json_gen_line(g, RUNNER_REQUEST_MAX, ret, ret_len);
}

int runner_request_encode(const struct runner_request *req, char **ret, size_t *ret_len)
{
        if (req->kind == RUNNER_CONSOLE)
                return console_encode(req, ret, ret_len);
        if (req->kind == RUNNER_LIMITS)
                return limits_encode(req, ret, ret_len);
        bool health = req->kind != RUNNER_EXEC;
        bool by_port = req->kind == RUNNER_HEALTH_TCP || req->kind == RUNNER_HEALTH_HTTP;
        if (!by_port && !argv_ok(req->argv, req->argc))
                return -EINVAL;
        if (by_port && req->port == 0)
                return -EINVAL;
        if (req->kind == RUNNER_HEALTH_HTTP &&
            (!req->path || !agent_http_path_ok(req->path, strlen(req->path))))
                return -EINVAL;
        if (health &&
            (req->timeout_ms < RUNNER_TIMEOUT_MIN_MS || req->timeout_ms > RUNNER_TIMEOUT_MAX_MS))
                return -EINVAL;
        if (req->tty && (health || !req->rows || !req->cols))
                return -EINVAL;
        if (req->stdin_open && health)
                return -EINVAL;
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(false);
        if (!g)
                return -ENOMEM;
        json_gen_object_open(g);
        if (health) {
                json_gen_key(g, "health");
                json_gen_object_open(g);
        }
        if (by_port) {
                json_gen_key(g, req->kind == RUNNER_HEALTH_TCP ? "tcp" : "http");
                json_gen_int(g, req->port);
                if (req->kind == RUNNER_HEALTH_HTTP) {
                        json_gen_key(g, "path");
                        json_gen_string(g, req->path);
                }
        } else {
                json_gen_key(g, health ? "exec" : "argv");
                json_gen_array_open(g);
                for (size_t i = 0; i < req->argc; i++)
                        json_gen_string(g, req->argv[i]);
                json_gen_array_close(g);
        }
        if (req->stdin_open || req->tty) {
                json_gen_key(g, "stdin");
                json_gen_bool(g, true);
        }
        if (req->tty) {
                json_gen_key(g, "tty");
                json_gen_object_open(g);
                json_gen_key(g, "rows");
                json_gen_int(g, req->rows);
                json_gen_key(g, "cols");
                json_gen_int(g, req->cols);
                json_gen_object_close(g);
        }
        if (health) {
                json_gen_key(g, "timeout_ms");
                json_gen_int(g, req->timeout_ms);
                json_gen_object_close(g);
        }
        json_gen_object_close(g);
        return json_gen_line(g, RUNNER_REQUEST_MAX, ret, ret_len);
}

void runner_request_clear(struct runner_request *req)
{
        if (!req)
                return;
        json_free(req->tree);
        free(req->vec_);
        *req = (struct runner_request){0};
}

static int decode_argv(const struct json_value *av, const char *key, struct runner_request *r,
                       struct tn_err **err)
{
        if (!av || av->type != JSON_ARRAY || av->u.array.n == 0 || av->u.array.n > RUNNER_ARGV_MAX)
                return tn_err_setx(err, EINVAL, "\"%s\" must be an array of 1 to %d strings", key,
                                   RUNNER_ARGV_MAX);
        r->vec_ = calloc(av->u.array.n + 1, sizeof(char *));
        if (!r->vec_)
                return tn_err_setx(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < av->u.array.n; i++) {
                const struct json_value *s = av->u.array.items[i];
                if (s->type != JSON_STRING || strlen(s->u.str.text) != s->u.str.len)
                        return tn_err_setx(err, EINVAL, "\"%s\" must hold strings without NUL",
                                           key);
                r->vec_[i] = s->u.str.text;
        }
        if (r->vec_[0][0] != '/')
                return tn_err_setx(err, EINVAL, "\"%s\": the command must be an absolute path",
                                   key);
        r->argv = (const char *const *)r->vec_;
        r->argc = av->u.array.n;
        return 0;
}

static int decode_health(const struct json_value *h, struct runner_request *r, struct tn_err **err)
{
        if (h->type != JSON_OBJECT)
                return tn_err_setx(err, EINVAL, "\"health\" must be an object");
        const struct json_value *tcp = json_get(h, "tcp"), *http = json_get(h, "http"),
                                *path = json_get(h, "path"), *ex = json_get(h, "exec"),
                                *to = json_get(h, "timeout_ms");
        int64_t n;
        if (!to || !json_number_int64(to, &n) || n < RUNNER_TIMEOUT_MIN_MS ||
            n > RUNNER_TIMEOUT_MAX_MS)
                return tn_err_setx(err, EINVAL,
                                   "\"health.timeout_ms\" must be an integer from %d to %d",
                                   RUNNER_TIMEOUT_MIN_MS, RUNNER_TIMEOUT_MAX_MS);
        r->timeout_ms = (uint32_t)n;
        if (!!tcp + !!http + !!ex != 1)
                return tn_err_setx(err, EINVAL,
                                   "\"health\" holds one of \"tcp\", \"http\" and \"exec\"");
        if (!http != !path)
                return tn_err_setx(err, EINVAL, "\"health.path\" goes with \"health.http\"");
        if (ex) {
                r->kind = RUNNER_HEALTH_EXEC;
                return decode_argv(ex, "health.exec", r, err);
        }
        if (!json_number_int64(tcp ? tcp : http, &n) || n < 1 || n > 65535)
                return tn_err_setx(err, EINVAL, "\"health.%s\" must be a port from 1 to 65535",
                                   tcp ? "tcp" : "http");
        if (http &&
            (path->type != JSON_STRING || !agent_http_path_ok(path->u.str.text, path->u.str.len)))
                return tn_err_setx(err, EINVAL,
                                   "\"health.path\" must be a path of at most %d bytes that "
                                   "starts with '/' and holds no space or control character",
                                   AGENT_HEALTH_PATH_MAX);
        r->kind = tcp ? RUNNER_HEALTH_TCP : RUNNER_HEALTH_HTTP;
        r->port = (uint16_t)n;
        r->path = http ? path->u.str.text : NULL;
        return 0;
}

/* An exec request's "stdin" and "tty"; nothing else beside "argv". */
static int decode_exec_io(const struct json_value *v, struct runner_request *r, struct tn_err **err)
{
        for (size_t i = 0; i < v->u.object.n; i++) {
                const char *k = v->u.object.items[i].key;
                if (strcmp(k, "argv") != 0 && strcmp(k, "stdin") != 0 && strcmp(k, "tty") != 0)
                        return tn_err_setx(err, EINVAL,
                                           "an exec request holds \"argv\", "
                                           "\"stdin\" and \"tty\" only");
        }
        const struct json_value *in = json_get(v, "stdin"), *tty = json_get(v, "tty");
        if (in && in->type != JSON_BOOL)
                return tn_err_setx(err, EINVAL, "\"stdin\" must be true or false");
        r->stdin_open = in && in->u.boolean;
        if (!tty)
                return 0;
        const struct json_value *rows = tty->type == JSON_OBJECT ? json_get(tty, "rows") : NULL,
                                *cols = tty->type == JSON_OBJECT ? json_get(tty, "cols") : NULL;
        int64_t nr, nc;
        if (!rows || !cols || tty->u.object.n != 2 || !json_number_int64(rows, &nr) ||
            !json_number_int64(cols, &nc) || nr < 1 || nr > 65535 || nc < 1 || nc > 65535)
                return tn_err_setx(err, EINVAL,
                                   "\"tty\" must be {\"rows\":N,\"cols\":N} of 1 to "
                                   "65535 each");
        if (!r->stdin_open)
                return tn_err_setx(err, EINVAL, "\"tty\" goes with \"stdin\":true");
        r->tty = true;
        r->rows = (uint16_t)nr;
        r->cols = (uint16_t)nc;
        return 0;
}

/* {"rows":N,"cols":N,"force":BOOL}, "force" optional, nothing else. */
static int decode_console(const struct json_value *c, struct runner_request *r, struct tn_err **err)
{
        const struct json_value *rows = c->type == JSON_OBJECT ? json_get(c, "rows") : NULL,
                                *cols = c->type == JSON_OBJECT ? json_get(c, "cols") : NULL,
                                *force = c->type == JSON_OBJECT ? json_get(c, "force") : NULL;
        int64_t nr, nc;
        if (!rows || !cols || c->u.object.n != 2u + !!force || !json_number_int64(rows, &nr) ||
            !json_number_int64(cols, &nc) || nr < 1 || nr > 65535 || nc < 1 || nc > 65535 ||
            (force && force->type != JSON_BOOL))
                return tn_err_setx(err, EINVAL,
                                   "\"console\" must be {\"rows\":N,\"cols\":N,\"force\":BOOL} "
                                   "with 1 to 65535 rows and columns");
        r->kind = RUNNER_CONSOLE;
        r->rows = (uint16_t)nr;
        r->cols = (uint16_t)nc;
        r->force = force && force->u.boolean;
        return 0;
}

/* {"pids_max":N}, nothing else. */
static int decode_limits(const struct json_value *l, struct runner_request *r, struct tn_err **err)
{
        const struct json_value *p = l->type == JSON_OBJECT ? json_get(l, "pids_max") : NULL;
        int64_t n;
        if (!p || l->u.object.n != 1 || !json_number_int64(p, &n) || n < 0 || n > AGENT_PIDS_MAX)
                return tn_err_setx(err, EINVAL,
                                   "\"limits\" must be {\"pids_max\":N} with N from 0 (no "
                                   "limit) to %d",
                                   AGENT_PIDS_MAX);
        r->kind = RUNNER_LIMITS;
        r->pids_max = (uint32_t)n;
        return 0;
}

int runner_request_decode(const char *line, size_t len, struct runner_request *ret,
                          struct tn_err **err)
{
        if (len && line[len - 1] == '\n')
                len--;
        _cleanup_json_ struct json_value *v = NULL;
        int r = json_parse_err(line, len, &runner_limits, "bad request", &v, err);
        if (r < 0)
                return r;
        if (v->type != JSON_OBJECT)
                return tn_err_setx(err, EINVAL, "a request is an object");
        const struct json_value *av = json_get(v, "argv"), *h = json_get(v, "health"),
                                *con = json_get(v, "console"), *lim = json_get(v, "limits");
        if (!!av + !!h + !!con + !!lim != 1 || ((con || lim) && v->u.object.n != 1))
                return tn_err_setx(err, EINVAL,
                                   "a request holds one of \"argv\", \"health\", \"console\" "
                                   "and \"limits\"");
        struct runner_request res = {.kind = RUNNER_EXEC};
        r = lim   ? decode_limits(lim, &res, err)
            : con ? decode_console(con, &res, err)
            : h   ? decode_health(h, &res, err)
                  : decode_argv(av, "argv", &res, err);
        if (r >= 0 && av)
                r = decode_exec_io(v, &res, err);
        if (r < 0) {
                free(res.vec_);
                return r;
        }
        res.tree = TAKE_PTR(v);
        *ret = res;
        return 0;
}

/* ---- the answer to a health check ---- */

int runner_health_encode(bool healthy, const char *detail, char **ret, size_t *ret_len)
{
        if (!detail)
                detail = "";
        size_t n = strnlen(detail, RUNNER_DETAIL_MAX + 1);
        if (n > RUNNER_DETAIL_MAX) {
                n = RUNNER_DETAIL_MAX;
                while (n > 0 && ((unsigned char)detail[n] & 0xc0) == 0x80)
                        n--;
        }
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(false);
        if (!g)
                return -ENOMEM;
        json_gen_object_open(g);
        json_gen_key(g, "status");
        json_gen_int(g, healthy ? 0 : 1);
        json_gen_key(g, "detail");
        json_gen_string_len(g, detail, n);
        json_gen_object_close(g);
        return json_gen_line(g, RUNNER_REQUEST_MAX, ret, ret_len);
}

int runner_health_decode(const char *line, size_t len, bool *ret_healthy, char **ret_detail,
                         struct tn_err **err)
{
        if (len && line[len - 1] == '\n')
                len--;
        _cleanup_json_ struct json_value *v = NULL;
        int r = json_parse_err(line, len, &runner_limits, "bad answer", &v, err);
        if (r < 0)
                return r;
        const struct json_value *st = json_get(v, "status"), *dt = json_get(v, "detail");
        int64_t n;
        if (!st || !json_number_int64(st, &n) || (n != 0 && n != 1))
                return tn_err_setx(err, EINVAL, "\"status\" must be 0 or 1");
        if (dt && (dt->type != JSON_STRING || dt->u.str.len > RUNNER_DETAIL_MAX ||
                   strlen(dt->u.str.text) != dt->u.str.len))
                return tn_err_setx(err, EINVAL, "\"detail\" must be a string of at most %d bytes",
                                   RUNNER_DETAIL_MAX);
        char *d = strdup(dt ? dt->u.str.text : "");
        if (!d)
                return tn_err_setx(err, ENOMEM, "out of memory");
        *ret_healthy = n == 0;
        *ret_detail = d;
        return 0;
}
