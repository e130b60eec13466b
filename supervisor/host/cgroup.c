/* cgroup.c — creating, joining and removing tenant cgroups with libcgroup (see
 * cgroup.h). Hierarchies are told apart by mount point, so a hybrid host (cpu, memory,
 * pids on v1 with an empty v2 beside them, as on the build machine) and a pure v2 host
 * both work: on v2 every controller resolves to the same mount and one cgroup. */
#include "host/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <libcgroup.h>
#include <limits.h>
#include <linux/sched.h>
#include <signal.h>
#include <linux/magic.h>
#include <stdio.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/fileio.h"
#include "lib/strutil.h"

/* blkio (v1) and io (v2): a volume's IO limits on its loop device (tenant_cgroup_set_io). */
static const char *const controllers[] = {"cpu", "cpuacct", "memory", "pids", "blkio", "io"};
#define N_CONTROLLERS (sizeof(controllers) / sizeof(controllers[0]))

struct hierarchy {
        const char *controller;
        char *mount;  /* where the hierarchy is mounted */
        char *parent; /* OWN/tenantd */
        char *path;   /* OWN/tenantd/NAME */
        struct cgroup *cg;
        struct cgroup *set; /* while tenant_cgroup_set_limits() runs */
};

/* The control files tenant_cgroup_sample() reads, opened once and re-read with
 * pread(): cgroup files are regenerated on every read from offset 0. */
enum sample_file {
        SF_CPU_STAT,     /* v1 cpu: nr_periods nr_throttled throttled_time; v2: + usage_usec */
        SF_CPU_USAGE,    /* v1 cpuacct.usage */
        SF_MEM_CURRENT,  /* v1 memory.usage_in_bytes, v2 memory.current */
        SF_MEM_MAX,      /* v1 memory.limit_in_bytes, v2 memory.max */
        SF_MEM_OOM,      /* v1 memory.oom_control, v2 memory.events: oom_kill */
        SF_PIDS_CURRENT, /* pids.current */
        SF_PIDS_MAX,     /* pids.max */
        SF_PIDS_EVENTS,  /* pids.events: max */
        SF__N,
};

struct tenant_cgroup {
        struct hierarchy h[N_CONTROLLERS];
        size_t n;
        char *description;
        bool sample_open;
        bool v2;
        int sfd[SF__N];
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

static bool mount_is_cgroup2(const char *mount)
{
        struct statfs st;
        return statfs(mount, &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC;
}

/* OWN/tenantd and OWN/tenantd/NAME through libcgroup, which on cgroup v2 also enables
 * the controllers in each parent's cgroup.subtree_control on the way. */
static int make_groups(struct hierarchy *h, struct tn_err **err)
{
        struct cgroup *parent = NULL;
        int r = make_group(h->parent, h->controller, &parent, err);
        if (r < 0)
                return r;
        cgroup_free(&parent);
        return make_group(h->path, h->controller, &h->cg, err);
}

/* The same on a cgroup v1 hierarchy, where a cgroup is only a directory: two mkdir()
 * calls. libcgroup's create makes every component of the path from the root of the
 * file system (62 mkdir calls a start on the build machine's five hierarchies, 52 of
 * them EEXIST: ~1 ms); the handle for limits and removal is libcgroup's as before. */
static int make_groups_v1(struct hierarchy *h, struct tn_err **err)
{
        const char *paths[] = {h->parent, h->path};
        for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
                char dir[4096];
                snprintf(dir, sizeof(dir), "%s%s", h->mount, paths[i]);
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return tn_err_set(err, errno, "cannot create %s cgroup %s", h->controller,
                                          paths[i]);
        }
        h->cg = cgroup_new_cgroup(h->path);
        if (!h->cg || !cgroup_add_controller(h->cg, h->controller)) {
                if (h->cg)
                        cgroup_free(&h->cg);
                return tn_err_setx(err, ENOMEM, "cannot describe cgroup %s", h->path);
        }
        return 0;
}

static struct tenant_cgroup *tenant_cgroup_alloc(void)
{
        struct tenant_cgroup *tc = calloc(1, sizeof(*tc));
        if (!tc)
                return NULL;
        for (size_t i = 0; i < SF__N; i++)
                tc->sfd[i] = -1;
        return tc;
}

/* OWN, the cgroup tenantd's cgroups go under: the process's own cgroup in the
 * hierarchy, or on cgroup v2 the parent of "supervisor" once tenant_cgroup_prepare()
 * moved the process there. */
static char *own_cgroup(const char *controller, const char *mount)
{
        char *own = NULL;
        if (cgroup_get_current_controller_path(getpid(), controller, &own) != 0 || !own) {
                free(own);
                return NULL;
        }
        size_t len = strlen(own);
        if (mount_is_cgroup2(mount) && len >= 11 && strcmp(own + len - 11, "/supervisor") == 0)
                own[len - 11 == 0 ? 1 : len - 11] = '\0';
        return own;
}

/* Fills tc->h[] with one entry per distinct hierarchy holding a controller tenantd
 * uses: its mount point, OWN/tenantd and OWN/tenantd/NAME. */
static int discover(const char *name, struct tenant_cgroup *tc, struct tn_err **err)
{
        for (size_t i = 0; i < N_CONTROLLERS; i++) {
                char *mount = NULL;
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
                char *own = own_cgroup(controllers[i], mount);
                if (!own) {
                        free(mount);
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
                tc->v2 |= mount_is_cgroup2(mount);
        }
        if (tc->n == 0)
                return tn_err_setx(err, ENODEV, "no cgroup hierarchy with cpu, memory or pids");
        return 0;
}

/* A tenant's hierarchies found (discover), nothing opened or created yet. */
static int discovered(const char *name, struct tenant_cgroup **ret, struct tn_err **err)
{
        int r = libcgroup_ready(err);
        if (r < 0)
                return r;
        _cleanup_(tenant_cgroup_freep) struct tenant_cgroup *tc = tenant_cgroup_alloc();
        if (!tc)
                return tn_err_setx(err, ENOMEM, "out of memory");
        r = discover(name, tc, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(tc);
        return 0;
}

int tenant_cgroup_open(const char *name, struct tenant_cgroup **ret, struct tn_err **err)
{
        if (!is_simple_name(name))
                return tn_err_setx(err, EINVAL, "invalid tenant name \"%s\"", name);
        _cleanup_(tenant_cgroup_freep) struct tenant_cgroup *tc = NULL;
        int r = discovered(name, &tc, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < tc->n; i++) {
                struct hierarchy *h = &tc->h[i];
                char path[4096];
                struct stat st;
                snprintf(path, sizeof(path), "%s%s", h->mount, h->path);
                if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
                        return tn_err_setx(err, ENOENT, "tenant \"%s\" has no %s cgroup (%s)", name,
                                           h->controller, path);
                /* A handle for set_limits, attach and remove; nothing is created. */
                h->cg = cgroup_new_cgroup(h->path);
                if (!h->cg || !cgroup_add_controller(h->cg, h->controller))
                        return tn_err_setx(err, ENOMEM, "cannot describe cgroup %s", h->path);
        }
        *ret = TAKE_PTR(tc);
        return 0;
}

int tenant_cgroup_create(const char *name, struct tenant_cgroup **ret, struct tn_err **err)
{
        if (!is_simple_name(name))
                return tn_err_setx(err, EINVAL, "invalid tenant name \"%s\"", name);
        int r = libcgroup_ready(err);
        if (r < 0)
                return r;
        struct tenant_cgroup *tc = tenant_cgroup_alloc();
        if (!tc)
                return tn_err_setx(err, ENOMEM, "out of memory");
        _cleanup_(tenant_cgroup_freep) struct tenant_cgroup *guard = tc;
        r = discover(name, tc, err);
        if (r < 0)
                return r;

        for (size_t i = 0; i < tc->n; i++) {
                struct hierarchy *h = &tc->h[i];
                /* Another tenantctl may remove the shared parent when its own tenant
                 * ends, between our creating the parent and the child: retry. */
                for (int attempt = 0;; attempt++) {
                        struct tn_err *e = NULL;
                        r = mount_is_cgroup2(h->mount) ? make_groups(h, &e) : make_groups_v1(h, &e);
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
        return mount_is_cgroup2(h->mount);
}

/* Adds "file = value" for the hierarchy's controller if the file exists there. */
/* The values go into `h->set`, a description built afresh for each call, so a live
 * change writes exactly the knobs given, in the order given. */
static int add_value(struct hierarchy *h, const char *controller, const char *file,
                     const char *value, struct tn_err **err)
{
        char path[4096];
        snprintf(path, sizeof(path), "%s%s/%s", h->mount, h->path, file);
        if (access(path, F_OK) < 0)
                return 0; /* this host has no such knob */
        struct cgroup_controller *c = cgroup_get_controller(h->set, controller);
        if (!c)
                c = cgroup_add_controller(h->set, controller);
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
                /* memsw may never be below the limit: lowering goes limit first, raising
                 * (a live change) memsw first. */
                char lim[64], sw[64];
                fmt_limit(lim, sizeof(lim), l->memory_max, "-1");
                uint64_t memsw =
                    l->memory_max == CGROUP_UNLIMITED || l->swap_max == CGROUP_UNLIMITED
                        ? CGROUP_UNLIMITED
                        : l->memory_max + l->swap_max;
                fmt_limit(sw, sizeof(sw), memsw, "-1");
                char path[4096], cur[64] = "";
                snprintf(path, sizeof(path), "%s%s/memory.limit_in_bytes", h->mount, h->path);
                FILE *f = fopen(path, "re");
                if (f) {
                        if (!fgets(cur, sizeof(cur), f))
                                cur[0] = '\0';
                        fclose(f);
                }
                bool raising = l->memory_max == CGROUP_UNLIMITED ||
                               (cur[0] && strtoull(cur, NULL, 10) < l->memory_max);
                if (raising) {
                        r = add_value(h, "memory", "memory.memsw.limit_in_bytes", sw, err);
                        r = r ? r : add_value(h, "memory", "memory.limit_in_bytes", lim, err);
                } else {
                        r = add_value(h, "memory", "memory.limit_in_bytes", lim, err);
                        r = r ? r : add_value(h, "memory", "memory.memsw.limit_in_bytes", sw, err);
                }
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
                h->set = cgroup_new_cgroup(h->path);
                if (!h->set)
                        return tn_err_setx(err, ENOMEM, "out of memory");
                int r = is_cgroup2(h) ? limits_v2(h, l, err) : limits_v1(h, l, err);
                if (r >= 0 && cgroup_get_controller(h->set, h->controller)) {
                        r = cgroup_modify_cgroup(h->set);
                        if (r != 0) {
                                int e = cgroup_get_last_errno();
                                r = tn_err_setx(err, e ? e : EIO, "cannot set the limits of %s: %s",
                                                h->path, cgroup_strerror(r));
                        }
                }
                cgroup_free(&h->set);
                if (r < 0)
                        return r;
        }
        return 0;
}

bool tenant_cgroup_has_pids(const struct tenant_cgroup *tc)
{
        for (size_t i = 0; i < tc->n; i++) {
                const struct hierarchy *h = &tc->h[i];
                if (!is_cgroup2(h) && strcmp(h->controller, "pids") != 0)
                        continue;
                char path[4096];
                snprintf(path, sizeof(path), "%s%s/pids.max", h->mount, h->path);
                if (access(path, F_OK) == 0)
                        return true;
        }
        return false;
}

/* Writes one line into a control file of the hierarchy (the io files take one device
 * per write, which libcgroup's value list cannot say twice). */
static int write_knob(const struct hierarchy *h, const char *file, const char *line,
                      struct tn_err **err)
{
        char path[4096];
        snprintf(path, sizeof(path), "%s%s/%s", h->mount, h->path, file);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return tn_err_set(err, errno, "cannot open %s", path);
        size_t len = strlen(line);
        if (write(fd, line, len) != (ssize_t)len)
                return tn_err_set(err, errno, "cannot write \"%s\" to %s", line, path);
        return 0;
}

int tenant_cgroup_set_io(struct tenant_cgroup *tc, const struct tenant_io_limit *l,
                         struct tn_err **err)
{
        for (size_t i = 0; i < tc->n; i++) {
                const struct hierarchy *h = &tc->h[i];
                char v[160], a[32], b[32], c[32], d[32];
                if (is_cgroup2(h)) {
                        char path[4096];
                        snprintf(path, sizeof(path), "%s%s/io.max", h->mount, h->path);
                        if (access(path, F_OK) < 0)
                                continue;
                        fmt_limit(a, sizeof(a), l->rbps ? l->rbps : CGROUP_UNLIMITED, "max");
                        fmt_limit(b, sizeof(b), l->wbps ? l->wbps : CGROUP_UNLIMITED, "max");
                        fmt_limit(c, sizeof(c), l->iops ? l->iops : CGROUP_UNLIMITED, "max");
                        snprintf(v, sizeof(v), "%u:%u rbps=%s wbps=%s riops=%s wiops=%s", l->major,
                                 l->minor, a, b, c, c);
                        return write_knob(h, "io.max", v, err);
                }
                if (strcmp(h->controller, "blkio") != 0)
                        continue;
                /* v1: 0 removes the device's rule */
                static const char *const files[] = {
                    "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
                    "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"};
                const uint64_t vals[] = {l->rbps, l->wbps, l->iops, l->iops};
                for (size_t k = 0; k < ARRAY_SIZE(files); k++) {
                        snprintf(d, sizeof(d), "%llu", (unsigned long long)vals[k]);
                        snprintf(v, sizeof(v), "%u:%u %s", l->major, l->minor, d);
                        int r = write_knob(h, files[k], v, err);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        if (l->rbps || l->wbps || l->iops)
                return tn_err_setx(err, ENODEV,
                                   "no blkio (cgroup v1) or io (cgroup v2) controller: IO limits "
                                   "cannot be applied");
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

int tenant_cgroup_v2_fd(const struct tenant_cgroup *tc)
{
        for (size_t i = 0; i < tc->n; i++) {
                const struct hierarchy *h = &tc->h[i];
                if (!is_cgroup2(h))
                        continue;
                char path[4096];
                snprintf(path, sizeof(path), "%s%s", h->mount, h->path);
                return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        }
        return -1;
}

pid_t cgroup_clone_into(uint64_t flags, int cgroup_fd, int *pidfd, bool *placed)
{
        *placed = false;
        if (cgroup_fd >= 0) {
                struct clone_args args = {.flags = flags | CLONE_INTO_CGROUP,
                                          .pidfd = (uint64_t)(uintptr_t)pidfd,
                                          .exit_signal = SIGCHLD,
                                          .cgroup = (uint64_t)cgroup_fd};
                pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
                if (pid >= 0) {
                        *placed = true;
                        return pid;
                }
                if (errno != ENOSYS && errno != E2BIG)
                        return pid;
        }
        return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, pidfd, NULL, 0);
}

int tenant_cgroup_join_self(const struct tenant_cgroup *tc, bool in_v2, struct tn_err **err)
{
        for (size_t i = 0; i < tc->n; i++) {
                const struct hierarchy *h = &tc->h[i];
                if (in_v2 && is_cgroup2(h))
                        continue;
                char path[4096];
                /* v1 "tasks" moves one thread, and "0" is the writer: no global lock.
                 * v2 moves the whole process (the same, for a single thread), with it. */
                snprintf(path, sizeof(path), "%s%s/%s", h->mount, h->path,
                         is_cgroup2(h) ? "cgroup.procs" : "tasks");
                _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0 || write(fd, "0", 1) != 1)
                        return tn_err_set(err, errno, "cannot join %s cgroup %s", h->controller,
                                          h->path);
        }
        return 0;
}

int tenant_cgroup_attach_process(struct tenant_cgroup *tc, pid_t pid, struct tn_err **err)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        /* libcgroup writes to "tasks" (v1): one thread at a time. Two passes, for a
         * thread that an unmoved one started during the first; a thread that ended
         * meanwhile is no error. */
        for (int pass = 0; pass < 2; pass++) {
                DIR *d = opendir(path);
                if (!d)
                        return tn_err_set(err, errno, "cannot list the threads of %d", (int)pid);
                struct dirent *de;
                int r = 0;
                while (r >= 0 && (de = readdir(d))) {
                        long tid = strtol(de->d_name, NULL, 10);
                        if (tid <= 0 || tid > INT_MAX)
                                continue;
                        char self[64];
                        snprintf(self, sizeof(self), "/proc/%d/task/%ld", (int)pid, tid);
                        r = tenant_cgroup_attach(tc, (pid_t)tid, err);
                        if (r < 0 && access(self, F_OK) < 0) {
                                tn_err_free(err ? TAKE_PTR(*err) : NULL);
                                r = 0;
                        }
                }
                closedir(d);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Sends sig to every process listed in the cgroup directory `dir`. */
static void kill_procs(const char *dir, int sig)
{
        char path[4200];
        snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
        FILE *f = fopen(path, "re");
        if (!f)
                return;
        long pid;
        while (fscanf(f, "%ld", &pid) == 1)
                if (pid > 1 && pid <= INT_MAX)
                        (void)kill((pid_t)pid, sig);
        fclose(f);
}

int tenant_cgroup_kill_remove(const char *name, int sig)
{
        _cleanup_(tenant_cgroup_freep) struct tenant_cgroup *tc = NULL;
        if (!is_simple_name(name))
                return -EINVAL;
        int r = discovered(name, &tc, NULL);
        if (r < 0)
                return r;
        int busy = 0;
        for (size_t i = 0; i < tc->n; i++) {
                char dir[4096];
                snprintf(dir, sizeof(dir), "%s%s", tc->h[i].mount, tc->h[i].path);
                if (access(dir, F_OK) < 0)
                        continue; /* gone already, or never made */
                if (sig)
                        kill_procs(dir, sig);
                if (rmdir(dir) < 0 && errno != ENOENT)
                        busy++;
        }
        return busy ? -EBUSY : 0;
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

/* ---- sampling ---- */

static int open_sample_file(const struct hierarchy *h, const char *file)
{
        char path[4096];
        snprintf(path, sizeof(path), "%s%s/%s", h->mount, h->path, file);
        return open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

static void open_sample_files(struct tenant_cgroup *tc)
{
        for (size_t i = 0; i < tc->n; i++) {
                const struct hierarchy *h = &tc->h[i];
                const char *c = h->controller;
                int *f = tc->sfd;
                if (is_cgroup2(h)) {
                        f[SF_CPU_STAT] = open_sample_file(h, "cpu.stat");
                        f[SF_MEM_CURRENT] = open_sample_file(h, "memory.current");
                        f[SF_MEM_MAX] = open_sample_file(h, "memory.max");
                        f[SF_MEM_OOM] = open_sample_file(h, "memory.events");
                        f[SF_PIDS_CURRENT] = open_sample_file(h, "pids.current");
                        f[SF_PIDS_MAX] = open_sample_file(h, "pids.max");
                        f[SF_PIDS_EVENTS] = open_sample_file(h, "pids.events");
                        continue;
                }
                /* v1: one controller per hierarchy here, but a host may co-mount cpu
                 * and cpuacct: each file is opened where it exists. */
                if (f[SF_CPU_STAT] < 0 && (!strcmp(c, "cpu") || !strcmp(c, "cpuacct")))
                        f[SF_CPU_STAT] = open_sample_file(h, "cpu.stat");
                if (f[SF_CPU_USAGE] < 0 && (!strcmp(c, "cpu") || !strcmp(c, "cpuacct")))
                        f[SF_CPU_USAGE] = open_sample_file(h, "cpuacct.usage");
                if (!strcmp(c, "memory")) {
                        f[SF_MEM_CURRENT] = open_sample_file(h, "memory.usage_in_bytes");
                        f[SF_MEM_MAX] = open_sample_file(h, "memory.limit_in_bytes");
                        f[SF_MEM_OOM] = open_sample_file(h, "memory.oom_control");
                } else if (!strcmp(c, "pids")) {
                        f[SF_PIDS_CURRENT] = open_sample_file(h, "pids.current");
                        f[SF_PIDS_MAX] = open_sample_file(h, "pids.max");
                        f[SF_PIDS_EVENTS] = open_sample_file(h, "pids.events");
                }
        }
        tc->sample_open = true;
}

/* Reads a whole control file from offset 0. Returns its length, or -errno (-ENODEV
 * once the cgroup is removed). */
static ssize_t read_sample_file(int fd, char *buf, size_t len)
{
        ssize_t n;
        do
                n = pread(fd, buf, len - 1, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return n;
}

static bool read_into(int fd, char *buf, size_t len, bool *gone)
{
        if (fd < 0)
                return false;
        ssize_t n = read_sample_file(fd, buf, len);
        if (n == -ENODEV)
                *gone = true;
        return n >= 0;
}

/* The value of "KEY VALUE" in a flat-keyed file such as cpu.stat. */
static bool keyed_value(const char *text, const char *key, uint64_t *ret)
{
        size_t klen = strlen(key);
        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                if (strncmp(p, key, klen) == 0 && p[klen] == ' ') {
                        char *end;
                        errno = 0;
                        unsigned long long v = strtoull(p + klen + 1, &end, 10);
                        if (errno || end == p + klen + 1)
                                return false;
                        *ret = v;
                        return true;
                }
        }
        return false;
}

/* A single number, or "max" (v2, pids) for no limit. */
static bool single_value(const char *text, uint64_t *ret)
{
        if (strncmp(text, "max", 3) == 0) {
                *ret = CGROUP_UNLIMITED;
                return true;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(text, &end, 10);
        if (errno || end == text)
                return false;
        *ret = v;
        return true;
}

int tenant_cgroup_sample(struct tenant_cgroup *tc, struct cgroup_sample *ret, struct tn_err **err)
{
        if (!tc->sample_open)
                open_sample_files(tc);
        struct cgroup_sample s = {0};
        char buf[4096];
        const int *f = tc->sfd;
        bool gone = false;
#define READ(i) read_into(f[i], buf, sizeof(buf), &gone)
        if (READ(SF_CPU_STAT)) {
                uint64_t usec;
                if (keyed_value(buf, "nr_periods", &s.cpu_nr_periods) &&
                    keyed_value(buf, "nr_throttled", &s.cpu_nr_throttled)) {
                        if (keyed_value(buf, "throttled_time", &s.cpu_throttled_ns))
                                s.valid |= CGS_THROTTLE;
                        else if (keyed_value(buf, "throttled_usec", &usec)) {
                                s.cpu_throttled_ns = usec * 1000;
                                s.valid |= CGS_THROTTLE;
                        }
                }
                if (keyed_value(buf, "usage_usec", &usec)) {
                        s.cpu_usage_ns = usec * 1000;
                        s.valid |= CGS_CPU;
                }
        }
        if (READ(SF_CPU_USAGE) && single_value(buf, &s.cpu_usage_ns))
                s.valid |= CGS_CPU;
        if (READ(SF_MEM_CURRENT) && single_value(buf, &s.memory_current) && READ(SF_MEM_MAX) &&
            single_value(buf, &s.memory_max))
                s.valid |= CGS_MEMORY;
        if (READ(SF_MEM_OOM) && keyed_value(buf, "oom_kill", &s.oom_kills))
                s.valid |= CGS_OOM;
        if (READ(SF_PIDS_CURRENT) && single_value(buf, &s.pids_current) && READ(SF_PIDS_MAX) &&
            single_value(buf, &s.pids_max))
                s.valid |= CGS_PIDS;
        if (READ(SF_PIDS_EVENTS) && keyed_value(buf, "max", &s.pids_max_events))
                s.valid |= CGS_PIDS_EVENTS;
#undef READ
        if (gone)
                return tn_err_setx(err, ENODEV, "the cgroups of %s are gone",
                                   tc->n ? tc->h[0].path : "the tenant");
        *ret = s;
        return 0;
}

/* ---- cgroup v2 delegation ---- */

static int write_text(const char *path, const char *text)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        if (write(fd, text, strlen(text)) < 0)
                return -errno;
        return 0;
}

int tenant_cgroup_prepare_at(const char *mount, struct tn_err **err)
{
        if (!mount_is_cgroup2(mount))
                return 0;
        /* OWN from /proc/self/cgroup's "0::" line. */
        char own[4096] = "";
        _cleanup_fclose_ FILE *pc = fopen("/proc/self/cgroup", "re");
        char line[4096];
        while (pc && fgets(line, sizeof(line), pc))
                if (strncmp(line, "0::", 3) == 0) {
                        line[strcspn(line, "\n")] = '\0';
                        snprintf(own, sizeof(own), "%s", line + 3);
                }
        if (!own[0])
                return tn_err_setx(err, ENOENT, "cannot find this process's cgroup v2 path");
        size_t len = strlen(own);
        if (strcmp(own, "/") == 0 || (len >= 11 && strcmp(own + len - 11, "/supervisor") == 0))
                return 0; /* the root has no such rule; or moved already */

        char dir[4096 + 64], path[4096 + 128];
        snprintf(dir, sizeof(dir), "%s%s", mount, own);
        /* Which of our controllers OWN may hand on, and which it already does. */
        char avail[512] = "", enabled[512] = "";
        snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
        _cleanup_fclose_ FILE *fa = fopen(path, "re");
        if (fa && !fgets(avail, sizeof(avail), fa))
                avail[0] = '\0';
        snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
        _cleanup_fclose_ FILE *fe = fopen(path, "re");
        if (fe && !fgets(enabled, sizeof(enabled), fe))
                enabled[0] = '\0';
        char want[64] = "";
        bool missing = false;
        static const char *const v2ctl[] = {"cpu", "memory", "pids", "io"};
        for (size_t i = 0; i < ARRAY_SIZE(v2ctl); i++) {
                char word[16];
                snprintf(word, sizeof(word), " %s ", v2ctl[i]);
                char a[520], e[520];
                snprintf(a, sizeof(a), " %s ", avail);
                snprintf(e, sizeof(e), " %s ", enabled);
                a[strcspn(a, "\n")] = ' ';
                e[strcspn(e, "\n")] = ' ';
                if (strstr(a, word) && !strstr(e, word)) {
                        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s+%s",
                                 want[0] ? " " : "", v2ctl[i]);
                        missing = true;
                }
        }
        if (!missing)
                return 0;

        /* Only when this process is alone in OWN: moving ourselves out of a cgroup
         * that others share would not empty it, and we must not move them. */
        snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
        _cleanup_fclose_ FILE *fp = fopen(path, "re");
        if (!fp)
                return tn_err_set(err, errno, "cannot read %s", path);
        long pid;
        while (fscanf(fp, "%ld", &pid) == 1)
                if (pid != (long)getpid())
                        return tn_err_setx(err, EBUSY,
                                           "cgroup v2: %s also holds process %ld, so it cannot "
                                           "delegate %s to its children; run tenantd in a cgroup "
                                           "of its own (systemd: Delegate=yes)",
                                           own, pid, want);
        snprintf(path, sizeof(path), "%s/supervisor", dir);
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                return tn_err_set(err, errno, "cannot create %s", path);
        char pidtext[32];
        snprintf(pidtext, sizeof(pidtext), "%ld", (long)getpid());
        snprintf(path, sizeof(path), "%s/supervisor/cgroup.procs", dir);
        int r = write_text(path, pidtext);
        if (r < 0)
                return tn_err_set(err, -r, "cannot move tenantd into %s/supervisor", own);
        snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
        r = write_text(path, want);
        if (r < 0)
                return tn_err_set(err, -r, "cannot enable %s in %s", want, path);
        return 0;
}

int tenant_cgroup_prepare(struct tn_err **err)
{
        int r = libcgroup_ready(err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < N_CONTROLLERS; i++) {
                _cleanup_free_ char *mount = NULL;
                if (cgroup_get_subsys_mount_point(controllers[i], &mount) != 0)
                        continue;
                if (mount_is_cgroup2(mount))
                        return tenant_cgroup_prepare_at(mount, err);
        }
        return 0;
}

void tenant_cgroup_free(struct tenant_cgroup *tc)
{
        if (!tc)
                return;
        for (size_t i = 0; i < SF__N; i++)
                if (tc->sfd[i] >= 0)
                        close(tc->sfd[i]);
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

/* ---- freezing a tenant (backups) ----
 *
 * cgroup v2: cgroup.freeze of the tenant's own cgroup, then cgroup.events says
 * "frozen 1". cgroup v1 has the freezer in a hierarchy of its own, where tenants have no
 * cgroup: the tenant's processes (those of its first hierarchy's cgroup.procs) are moved
 * into OWN/tenantd/NAME there, which is frozen (freezer.state FROZEN); a process forked
 * while they move is caught by the next pass. Thawing moves them back to OWN and removes
 * the cgroup, so a thawed tenant leaves nothing behind. */

#define FREEZE_WAIT_MS 5000

static void sleep_ms(unsigned ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

/* Writes each pid of `from`'s cgroup.procs that `to`'s does not list yet into `to`'s;
 * *moved says whether there was one. (On v1, `from` may be another hierarchy's cgroup,
 * which a move into `to` does not leave.) */
static int move_procs(const char *from, const char *to, bool *moved)
{
        char path[4200];
        long have[1024];
        size_t n = 0;
        long pid;
        snprintf(path, sizeof(path), "%s/cgroup.procs", to);
        _cleanup_fclose_ FILE *t = fopen(path, "re");
        while (t && n < ARRAY_SIZE(have) && fscanf(t, "%ld", &pid) == 1)
                have[n++] = pid;
        snprintf(path, sizeof(path), "%s/cgroup.procs", from);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        snprintf(path, sizeof(path), "%s/cgroup.procs", to);
        *moved = false;
        while (fscanf(f, "%ld", &pid) == 1) {
                size_t i = 0;
                while (i < n && have[i] != pid)
                        i++;
                if (i < n)
                        continue;
                char text[32];
                snprintf(text, sizeof(text), "%ld", pid);
                int r = write_text(path, text);
                if (r < 0 && r != -ESRCH)
                        return r;
                *moved = true;
        }
        return 0;
}

static int freezer_v1_dir(const char *name, char *ret, size_t len, char *parent, size_t plen,
                          struct tn_err **err)
{
        _cleanup_free_ char *mount = NULL;
        if (cgroup_get_subsys_mount_point("freezer", &mount) != 0 || !mount)
                return tn_err_setx(err, ENODEV, "this host has no cgroup freezer to freeze %s with",
                                   name);
        _cleanup_free_ char *own = own_cgroup("freezer", mount);
        if (!own)
                return tn_err_setx(err, ENOENT, "cannot find this process's freezer cgroup");
        if ((size_t)snprintf(parent, plen, "%s%s", mount, strcmp(own, "/") == 0 ? "" : own) >=
                plen ||
            (size_t)snprintf(ret, len, "%s/tenantd/%s", parent, name) >= len)
                return tn_err_setx(err, ENAMETOOLONG, "freezer cgroup path too long");
        return 0;
}

int tenant_cgroup_freeze(const char *name, bool frozen, struct tn_err **err)
{
        _cleanup_(tenant_cgroup_freep) struct tenant_cgroup *tc = NULL;
        int r = discovered(name, &tc, err);
        if (r < 0)
                return r;
        char dir[4200], file[4300], buf[512];
        snprintf(dir, sizeof(dir), "%s%s", tc->h[0].mount, tc->h[0].path);
        if (tc->v2) {
                for (size_t i = 0; i < tc->n; i++)
                        if (mount_is_cgroup2(tc->h[i].mount))
                                snprintf(dir, sizeof(dir), "%s%s", tc->h[i].mount, tc->h[i].path);
                snprintf(file, sizeof(file), "%s/cgroup.freeze", dir);
                r = write_text(file, frozen ? "1" : "0");
                if (r < 0)
                        return tn_err_set(err, -r, "cannot write %s", file);
                snprintf(file, sizeof(file), "%s/cgroup.events", dir);
                for (int ms = 0; frozen && ms < FREEZE_WAIT_MS; ms += 5) {
                        if (read_small_file(file, buf, sizeof(buf)) >= 0 && strstr(buf, "frozen 1"))
                                return 0;
                        sleep_ms(5);
                }
                return frozen ? tn_err_setx(err, ETIMEDOUT, "%s did not freeze within %d ms", name,
                                            FREEZE_WAIT_MS)
                              : 0;
        }
        char fz[4200], parent[4200];
        r = freezer_v1_dir(name, fz, sizeof(fz), parent, sizeof(parent), err);
        if (r < 0)
                return r;
        snprintf(file, sizeof(file), "%s/freezer.state", fz);
        bool moved = false;
        if (!frozen) {
                if (access(fz, F_OK) < 0)
                        return 0;
                r = write_text(file, "THAWED");
                if (r < 0)
                        return tn_err_set(err, -r, "cannot thaw %s", fz);
                r = move_procs(fz, parent, &moved);
                if (r < 0)
                        return tn_err_set(err, -r, "cannot move %s's processes out of %s", name,
                                          fz);
                (void)rmdir(fz);
                return 0;
        }
        char top[4300];
        snprintf(top, sizeof(top), "%s/tenantd", parent);
        if ((mkdir(top, 0755) < 0 && errno != EEXIST) || (mkdir(fz, 0755) < 0 && errno != EEXIST))
                return tn_err_set(err, errno, "cannot create %s", fz);
        /* Move until a pass finds nothing left, then freeze, then check once more:
         * a process forked before its parent moved would be outside. */
        for (int pass = 0; pass < 20; pass++) {
                r = move_procs(dir, fz, &moved);
                if (r < 0)
                        return tn_err_set(err, -r, "cannot move %s's processes into %s", name, fz);
                if (!moved) {
                        r = write_text(file, "FROZEN");
                        if (r < 0)
                                return tn_err_set(err, -r, "cannot freeze %s", fz);
                        int ms = 0;
                        for (; ms < FREEZE_WAIT_MS; ms += 5) {
                                if (read_small_file(file, buf, sizeof(buf)) >= 0 &&
                                    strncmp(buf, "FROZEN", 6) == 0)
                                        break;
                                sleep_ms(5);
                        }
                        if (ms >= FREEZE_WAIT_MS) {
                                (void)write_text(file, "THAWED");
                                return tn_err_setx(err, ETIMEDOUT, "%s did not freeze within %d ms",
                                                   name, FREEZE_WAIT_MS);
                        }
                        r = move_procs(dir, fz, &moved);
                        if (r == 0 && !moved)
                                return 0;
                        (void)write_text(file, "THAWED");
                }
        }
        return tn_err_setx(err, EAGAIN, "%s keeps forking: cannot freeze it", name);
}
