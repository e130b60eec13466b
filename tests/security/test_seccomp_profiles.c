/* test_seccomp_profiles.c — the shipped seccomp profiles, loaded for real.
 *
 * For each profile a child process sets no_new_privs, installs the compiled filter
 * with policy_bpf_load() and makes one system call with raw syscall(); the parent
 * checks the exact outcome: a return value, an errno, or death by SIGSYS. Controls
 * run the same calls without a filter where that shows the call would otherwise
 * succeed. Under `default`, /bin/sh and a python3 script (sockets, epoll, select,
 * threads, fork, mmap, subprocess) must still work. Profiles come from
 * $TENANTD_POLICY_DIR (tests/run-tests points it at the source tree's policies/). */
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "spec/policy.h"
#include "tap.h"

#define X32_SYSCALL_BIT 0x40000000L

static int pty_fd = -1; /* the slave side of a pseudo-terminal we own */

/* ---- the probes: each makes one call and returns its raw result ---- */

static long p_keyctl(void)
{
        return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
}

static long p_bpf(void)
{
        return syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, NULL, 0);
}

static long p_perf_event_open(void)
{
        return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
}

static long p_userfaultfd(void)
{
        return syscall(SYS_userfaultfd, O_CLOEXEC);
}

static long p_unshare_user(void)
{
        return syscall(SYS_unshare, CLONE_NEWUSER);
}

static long p_unshare_ns(void)
{
        return syscall(SYS_unshare, CLONE_NEWNS);
}

/* x86_64 clone(flags, stack, parent_tid, child_tid, tls): a child that exits at once. */
static long clone_flags(unsigned long flags)
{
        long r = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
        if (r == 0)
                _exit(0);
        if (r > 0)
                waitpid((pid_t)r, NULL, 0);
        return r;
}

static long p_clone_user(void)
{
        return clone_flags(CLONE_NEWUSER);
}

static long p_clone_plain(void)
{
        return clone_flags(0);
}

static long p_clone3(void)
{
        return syscall(SYS_clone3, NULL, 0);
}

static long p_io_uring_setup(void)
{
        return syscall(SYS_io_uring_setup, 1, NULL);
}

static long p_mount(void)
{
        return syscall(SYS_mount, "none", "/nonexistent-tenantd-test", "tmpfs", 0, NULL);
}

static long p_open_by_handle_at(void)
{
        return syscall(SYS_open_by_handle_at, -1, NULL, 0);
}

static long p_ptrace(void)
{
        return syscall(SYS_ptrace, PTRACE_PEEKDATA, getppid(), 0, 0);
}

static long p_tiocsti(void)
{
        char c = ' ';
        return syscall(SYS_ioctl, pty_fd, (unsigned long)TIOCSTI, &c);
}

static long p_tiocsti_high(void)
{
        char c = ' ';
        return syscall(SYS_ioctl, pty_fd, (unsigned long)TIOCSTI | (1UL << 32), &c);
}

static long p_tioclinux(void)
{
        char sub = 0;
        return syscall(SYS_ioctl, pty_fd, (unsigned long)TIOCLINUX, &sub);
}

static long p_tcgets(void)
{
        struct termios t;
        return syscall(SYS_ioctl, pty_fd, (unsigned long)TCGETS, &t);
}

static long p_init_module(void)
{
        return syscall(SYS_init_module, NULL, 0, "");
}

static long p_kexec_load(void)
{
        return syscall(SYS_kexec_load, 0, 0, NULL, 0);
}

static long p_x32_getpid(void)
{
        return syscall(X32_SYSCALL_BIT | SYS_getpid);
}

static long p_socket(int family)
{
        long fd = syscall(SYS_socket, family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd >= 0)
                close((int)fd);
        return fd;
}

static long p_socket_inet(void)
{
        return p_socket(AF_INET);
}

static long p_socket_netlink(void)
{
        return p_socket(AF_NETLINK);
}

static long p_move_pages(void)
{
        return syscall(SYS_move_pages, 0, 0, NULL, NULL, NULL, 0);
}

/* ---- running a probe in a child ---- */

enum outcome_kind {
        SUCCEEDS,   /* returns >= 0 */
        FAILS,      /* returns -1 with errno `err` */
        KILLED,     /* dies by SIGSYS */
        NOT_KILLED, /* anything but death by a signal */
};

struct outcome {
        enum outcome_kind kind;
        int err;
};

struct result {
        bool signaled;
        int sig;
        long ret;
        int err;
};

/* In the child: no core files, no_new_privs, the filter (if any), then the probe. */
static void child_run(const struct policy_bpf *b, long (*probe)(void), int wfd)
{
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        if (b && (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || policy_bpf_load(b) < 0))
                _exit(100);
        long r = probe();
        int e = errno;
        long msg[2] = {r, e};
        if (write(wfd, msg, sizeof(msg)) != sizeof(msg))
                _exit(101);
        _exit(0);
}

static bool run_probe(const struct policy_bpf *b, long (*probe)(void), struct result *res)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return false;
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
                return false;
        if (pid == 0) {
                close(p[0]);
                child_run(b, probe, p[1]);
        }
        close(p[1]);
        long msg[2] = {0, 0};
        ssize_t n = read(p[0], msg, sizeof(msg));
        close(p[0]);
        int st;
        if (waitpid(pid, &st, 0) != pid)
                return false;
        *res =
            (struct result){.signaled = WIFSIGNALED(st), .sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0};
        if (!res->signaled && (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || n != sizeof(msg)))
                return false;
        res->ret = msg[0];
        res->err = (int)msg[1];
        return true;
}

static void describe(const struct result *r, char *buf, size_t len)
{
        if (r->signaled)
                snprintf(buf, len, "killed by signal %d", r->sig);
        else if (r->ret < 0)
                snprintf(buf, len, "failed with %s", strerrorname_np(r->err));
        else
                snprintf(buf, len, "returned %ld", r->ret);
}

static void check(const char *profile, const struct policy_bpf *b, const char *what,
                  long (*probe)(void), struct outcome want)
{
        struct result r;
        if (!run_probe(b, probe, &r)) {
                ok(false, "%s: %s: the probe ran", profile, what);
                return;
        }
        char got[64];
        describe(&r, got, sizeof(got));
        bool pass = false;
        const char *expect = "";
        char buf[64];
        switch (want.kind) {
        case SUCCEEDS:
                pass = !r.signaled && r.ret >= 0;
                expect = "succeeds";
                break;
        case FAILS:
                pass = !r.signaled && r.ret == -1 && r.err == want.err;
                snprintf(buf, sizeof(buf), "fails with %s", strerrorname_np(want.err));
                expect = buf;
                break;
        case KILLED:
                pass = r.signaled && r.sig == SIGSYS;
                expect = "is killed by SIGSYS";
                break;
        case NOT_KILLED:
                pass = !r.signaled;
                expect = "is not killed";
                break;
        }
        ok(pass, "%s: %s %s", profile, what, expect);
        if (!pass)
                diag("got: %s", got);
}

#define ERR(e) ((struct outcome){FAILS, (e)})
#define OK_ ((struct outcome){SUCCEEDS, 0})
#define KILL ((struct outcome){KILLED, 0})
#define ALIVE ((struct outcome){NOT_KILLED, 0})

struct probe_case {
        const char *what;
        long (*probe)(void);
        struct outcome in_default, in_strict;
};

static const struct probe_case cases[] = {
    {"keyctl", p_keyctl, ERR(EPERM), ERR(EPERM)},
    {"bpf", p_bpf, ERR(EPERM), ERR(EPERM)},
    {"perf_event_open", p_perf_event_open, ERR(EPERM), ERR(EPERM)},
    {"userfaultfd", p_userfaultfd, ERR(EPERM), ERR(EPERM)},
    {"unshare(CLONE_NEWUSER)", p_unshare_user, ERR(EPERM), ERR(EPERM)},
    {"clone(CLONE_NEWUSER)", p_clone_user, ERR(EPERM), ERR(EPERM)},
    {"clone3", p_clone3, ERR(ENOSYS), ERR(ENOSYS)},
    {"io_uring_setup", p_io_uring_setup, ERR(ENOSYS), ERR(ENOSYS)},
    {"mount", p_mount, ERR(EPERM), ERR(EPERM)},
    {"open_by_handle_at", p_open_by_handle_at, ERR(EPERM), KILL},
    {"ptrace", p_ptrace, ERR(EPERM), ERR(EPERM)},
    {"ioctl(TIOCSTI)", p_tiocsti, ERR(EPERM), ERR(EPERM)},
    {"ioctl(TIOCSTI | 1<<32)", p_tiocsti_high, ERR(EPERM), ERR(EPERM)},
    {"ioctl(TIOCLINUX)", p_tioclinux, ERR(EPERM), ERR(EPERM)},
    {"init_module", p_init_module, KILL, KILL},
    {"kexec_load", p_kexec_load, KILL, KILL},
    {"x32 getpid (nr | 0x40000000)", p_x32_getpid, KILL, KILL},
    {"ioctl(TCGETS)", p_tcgets, OK_, OK_},
    {"clone(SIGCHLD) (a fork)", p_clone_plain, OK_, OK_},
    {"socket(AF_INET)", p_socket_inet, OK_, OK_},
    {"socket(AF_NETLINK)", p_socket_netlink, OK_, ERR(EAFNOSUPPORT)},
    {"unshare(CLONE_NEWNS)", p_unshare_ns, ALIVE, ERR(EPERM)},
    {"move_pages (not listed)", p_move_pages, ERR(EPERM), KILL},
};

/* ---- loading profiles ---- */

static struct policy_bpf *compile_profile(const char *name)
{
        _cleanup_policy_ struct policy *p = NULL;
        _cleanup_err_ struct tn_err *err = NULL;
        struct policy_bpf *b = NULL;
        int r = policy_load(name, &p, &err);
        if (r == 0)
                r = policy_compile(p, &b, &err);
        if (!ok(r == 0, "%s: loads and compiles", name))
                diag("%s", tn_err_msg(err));
        return b;
}

/* ---- exec'ing real programs under a filter ---- */

/* Runs argv under b with stdout captured into out; returns the wait status. */
static int run_program(const struct policy_bpf *b, const char *const argv[], char *out, size_t len)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                dup2(p[1], STDOUT_FILENO);
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || policy_bpf_load(b) < 0)
                        _exit(100);
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        close(p[1]);
        size_t off = 0;
        ssize_t n;
        while (off + 1 < len && (n = read(p[0], out + off, len - off - 1)) > 0)
                off += (size_t)n;
        out[off] = '\0';
        close(p[0]);
        int st = -1;
        if (pid < 0 || waitpid(pid, &st, 0) != pid)
                return -1;
        return st;
}

static const char python_script[] =
    "import mmap, os, select, socket, subprocess, threading\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
    "s.bind(('127.0.0.1', 0)); s.listen(1)\n"
    "c = socket.create_connection(s.getsockname()); a, _ = s.accept(); c.sendall(b'x')\n"
    "ep = select.epoll(); ep.register(a.fileno(), select.EPOLLIN); ev = ep.poll(2)\n"
    "r, _, _ = select.select([a], [], [], 2)\n"
    "data = a.recv(1).decode()\n"
    "m = mmap.mmap(-1, 4096); m[:2] = b'hi'\n"
    "out = []\n"
    "t = threading.Thread(target=lambda: out.append(sum(range(10)))); t.start(); t.join()\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os._exit(7)\n"
    "_, st = os.waitpid(pid, 0)\n"
    "sub = subprocess.run(['/bin/sh', '-c', 'echo sub'], capture_output=True, text=True)\n"
    "print(len(ev), len(r), data, m[:2].decode(), out[0], os.waitstatus_to_exitcode(st),\n"
    "      sub.stdout.strip())\n";

static void check_programs(const struct policy_bpf *b)
{
        char out[512];
        const char *const sh[] = {"/bin/sh", "-c", "echo ok", NULL};
        int st = run_program(b, sh, out, sizeof(out));
        ok(st == 0 && strcmp(out, "ok\n") == 0, "default: /bin/sh -c 'echo ok' works");
        if (st != 0)
                diag("status 0x%x, output \"%s\"", st, out);

        const char *py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : NULL;
        if (!py) {
                skip("default: python3 payload: /usr/bin/python3 is not installed");
                return;
        }
        const char *const argv[] = {py, "-I", "-S", "-c", python_script, NULL};
        st = run_program(b, argv, out, sizeof(out));
        ok(st == 0 && strcmp(out, "1 1 x hi 45 7 sub\n") == 0,
           "default: python3 with sockets, epoll, select, mmap, threads, fork, subprocess");
        if (st != 0 || strcmp(out, "1 1 x hi 45 7 sub\n") != 0)
                diag("status 0x%x, output \"%s\"", st, out);
}

/* ---- controls: without a filter these calls succeed, so the checks mean something ---- */

static void controls(void)
{
        check("no filter", NULL, "ioctl(TIOCSTI)", p_tiocsti, OK_);
        check("no filter", NULL, "ioctl(TIOCSTI | 1<<32) (the kernel ignores the upper half)",
              p_tiocsti_high, OK_);
        if (geteuid() == 0)
                check("no filter", NULL, "unshare(CLONE_NEWUSER)", p_unshare_user, OK_);
        else
                skip("no filter: unshare(CLONE_NEWUSER) control needs root");
        check("no filter", NULL, "move_pages", p_move_pages, OK_);
}

static int open_pty(void)
{
        int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0)
                return -1;
        const char *name = ptsname(master);
        int slave = name ? open(name, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
        /* the master stays open (leaked on purpose) so the slave keeps working */
        return slave;
}

int main(void)
{
        pty_fd = open_pty();
        if (!ok(pty_fd >= 0, "a pseudo-terminal for the ioctl probes"))
                return tap_done();
        controls();

        _cleanup_policy_bpf_ struct policy_bpf *def = compile_profile("default");
        _cleanup_policy_bpf_ struct policy_bpf *strict = compile_profile("strict");
        _cleanup_policy_bpf_ struct policy_bpf *plog = compile_profile("permissive-log");
        if (!def || !strict || !plog)
                return tap_done();

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
                check("default", def, cases[i].what, cases[i].probe, cases[i].in_default);
        check_programs(def);
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
                check("strict", strict, cases[i].what, cases[i].probe, cases[i].in_strict);

        /* permissive-log: unlisted calls go through, blocked families stay blocked */
        check("permissive-log", plog, "move_pages (not listed)", p_move_pages, OK_);
        check("permissive-log", plog, "keyctl", p_keyctl, ERR(EPERM));
        check("permissive-log", plog, "mount", p_mount, ERR(EPERM));
        check("permissive-log", plog, "ioctl(TIOCSTI | 1<<32)", p_tiocsti_high, ERR(EPERM));
        check("permissive-log", plog, "ioctl(TCGETS)", p_tcgets, OK_);
        check("permissive-log", plog, "clone(CLONE_NEWUSER)", p_clone_user, ERR(EPERM));
        check("permissive-log", plog, "init_module", p_init_module, KILL);
        return tap_done();
}
