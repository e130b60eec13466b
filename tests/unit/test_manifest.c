/* test_manifest.c — manifest_parse: values land in the struct, defaults are applied,
 * every error is collected, and nothing is handed out when there is one. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "spec/manifest.h"
#include "tap.h"

static struct manifest *parse_ok(const char *text, const char *what)
{
        struct diag_list d = {0};
        struct manifest *m = NULL;
        int r = manifest_parse(text, strlen(text), &m, &d);
        ok(r == 0 && m && d.n == 0, "%s parses", what);
        if (r != 0)
                diag_print(&d, what, stdout);
        diag_list_clear(&d);
        return m;
}

static size_t parse_bad(const char *text, struct diag_list *d)
{
        struct manifest *m = (struct manifest *)0x1;
        int r = manifest_parse(text, strlen(text), &m, d);
        ok(r == -EINVAL && m == (struct manifest *)0x1,
           "invalid manifest: -EINVAL, output untouched");
        return d->n;
}

static void test_defaults(void)
{
        _cleanup_manifest_ struct manifest *m =
            parse_ok("{\"name\": \"a\", \"exec\": [\"/bin/true\"]}", "minimal");
        if (!m)
                return;
        is_str(m->name, "a", "name");
        is_int(m->isolation, ISOLATION_SANDBOX, "isolation defaults to sandbox");
        ok(m->autostart, "autostart defaults to true");
        is_int(m->exec_n, 1, "exec has one element");
        ok(m->exec[1] == NULL, "exec is NULL-terminated");
        ok(m->uid == 0 && m->gid == 0, "user defaults to 0:0 (the tenant's own root)");
        is_str(m->workdir, "/", "workdir defaults to /");
        is_int(m->root.kind, ROOT_HOST_SYSTEM, "root defaults to host-system");
        is_int(m->cpu.max_millicpus, 1000, "cpu.max defaults to 1 CPU");
        is_int(m->cpu.weight, 100, "cpu.weight defaults to 100");
        ok(m->memory.max == 512ULL << 20, "memory.max defaults to 512M");
        ok(m->memory.high == MANIFEST_UNLIMITED, "memory.high defaults to unset");
        ok(m->memory.swap == 0, "swap defaults to 0");
        is_int(m->pids.max, 512, "pids.max defaults to 512");
        is_int(m->network.mode, NET_NONE, "network defaults to none");
        ok(m->network.deny_lan, "deny_lan defaults to true");
        is_str(m->policy.seccomp, "default", "seccomp defaults to \"default\"");
        is_int(m->restart.on, RESTART_ON_FAILURE, "restart defaults to on-failure");
        is_int(m->stop.signal, SIGTERM, "stop signal defaults to SIGTERM");
        is_int(m->health.kind, HEALTH_NONE, "no health check by default");
        ok(!m->alerts.cpu.set && !m->alerts.memory.set, "no alerts by default");
}

static void test_values(void)
{
        const char *text =
            "{\"name\": \"photos\", \"exec\": [\"/usr/bin/x\", \"a b\"], \"user\": \"1000:100\","
            " \"env\": {\"TZ\": \"UTC\"},"
            " \"mounts\": [{\"source\": \"/srv/p\", \"target\": \"/p\"},"
            "   {\"source\": \"/srv/d\", \"target\": \"/d\", \"mode\": \"rw\", \"noexec\": true},"
            "   {\"type\": \"tmpfs\", \"target\": \"/tmp\", \"size\": \"1.5M\"}],"
            " \"cpu\": {\"max\": 1.5}, \"memory\": {\"max\": \"1G\", \"swap\": \"max\"},"
            " \"network\": {\"mode\": \"private\", \"egress\": {\"rate\": \"20mbit\","
            "   \"allow\": [\"10.1.0.0/16\", \"2001:db8::/32\"]},"
            "   \"transfer\": {\"monthly\": \"200G\", \"on_exceed\": \"throttle:1mbit\"},"
            "   \"publish\": [{\"host\": 8080, \"port\": 80}, {\"host\": 53, \"port\": 53, "
            "\"proto\": \"udp\"}]},"
            " \"policy\": {\"capabilities\": [\"net_bind_service\", \"@web\"]},"
            " \"restart\": {\"backoff\": \"2s..1h\"},"
            " \"alerts\": {\"cpu\": \"90% for 60s\", \"memory\": \"95% clear 50%\"}}";
        _cleanup_manifest_ struct manifest *m = parse_ok(text, "full sandbox");
        if (!m)
                return;
        is_str(m->exec[1], "a b", "exec argument with a space kept whole");
        ok(m->uid == 1000 && m->gid == 100, "user 1000:100");
        ok(m->env_n == 1 && strcmp(m->env[0].name, "TZ") == 0 &&
               strcmp(m->env[0].value, "UTC") == 0,
           "env TZ=UTC");
        is_int(m->mounts_n, 3, "three mounts");
        ok(m->mounts[0].readonly && !m->mounts[0].noexec, "bind defaults to read-only");
        ok(!m->mounts[1].readonly && m->mounts[1].noexec, "rw + noexec");
        ok(m->mounts[2].type == MOUNT_TMPFS && m->mounts[2].size == 1572864 &&
               !m->mounts[2].readonly,
           "tmpfs 1.5M read-write");
        is_int(m->cpu.max_millicpus, 1500, "cpu.max 1.5 = 1500 millicpus");
        ok(m->memory.max == 1ULL << 30 && m->memory.swap == MANIFEST_UNLIMITED, "memory");
        ok(m->network.egress_rate == 20000000, "egress 20mbit");
        ok(m->network.allow_n == 2 && m->network.allow[0].family == AF_INET &&
               m->network.allow[0].prefix == 16 && m->network.allow[1].family == AF_INET6,
           "allow list v4 + v6");
        ok(m->network.transfer.period == TRANSFER_MONTHLY &&
               m->network.transfer.limit == 200ULL << 30 &&
               m->network.transfer.action == TRANSFER_THROTTLE &&
               m->network.transfer.throttle_rate == 1000000,
           "transfer 200G monthly, throttle to 1mbit");
        ok(m->network.publish_n == 2 && m->network.publish[1].proto == PROTO_UDP &&
               m->network.publish[0].host_port == 8080 && m->network.publish[0].port == 80,
           "published ports");
        ok(m->policy.capabilities_n == 2 &&
               strcmp(m->policy.capabilities[0], "CAP_NET_BIND_SERVICE") == 0 &&
               strcmp(m->policy.capabilities[1], "@web") == 0,
           "capability names canonicalised, sets kept");
        ok(m->restart.backoff_min_ms == 2000 && m->restart.backoff_max_ms == 3600000,
           "backoff range");
        ok(m->alerts.cpu.set && m->alerts.cpu.threshold_bp == 9000 &&
               m->alerts.cpu.clear_bp == 8000 && m->alerts.cpu.for_ms == 60000,
           "cpu alert: 90%% for 60s, clears at 80%%");
        ok(m->alerts.memory.clear_bp == 5000 && m->alerts.memory.for_ms == 0,
           "memory alert with explicit clear");
}

static void test_microvm(void)
{
        _cleanup_manifest_ struct manifest *m =
            parse_ok("{\"name\": \"vm\", \"isolation\": \"microvm\", \"exec\": [\"/bin/sh\"],"
                     " \"vm\": {\"memory\": \"1G\", \"vcpus\": 2},"
                     " \"policy\": {\"capabilities\": [\"CAP_SYS_ADMIN\"]}}",
                     "microvm");
        if (!m)
                return;
        is_int(m->vm.vcpus, 2, "vcpus");
        ok(m->memory.max == (1ULL << 30) + (256ULL << 20),
           "memory.max defaults to vm.memory + 256M for a microVM");
        ok(m->policy.capabilities_n == 1, "CAP_SYS_ADMIN may be granted inside a microVM");
}

/* One manifest for both backends: a sandbox takes a vm section (and ignores it), but
 * what is in it is checked as strictly as for a microVM. */
static void test_vm_with_sandbox(void)
{
        _cleanup_manifest_ struct manifest *m =
            parse_ok("{\"name\": \"web\", \"exec\": [\"/bin/sh\"],"
                     " \"vm\": {\"memory\": \"1G\", \"vcpus\": 2}}",
                     "a sandbox with a vm section");
        if (m) {
                is_int(m->isolation, ISOLATION_SANDBOX, "it stays a sandbox");
                ok(m->vm.set, "the vm section is recorded (validate warns about it)");
                ok(m->memory.max == 512ULL << 20,
                   "memory.max keeps the sandbox default: vm.memory does not apply");
        }
        _cleanup_manifest_ struct manifest *plain =
            parse_ok("{\"name\": \"web\", \"exec\": [\"/bin/sh\"]}", "no vm section");
        ok(plain && !plain->vm.set, "no vm section, nothing to warn about");

        struct diag_list d = {0};
        size_t n = parse_bad("{\"name\": \"web\", \"exec\": [\"/bin/sh\"],"
                             " \"vm\": {\"vcpus\": 0, \"bogus\": 1}}",
                             &d);
        is_int(n, 2, "a sandbox's vm section is still checked: two errors");
        if (n == 2) {
                is_str(d.items[0].path, "vm.vcpus", "vcpus out of range");
                is_str(d.items[1].path, "vm.bogus", "unknown key");
        }
        diag_list_clear(&d);
}

static void test_all_errors_reported(void)
{
        struct diag_list d = {0};
        size_t n = parse_bad(
            "{\n\"name\": \"Bad Name\",\n\"exec\": [\"rel\"],\n\"cpu\": {\"max\": \"x\"},\n"
            "\"pids\": {\"max\": -1},\n\"bogus\": 1\n}",
            &d);
        is_int(n, 5, "five problems, five diagnostics");
        if (n == 5) {
                is_int(d.items[0].line, 2, "sorted by line: name first");
                is_str(d.items[1].path, "exec[0]", "key path with an index");
                is_str(d.items[2].path, "cpu.max", "nested key path");
                is_int(d.items[3].line, 5, "pids on line 5");
                is_str(d.items[4].path, "bogus", "unknown key path");
        }
        diag_list_clear(&d);

        struct diag_list d2 = {0};
        n = parse_bad("{\"name\": \"x\"}", &d2);
        is_int(n, 1, "missing exec is one error");
        diag_list_clear(&d2);
}

static void test_many_errors_capped(void)
{
        /* 300 unknown keys: the list is bounded instead of growing with the input. */
        size_t cap = 300 * 16 + 64;
        char *text = malloc(cap);
        size_t o = (size_t)snprintf(text, cap, "{\"name\": \"x\", \"exec\": [\"/x\"]");
        for (int i = 0; i < 300; i++)
                o += (size_t)snprintf(text + o, cap - o, ", \"k%d\": 1", i);
        snprintf(text + o, cap - o, "}");
        struct diag_list d = {0};
        size_t n = parse_bad(text, &d);
        ok(n == 100 && d.dropped == 200,
           "100 diagnostics kept, the other 200 counted (got %zu and %zu)", n, d.dropped);
        if (n)
                is_str(d.items[0].path, "k0", "the first ones by position are kept");
        diag_list_clear(&d);
        free(text);
}

static void test_hostile_strings(void)
{
        struct diag_list d = {0};
        parse_bad("{\"name\": \"x\", \"exec\": [\"/bin/sh\"], \"description\": \"a\\u001b[2Jb\"}",
                  &d);
        ok(d.n == 1 && strstr(d.items[0].msg, "control characters"),
           "terminal escape sequences are refused");
        diag_list_clear(&d);

        struct diag_list d2 = {0};
        parse_bad(
            "{\"name\": \"x\", \"exec\": [\"/bin/sh\"], \"workdir\": \"/a\\u001b[31mb/../c\"}",
            &d2);
        ok(d2.n == 1 && !strchr(d2.items[0].msg, '\x1b'), "messages never echo control bytes");
        diag_list_clear(&d2);
}

/* network.limits: protective defaults when absent, each form accepted, "max" lifts a
 * limit, and every bad value refused with the key's path. */
static void test_limits(void)
{
        _cleanup_manifest_ struct manifest *d = parse_ok(
            "{\"name\": \"a\", \"exec\": [\"/bin/true\"], \"network\": {\"mode\": \"private\"}}",
            "private, no limits");
        if (d) {
                const typeof(d->network.limits) *l = &d->network.limits;
                is_int(l->conns, 4096, "conns defaults to 4096");
                is_int(l->new_conns, 200, "new_conns defaults to 200/s");
                is_int(l->new_burst, 400, "with a burst of 400");
                is_int(l->pps, 50000, "pps defaults to 50000");
                ok(!l->smtp, "smtp defaults to false");
                is_int(l->on_abuse, ABUSE_ALERT, "on_abuse defaults to alert");
        }
        static const struct {
                const char *limits;
                uint32_t conns, new_conns, burst, pps;
                bool smtp;
                int action;
                uint64_t arg;
        } good[] = {
            {"{\"conns\": \"10k\", \"pps\": \"2m\"}", 10000, 200, 400, 2000000, false, ABUSE_ALERT,
             0},
            {"{\"conns\": \"max\", \"new_conns\": \"max\", \"pps\": \"unlimited\"}", 0, 0, 0, 0,
             false, ABUSE_ALERT, 0},
            {"{\"new_conns\": \"3000/m\", \"smtp\": true}", 4096, 50, 100, 50000, true, ABUSE_ALERT,
             0},
            {"{\"new_conns\": \"1/s\", \"on_abuse\": \"throttle:1mbit\"}", 4096, 1, 5, 50000, false,
             ABUSE_THROTTLE, 1000000},
            {"{\"new_conns\": \"20/s burst 7\", \"on_abuse\": \"cut:10m\", \"conns\": 16}", 16, 20,
             7, 50000, false, ABUSE_CUT, 600000},
        };
        for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
                char text[512];
                snprintf(text, sizeof(text),
                         "{\"name\": \"a\", \"exec\": [\"/bin/true\"], \"network\": {\"mode\": "
                         "\"private\", \"limits\": %s}}",
                         good[i].limits);
                _cleanup_manifest_ struct manifest *m = parse_ok(text, good[i].limits);
                if (!m)
                        continue;
                const typeof(m->network.limits) *l = &m->network.limits;
                uint64_t arg = l->on_abuse == ABUSE_THROTTLE ? l->throttle_rate
                               : l->on_abuse == ABUSE_CUT    ? l->cut_ms
                                                             : 0;
                ok(l->conns == good[i].conns && l->new_conns == good[i].new_conns &&
                       l->new_burst == good[i].burst && l->pps == good[i].pps &&
                       l->smtp == good[i].smtp && (int)l->on_abuse == good[i].action &&
                       arg == good[i].arg,
                   "%s: conns %u new %u burst %u pps %u smtp %d action %d %llu", good[i].limits,
                   l->conns, l->new_conns, l->new_burst, l->pps, l->smtp, l->on_abuse,
                   (unsigned long long)arg);
        }
        static const char *const bad[] = {
            "{\"conns\": 15}",
            "{\"conns\": \"1k5\"}",
            "{\"conns\": -1}",
            "{\"pps\": \"99\"}",
            "{\"pps\": \"0x10\"}",
            "{\"new_conns\": \"200/h\"}",
            "{\"new_conns\": \"/s\"}",
            "{\"new_conns\": \"200/s burst 0\"}",
            "{\"new_conns\": 200}",
            "{\"new_conns\": \"9999999999/s\"}",
            "{\"on_abuse\": \"cut\"}",
            "{\"on_abuse\": \"throttle:1\"}",
            "{\"on_abuse\": \"cut:48h\"}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
                char text[512];
                snprintf(text, sizeof(text),
                         "{\"name\": \"a\", \"exec\": [\"/bin/true\"], \"network\": {\"mode\": "
                         "\"private\", \"limits\": %s}}",
                         bad[i]);
                struct diag_list dl = {0};
                if (parse_bad(text, &dl) == 1)
                        ok(strncmp(dl.items[0].path, "network.limits.", 15) == 0,
                           "%s refused at %s: %s", bad[i], dl.items[0].path, dl.items[0].msg);
                else
                        ok(false, "%s: one error (%zu)", bad[i], dl.n);
                diag_list_clear(&dl);
        }
}

static void test_volumes(void)
{
        _cleanup_manifest_ struct manifest *m =
            parse_ok("{\"name\": \"v\", \"exec\": [\"/bin/true\"],"
                     " \"volumes\": [{\"name\": \"data\", \"target\": \"/var/lib/app\", \"size\": "
                     "\"2G\","
                     "  \"io\": {\"read\": \"50M\", \"write\": \"20M/s\", \"iops\": 2000},"
                     "  \"noexec\": true},"
                     " {\"name\": \"cache\", \"target\": \"/cache\", \"size\": \"64M\", "
                     "\"encrypt\": false}]}",
                     "volumes");
        if (m) {
                is_int(m->volumes_n, 2, "two volumes");
                is_str(m->volumes[0].name, "data", "name");
                is_str(m->volumes[0].target, "/var/lib/app", "target");
                ok(m->volumes[0].size == 2ULL << 30, "size 2G");
                ok(m->volumes[0].encrypt, "encrypt defaults to true");
                ok(m->volumes[0].noexec, "noexec");
                ok(m->volumes[0].io.read == 50ULL << 20, "io.read \"50M\" is bytes per second");
                ok(m->volumes[0].io.write == 20ULL << 20, "io.write \"20M/s\" too");
                ok(m->volumes[0].io.iops == 2000, "io.iops");
                ok(!m->volumes[1].encrypt && !m->volumes[1].noexec, "encrypt false, noexec off");
                ok(m->volumes[1].io.read == 0 && m->volumes[1].io.write == 0 &&
                       m->volumes[1].io.iops == 0,
                   "no io limits by default");
                _cleanup_free_ char *text = manifest_explain(m);
                _cleanup_manifest_ struct manifest *again =
                    text ? parse_ok(text, "explained volumes") : NULL;
                ok(again && again->volumes_n == 2 && again->volumes[0].io.write == 20ULL << 20 &&
                       !again->volumes[1].encrypt,
                   "explain writes volumes that parse back to the same values");
        }

        struct diag_list d = {0};
        size_t n =
            parse_bad("{\"name\": \"v\", \"exec\": [\"/bin/true\"],\n"
                      "\"mounts\": [{\"type\": \"tmpfs\", \"target\": \"/t\"}],\n"
                      "\"volumes\": [{\"name\": \"a\", \"target\": \"/t\", \"size\": \"1M\"},\n"
                      "{\"name\": \"a\", \"target\": \"/proc/x\"},\n"
                      "{\"name\": \"../b\", \"target\": \"/b\", \"size\": \"1G\", "
                      "\"io\": {\"write\": \"fast\"}}]}",
                      &d);
        is_int(n, 7, "seven problems in volumes, seven diagnostics");
        if (n == 7) {
                /* sorted by position: the missing size points at its object */
                is_str(d.items[0].path, "volumes[0].target", "target of a mount");
                is_str(d.items[1].path, "volumes[0].size", "size below the minimum");
                is_str(d.items[2].path, "volumes[1].size", "size missing");
                is_str(d.items[3].path, "volumes[1].name", "duplicate name");
                is_str(d.items[4].path, "volumes[1].target", "reserved target");
                is_str(d.items[5].path, "volumes[2].name", "name with a slash");
                is_str(d.items[6].path, "volumes[2].io.write", "bad rate");
        } else {
                diag_print(&d, "volumes", stdout);
        }
        diag_list_clear(&d);
}

/* network.ipv6: true, false, "address" (true) or "prefix" (a /64 of its own). */
static void test_ipv6(void)
{
        static const struct {
                const char *value;
                bool ipv6, prefix;
        } cases[] = {
            {"true", true, false},
            {"false", false, false},
            {"\"address\"", true, false},
            {"\"prefix\"", true, true},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                char text[200];
                snprintf(text, sizeof(text),
                         "{\"name\":\"a\",\"exec\":[\"/bin/true\"],\"network\":{\"mode\":"
                         "\"private\",\"ipv6\":%s}}",
                         cases[i].value);
                struct manifest *m = parse_ok(text, cases[i].value);
                ok(m && m->network.ipv6 == cases[i].ipv6 &&
                       m->network.ipv6_prefix == cases[i].prefix,
                   "network.ipv6 %s: ipv6 %d, a /64 %d", cases[i].value, cases[i].ipv6,
                   cases[i].prefix);
                manifest_free(m);
        }
}

int main(void)
{
        test_defaults();
        test_ipv6();
        test_limits();
        test_values();
        test_microvm();
        test_vm_with_sandbox();
        test_all_errors_reported();
        test_many_errors_capped();
        test_hostile_strings();
        test_volumes();
        return tap_done();
}
