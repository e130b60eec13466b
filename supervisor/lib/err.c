/* err.c — error objects with context chaining (see err.h). */
#include "lib/err.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int err_make(struct tn_err **err, int code, bool with_strerror, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static int err_make(struct tn_err **err, int code, bool with_strerror, const char *fmt, va_list ap)
{
        if (code <= 0)
                code = EIO;
        if (!err || *err)
                return -code;

        struct tn_err *e = calloc(1, sizeof(*e));
        if (!e)
                return -code;
        e->code = code;

        char *text = NULL;
        if (vasprintf(&text, fmt, ap) < 0)
                text = NULL;
        if (text && with_strerror) {
                char *full = NULL;
                if (asprintf(&full, "%s: %s", text, strerror(code)) < 0)
                        full = NULL;
                free(text);
                text = full;
        }
        e->msg = text;
        *err = e;
        return -code;
}

int tn_err_set_(struct tn_err **err, int code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = err_make(err, code, true, fmt, ap);
        va_end(ap);
        return r;
}

int tn_err_setx_(struct tn_err **err, int code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = err_make(err, code, false, fmt, ap);
        va_end(ap);
        return r;
}

int tn_err_wrap_(struct tn_err **err, const char *fmt, ...)
{
        if (!err || !*err)
                return -EIO;

        struct tn_err *e = *err;
        char *ctx = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&ctx, fmt, ap) < 0)
                ctx = NULL;
        va_end(ap);

        char *full = NULL;
        if (ctx && asprintf(&full, "%s: %s", ctx, tn_err_msg(e)) >= 0) {
                free(e->msg);
                e->msg = full;
        }
        free(ctx);
        return -e->code;
}

const char *tn_err_msg(const struct tn_err *err)
{
        if (!err)
                return "unknown error";
        if (!err->msg)
                return "out of memory while describing an error";
        return err->msg;
}

void tn_err_free(struct tn_err *err)
{
        if (!err)
                return;
        free(err->msg);
        free(err);
}
