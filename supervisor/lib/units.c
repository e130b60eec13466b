/* units.c — strict parsing and canonical printing of human units (see units.h).
 *
 * Every quantity is "DIGITS[.DIGITS]UNIT" with no sign, no spaces and no exponent;
 * the value is computed in 128-bit integers so "1.5G" is exactly 1610612736 and an
 * overflow is reported instead of wrapping. */
#include "lib/units.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef unsigned __int128 u128;

struct unit {
        const char *name;
        uint64_t mult;
};

static int fail(int r, char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(int r, char *why, size_t why_len, const char *fmt, ...)
{
        if (why && why_len) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(why, why_len, fmt, ap);
                va_end(ap);
        }
        return r;
}

/* A decimal number at *s: integer part and up to 9 fraction digits, as num/den.
 * Advances *s past it. Returns false if there is no well-formed number. */
struct decimal {
        u128 num;
        u128 den;
        unsigned frac_digits;
};

static bool take_decimal(const char **s, struct decimal *ret)
{
        const char *p = *s;
        u128 num = 0, den = 1;
        unsigned int_digits = 0, frac_digits = 0;

        for (; *p >= '0' && *p <= '9'; p++) {
                if (++int_digits > 20)
                        return false;
                num = num * 10 + (unsigned)(*p - '0');
        }
        if (int_digits == 0)
                return false;
        if (*p == '.') {
                p++;
                for (; *p >= '0' && *p <= '9'; p++) {
                        if (++frac_digits > 9)
                                return false;
                        num = num * 10 + (unsigned)(*p - '0');
                        den *= 10;
                }
                if (frac_digits == 0)
                        return false;
        }
        if (*p == '.')
                return false; /* "1.5.2" */
        *ret = (struct decimal){num, den, frac_digits};
        *s = p;
        return true;
}

/* Quantities are written without spaces: "512M", not "512 M". */
static int reject_spaces(const char *s, const char *accepted, char *why, size_t why_len)
{
        if (!strpbrk(s, " \t\n"))
                return 0;
        return fail(-EINVAL, why, why_len, "\"%.40s\" contains a space; expected %s", s, accepted);
}

static const struct unit *find_unit(const struct unit *units, const char *name, bool fold)
{
        for (const struct unit *u = units; u->name; u++)
                if (fold ? strcasecmp(u->name, name) == 0 : strcmp(u->name, name) == 0)
                        return u;
        return NULL;
}

static const struct unit size_units[] = {
    {"", 1ULL},
    {"B", 1ULL},
    {"K", 1ULL << 10},
    {"KiB", 1ULL << 10},
    {"KB", 1000ULL},
    {"M", 1ULL << 20},
    {"MiB", 1ULL << 20},
    {"MB", 1000ULL * 1000},
    {"G", 1ULL << 30},
    {"GiB", 1ULL << 30},
    {"GB", 1000ULL * 1000 * 1000},
    {"T", 1ULL << 40},
    {"TiB", 1ULL << 40},
    {"TB", 1000ULL * 1000 * 1000 * 1000},
    {NULL, 0},
};

#define SIZE_ACCEPTED "a size such as \"512M\", \"1.5G\", \"64KiB\" or a number of bytes"

int parse_size(const char *s, uint64_t *ret_bytes, char *why, size_t why_len)
{
        if (reject_spaces(s, SIZE_ACCEPTED, why, why_len) < 0)
                return -EINVAL;
        const char *p = s;
        struct decimal d;
        if (!take_decimal(&p, &d))
                return fail(-EINVAL, why, why_len, "\"%.40s\" is not %s", s, SIZE_ACCEPTED);
        const struct unit *u = find_unit(size_units, p, true);
        if (!u)
                return fail(-EINVAL, why, why_len,
                            "\"%.40s\" has an unknown unit \"%.20s\"; expected %s", s, p,
                            SIZE_ACCEPTED);
        u128 v = d.num * u->mult / d.den;
        if (v > UINT64_MAX)
                return fail(-ERANGE, why, why_len, "size \"%.40s\" is too large", s);
        *ret_bytes = (uint64_t)v;
        return 0;
}

static const struct unit rate_units[] = {
    {"bit", 1ULL},
    {"kbit", 1000ULL},
    {"mbit", 1000ULL * 1000},
    {"gbit", 1000ULL * 1000 * 1000},
    {"tbit", 1000ULL * 1000 * 1000 * 1000},
    {NULL, 0},
};

#define RATE_ACCEPTED "a rate such as \"20mbit\", \"512kbit\" or \"1gbit\" (bits per second)"

int parse_rate(const char *s, uint64_t *ret_bits, char *why, size_t why_len)
{
        if (reject_spaces(s, RATE_ACCEPTED, why, why_len) < 0)
                return -EINVAL;
        const char *p = s;
        struct decimal d;
        if (!take_decimal(&p, &d))
                return fail(-EINVAL, why, why_len, "\"%.40s\" is not %s", s, RATE_ACCEPTED);

        char unit[16];
        size_t n = strlen(p);
        if (n >= 2 && strcmp(p + n - 2, "/s") == 0)
                n -= 2; /* "10mbit/s" means the same as "10mbit"; only one "/s" */
        if (n == 0 || n >= sizeof(unit))
                return fail(-EINVAL, why, why_len, "\"%.40s\" has no valid unit; expected %s", s,
                            RATE_ACCEPTED);
        memcpy(unit, p, n);
        unit[n] = '\0';

        if (strcasecmp(unit, "bps") == 0 || strcasecmp(unit, "kbps") == 0 ||
            strcasecmp(unit, "mbps") == 0 || strcasecmp(unit, "gbps") == 0 ||
            strcasecmp(unit, "tbps") == 0)
                return fail(-EINVAL, why, why_len,
                            "\"%.20s\" is ambiguous (bits or bytes?); write bits per second "
                            "such as \"10mbit\" (8 times the bytes per second)",
                            unit);
        const struct unit *u = find_unit(rate_units, unit, true);
        if (!u)
                return fail(-EINVAL, why, why_len,
                            "\"%.40s\" has an unknown unit \"%.20s\"; expected %s", s, p,
                            RATE_ACCEPTED);
        u128 v = d.num * u->mult / d.den;
        if (v > UINT64_MAX)
                return fail(-ERANGE, why, why_len, "rate \"%.40s\" is too large", s);
        *ret_bits = (uint64_t)v;
        return 0;
}

/* Ordered from largest to smallest: components must appear in this order. */
static const struct unit duration_units[] = {
    {"w", 7ULL * 24 * 3600 * 1000},
    {"d", 24ULL * 3600 * 1000},
    {"h", 3600ULL * 1000},
    {"min", 60ULL * 1000},
    {"m", 60ULL * 1000},
    {"s", 1000ULL},
    {"ms", 1ULL},
    {NULL, 0},
};

#define DURATION_ACCEPTED "a duration such as \"30s\", \"250ms\", \"5m\", \"1h30m\" or \"7d\""

int parse_duration(const char *s, uint64_t *ret_ms, char *why, size_t why_len)
{
        if (reject_spaces(s, DURATION_ACCEPTED, why, why_len) < 0)
                return -EINVAL;
        const char *p = s;
        u128 total = 0;
        int last_rank = -1;

        if (*p == '\0')
                return fail(-EINVAL, why, why_len, "empty duration; expected %s",
                            DURATION_ACCEPTED);
        while (*p) {
                struct decimal d;
                if (!take_decimal(&p, &d))
                        return fail(-EINVAL, why, why_len, "\"%.40s\" is not %s", s,
                                    DURATION_ACCEPTED);
                size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz");
                if (n == 0 && *p >= 'A' && *p <= 'Z')
                        return fail(-EINVAL, why, why_len,
                                    "\"%.40s\": units are lowercase (ms, s, m or min, h, d, w)", s);
                if (n == 0)
                        return fail(
                            -EINVAL, why, why_len,
                            "\"%.40s\" needs a unit (ms, s, m or min, h, d, w); expected %s", s,
                            DURATION_ACCEPTED);
                char unit[8] = "";
                if (n < sizeof(unit))
                        memcpy(unit, p, n);
                const struct unit *u =
                    n < sizeof(unit) ? find_unit(duration_units, unit, false) : NULL;
                if (!u)
                        return fail(-EINVAL, why, why_len,
                                    "unknown duration unit \"%.*s\"; expected %s",
                                    (int)(n > 20 ? 20 : n), p, DURATION_ACCEPTED);
                int rank = (int)(u - duration_units);
                if (rank == 3)
                        rank = 4; /* "min" and "m" are one unit */
                if (rank <= last_rank)
                        return fail(-EINVAL, why, why_len,
                                    "\"%.40s\": units must go from largest to smallest, each once",
                                    s);
                last_rank = rank;
                total += d.num * u->mult / d.den;
                if (total > UINT64_MAX / 2)
                        return fail(-ERANGE, why, why_len, "duration \"%.40s\" is too long", s);
                p += n;
        }
        *ret_ms = (uint64_t)total;
        return 0;
}

#define CPU_ACCEPTED "a number of CPUs such as 1, 0.5 or \"1.5\" (at most 3 decimals)"

int parse_cpu(const char *s, uint32_t *ret_millicpus, char *why, size_t why_len)
{
        if (reject_spaces(s, CPU_ACCEPTED, why, why_len) < 0)
                return -EINVAL;
        const char *p = s;
        struct decimal d;
        if (!take_decimal(&p, &d) || *p != '\0')
                return fail(-EINVAL, why, why_len, "\"%.40s\" is not %s", s, CPU_ACCEPTED);
        if (d.frac_digits > 3)
                return fail(-EINVAL, why, why_len, "\"%.40s\" has more than 3 decimals", s);
        u128 v = d.num * 1000 / d.den;
        if (v > UINT32_MAX)
                return fail(-ERANGE, why, why_len, "\"%.40s\" CPUs is too many", s);
        *ret_millicpus = (uint32_t)v;
        return 0;
}

#define PERCENT_ACCEPTED "a percentage such as \"90%\" or \"99.5%\""

int parse_percent(const char *s, uint32_t *ret_basis_points, char *why, size_t why_len)
{
        if (reject_spaces(s, PERCENT_ACCEPTED, why, why_len) < 0)
                return -EINVAL;
        const char *p = s;
        struct decimal d;
        if (!take_decimal(&p, &d) || strcmp(p, "%") != 0)
                return fail(-EINVAL, why, why_len, "\"%.40s\" is not %s", s, PERCENT_ACCEPTED);
        if (d.frac_digits > 2)
                return fail(-EINVAL, why, why_len, "\"%.40s\" has more than 2 decimals", s);
        u128 v = d.num * 100 / d.den;
        if (v > UINT32_MAX)
                return fail(-ERANGE, why, why_len, "\"%.40s\" is too large", s);
        *ret_basis_points = (uint32_t)v;
        return 0;
}

/* Picks the largest unit in `units` (ordered small to large, the first being 1) that
 * divides v exactly. */
static char *format_exact(uint64_t v, const struct unit *units, size_t n, char *buf)
{
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
                if (v != 0 && v % units[i].mult == 0)
                        best = i;
        snprintf(buf, UNITS_FMT_MAX, "%llu%s", (unsigned long long)(v / units[best].mult),
                 units[best].name);
        return buf;
}

char *format_size(uint64_t bytes, char *buf)
{
        static const struct unit u[] = {
            {"", 1}, {"K", 1ULL << 10}, {"M", 1ULL << 20}, {"G", 1ULL << 30}, {"T", 1ULL << 40},
        };
        return format_exact(bytes, u, 5, buf);
}

char *format_rate(uint64_t bits, char *buf)
{
        static const struct unit u[] = {
            {"bit", 1},
            {"kbit", 1000ULL},
            {"mbit", 1000ULL * 1000},
            {"gbit", 1000ULL * 1000 * 1000},
        };
        return format_exact(bits, u, 4, buf);
}

char *format_duration(uint64_t ms, char *buf)
{
        static const struct unit u[] = {
            {"d", 24ULL * 3600 * 1000},
            {"h", 3600ULL * 1000},
            {"m", 60ULL * 1000},
            {"s", 1000ULL},
            {"ms", 1ULL},
        };
        if (ms == 0) {
                snprintf(buf, UNITS_FMT_MAX, "0s");
                return buf;
        }
        size_t off = 0;
        for (size_t i = 0; i < 5 && ms; i++) {
                uint64_t q = ms / u[i].mult;
                if (q == 0)
                        continue;
                off += (size_t)snprintf(buf + off, UNITS_FMT_MAX - off, "%llu%s",
                                        (unsigned long long)q, u[i].name);
                ms -= q * u[i].mult;
        }
        return buf;
}

static char *format_fixed(uint64_t v, unsigned scale_digits, const char *suffix, char *buf)
{
        uint64_t scale = 1;
        for (unsigned i = 0; i < scale_digits; i++)
                scale *= 10;
        uint64_t ip = v / scale, fp = v % scale;
        if (fp == 0) {
                snprintf(buf, UNITS_FMT_MAX, "%llu%s", (unsigned long long)ip, suffix);
                return buf;
        }
        unsigned digits = scale_digits;
        while (fp % 10 == 0) {
                fp /= 10;
                digits--;
        }
        snprintf(buf, UNITS_FMT_MAX, "%llu.%0*llu%s", (unsigned long long)ip, (int)digits,
                 (unsigned long long)fp, suffix);
        return buf;
}

char *format_cpu(uint32_t millicpus, char *buf)
{
        return format_fixed(millicpus, 3, "", buf);
}

char *format_percent(uint32_t basis_points, char *buf)
{
        return format_fixed(basis_points, 2, "%", buf);
}
