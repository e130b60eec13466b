/* logtext.h — what a tenant writes, made safe to show: its log file, `tenantctl logs`,
 * syslog and `tenantctl status`.
 *
 * Every byte of a tenant's output is the tenant's choice. Shown raw, C0 and C1
 * control characters (ESC, CSI as U+009B or as a raw 0x9b byte) drive the operator's
 * terminal, and a line that begins like tenantd's own notes ("[tenantd: ...]") would
 * pass for one. So, escaped as text: C0 but tab and newline, DEL, C1 (\u0080-\u009f),
 * invisible and bidi formatting characters (\u200b, \u202e, ...), and every byte that
 * is not part of valid UTF-8 (\x9b); and "[tenantd" wherever the tenant writes it
 * becomes "\x5btenantd". In a log file, "[tenantd" therefore only ever begins one of
 * tenantd's own notes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define LOGTEXT_MARK "[tenantd"
#define LOGTEXT_HOLD 8 /* bytes kept back between writes: a split character or mark */

/* A stream of tenant output, written in pieces: a character or a mark split between
 * two pieces is held back until the next one. */
struct logtext {
        unsigned char held[LOGTEXT_HOLD];
        size_t n_held;
};

/* Worst-case output size for `len` input bytes (plus what is held). */
#define LOGTEXT_MAX(len) (6 * ((len) + LOGTEXT_HOLD) + 1)

/* Escapes in[0..len) of the stream into out (LOGTEXT_MAX(len) bytes); `final` writes
 * out what is held too. Returns the bytes written. */
size_t logtext_stream(struct logtext *st, const char *in, size_t len, bool final, char *out);

/* Escapes in[0..len) for display, without touching the mark (text that came from a
 * log file, already escaped as above, passes unchanged). out: LOGTEXT_MAX(len). */
size_t logtext_show(const char *in, size_t len, char *out);

/* The same for a one-line field: a newline is escaped too (\x0a), so what follows it
 * cannot pass for a line of its own. */
size_t logtext_show_line(const char *in, size_t len, char *out);
