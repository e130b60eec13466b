/* fuzz_agent_guest.c — libFuzzer target for the agent's side of the protocol: frames
 * from the host go through the frame reader and agent_request_decode().
 *
 * Besides "no crash, no leak, no UB", it checks properties: every refusal says why,
 * an oversized line yields no frame, and whatever decodes encodes to a frame that
 * decodes again and encodes to the same bytes. The input is also an http check's
 * answer for agent_http_status(), which must give -1 or a code from 100 to 599. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/agent_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const char *line, size_t len)
{
        struct agent_request req, again;
        struct tn_err *err = NULL;
        uint32_t id = 0;
        if (agent_request_decode(line, len, &req, &id, &err) < 0) {
                if (!err || !tn_err_msg(err)[0])
                        abort(); /* a refusal must say why */
                tn_err_free(err);
                return;
        }
        if (err || id != req.id || req.id == 0)
                abort();
        char *first = NULL, *second = NULL;
        size_t n1 = 0, n2 = 0;
        if (agent_request_encode(&req, &first, &n1) < 0)
                abort(); /* accepted but cannot be said back */
        if (agent_request_decode(first, n1 - 1, &again, NULL, NULL) < 0)
                abort();
        if (agent_request_encode(&again, &second, &n2) < 0 || n1 != n2 ||
            memcmp(first, second, n1) != 0)
                abort(); /* encoding is not a fixed point */
        free(first);
        free(second);
        agent_request_clear(&again);
        agent_request_clear(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* The input as one frame, as the decoder sees a line. */
        check_request((const char *)data, size);
        int code = agent_http_status((const char *)data, size);
        if (code != -1 && (code < 100 || code > 599))
                abort();

        /* The input as a byte stream through the reader, fed in uneven pieces. */
        struct agent_reader r;
        agent_reader_init(&r);
        size_t off = 0, step = size > 0 ? (size_t)data[0] % 61 + 1 : 1;
        while (off < size) {
                size_t want = size - off < step ? size - off : step;
                size_t used = agent_reader_feed(&r, data + off, want);
                off += used;
                const char *line;
                size_t len;
                enum agent_read k;
                while ((k = agent_reader_next(&r, &line, &len)) != AGENT_READ_NONE) {
                        if (k == AGENT_READ_FRAME) {
                                if (len >= AGENT_FRAME_MAX || memchr(line, '\n', len))
                                        abort();
                                check_request(line, len);
                        }
                }
                if (r.cap > AGENT_FRAME_MAX)
                        abort();
                step = step * 7 % 4093 + 1;
        }
        agent_reader_free(&r);
        return 0;
}
