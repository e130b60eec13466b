/* tap.h — a tiny TAP producer for the C tests (header-only).
 *
 *   ok(cond, "what"), is_int(got, want, "what"), is_str(got, want, "what"),
 *   skip("reason"), diag("..."), and `return tap_done();` at the end of main.
 * The plan line is printed last; tests/run-tests counts ok / not ok / # SKIP lines. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int tap_count, tap_failed;

static inline void tap_vresult(bool pass, const char *file, int line, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static inline void tap_vresult(bool pass, const char *file, int line, const char *fmt, va_list ap)
{
        tap_count++;
        printf("%s %d - ", pass ? "ok" : "not ok", tap_count);
        vprintf(fmt, ap);
        printf("\n");
        if (!pass) {
                tap_failed++;
                printf("#   failed at %s:%d\n", file, line);
        }
        fflush(stdout);
}

static inline bool tap_ok(bool pass, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline bool tap_ok(bool pass, const char *file, int line, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        tap_vresult(pass, file, line, fmt, ap);
        va_end(ap);
        return pass;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...)                                                                     \
        ({                                                                                         \
                long long _g = (long long)(got), _w = (long long)(want);                           \
                bool _p = tap_ok(_g == _w, __FILE__, __LINE__, __VA_ARGS__);                       \
                if (!_p)                                                                           \
                        printf("#   got %lld, want %lld\n", _g, _w);                               \
                _p;                                                                                \
        })

#define is_str(got, want, ...)                                                                     \
        ({                                                                                         \
                const char *_g = (got), *_w = (want);                                              \
                bool _p =                                                                          \
                    tap_ok(_g && _w && strcmp(_g, _w) == 0, __FILE__, __LINE__, __VA_ARGS__);      \
                if (!_p)                                                                           \
                        printf("#   got \"%s\"\n#  want \"%s\"\n", _g ? _g : "(null)",             \
                               _w ? _w : "(null)");                                                \
                _p;                                                                                \
        })

/* Counts as skipped, never as passed: tests/run-tests reports it loudly. */
static inline void skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void skip(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        tap_count++;
        printf("ok %d # SKIP ", tap_count);
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
        fflush(stdout);
}

static inline void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void diag(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        printf("# ");
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
}

static inline int tap_done(void)
{
        printf("1..%d\n", tap_count);
        return tap_failed ? 1 : 0;
}
