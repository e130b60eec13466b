/* logtext.c — escaping what a tenant writes (see logtext.h). */
#include "lib/logtext.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 character at in[0..len) and its code point; 0 when the
 * bytes are not one (overlong forms, surrogates and values past U+10FFFF included);
 * -1 when they are a valid beginning cut short by the end of the input. */
static int utf8_char(const unsigned char *in, size_t len, uint32_t *ret)
{
        unsigned char b = in[0];
        int n = b < 0x80             ? 1
                : (b & 0xe0) == 0xc0 ? 2
                : (b & 0xf0) == 0xe0 ? 3
                : (b & 0xf8) == 0xf0 ? 4
                                     : 0;
        if (n == 0)
                return 0;
        uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1fU) : n == 3 ? (b & 0x0fU) : (b & 0x07U);
        for (int k = 1; k < n; k++) {
                if ((size_t)k >= len)
                        return -1;
                if ((in[k] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (in[k] & 0x3fU);
                /* reject overlong and out-of-range forms as early as they show */
                if (k == 1 && ((n == 3 && cp < 0x20) || (n == 4 && (cp < 0x10 || cp > 0x10f))))
                        return 0;
        }
        if ((n == 2 && cp < 0x80) || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                return 0;
        *ret = cp;
        return n;
}

/* Characters that are invisible or reorder text: a line could look like another. */
static bool invisible(uint32_t cp)
{
        return (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e) ||
               (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
}

/* Escapes in[0..len) into out; stops before a cut-short character or mark unless
 * `final`, and returns in *ret_used how much of the input it took. */
static size_t escape(const unsigned char *in, size_t len, bool final, bool mark, bool newline,
                     char *out, size_t *ret_used)
{
        static const size_t mlen = sizeof(LOGTEXT_MARK) - 1;
        size_t o = 0, i = 0;
        while (i < len) {
                uint32_t cp = 0;
                int n = utf8_char(in + i, len - i, &cp);
                if (n < 0 && !final)
                        break;
                if (mark && in[i] == '[') {
                        size_t have = len - i < mlen ? len - i : mlen;
                        bool prefix = memcmp(in + i, LOGTEXT_MARK, have) == 0;
                        if (prefix && have < mlen && !final)
                                break;
                        if (prefix && have == mlen) {
                                memcpy(out + o, "\\x5b", 4);
                                o += 4;
                                i++;
                                continue;
                        }
                }
                if (n <= 0) {
                        o += (size_t)sprintf(out + o, "\\x%02x", in[i]);
                        i++;
                } else if ((cp < 0x20 && (cp != '\n' || !newline) && cp != '\t') || cp == 0x7f) {
                        o += (size_t)sprintf(out + o, "\\x%02x", (unsigned)cp);
                        i++;
                } else if ((cp >= 0x80 && cp <= 0x9f) || invisible(cp)) {
                        o += (size_t)sprintf(out + o, "\\u%04x", (unsigned)cp);
                        i += (size_t)n;
                } else {
                        memcpy(out + o, in + i, (size_t)n);
                        o += (size_t)n;
                        i += (size_t)n;
                }
        }
        *ret_used = i;
        out[o] = '\0';
        return o;
}

size_t logtext_stream(struct logtext *st, const char *in, size_t len, bool final, char *out)
{
        /* The held bytes first: escape them together with the start of this piece. */
        unsigned char head[2 * LOGTEXT_HOLD];
        size_t o = 0, used = 0;
        while (st->n_held) {
                size_t take = len < LOGTEXT_HOLD ? len : LOGTEXT_HOLD;
                memcpy(head, st->held, st->n_held);
                memcpy(head + st->n_held, in, take);
                size_t n_head = st->n_held + take;
                o += escape(head, n_head, final && take == len, true, true, out + o, &used);
                if (used < st->n_held) { /* still cut short: keep all of it */
                        memcpy(st->held, head + used, n_head - used);
                        st->n_held = n_head - used;
                        return o;
                }
                size_t from_in = used - st->n_held;
                st->n_held = 0;
                in += from_in;
                len -= from_in;
        }
        o += escape((const unsigned char *)in, len, final, true, true, out + o, &used);
        if (used < len) {
                memcpy(st->held, in + used, len - used); /* < LOGTEXT_HOLD bytes */
                st->n_held = len - used;
        }
        return o;
}

size_t logtext_show(const char *in, size_t len, char *out)
{
        size_t used;
        return escape((const unsigned char *)in, len, true, false, true, out, &used);
}

size_t logtext_show_line(const char *in, size_t len, char *out)
{
        size_t used;
        return escape((const unsigned char *)in, len, true, false, false, out, &used);
}
