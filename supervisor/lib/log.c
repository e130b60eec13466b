/* log.c — stderr or syslog(3) sink with a level filter (see log.h). */
#include "lib/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *log_ident = "tenantd";
static enum log_target log_target = LOG_TARGET_STDERR;
static int log_max_level = LOG_INFO;

void log_open(const char *ident, enum log_target target, int facility)
{
        log_ident = ident;
        log_target = target;
        if (target == LOG_TARGET_SYSLOG)
                openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void log_close(void)
{
        if (log_target == LOG_TARGET_SYSLOG)
                closelog();
        log_target = LOG_TARGET_STDERR;
}

void log_set_max_level(int level)
{
        log_max_level = level;
}

int log_get_max_level(void)
{
        return log_max_level;
}

static void log_emit(int level, const char *text)
{
        if (log_target == LOG_TARGET_SYSLOG)
                syslog(level, "%s", text);
        else
                fprintf(stderr, "%s: %s\n", log_ident, text);
}

static void log_vmsg(int level, const char *suffix, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void log_vmsg(int level, const char *suffix, const char *fmt, va_list ap)
{
        if (level > log_max_level)
                return;
        char *text = NULL;
        if (vasprintf(&text, fmt, ap) < 0) {
                log_emit(LOG_ERR, "out of memory while logging");
                return;
        }
        if (suffix) {
                char *full = NULL;
                if (asprintf(&full, "%s: %s", text, suffix) >= 0) {
                        free(text);
                        text = full;
                }
        }
        log_emit(level, text);
        free(text);
}

void log_msg(int level, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        log_vmsg(level, NULL, fmt, ap);
        va_end(ap);
}

int log_errno(int level, int r, const char *fmt, ...)
{
        int saved = errno;
        va_list ap;
        va_start(ap, fmt);
        log_vmsg(level, strerror(r < 0 ? -r : r), fmt, ap);
        va_end(ap);
        errno = saved;
        return r;
}

int log_facility_from_name(const char *name)
{
        static const struct {
                const char *name;
                int value;
        } table[] = {
            {"auth", LOG_AUTH},     {"authpriv", LOG_AUTHPRIV}, {"cron", LOG_CRON},
            {"daemon", LOG_DAEMON}, {"kern", LOG_KERN},         {"local0", LOG_LOCAL0},
            {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},     {"local3", LOG_LOCAL3},
            {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},     {"local6", LOG_LOCAL6},
            {"local7", LOG_LOCAL7}, {"lpr", LOG_LPR},           {"mail", LOG_MAIL},
            {"news", LOG_NEWS},     {"syslog", LOG_SYSLOG},     {"user", LOG_USER},
            {"uucp", LOG_UUCP},
        };
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
                if (strcmp(table[i].name, name) == 0)
                        return table[i].value;
        return -1;
}
