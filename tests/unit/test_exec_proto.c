/* test_exec_proto.c — the exec frame codec (proto/exec_proto.h): frames each side may
 * send, partial frames, the size limits per direction, and the fixed-size frames. */
#include <errno.h>
#include <string.h>

#include "proto/exec_proto.h"
#include "tap.h"

static uint8_t buf[EXEC_FRAME_HEADER + EXEC_FRAME_MAX + 1];

static int decode(char type, uint32_t n, size_t have, bool from_client, struct exec_frame *f)
{
        buf[0] = (uint8_t)type;
        exec_put_be32(buf + 1, n);
        memset(buf + EXEC_FRAME_HEADER, 'x', sizeof(buf) - EXEC_FRAME_HEADER);
        return exec_frame_decode(buf, have, from_client, f);
}

int main(void)
{
        struct exec_frame f;
        /* A whole frame from the client, and the header the encoder writes for it. */
        is_int(decode(EXEC_STDIN, 3, EXEC_FRAME_HEADER + 3, true, &f), EXEC_FRAME_HEADER + 3,
               "a stdin frame of 3 bytes takes header + 3");
        ok(f.type == EXEC_STDIN && f.len == 3 && f.data == buf + EXEC_FRAME_HEADER,
           "... type, length and data point into the buffer");
        uint8_t hdr[EXEC_FRAME_HEADER];
        exec_frame_header(hdr, EXEC_STDIN, 3);
        ok(memcmp(hdr, buf, EXEC_FRAME_HEADER) == 0, "exec_frame_header writes the same header");
        is_int(decode(EXEC_STDIN, 0, EXEC_FRAME_HEADER, true, &f), EXEC_FRAME_HEADER,
               "an empty stdin frame (end of stdin) decodes");

        /* Partial input waits; a bad type is refused at once, even before the length. */
        is_int(decode(EXEC_STDIN, 3, 0, true, &f), 0, "nothing yet: 0");
        is_int(decode(EXEC_STDIN, 3, 2, true, &f), 0, "half a header: 0");
        is_int(decode(EXEC_STDIN, 3, EXEC_FRAME_HEADER + 2, true, &f), 0, "short data: 0");
        is_int(decode('Z', 0, 1, true, &f), -EPROTO, "an unknown type: -EPROTO at its first byte");

        /* Each side sends only its own types. */
        is_int(decode(EXEC_STDOUT, 1, EXEC_FRAME_HEADER + 1, true, &f), -EPROTO,
               "a client may not send stdout");
        is_int(decode(EXEC_EXIT, 4, EXEC_FRAME_HEADER + 4, true, &f), -EPROTO,
               "a client may not send exit");
        is_int(decode(EXEC_STDIN, 1, EXEC_FRAME_HEADER + 1, false, &f), -EPROTO,
               "tenantd may not send stdin");
        is_int(decode(EXEC_STDERR, 1, EXEC_FRAME_HEADER + 1, false, &f), EXEC_FRAME_HEADER + 1,
               "tenantd sends stderr");

        /* The limits: 32 KiB from a client, 64 KiB to it; window size and exit are 4 bytes. */
        is_int(decode(EXEC_STDIN, EXEC_CLIENT_FRAME_MAX, EXEC_FRAME_HEADER, true, &f), 0,
               "a client frame at its limit is waited for");
        is_int(decode(EXEC_STDIN, EXEC_CLIENT_FRAME_MAX + 1, EXEC_FRAME_HEADER, true, &f), -EPROTO,
               "a client frame over 32 KiB is refused from its header, before its data");
        is_int(decode(EXEC_STDOUT, EXEC_FRAME_MAX, EXEC_FRAME_HEADER + EXEC_FRAME_MAX, false, &f),
               (int)(EXEC_FRAME_HEADER + EXEC_FRAME_MAX), "a stdout frame of 64 KiB decodes");
        is_int(decode(EXEC_STDOUT, EXEC_FRAME_MAX + 1, EXEC_FRAME_HEADER, false, &f), -EPROTO,
               "a stdout frame over 64 KiB is refused");
        is_int(decode(EXEC_STDOUT, UINT32_MAX, EXEC_FRAME_HEADER, false, &f), -EPROTO,
               "a length of 2^32-1 is refused, not wrapped");
        is_int(decode(EXEC_WINSIZE, 3, EXEC_FRAME_HEADER + 3, true, &f), -EPROTO,
               "a window size frame that is not 4 bytes is refused");
        is_int(decode(EXEC_EXIT, 8, EXEC_FRAME_HEADER + 8, false, &f), -EPROTO,
               "an exit frame that is not 4 bytes is refused");

        /* The exit status round trip. */
        uint8_t st[4];
        exec_put_be32(st, 0x80000102u);
        ok(st[0] == 0x80 && st[3] == 0x02 && exec_be32(st) == 0x80000102u,
           "status bytes are big endian and read back");
        return tap_done();
}
