/* exec_proto.c — the byte frames of an exec session (see exec_proto.h). */
#include "proto/exec_proto.h"

#include <errno.h>

uint32_t exec_be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void exec_put_be32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}

void exec_frame_header(uint8_t hdr[EXEC_FRAME_HEADER], enum exec_frame_type type, size_t len)
{
        hdr[0] = (uint8_t)type;
        exec_put_be32(hdr + 1, (uint32_t)len);
}

int exec_frame_decode(const uint8_t *buf, size_t len, bool from_client, struct exec_frame *ret)
{
        if (len < 1)
                return 0;
        bool ok = from_client
                      ? buf[0] == EXEC_STDIN || buf[0] == EXEC_WINSIZE
                      : buf[0] == EXEC_STDOUT || buf[0] == EXEC_STDERR || buf[0] == EXEC_EXIT;
        if (!ok)
                return -EPROTO;
        if (len < EXEC_FRAME_HEADER)
                return 0;
        uint32_t n = exec_be32(buf + 1);
        if (n > (from_client ? EXEC_CLIENT_FRAME_MAX : EXEC_FRAME_MAX) ||
            (buf[0] == EXEC_WINSIZE && n != 4) || (buf[0] == EXEC_EXIT && n != 4))
                return -EPROTO;
        if (len - EXEC_FRAME_HEADER < n)
                return 0;
        *ret = (struct exec_frame){
            .type = (enum exec_frame_type)buf[0], .data = buf + EXEC_FRAME_HEADER, .len = n};
        return (int)(EXEC_FRAME_HEADER + n);
}
