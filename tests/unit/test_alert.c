/* test_alert.c — the key=value alert line (fields, escaping of hostile values), the
 * syslog(3)-compatible datagram, and the sink on a real AF_UNIX datagram socket: sent,
 * never blocking (dropped and counted when the reader is full), reconnecting after the
 * reader comes back. */
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "monitor/alert.h"
#include "tap.h"

static struct monitor_event event(enum monitor_event_kind kind, enum quota_kind q)
{
        struct monitor_event e = {.kind = kind, .quota = q};
        e.usage = e.used = e.limit = e.threshold = NAN;
        snprintf(e.tenant, sizeof(e.tenant), "photos");
        return e;
}

static void test_format(void)
{
        char line[ALERT_LINE_MAX];
        struct monitor_event e = event(MONITOR_RAISED, QUOTA_CPU);
        e.usage = 0.98;
        e.limit = 1.5;
        e.used = 1.47;
        e.threshold = 0.9;
        e.for_ms = 61000;
        alert_format(&e, line, sizeof(line));
        is_str(line,
               "alert=raised tenant=photos quota=cpu usage=0.98 limit=1.50 used=1.47 "
               "threshold=0.90 for=61s",
               "raised cpu");
        e = event(MONITOR_CLEARED, QUOTA_MEMORY);
        e.usage = 0.5;
        e.limit = 268435456;
        e.used = 134217728;
        e.for_ms = 299600;
        alert_format(&e, line, sizeof(line));
        is_str(line,
               "alert=cleared tenant=photos quota=memory usage=0.50 limit=268435456 "
               "used=134217728 duration=300s",
               "cleared memory: bytes, duration rounded to seconds");
        is_int(alert_priority(&e), LOG_NOTICE, "cleared is notice");
        e = event(MONITOR_OOM_KILL, QUOTA_MEMORY);
        e.count = 1;
        e.total = 3;
        e.limit = 1048576;
        alert_format(&e, line, sizeof(line));
        is_str(line, "alert=oom_kill tenant=photos quota=memory limit=1048576 count=1 total=3",
               "oom kill");
        is_int(alert_priority(&e), LOG_WARNING, "oom kill is warning");
        e = event(MONITOR_EXCEEDED, QUOTA_TRANSFER);
        e.usage = 1.0;
        e.used = 1000;
        e.limit = 1000;
        e.period = "monthly";
        e.action = "throttle";
        e.rate = 1000000;
        alert_format(&e, line, sizeof(line));
        is_str(line,
               "alert=exceeded tenant=photos quota=transfer usage=1.00 limit=1000 used=1000 "
               "period=monthly action=throttle rate=1000000",
               "transfer exceeded");
        e.kind = MONITOR_RESTORED;
        is_int(alert_priority(&e), LOG_NOTICE, "restored is notice");
        e = event(MONITOR_RAISED, QUOTA_DISK);
        snprintf(e.volume, sizeof(e.volume), "data");
        e.usage = 0.95;
        e.used = 950;
        e.limit = 1000;
        e.threshold = 0.9;
        alert_format(&e, line, sizeof(line));
        is_str(line,
               "alert=raised tenant=photos quota=disk volume=data usage=0.95 limit=1000 used=950 "
               "threshold=0.90 for=0s",
               "disk raised names the volume");
}

static void test_escaping(void)
{
        char buf[256] = "";
        ok(alert_kv_append(buf, sizeof(buf), "tenant", "a b") && !strcmp(buf, "tenant=\"a b\""),
           "a space is quoted: %s", buf);
        buf[0] = '\0';
        alert_kv_append(buf, sizeof(buf), "tenant", "x quota=cpu alert=cleared");
        ok(!strcmp(buf, "tenant=\"x quota=cpu alert=cleared\""),
           "a value cannot add keys of its own: %s", buf);
        buf[0] = '\0';
        alert_kv_append(buf, sizeof(buf), "tenant", "x\"\\\n<13>Jan  1 00:00:00 forged: y");
        ok(!strchr(buf, '\n') &&
               !strcmp(buf, "tenant=\"x\\\"\\\\\\x0a<13>Jan  1 00:00:00 forged: y\""),
           "quotes, backslashes and newlines are escaped: %s", buf);
        buf[0] = '\0';
        alert_kv_append(buf, sizeof(buf), "tenant", "caf\xc3\xa9\x1b[31m");
        ok(!strcmp(buf, "tenant=\"caf\\xc3\\xa9\\x1b[31m\""), "non-ASCII and ESC as \\xHH: %s",
           buf);
        buf[0] = '\0';
        alert_kv_append(buf, sizeof(buf), "tenant", "");
        ok(!strcmp(buf, "tenant=\"\""), "an empty value is \"\"");
        char small[16] = "alert=raised";
        ok(!alert_kv_append(small, sizeof(small), "tenant", "long-name") &&
               !strcmp(small, "alert=raised"),
           "a field that does not fit is left out whole, never cut");

        struct monitor_event e = event(MONITOR_RAISED, QUOTA_CPU);
        snprintf(e.tenant, sizeof(e.tenant), "evil\nalert=cleared");
        char line[ALERT_LINE_MAX];
        alert_format(&e, line, sizeof(line));
        ok(!strchr(line, '\n') && strstr(line, "tenant=\"evil\\x0aalert=cleared\""),
           "a hostile tenant string in a full line: %s", line);
}

static void test_datagram(void)
{
        char buf[256];
        setenv("TZ", "UTC", 1);
        tzset();
        time_t t = 1795437376; /* 2026-11-23 12:36:16 UTC */
        alert_syslog_datagram(buf, sizeof(buf), LOG_DAEMON, LOG_WARNING, t, "tenantd", 123,
                              "alert=raised tenant=photos");
        is_str(buf, "<28>Nov 23 12:36:16 tenantd[123]: alert=raised tenant=photos",
               "daemon.warning as syslog(3) writes it");
        t = 1775001600 + 4 * 86400 + 3600 * 9 + 5; /* 2026-04-05 09:00:05 */
        alert_syslog_datagram(buf, sizeof(buf), LOG_LOCAL3, LOG_NOTICE, t, "td", 7, "x");
        is_str(buf, "<157>Apr  5 09:00:05 td[7]: x", "local3.notice, a day padded with a space");
}

static int bind_dgram(const char *path)
{
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
        unlink(path);
        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
                return -1;
        return fd;
}

static void test_sink(void)
{
        char dir[] = "/tmp/test_alert.XXXXXX", path[128];
        if (!mkdtemp(dir)) {
                skip("cannot create a temporary directory");
                return;
        }
        snprintf(path, sizeof(path), "%s/log", dir);
        struct alert_sink *s = NULL;
        struct tn_err *err = NULL;
        struct alert_sink_config bad = {.socket_path = "relative/log"};
        ok(alert_sink_open(&bad, &s, &err) == -EINVAL && s == NULL,
           "a relative socket path is refused: %s", tn_err_msg(err));
        tn_err_free(err);
        err = NULL;
        struct alert_sink_config badid = {.socket_path = path, .ident = "a b"};
        ok(alert_sink_open(&badid, &s, &err) == -EINVAL, "an ident with a space is refused");
        tn_err_free(err);
        err = NULL;

        struct alert_sink_config cfg = {
            .socket_path = path, .facility = LOG_LOCAL1, .ident = "tenantd-test"};
        ok(alert_sink_open(&cfg, &s, &err) == 0, "opens before the syslog daemon exists");
        ok(alert_sink_send(s, LOG_WARNING, "lost") < 0 && alert_sink_dropped(s) == 1,
           "no syslog daemon: dropped and counted, no error for the caller to handle");

        int srv = bind_dgram(path);
        char buf[2048], want[128];
        ok(alert_sink_send(s, LOG_WARNING, "alert=raised") == 0, "the reader is there: sent");
        ssize_t n = recv(srv, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        buf[n > 0 ? n : 0] = '\0';
        snprintf(want, sizeof(want), "]: alert=raised");
        ok(n > 0 && !strncmp(buf, "<140>", 5) && strstr(buf, " tenantd-test[") && strstr(buf, want),
           "received \"%s\"", buf);

        /* Nobody reads: the queue fills and sends must fail at once, not block. */
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int eagain = 0;
        for (int i = 0; i < 2000 && !eagain; i++)
                eagain = alert_sink_send(s, LOG_WARNING, "flood") == -EAGAIN;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        ok(eagain && alert_sink_dropped(s) == 2 && ms < 1000,
           "a full reader: -EAGAIN, dropped (2 in all), in %.1f ms without blocking", ms);

        /* The syslog daemon restarts: a new socket at the same path. */
        close(srv);
        srv = bind_dgram(path);
        ok(alert_sink_send(s, LOG_NOTICE, "after restart") == 0,
           "reconnects to a restarted reader");
        n = recv(srv, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        buf[n > 0 ? n : 0] = '\0';
        ok(n > 0 && strstr(buf, "after restart") && !strncmp(buf, "<141>", 5),
           "... which gets the message (%s)", buf);

        struct monitor_event e = event(MONITOR_PIDS_LIMIT, QUOTA_PIDS);
        e.count = 2;
        e.total = 2;
        ok(alert_sink_emit(s, &e) == 0, "emit an event");
        n = recv(srv, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        buf[n > 0 ? n : 0] = '\0';
        ok(n > 0 && strstr(buf, "]: alert=pids_limit tenant=photos quota=pids count=2 total=2"),
           "... as its key=value line at warning (%s)", buf);
        alert_sink_free(s);
        close(srv);
        unlink(path);
        rmdir(dir);
}

int main(void)
{
        test_format();
        test_escaping();
        test_datagram();
        test_sink();
        return tap_done();
}
