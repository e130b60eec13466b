/* exec_proto.h — the byte frames of an exec session, after its request was accepted:
 * between tenantctl and tenantd on the control socket, and between tenantd and a
 * microVM's runner on STATE/vm/NAME/exec.sock. One codec for both wires.
 *
 * A frame is a 5-byte header, its type (one byte) and its length (4 bytes, big
 * endian), then that many bytes, at most EXEC_FRAME_MAX. Anything else (an unknown
 * type, a longer length, a fixed-size frame of the wrong size) ends the session. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXEC_FRAME_HEADER 5
#define EXEC_FRAME_MAX (64U << 10)
/* A client's frames are smaller: tenantd buffers them in its request buffer (64 KiB),
 * which must hold a whole frame. */
#define EXEC_CLIENT_FRAME_MAX (32U << 10)

enum exec_frame_type {
        EXEC_STDIN = 'I',   /* client -> command; length 0: end of stdin */
        EXEC_WINSIZE = 'W', /* client -> command: rows, cols (2 x 16 bits, big endian) */
        EXEC_STDOUT = 'O',  /* command -> client */
        EXEC_STDERR = 'E',  /* command -> client */
        EXEC_EXIT = 'X',    /* command -> client, last: status (32 bits, big endian) */
};

struct exec_frame {
        enum exec_frame_type type;
        const uint8_t *data; /* into the buffer that was decoded */
        size_t len;
};

/* Writes a frame header for `len` bytes of `type` into hdr. */
void exec_frame_header(uint8_t hdr[EXEC_FRAME_HEADER], enum exec_frame_type type, size_t len);

/* Decodes the first frame of buf. Returns the bytes it takes (header included) and
 * fills *ret, 0 when buf holds no complete frame yet, -EPROTO when it is not a frame
 * this protocol allows. `from_client`: which types are allowed (I, W or O, E, X). */
int exec_frame_decode(const uint8_t *buf, size_t len, bool from_client, struct exec_frame *ret);

/* The status in an EXIT frame's 4 bytes, and the reverse. */
uint32_t exec_be32(const uint8_t *p);
void exec_put_be32(uint8_t *p, uint32_t v);
