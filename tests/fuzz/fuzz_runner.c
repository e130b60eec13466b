/* fuzz_runner.c — libFuzzer target for the VM runner's exec socket (runner_proto.h): the
 * input's first line goes through runner_request_decode(), as a request on exec.sock
 * would, and the whole input through runner_health_decode(), as an answer tenantd reads.
 *
 * Properties: every refusal says why; whatever decodes encodes back to one line that
 * decodes to the same request or answer. The corpus (tests/fuzz/corpus/runner) replays
 * in `make check`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/runner_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const char *line, size_t len)
{
        struct runner_request req, again;
        struct tn_err *err = NULL;
        if (runner_request_decode(line, len, &req, &err) < 0) {
                if (!err || !tn_err_msg(err)[0])
                        abort();
                tn_err_free(err);
                return;
        }
        char *out = NULL;
        size_t n = 0;
        int r = runner_request_encode(&req, &out, &n);
        if (r == -EMSGSIZE) { /* escaping may lengthen what fit as it came */
                runner_request_clear(&req);
                return;
        }
        if (r < 0 || out[n - 1] != '\n' || memchr(out, '\n', n - 1))
                abort();
        if (runner_request_decode(out, n, &again, NULL) < 0)
                abort();
        if (again.kind != req.kind || again.argc != req.argc || again.port != req.port ||
            again.timeout_ms != req.timeout_ms)
                abort();
        for (size_t i = 0; i < req.argc; i++)
                if (strcmp(req.argv[i], again.argv[i]) != 0)
                        abort();
        free(out);
        runner_request_clear(&again);
        runner_request_clear(&req);
}

static void check_answer(const char *line, size_t len)
{
        bool healthy, again_healthy;
        char *detail = NULL, *again = NULL, *out = NULL;
        size_t n = 0;
        struct tn_err *err = NULL;
        if (runner_health_decode(line, len, &healthy, &detail, &err) < 0) {
                if (!err || !tn_err_msg(err)[0])
                        abort();
                tn_err_free(err);
                return;
        }
        if (runner_health_encode(healthy, detail, &out, &n) < 0 || n > RUNNER_ANSWER_MAX ||
            runner_health_decode(out, n, &again_healthy, &again, NULL) < 0 ||
            again_healthy != healthy || strcmp(again, detail) != 0)
                abort();
        free(out);
        free(again);
        free(detail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *p = (const char *)data;
        const char *nl = memchr(p, '\n', size);
        size_t first = nl ? (size_t)(nl - p) + 1 : size;
        if (first <= RUNNER_REQUEST_MAX) /* the runner reads one request of at most this */
                check_request(p, first);
        if (size <= RUNNER_ANSWER_MAX)
                check_answer(p, size);
        return 0;
}
