/* test_logtext.c — escaping a tenant's output (logtext.h): each class of byte, the
 * mark, and pieces split at every possible point (a stream must escape the same way
 * however its writes were cut). */
#include <stdlib.h>
#include <string.h>

#include "lib/logtext.h"
#include "tap.h"

static char *stream(const char *in, size_t len, size_t piece)
{
        struct logtext st = {0};
        char *out = malloc(LOGTEXT_MAX(len) + LOGTEXT_MAX(0));
        size_t o = 0;
        for (size_t i = 0; i < len; i += piece) {
                size_t n = len - i < piece ? len - i : piece;
                o += logtext_stream(&st, in + i, n, false, out + o);
        }
        o += logtext_stream(&st, "", 0, true, out + o);
        out[o] = '\0';
        return out;
}

static int cases;

static void esc_ok(const char *in, const char *want)
{
        int k = ++cases;
        size_t len = strlen(in);
        char *whole = stream(in, len, len ? len : 1);
        is_str(whole, want, "case %d: escaped as expected", k);
        bool same = true;
        for (size_t piece = 1; piece < len; piece++) {
                char *s = stream(in, len, piece);
                same &= strcmp(s, whole) == 0;
                free(s);
        }
        ok(same, "case %d: the same when written in pieces of every size", k);
        free(whole);
}

int main(void)
{
        esc_ok("plain text\twith tab\n", "plain text\twith tab\n");
        esc_ok("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n",
               "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n");
        esc_ok("\x1b[31mred\x07\r\x7f", "\\x1b[31mred\\x07\\x0d\\x7f");
        esc_ok("C1 \xc2\x9b"
               "31m \xc2\x85",
               "C1 \\u009b31m \\u0085");
        esc_ok("raw \x9b"
               "31m \x90",
               "raw \\x9b31m \\x90");
        esc_ok("over \xc0\xaf \xe0\x80\xaf sur \xed\xa0\x80 big \xf4\x90\x80\x80",
               "over \\xc0\\xaf \\xe0\\x80\\xaf sur \\xed\\xa0\\x80 big \\xf4\\x90\\x80\\x80");
        esc_ok("cut \xe2\x82", "cut \\xe2\\x82");
        esc_ok("zw\xe2\x80\x8b bidi\xe2\x80\xae bom\xef\xbb\xbf",
               "zw\\u200b bidi\\u202e bom\\ufeff");
        esc_ok("[tenantd: forged]\n", "\\x5btenantd: forged]\n");
        esc_ok("x[tenantd[tenantd", "x\\x5btenantd\\x5btenantd");
        esc_ok("[tenan", "[tenan");
        esc_ok("[tenanx [ten [", "[tenanx [ten [");
        esc_ok("[[tenantd", "[\\x5btenantd");

        char shown[LOGTEXT_MAX(32)];
        const char *text = "[tenantd: ok] \x1b \xc2\x9b";
        size_t n = logtext_show(text, strlen(text), shown);
        shown[n] = '\0';
        is_str(shown, "[tenantd: ok] \\x1b \\u009b", "show: escapes, but keeps the mark");
        n = logtext_show("\\x5btenantd \\u009b", 18, shown);
        shown[n] = '\0';
        is_str(shown, "\\x5btenantd \\u009b", "show: escaped text passes unchanged");
        text = "a\nb\tc";
        n = logtext_show(text, strlen(text), shown);
        shown[n] = '\0';
        is_str(shown, "a\nb\tc", "show: newline and tab kept");
        n = logtext_show_line(text, strlen(text), shown);
        shown[n] = '\0';
        is_str(shown, "a\\x0ab\tc", "show_line: the newline escaped, the tab kept");
        return tap_done();
}
