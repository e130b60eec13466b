/* alert.h — alerts as key=value lines, and the syslog sink they go to.
 *
 * The line (docs/alerts.md), for example
 *   alert=raised tenant=photos quota=cpu usage=0.98 limit=1.50 used=1.47 threshold=0.90 for=61s
 * Keys are fixed by this file; values come from numbers and from names a manifest chose,
 * so every value is written bare only when it is made of [A-Za-z0-9._:/+@-] and else in
 * double quotes with \", \\ and \xHH for control and non-ASCII bytes: a value can never
 * end the line or start a key of its own.
 *
 * The sink writes RFC 3164 datagrams exactly as glibc's syslog(3) does,
 * "<PRI>Mmm dd hh:mm:ss IDENT[PID]: MSG", to an AF_UNIX datagram socket whose path is
 * configurable (syslog(3) always writes to /dev/log, so tests could not point it at a
 * private rsyslogd, and it blocks when the daemon's queue is full). It never blocks:
 * the socket is nonblocking, a datagram that does not fit is dropped and counted, and a
 * send that fails because the syslog daemon went away reconnects once and retries. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "lib/err.h"
#include "monitor/monitor.h"

#define ALERT_LINE_MAX 1024
#define ALERT_DEFAULT_SOCKET "/dev/log"
#define ALERT_DEFAULT_IDENT "tenantd"

/* Formats the event as one key=value line (no newline) into buf. Returns the length,
 * or the length it would have needed (>= len: cut, as snprintf). */
size_t alert_format(const struct monitor_event *ev, char *buf, size_t len);

/* LOG_WARNING for raised, reminder, oom_kill, pids_limit and exceeded; LOG_NOTICE for
 * cleared and restored. */
int alert_priority(const struct monitor_event *ev);

/* Appends " key=value" (no leading space at the start of buf) with the value escaped as
 * described above. Returns false when buf is full (what fits is kept, NUL-terminated). */
bool alert_kv_append(char *buf, size_t len, const char *key, const char *value);

/* The datagram syslog(3) would send: "<PRI>Mmm dd hh:mm:ss IDENT[PID]: MSG", time in
 * local time as syslog(3) writes it. PRI = facility | priority. Pure but for the time
 * zone. Returns the length (cut like snprintf). */
size_t alert_syslog_datagram(char *buf, size_t len, int facility, int priority, time_t now,
                             const char *ident, pid_t pid, const char *msg);

struct alert_sink_config {
        const char *socket_path; /* NULL: ALERT_DEFAULT_SOCKET */
        int facility;            /* LOG_DAEMON unless set; a LOG_* facility value */
        const char *ident;       /* NULL: ALERT_DEFAULT_IDENT */
};

struct alert_sink;

/* Creates the sink and tries to connect; a syslog daemon that is not there yet is no
 * error (the first send connects). Fails only on bad configuration or ENOMEM. */
int alert_sink_open(const struct alert_sink_config *cfg, struct alert_sink **ret,
                    struct tn_err **err);

/* Sends one message at `priority` (LOG_WARNING, ...). Returns 0 when the datagram was
 * handed to the socket, else a negative errno (-EAGAIN: the syslog daemon's queue is
 * full; -ECONNREFUSED/-ENOENT: no syslog daemon) and counts it as dropped. */
int alert_sink_send(struct alert_sink *s, int priority, const char *msg);

/* alert_format + alert_priority + alert_sink_send. */
int alert_sink_emit(struct alert_sink *s, const struct monitor_event *ev);

uint64_t alert_sink_sent(const struct alert_sink *s);
uint64_t alert_sink_dropped(const struct alert_sink *s);

void alert_sink_free(struct alert_sink *s);
DEFINE_POINTER_CLEANUP(struct alert_sink, alert_sink_free)
