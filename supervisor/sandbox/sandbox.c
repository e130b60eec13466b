/* sandbox.c — the namespace executor (see sandbox.h).
 *
 * The setup sequence, and why it is in this order:
 *
 * In the supervisor (root, host namespaces):
 *  1. The tenant's host id range is looked up (uidrange.c). Two user namespaces are
 *     made by short-lived helper processes and kept as file descriptors: the tenant's
 *     own (ids 0..65535 -> base..base+65535) and, when the service runs as a non-root
 *     uid, an "idmap" one that maps only that uid and gid to their host ids, for
 *     idmapped binds (rootfs.c explains why tenant root is never idmapped).
 *  2. rootfs_prepare() opens every host path the tenant will see, as root, refusing
 *     symbolic links, and turns each into a detached mount with its final attributes.
 *  3. The tenant's cgroups are created (cgroup.c).
 *  4. The first tenant process ("init") is cloned into new mount, pid, ipc, uts and
 *     network namespaces. All of them are owned by the host's user namespace, so
 *     nothing the tenant later holds gives it power over them: it cannot remount,
 *     change its hostname or reconfigure its network, even with a capability granted.
 *     On cgroup v2 init is created in the tenant's cgroup there (CLONE_INTO_CGROUP).
 *  5. For a private network, the supervisor moves the tenant's end of the veth pair
 *     into init's network namespace and loads its firewall, then lets init go.
 *
 * In init (still root, new namespaces):
 *  5. First thing, while the supervisor does its part of 5, init moves itself into the
 *     tenant's other cgroups (tenant_cgroup_join_self: a single thread moving itself
 *     is not held up by the kernel's global migration lock, as a move by the
 *     supervisor was), then waits for the go-ahead.
 *  6. A cgroup namespace, now that init sits in its cgroup: the tenant sees its own
 *     cgroup as the root. Hostname, loopback, per-namespace sysctls.
 *  7. rootfs_build(): the new root assembled from the prepared mounts, pivot_root,
 *     the host's tree detached.
 *  8. setns() into the tenant's user namespace: from here on init holds capabilities
 *     only in that namespace, which owns none of the namespaces above.
 *  9. Init closes every descriptor but 0-2 and its two pipes (it closed all else it
 *     inherited on entry, keeping only the namespace and the prepared mounts), so the
 *     service starts with nothing that leads outside the tenant. The service process
 *     is forked (see 10), then init gives up what is left: uid and gid of the service,
 *     no capability, no_new_privs, the same seccomp filter. It then only reaps
 *     children and forwards signals, and exits with the service's status, which takes
 *     down every process of the pid namespace.
 *
 * In the service process:
 * 10. No directory among 0-2, then, in the order the threat model asks for: rlimits,
 *     setsid (no controlling terminal: TIOCSTI and job-control tricks on the
 *     operator's terminal are out), no_new_privs, capabilities (bounding and ambient
 *     sets reduced to the grant, uid/gid switched), then the working directory,
 *     resolved inside the tenant's root as the tenant's uid (enter_workdir), seccomp
 *     (native architecture only), every descriptor but 0-2 marked close-on-exec, a
 *     clean environment plus the declared one, execve().
 * Errors before execve() travel back to the supervisor over a close-on-exec socket, so
 * "started" means the service binary is running. When the profile has "notify" rules
 * the service installs its filter with a listener and sends the listener over the same
 * socket (SCM_RIGHTS) before it closes its own copy; from then on, until execve(), the
 * supervisor answers notifications while it waits (a profile may notify a call that
 * the last steps make), and afterwards whoever started the sandbox does (seccomp_notify.h).
 * Init loads the filter without a listener (a notified call would fail there with
 * ENOSYS; init makes none). Processes started by sandbox_enter_exec() get a program
 * whose notify rules their caller rewrote to the keeper's answer, EPERM
 * (policy_bpf_notify_as_errno): denied as the service's calls are, unreported. When learning
 * (`tenantctl policy learn`, cfg->learn) every call is notified, sendmsg included: the
 * service sends a pidfd of itself instead, and the supervisor takes the listener with
 * pidfd_getfd() (hand_over_listener); init loads no filter then. */
#include "sandbox/sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <termios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spec/caps.h"
#include "host/cgroup.h"
#include "lib/clock.h"
#include "lib/fileio.h"
#include "host/net.h"
#include "spec/policy.h"
#include "lib/seccomp_notify.h"
#include "sandbox/rootfs.h"
#include "host/uidrange.h"
#include "storage/volume.h"

#define ERRMSG_MAX 1024

/* ---- user namespaces held by descriptor ---- */

static int write_map(pid_t pid, const char *file, const char *map, struct tn_err **err)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, map, strlen(map)) != (ssize_t)strlen(map))
                return tn_err_set(err, errno, "cannot write %s", path);
        return 0;
}

/* The holder of a new user namespace (userns_make): it shares the supervisor's memory
 * (CLONE_VM) and runs on a stack of the caller's frame, so it may only make raw system
 * calls that cannot fail here (errno, in the supervisor's thread storage, is never
 * written), and every signal is blocked. It waits for EOF on the pipe. */
__attribute__((no_sanitize_address)) static int userns_holder(void *arg)
{
        const int *p = arg;
        char c;
        syscall(SYS_close, p[1]);
        syscall(SYS_read, p[0], &c, 1);
        syscall(SYS_exit, 0);
        return 0;
}

/* A user namespace with the given uid and gid maps, returned as an fd. A child is
 * cloned straight into a new user namespace and waits while the supervisor writes the
 * maps (as root, so any host ids may be mapped) and opens the namespace; then the child
 * exits and the fd keeps the namespace alive. The child shares the supervisor's memory
 * instead of a copy of it: a fork would copy every mapping of tenantctl or tenantd and
 * make the supervisor take a copy-on-write fault for each page it writes meanwhile. */
static int userns_make(const char *uid_map, const char *gid_map, int *ret_fd, struct tn_err **err)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return tn_err_set(err, errno, "pipe");
        /* Every signal blocked in the child (it inherits the mask): a handler of the
         * supervisor's would run there on the shared memory. */
        sigset_t all, old;
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, &old);
        _Alignas(16) char stack[8192];
        pid_t pid =
            clone(userns_holder, stack + sizeof(stack), CLONE_VM | CLONE_NEWUSER | SIGCHLD, p);
        int clone_errno = errno;
        sigprocmask(SIG_SETMASK, &old, NULL);
        if (pid < 0) {
                int e = clone_errno;
                close(p[0]);
                close(p[1]);
                return tn_err_set(err, e, "cannot create a user namespace");
        }
        close(p[0]);
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
        int r = write_map(pid, "uid_map", uid_map, err);
        if (r == 0)
                r = write_map(pid, "gid_map", gid_map, err);
        int fd = -1;
        if (r == 0) {
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        r = tn_err_set(err, errno, "cannot open %s", path);
        }
        close(p[1]);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        if (r < 0)
                return r;
        *ret_fd = fd;
        return 0;
}

/* ---- the child side ---- */

struct child_ctx {
        const struct sandbox_config *cfg;
        const struct rootfs_plan *plan;
        uint32_t base;
        int userns_fd;
        int go_fd; /* read end: the supervisor's go-ahead; EOF later means it died */
        const struct tenant_cgroup *cgroup;
        bool in_v2;                   /* created in its cgroup v2 cgroup (cgroup_clone_into) */
        const struct net_tenant *net; /* network.mode private, else NULL */
        int err_fd;                   /* write end: error text back to the supervisor */
        rlim_t nproc;                 /* RLIMIT_NPROC, RLIM_INFINITY: none (nproc_limit) */
};

static _Noreturn void child_fail(const struct child_ctx *c, const char *step, struct tn_err *e)
{
        char msg[ERRMSG_MAX];
        int n = snprintf(msg, sizeof(msg), "%s: %s\n", step, tn_err_msg(e));
        if (n > 0)
                (void)!write(c->err_fd, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
        _exit(127);
}

/* RLIMIT_NPROC for the service: processes per host uid (the tenant's uids are its own),
 * pids.max where no pids cgroup holds the tenant. Where one does, none is set: the
 * cgroup already holds every process of the tenant (init joins it before it forks, an
 * exec'd command before it forks), and the kernel checks RLIMIT_NPROC in fork before the
 * cgroup, so an rlimit at pids.max would refuse every fork at the limit without counting
 * it anywhere (no pids.events "max", no pids_limit alert; a microVM's guest counts each
 * one), and one at a fixed value above it would cap a live `set pids.max` raise. */
static rlim_t nproc_limit(const struct manifest *m, const struct tenant_cgroup *cg)
{
        if (m->pids.max == MANIFEST_UNLIMITED)
                return RLIM_INFINITY;
        return cg && tenant_cgroup_has_pids(cg) ? RLIM_INFINITY : (rlim_t)m->pids.max;
}

static int set_rlimits(rlim_t nproc_max, struct tn_err **err)
{
        struct rlimit core = {0, 0};
        if (setrlimit(RLIMIT_CORE, &core) < 0)
                return tn_err_set(err, errno, "RLIMIT_CORE");
        struct rlimit nofile;
        if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
                rlim_t want = nofile.rlim_max < 65536 ? nofile.rlim_max : 65536;
                nofile.rlim_cur = nofile.rlim_max = want;
                if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
                        return tn_err_set(err, errno, "RLIMIT_NOFILE");
        }
        if (nproc_max != RLIM_INFINITY) {
                struct rlimit nproc = {nproc_max, nproc_max};
                if (setrlimit(RLIMIT_NPROC, &nproc) < 0)
                        return tn_err_set(err, errno, "RLIMIT_NPROC");
        }
        return 0;
}

static char **build_env(const struct manifest *m)
{
        size_t n = m->env_n + 3;
        char **envp = calloc(n + 1, sizeof(*envp));
        if (!envp)
                return NULL;
        size_t k = 0;
        bool have_path = false, have_home = false;
        for (size_t i = 0; i < m->env_n; i++) {
                have_path |= strcmp(m->env[i].name, "PATH") == 0;
                have_home |= strcmp(m->env[i].name, "HOME") == 0;
                if (asprintf(&envp[k++], "%s=%s", m->env[i].name, m->env[i].value) < 0)
                        return NULL;
        }
        if (!have_path)
                envp[k++] =
                    strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        if (!have_home)
                envp[k++] = strdup(m->uid == 0 ? "HOME=/root" : "HOME=/");
        return envp;
}

/* The service's standard descriptors are what it is given on purpose (the keeper's
 * pipes, the operator's terminal); a directory among them would be a host directory
 * handed to the tenant: fchdir(0) and it stands outside its root. */
static int check_stdio(struct tn_err **err)
{
        static const char *const names[] = {"standard input", "standard output", "standard error"};
        for (int fd = 0; fd < 3; fd++) {
                struct stat st;
                if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
                        return tn_err_setx(err, EISDIR,
                                           "%s is a directory of the host; a tenant is never "
                                           "given one",
                                           names[fd]);
        }
        return 0;
}

/* The working directory, resolved by the process that will run in it, after it has
 * become the tenant's uid in the tenant's user namespace and while it holds no
 * descriptor but 0-2 and the error pipe (checked above: none of them a directory):
 *  - RESOLVE_IN_ROOT: the path, and every symbolic link on the way ("/.." and
 *    absolute targets included), is resolved as if "/" (the tenant's root) were the
 *    root of everything; a link inside the root is followed, as chdir() would;
 *  - RESOLVE_NO_MAGICLINKS: /proc/self/fd/N, /proc/PID/cwd, /proc/PID/root and the like
 *    are refused. They are not resolved through the path at all: the kernel jumps to
 *    whatever the descriptor or process holds, wherever it is (runc's
 *    CVE-2024-21626 was a workdir through /proc/self/fd/N of a leaked descriptor);
 *  - no RESOLVE_NO_XDEV: a workdir on a declared mount is normal.
 * fchdir() to what was opened, then getcwd() must name a path under "/" that is that
 * same directory: the kernel says "(unreachable)" (glibc: ENOENT) for a directory
 * outside the process's root. */
static int enter_workdir(const char *workdir, struct tn_err **err)
{
        _cleanup_close_ int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return tn_err_set(err, errno, "workdir %s: cannot open the tenant's root", workdir);
        struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                               .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
        int fd = -1;
        /* EAGAIN: a rename or mount anywhere raced with a ".." of a scoped lookup; the
         * kernel asks to retry. */
        for (int i = 0; i < 16; i++) {
                fd = (int)syscall(SYS_openat2, root, workdir, &how, sizeof(how));
                if (fd >= 0 || errno != EAGAIN)
                        break;
        }
        _cleanup_close_ int dir = fd;
        if (dir < 0) {
                if (errno == ELOOP)
                        return tn_err_setx(err, ELOOP,
                                           "workdir %s leads through a /proc magic link (such as "
                                           "/proc/self/fd/N) or too many symbolic links; refused",
                                           workdir);
                if (errno == EXDEV)
                        return tn_err_setx(err, EXDEV,
                                           "workdir %s leads out of the tenant's root; refused",
                                           workdir);
                return tn_err_set(err, errno, "workdir %s", workdir);
        }
        if (fchdir(dir) < 0)
                return tn_err_set(err, errno, "workdir %s", workdir);
        char cwd[PATH_MAX];
        struct stat named, opened;
        if (!getcwd(cwd, sizeof(cwd)) || cwd[0] != '/' || stat(cwd, &named) < 0 ||
            fstat(dir, &opened) < 0 || named.st_dev != opened.st_dev ||
            named.st_ino != opened.st_ino)
                return tn_err_setx(err, EXDEV,
                                   "workdir %s: the directory it leads to is not inside the "
                                   "tenant's root; refused",
                                   workdir);
        return 0;
}

/* Step 10, seccomp with "notify" rules: the filter with a listener, the listener to the
 * supervisor over the error socket, and out of this process before anything else. */
/* One record of len bytes on sock with fd passed along (SCM_RIGHTS): 0, or -errno. */
static int send_with_fd(int sock, const void *data, size_t len, int fd)
{
        struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } u = {0};
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = u.buf,
                             .msg_controllen = sizeof(u.buf)};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
        ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

static int send_listener(const struct child_ctx *c)
{
        int fd = policy_bpf_load_listener(c->cfg->bpf);
        if (fd < 0)
                return fd;
        int r = send_with_fd(c->err_fd, "L", 1, fd);
        close(fd);
        return r;
}

/* Step 10, learning (sandbox.h, cfg->learn): every call of the filter is notified,
 * sendmsg included, so the listener cannot be sent as above. Instead the supervisor
 * gets a pidfd of this process and the number the listener will have (the lowest free
 * one: nothing else opens a descriptor meanwhile, this process has one thread), and
 * takes the listener with pidfd_getfd() once it is there; until then this process
 * waits in its first call after seccomp(), a notified one. */
static int hand_over_listener(const struct child_ctx *c)
{
        int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0); /* closed at exec */
        if (pidfd < 0)
                return -errno;
        int slot = fcntl(0, F_DUPFD_CLOEXEC, 0);
        if (slot < 0)
                return -errno;
        close(slot);
        char rec[1 + sizeof(int)] = {'P'};
        memcpy(rec + 1, &slot, sizeof(int));
        int r = send_with_fd(c->err_fd, rec, sizeof(rec), pidfd);
        if (r < 0)
                return r;
        int fd = policy_bpf_load_listener(c->cfg->bpf);
        if (fd < 0)
                return fd;
        /* From here on every call waits for the supervisor, this close() first. */
        close(fd);
        return 0;
}

/* Step 10: the service. Never returns. */
static _Noreturn void run_service(const struct child_ctx *c)
{
        const struct sandbox_config *cfg = c->cfg;
        const struct manifest *m = cfg->m;
        struct tn_err *e = NULL;

        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
                signal(sig, SIG_DFL);

        if (check_stdio(&e) < 0)
                child_fail(c, "descriptors", e);
        if (set_rlimits(c->nproc, &e) < 0)
                child_fail(c, "rlimits", e);
        if (setsid() < 0) {
                tn_err_set(&e, errno, "setsid");
                child_fail(c, "setsid", e);
        }
        /* exec -t: the terminal on 0-2 is the tenant's own; it becomes the session's. */
        if (cfg->tty && ioctl(0, TIOCSCTTY, 0) < 0) {
                tn_err_set(&e, errno, "TIOCSCTTY");
                child_fail(c, "terminal", e);
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                tn_err_set(&e, errno, "PR_SET_NO_NEW_PRIVS");
                child_fail(c, "no_new_privs", e);
        }
        if (caps_apply(cfg->caps, cfg->caps_n, m->uid, m->gid, (const gid_t *)m->groups,
                       m->groups_n, &e) < 0)
                child_fail(c, "capabilities", e);
        /* Only now, as the tenant's uid, is a path inside the tenant resolved. */
        if (enter_workdir(m->workdir, &e) < 0)
                child_fail(c, "workdir", e);
        int r = cfg->learn                      ? hand_over_listener(c)
                : policy_bpf_notifies(cfg->bpf) ? send_listener(c)
                                                : policy_bpf_load(cfg->bpf);
        if (r < 0) {
                tn_err_set(&e, -r, "cannot load the seccomp filter");
                child_fail(c, "seccomp", e);
        }
        if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
                tn_err_set(&e, errno, "close_range");
                child_fail(c, "descriptors", e);
        }
        char **envp = build_env(m);
        if (!envp) {
                tn_err_setx(&e, ENOMEM, "out of memory");
                child_fail(c, "environment", e);
        }
        execve(cfg->argv[0], cfg->argv, envp);
        tn_err_set(&e, errno, "cannot execute %s", cfg->argv[0]);
        child_fail(c, "execve", e);
}

static volatile sig_atomic_t forward_to;

static void forward_signal(int sig)
{
        if (forward_to > 0)
                kill(forward_to, sig);
}

/* Step 9: init's loop. Reaps every orphan; when the service ends, exits with its
 * status. The exit of a pid namespace's init makes the kernel kill every other
 * process in it, whatever uid it runs as. */
static _Noreturn void init_loop(pid_t service)
{
        for (;;) {
                int st;
                pid_t pid = waitpid(-1, &st, 0);
                if (pid < 0 && errno == EINTR)
                        continue;
                if (pid < 0)
                        _exit(127); /* ECHILD without the service: cannot happen */
                if (pid == service)
                        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        }
}

static _Noreturn void run_init(struct child_ctx *c)
{
        const struct sandbox_config *cfg = c->cfg;
        const struct manifest *m = cfg->m;
        struct tn_err *e = NULL;

        /* Step 5, before anything else: what init does from here on, and every process
         * it forks, is charged to the tenant and within its limits. */
        if (tenant_cgroup_join_self(c->cgroup, c->in_v2, &e) < 0)
                child_fail(c, "cgroups", e);
        if (cfg->die_with_parent)
                prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* Init is a copy of the supervisor's memory: nothing of the tenant may read it. */
        prctl(PR_SET_DUMPABLE, 0);
        /* Whatever the supervisor had open when it cloned us (the keeper's log
         * directory, a caller's descriptors inherited by tenantctl run, other tenants'
         * pipes) goes first: init keeps its two pipes, the user namespace and the
         * prepared mounts, which rootfs_build() consumes. */
        int keep[FD_KEEP_MAX];
        size_t nkeep = rootfs_plan_fds(c->plan, keep, FD_KEEP_MAX - 3);
        keep[nkeep++] = c->go_fd;
        keep[nkeep++] = c->err_fd;
        keep[nkeep++] = c->userns_fd;
        fd_close_all_but(keep, nkeep);
        char go;
        if (read(c->go_fd, &go, 1) != 1)
                _exit(127); /* the supervisor gave up on us */

        /* Step 6 */
        if (unshare(CLONE_NEWCGROUP) < 0) {
                tn_err_set(&e, errno, "unshare(CLONE_NEWCGROUP)");
                child_fail(c, "namespaces", e);
        }
        if (sethostname(m->name, strlen(m->name)) < 0) {
                tn_err_set(&e, errno, "sethostname");
                child_fail(c, "namespaces", e);
        }
        if (net_setup_namespace(c->base, c->net, &e) < 0)
                child_fail(c, "network", e);
        /* Step 7 */
        if (rootfs_build(c->plan, &e) < 0)
                child_fail(c, "root filesystem", e);
        /* Step 8 */
        if (setns(c->userns_fd, CLONE_NEWUSER) < 0) {
                tn_err_set(&e, errno, "setns(user)");
                child_fail(c, "user namespace", e);
        }
        close(c->userns_fd);
        /* The service is forked with nothing but 0-2 and init's two pipes: the
         * prepared mounts (now part of the tenant's tree) and anything else are gone
         * before any process resolves a path the tenant controls (its workdir, its
         * executable). */
        int pipes[2] = {c->go_fd, c->err_fd};
        fd_close_all_but(pipes, 2);

        /* Step 9: signals arriving from now on are for the service. */
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, NULL);
        pid_t service = fork();
        if (service < 0) {
                tn_err_set(&e, errno, "fork");
                child_fail(c, "service", e);
        }
        if (service == 0)
                run_service(c);
        forward_to = service;
        /* Init keeps one descriptor, the lifeline. */
        close(c->err_fd);

        struct sigaction sa = {.sa_handler = forward_signal};
        sigemptyset(&sa.sa_mask);
        static const int forwarded[] = {SIGTERM, SIGINT,  SIGHUP,   SIGQUIT,
                                        SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};
        for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
                sigaction(forwarded[i], &sa, NULL);

        /* Init keeps nothing the service does not have. */
        /* Learning: the filter notifies every call and only the service has a listener
         * (its calls would fail here with ENOSYS); init's are SANDBOX_INIT_SYSCALLS. */
        if (caps_apply(NULL, 0, m->uid, m->gid, NULL, 0, NULL) < 0 ||
            prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            (!cfg->learn && policy_bpf_load(cfg->bpf) < 0)) {
                kill(service, SIGKILL);
                _exit(127);
        }
        /* Changing uid cleared the parent-death signal: set it again, then look at the
         * supervisor's end of the go pipe, which it holds open for the tenant's life. If
         * it is gone already, it died before the signal was armed. */
        if (cfg->die_with_parent) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                struct pollfd lifeline = {.fd = c->go_fd, .events = POLLIN};
                if (poll(&lifeline, 1, 0) > 0 && (lifeline.revents & (POLLHUP | POLLERR)))
                        _exit(128 + SIGKILL);
        }
        close(c->go_fd);
        /* Whatever the caller had blocked, init must receive what it forwards. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        init_loop(service);
}

/* ---- the supervisor side ---- */

static void sandbox_free(struct sandbox *sb)
{
        if (!sb)
                return;
        if (sb->pidfd >= 0)
                close(sb->pidfd);
        if (sb->lifeline >= 0)
                close(sb->lifeline);
        tenant_cgroup_free(sb->cgroup);
        notifier_free(sb->notifier);
        free(sb);
}

/* Learning: the service's pidfd and the number its listener will have there. */
struct handover {
        int pidfd;
        int slot;
        uint64_t deadline_ms; /* the listener must be there by then */
};

#define HANDOVER_MS 5000

/* Learning: the listener taken from the service once it is there (hand_over_listener).
 * 0 while it is not there yet; a negative errno when it cannot be taken: the service,
 * stopped in its first notified call for good, is then killed. */
static int take_listener(struct handover *h, struct sandbox *sb, const int *answers)
{
        if (h->pidfd < 0 || sb->notifier)
                return 0;
        int fd = (int)syscall(SYS_pidfd_getfd, h->pidfd, h->slot, 0);
        int r = fd < 0 ? -errno : 0;
        uint64_t id = 0;
        if (fd >= 0 && (ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0 || errno != ENOENT))
                r = -EBADF; /* something else is in the slot: the listener is not */
        if (r == 0 && (r = notifier_new(fd, &sb->notifier)) == 0) {
                sb->notifier->learn = true;
                if (answers)
                        memcpy(sb->notifier->answer, answers, sizeof(sb->notifier->answer));
                return 0;
        }
        if (fd >= 0 && r < 0)
                close(fd);
        if (r == -EBADF && clock_ms(CLOCK_MONOTONIC) < h->deadline_ms)
                return 0; /* not loaded yet */
        (void)syscall(SYS_pidfd_send_signal, h->pidfd, SIGKILL, NULL, 0);
        return r;
}

/* One record from the child: error text into msg + *len, the listener (a record of
 * one byte with a descriptor), kept in sb->notifier, or, learning, a pidfd and a slot
 * (a record of 'P' and an int with a descriptor) into *h. False at the end. */
static bool read_one_report(int fd, char *msg, size_t *len, struct sandbox *sb, struct handover *h)
{
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } u;
        struct iovec iov = {.iov_base = msg + *len, .iov_len = ERRMSG_MAX - *len};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = u.buf,
                            .msg_controllen = sizeof(u.buf)};
        ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0)
                return errno == EINTR || errno == EAGAIN;
        if (n == 0)
                return false;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
            cm->cmsg_len == CMSG_LEN(sizeof(int))) {
                int lfd;
                memcpy(&lfd, CMSG_DATA(cm), sizeof(int));
                if (n == 1 + sizeof(int) && msg[*len] == 'P' && h->pidfd < 0) {
                        h->pidfd = lfd;
                        memcpy(&h->slot, msg + *len + 1, sizeof(int));
                        h->deadline_ms = clock_ms(CLOCK_MONOTONIC) + HANDOVER_MS;
                        return true;
                }
                if (n != 1 || sb->notifier || notifier_new(lfd, &sb->notifier) < 0)
                        close(lfd); /* only one, and only as its own record */
                return true;
        }
        *len += (size_t)n;
        return *len < ERRMSG_MAX;
}

/* Reads the child's reports until it has exec'd (EOF) or failed; answers notified
 * calls meanwhile, once the listener has come. Returns the error text's length. */
static size_t read_child_reports(int fd, char *msg, struct sandbox *sb, const int *answers)
{
        size_t len = 0;
        struct handover h = {.pidfd = -1};
        for (;;) {
                struct pollfd p[2] = {{.fd = fd, .events = POLLIN}};
                /* Learning: look for the listener every millisecond until it is there. */
                bool waiting = h.pidfd >= 0 && !sb->notifier;
                int wait = notifier_pollfd(sb->notifier, clock_ms(CLOCK_MONOTONIC), &p[1],
                                           waiting ? 1 : -1);
                if (poll(p, 2, wait) < 0 && errno != EINTR)
                        break;
                int r = waiting ? take_listener(&h, sb, answers) : 0;
                if (r < 0 && len == 0)
                        len = (size_t)snprintf(msg, ERRMSG_MAX,
                                               "learning: cannot take the service's seccomp "
                                               "listener: %s",
                                               strerror(-r));
                if (p[1].revents)
                        (void)notifier_answer(sb->notifier, clock_ms(CLOCK_MONOTONIC));
                if (p[0].revents && !read_one_report(fd, msg, &len, sb, &h))
                        break;
        }
        if (h.pidfd >= 0)
                close(h.pidfd);
        return len;
}

/* The go-ahead to init. Init may have ended already (it could not join its cgroups and
 * said why on the error socket): the write then fails with EPIPE, and the SIGPIPE it
 * raises is taken here, not by whoever called sandbox_start (tenantctl does not ignore
 * it). */
static int write_go(int fd)
{
        sigset_t pipe_only, old;
        sigemptyset(&pipe_only);
        sigaddset(&pipe_only, SIGPIPE);
        sigprocmask(SIG_BLOCK, &pipe_only, &old);
        ssize_t n = write(fd, "g", 1);
        int saved = errno;
        if (n < 0 && saved == EPIPE && !sigismember(&old, SIGPIPE)) {
                const struct timespec now = {0, 0};
                while (sigtimedwait(&pipe_only, NULL, &now) < 0 && errno == EINTR)
                        ;
        }
        sigprocmask(SIG_SETMASK, &old, NULL);
        errno = saved;
        return n == 1 ? 0 : -1;
}

int sandbox_start(const struct sandbox_config *cfg, struct sandbox **ret, char **warnings,
                  struct tn_err **err)
{
        const struct manifest *m = cfg->m;
        uint32_t base;
        int r = uidrange_get(cfg->state_dir, m->name, cfg->uid_base, &base, err);
        if (r < 0)
                return r;

        /* Step 1 */
        char map[64];
        snprintf(map, sizeof(map), "0 %u %u\n", base, UIDRANGE_SIZE);
        _cleanup_close_ int userns = -1, idmapns = -1;
        r = userns_make(map, map, &userns, err);
        if (r < 0)
                return tn_err_wrap(err, "user namespace");
        if (m->uid != 0 && m->gid != 0) {
                char umap[64], gmap[64];
                snprintf(umap, sizeof(umap), "%u %u 1\n", m->uid, base + m->uid);
                snprintf(gmap, sizeof(gmap), "%u %u 1\n", m->gid, base + m->gid);
                r = userns_make(umap, gmap, &idmapns, err);
                if (r < 0)
                        return tn_err_wrap(err, "idmap user namespace");
        }

        /* Step 2 */
        struct rootfs_ids ids = {.base = base, .uid = m->uid, .gid = m->gid};
        _cleanup_(rootfs_plan_freep) struct rootfs_plan *plan = NULL;
        r = rootfs_prepare(m, &ids, idmapns, cfg->state_dir, &plan, warnings, err);
        if (r < 0)
                return r;

        /* Step 3 */
        struct sandbox *sb = calloc(1, sizeof(*sb));
        if (!sb)
                return tn_err_setx(err, ENOMEM, "out of memory");
        sb->pidfd = -1;
        sb->lifeline = -1;
        sb->id_base = base;
        if (m->network.mode == NET_PRIVATE) {
                uint32_t index = (base - cfg->uid_base) / UIDRANGE_SIZE;
                r = net_private_prepare(m, cfg->state_dir, index, &sb->net, err);
                if (r < 0) {
                        sandbox_free(sb);
                        return tn_err_wrap(err, "network");
                }
                sb->has_net = true;
        }
        r = tenant_cgroup_create(m->name, &sb->cgroup, err);
        if (r < 0) {
                sandbox_free(sb);
                return r;
        }
        struct tenant_limits limits = {
            .cpu_millicpus = m->cpu.max_millicpus,
            .cpu_weight = m->cpu.weight,
            .memory_max = m->memory.max,
            .memory_high = m->memory.high,
            .swap_max = m->memory.swap,
            .pids_max = m->pids.max,
        };
        r = tenant_cgroup_set_limits(sb->cgroup, &limits, err);
        if (r >= 0)
                r = volumes_set_io(m, sb->cgroup, err);
        if (r < 0)
                goto fail;

        /* Step 4 */
        int go[2], errp[2];
        if (pipe2(go, O_CLOEXEC) < 0) {
                r = tn_err_set(err, errno, "pipe");
                goto fail;
        }
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, errp) < 0) {
                close(go[0]);
                close(go[1]);
                r = tn_err_set(err, errno, "socketpair");
                goto fail;
        }
        rlim_t nproc = nproc_limit(m, sb->cgroup);
        int pidfd = -1;
        bool in_v2 = false;
        int v2_fd = tenant_cgroup_v2_fd(sb->cgroup);
        pid_t pid = cgroup_clone_into(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
                                          CLONE_NEWNET | CLONE_PIDFD,
                                      v2_fd, &pidfd, &in_v2);
        int clone_errno = errno;
        if (v2_fd >= 0)
                close(v2_fd);
        errno = clone_errno;
        if (pid == 0) {
                close(go[1]);
                close(errp[0]);
                struct child_ctx c = {.cfg = cfg,
                                      .net = sb->has_net ? &sb->net : NULL,
                                      .plan = plan,
                                      .base = base,
                                      .userns_fd = userns,
                                      .go_fd = go[0],
                                      .cgroup = sb->cgroup,
                                      .in_v2 = in_v2,
                                      .err_fd = errp[1],
                                      .nproc = nproc};
                run_init(&c);
        }
        close(go[0]);
        close(errp[1]);
        if (pid < 0) {
                close(go[1]);
                close(errp[0]);
                r = tn_err_set(err, clone_errno, "cannot create the tenant's namespaces%s",
                               v2_fd >= 0 ? " in its cgroup v2 cgroup" : "");
                goto fail;
        }
        sb->pid = pid;
        sb->pidfd = pidfd;

        /* Step 5: for a private network the veth pair and the firewall, before the
         * tenant runs anything; init joins its cgroups meanwhile. */
        r = 0;
        if (sb->has_net) {
                r = net_private_attach(&sb->net, m, pid, err);
                if (r < 0)
                        tn_err_wrap(err, "network");
        }
        /* Init gone already (it says why on the socket, read below): no go-ahead. */
        bool init_gone = r >= 0 && write_go(go[1]) < 0;
        if (r < 0 || init_gone) {
                /* Init never got its go-ahead and still holds the error pipe: it must go
                 * before that pipe can reach EOF below. */
                kill(pid, SIGKILL);
                close(go[1]);
        } else {
                sb->lifeline = go[1]; /* closed when the supervisor dies (see run_init) */
        }

        /* Until the service is exec'd, the socket says what went wrong. */
        char msg[ERRMSG_MAX + 1];
        size_t len = read_child_reports(errp[0], msg, sb, cfg->learn_answers);
        close(errp[0]);
        while (len > 0 && msg[len - 1] == '\n')
                len--;
        msg[len] = '\0';
        if (r >= 0 && len > 0)
                r = tn_err_setx(err, EINVAL, "%s", msg);
        else if (r >= 0 && init_gone)
                r = tn_err_setx(err, EPIPE,
                                "cannot start the tenant: its first process ended before "
                                "the go-ahead");
        if (r < 0) {
                kill(pid, SIGKILL);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                sb->pid = 0;
                goto fail;
        }
        *ret = sb;
        return 0;
fail:
        if (sb->has_net)
                net_private_remove(&sb->net);
        (void)tenant_cgroup_remove(sb->cgroup, NULL);
        sandbox_free(sb);
        return r;
}

int sandbox_wait(struct sandbox *sb, int *ret_status, struct tn_err **err)
{
        siginfo_t si = {0};
        for (;;) {
                if (waitid(P_PIDFD, (id_t)sb->pidfd, &si, WEXITED) == 0)
                        break;
                if (errno != EINTR)
                        return tn_err_set(err, errno, "waitid");
        }
        sb->pid = 0;
        *ret_status = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
        return 0;
}

int sandbox_signal(struct sandbox *sb, int sig)
{
        if (syscall(SYS_pidfd_send_signal, sb->pidfd, sig, NULL, 0) < 0)
                return -errno;
        return 0;
}

int sandbox_destroy(struct sandbox *sb, struct tn_err **err)
{
        if (!sb)
                return 0;
        if (sb->pid > 0) {
                /* Killing the init of a pid namespace kills every process in it. */
                (void)sandbox_signal(sb, SIGKILL);
                siginfo_t si;
                while (waitid(P_PIDFD, (id_t)sb->pidfd, &si, WEXITED) < 0 && errno == EINTR)
                        ;
        }
        if (sb->has_net)
                net_private_remove(&sb->net);
        /* The kernel tears the namespace down asynchronously: give the last processes
         * a moment to leave the cgroups. */
        int r = 0;
        for (int i = 0; i < 200; i++) {
                struct tn_err *e = NULL;
                r = tenant_cgroup_remove(sb->cgroup, &e);
                if (r >= 0) {
                        tn_err_free(e);
                        break;
                }
                if (i == 199) {
                        if (err && !*err)
                                *err = e;
                        else
                                tn_err_free(e);
                        break;
                }
                tn_err_free(e);
                usleep(5000);
        }
        sandbox_free(sb);
        return r;
}

/* ---- joining a running tenant (exec, health checks) ---- */

/* ---- exec -t: a terminal inside the tenant ---- */

static int read_winsize(int fd, struct winsize *ws)
{
        uint8_t b[4];
        size_t got = 0;
        while (got < sizeof(b)) {
                ssize_t n = read(fd, b + got, sizeof(b) - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return -1;
                got += (size_t)n;
        }
        *ws = (struct winsize){.ws_row = (unsigned short)(b[0] << 8 | b[1]),
                               .ws_col = (unsigned short)(b[2] << 8 | b[3])};
        return 0;
}

/* Opens a terminal pair in the tenant's devpts (its ptmx, never a path the tenant could
 * point elsewhere: /dev/pts/ptmx is checked to be the multiplexer, and the slave comes
 * from the master by TIOCGPTPEER, not by name), with the first window size from fd 2.
 * Returns the slave, the master in *ret_master. */
static int tty_open(int *ret_master, struct tn_err **err)
{
        int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        if (master < 0)
                return tn_err_set(err, errno, "open /dev/pts/ptmx");
        if (fstat(master, &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 5 ||
            minor(st.st_rdev) != 2) {
                close(master);
                return tn_err_setx(err, EINVAL, "/dev/pts/ptmx is not the terminal multiplexer");
        }
        int unlock = 0;
        struct winsize ws;
        if (ioctl(master, TIOCSPTLCK, &unlock) < 0 || read_winsize(2, &ws) < 0 ||
            ioctl(master, TIOCSWINSZ, &ws) < 0) {
                close(master);
                return tn_err_set(err, errno, "set up the terminal");
        }
        int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0) {
                close(master);
                return tn_err_set(err, errno, "TIOCGPTPEER");
        }
        *ret_master = master;
        return slave;
}

/* Copies what the operator types (0) to the terminal and what it shows to 1, applies
 * window sizes from 2, until the command ends; then what the terminal still holds.
 * Small buffers, one direction at a time: tenantd's pipes do the bounding. */
static void tty_relay(int master, pid_t pid)
{
        int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        char in[4096], out[4096];
        size_t in_len = 0, in_off = 0, out_len = 0, out_off = 0;
        bool in_eof = false, ws_eof = false, exited = pidfd < 0;
        fcntl(master, F_SETFL, O_NONBLOCK);
        while (!exited || out_len > out_off) {
                struct pollfd p[5] = {
                    {.fd = in_len == in_off && !in_eof ? 0 : -1, .events = POLLIN},
                    {.fd = master,
                     .events = (short)((in_len > in_off ? POLLOUT : 0) |
                                       (out_len == out_off ? POLLIN : 0))},
                    {.fd = out_len > out_off ? 1 : -1, .events = POLLOUT},
                    {.fd = ws_eof ? -1 : 2, .events = POLLIN},
                    {.fd = exited ? -1 : pidfd, .events = POLLIN},
                };
                if (poll(p, 5, -1) < 0 && errno != EINTR)
                        break;
                if (p[0].revents) {
                        ssize_t n = read(0, in, sizeof(in));
                        if (n <= 0) {
                                in_eof = true; /* the operator's end: an end-of-file key */
                                in[0] = 4;
                                n = 1;
                        }
                        in_len = (size_t)n;
                        in_off = 0;
                }
                if (in_len > in_off && (p[1].revents & POLLOUT)) {
                        ssize_t n = write(master, in + in_off, in_len - in_off);
                        if (n > 0)
                                in_off += (size_t)n;
                }
                if (out_len == out_off && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
                        ssize_t n = read(master, out, sizeof(out));
                        out_len = n > 0 ? (size_t)n : 0;
                        out_off = 0;
                        if (n <= 0 && errno != EAGAIN && exited)
                                break;
                }
                if (p[2].revents) {
                        ssize_t n = write(1, out + out_off, out_len - out_off);
                        if (n <= 0)
                                break; /* tenantd went away */
                        out_off += (size_t)n;
                }
                struct winsize ws;
                if (p[3].revents && (ws_eof = read_winsize(2, &ws) < 0) == false)
                        ioctl(master, TIOCSWINSZ, &ws);
                if (p[4].revents)
                        exited = true;
                if (exited && out_len == out_off) {
                        /* What the terminal still holds, without waiting for processes
                         * the command left behind. */
                        ssize_t n = read(master, out, sizeof(out));
                        if (n <= 0)
                                break;
                        out_len = (size_t)n;
                        out_off = 0;
                }
        }
        close(master);
}

_Noreturn void sandbox_enter_exec(const struct sandbox_config *cfg, pid_t init_pid, int init_pidfd,
                                  int err_fd)
{
        struct child_ctx c = {.cfg = cfg, .err_fd = err_fd};
        struct tn_err *e = NULL;
        /* The command's RLIMIT_NPROC is the service's: from the tenant's cgroups, which
         * this process joins below (without them: pids.max, the only bound then). */
        struct tenant_cgroup *tc = NULL;
        c.nproc = nproc_limit(cfg->m, tenant_cgroup_open(cfg->m->name, &tc, NULL) == 0 ? tc : NULL);
        tenant_cgroup_free(tc);

        /* This process is a copy of tenantd: not dumpable, so no tenant process can
         * read it once it is in the tenant's pid namespace, and it keeps only what it
         * needs (0-2, the tenant's pidfd, the error descriptor): anything else could
         * lead out of the tenant once the workdir is resolved. */
        prctl(PR_SET_DUMPABLE, 0);
        int keep[2] = {init_pidfd, err_fd};
        fd_close_all_but(keep, 2);

        /* Host root joins the tenant in the order its own init was built: the
         * cgroups first (a process cannot leave a cgroup namespace's root later), then
         * the namespaces owned by the host's user namespace, which need the host's
         * CAP_SYS_ADMIN, and only then the tenant's user namespace, after which no
         * host privilege is left to use. setns() of the mount namespace puts root and
         * working directory at the tenant's root. */
        if (cgroup_attach_like(getpid(), init_pid, &e) < 0)
                child_fail(&c, "cgroups", e);
        if (setns(init_pidfd, CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET |
                                  CLONE_NEWPID | CLONE_NEWCGROUP) < 0) {
                tn_err_set(&e, errno, "setns");
                child_fail(&c, "namespaces", e);
        }
        if (setns(init_pidfd, CLONE_NEWUSER) < 0) {
                tn_err_set(&e, errno, "setns(user)");
                child_fail(&c, "user namespace", e);
        }
        close(init_pidfd);
        /* exec -t: the terminal is allocated here, inside the tenant's mount namespace,
         * from the tenant's own devpts instance (rootfs.c mounts one per tenant), so
         * nothing of the operator's, and no terminal of the host, reaches the tenant. */
        int master = -1;
        if (cfg->tty) {
                int slave = tty_open(&master, &e);
                if (slave < 0)
                        child_fail(&c, "terminal", e);
                c.err_fd = err_fd = slave;
        }
        /* Joining a pid namespace applies to children only. */
        pid_t pid = fork();
        if (pid < 0) {
                tn_err_set(&e, errno, "fork");
                child_fail(&c, "exec", e);
        }
        if (pid == 0) {
                if (cfg->tty) {
                        for (int fd = 0; fd < 3; fd++)
                                dup2(err_fd, fd);
                        close(err_fd);
                        close(master);
                        c.err_fd = 2;
                }
                run_service(&c);
        }
        close(err_fd);
        /* This process only waits; it keeps nothing the service lacks, and its memory,
         * which came from the supervisor, is not dumpable, so no tenant process can
         * trace it. */
        prctl(PR_SET_DUMPABLE, 0);
        if (caps_apply(NULL, 0, cfg->m->uid, cfg->m->gid, NULL, 0, NULL) < 0 ||
            prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                kill(pid, SIGKILL);
                _exit(127);
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (cfg->tty)
                tty_relay(master, pid);
        int st;
        while (waitpid(pid, &st, 0) < 0) {
                if (errno != EINTR)
                        _exit(127);
        }
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}
