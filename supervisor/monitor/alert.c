/* alert.c — the key=value alert line and the nonblocking syslog sink (see alert.h). */
#include "monitor/alert.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

static bool bare_char(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               strchr("._:/+@-", c) != NULL;
}

bool alert_kv_append(char *buf, size_t len, const char *key, const char *value)
{
        size_t at = strnlen(buf, len);
        if (len == 0 || at >= len)
                return false;
        char tmp[ALERT_LINE_MAX];
        size_t k = 0;
        bool bare = *value != '\0';
        for (const char *p = value; *p; p++)
                bare &= bare_char((unsigned char)*p);
        k += (size_t)snprintf(tmp, sizeof(tmp), "%s%s=", at ? " " : "", key);
        if (!bare && k < sizeof(tmp) - 1)
                tmp[k++] = '"';
        for (const unsigned char *p = (const unsigned char *)value; *p && k < sizeof(tmp) - 6;
             p++) {
                if (bare || (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\'))
                        tmp[k++] = (char)*p;
                else if (*p == '"' || *p == '\\') {
                        tmp[k++] = '\\';
                        tmp[k++] = (char)*p;
                } else
                        k += (size_t)snprintf(tmp + k, sizeof(tmp) - k, "\\x%02x", *p);
        }
        if (!bare && k < sizeof(tmp) - 1)
                tmp[k++] = '"';
        tmp[k < sizeof(tmp) ? k : sizeof(tmp) - 1] = '\0';
        /* All or nothing: a value cut in the middle could lose its closing quote. */
        if (at + k >= len)
                return false;
        memcpy(buf + at, tmp, k + 1);
        return true;
}

static const char *const kind_names[] = {
    [MONITOR_RAISED] = "raised",         [MONITOR_CLEARED] = "cleared",
    [MONITOR_REMINDER] = "reminder",     [MONITOR_OOM_KILL] = "oom_kill",
    [MONITOR_PIDS_LIMIT] = "pids_limit", [MONITOR_EXCEEDED] = "exceeded",
    [MONITOR_RESTORED] = "restored",
};

int alert_priority(const struct monitor_event *ev)
{
        return ev->kind == MONITOR_CLEARED || ev->kind == MONITOR_RESTORED ? LOG_NOTICE
                                                                           : LOG_WARNING;
}

/* A quantity in the quota's unit: CPUs with two decimals, everything else whole. */
static void fmt_amount(char *buf, size_t len, enum quota_kind q, double v)
{
        if (q == QUOTA_CPU)
                snprintf(buf, len, "%.2f", v);
        else
                snprintf(buf, len, "%.0f", v);
}

static void fmt_seconds(char *buf, size_t len, uint64_t ms)
{
        snprintf(buf, len, "%llus", (unsigned long long)((ms + 500) / 1000));
}

size_t alert_format(const struct monitor_event *ev, char *buf, size_t len)
{
        char line[ALERT_LINE_MAX] = "", v[64];
        const char *kind = (unsigned)ev->kind < sizeof(kind_names) / sizeof(kind_names[0])
                               ? kind_names[ev->kind]
                               : "unknown";
        alert_kv_append(line, sizeof(line), "alert", kind);
        alert_kv_append(line, sizeof(line), "tenant", ev->tenant);
        alert_kv_append(line, sizeof(line), "quota", quota_name(ev->quota));
        if (ev->quota == QUOTA_DISK && ev->volume[0])
                alert_kv_append(line, sizeof(line), "volume", ev->volume);
        if (!isnan(ev->usage)) {
                snprintf(v, sizeof(v), "%.2f", ev->usage);
                alert_kv_append(line, sizeof(line), "usage", v);
        }
        if (!isnan(ev->limit)) {
                fmt_amount(v, sizeof(v), ev->quota, ev->limit);
                alert_kv_append(line, sizeof(line), "limit", v);
        }
        if (!isnan(ev->used)) {
                fmt_amount(v, sizeof(v), ev->quota, ev->used);
                alert_kv_append(line, sizeof(line), "used", v);
        }
        switch (ev->kind) {
        case MONITOR_RAISED:
        case MONITOR_REMINDER:
                if (!isnan(ev->threshold)) {
                        snprintf(v, sizeof(v), "%.2f", ev->threshold);
                        alert_kv_append(line, sizeof(line), "threshold", v);
                }
                fmt_seconds(v, sizeof(v), ev->for_ms);
                alert_kv_append(line, sizeof(line), "for", v);
                break;
        case MONITOR_CLEARED:
                fmt_seconds(v, sizeof(v), ev->for_ms);
                alert_kv_append(line, sizeof(line), "duration", v);
                break;
        case MONITOR_OOM_KILL:
        case MONITOR_PIDS_LIMIT:
                snprintf(v, sizeof(v), "%llu", (unsigned long long)ev->count);
                alert_kv_append(line, sizeof(line), "count", v);
                snprintf(v, sizeof(v), "%llu", (unsigned long long)ev->total);
                alert_kv_append(line, sizeof(line), "total", v);
                break;
        case MONITOR_EXCEEDED:
        case MONITOR_RESTORED:
                if (ev->period)
                        alert_kv_append(line, sizeof(line), "period", ev->period);
                if (ev->action)
                        alert_kv_append(line, sizeof(line), "action", ev->action);
                if (ev->rate) {
                        snprintf(v, sizeof(v), "%llu", (unsigned long long)ev->rate);
                        alert_kv_append(line, sizeof(line), "rate", v);
                }
                break;
        }
        return (size_t)snprintf(buf, len, "%s", line);
}

size_t alert_syslog_datagram(char *buf, size_t len, int facility, int priority, time_t now,
                             const char *ident, pid_t pid, const char *msg)
{
        char stamp[32] = "";
        struct tm tm;
        /* glibc: "%h %e %T " in the C locale; %h is %b. Month names are fixed here so
         * the process's locale cannot change them. */
        static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        if (localtime_r(&now, &tm))
                snprintf(stamp, sizeof(stamp), "%s %2d %02d:%02d:%02d", months[tm.tm_mon % 12],
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        int pri = (facility & LOG_FACMASK) | (priority & LOG_PRIMASK);
        int n = snprintf(buf, len, "<%d>%s %s[%d]: %s", pri, stamp, ident, (int)pid, msg);
        return n < 0 ? 0 : (size_t)n;
}

struct alert_sink {
        int fd;
        struct sockaddr_un addr;
        socklen_t addr_len;
        int facility;
        char ident[64];
        uint64_t sent, dropped;
};

static void sink_disconnect(struct alert_sink *s)
{
        if (s->fd >= 0)
                close(s->fd);
        s->fd = -1;
}

static int sink_connect(struct alert_sink *s)
{
        sink_disconnect(s);
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&s->addr, s->addr_len) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        s->fd = fd;
        return 0;
}

int alert_sink_open(const struct alert_sink_config *cfg, struct alert_sink **ret,
                    struct tn_err **err)
{
        const char *path = cfg->socket_path ? cfg->socket_path : ALERT_DEFAULT_SOCKET;
        const char *ident = cfg->ident ? cfg->ident : ALERT_DEFAULT_IDENT;
        struct alert_sink *s = calloc(1, sizeof(*s));
        if (!s)
                return tn_err_setx(err, ENOMEM, "out of memory");
        s->fd = -1;
        if (strlen(path) >= sizeof(s->addr.sun_path) || path[0] != '/') {
                free(s);
                return tn_err_setx(err, EINVAL,
                                   "syslog socket \"%.200s\": expected an absolute path of at "
                                   "most %zu bytes",
                                   path, sizeof(s->addr.sun_path) - 1);
        }
        if (!*ident || strlen(ident) >= sizeof(s->ident) || strpbrk(ident, " []:\n\r\t")) {
                free(s);
                return tn_err_setx(err, EINVAL,
                                   "syslog ident \"%.80s\": expected 1 to %zu characters without "
                                   "spaces, brackets or colons",
                                   ident, sizeof(s->ident) - 1);
        }
        if (cfg->facility & ~LOG_FACMASK) {
                free(s);
                return tn_err_setx(err, EINVAL, "syslog facility %d is not a facility",
                                   cfg->facility);
        }
        s->addr.sun_family = AF_UNIX;
        memcpy(s->addr.sun_path, path, strlen(path) + 1);
        s->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
        s->facility = cfg->facility ? cfg->facility : LOG_DAEMON;
        snprintf(s->ident, sizeof(s->ident), "%s", ident);
        (void)sink_connect(s); /* the syslog daemon may start later */
        *ret = s;
        return 0;
}

int alert_sink_send(struct alert_sink *s, int priority, const char *msg)
{
        char dgram[ALERT_LINE_MAX + 128];
        size_t n = alert_syslog_datagram(dgram, sizeof(dgram), s->facility, priority, time(NULL),
                                         s->ident, getpid(), msg);
        if (n >= sizeof(dgram))
                n = sizeof(dgram) - 1;
        int r = 0;
        for (int attempt = 0; attempt < 2; attempt++) {
                if (s->fd < 0 && (r = sink_connect(s)) < 0)
                        continue;
                if (send(s->fd, dgram, n, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0) {
                        s->sent++;
                        return 0;
                }
                r = -errno;
                if (r == -EAGAIN || r == -EWOULDBLOCK || r == -ENOBUFS || r == -EINTR)
                        break; /* the daemon is there but busy: drop, never wait */
                /* ECONNREFUSED, ENOTCONN...: the syslog daemon restarted; its new
                 * socket is another inode, so connect again once. */
                sink_disconnect(s);
        }
        s->dropped++;
        return r < 0 ? r : -EIO;
}

int alert_sink_emit(struct alert_sink *s, const struct monitor_event *ev)
{
        char line[ALERT_LINE_MAX];
        alert_format(ev, line, sizeof(line));
        return alert_sink_send(s, alert_priority(ev), line);
}

uint64_t alert_sink_sent(const struct alert_sink *s)
{
        return s->sent;
}

uint64_t alert_sink_dropped(const struct alert_sink *s)
{
        return s->dropped;
}

void alert_sink_free(struct alert_sink *s)
{
        if (!s)
                return;
        sink_disconnect(s);
        free(s);
}
