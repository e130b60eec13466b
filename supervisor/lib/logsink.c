/* logsink.c — a tenant's log file (see logsink.h). */
#include "lib/logsink.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "lib/clock.h"

/* Small pieces: the keeper lives as long as its tenant, and every page these buffers
 * ever touched stays its own. */
#define READ_CHUNK (8U << 10)

static void sink_rotate(struct log_sink *s)
{
        if (s->fd >= 0)
                close(s->fd);
        char from[96], to[96];
        for (uint32_t i = s->keep; i >= 1; i--) {
                if (i == 1)
                        snprintf(from, sizeof(from), "%s", s->file);
                else
                        snprintf(from, sizeof(from), "%s.%u", s->file, i - 1);
                snprintf(to, sizeof(to), "%s.%u", s->file, i);
                (void)renameat(s->dirfd, from, s->dirfd, to);
        }
        s->fd = openat(s->dirfd, s->file,
                       O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
        s->size = 0;
}

void log_sink_raw(struct log_sink *s, const char *buf, size_t len)
{
        while (len > 0 && s->fd >= 0) {
                size_t room = s->max_size > s->size ? (size_t)(s->max_size - s->size) : 0;
                size_t n = len < room ? len : room;
                if (n == 0) {
                        sink_rotate(s);
                        continue;
                }
                ssize_t w = write(s->fd, buf, n);
                if (w <= 0)
                        return; /* a full disk loses output, never the tenant */
                s->size += (uint64_t)w;
                s->mid_line = buf[w - 1] != '\n';
                buf += w;
                len -= (size_t)w;
        }
}

/* Complete lines go to syslog as well when the manifest asks; control characters were
 * already the tenant's choice in its own log file, but not in the system's. */
static void sink_syslog(struct log_sink *s, const char *buf, size_t len)
{
        for (size_t i = 0; i < len; i++) {
                char c = buf[i];
                if (c == '\n' || s->line_len == sizeof(s->line) - 1) {
                        s->line[s->line_len] = '\0';
                        syslog(LOG_INFO, "tenant=%s %s", s->tenant, s->line);
                        s->line_len = 0;
                        if (c == '\n')
                                continue;
                }
                s->line[s->line_len++] = (unsigned char)c < 0x20 || c == 0x7f ? '?' : c;
        }
}

void log_sink_refill(struct log_sink *s)
{
        uint64_t now = clock_ms(CLOCK_MONOTONIC);
        uint64_t add = (now - s->refilled_ms) * s->rate / 1000;
        if (add > 0) {
                s->tokens = s->tokens + add > s->burst ? s->burst : s->tokens + add;
                s->refilled_ms = now;
        }
}

void log_sink_drop_note(struct log_sink *s)
{
        if (!s->dropped || s->tokens == 0)
                return;
        char note[160];
        int n = snprintf(note, sizeof(note),
                         "\n[tenantd: %" PRIu64 " bytes of output dropped: over the rate limit of "
                         "%" PRIu64 " bytes/s]\n",
                         s->dropped, s->rate);
        log_sink_raw(s, note, (size_t)n);
        s->dropped = 0;
}

/* The tenant's bytes, escaped (logtext.h): in the file, "[tenantd" begins only
 * tenantd's own notes, and nothing in it drives the terminal of whoever reads it. */
static void sink_text(struct log_sink *s, const char *buf, size_t len, bool final)
{
        static char out[LOGTEXT_MAX(READ_CHUNK)];
        while (len > 0 || final) {
                size_t n = len < READ_CHUNK ? len : READ_CHUNK;
                size_t o = logtext_stream(&s->text, buf, n, final && n == len, out);
                log_sink_raw(s, out, o);
                if (s->to_syslog)
                        sink_syslog(s, out, o);
                buf += n;
                len -= n;
                if (len == 0)
                        break;
        }
}

void log_sink_write(struct log_sink *s, const char *buf, size_t len)
{
        if (s->rate) {
                log_sink_refill(s);
                size_t allowed = len < s->tokens ? len : (size_t)s->tokens;
                if (allowed == len)
                        log_sink_drop_note(s);
                s->dropped += len - allowed;
                s->tokens -= allowed;
                len = allowed;
        }
        if (len == 0)
                return;
        sink_text(s, buf, len, false);
}

void log_sink_note(struct log_sink *s, const char *fmt, ...)
{
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (n <= 0)
                return;
        sink_text(s, "", 0, true);
        if (s->mid_line)
                log_sink_raw(s, "\n", 1);
        log_sink_raw(s, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

bool log_sink_pump(int fd, struct log_sink *s)
{
        static char buf[READ_CHUNK];
        for (int i = 0; i < 16; i++) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN;
                if (n == 0)
                        return false;
                log_sink_write(s, buf, (size_t)n);
        }
        return true;
}

/* ---- across the exec ---- */

/* max_size.keep.rate.burst.tokens.refilled_ms.dropped.size.flags.held, numbers in
 * decimal, flags 1 syslog + 2 mid_line, held in hex (possibly empty). */
size_t log_sink_state_format(const struct log_sink *s, char *buf, size_t len)
{
        int n = snprintf(buf, len,
                         "%" PRIu64 ".%" PRIu32 ".%" PRIu64 ".%" PRIu64 ".%" PRIu64 ".%" PRIu64
                         ".%" PRIu64 ".%" PRIu64 ".%u.",
                         s->max_size, s->keep, s->rate, s->burst, s->tokens, s->refilled_ms,
                         s->dropped, s->size, (s->to_syslog ? 1U : 0U) | (s->mid_line ? 2U : 0U));
        if (n < 0 || (size_t)n >= len)
                return 0;
        size_t o = (size_t)n;
        for (size_t i = 0; i < s->text.n_held && i < LOGTEXT_HOLD; i++) {
                if (o + 3 > len)
                        return 0;
                snprintf(buf + o, 3, "%02x", s->text.held[i]);
                o += 2;
        }
        return o;
}

static bool parse_u64(const char **p, char end, uint64_t *ret)
{
        const char *s = *p;
        uint64_t v = 0;
        if (*s < '0' || *s > '9')
                return false;
        for (; *s >= '0' && *s <= '9'; s++) {
                if (v > (UINT64_MAX - 9) / 10)
                        return false;
                v = v * 10 + (uint64_t)(*s - '0');
        }
        if (*s != end)
                return false;
        *p = end ? s + 1 : s;
        *ret = v;
        return true;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

int log_sink_state_parse(const char *word, struct log_sink *s)
{
        uint64_t v[9];
        const char *p = word;
        for (size_t i = 0; i < 9; i++)
                if (!parse_u64(&p, '.', &v[i]))
                        return -EINVAL;
        if (v[1] > UINT32_MAX || v[8] > 3 || v[4] > v[3])
                return -EINVAL;
        struct logtext text = {0};
        size_t hl = strlen(p);
        if (hl % 2 || hl / 2 > LOGTEXT_HOLD)
                return -EINVAL;
        for (size_t i = 0; i < hl / 2; i++) {
                int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                text.held[i] = (unsigned char)(hi << 4 | lo);
        }
        text.n_held = hl / 2;
        s->max_size = v[0];
        s->keep = (uint32_t)v[1];
        s->rate = v[2];
        s->burst = v[3];
        s->tokens = v[4];
        s->refilled_ms = v[5];
        s->dropped = v[6];
        s->size = v[7];
        s->to_syslog = v[8] & 1;
        s->mid_line = v[8] & 2;
        s->line_len = 0;
        s->text = text;
        return 0;
}
