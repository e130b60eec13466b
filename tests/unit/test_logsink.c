/* test_logsink.c — a log sink's state across the keeper's exec (logsink.h): what the
 * keeper formats parses back the same, a character split between the output before
 * and after the exec is escaped as if it had not been, and a malformed word is refused
 * without touching the sink. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/logsink.h"
#include "tap.h"

/* A sink writing to a fresh file in dir; returns the file's descriptor for reading. */
static int sink_at(struct log_sink *s, int dirfd)
{
        *s = (struct log_sink){.dirfd = dirfd, .max_size = 1 << 20, .keep = 1, .tenant = "t"};
        snprintf(s->file, sizeof(s->file), "t.log");
        s->fd = openat(dirfd, s->file, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
        return openat(dirfd, s->file, O_RDONLY);
}

static char *read_all(int fd)
{
        static char buf[4096];
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
        buf[n < 0 ? 0 : n] = '\0';
        return buf;
}

int main(void)
{
        char tmpl[] = "/tmp/test_logsink.XXXXXX";
        if (!mkdtemp(tmpl))
                return 1;
        int dirfd = open(tmpl, O_RDONLY | O_DIRECTORY);

        struct log_sink a = {.max_size = 123456,
                             .keep = 3,
                             .rate = 4096,
                             .burst = 65536,
                             .tokens = 777,
                             .refilled_ms = 987654321,
                             .dropped = 42,
                             .size = 99,
                             .to_syslog = true,
                             .mid_line = true};
        a.text.n_held = 2;
        a.text.held[0] = 0xe2;
        a.text.held[1] = 0x80;
        char word[LOG_SINK_STATE_MAX];
        size_t n = log_sink_state_format(&a, word, sizeof(word));
        ok(n > 0 && n == strlen(word) && !strchr(word, ' '), "formatted as one word: %s", word);
        struct log_sink b = {.dirfd = 5, .fd = 6, .tenant = "x"};
        is_int(log_sink_state_parse(word, &b), 0, "parsed back");
        ok(b.max_size == a.max_size && b.keep == a.keep && b.rate == a.rate && b.burst == a.burst &&
               b.tokens == a.tokens && b.refilled_ms == a.refilled_ms && b.dropped == a.dropped &&
               b.size == a.size && b.to_syslog && b.mid_line,
           "every number and flag the same");
        ok(b.text.n_held == 2 && memcmp(b.text.held, a.text.held, 2) == 0,
           "the bytes the escaper held the same");
        ok(b.dirfd == 5 && b.fd == 6 && strcmp(b.tenant, "x") == 0,
           "descriptors and name left as they were");

        static const char *bad[] = {"",
                                    "1.2.3",
                                    "1.2.3.4.5.6.7.8.9.",
                                    "1.2.3.4.5.6.7.8.4.",
                                    "1.2.3.4.5.6.7.8.0.e",
                                    "1.2.3.4.5.6.7.8.0.zz",
                                    "1.2.3.4.5.6.7.8.0.000000000000000000",
                                    "1.99999999999.3.4.5.6.7.8.0.",
                                    "1.2.3.4.5.6.7.8.0",
                                    "1.2.3.2.5.6.7.8.0.",
                                    "-1.2.3.4.5.6.7.8.0.",
                                    "99999999999999999999.2.3.4.5.6.7.8.0."};
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
                struct log_sink c = {.size = 7};
                int r = log_sink_state_parse(bad[i], &c);
                ok(r == -EINVAL && c.size == 7, "refused, sink untouched: \"%s\"", bad[i]);
        }

        /* "é" = c3 a9, and ESC, split across the exec: the same as in one piece. */
        struct log_sink s1, s2, whole;
        int r1 = sink_at(&whole, dirfd);
        log_sink_write(&whole, "x\xc3\xa9\x1b[y\n", 7);
        char want[4096];
        snprintf(want, sizeof(want), "%s", read_all(r1));
        close(whole.fd);
        close(r1);
        int r2 = sink_at(&s1, dirfd);
        log_sink_write(&s1, "x\xc3", 2);
        ok(log_sink_state_format(&s1, word, sizeof(word)) > 0, "state with a held byte: %s", word);
        s2 = (struct log_sink){.dirfd = dirfd, .fd = s1.fd, .tenant = "t"};
        snprintf(s2.file, sizeof(s2.file), "t.log");
        is_int(log_sink_state_parse(word, &s2), 0, "parsed");
        log_sink_write(&s2, "\xa9\x1b[y\n", 5);
        is_str(read_all(r2), want, "the output is the same as if there had been no exec");
        close(s2.fd);
        close(r2);
        unlinkat(dirfd, "t.log", 0);
        unlinkat(dirfd, "t.log.1", 0);
        rmdir(tmpl);
        return tap_done();
}
