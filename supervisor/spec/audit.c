/* audit.c — findings about a tenant's exposure (audit.h). Each check below is one
 * finding of docs/audit.md, with its weight; keep the two in step. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "spec/audit.h"
#include "spec/caps.h"
#include "spec/launch.h"
#include "spec/policy.h"

#define LINE_MAX_ 512 /* a finding's what or fix */
#define NAMES_SHOWN 8 /* calls, mounts or ports named in one line; "and N more" after */

struct builder {
        struct audit_report *r;
        size_t cap;
        bool oom;
};

static void add(struct builder *b, const char *id, unsigned weight, const char *fix,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void add(struct builder *b, const char *id, unsigned weight, const char *fix,
                const char *fmt, ...)
{
        if (b->oom)
                return;
        if (b->r->n == b->cap) {
                size_t ncap = b->cap ? b->cap * 2 : 16;
                struct audit_finding *n = reallocarray(b->r->items, ncap, sizeof(*n));
                if (!n) {
                        b->oom = true;
                        return;
                }
                b->r->items = n;
                b->cap = ncap;
        }
        char what[LINE_MAX_];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        struct audit_finding *x = &b->r->items[b->r->n];
        *x = (struct audit_finding){.weight = weight, .what = strdup(what), .fix = strdup(fix)};
        snprintf(x->id, sizeof(x->id), "%s", id);
        b->r->n++;
        if (!x->what || !x->fix)
                b->oom = true;
}

/* "a, b, c and 4 more" of the names[i] picked by `pick`, into buf. */
struct list {
        char buf[LINE_MAX_ / 2];
        size_t len, shown, total;
};

static void list_add(struct list *l, const char *name)
{
        l->total++;
        if (l->shown >= NAMES_SHOWN || l->len >= sizeof(l->buf))
                return;
        l->len += (size_t)snprintf(l->buf + l->len, sizeof(l->buf) - l->len, "%s%s",
                                   l->shown ? ", " : "", name);
        if (l->len > sizeof(l->buf))
                l->len = sizeof(l->buf);
        l->shown++;
}

static const char *list_text(struct list *l)
{
        if (l->total > l->shown && l->len < sizeof(l->buf))
                snprintf(l->buf + l->len, sizeof(l->buf) - l->len, " and %zu more",
                         l->total - l->shown);
        return l->buf;
}

static unsigned capped(size_t n, unsigned each, unsigned max)
{
        return n * each > max ? max : (unsigned)(n * each);
}

static void check_identity(struct builder *b, const struct manifest *m, const struct audit_facts *f)
{
        if (m->isolation == ISOLATION_SANDBOX && m->uid == 0)
                add(b, "uid-0", 15,
                    "set \"user\" to a uid other than 0, or run it as \"isolation\": \"microvm\"",
                    "the service runs as uid 0 in a sandbox: a kernel bug reachable from its user "
                    "namespace gives it the most");
        if (f->caps_n) {
                struct list l = {0};
                for (size_t i = 0; i < f->caps_n; i++) {
                        char name[48];
                        list_add(&l, caps_to_name(f->caps[i], name, sizeof(name)));
                }
                add(b, "capabilities", capped(f->caps_n, 5, 20),
                    "drop them from \"policy.capabilities\" (a port below 1024: publish a high "
                    "port instead)",
                    "capabilities granted: %s", list_text(&l));
        }
}

static void check_seccomp(struct builder *b, const struct manifest *m, const struct audit_facts *f)
{
        if (!f->profile || !f->reference) {
                add(b, "seccomp-unknown", 10,
                    "install the profile, or name one that `tenantctl policy list` shows",
                    "the seccomp profile \"%s\" (or \"default\") could not be loaded to be "
                    "compared",
                    m->policy.seccomp);
                return;
        }
        struct policy_widening *w = NULL;
        size_t n = 0;
        if (policy_widenings(f->profile, f->reference, &w, &n, NULL) < 0) {
                b->oom = true;
                return;
        }
        bool permissive = !policy_action_blocks(&f->profile->default_action);
        struct list named = {0}, unnamed = {0};
        for (size_t i = 0; i < n; i++)
                list_add(w[i].why ? &named : &unnamed, w[i].syscall);
        size_t families = 0;
        for (size_t i = 0; i < n; i++) {
                bool seen = false;
                for (size_t j = 0; j < i && w[i].why && !seen; j++)
                        seen = w[j].why && strcmp(w[j].why, w[i].why) == 0;
                families += w[i].why && !seen;
        }
        if (permissive)
                add(b, "seccomp-permissive", 20,
                    "use \"default\", or a profile of your own that lists what the service "
                    "needs (docs/policies.md)",
                    "the seccomp profile \"%s\" lets every call it does not name run (%zu that "
                    "\"default\" refuses)",
                    m->policy.seccomp, unnamed.total);
        else if (unnamed.total)
                add(b, "seccomp-wider", 5,
                    "remove them from the profile unless the service needs them",
                    "the seccomp profile \"%s\" allows calls \"default\" does not: %s",
                    m->policy.seccomp, list_text(&unnamed));
        if (named.total)
                add(b, "seccomp-dangerous", capped(families, 5, 20),
                    "remove them from the profile; docs/policies.md says why each is refused",
                    "the seccomp profile \"%s\" allows calls \"default\" refuses as dangerous: %s",
                    m->policy.seccomp, list_text(&named));
        policy_widenings_free(w, n);
}

static void check_files(struct builder *b, const struct manifest *m)
{
        struct list rw = {0};
        for (size_t i = 0; i < m->mounts_n; i++)
                if (m->mounts[i].type == MOUNT_BIND && !m->mounts[i].readonly)
                        list_add(&rw, m->mounts[i].source);
        if (rw.total)
                add(b, "host-rw-mount", capped(rw.total, 10, 20),
                    "mount it read-only, or give the tenant a volume with a size "
                    "(\"volumes\")",
                    "host directories writable by the tenant, with no size limit: %s",
                    list_text(&rw));
        if (m->root.kind == ROOT_PATH && !m->root.readonly)
                add(b, "root-writable", 8,
                    "set \"root.readonly\": true and put what the service writes on a volume",
                    "the root image %s is writable by the tenant, with no size limit",
                    m->root.path);
        struct list clear = {0};
        for (size_t i = 0; i < m->volumes_n; i++)
                if (!m->volumes[i].encrypt)
                        list_add(&clear, m->volumes[i].name);
        if (clear.total)
                add(b, "volume-clear", capped(clear.total, 8, 16),
                    "remove \"encrypt\": false (new volumes only: copy the data over)",
                    "volumes stored in clear on the host's disk: %s", list_text(&clear));
}

static void check_limits(struct builder *b, const struct manifest *m)
{
        if (m->memory.max == MANIFEST_UNLIMITED)
                add(b, "no-memory-limit", 10, "set \"memory.max\"",
                    "no memory limit: the tenant can take the host's memory");
        if (m->pids.max == MANIFEST_UNLIMITED)
                add(b, "no-pids-limit", 8, "set \"pids.max\"",
                    "no limit on processes: a fork bomb reaches the host's limits");
        if (m->cpu.max_millicpus == 0)
                add(b, "no-cpu-limit", 3, "set \"cpu.max\"",
                    "no CPU limit: the tenant can take every CPU (its weight still applies)");
        if (m->restart.on == RESTART_ALWAYS && m->health.kind == HEALTH_NONE)
                add(b, "restart-unchecked", 3, "add a \"health\" check",
                    "restarted always, but nothing checks that it works: a hung service runs "
                    "on unseen");
        if (!m->logs.syslog)
                add(b, "logs-local", 2, "set \"logs.syslog\": true and forward syslog off the host",
                    "the service's output stays on this host: a break-in can erase its traces");
}

static void check_network(struct builder *b, const struct manifest *m)
{
        if (m->network.mode != NET_PRIVATE)
                return;
        struct list all = {0};
        for (size_t i = 0; i < m->network.publish_n; i++) {
                const struct publish_spec *p = &m->network.publish[i];
                char port[16];
                snprintf(port, sizeof(port), "%u/%s", p->host_port,
                         p->proto == PROTO_UDP ? "udp" : "tcp");
                if (!p->bind_family)
                        list_add(&all, port);
        }
        if (all.total)
                add(b, "publish-all", 3,
                    "give each published port an \"address\" (127.0.0.1 when only this host "
                    "uses it)",
                    "ports published on every address of the host: %s", list_text(&all));
        if (m->network.public_ipv4)
                add(b, "public-address", 3,
                    "keep it only if the tenant must be reached on every port; publish the "
                    "ports it serves otherwise",
                    "network.public_ipv4: every port the tenant listens on answers on a "
                    "public address");
        if (!m->network.deny_lan)
                add(b, "lan-open", 10, "remove \"deny_lan\": false",
                    "the tenant reaches the host's local networks (routers, printers, NAS)");
        if (m->network.allow_host)
                add(b, "host-open", 10, "remove \"allow_host\": true; publish what it needs",
                    "the tenant reaches every service of the host itself");
        if (m->network.limits.smtp)
                add(b, "smtp-open", 8, "remove \"smtp\": true and relay mail through a host MTA",
                    "the tenant sends mail directly (ports 25, 465, 587): spam gets the host's "
                    "addresses blocked");
        struct list unshaped = {0};
        if (!m->network.egress_rate)
                list_add(&unshaped, "egress");
        if (!m->network.ingress_rate)
                list_add(&unshaped, "ingress");
        if (unshaped.total)
                add(b, "no-rate-limit", 4,
                    "set \"network.egress.rate\" and \"network.ingress.rate\"",
                    "no bandwidth limit (%s): the tenant can fill the host's link",
                    list_text(&unshaped));
        struct list lifted = {0};
        if (!m->network.limits.conns)
                list_add(&lifted, "conns");
        if (!m->network.limits.new_conns)
                list_add(&lifted, "new_conns");
        if (!m->network.limits.pps)
                list_add(&lifted, "pps");
        if (lifted.total)
                add(b, "no-abuse-limits", 6, "remove the \"max\" from \"network.limits\"",
                    "abuse limits lifted (%s): the tenant can fill the host's connection table "
                    "or flood",
                    list_text(&lifted));
}

static void check_vm(struct builder *b, const struct manifest *m, const struct audit_facts *f)
{
        if (m->isolation == ISOLATION_MICROVM && f->qemu_sandbox == 0)
                add(b, "qemu-no-sandbox", 10,
                    "set seccomp_sandbox = 1 in /etc/libvirt/qemu.conf and restart the tenant",
                    "QEMU runs without its seccomp sandbox (-sandbox): a guest that breaks QEMU "
                    "has all of its calls");
}

int audit_manifest(const struct manifest *m, const struct audit_facts *f, struct audit_report *r)
{
        *r = (struct audit_report){0};
        struct builder b = {.r = r};
        check_identity(&b, m, f);
        check_seccomp(&b, m, f);
        check_files(&b, m);
        check_limits(&b, m);
        check_network(&b, m);
        check_vm(&b, m, f);
        if (b.oom) {
                audit_report_clear(r);
                return -ENOMEM;
        }
        /* heaviest first; equal weights keep the order above (insertion sort is stable) */
        for (size_t i = 1; i < r->n; i++) {
                struct audit_finding x = r->items[i];
                size_t j = i;
                for (; j > 0 && r->items[j - 1].weight < x.weight; j--)
                        r->items[j] = r->items[j - 1];
                r->items[j] = x;
        }
        unsigned score = 0;
        for (size_t i = 0; i < r->n; i++)
                score += r->items[i].weight;
        r->score = score > AUDIT_SCORE_MAX ? AUDIT_SCORE_MAX : score;
        return 0;
}

void audit_report_clear(struct audit_report *r)
{
        for (size_t i = 0; i < r->n; i++) {
                free(r->items[i].what);
                free(r->items[i].fix);
        }
        free(r->items);
        *r = (struct audit_report){0};
}

void audit_report_json(const struct audit_report *r, struct json_gen *g)
{
        json_gen_key(g, "score");
        json_gen_int(g, r->score);
        json_gen_key(g, "findings");
        json_gen_array_open(g);
        for (size_t i = 0; i < r->n; i++) {
                json_gen_object_open(g);
                json_gen_key(g, "id");
                json_gen_string(g, r->items[i].id);
                json_gen_key(g, "weight");
                json_gen_int(g, r->items[i].weight);
                json_gen_key(g, "what");
                json_gen_string(g, r->items[i].what);
                json_gen_key(g, "fix");
                json_gen_string(g, r->items[i].fix);
                json_gen_object_close(g);
        }
        json_gen_array_close(g);
}

int audit_facts_load(const struct manifest *m, struct audit_facts_owned *o)
{
        *o = (struct audit_facts_owned){.f.qemu_sandbox = -1};
        (void)policy_load(m->policy.seccomp, &o->profile_, NULL);
        (void)policy_load("default", &o->reference_, NULL);
        size_t n = 0;
        int r = launch_resolve_caps(m, &o->caps_, &n, NULL);
        if (r == -ENOMEM) {
                audit_facts_clear(o);
                return r;
        }
        o->f.profile = o->profile_;
        o->f.reference = o->reference_;
        o->f.caps = o->caps_;
        o->f.caps_n = r < 0 ? 0 : n;
        return 0;
}

void audit_facts_clear(struct audit_facts_owned *o)
{
        policy_free(o->profile_);
        policy_free(o->reference_);
        free(o->caps_);
        *o = (struct audit_facts_owned){.f.qemu_sandbox = -1};
}
