/* fuzz_agent_host.c — libFuzzer target for tenantd's side of the protocol: bytes from a
 * (possibly hostile) guest go through the frame reader and agent_msg_decode().
 *
 * Properties: every refusal says why, no frame is longer than the cap or holds a
 * newline, the reader never holds more than 1 MiB, and whatever decodes encodes back to
 * a frame that decodes again. Reply ids map to ops by id % (AGENT_OP_LIMITS + 1), every op (0: no request). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/agent_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int op_of(uint32_t id, void *userdata)
{
        (void)userdata;
        int op = (int)(id % (AGENT_OP_LIMITS + 1));
        return op == 0 ? -1 : op;
}

static int op_of_reply(uint32_t id, void *userdata)
{
        const struct agent_reply *rep = userdata;
        return id == rep->id ? (int)rep->op : -1;
}

static void check_msg(const char *line, size_t len)
{
        struct agent_msg m, again;
        struct tn_err *err = NULL;
        if (agent_msg_decode(line, len, op_of, NULL, &m, &err) < 0) {
                if (!err || !tn_err_msg(err)[0])
                        abort();
                tn_err_free(err);
                return;
        }
        if (err)
                abort();
        char *frame = NULL;
        size_t n = 0;
        int r = m.is_event ? agent_event_encode(&m.event, &frame, &n)
                           : agent_reply_encode(&m.reply, &frame, &n);
        if (r < 0)
                abort(); /* accepted but cannot be said back */
        if (agent_msg_decode(frame, n - 1, op_of_reply, &m.reply, &again, NULL) < 0)
                abort();
        if (again.is_event != m.is_event)
                abort();
        if (m.is_event && (again.event.kind != m.event.kind || again.event.len != m.event.len ||
                           (m.event.len && memcmp(again.event.data, m.event.data, m.event.len))))
                abort();
        if (m.is_event && (again.event.denied.nr != m.event.denied.nr ||
                           again.event.denied.count != m.event.denied.count ||
                           again.event.n_calls != m.event.n_calls ||
                           (m.event.n_calls && memcmp(again.event.calls, m.event.calls,
                                                      m.event.n_calls * sizeof(*m.event.calls)))))
                abort();
        free(frame);
        agent_msg_clear(&again);
        agent_msg_clear(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct agent_reader r;
        agent_reader_init(&r);
        size_t off = 0, step = size > 0 ? (size_t)data[0] % 97 + 1 : 1;
        while (off < size) {
                size_t want = size - off < step ? size - off : step;
                off += agent_reader_feed(&r, data + off, want);
                const char *line;
                size_t len;
                enum agent_read k;
                while ((k = agent_reader_next(&r, &line, &len)) != AGENT_READ_NONE) {
                        if (k != AGENT_READ_FRAME)
                                continue;
                        if (len >= AGENT_FRAME_MAX || memchr(line, '\n', len))
                                abort();
                        check_msg(line, len);
                }
                if (r.cap > AGENT_FRAME_MAX)
                        abort();
                step = step * 5 % 8191 + 1;
        }
        /* A last line without its newline is not a frame: the host waits for more. */
        agent_reader_free(&r);
        return 0;
}
