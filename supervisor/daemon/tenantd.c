/* tenantd.c — the daemon's entry point: options, the configuration file, readiness.
 * The work is in daemon.c (loop and lifecycle) and control.c (the socket).
 *
 * Configuration: /etc/tenantd/tenantd.conf (or --config FILE) holds "key = value"
 * lines with the same names as the long options; options on the command line win.
 * A key the daemon does not know is an error that names the file and line. */
#include <fcntl.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/keeper.h"
#include "daemon/keeper_exec.h"
#include "lib/log.h"
#include "spec/policy.h"
#include "lib/trust.h"
#include "host/net.h"
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

/* ---- the one option table: command line and configuration file ---- */

enum option_kind {
        KIND_STRING,   /* a non-empty string into a daemon_config field */
        KIND_FACILITY, /* syslog facility name */
        KIND_SAMPLE,   /* the monitor's period: 100ms to 60s */
        KIND_IDLE,     /* client idle timeout: 1s to 24h, or 0 */
        KIND_VM_BOOTS, /* microVMs booting at once: 1 to 1024 */
        KIND_PREFIX,   /* an IPv6 prefix the operator routes to this host (net.h) */
        KIND_CONFIG,   /* --config FILE: read first, command line only */
        KIND_FOREGROUND,
        KIND_DEBUG,
        KIND_HELP,
        KIND_VERSION,
};

struct daemon_option {
        const char *name; /* the long option, and its key in the configuration file */
        const char *arg;  /* the value's name in --help; NULL: a flag */
        enum option_kind kind;
        size_t field;   /* KIND_STRING: offsetof(struct daemon_config, ...) */
        bool in_config; /* also a key of the configuration file */
        const char *help;
};

#define STRING_FIELD(f) KIND_STRING, offsetof(struct daemon_config, f), true

static const struct daemon_option options[] = {
    {"config", "FILE", KIND_CONFIG, 0, false, "configuration file (default " DEFAULT_CONFIG ")"},
    {"manifests", "DIR", STRING_FIELD(manifest_dir),
     "manifest directory (default " TENANTD_SYSCONFDIR "/tenantd/services)"},
    {"state", "DIR", STRING_FIELD(state_dir), "state directory (default /var/lib/tenantd)"},
    {"storage", "DIR", STRING_FIELD(storage_dir),
     "the tenants' volume images, DIR/TENANT/NAME.img (default STATE/volumes)"},
    {"master-key", "FILE", STRING_FIELD(master_key),
     "the key that wraps the encrypted volumes' keys; made on first use\n"
     "(default STATE/master.key; back it up, off the data disk)"},
    {"socket", "PATH", STRING_FIELD(socket_path),
     "control socket (default /run/tenantd/control.sock)"},
    {"group", "NAME", STRING_FIELD(socket_group), "group allowed on the socket (default tenantd)"},
    {"user-socket", "PATH", STRING_FIELD(user_socket_path),
     "the tenants' users' socket, mode 0666, served by the manifests' access\n"
     "sections (default user.sock beside --socket; \"none\": no such socket)"},
    {"syslog-facility", "F", KIND_FACILITY, 0, true,
     "syslog facility for logs and alerts (default daemon)"},
    {"syslog-ident", "NAME", STRING_FIELD(syslog_ident), "syslog ident (default tenantd)"},
    {"syslog-socket", "PATH", STRING_FIELD(syslog_socket),
     "where alerts are sent (default /dev/log)"},
    {"sample-interval", "DUR", KIND_SAMPLE, 0, true, "monitor sampling period (default 1s)"},
    {"client-idle-timeout", "DUR", KIND_IDLE, 0, true,
     "close control clients idle this long (default 5min; 0: never)"},
    {"parallel-vm-boots", "N", KIND_VM_BOOTS, 0, true,
     "microVMs that boot at once; the others wait their turn (default: the\n"
     "online CPUs)"},
    {"ipv6-prefix", "PREFIX", KIND_PREFIX, 0, true,
     "a global IPv6 prefix routed to this host (/16 to /64): tenants get routed\n"
     "addresses in its first /64, not NATed ULA ones (applies to tenants started\n"
     "afterwards; docs/operations.md)"},
    {"pidfile", "PATH", STRING_FIELD(pidfile),
     "write the daemon's pid there once it serves; removed when it exits"},
    {"foreground", NULL, KIND_FOREGROUND, 0, false,
     "stay in the foreground and log to stderr (for systemd Type=notify and for\n"
     "tests); otherwise detach, log to syslog, and exit once the daemon serves"},
    {"debug", NULL, KIND_DEBUG, 0, false, "log debug messages too"},
    {"help", NULL, KIND_HELP, 0, false, "this text (also -h)"},
    {"version", NULL, KIND_VERSION, 0, false, "the version"},
};

static void usage(FILE *out)
{
        fputs("Usage: tenantd [OPTIONS]\n\n", out);
        for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
                const struct daemon_option *o = &options[i];
                char head[64];
                snprintf(head, sizeof(head), "--%s%s%s", o->name, o->arg ? " " : "",
                         o->arg ? o->arg : "");
                fprintf(out, strlen(head) <= 24 ? "  %-24s " : "  %s\n  %-24s ", head, "");
                for (const char *p = o->help; *p; p++) {
                        fputc(*p, out);
                        if (*p == '\n')
                                fprintf(out, "  %-24s ", "");
                }
                fputc('\n', out);
        }
        fputs("\nThe configuration file holds \"key = value\" lines, a key for each option but\n"
              "config, foreground, debug, help and version; options on the command line win.\n",
              out);
}

static const struct daemon_option *option_named(const char *name)
{
        for (size_t i = 0; i < ARRAY_SIZE(options); i++)
                if (strcmp(options[i].name, name) == 0)
                        return &options[i];
        return NULL;
}

/* Sets the configuration key `key` (an option that is also a key). */
static int set_key(struct daemon_config *c, const char *key, const char *value, char *why,
                   size_t len)
{
        const struct daemon_option *o = option_named(key);
        if (!o || !o->in_config) {
                snprintf(why, len, "unknown key \"%s\"", key);
                return -EINVAL;
        }
        uint64_t ms;
        char w[128];
        switch (o->kind) {
        case KIND_STRING: {
                char **target = (char **)((char *)c + o->field);
                if (!*value) {
                        snprintf(why, len, "%s: empty value", key);
                        return -EINVAL;
                }
                free(*target);
                *target = strdup(value);
                return *target ? 0 : -ENOMEM;
        }
        case KIND_FACILITY: {
                int f = log_facility_from_name(value);
                if (f < 0) {
                        snprintf(why, len, "syslog-facility: unknown facility \"%s\"", value);
                        return -EINVAL;
                }
                c->syslog_facility = f;
                return 0;
        }
        case KIND_SAMPLE:
                if (parse_duration(value, &ms, w, sizeof(w)) < 0 || ms < 100 || ms > 60000) {
                        snprintf(why, len, "sample-interval: \"%s\": a duration from 100ms to 60s",
                                 value);
                        return -EINVAL;
                }
                c->sample_ms = ms;
                return 0;
        case KIND_IDLE:
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
        case KIND_VM_BOOTS: {
                char *end;
                errno = 0;
                unsigned long n = strtoul(value, &end, 10);
                if (errno || end == value || *end || n < 1 || n > 1024 || *value == '-') {
                        snprintf(why, len, "parallel-vm-boots: \"%s\": a number from 1 to 1024",
                                 value);
                        return -EINVAL;
                }
                c->vm_boots = (uint32_t)n;
                return 0;
        }
        case KIND_PREFIX: {
                struct in6_addr a;
                unsigned plen;
                if (net_prefix_parse(value, &a, &plen, w, sizeof(w)) < 0) {
                        snprintf(why, len, "ipv6-prefix: %s", w);
                        return -EINVAL;
                }
                free(c->ipv6_prefix);
                c->ipv6_prefix = strdup(value);
                return c->ipv6_prefix ? 0 : -ENOMEM;
        }
        default:
                snprintf(why, len, "unknown key \"%s\"", key);
                return -EINVAL;
        }
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
        free(c->storage_dir);
        free(c->master_key);
        free(c->socket_path);
        free(c->socket_group);
        free(c->user_socket_path);
        free(c->syslog_ident);
        free(c->syslog_socket);
        free(c->pidfile);
        free(c->ipv6_prefix);
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
        /* Under TCG a boot is CPU-bound: more at once than there are CPUs only makes
         * each one slower, until none reaches its agent's deadline (bench/vm-many). */
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        c->vm_boots = cpus > 0 && cpus < 1024 ? (uint32_t)cpus : 1;
}

int main(int argc, char **argv)
{
        /* A keeper's last step, exec'd by tenantd-keeper (keeper_exec.h). */
        if (argc > 1 && strcmp(argv[1], KEEPER_FINISH_ARG) == 0)
                return keeper_finish_main(argc, argv);
        /* getopt's view of the table: val is the index + 1. */
        struct option longopts[ARRAY_SIZE(options) + 1];
        for (size_t i = 0; i < ARRAY_SIZE(options); i++)
                longopts[i] = (struct option){options[i].name,
                                              options[i].arg ? required_argument : no_argument,
                                              NULL, (int)i + 1};
        longopts[ARRAY_SIZE(options)] = (struct option){NULL, 0, NULL, 0};
        log_open("tenantd", LOG_TARGET_STDERR, 0);
        _cleanup_(daemon_freep) struct daemon d = {0};
        config_defaults(&d.cfg);

        /* The configuration file first, then the options over it. */
        const char *config = NULL;
        bool debug = false;
        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                bool ours = c > 0 && c <= (int)ARRAY_SIZE(options); /* not '?' or ':' */
                if (c == 'h' || (ours && options[c - 1].kind == KIND_HELP)) {
                        usage(stdout);
                        return 0;
                }
                if (ours) {
                        if (options[c - 1].kind == KIND_CONFIG)
                                config = optarg;
                        else if (options[c - 1].kind == KIND_VERSION) {
                                printf("tenantd %s\n", TENANTD_VERSION);
                                return 0;
                        }
                        continue;
                }
                if (optopt > 0 && optopt <= (int)ARRAY_SIZE(options))
                        log_error("option --%s needs a value; see tenantd --help",
                                  options[optopt - 1].name);
                else
                        log_error("unknown option %s; see tenantd --help", argv[optind - 1]);
                return 2;
        }
        if (read_config(&d.cfg, config ? config : DEFAULT_CONFIG, config != NULL) < 0)
                return 2;
        optind = 1;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                if (c <= 0 || c > (int)ARRAY_SIZE(options))
                        continue; /* reported by the first pass */
                const struct daemon_option *o = &options[c - 1];
                char why[256];
                if (o->kind == KIND_FOREGROUND)
                        d.cfg.foreground = true;
                else if (o->kind == KIND_DEBUG)
                        debug = true;
                else if (o->in_config && set_key(&d.cfg, o->name, optarg, why, sizeof(why)) < 0) {
                        log_error("--%s", why);
                        return 2;
                }
        }
        if (optind < argc) {
                log_error("unexpected argument \"%s\"", argv[optind]);
                return 2;
        }
        if (!d.cfg.storage_dir && asprintf(&d.cfg.storage_dir, "%s/volumes", d.cfg.state_dir) < 0) {
                d.cfg.storage_dir = NULL;
                log_error("out of memory");
                return 1;
        }
        if (!d.cfg.master_key &&
            asprintf(&d.cfg.master_key, "%s/master.key", d.cfg.state_dir) < 0) {
                d.cfg.master_key = NULL;
                log_error("out of memory");
                return 1;
        }
        if (d.cfg.master_key[0] != '/') {
                log_error("master key %s: not an absolute path", d.cfg.master_key);
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
        log_notice("tenantd %s starting: manifests %s, state %s, storage %s, socket %s",
                   TENANTD_VERSION, d.cfg.manifest_dir, d.cfg.state_dir, d.cfg.storage_dir,
                   d.cfg.socket_path);
        int r = daemon_run(&d);
        return r < 0 ? 1 : 0;
}
