/* err.h — error objects with context chaining.
 *
 * A function that can fail returns a negative errno-style code and, when its caller
 * passed a `struct tn_err **`, fills it with a message. Each caller on the way up may
 * add context with tn_err_wrap(), so the operator finally reads one line such as
 *   cannot start `web`: cgroup: write cpu.max: Invalid argument
 * Library code never logs; the error is logged once, where it is handled. Output
 * parameters are left untouched on failure. */
#pragma once

#include "lib/cleanup.h"

struct tn_err {
        int code;  /* positive errno value describing the failure class */
        char *msg; /* human text, context first */
};

/* Sets *err (if err is non-NULL and *err is NULL) to "<fmt>: strerror(code)" and returns
 * -code. Use after a failing system call with code = errno. */
#define tn_err_set(err, code, ...) tn_err_negative(tn_err_set_(err, code, __VA_ARGS__))

/* Like tn_err_set but without the strerror() suffix: for failures that are not a
 * system call's (bad input, limits). */
#define tn_err_setx(err, code, ...) tn_err_negative(tn_err_setx_(err, code, __VA_ARGS__))

/* Prefixes "<fmt>: " to the message in *err and returns -code. Harmless when err or
 * *err is NULL (returns -EIO then). */
#define tn_err_wrap(err, ...) tn_err_negative(tn_err_wrap_(err, __VA_ARGS__))

int tn_err_set_(struct tn_err **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int tn_err_setx_(struct tn_err **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int tn_err_wrap_(struct tn_err **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The functions above always return a negative value; saying so here, where compilers
 * and static analyzers see it, lets them follow the error paths. */
static inline int tn_err_negative(int r)
{
        return r < 0 ? r : -EIO;
}

/* The message; never NULL. */
const char *tn_err_msg(const struct tn_err *err);

void tn_err_free(struct tn_err *err);
DEFINE_POINTER_CLEANUP(struct tn_err, tn_err_free)
#define _cleanup_err_ _cleanup_(tn_err_freep)
