/* test_units.c — sizes, rates, durations, CPU amounts and percentages: accepted forms,
 * exact values, rejected nonsense and the canonical printing round trip. */
#include <errno.h>
#include <stdint.h>

#include "tap.h"
#include "lib/units.h"

static char why[UNITS_WHY_MAX];

static void size_ok(const char *s, uint64_t want)
{
        uint64_t got = 0;
        int r = parse_size(s, &got, why, sizeof(why));
        ok(r == 0 && got == want, "size \"%s\" = %llu (got %llu, r=%d %s)", s,
           (unsigned long long)want, (unsigned long long)got, r, r ? why : "");
}

static void size_bad(const char *s, int want_r)
{
        uint64_t got = 12345;
        int r = parse_size(s, &got, why, sizeof(why));
        ok(r == want_r && got == 12345 && why[0], "size \"%s\" rejected (%s)", s, why);
}

static void rate_ok(const char *s, uint64_t want)
{
        uint64_t got = 0;
        int r = parse_rate(s, &got, why, sizeof(why));
        ok(r == 0 && got == want, "rate \"%s\" = %llu (got %llu)", s, (unsigned long long)want,
           (unsigned long long)got);
}

static void rate_bad(const char *s)
{
        uint64_t got = 7;
        int r = parse_rate(s, &got, why, sizeof(why));
        ok(r < 0 && got == 7, "rate \"%s\" rejected (%s)", s, why);
}

static void duration_ok(const char *s, uint64_t want)
{
        uint64_t got = 0;
        int r = parse_duration(s, &got, why, sizeof(why));
        ok(r == 0 && got == want, "duration \"%s\" = %llums (got %llu)", s,
           (unsigned long long)want, (unsigned long long)got);
}

static void duration_bad(const char *s)
{
        uint64_t got = 7;
        int r = parse_duration(s, &got, why, sizeof(why));
        ok(r < 0 && got == 7, "duration \"%s\" rejected (%s)", s, why);
}

static void cpu_case(const char *s, int want_r, uint32_t want)
{
        uint32_t got = 99;
        int r = parse_cpu(s, &got, why, sizeof(why));
        if (want_r == 0)
                ok(r == 0 && got == want, "cpu \"%s\" = %u millicpus (got %u)", s, want, got);
        else
                ok(r == want_r && got == 99, "cpu \"%s\" rejected (%s)", s, why);
}

static void percent_case(const char *s, int want_r, uint32_t want)
{
        uint32_t got = 99;
        int r = parse_percent(s, &got, why, sizeof(why));
        if (want_r == 0)
                ok(r == 0 && got == want, "percent \"%s\" = %u bp (got %u)", s, want, got);
        else
                ok(r == want_r && got == 99, "percent \"%s\" rejected (%s)", s, why);
}

int main(void)
{
        size_ok("0", 0);
        size_ok("4096", 4096);
        size_ok("512M", 512ULL << 20);
        size_ok("512m", 512ULL << 20);
        size_ok("1.5G", 1610612736ULL);
        size_ok("64KiB", 65536);
        size_ok("10MB", 10000000);
        size_ok("1T", 1ULL << 40);
        size_ok("1.3K", 1331); /* 1331.2 rounds down to a whole byte */
        size_ok("15TiB", 15ULL << 40);
        size_ok("18446744073709551615", UINT64_MAX);
        size_bad("", -EINVAL);
        size_bad("-5M", -EINVAL);
        size_bad("+5M", -EINVAL);
        size_bad("1.5.2G", -EINVAL);
        size_bad("512 M", -EINVAL);
        size_bad("M", -EINVAL);
        size_bad(".5G", -EINVAL);
        size_bad("5.G", -EINVAL);
        size_bad("1e3", -EINVAL);
        size_bad("5X", -EINVAL);
        size_bad("0x10", -EINVAL);
        size_bad("20000000T", -ERANGE);
        size_bad("18446744073709551616", -ERANGE);
        size_bad("123456789012345678901", -EINVAL);
        size_bad("1.0000000001G", -EINVAL);

        rate_ok("20mbit", 20000000);
        rate_ok("20Mbit", 20000000);
        rate_ok("1gbit/s", 1000000000);
        rate_ok("512kbit", 512000);
        rate_ok("1.5mbit", 1500000);
        rate_ok("800bit", 800);
        rate_bad("10 mbit/s/s");
        rate_bad("10mbit/s/s");
        rate_bad("10mbps");
        rate_bad("10MBps");
        rate_bad("10");
        rate_bad("10m");
        rate_bad("mbit");
        rate_bad("-1mbit");
        rate_bad("1.5.2mbit");
        rate_bad("99999999999999999999tbit");

        duration_ok("30s", 30000);
        duration_ok("250ms", 250);
        duration_ok("5m", 300000);
        duration_ok("5min", 300000);
        duration_ok("1h30m", 5400000);
        duration_ok("1.5s", 1500);
        duration_ok("7d", 7ULL * 86400000);
        duration_ok("2w", 14ULL * 86400000);
        duration_ok("0s", 0);
        duration_ok("1d2h3m4s5ms", 93784005ULL);
        duration_bad("");
        duration_bad("10");
        duration_bad("10 s");
        duration_bad("30m1h");
        duration_bad("1s1s");
        duration_bad("5mmin");
        duration_bad("-5s");
        duration_bad("5S");
        duration_bad("5sec");
        duration_bad("1.5.2s");
        duration_bad("99999999999999999999w");

        cpu_case("1.5", 0, 1500);
        cpu_case("0.25", 0, 250);
        cpu_case("4", 0, 4000);
        cpu_case("0.001", 0, 1);
        cpu_case("0.0005", -EINVAL, 0);
        cpu_case("1.5.2", -EINVAL, 0);
        cpu_case("-1", -EINVAL, 0);
        cpu_case("1e3", -EINVAL, 0);
        cpu_case("", -EINVAL, 0);
        cpu_case("150%", -EINVAL, 0);
        cpu_case("99999999999", -ERANGE, 0);

        percent_case("90%", 0, 9000);
        percent_case("99.5%", 0, 9950);
        percent_case("0.01%", 0, 1);
        percent_case("90", -EINVAL, 0);
        percent_case("90 %", -EINVAL, 0);
        percent_case("1.005%", -EINVAL, 0);
        percent_case("%", -EINVAL, 0);

        char buf[UNITS_FMT_MAX];
        is_str(format_size(1610612736ULL, buf), "1536M", "format_size 1.5G");
        is_str(format_size(0, buf), "0", "format_size 0");
        is_str(format_size(1000, buf), "1000", "format_size 1000 stays in bytes");
        is_str(format_size(1ULL << 40, buf), "1T", "format_size 1T");
        is_str(format_rate(20000000, buf), "20mbit", "format_rate 20mbit");
        is_str(format_rate(1500000, buf), "1500kbit", "format_rate 1.5mbit");
        is_str(format_rate(1, buf), "1bit", "format_rate 1bit");
        is_str(format_duration(5400000, buf), "1h30m", "format_duration 1h30m");
        is_str(format_duration(1500, buf), "1s500ms", "format_duration 1.5s");
        is_str(format_duration(0, buf), "0s", "format_duration 0");
        is_str(format_duration(8 * 86400000ULL, buf), "8d", "format_duration 8d");
        is_str(format_cpu(1500, buf), "1.5", "format_cpu 1.5");
        is_str(format_cpu(2000, buf), "2", "format_cpu 2");
        is_str(format_cpu(5, buf), "0.005", "format_cpu 0.005");
        is_str(format_percent(9050, buf), "90.5%", "format_percent 90.5%%");

        /* Round trip: what is printed parses back to the same value. */
        const uint64_t values[] = {0,          1,          1023,      1024,          1536,
                                   1ULL << 20, 3ULL << 30, 123456789, UINT64_MAX / 2};
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
                uint64_t back = 0;
                format_size(values[i], buf);
                ok(parse_size(buf, &back, why, sizeof(why)) == 0 && back == values[i],
                   "size round trip %s", buf);
                if (values[i] >= 1 && values[i] < UINT64_MAX / 1000) {
                        format_rate(values[i], buf);
                        ok(parse_rate(buf, &back, why, sizeof(why)) == 0 && back == values[i],
                           "rate round trip %s", buf);
                }
                if (values[i] < 1ULL << 40) {
                        format_duration(values[i], buf);
                        ok(parse_duration(buf, &back, why, sizeof(why)) == 0 && back == values[i],
                           "duration round trip %s", buf);
                }
        }
        return tap_done();
}
