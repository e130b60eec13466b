/* cgroup.c — creating, joining and removing tenant cgroups with libcgroup (see
 * cgroup.h). Hierarchies are told apart by mount point, so a hybrid host (cpu, memory,
 * pids on v1 with an empty v2 beside them, as on the build machine) and a pure v2 host
 * both work: on v2 every controller resolves to the same mount and one cgroup. */
#include "cgroup.h"

#include <libcgroup.h>
#include <linux/magic.h>
#include <stdio.h>
#include <sys/statfs.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strutil.h"

static const char *const controllers[] = {"cpu", "cpuacct", "memory", "pids"};
#define N_CONTROLLERS (sizeof(controllers) / sizeof(controllers[0]))

struct hierarchy {
        const char *controller;
        char *mount;  /* where the hierarchy is mounted */
        char *parent; /* OWN/tenantd */
        char *path;   /* OWN/tenantd/NAME */
        struct cgroup *cg;
};

struct tenant_cgroup {
        struct hierarchy h[N_CONTROLLERS];
        size_t n;
        char *description;
};

static int libcgroup_ready(struct tn_err **err)
{
        static int state; /* 0 unknown, 1 ready, <0 failed */
        if (state == 0) {
                int r = cgroup_init();
                state = r == 0 ? 1 : -r;
        }
        if (state < 0)
                return tn_err_setx(err, ENODEV, "cannot initialise libcgroup: %s",
                                   cgroup_strerror(-state));
        return 0;
}

/* Joins a cgroup path and a name without doubling "/" at the hierarchy root. */
static char *path_join(const char *a, const char *b)
{
        char *out = NULL;
        if (asprintf(&out, "%s/%s", strcmp(a, "/") == 0 ? "" : a, b) < 0)
                return NULL;
        return out;
}

static int make_group(const char *path, const char *controller, struct cgroup **ret,
                      struct tn_err **err)
{
        struct cgroup *cg = cgroup_new_cgroup(path);
        if (!cg || !cgroup_add_controller(cg, controller)) {
                if (cg)
                        cgroup_free(&cg);
                return tn_err_setx(err, ENOMEM, "cannot describe cgroup %s", path);
        }
        /* ignore_ownership=1: libcgroup would otherwise chown every control file to
         * the owner it was told (root, who owns them already): 150 calls a start. */
        int r = cgroup_create_cgroup(cg, 1);
        if (r != 0) {
                int e = cgroup_get_last_errno();
                cgroup_free(&cg);
                return tn_err_setx(err, e ? e : EIO, "cannot create %s cgroup %s: %s", controller,
                                   path, cgroup_strerror(r));
        }
        *ret = cg;
        return 0;
}

int tenant_cgroup_create(const char *name, struct tenant_cgroup **ret, struct tn_err **err)
{
        if (!is_simple_name(name))
                return tn_err_setx(err, EINVAL, "invalid tenant name \"%s\"", name);
        int r = libcgroup_ready(err);
        if (r < 0)
                return r;
        struct tenant_cgroup *tc = calloc(1, sizeof(*tc));
        if (!tc)
                return tn_err_setx(err, ENOMEM, "out of memory");
        _cleanup_(tenant_cgroup_freep) struct tenant_cgroup *guard = tc;

        for (size_t i = 0; i < N_CONTROLLERS; i++) {
                char *mount = NULL, *own = NULL;
                if (cgroup_get_subsys_mount_point(controllers[i], &mount) != 0) {
                        free(mount);
                        continue; /* controller not mounted on this host */
                }
                bool seen = false;
                for (size_t k = 0; k < tc->n; k++)
                        seen |= strcmp(tc->h[k].mount, mount) == 0;
                if (seen) {
                        free(mount);
                        continue;
                }
                if (cgroup_get_current_controller_path(getpid(), controllers[i], &own) != 0 ||
                    !own) {
                        free(mount);
                        free(own);
                        return tn_err_setx(err, ENOENT, "cannot find this process's %s cgroup",
                                           controllers[i]);
                }
                struct hierarchy *h = &tc->h[tc->n++];
                h->controller = controllers[i];
                h->mount = mount;
                h->parent = path_join(own, "tenantd");
                free(own);
                h->path = h->parent ? path_join(h->parent, name) : NULL;
                if (!h->path)
                        return tn_err_setx(err, ENOMEM, "out of memory");

                /* Another tenantctl may remove the shared parent when its own tenant
                 * ends, between our creating the parent and the child: retry. */
                for (int attempt = 0;; attempt++) {
                        struct cgroup *parent = NULL;
                        struct tn_err *e = NULL;
                        r = make_group(h->parent, h->controller, &parent, &e);
                        if (r >= 0) {
                                cgroup_free(&parent);
                                r = make_group(h->path, h->controller, &h->cg, &e);
                        }
                        if (r >= 0 || attempt == 5 || r != -ENOENT) {
                                if (r < 0) {
                                        if (err && !*err)
                                                *err = e;
                                        else
                                                tn_err_free(e);
                                        (void)tenant_cgroup_remove(tc, NULL);
                                        return r;
                                }
                                break;
                        }
                        tn_err_free(e);
                }
        }
        if (tc->n == 0)
                return tn_err_setx(err, ENODEV, "no cgroup hierarchy with cpu, memory or pids");
        /* A cgroup that already holds processes belongs to a tenant of this name that is
         * running: sharing it would mix their limits and accounting. */
        for (size_t i = 0; i < tc->n; i++) {
                char path[4096];
                snprintf(path, sizeof(path), "%s%s/cgroup.procs", tc->h[i].mount, tc->h[i].path);
                _cleanup_fclose_ FILE *f = fopen(path, "re");
                int c = f ? fgetc(f) : EOF;
                if (c != EOF) {
                        for (size_t k = 0; k < tc->n; k++)
                                cgroup_free(&tc->h[k].cg); /* not ours to remove */
                        return tn_err_setx(
                            err, EBUSY,
                            "a tenant named \"%s\" is already running (its cgroup %s "
                            "has processes)",
                            name, tc->h[i].path);
                }
        }
        *ret = TAKE_PTR(guard);
        return 0;
}

static bool is_cgroup2(const struct hierarchy *h)
{
        struct statfs st;
        return statfs(h->mount, &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC;
}

/* Adds "file = value" for the hierarchy's controller if the file exists there. */
static int add_value(struct hierarchy *h, const char *controller, const char *file,
                     const char *value, struct tn_err **err)
{
        char path[4096];
        snprintf(path, sizeof(path), "%s%s/%s", h->mount, h->path, file);
        if (access(path, F_OK) < 0)
                return 0; /* this host has no such knob */
        struct cgroup_controller *c = cgroup_get_controller(h->cg, controller);
        if (!c)
                c = cgroup_add_controller(h->cg, controller);
        if (!c || cgroup_add_value_string(c, file, value) != 0)
                return tn_err_setx(err, ENOMEM, "cannot set %s", file);
        return 0;
}

static void fmt_limit(char *buf, size_t len, uint64_t v, const char *unlimited)
{
        if (v == CGROUP_UNLIMITED)
                snprintf(buf, len, "%s", unlimited);
        else
                snprintf(buf, len, "%llu", (unsigned long long)v);
}

static int limits_v2(struct hierarchy *h, const struct tenant_limits *l, struct tn_err **err)
{
        char v[64];
        int r = 0;
        if (l->cpu_millicpus)
                snprintf(v, sizeof(v), "%u 100000", l->cpu_millicpus * 100U);
        else
                snprintf(v, sizeof(v), "max 100000");
        r = r ? r : add_value(h, "cpu", "cpu.max", v, err);
        snprintf(v, sizeof(v), "%u", l->cpu_weight);
        r = r ? r : add_value(h, "cpu", "cpu.weight", v, err);
        fmt_limit(v, sizeof(v), l->memory_max, "max");
        r = r ? r : add_value(h, "memory", "memory.max", v, err);
        fmt_limit(v, sizeof(v), l->memory_high, "max");
        r = r ? r : add_value(h, "memory", "memory.high", v, err);
        fmt_limit(v, sizeof(v), l->swap_max, "max");
        r = r ? r : add_value(h, "memory", "memory.swap.max", v, err);
        fmt_limit(v, sizeof(v), l->pids_max, "max");
        r = r ? r : add_value(h, "pids", "pids.max", v, err);
        return r;
}

static int limits_v1(struct hierarchy *h, const struct tenant_limits *l, struct tn_err **err)
{
        char v[64];
        int r = 0;
        if (strcmp(h->controller, "cpu") == 0) {
                r = add_value(h, "cpu", "cpu.cfs_period_us", "100000", err);
                if (l->cpu_millicpus)
                        snprintf(v, sizeof(v), "%u", l->cpu_millicpus * 100U);
                else
                        snprintf(v, sizeof(v), "-1");
                r = r ? r : add_value(h, "cpu", "cpu.cfs_quota_us", v, err);
                /* weight 100 is the v1 default of 1024 shares */
                uint64_t shares = (uint64_t)l->cpu_weight * 1024 / 100;
                snprintf(v, sizeof(v), "%llu", (unsigned long long)(shares < 2 ? 2 : shares));
                r = r ? r : add_value(h, "cpu", "cpu.shares", v, err);
        } else if (strcmp(h->controller, "memory") == 0) {
                /* limit before memsw: memsw may never be below the limit */
                fmt_limit(v, sizeof(v), l->memory_max, "-1");
                r = add_value(h, "memory", "memory.limit_in_bytes", v, err);
                uint64_t memsw =
                    l->memory_max == CGROUP_UNLIMITED || l->swap_max == CGROUP_UNLIMITED
                        ? CGROUP_UNLIMITED
                        : l->memory_max + l->swap_max;
                fmt_limit(v, sizeof(v), memsw, "-1");
                r = r ? r : add_value(h, "memory", "memory.memsw.limit_in_bytes", v, err);
                fmt_limit(v, sizeof(v), l->memory_high, "-1");
                r = r ? r : add_value(h, "memory", "memory.soft_limit_in_bytes", v, err);
        } else if (strcmp(h->controller, "pids") == 0) {
                fmt_limit(v, sizeof(v), l->pids_max, "max");
                r = add_value(h, "pids", "pids.max", v, err);
        }
        return r;
}

int tenant_cgroup_set_limits(struct tenant_cgroup *tc, const struct tenant_limits *l,
                             struct tn_err **err)
{
        for (size_t i = 0; i < tc->n; i++) {
                struct hierarchy *h = &tc->h[i];
                int r = is_cgroup2(h) ? limits_v2(h, l, err) : limits_v1(h, l, err);
                if (r < 0)
                        return r;
                r = cgroup_modify_cgroup(h->cg);
                if (r != 0) {
                        int e = cgroup_get_last_errno();
                        return tn_err_setx(err, e ? e : EIO, "cannot set the limits of %s: %s",
                                           h->path, cgroup_strerror(r));
                }
        }
        return 0;
}

int tenant_cgroup_attach(struct tenant_cgroup *tc, pid_t pid, struct tn_err **err)
{
        for (size_t i = 0; i < tc->n; i++) {
                int r = cgroup_attach_task_pid(tc->h[i].cg, pid);
                if (r != 0) {
                        int e = cgroup_get_last_errno();
                        return tn_err_setx(err, e ? e : EIO, "cannot move %d into %s cgroup %s: %s",
                                           (int)pid, tc->h[i].controller, tc->h[i].path,
                                           cgroup_strerror(r));
                }
        }
        return 0;
}

int tenant_cgroup_remove(struct tenant_cgroup *tc, struct tn_err **err)
{
        int ret = 0;
        for (size_t i = 0; i < tc->n; i++) {
                if (!tc->h[i].cg)
                        continue;
                int r = cgroup_delete_cgroup_ext(tc->h[i].cg, CGFLAG_DELETE_EMPTY_ONLY);
                if (r != 0 && ret == 0) {
                        int e = cgroup_get_last_errno();
                        ret = tn_err_setx(err, e ? e : EBUSY, "cannot remove %s cgroup %s: %s",
                                          tc->h[i].controller, tc->h[i].path, cgroup_strerror(r));
                        continue;
                }
                /* The shared OWN/tenantd parent goes too once no tenant is left in it;
                 * while another tenant is, this fails and that is fine. */
                struct cgroup *parent = cgroup_new_cgroup(tc->h[i].parent);
                if (parent && cgroup_add_controller(parent, tc->h[i].controller))
                        (void)cgroup_delete_cgroup_ext(parent, CGFLAG_DELETE_EMPTY_ONLY);
                if (parent)
                        cgroup_free(&parent);
        }
        return ret;
}

const char *tenant_cgroup_describe(struct tenant_cgroup *tc)
{
        free(tc->description);
        tc->description = NULL;
        size_t len = 0;
        for (size_t i = 0; i < tc->n; i++)
                len += strlen(tc->h[i].controller) + strlen(tc->h[i].path) + 2;
        tc->description = calloc(1, len + 1);
        if (!tc->description)
                return "";
        for (size_t i = 0; i < tc->n; i++)
                sprintf(tc->description + strlen(tc->description), "%s%s:%s", i ? " " : "",
                        tc->h[i].controller, tc->h[i].path);
        return tc->description;
}

void tenant_cgroup_free(struct tenant_cgroup *tc)
{
        if (!tc)
                return;
        for (size_t i = 0; i < tc->n; i++) {
                if (tc->h[i].cg)
                        cgroup_free(&tc->h[i].cg);
                free(tc->h[i].mount);
                free(tc->h[i].parent);
                free(tc->h[i].path);
        }
        free(tc->description);
        free(tc);
}

int cgroup_attach_like(pid_t pid, pid_t ref, struct tn_err **err)
{
        int r = libcgroup_ready(err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < N_CONTROLLERS; i++) {
                char *mount = NULL, *path = NULL;
                if (cgroup_get_subsys_mount_point(controllers[i], &mount) != 0) {
                        free(mount);
                        continue;
                }
                free(mount);
                if (cgroup_get_current_controller_path(ref, controllers[i], &path) != 0 || !path) {
                        free(path);
                        return tn_err_setx(err, ESRCH, "cannot find the %s cgroup of %d",
                                           controllers[i], (int)ref);
                }
                const char *one[] = {controllers[i], NULL};
                r = cgroup_change_cgroup_path(path, pid, one);
                if (r != 0) {
                        int e = cgroup_get_last_errno();
                        tn_err_setx(err, e ? e : EIO, "cannot move %d into %s cgroup %s: %s",
                                    (int)pid, controllers[i], path, cgroup_strerror(r));
                        free(path);
                        return -(e ? e : EIO);
                }
                free(path);
        }
        return 0;
}
