/* payload.c — a small static program the integration and security tests run inside
 * tenants (like crun's tests/init.c). One mode per run:
 *
 *   payload true | exit N | sleep SECONDS | nointr SECONDS | env | caps | fds | id | hostname
 *   payload memhog MB | forkbomb | forkhold SECONDS [spin] | cpuburn SECONDS
 *   payload open PATH | cat PATH | ls PATH | write PATH | mkdir PATH | mknod PATH
 *   payload connect HOST PORT | unix PATH | abstract NAME | packet
 *   payload kill PID | ptrace PID | tty | tiocsti | sysctl PATH VALUE
 *   payload syscall NAME       (an attack by name; see attacks[] below)
 *   payload whereami FILE MARKER | memwrite | memread | vmwrite | stall PORT SECONDS
 *   payload socket FAMILY TYPE PROTO | socketpair FAMILY TYPE | families | netlink-route
 *   payload loopback | nproc
 *   payload repeat NAME N     (the attack NAME, N times: "denied N/N EPERM T ns/call";
 *                              0 when every call failed with EPERM, for "notify" rules)
 *
 * It prints one line and exits 0 when the operation succeeded, 1 when it failed (with
 * the errno name, e.g. "fail EPERM"), 2 on bad usage. A call killed by seccomp ends
 * the process with SIGSYS, which `tenantctl run` reports as status 159.
 *
 * forkbomb forks until a fork fails, then kills its process group at once; forkhold
 * forks until a fork fails too ("held after N forks: EAGAIN"), then keeps the tenant
 * alive at its limit for SECONDS, trying one more fork every 200 ms (each refused, so
 * the limit is hit again and again while the tenant runs), and then kills its process
 * group. The children pause; with `forkhold SECONDS spin` every process forks on and
 * on without a pause (the parent too), as in a real fork bomb.
 *
 * nointr ignores SIGINT while it sleeps (for tests of repeated interrupts); cat prints
 * a whole file (up to 1 MiB); tty says whether standard input is a terminal.
 *
 * whereami reports where the process stands, for the workdir escape tests: the device
 * and inode of "." and of "/", the kernel's own getcwd() (which says "(unreachable)"
 * for a directory outside the process's root), whether "." is reachable from "/" by
 * that name, and whether it could create MARKER in "."; one line, to stdout and FILE.
 * memwrite/memread fork a child and write/read a variable of it through
 * /proc/CHILD/mem (vmwrite: process_vm_writev); "ok" only when the child saw the new
 * value (or the value was read). stall listens on 127.0.0.1:PORT and holds every
 * connection it accepts without answering, for SECONDS.
 *
 * socket and socketpair pass their numbers (decimal or 0x..., all 64 bits of FAMILY)
 * to the raw system call. families tries every address family but unix, inet, inet6
 * and netlink (0..63, four socket types each), every netlink protocol but
 * NETLINK_ROUTE (1..31), and socketpair of every family but unix: "ok" only when each
 * failed with EAFNOSUPPORT, else one line per exception. netlink-route lists the
 * interfaces (if_nameindex and getifaddrs ask the kernel over NETLINK_ROUTE); loopback
 * sends a byte over TCP on 127.0.0.1, over a unix socketpair, and opens an IPv6
 * socket. nproc prints "nproc N": the other processes of its user that /proc lists (in a
 * microVM, the tenant's processes as the guest counts them). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int result(long r, const char *what)
{
        if (r >= 0) {
                printf("ok %s\n", what);
                return 0;
        }
        printf("fail %s %s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "E?", what);
        return 1;
}

static int mode_memhog(long mb)
{
        for (long i = 0; i < mb; i++) {
                char *p = malloc(1 << 20);
                if (!p)
                        return result(-1, "malloc");
                memset(p, (int)i, 1 << 20);
        }
        printf("ok allocated %ld MB\n", mb);
        return 0;
}

static int mode_forkbomb(void)
{
        long n = 0;
        for (;;) {
                pid_t p = fork();
                if (p < 0) {
                        printf("fail %s after %ld forks\n", strerrorname_np(errno), n);
                        fflush(stdout);
                        kill(0, SIGKILL);
                        return 1;
                }
                if (p == 0) {
                        pause();
                        _exit(0);
                }
                n++;
                if (n >= 100000) {
                        printf("ok %ld forks\n", n);
                        kill(0, SIGKILL);
                        return 0;
                }
        }
}

static double mono_seconds(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A child that pauses, or with `spin` one that forks on and on itself, as every
 * process of a real fork bomb does. */
static pid_t fork_child(bool spin)
{
        pid_t p = fork();
        if (p == 0) {
                while (spin)
                        (void)fork();
                pause();
                _exit(0);
        }
        return p;
}

static int mode_forkhold(double seconds, bool spin)
{
        long n = 0, refused = 0;
        while (fork_child(spin) > 0)
                if (++n >= 100000) {
                        printf("fail no limit after %ld forks\n", n);
                        fflush(stdout);
                        kill(0, SIGKILL);
                        return 1;
                }
        printf("held after %ld forks: %s\n", n,
               strerrorname_np(errno) ? strerrorname_np(errno) : "E?");
        fflush(stdout);
        double end = mono_seconds() + seconds;
        while (mono_seconds() < end) {
                struct timespec pause_ = {.tv_nsec = 200 * 1000 * 1000};
                if (!spin)
                        nanosleep(&pause_, NULL);
                if (fork_child(spin) > 0)
                        n++;
                else
                        refused++;
        }
        printf("ok held %ld forks for %.0fs, %ld more refused\n", n, seconds, refused);
        fflush(stdout);
        kill(0, SIGKILL);
        return 0;
}

static int mode_cpuburn(double seconds)
{
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        volatile uint64_t x = 0;
        do {
                for (int i = 0; i < 1000000; i++)
                        x += (uint64_t)i;
                clock_gettime(CLOCK_MONOTONIC, &now);
        } while ((double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 <
                 seconds);
        printf("ok burned %.1fs\n", seconds);
        return 0;
}

static int mode_nproc(void)
{
        DIR *d = opendir("/proc");
        if (!d)
                return result(-1, "/proc");
        long n = 0;
        char self[32];
        snprintf(self, sizeof(self), "%d", (int)getpid());
        struct dirent *e;
        struct stat st;
        while ((e = readdir(d)))
                if (e->d_name[0] >= '1' && e->d_name[0] <= '9' && strcmp(e->d_name, self) &&
                    fstatat(dirfd(d), e->d_name, &st, 0) == 0 && st.st_uid == getuid())
                        n++;
        closedir(d);
        printf("nproc %ld\n", n);
        return 0;
}

static int mode_ls(const char *path)
{
        DIR *d = opendir(path);
        if (!d)
                return result(-1, path);
        struct dirent *e;
        while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                        printf("%s\n", e->d_name);
        closedir(d);
        return 0;
}

static int mode_open(const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return result(-1, path);
        char buf[256];
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n < 0)
                return result(-1, path);
        buf[n] = '\0';
        printf("ok %s: %.60s\n", path, strtok(buf, "\n") ? buf : "");
        return 0;
}

static int mode_cat(const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return result(-1, path);
        static char buf[1 << 20];
        size_t len = 0;
        for (;;) {
                ssize_t n = read(fd, buf + len, sizeof(buf) - len);
                if (n < 0) {
                        close(fd);
                        return result(-1, path);
                }
                if (n == 0 || (len += (size_t)n) == sizeof(buf))
                        break;
        }
        close(fd);
        fwrite(buf, 1, len, stdout);
        return 0;
}

static int mode_write(const char *path)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return result(-1, path);
        int r = (int)write(fd, "payload\n", 8);
        close(fd);
        return result(r == 8 ? 0 : -1, path);
}

static int mode_caps(void)
{
        FILE *f = fopen("/proc/self/status", "re");
        if (!f)
                return result(-1, "/proc/self/status");
        char line[256];
        while (fgets(line, sizeof(line), f))
                if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs", 10) ||
                    !strncmp(line, "Seccomp:", 8) || !strncmp(line, "Uid:", 4) ||
                    !strncmp(line, "Gid:", 4) || !strncmp(line, "Groups:", 7))
                        fputs(line, stdout);
        fclose(f);
        return 0;
}

static int mode_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return result(-1, "/proc/self/fd");
        int n = 0, self = dirfd(d);
        struct dirent *e;
        while ((e = readdir(d)))
                if (e->d_name[0] != '.' && atoi(e->d_name) != self) {
                        printf("fd %s\n", e->d_name);
                        n++;
                }
        closedir(d);
        printf("fds %d\n", n);
        return 0;
}

static int mode_connect(const char *host, int port)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
                return 2;
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return result(-1, "socket");
        return result(connect(s, (struct sockaddr *)&sa, sizeof(sa)), host);
}

static int mode_unix(const char *path, bool abstract)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        socklen_t len;
        if (abstract) {
                snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "%s", path);
                len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(path));
        } else {
                snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
                len = sizeof(sa);
        }
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return result(-1, "socket");
        return result(connect(s, (struct sockaddr *)&sa, len), path);
}

static int mode_whereami(const char *file, const char *marker)
{
        struct stat cwd = {0}, root = {0}, named;
        char line[8192], path[4096] = "";
        int n;
        /* Reported even when "." cannot be looked at: getcwd() and the marker say more. */
        bool seen = stat(".", &cwd) == 0;
        (void)stat("/", &root);
        /* The raw system call: glibc's getcwd() hides "(unreachable)" behind ENOENT. */
        long r = syscall(SYS_getcwd, path, sizeof(path) - 1);
        if (r < 0)
                snprintf(path, sizeof(path), "(error %s)",
                         strerrorname_np(errno) ? strerrorname_np(errno) : "E?");
        bool reach = seen && path[0] == '/' && stat(path, &named) == 0 &&
                     named.st_dev == cwd.st_dev && named.st_ino == cwd.st_ino;
        int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        const char *mk = fd >= 0 ? "written" : strerrorname_np(errno);
        if (fd >= 0) {
                (void)!write(fd, "escaped\n", 8);
                close(fd);
        }
        n = snprintf(line, sizeof(line), "cwd=%lu:%lu root=%lu:%lu reach=%s marker=%s getcwd=%s\n",
                     (unsigned long)cwd.st_dev, (unsigned long)cwd.st_ino,
                     (unsigned long)root.st_dev, (unsigned long)root.st_ino, reach ? "yes" : "no",
                     mk ? mk : "E?", path);
        fputs(line, stdout);
        int out = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out < 0)
                return result(-1, file);
        (void)!write(out, line, (size_t)n);
        close(out);
        return 0;
}

static volatile long mem_target = 1;

/* A child that waits, then exits 0 if mem_target was changed to 2 meanwhile. */
static int mem_child(pid_t *ret_pid, int *ret_go)
{
        int go[2];
        if (pipe(go) < 0)
                return -1;
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                char c;
                close(go[1]);
                (void)!read(go[0], &c, 1);
                _exit(mem_target == 2 ? 0 : 1);
        }
        close(go[0]);
        *ret_pid = pid;
        *ret_go = go[1];
        return 0;
}

static int mem_child_saw(pid_t pid, int go)
{
        int st;
        close(go);
        waitpid(pid, &st, 0);
        return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int mode_mem(const char *how)
{
        pid_t pid;
        int go;
        if (mem_child(&pid, &go) < 0)
                return result(-1, "fork");
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
        long two = 2, got = 0;
        long r;
        if (!strcmp(how, "vmwrite")) {
                struct iovec local = {.iov_base = &two, .iov_len = sizeof(two)};
                struct iovec remote = {.iov_base = (void *)&mem_target, .iov_len = sizeof(two)};
                r = syscall(SYS_process_vm_writev, pid, &local, 1, &remote, 1, 0);
        } else {
                bool write_it = !strcmp(how, "memwrite");
                int fd = open(path, (write_it ? O_RDWR : O_RDONLY) | O_CLOEXEC);
                if (fd < 0) {
                        int e = errno;
                        mem_child_saw(pid, go);
                        errno = e;
                        return result(-1, path);
                }
                r = write_it ? pwrite(fd, &two, sizeof(two), (off_t)(uintptr_t)&mem_target)
                             : pread(fd, &got, sizeof(got), (off_t)(uintptr_t)&mem_target);
                close(fd);
        }
        int e = errno;
        bool saw = mem_child_saw(pid, go);
        errno = e;
        if (r < 0)
                return result(-1, how);
        if (!strcmp(how, "memread"))
                return result(got == 1 ? 0 : (errno = EIO, -1), "memread");
        errno = EIO; /* written, yet the child did not see it */
        return result(saw ? 0 : -1, how);
}

static int mode_stall(int port, int seconds)
{
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 64) < 0)
                return result(-1, "listen");
        printf("ok listening on %d\n", port);
        alarm((unsigned)seconds);
        for (;;) {
                int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0 && errno != EINTR)
                        return result(-1, "accept");
                /* Never read, never answer, never close: the peer waits. */
        }
}

/* Attacks by name: each returns the raw result of one system call. */
static long attack(const char *name)
{
        if (!strcmp(name, "acct"))
                return syscall(SYS_acct, NULL);
        if (!strcmp(name, "syslog"))
                return syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
        if (!strcmp(name, "keyctl"))
                return syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0);
        if (!strcmp(name, "add_key"))
                return syscall(SYS_add_key, "user", "x", "y", 1, -3 /* session */);
        if (!strcmp(name, "bpf"))
                return syscall(SYS_bpf, 0, NULL, 0);
        if (!strcmp(name, "perf_event_open"))
                return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
        if (!strcmp(name, "userfaultfd"))
                return syscall(SYS_userfaultfd, 0);
        if (!strcmp(name, "kexec_load"))
                return syscall(SYS_kexec_load, 0, 0, NULL, 0);
        if (!strcmp(name, "init_module"))
                return syscall(SYS_init_module, NULL, 0, "");
        if (!strcmp(name, "open_by_handle_at"))
                return syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0);
        if (!strcmp(name, "mount"))
                return mount("none", "/tmp", "tmpfs", 0, NULL);
        if (!strcmp(name, "mount-cgroup"))
                return mount("cgroup", "/tmp", "cgroup", 0, "none,name=payload");
        if (!strcmp(name, "umount"))
                return umount2("/proc", MNT_DETACH);
        if (!strcmp(name, "pivot_root"))
                return syscall(SYS_pivot_root, "/tmp", "/tmp");
        if (!strcmp(name, "fsopen"))
                return syscall(SYS_fsopen, "tmpfs", 0);
        if (!strcmp(name, "open_tree"))
                return syscall(SYS_open_tree, AT_FDCWD, "/", 1 /* OPEN_TREE_CLONE */);
        if (!strcmp(name, "move_mount"))
                return syscall(SYS_move_mount, AT_FDCWD, "/tmp", AT_FDCWD, "/mnt", 0);
        if (!strcmp(name, "unshare-user"))
                return unshare(CLONE_NEWUSER);
        if (!strcmp(name, "unshare-mount"))
                return unshare(CLONE_NEWNS);
        if (!strcmp(name, "clone-user")) {
                long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
                if (pid == 0)
                        _exit(0);
                if (pid > 0)
                        waitpid((pid_t)pid, NULL, 0);
                return pid;
        }
        if (!strcmp(name, "clone3"))
                return syscall(SYS_clone3, NULL, 0);
        if (!strcmp(name, "setns"))
                return setns(open("/proc/1/ns/user", O_RDONLY), 0);
        if (!strcmp(name, "io_uring_setup"))
                return syscall(SYS_io_uring_setup, 1, NULL);
        if (!strcmp(name, "chroot"))
                return chroot("/tmp");
        if (!strcmp(name, "sethostname"))
                return sethostname("evil", 4);
        if (!strcmp(name, "setuid0"))
                return setuid(0);
        return -2;
}

/* ---- socket families (issue 10, item 8) ---- */

static int mode_socket(const char *fam, const char *type, const char *proto, bool pair)
{
        unsigned long long f = strtoull(fam, NULL, 0), t = strtoull(type, NULL, 0);
        unsigned long long p = proto ? strtoull(proto, NULL, 0) : 0;
        char what[128];
        long r;
        if (pair) {
                int sv[2];
                snprintf(what, sizeof(what), "socketpair %s %s", fam, type);
                r = syscall(SYS_socketpair, f, t, 0, sv);
        } else {
                snprintf(what, sizeof(what), "socket %s %s %s", fam, type, proto);
                r = syscall(SYS_socket, f, t, p);
        }
        return result(r, what);
}

static int mode_families(void)
{
        static const int types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET};
        int bad = 0, tried = 0;
        for (int f = 0; f < 64; f++) {
                if (f == AF_UNIX || f == AF_INET || f == AF_INET6 || f == AF_NETLINK)
                        continue;
                for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
                        tried++;
                        int s = socket(f, types[i] | SOCK_CLOEXEC, 0);
                        if (s < 0 && errno == EAFNOSUPPORT)
                                continue;
                        bad++;
                        printf("family %d type %d: %s\n", f, types[i],
                               s >= 0 ? "opened" : strerrorname_np(errno));
                        if (s >= 0)
                                close(s);
                }
                int sv[2];
                tried++;
                if (socketpair(f, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 && errno == EAFNOSUPPORT)
                        continue;
                bad++;
                printf("socketpair family %d: %s\n", f, strerrorname_np(errno));
        }
        for (int p = 1; p < 32; p++) {
                tried++;
                int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, p);
                if (s < 0 && errno == EAFNOSUPPORT)
                        continue;
                bad++;
                printf("netlink protocol %d: %s\n", p, s >= 0 ? "opened" : strerrorname_np(errno));
                if (s >= 0)
                        close(s);
        }
        if (bad)
                printf("fail families: %d of %d attempts not refused with EAFNOSUPPORT\n", bad,
                       tried);
        else
                printf("ok families: %d attempts refused with EAFNOSUPPORT\n", tried);
        return bad ? 1 : 0;
}

static int mode_netlink_route(void)
{
        struct if_nameindex *ni = if_nameindex();
        if (!ni)
                return result(-1, "if_nameindex");
        char names[256] = "";
        for (struct if_nameindex *i = ni; i->if_index; i++)
                snprintf(names + strlen(names), sizeof(names) - strlen(names), " %s", i->if_name);
        if_freenameindex(ni);
        struct ifaddrs *ifa;
        if (getifaddrs(&ifa) < 0)
                return result(-1, "getifaddrs");
        int addrs = 0;
        for (struct ifaddrs *a = ifa; a; a = a->ifa_next)
                addrs += a->ifa_addr && a->ifa_addr->sa_family == AF_INET;
        freeifaddrs(ifa);
        printf("ok netlink-route:%s (%d IPv4 addresses)\n", names, addrs);
        return 0;
}

static int mode_loopback(void)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (l < 0 || bind(l, (struct sockaddr *)&sa, len) < 0 || listen(l, 1) < 0 ||
            getsockname(l, (struct sockaddr *)&sa, &len) < 0)
                return result(-1, "AF_INET listen on 127.0.0.1");
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&sa, len) < 0)
                return result(-1, "AF_INET connect to 127.0.0.1");
        int a = accept(l, NULL, NULL);
        char b = 0;
        if (a < 0 || write(c, "x", 1) != 1 || read(a, &b, 1) != 1 || b != 'x')
                return result(-1, "AF_INET byte over 127.0.0.1");
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
            write(sv[0], "y", 1) != 1 || read(sv[1], &b, 1) != 1 || b != 'y')
                return result(-1, "AF_UNIX socketpair");
        if (socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0) < 0)
                return result(-1, "AF_INET6 socket");
        return result(0, "loopback: tcp 127.0.0.1, unix socketpair, inet6 socket");
}

/* The attack `name` n times, timed: how much a denied call costs inside the tenant. */
static int mode_repeat(const char *name, long n)
{
        if (n <= 0)
                return 2;
        long eperm = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (long i = 0; i < n; i++) {
                long r = attack(name);
                if (r == -2)
                        return 2;
                eperm += r < 0 && errno == EPERM;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
        printf("denied %ld/%ld EPERM %.0f ns/call %s\n", eperm, n, ns / (double)n, name);
        return eperm == n ? 0 : 1;
}

int main(int argc, char **argv)
{
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc < 2)
                return 2;
        const char *mode = argv[1];
        const char *a = argc > 2 ? argv[2] : NULL;
        const char *b = argc > 3 ? argv[3] : NULL;

        if (!strcmp(mode, "true"))
                return 0;
        if (!strcmp(mode, "exit") && a)
                return atoi(a);
        if (!strcmp(mode, "sleep") && a) {
                sleep((unsigned)atoi(a));
                return 0;
        }
        if (!strcmp(mode, "nointr") && a) {
                signal(SIGINT, SIG_IGN);
                sleep((unsigned)atoi(a));
                return 0;
        }
        if (!strcmp(mode, "env")) {
                for (char **e = environ; *e; e++)
                        puts(*e);
                return 0;
        }
        if (!strcmp(mode, "id")) {
                printf("uid=%d gid=%d euid=%d\n", (int)getuid(), (int)getgid(), (int)geteuid());
                return 0;
        }
        if (!strcmp(mode, "hostname")) {
                char h[256] = "";
                gethostname(h, sizeof(h) - 1);
                puts(h);
                return 0;
        }
        if (!strcmp(mode, "caps"))
                return mode_caps();
        if (!strcmp(mode, "fds"))
                return mode_fds();
        if (!strcmp(mode, "memhog") && a)
                return mode_memhog(atol(a));
        if (!strcmp(mode, "forkbomb"))
                return mode_forkbomb();
        if (!strcmp(mode, "forkhold") && a)
                return mode_forkhold(atof(a), b && !strcmp(b, "spin"));
        if (!strcmp(mode, "cpuburn") && a)
                return mode_cpuburn(atof(a));
        if (!strcmp(mode, "open") && a)
                return mode_open(a);
        if (!strcmp(mode, "cat") && a)
                return mode_cat(a);
        if (!strcmp(mode, "ls") && a)
                return mode_ls(a);
        if (!strcmp(mode, "nproc"))
                return mode_nproc();
        if (!strcmp(mode, "write") && a)
                return mode_write(a);
        if (!strcmp(mode, "mkdir") && a)
                return result(mkdir(a, 0755), a);
        if (!strcmp(mode, "creat") && a && b) {
                /* Creates a with exactly mode b (octal), in one call: no chmod after. */
                umask(0);
                return result(
                    open(a, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, (mode_t)strtoul(b, NULL, 8)),
                    a);
        }
        if (!strcmp(mode, "mknod") && a)
                return result(mknod(a, S_IFBLK | 0600, makedev(8, 0)), a);
        if (!strcmp(mode, "connect") && a && b)
                return mode_connect(a, atoi(b));
        if (!strcmp(mode, "unix") && a)
                return mode_unix(a, false);
        if (!strcmp(mode, "abstract") && a)
                return mode_unix(a, true);
        if (!strcmp(mode, "packet"))
                return result(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(0x0003)),
                              "AF_PACKET socket");
        if (!strcmp(mode, "kill") && a)
                return result(kill(atoi(a), 0), a);
        if (!strcmp(mode, "ptrace") && a)
                return result(ptrace(PTRACE_ATTACH, atoi(a), NULL, NULL), a);
        if (!strcmp(mode, "tty")) {
                errno = ENOTTY;
                return result(isatty(0) ? 0 : -1, "stdin is a terminal");
        }
        if (!strcmp(mode, "tiocsti")) {
                char c = '#';
                return result(ioctl(0, TIOCSTI, &c), "TIOCSTI");
        }
        if (!strcmp(mode, "sysctl") && a && b) {
                int fd = open(a, O_WRONLY | O_CLOEXEC);
                if (fd < 0)
                        return result(-1, a);
                return result(write(fd, b, strlen(b)), a);
        }
        if (!strcmp(mode, "whereami") && a && b)
                return mode_whereami(a, b);
        if (!strcmp(mode, "memwrite") || !strcmp(mode, "memread") || !strcmp(mode, "vmwrite"))
                return mode_mem(mode);
        if (!strcmp(mode, "stall") && a && b)
                return mode_stall(atoi(a), atoi(b));
        if (!strcmp(mode, "repeat") && a && b)
                return mode_repeat(a, strtol(b, NULL, 10));
        if (!strcmp(mode, "syscall") && a) {
                long r = attack(a);
                if (r == -2)
                        return 2;
                return result(r, a);
        }
        if (!strcmp(mode, "socket") && a && b && argc > 4)
                return mode_socket(a, b, argv[4], false);
        if (!strcmp(mode, "socketpair") && a && b)
                return mode_socket(a, b, NULL, true);
        if (!strcmp(mode, "families"))
                return mode_families();
        if (!strcmp(mode, "netlink-route"))
                return mode_netlink_route();
        if (!strcmp(mode, "loopback"))
                return mode_loopback();
        fprintf(stderr, "payload: unknown mode %s\n", mode);
        return 2;
}
