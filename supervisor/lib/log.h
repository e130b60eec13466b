/* log.h — logging for both programs: stderr for the CLI, syslog(3) for the daemon.
 *
 * Levels are syslog's (LOG_ERR ... LOG_DEBUG). Messages are single lines; the
 * daemon's lines are key=value friendly and carry no trailing newline. */
#pragma once

#include <stdbool.h>
#include <syslog.h>

enum log_target {
        LOG_TARGET_STDERR,
        LOG_TARGET_SYSLOG,
};

/* ident: program name printed before each stderr line and used as the syslog ident
 * (kept by reference: pass a string that outlives the program). */
void log_open(const char *ident, enum log_target target, int facility);
void log_close(void);

void log_set_max_level(int level);
int log_get_max_level(void);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Logs "<fmt>: strerror(-r)" and returns r, so error paths read
 *   return log_error_errno(r, "cannot open %s", path); */
int log_errno(int level, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parses a syslog facility name ("daemon", "local0".."local7", "user", ...).
 * Returns the LOG_* value or -1. */
int log_facility_from_name(const char *name);

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_error_errno(r, ...) log_errno(LOG_ERR, (r), __VA_ARGS__)
#define log_warning_errno(r, ...) log_errno(LOG_WARNING, (r), __VA_ARGS__)
