/* tenantd.c — the daemon's entry point: options, the configuration file, readiness.
 * The work is in daemon.c (loop and lifecycle) and control.c (the socket).
 *
 * Configuration: /etc/tenantd/tenantd.conf (or --config FILE) holds "key = value"
 * lines with the same names as the long options; options on the command line win.
 * A key the daemon does not know is an error that names the file and line. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "lib/log.h"
#include "spec/policy.h"
#include "lib/trust.h"
#include "host/uidrange.h"
#include "lib/units.h"
#include "lib/version.h"

#define DEFAULT_CONFIG TENANTD_SYSCONFDIR "/tenantd/tenantd.conf"

/* READY=1 to $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace), as
 * sd_notify(3) does; no libsystemd needed for one datagram. */
int sd_notify_ready(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        size_t len = strlen(path);
        if (len == 0 || len >= sizeof(sa.sun_path))
                return -EINVAL;
        memcpy(sa.sun_path, path, len);
        if (sa.sun_path[0] == '@')
                sa.sun_path[0] = '\0';
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        static const char msg[] = "READY=1\nSTATUS=tenantd is running";
        ssize_t n = sendto(fd, msg, sizeof(msg) - 1, 0, (struct sockaddr *)&sa,
                           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
        close(fd);
        return n < 0 ? -errno : 0;
}

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: tenantd [OPTIONS]\n"
                "\n"
                "  --config FILE          configuration file (default %s)\n"
                "  --manifests DIR        manifest directory (default /etc/tenantd/services)\n"
                "  --state DIR            state directory (default /var/lib/tenantd)\n"
                "  --socket PATH          control socket (default /run/tenantd/control.sock)\n"
                "  --group NAME           group allowed on the socket (default tenantd)\n"
                "  --syslog-facility F    syslog facility for logs and alerts (default daemon)\n"
                "  --syslog-ident NAME    syslog ident (default tenantd)\n"
                "  --syslog-socket PATH   where alerts are sent (default /dev/log)\n"
                "  --sample-interval DUR  monitor sampling period (default 1s)\n"
                "  --client-idle-timeout DUR  close control clients idle this long (default\n"
                "                         5min; 0: never)\n"
                "  --pidfile PATH         write the daemon's pid there once it serves\n"
                "  --foreground           stay in the foreground and log to stderr (for systemd\n"
                "                         Type=notify and for tests); otherwise detach, log\n"
                "                         to syslog, and exit once the daemon serves\n"
                "  --debug                log debug messages too\n"
                "  --version, --help\n",
                DEFAULT_CONFIG);
}

static int set_key(struct daemon_config *c, const char *key, const char *value, char *why,
                   size_t len)
{
        char **target = NULL;
        if (strcmp(key, "manifests") == 0)
                target = &c->manifest_dir;
        else if (strcmp(key, "state") == 0)
                target = &c->state_dir;
        else if (strcmp(key, "socket") == 0)
                target = &c->socket_path;
        else if (strcmp(key, "group") == 0)
                target = &c->socket_group;
        else if (strcmp(key, "syslog-ident") == 0)
                target = &c->syslog_ident;
        else if (strcmp(key, "syslog-socket") == 0)
                target = &c->syslog_socket;
        else if (strcmp(key, "pidfile") == 0)
                target = &c->pidfile;
        if (target) {
                if (!*value) {
                        snprintf(why, len, "%s: empty value", key);
                        return -EINVAL;
                }
                free(*target);
                *target = strdup(value);
                return *target ? 0 : -ENOMEM;
        }
        if (strcmp(key, "syslog-facility") == 0) {
                int f = log_facility_from_name(value);
                if (f < 0) {
                        snprintf(why, len, "syslog-facility: unknown facility \"%s\"", value);
                        return -EINVAL;
                }
                c->syslog_facility = f;
                return 0;
        }
        if (strcmp(key, "sample-interval") == 0) {
                uint64_t ms;
                char w[128];
                if (parse_duration(value, &ms, w, sizeof(w)) < 0 || ms < 100 || ms > 60000) {
                        snprintf(why, len, "sample-interval: \"%s\": a duration from 100ms to 60s",
                                 value);
                        return -EINVAL;
                }
                c->sample_ms = ms;
                return 0;
        }
        if (strcmp(key, "client-idle-timeout") == 0) {
                uint64_t ms;
                char w[128];
                if (parse_duration(value, &ms, w, sizeof(w)) < 0 || (ms && ms < 1000) ||
                    ms > 86400000) {
                        snprintf(why, len,
                                 "client-idle-timeout: \"%s\": a duration from 1s to 24h, or 0 "
                                 "for never",
                                 value);
                        return -EINVAL;
                }
                c->client_idle_ms = ms;
                return 0;
        }
        snprintf(why, len, "unknown key \"%s\"", key);
        return -EINVAL;
}

static int read_config(struct daemon_config *c, const char *path, bool required)
{
        /* It names the manifest directory and the state directory: only a file that
         * root alone can change is read (trust.h). */
        _cleanup_err_ struct tn_err *err = NULL;
        _cleanup_free_ char *real = NULL;
        int r = trust_check(path, TRUST_FILE, &real, &err);
        if (r == -ENOENT && !required)
                return 0;
        if (r < 0) {
                log_error("untrusted configuration refused: %s", tn_err_msg(err));
                return r;
        }
        _cleanup_fclose_ FILE *f = fopen(real, "re");
        if (!f) {
                if (!required && errno == ENOENT)
                        return 0;
                return log_error_errno(-errno, "cannot open %s", path);
        }
        char line[4096];
        for (unsigned no = 1; fgets(line, sizeof(line), f); no++) {
                char *p = line + strspn(line, " \t");
                p[strcspn(p, "\r\n")] = '\0';
                if (!*p || *p == '#')
                        continue;
                char *eq = strchr(p, '=');
                if (!eq) {
                        log_error("%s:%u: expected \"key = value\"", path, no);
                        return -EINVAL;
                }
                char *key = p, *value = eq + 1;
                *eq = '\0';
                for (char *e = key + strlen(key); e > key && (e[-1] == ' ' || e[-1] == '\t');)
                        *--e = '\0';
                value += strspn(value, " \t");
                for (char *e = value + strlen(value); e > value && (e[-1] == ' ' || e[-1] == '\t');)
                        *--e = '\0';
                char why[256];
                if (set_key(c, key, value, why, sizeof(why)) < 0) {
                        log_error("%s:%u: %s", path, no, why);
                        return -EINVAL;
                }
        }
        return 0;
}

static void config_free(struct daemon_config *c)
{
        free(c->manifest_dir);
        free(c->state_dir);
        free(c->socket_path);
        free(c->socket_group);
        free(c->syslog_ident);
        free(c->syslog_socket);
        free(c->pidfile);
}

/* Everything main() allocated goes on every way out (ASan checks for leaks). */
static void daemon_freep(struct daemon *d)
{
        config_free(&d->cfg);
}

static void config_defaults(struct daemon_config *c)
{
        c->manifest_dir = strdup(TENANTD_SYSCONFDIR "/tenantd/services");
        c->state_dir = strdup("/var/lib/tenantd");
        c->socket_path = strdup("/run/tenantd/control.sock");
        c->socket_group = strdup("tenantd");
        c->syslog_ident = strdup("tenantd");
        c->syslog_socket = strdup("/dev/log");
        c->syslog_facility = LOG_DAEMON;
        c->sample_ms = 1000;
        c->client_idle_ms = 5 * 60 * 1000;
        c->uid_base = UIDRANGE_DEFAULT_BASE;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
            {"config", required_argument, NULL, 'c'},
            {"manifests", required_argument, NULL, 'm'},
            {"state", required_argument, NULL, 's'},
            {"socket", required_argument, NULL, 'S'},
            {"group", required_argument, NULL, 'g'},
            {"syslog-facility", required_argument, NULL, 'F'},
            {"syslog-ident", required_argument, NULL, 'I'},
            {"syslog-socket", required_argument, NULL, 'L'},
            {"sample-interval", required_argument, NULL, 'i'},
            {"client-idle-timeout", required_argument, NULL, 'T'},
            {"pidfile", required_argument, NULL, 'P'},
            {"foreground", no_argument, NULL, 'f'},
            {"debug", no_argument, NULL, 'd'},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {NULL, 0, NULL, 0},
        };
        log_open("tenantd", LOG_TARGET_STDERR, 0);
        _cleanup_(daemon_freep) struct daemon d = {0};
        config_defaults(&d.cfg);

        /* The configuration file first, then the options over it. */
        const char *config = NULL;
        bool debug = false;
        int c;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
                if (c == 'c')
                        config = optarg;
                else if (c == 'h') {
                        usage(stdout);
                        return 0;
                } else if (c == 'V') {
                        printf("tenantd %s\n", TENANTD_VERSION);
                        return 0;
                } else if (c == '?') {
                        usage(stderr);
                        return 2;
                }
        }
        if (read_config(&d.cfg, config ? config : DEFAULT_CONFIG, config != NULL) < 0)
                return 2;
        optind = 1;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
                char why[256];
                const char *key = NULL;
                switch (c) {
                case 'm':
                        key = "manifests";
                        break;
                case 's':
                        key = "state";
                        break;
                case 'S':
                        key = "socket";
                        break;
                case 'g':
                        key = "group";
                        break;
                case 'F':
                        key = "syslog-facility";
                        break;
                case 'I':
                        key = "syslog-ident";
                        break;
                case 'L':
                        key = "syslog-socket";
                        break;
                case 'i':
                        key = "sample-interval";
                        break;
                case 'T':
                        key = "client-idle-timeout";
                        break;
                case 'f':
                        d.cfg.foreground = true;
                        break;
                case 'd':
                        debug = true;
                        break;
                default:
                        break;
                }
                if (key && set_key(&d.cfg, key, optarg, why, sizeof(why)) < 0) {
                        log_error("--%s", why);
                        return 2;
                }
        }
        if (optind < argc) {
                log_error("unexpected argument \"%s\"", argv[optind]);
                return 2;
        }
        if (geteuid() != 0) {
                log_error("tenantd needs root: it creates namespaces, cgroups and network "
                          "devices for its tenants (which get no privilege)");
                return 1;
        }
        d.ready_fd = -1;
        if (!d.cfg.foreground) {
                /* Detach: the parent exits once the child serves (or with its failure),
                 * so an init script can start tenantd and use it at once. Until then the
                 * child logs to the same terminal; daemon_run switches it to syslog and
                 * /dev/null when it is ready. */
                int p[2];
                if (pipe2(p, O_CLOEXEC) < 0)
                        return 1;
                pid_t pid = fork();
                if (pid < 0)
                        return 1;
                if (pid > 0) {
                        close(p[1]);
                        char ok;
                        return read(p[0], &ok, 1) == 1 ? 0 : 1;
                }
                close(p[0]);
                d.ready_fd = p[1];
                setsid();
                if (chdir("/") < 0)
                        return 1;
        }
        log_set_max_level(debug ? LOG_DEBUG : LOG_INFO);
        /* Seccomp profiles and capability sets are believed only when root alone can
         * change them, like manifests (trust.h). */
        policy_trust_files(true, NULL);
        log_notice("tenantd %s starting: manifests %s, state %s, socket %s", TENANTD_VERSION,
                   d.cfg.manifest_dir, d.cfg.state_dir, d.cfg.socket_path);
        int r = daemon_run(&d);
        return r < 0 ? 1 : 0;
}
