/* fuzz_control.c — libFuzzer target for tenantd's side of the control protocol: each
 * line of the input goes through control_request_decode(), as a client's request would.
 *
 * Properties: every refusal says why, and its error reply encodes (a reply is never
 * lost to a byte the JSON generator refuses); whatever decodes encodes back, through
 * the one encoder tenantctl uses, to a line that decodes to the same request. The
 * saved corpus (tests/fuzz/corpus/control) replays in `make check`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/control_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_strv(const char *const *a, const char *const *b, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(a[i], b[i]) != 0)
                        return false;
        return true;
}

static void check_same(const struct control_request *a, const struct control_request *b)
{
        if (a->op != b->op || !a->name != !b->name || (a->name && strcmp(a->name, b->name)) ||
            a->timeout_ms != b->timeout_ms || a->signal != b->signal || a->lines != b->lines ||
            a->follow != b->follow || a->argc != b->argc || a->tty != b->tty ||
            a->n_values != b->n_values || a->save != b->save)
                abort();
        if (a->argc && (!same_strv(a->argv, b->argv, a->argc) || b->argv[b->argc]))
                abort();
        if (a->tty && (a->rows != b->rows || a->cols != b->cols))
                abort();
        if (a->n_values && (!same_strv(a->keys, b->keys, a->n_values) ||
                            !same_strv(a->values, b->values, a->n_values)))
                abort();
        if (a->action != b->action || a->yes != b->yes || !a->snapshot != !b->snapshot ||
            (a->snapshot && strcmp(a->snapshot, b->snapshot)) || !a->as != !b->as ||
            (a->as && strcmp(a->as, b->as)))
                abort();
}

static void check_line(const char *line, size_t len)
{
        struct control_request req, again;
        struct tn_err *err = NULL;
        if (control_request_decode(line, len, &req, &err) < 0) {
                if (!err || !tn_err_msg(err)[0])
                        abort();
                char *reply = NULL;
                size_t n = 0;
                if (control_error_encode(-EINVAL, tn_err_msg(err), &reply, &n) < 0 ||
                    reply[n - 1] != '\n' || memchr(reply, '\n', n - 1))
                        abort(); /* the client would hear nothing */
                free(reply);
                tn_err_free(err);
                return;
        }
        if (err)
                abort();
        if (control_request_check(&req, NULL) < 0)
                abort(); /* accepted, but a client could not send it */
        char *out = NULL;
        size_t n = 0;
        if (control_request_encode(&req, &out, &n) < 0 || n - 1 > CONTROL_REQUEST_MAX)
                abort();
        if (control_request_decode(out, n - 1, &again, NULL) < 0)
                abort();
        check_same(&req, &again);
        free(out);
        control_request_clear(&again);
        control_request_clear(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *p = (const char *)data, *end = p + size;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
                if (len <= CONTROL_REQUEST_MAX) /* tenantd refuses longer lines unread */
                        check_line(p, len);
                p += len + 1;
        }
        return 0;
}
