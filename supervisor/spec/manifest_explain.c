/* manifest_explain.c — the effective configuration of a parsed manifest, every default
 * filled in, written back in manifest syntax (so it validates and explains to itself). */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/json.h"
#include "spec/manifest.h"
#include "lib/units.h"

static void kv_str(struct json_gen *g, const char *key, const char *value)
{
        json_gen_key(g, key);
        json_gen_string(g, value);
}

static void kv_int(struct json_gen *g, const char *key, int64_t value)
{
        json_gen_key(g, key);
        json_gen_int(g, value);
}

static void kv_bool(struct json_gen *g, const char *key, bool value)
{
        json_gen_key(g, key);
        json_gen_bool(g, value);
}

static void kv_size(struct json_gen *g, const char *key, uint64_t bytes)
{
        char buf[UNITS_FMT_MAX];
        kv_str(g, key, bytes == MANIFEST_UNLIMITED ? "max" : format_size(bytes, buf));
}

static void kv_duration(struct json_gen *g, const char *key, uint64_t ms)
{
        char buf[UNITS_FMT_MAX];
        kv_str(g, key, format_duration(ms, buf));
}

static void kv_rate(struct json_gen *g, const char *key, uint64_t bits)
{
        char buf[UNITS_FMT_MAX];
        kv_str(g, key, format_rate(bits, buf));
}

static void strv_out(struct json_gen *g, const char *key, char **v)
{
        json_gen_key(g, key);
        json_gen_array_open(g);
        for (size_t i = 0; v && v[i]; i++)
                json_gen_string(g, v[i]);
        json_gen_array_close(g);
}

static void cidrs_out(struct json_gen *g, const char *key, const struct cidr *c, size_t n)
{
        json_gen_key(g, key);
        json_gen_array_open(g);
        for (size_t i = 0; i < n; i++) {
                char addr[INET6_ADDRSTRLEN], buf[INET6_ADDRSTRLEN + 8];
                inet_ntop(c[i].family, c[i].addr, addr, sizeof(addr));
                snprintf(buf, sizeof(buf), "%s/%u", addr, c[i].prefix);
                json_gen_string(g, buf);
        }
        json_gen_array_close(g);
}

static void mounts_out(struct json_gen *g, const struct manifest *m)
{
        json_gen_key(g, "mounts");
        json_gen_array_open(g);
        for (size_t i = 0; i < m->mounts_n; i++) {
                const struct mount_spec *ms = &m->mounts[i];
                json_gen_object_open(g);
                kv_str(g, "type", ms->type == MOUNT_BIND ? "bind" : "tmpfs");
                if (ms->type == MOUNT_BIND)
                        kv_str(g, "source", ms->source);
                kv_str(g, "target", ms->target);
                kv_str(g, "mode", ms->readonly ? "ro" : "rw");
                kv_bool(g, "noexec", ms->noexec);
                if (ms->type == MOUNT_TMPFS)
                        kv_size(g, "size", ms->size);
                json_gen_object_close(g);
        }
        json_gen_array_close(g);
}

/* network.limits, always written out: its defaults are a policy the reader should see. */
static void limits_out(struct json_gen *g, const struct manifest *m)
{
        const typeof(m->network.limits) *l = &m->network.limits;
        char buf[64], unit[UNITS_FMT_MAX];
        json_gen_key(g, "limits");
        json_gen_object_open(g);
        if (l->conns)
                kv_int(g, "conns", l->conns);
        else
                kv_str(g, "conns", "max");
        if (l->new_conns) {
                snprintf(buf, sizeof(buf), "%u/s burst %u", l->new_conns, l->new_burst);
                kv_str(g, "new_conns", buf);
        } else {
                kv_str(g, "new_conns", "max");
        }
        if (l->pps)
                kv_int(g, "pps", l->pps);
        else
                kv_str(g, "pps", "max");
        kv_bool(g, "smtp", l->smtp);
        if (l->on_abuse == ABUSE_THROTTLE)
                snprintf(buf, sizeof(buf), "throttle:%s", format_rate(l->throttle_rate, unit));
        else if (l->on_abuse == ABUSE_CUT)
                snprintf(buf, sizeof(buf), "cut:%s", format_duration(l->cut_ms, unit));
        else
                snprintf(buf, sizeof(buf), "alert");
        kv_str(g, "on_abuse", buf);
        json_gen_object_close(g);
}

static void byte_rate_out(struct json_gen *g, const char *key, uint64_t bytes)
{
        char size[UNITS_FMT_MAX], buf[UNITS_FMT_MAX + 2];
        if (!bytes) {
                kv_str(g, key, "max");
                return;
        }
        snprintf(buf, sizeof(buf), "%s/s", format_size(bytes, size));
        kv_str(g, key, buf);
}

static void volumes_out(struct json_gen *g, const struct manifest *m)
{
        json_gen_key(g, "volumes");
        json_gen_array_open(g);
        for (size_t i = 0; i < m->volumes_n; i++) {
                const struct volume_spec *vs = &m->volumes[i];
                json_gen_object_open(g);
                kv_str(g, "name", vs->name);
                kv_str(g, "target", vs->target);
                kv_size(g, "size", vs->size);
                kv_bool(g, "encrypt", vs->encrypt);
                kv_bool(g, "noexec", vs->noexec);
                json_gen_key(g, "io");
                json_gen_object_open(g);
                byte_rate_out(g, "read", vs->io.read);
                byte_rate_out(g, "write", vs->io.write);
                if (vs->io.iops)
                        kv_int(g, "iops", (int64_t)vs->io.iops);
                else
                        kv_str(g, "iops", "max");
                json_gen_object_close(g);
                json_gen_object_close(g);
        }
        json_gen_array_close(g);
}

static void network_out(struct json_gen *g, const struct manifest *m)
{
        const typeof(m->network) *n = &m->network;
        json_gen_key(g, "network");
        json_gen_object_open(g);
        kv_str(g, "mode", n->mode == NET_NONE ? "none" : "private");
        if (n->mode == NET_NONE) {
                json_gen_object_close(g);
                return;
        }
        if (n->ipv6_prefix)
                kv_str(g, "ipv6", "prefix");
        else
                kv_bool(g, "ipv6", n->ipv6);
        json_gen_key(g, "egress");
        json_gen_object_open(g);
        if (n->egress_rate)
                kv_rate(g, "rate", n->egress_rate);
        cidrs_out(g, "allow", n->allow, n->allow_n);
        cidrs_out(g, "deny", n->deny, n->deny_n);
        kv_bool(g, "deny_lan", n->deny_lan);
        kv_bool(g, "allow_host", n->allow_host);
        json_gen_object_close(g);
        json_gen_key(g, "ingress");
        json_gen_object_open(g);
        if (n->ingress_rate)
                kv_rate(g, "rate", n->ingress_rate);
        json_gen_object_close(g);
        if (n->transfer.period != TRANSFER_NONE) {
                static const char *const period[] = {"", "daily", "weekly", "monthly"};
                char buf[UNITS_FMT_MAX + 16], rate[UNITS_FMT_MAX];
                json_gen_key(g, "transfer");
                json_gen_object_open(g);
                kv_size(g, period[n->transfer.period], n->transfer.limit);
                if (n->transfer.action == TRANSFER_THROTTLE)
                        snprintf(buf, sizeof(buf), "throttle:%s",
                                 format_rate(n->transfer.throttle_rate, rate));
                else
                        snprintf(buf, sizeof(buf), "%s",
                                 n->transfer.action == TRANSFER_CUT ? "cut" : "alert");
                kv_str(g, "on_exceed", buf);
                json_gen_object_close(g);
        }
        json_gen_key(g, "publish");
        json_gen_array_open(g);
        for (size_t i = 0; i < n->publish_n; i++) {
                const struct publish_spec *p = &n->publish[i];
                json_gen_object_open(g);
                kv_int(g, "host", p->host_port);
                kv_int(g, "port", p->port);
                kv_str(g, "proto", p->proto == PROTO_TCP ? "tcp" : "udp");
                if (p->bind_family) {
                        char addr[INET6_ADDRSTRLEN];
                        inet_ntop(p->bind_family, p->bind_addr, addr, sizeof(addr));
                        kv_str(g, "address", addr);
                }
                json_gen_object_close(g);
        }
        json_gen_array_close(g);
        if (n->dns)
                strv_out(g, "dns", n->dns);
        if (n->public_ipv4) {
                struct in_addr in = {.s_addr = htonl(n->public_ipv4)};
                char addr[INET_ADDRSTRLEN];
                inet_ntop(AF_INET, &in, addr, sizeof(addr));
                kv_str(g, "public_ipv4", addr);
        }
        limits_out(g, m);
        json_gen_object_close(g);
}

static void health_out(struct json_gen *g, const struct manifest *m)
{
        if (m->health.kind == HEALTH_NONE)
                return;
        json_gen_key(g, "health");
        json_gen_object_open(g);
        switch (m->health.kind) {
        case HEALTH_TCP:
                kv_int(g, "tcp", m->health.port);
                break;
        case HEALTH_HTTP:
                json_gen_key(g, "http");
                json_gen_object_open(g);
                kv_int(g, "port", m->health.port);
                kv_str(g, "path", m->health.path ? m->health.path : "/");
                json_gen_object_close(g);
                break;
        case HEALTH_EXEC:
                strv_out(g, "exec", m->health.exec);
                break;
        case HEALTH_NONE:
                break;
        }
        kv_duration(g, "interval", m->health.interval_ms);
        kv_duration(g, "timeout", m->health.timeout_ms);
        kv_int(g, "retries", m->health.retries);
        kv_duration(g, "start_period", m->health.start_period_ms);
        json_gen_object_close(g);
}

static void alert_out(struct json_gen *g, const char *key, const struct alert_rule *r)
{
        char t[UNITS_FMT_MAX], d[UNITS_FMT_MAX], cl[UNITS_FMT_MAX], buf[128];
        if (!r->set)
                return;
        snprintf(buf, sizeof(buf), "%s for %s clear %s", format_percent(r->threshold_bp, t),
                 format_duration(r->for_ms, d), format_percent(r->clear_bp, cl));
        kv_str(g, key, buf);
}

static void backup_out(struct json_gen *g, const struct manifest *m);
static void access_out(struct json_gen *g, const struct manifest *m)
{
        if (!m->access_n)
                return;
        json_gen_key(g, "access");
        json_gen_array_open(g);
        for (size_t i = 0; i < m->access_n; i++) {
                const struct access_entry *e = &m->access[i];
                json_gen_object_open(g);
                if (e->user)
                        kv_str(g, "user", e->user);
                else
                        kv_str(g, "group", e->group);
                json_gen_key(g, "allow");
                json_gen_array_open(g);
                for (int op = 0; op < ACCESS_OP_COUNT_; op++)
                        if (e->allow & (1U << op))
                                json_gen_string(g, access_op_name((enum access_op)op));
                json_gen_array_close(g);
                if (e->set)
                        strv_out(g, "set", e->set);
                json_gen_object_close(g);
        }
        json_gen_array_close(g);
}

static void body_out(struct json_gen *g, const struct manifest *m)
{
        char buf[UNITS_FMT_MAX * 2 + 4], a[UNITS_FMT_MAX], b[UNITS_FMT_MAX];

        kv_int(g, "version", 1);
        kv_str(g, "name", m->name);
        if (m->description)
                kv_str(g, "description", m->description);
        kv_str(g, "isolation", isolation_name(m->isolation));
        kv_bool(g, "autostart", m->autostart);
        strv_out(g, "exec", m->exec);
        snprintf(buf, sizeof(buf), "%u:%u", m->uid, m->gid);
        kv_str(g, "user", buf);
        json_gen_key(g, "groups");
        json_gen_array_open(g);
        for (size_t i = 0; i < m->groups_n; i++)
                json_gen_int(g, m->groups[i]);
        json_gen_array_close(g);
        json_gen_key(g, "env");
        json_gen_object_open(g);
        for (size_t i = 0; i < m->env_n; i++)
                kv_str(g, m->env[i].name, m->env[i].value);
        json_gen_object_close(g);
        kv_str(g, "workdir", m->workdir);

        json_gen_key(g, "root");
        if (m->root.kind == ROOT_HOST_SYSTEM) {
                json_gen_string(g, "host-system");
        } else {
                json_gen_object_open(g);
                kv_str(g, "path", m->root.path);
                kv_bool(g, "readonly", m->root.readonly);
                json_gen_object_close(g);
        }
        mounts_out(g, m);
        volumes_out(g, m);

        json_gen_key(g, "cpu");
        json_gen_object_open(g);
        json_gen_key(g, "max");
        if (m->cpu.max_millicpus == 0)
                json_gen_string(g, "max");
        else
                json_gen_number(g, format_cpu(m->cpu.max_millicpus, a));
        kv_int(g, "weight", m->cpu.weight);
        if (m->cpu.cpuset)
                kv_str(g, "cpus", m->cpu.cpuset);
        json_gen_object_close(g);

        json_gen_key(g, "memory");
        json_gen_object_open(g);
        kv_size(g, "max", m->memory.max);
        kv_size(g, "high", m->memory.high);
        kv_size(g, "swap", m->memory.swap);
        json_gen_object_close(g);

        json_gen_key(g, "pids");
        json_gen_object_open(g);
        if (m->pids.max == MANIFEST_UNLIMITED)
                kv_str(g, "max", "max");
        else
                kv_int(g, "max", (int64_t)m->pids.max);
        json_gen_object_close(g);

        network_out(g, m);

        if (m->isolation == ISOLATION_MICROVM) {
                json_gen_key(g, "vm");
                json_gen_object_open(g);
                kv_int(g, "vcpus", m->vm.vcpus);
                kv_size(g, "memory", m->vm.memory);
                if (m->vm.kernel)
                        kv_str(g, "kernel", m->vm.kernel);
                if (m->vm.initrd)
                        kv_str(g, "initrd", m->vm.initrd);
                if (m->vm.cmdline)
                        kv_str(g, "cmdline", m->vm.cmdline);
                json_gen_object_close(g);
        }

        json_gen_key(g, "policy");
        json_gen_object_open(g);
        kv_str(g, "seccomp", m->policy.seccomp);
        strv_out(g, "capabilities", m->policy.capabilities);
        json_gen_object_close(g);

        static const char *const ons[] = {"no", "on-failure", "always"};
        json_gen_key(g, "restart");
        json_gen_object_open(g);
        kv_str(g, "on", ons[m->restart.on]);
        snprintf(buf, sizeof(buf), "%s..%s", format_duration(m->restart.backoff_min_ms, a),
                 format_duration(m->restart.backoff_max_ms, b));
        kv_str(g, "backoff", buf);
        kv_int(g, "burst", m->restart.burst);
        kv_duration(g, "stable", m->restart.stable_ms);
        json_gen_object_close(g);

        json_gen_key(g, "stop");
        json_gen_object_open(g);
        kv_str(g, "signal", manifest_signal_name(m->stop.signal));
        kv_duration(g, "timeout", m->stop.timeout_ms);
        json_gen_object_close(g);

        health_out(g, m);

        json_gen_key(g, "alerts");
        json_gen_object_open(g);
        alert_out(g, "cpu", &m->alerts.cpu);
        alert_out(g, "memory", &m->alerts.memory);
        alert_out(g, "pids", &m->alerts.pids);
        alert_out(g, "network", &m->alerts.network);
        alert_out(g, "transfer", &m->alerts.transfer);
        alert_out(g, "disk", &m->alerts.disk);
        json_gen_object_close(g);

        json_gen_key(g, "logs");
        json_gen_object_open(g);
        kv_size(g, "max_size", m->logs.max_size);
        kv_int(g, "keep", m->logs.keep);
        if (m->logs.rate) {
                snprintf(buf, sizeof(buf), "%s/s", format_size(m->logs.rate, a));
                kv_str(g, "rate", buf);
        } else {
                kv_str(g, "rate", "unlimited");
        }
        kv_bool(g, "syslog", m->logs.syslog);
        json_gen_object_close(g);
        if (m->backup.set)
                backup_out(g, m);
        access_out(g, m);
}

static void backup_out(struct json_gen *g, const struct manifest *m)
{
        const struct backup_spec *b = &m->backup;
        char buf[64], unit[UNITS_FMT_MAX];
        json_gen_key(g, "backup");
        json_gen_object_open(g);
        kv_str(g, "repository", b->repository);
        kv_str(g, "password_file", b->password_file);
        if (b->ssh_key)
                kv_str(g, "ssh_key", b->ssh_key);
        if (b->known_hosts)
                kv_str(g, "known_hosts", b->known_hosts);
        if (b->schedule == BACKUP_DAILY) {
                snprintf(buf, sizeof(buf), "daily %02u:%02u", b->daily_minute / 60,
                         b->daily_minute % 60);
                kv_str(g, "schedule", buf);
        } else if (b->schedule == BACKUP_EVERY) {
                kv_duration(g, "schedule", b->every_ms);
        }
        json_gen_key(g, "keep");
        json_gen_object_open(g);
        const uint32_t keep[] = {b->keep.last,   b->keep.hourly,  b->keep.daily,
                                 b->keep.weekly, b->keep.monthly, b->keep.yearly};
        static const char *const names[] = {"last",   "hourly",  "daily",
                                            "weekly", "monthly", "yearly"};
        for (size_t i = 0; i < 6; i++)
                if (keep[i])
                        kv_int(g, names[i], keep[i]);
        json_gen_object_close(g);
        json_gen_key(g, "volumes");
        json_gen_array_open(g);
        for (size_t i = 0; i < m->volumes_n; i++)
                if (backup_includes(m, m->volumes[i].name))
                        json_gen_string(g, m->volumes[i].name);
        json_gen_array_close(g);
        if (b->pre)
                strv_out(g, "pre", b->pre);
        json_gen_key(g, "limits");
        json_gen_object_open(g);
        json_gen_key(g, "cpu");
        if (b->limits.cpu_millicpus)
                json_gen_number(g, format_cpu(b->limits.cpu_millicpus, unit));
        else
                json_gen_string(g, "max");
        kv_size(g, "memory", b->limits.memory);
        kv_int(g, "nice", b->limits.nice);
        kv_str(g, "io", b->limits.io == BACKUP_IO_IDLE ? "idle" : "best-effort");
        json_gen_object_close(g);
        json_gen_object_close(g);
}

char *manifest_explain(const struct manifest *m)
{
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(true);
        if (!g)
                return NULL;
        json_gen_object_open(g);
        body_out(g, m);
        json_gen_object_close(g);
        const char *buf;
        size_t len;
        if (json_gen_finish(g, &buf, &len) < 0)
                return NULL;
        return strndup(buf, len);
}
