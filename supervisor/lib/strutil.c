/* strutil.c — small string helpers (see strutil.h). */
#include "lib/strutil.h"

#include <string.h>

size_t edit_distance(const char *a, const char *b, size_t cap)
{
        size_t la = strlen(a), lb = strlen(b);
        if (la > 64 || lb > 64)
                return cap + 1;
        if ((la > lb ? la - lb : lb - la) > cap)
                return cap + 1;

        /* Optimal string alignment: insertions, deletions, substitutions and swaps of two
         * neighbouring characters ("nmae" is one step from "name"). */
        size_t prev2[65] = {0}, prev[65], cur[65];
        for (size_t j = 0; j <= lb; j++)
                prev[j] = j;
        for (size_t i = 1; i <= la; i++) {
                cur[0] = i;
                size_t best = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
                        size_t v = prev[j - 1] + cost;
                        if (prev[j] + 1 < v)
                                v = prev[j] + 1;
                        if (cur[j - 1] + 1 < v)
                                v = cur[j - 1] + 1;
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                            prev2[j - 2] + 1 < v)
                                v = prev2[j - 2] + 1;
                        cur[j] = v;
                        if (v < best)
                                best = v;
                }
                if (best > cap)
                        return cap + 1;
                memcpy(prev2, prev, sizeof(prev));
                memcpy(prev, cur, sizeof(cur));
        }
        return prev[lb];
}

const char *suggest_nearest(const char *word, const char *const *candidates, size_t n)
{
        size_t limit = strlen(word) <= 4 ? 1 : 2;
        const char *best = NULL;
        size_t best_d = limit + 1;
        for (size_t i = 0; i < n; i++) {
                size_t d = edit_distance(word, candidates[i], limit);
                if (d < best_d) {
                        best_d = d;
                        best = candidates[i];
                }
        }
        if (best)
                return best;
        /* "failure" for "on-failure", "CAP_NET_BIND" for "CAP_NET_BIND_SERVICE": a word of
         * some length that a single candidate contains is a likely abbreviation. */
        if (strlen(word) < 4)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (!candidates[i] || !strstr(candidates[i], word))
                        continue;
                if (best)
                        return NULL; /* ambiguous */
                best = candidates[i];
        }
        return best;
}

bool is_simple_name(const char *s)
{
        if (!s[0] || s[0] == '-')
                return false;
        size_t n = strlen(s);
        if (s[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
                        return false;
        }
        return true;
}
