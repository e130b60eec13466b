/* logsink.h — a tenant's output into its log file: escaped (logtext.h), rotated by size,
 * capped in rate, copied to syslog on request.
 *
 * The keeper writes through a sink while it starts the tenant (inside tenantd's fork)
 * and then, for the tenant's life, in tenantd-keeper (keeper_exec.h), the small program
 * it execs: the sink's state crosses that exec as one argv word (log_sink_state_format
 * and log_sink_state_parse), its two descriptors at fixed numbers. libc only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/logtext.h"

#define LOG_SINK_NAME_MAX 32 /* a tenant's name (MANIFEST_NAME_MAX) */

struct log_sink {
        int dirfd;                        /* the logs directory */
        char file[LOG_SINK_NAME_MAX + 8]; /* NAME.log */
        int fd;
        uint64_t size;
        uint64_t max_size;
        uint32_t keep;
        uint64_t rate;   /* bytes per second, 0 = unlimited */
        uint64_t tokens; /* token bucket, at most `burst` */
        uint64_t burst;
        uint64_t refilled_ms; /* CLOCK_MONOTONIC */
        uint64_t dropped;
        bool to_syslog;
        const char *tenant;
        char line[1024];
        size_t line_len;
        struct logtext text; /* the tenant's bytes are escaped before they are stored */
        bool mid_line;       /* the last byte stored was not a newline */
};

/* The tenant's bytes: rate cap, escaping, rotation (and syslog). */
void log_sink_write(struct log_sink *s, const char *buf, size_t len);
/* Bytes that are already safe (tenantd's own notes), as they are. */
void log_sink_raw(struct log_sink *s, const char *buf, size_t len);
/* One of tenantd's notes, on a line of its own: what the tenant left held back or
 * unfinished is written out first. */
void log_sink_note(struct log_sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_sink_refill(struct log_sink *s);
/* Once output is accepted again, or the tenant went quiet, the log says what was lost. */
void log_sink_drop_note(struct log_sink *s);
/* Reads what pipe `fd` (non-blocking) has into the sink; false once it is at its end. */
bool log_sink_pump(int fd, struct log_sink *s);

/* The state that changes, as one word of printable ASCII (no spaces), into buf
 * (LOG_SINK_STATE_MAX): the limits, the bucket, the sizes, what the escaper holds.
 * Only the state at a line's boundary for syslog crosses (line_len 0: the keeper has
 * not read the tenant's output yet when it execs). */
#define LOG_SINK_STATE_MAX 256
size_t log_sink_state_format(const struct log_sink *s, char *buf, size_t len);
/* Parses it into *s (dirfd, fd, file and tenant are left as they are); -EINVAL on
 * anything else, *s then untouched. */
int log_sink_state_parse(const char *word, struct log_sink *s);
