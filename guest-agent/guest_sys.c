/* guest_sys.c — the guest system as tenant-agent sets it up (see guest_sys.h).
 *
 * The rule that shapes this file: a path that a tenant may control (anything inside a
 * share, the root share above all) is never resolved by the kernel's ordinary lookup.
 * Mount targets are walked component by component from a directory fd with openat2()
 * and RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, a missing
 * component is created with mkdirat() (which never follows a symlink in its last
 * component) and reopened the same way, and the mount is made on the resulting fd
 * through /proc/self/fd/N. A symlink anywhere on the way is an error, not a detour. */
#include "guest_sys.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <net/route.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/fileio.h"

#define SYSROOT "/sysroot"
#define MOUNTS_MAX (AGENT_MOUNTS_MAX + 8)

static void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}

static const char *root_dir = "/";
static bool setup_done, root_mounted;
/* The root of the /run tmpfs the agent mounts in a new root, which guest_give_run()
 * hands to the service's user; -1 when there is none. */
static int run_fd = -1;
static char *mounted[MOUNTS_MAX]; /* absolute paths in the agent's view, in mount order */
static size_t n_mounted;

const char *guest_root(void)
{
        return root_dir;
}

static void sleep_ms(unsigned ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

int guest_mount_early(struct tn_err **err)
{
        static const struct {
                const char *src, *target, *type;
                unsigned long flags;
                const char *data;
        } early[] = {
            {"proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL},
            {"sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL},
            {"devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755"},
            {"devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666"},
            {"tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"},
            {"tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"},
            {"tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(early); i++) {
                if (mkdir(early[i].target, 0755) < 0 && errno != EEXIST)
                        return tn_err_set(err, errno, "mkdir %s", early[i].target);
                if (mount(early[i].src, early[i].target, early[i].type, early[i].flags,
                          early[i].data) < 0 &&
                    errno != EBUSY)
                        return tn_err_set(err, errno, "mount %s on %s", early[i].type,
                                          early[i].target);
        }
        return 0;
}

int guest_load_modules(const char *list, void (*warn)(const char *msg))
{
        char buf[16384], msg[512];
        int r = (int)read_small_file(list, buf, sizeof(buf));
        if (r < 0) {
                if (r != -ENOENT) {
                        snprintf(msg, sizeof(msg), "cannot read %s: %s", list, strerror(-r));
                        warn(msg);
                }
                return 0;
        }
        int loaded = 0;
        for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                _cleanup_close_ int fd = open(line, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || syscall(SYS_finit_module, fd, "", 0) < 0) {
                        if (errno == EEXIST)
                                continue;
                        snprintf(msg, sizeof(msg), "module %s: %s", line, strerror(errno));
                        warn(msg);
                        continue;
                }
                loaded++;
        }
        return loaded;
}

static int find_port(const char *name, char *dev, size_t devlen)
{
        _cleanup_(closedirp) DIR *d = opendir("/sys/class/virtio-ports");
        if (!d)
                return -errno;
        struct dirent *de;
        while ((de = readdir(d))) {
                char path[300], text[256];
                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", de->d_name);
                if (read_small_file(path, text, sizeof(text)) <= 0)
                        continue;
                text[strcspn(text, "\n")] = '\0';
                if (strcmp(text, name) == 0) {
                        snprintf(dev, devlen, "/dev/%s", de->d_name);
                        return 0;
                }
        }
        return -ENOENT;
}

int guest_open_port(const char *name, unsigned timeout_ms, struct tn_err **err)
{
        char dev[300];
        int r = -ENOENT;
        for (unsigned waited = 0;; waited += 20) {
                r = find_port(name, dev, sizeof(dev));
                if (r == 0) {
                        int fd = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
                        if (fd >= 0)
                                return fd;
                        r = -errno;
                }
                if (waited >= timeout_ms)
                        break;
                sleep_ms(20);
        }
        return tn_err_set(err, -r, "no virtio port named %s after %u ms", name, timeout_ms);
}

/* ---- paths inside a root ---- */

static int openat2_dir(int dirfd, const char *path)
{
        struct open_how how = {
            .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
        return fd < 0 ? -errno : (int)fd;
}

int guest_resolve_dir(int root_fd, const char *path, bool create, struct tn_err **err)
{
        if (path[0] != '/')
                return tn_err_setx(err, EINVAL, "%s is not absolute", path);
        /* Walk: each step opens one component below a directory already verified, so
         * the first symlink met stops the walk (ELOOP) instead of being followed. */
        _cleanup_close_ int cur = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
        if (cur < 0)
                return tn_err_set(err, errno, "dup");
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return tn_err_setx(err, ENOMEM, "out of memory");
        for (char *save = NULL, *c = strtok_r(copy, "/", &save); c;
             c = strtok_r(NULL, "/", &save)) {
                int fd = openat2_dir(cur, c);
                if (fd == -ENOENT && create) {
                        if (mkdirat(cur, c, 0755) < 0 && errno != EEXIST)
                                return tn_err_set(err, errno, "cannot create %s (at \"%s\")", path,
                                                  c);
                        fd = openat2_dir(cur, c);
                }
                if (fd == -ELOOP)
                        return tn_err_setx(err, ELOOP,
                                           "%s: \"%s\" is a symlink; mount targets "
                                           "never follow symlinks",
                                           path, c);
                if (fd < 0)
                        return tn_err_set(err, -fd, "cannot open %s (at \"%s\")", path, c);
                closep(&cur);
                cur = fd;
        }
        /* The whole path once more from the root, as one lookup under the same rules. */
        int fd = openat2_dir(root_fd, path);
        if (fd < 0)
                return tn_err_set(err, -fd, "cannot resolve %s inside the root", path);
        return fd;
}

/* Mounts on a directory fd, and remembers the mount for guest_unmount_all(). */
static int mount_on(const char *src, int dirfd, const char *shown, const char *type,
                    unsigned long flags, const char *data, struct tn_err **err)
{
        char fdpath[64];
        snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", dirfd);
        if (mount(src, fdpath, type, flags, data) < 0)
                return tn_err_set(err, errno, "mount %s (%s) on %s", src, type ? type : "bind",
                                  shown);
        if (n_mounted < MOUNTS_MAX) {
                char *p = NULL;
                if (asprintf(&p, "%s%s", strcmp(root_dir, "/") == 0 ? "" : root_dir, shown) >= 0)
                        mounted[n_mounted++] = p;
        }
        return 0;
}

static const char *share_data(enum agent_fstype fs)
{
        /* 9p: virtio transport, the Linux dialect, 256 KiB messages, and the page cache
         * for mmap (ld.so maps executables from the root share). */
        return fs == AGENT_FS_9P ? "trans=virtio,version=9p2000.L,msize=262144,cache=mmap" : NULL;
}

static const char *share_type(enum agent_fstype fs)
{
        return fs == AGENT_FS_9P ? "9p" : "virtiofs";
}

/* /proc, /sys, /dev, /run and /tmp inside a new root, where it has (or can create)
 * the directories; a read-only root without them simply goes without. */
static int mount_system_dirs(int root_fd, struct tn_err **err)
{
        static const struct {
                const char *target, *src, *type;
                unsigned long flags;
                const char *data;
        } sys[] = {
            {"/proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL},
            {"/sys", "sysfs", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL},
            {"/dev", "/dev", NULL, MS_BIND | MS_REC, NULL},
            /* As a sandbox has them (sandbox/rootfs.c): the same sizes, flags and modes;
             * /run is given to the service's user at start (guest_give_run()). */
            {"/run", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=16m"},
            {"/tmp", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(sys); i++) {
                _cleanup_err_ struct tn_err *e = NULL;
                _cleanup_close_ int fd = guest_resolve_dir(root_fd, sys[i].target, true, &e);
                if (fd < 0) {
                        if (e && e->code == EROFS)
                                continue;
                        if (err && !*err)
                                *err = TAKE_PTR(e);
                        return fd;
                }
                int r = mount_on(sys[i].src, fd, sys[i].target, sys[i].type, sys[i].flags,
                                 sys[i].data, err);
                if (r < 0)
                        return r;
                if (strcmp(sys[i].target, "/run") == 0) {
                        closep(&run_fd);
                        run_fd = guest_resolve_dir(root_fd, "/run", false, err);
                        if (run_fd < 0)
                                return run_fd;
                }
        }
        return 0;
}

int guest_give_run(uint32_t uid, uint32_t gid)
{
        if (run_fd < 0)
                return 0;
        return fchownat(run_fd, "", uid, gid, AT_EMPTY_PATH) < 0 ? -errno : 0;
}

static int ioctl_addr(int sock, unsigned long req, const char *ifname, struct in_addr a)
{
        struct ifreq ifr = {0};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
        struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
        sin->sin_family = AF_INET;
        sin->sin_addr = a;
        return ioctl(sock, req, &ifr) < 0 ? -errno : 0;
}

static int link_up(int sock, const char *ifname)
{
        struct ifreq ifr = {0};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
        if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
                return -errno;
        ifr.ifr_flags |= IFF_UP;
        return ioctl(sock, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
}

/* The first Ethernet interface (sorted by name), waiting up to 3 s for virtio-net. */
static int find_ether(char *name, size_t len)
{
        for (int tries = 0; tries < 150; tries++) {
                struct dirent **names = NULL;
                int n = scandir("/sys/class/net", &names, NULL, alphasort);
                bool found = false;
                for (int i = 0; i < n; i++) {
                        char path[300], type[16];
                        snprintf(path, sizeof(path), "/sys/class/net/%s/type", names[i]->d_name);
                        if (!found && names[i]->d_name[0] != '.' &&
                            strlen(names[i]->d_name) < len &&
                            read_small_file(path, type, sizeof(type)) > 0 && atoi(type) == 1) {
                                memcpy(name, names[i]->d_name, strlen(names[i]->d_name) + 1);
                                found = true;
                        }
                        free(names[i]);
                }
                free(names);
                if (found)
                        return 0;
                sleep_ms(20);
        }
        return -ENODEV;
}

/* /proc/sys/net/ipv6/conf/CONF/KEY = value. */
static int ipv6_conf(const char *conf, const char *key, const char *value)
{
        char path[128];
        snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/%s", conf, key);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        return fd < 0 || write_all(fd, value, strlen(value)) < 0 ? -errno : 0;
}

/* Before the link comes up: IPv6 off when the host gives no address, else on with
 * nothing learnt from the link (no router advertisement, redirect or autoconfiguration)
 * and no DAD (the host's firewall drops DAD probes, and nothing else may hold these
 * addresses), so the link-local address works at once. The host's firewall does not
 * rely on any of this: it is what a well-behaved guest does. */
static int ipv6_prepare(const char *ifname, bool on)
{
        static const char *const off[] = {"all", "default", NULL};
        if (access("/proc/sys/net/ipv6", F_OK) < 0)
                return on ? -EAFNOSUPPORT : 0;
        if (!on) {
                int r = ipv6_conf(ifname, "disable_ipv6", "1");
                for (size_t i = 0; r == 0 && off[i]; i++)
                        r = ipv6_conf(off[i], "disable_ipv6", "1");
                return r;
        }
        static const char *const keys[][2] = {{"disable_ipv6", "0"},
                                              {"accept_ra", "0"},
                                              {"autoconf", "0"},
                                              {"accept_redirects", "0"},
                                              {"accept_dad", "0"}};
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                int r = ipv6_conf(ifname, keys[i][0], keys[i][1]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The kernel's struct in6_ifreq (linux/ipv6.h), which glibc does not declare and whose
 * header clashes with netinet/in.h. */
struct kernel_in6_ifreq {
        struct in6_addr ifr6_addr;
        uint32_t ifr6_prefixlen;
        int ifr6_ifindex;
};

/* The IPv6 address and default route, once the link is up. */
static int setup_net6(const struct agent_net *net, const char *ifname, struct tn_err **err)
{
        _cleanup_close_ int sock = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (sock < 0)
                return tn_err_set(err, errno, "net: IPv6 socket");
        int index = (int)if_nametoindex(ifname);
        if (index <= 0)
                return tn_err_set(err, errno, "net: index of %s", ifname);
        struct kernel_in6_ifreq ifr6 = {
            .ifr6_addr = net->address6, .ifr6_prefixlen = net->prefix6, .ifr6_ifindex = index};
        if (ioctl(sock, SIOCSIFADDR, &ifr6) < 0 && errno != EEXIST)
                return tn_err_set(err, errno, "net: IPv6 address on %s", ifname);
        if (!net->has_gateway6)
                return 0;
        struct in6_rtmsg rt = {.rtmsg_gateway = net->gateway6,
                               .rtmsg_flags = RTF_UP | RTF_GATEWAY,
                               .rtmsg_metric = 1,
                               .rtmsg_ifindex = index};
        if (ioctl(sock, SIOCADDRT, &rt) < 0 && errno != EEXIST)
                return tn_err_set(err, errno, "net: IPv6 default route via the gateway");
        return 0;
}

static int setup_net(const struct agent_net *net, struct tn_err **err)
{
        char ifname[IFNAMSIZ];
        if (find_ether(ifname, sizeof(ifname)) < 0)
                return tn_err_setx(err, ENODEV, "net: no Ethernet interface in the guest");
        _cleanup_close_ int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (sock < 0)
                return tn_err_set(err, errno, "net: socket");
        struct in_addr mask = {.s_addr = net->prefix ? htonl(~0u << (32 - net->prefix)) : 0};
        int r = ioctl_addr(sock, SIOCSIFADDR, ifname, net->address);
        if (r == 0)
                r = ioctl_addr(sock, SIOCSIFNETMASK, ifname, mask);
        if (r < 0)
                return tn_err_set(err, -r, "net: address on %s", ifname);
        r = ipv6_prepare(ifname, net->has_address6);
        if (r < 0)
                return tn_err_set(err, -r, "net: IPv6 settings of %s", ifname);
        r = link_up(sock, ifname);
        if (r < 0)
                return tn_err_set(err, -r, "net: %s up", ifname);
        if (net->has_gateway) {
                struct rtentry rt = {0};
                struct sockaddr_in *dst = (struct sockaddr_in *)&rt.rt_dst;
                struct sockaddr_in *gw = (struct sockaddr_in *)&rt.rt_gateway;
                struct sockaddr_in *gm = (struct sockaddr_in *)&rt.rt_genmask;
                dst->sin_family = gw->sin_family = gm->sin_family = AF_INET;
                gw->sin_addr = net->gateway;
                rt.rt_flags = RTF_UP | RTF_GATEWAY;
                if (ioctl(sock, SIOCADDRT, &rt) < 0 && errno != EEXIST)
                        return tn_err_set(err, errno, "net: default route via the gateway");
        }
        return net->has_address6 ? setup_net6(net, ifname, err) : 0;
}

/* resolv.conf: the agent's own /etc, and the new root's /etc when there is one —
 * written in place when the root is writable, else bind-mounted over the file the
 * root has. Never through a symlink. */
static int write_resolv(const struct agent_net *net, int root_fd, struct tn_err **err)
{
        char text[AGENT_DNS_MAX * 64 + 1] = "";
        size_t len = 0;
        for (size_t i = 0; i < net->n_dns; i++)
                len += (size_t)snprintf(text + len, sizeof(text) - len, "nameserver %s\n",
                                        net->dns[i]);
        _cleanup_close_ int own =
            open("/etc/resolv.conf", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (own < 0 || write_all(own, text, len) < 0)
                return tn_err_set(err, errno, "write /etc/resolv.conf");
        if (root_fd < 0)
                return 0;
        _cleanup_close_ int etc = guest_resolve_dir(root_fd, "/etc", false, err);
        if (etc < 0)
                return tn_err_wrap(err, "resolv.conf");
        _cleanup_close_ int fd =
            openat(etc, "resolv.conf", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno == ELOOP && unlinkat(etc, "resolv.conf", 0) == 0)
                fd = openat(etc, "resolv.conf", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0)
                return write_all(fd, text, len) < 0 ? tn_err_set(err, errno, "write resolv.conf")
                                                    : 0;
        if (errno != EROFS)
                return tn_err_set(err, errno, "open /etc/resolv.conf in the root");
        /* Read-only root: put the agent's file over the root's, if it has a regular one. */
        _cleanup_close_ int target = openat(etc, "resolv.conf", O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (target < 0 || fstat(target, &st) < 0 || !S_ISREG(st.st_mode))
                return tn_err_setx(err, EROFS,
                                   "the root is read-only and has no regular /etc/resolv.conf to "
                                   "mount over");
        return mount_on("/etc/resolv.conf", target, "/etc/resolv.conf", NULL, MS_BIND, NULL, err);
}

/* The directories the guest mounts on inside a new root: the system's and the
 * declared targets. True when one of them is missing, so that a read-only root needs
 * a writable skeleton to hold it. A target that cannot be opened for another reason
 * (a symlink, a file) is left to the mount itself to refuse, with its own message. */
static bool root_lacks_targets(int root_fd, const struct agent_setup *s, size_t first)
{
        static const char *const system_dirs[] = {"/proc", "/sys", "/dev", "/run", "/tmp"};
        for (size_t i = 0; i < ARRAY_SIZE(system_dirs) + s->n_mounts - first; i++) {
                const char *path = i < ARRAY_SIZE(system_dirs)
                                       ? system_dirs[i]
                                       : s->mounts[first + i - ARRAY_SIZE(system_dirs)].target;
                int fd = openat2_dir(root_fd, path);
                if (fd == -ENOENT)
                        return true;
                if (fd >= 0)
                        close(fd);
        }
        return false;
}

/* A read-only root that lacks a mount point gets a writable skeleton, as a sandbox's
 * image root does (rootfs.c) and as bubblewrap builds its roots: an overlay whose lower
 * layer is the root share as mounted on SYSROOT, stacked on the same place, with its
 * upper layer on a small tmpfs of the agent's. The missing directories are made in
 * the upper layer, never in the share (which QEMU serves read-only besides), and once
 * every mount is in place guest_setup() makes the overlay's mount read-only again. */
#define SKELETON_UPPER "/run/tnd-skeleton"
static int root_skeleton(struct tn_err **err)
{
        if (mkdir(SKELETON_UPPER, 0700) < 0 && errno != EEXIST)
                return tn_err_set(err, errno, "mkdir " SKELETON_UPPER);
        if (mount("tmpfs", SKELETON_UPPER, "tmpfs", MS_NOSUID | MS_NODEV,
                  "size=1m,nr_inodes=1024,mode=0700") < 0)
                return tn_err_set(err, errno, "mount a tmpfs on " SKELETON_UPPER);
        mounted[n_mounted++] = strdup(SKELETON_UPPER);
        if (mkdir(SKELETON_UPPER "/upper", 0755) < 0 || mkdir(SKELETON_UPPER "/work", 0700) < 0)
                return tn_err_set(err, errno, "mkdir in " SKELETON_UPPER);
        if (mount("overlay", SYSROOT, "overlay", MS_NOSUID | MS_NODEV,
                  "lowerdir=" SYSROOT ",upperdir=" SKELETON_UPPER "/upper,workdir=" SKELETON_UPPER
                  "/work") < 0)
                return tn_err_set(err, errno,
                                  "the root is read-only and lacks a mount point; the writable "
                                  "skeleton over it (overlay) failed");
        mounted[n_mounted++] = strdup(SYSROOT);
        return 0;
}

/* One mount of the setup after the root: a share (nosuid, nodev, read-only and noexec as
 * declared: the host side's own noexec does not stop this kernel from running a file it
 * has read), or a fresh tmpfs with the flags and options a sandbox gives a declared tmpfs
 * (sandbox/rootfs.c: size, mode 1777, nosuid, nodev, noexec and read-only as declared).
 * The decoder bounded every value; the size is checked once more here, where it becomes
 * a mount option. */
static int mount_declared(int base, const struct agent_mount *m, struct tn_err **err)
{
        bool tmpfs = m->fstype == AGENT_FS_TMPFS;
        if (tmpfs && (m->size < AGENT_TMPFS_SIZE_MIN || m->size > AGENT_TMPFS_SIZE_MAX))
                return tn_err_setx(err, EINVAL, "tmpfs on %s: size out of bounds", m->target);
        _cleanup_close_ int fd = guest_resolve_dir(base, m->target, true, err);
        if (fd < 0)
                return tmpfs ? tn_err_wrap(err, "tmpfs on %s", m->target)
                             : tn_err_wrap(err, "mount %s", m->tag);
        unsigned long flags =
            MS_NOSUID | MS_NODEV | (m->readonly ? MS_RDONLY : 0) | (m->noexec ? MS_NOEXEC : 0);
        if (!tmpfs)
                return mount_on(m->tag, fd, m->target, share_type(m->fstype), flags,
                                share_data(m->fstype), err);
        char data[64];
        snprintf(data, sizeof(data), "size=%llu,mode=%04o", (unsigned long long)m->size,
                 AGENT_TMPFS_MODE);
        return mount_on("tmpfs", fd, m->target, "tmpfs", flags, data, err);
}

int guest_setup(const struct agent_setup *s, struct tn_err **err)
{
        if (setup_done)
                return tn_err_setx(err, EALREADY, "setup was already applied");
        if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
                return tn_err_set(err, errno, "sethostname");

        size_t first = s->n_mounts > 0 && strcmp(s->mounts[0].target, "/") == 0 ? 1 : 0;
        bool skeleton = false;
        _cleanup_close_ int root_fd =
            root_mounted ? open(SYSROOT, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
        if (s->n_mounts > 0 && strcmp(s->mounts[0].target, "/") == 0 && !root_mounted) {
                const struct agent_mount *m = &s->mounts[0];
                if (mkdir(SYSROOT, 0755) < 0 && errno != EEXIST)
                        return tn_err_set(err, errno, "mkdir " SYSROOT);
                if (mount(m->tag, SYSROOT, share_type(m->fstype), m->readonly ? MS_RDONLY : 0,
                          share_data(m->fstype)) < 0)
                        return tn_err_set(err, errno, "mount the root share (%s, %s)", m->tag,
                                          share_type(m->fstype));
                mounted[n_mounted++] = strdup(SYSROOT);
                root_dir = SYSROOT;
                root_mounted = true;
                first = 1;
                root_fd = open(SYSROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (root_fd < 0)
                        return tn_err_set(err, errno, "open " SYSROOT);
                if (m->readonly && root_lacks_targets(root_fd, s, first)) {
                        int r = root_skeleton(err);
                        if (r < 0)
                                return r;
                        skeleton = true;
                        closep(&root_fd);
                        root_fd = open(SYSROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
                        if (root_fd < 0)
                                return tn_err_set(err, errno, "open " SYSROOT);
                }
                int r = mount_system_dirs(root_fd, err);
                if (r < 0)
                        return tn_err_wrap(err, "root share");
        }
        _cleanup_close_ int base = root_fd >= 0 ? fcntl(root_fd, F_DUPFD_CLOEXEC, 3)
                                                : open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (base < 0)
                return tn_err_set(err, errno, "open the root");
        for (size_t i = first; i < s->n_mounts; i++) {
                int r = mount_declared(base, &s->mounts[i], err);
                if (r < 0)
                        return r;
        }
        if (s->has_net) {
                int r = setup_net(&s->net, err);
                if (r < 0)
                        return r;
                r = write_resolv(&s->net, root_fd, err);
                if (r < 0)
                        return r;
        }
        /* Every mount point is made: the skeleton becomes as read-only as the root. */
        if (skeleton && mount(NULL, SYSROOT, NULL,
                              MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
                return tn_err_set(err, errno, "cannot make the root's skeleton read-only");
        /* Only a setup that succeeded is final; after a failure, what was mounted stays
         * mounted and the host may try again (or, better, shut the guest down). */
        setup_done = true;
        return 0;
}

void guest_unmount_all(void)
{
        sync();
        while (n_mounted > 0) {
                char *p = mounted[--n_mounted];
                mounted[n_mounted] = NULL;
                if (p)
                        umount2(p, MNT_DETACH);
                free(p);
        }
        sync();
}

int guest_loopback_up(void)
{
        _cleanup_close_ int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (sock < 0)
                return -errno;
        return link_up(sock, "lo");
}

/* ---- the tenant's cgroup in the guest ----
 *
 * The service and every process exec'd into the guest run in one cgroup v2 group of
 * their own, so that the guest's kernel counts what it does to the tenant's processes
 * (memory.events: oom_kill, processes killed out of memory, the guest's whole RAM
 * being the tenant's memory; pids.events: max, forks refused) and holds the manifest's
 * pids.max over them, as a sandbox's cgroup does on the host. The hierarchy is mounted
 * in the agent's own /run (a tmpfs of the initramfs, 0700), outside the root the
 * services are chrooted into. The guest's kernel is the tenant's boundary: guest root
 * can leave the group, and then only loses its own reports. */
#define CGROUP_DIR "/run/tenant-cgroup"
#define SERVICE_CG CGROUP_DIR "/tenant"

static int write_text(const char *path, const char *text, struct tn_err **err)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write_all(fd, text, strlen(text)) < 0)
                return tn_err_set(err, errno, "cannot write \"%s\" to %s", text, path);
        return 0;
}

int guest_cgroup_set_pids_max(uint32_t pids_max, struct tn_err **err)
{
        char v[16] = "max";
        if (pids_max)
                snprintf(v, sizeof(v), "%" PRIu32, pids_max);
        return write_text(SERVICE_CG "/pids.max", v, err);
}

int guest_cgroup_setup(uint32_t pids_max, int *ret_procs, int *ret_watch, struct tn_err **err)
{
        if (mkdir(CGROUP_DIR, 0700) < 0 && errno != EEXIST)
                return tn_err_set(err, errno, "mkdir " CGROUP_DIR);
        if (mount("cgroup2", CGROUP_DIR, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 &&
            errno != EBUSY)
                return tn_err_set(err, errno, "mount cgroup2 on " CGROUP_DIR);
        /* pids is needed for pids.max; memory only adds the OOM count, so a kernel
         * booted without it (cgroup_disable=memory) still runs the tenant. */
        int r = write_text(CGROUP_DIR "/cgroup.subtree_control", "+pids", err);
        if (r < 0)
                return r;
        (void)write_text(CGROUP_DIR "/cgroup.subtree_control", "+memory", NULL);
        if (mkdir(SERVICE_CG, 0755) < 0 && errno != EEXIST)
                return tn_err_set(err, errno, "mkdir " SERVICE_CG);
        if (pids_max) {
                r = guest_cgroup_set_pids_max(pids_max, err);
                if (r < 0)
                        return r;
        }
        /* Above 2: PID 1 may start without stdio, and a child's dup2()s onto 0..2 would
         * then replace it. */
        _cleanup_close_ int opened = open(SERVICE_CG "/cgroup.procs", O_WRONLY | O_CLOEXEC);
        int procs = opened < 0 ? -1 : fcntl(opened, F_DUPFD_CLOEXEC, 3);
        if (procs < 0)
                return tn_err_set(err, errno, "open " SERVICE_CG "/cgroup.procs");
        /* cgroup v2 event files say "modified" when a counter in them changes. */
        int watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (watch >= 0 && watch < 3) {
                int high = fcntl(watch, F_DUPFD_CLOEXEC, 3);
                close(watch);
                watch = high;
        }
        if (watch < 0 || inotify_add_watch(watch, SERVICE_CG "/pids.events", IN_MODIFY) < 0) {
                int saved = errno;
                close(procs);
                if (watch >= 0)
                        close(watch);
                return tn_err_set(err, saved, "inotify on " SERVICE_CG);
        }
        (void)inotify_add_watch(watch, SERVICE_CG "/memory.events", IN_MODIFY);
        *ret_procs = procs;
        *ret_watch = watch;
        return 0;
}

/* The value of `key` in a flat-keyed cgroup file ("key value" lines); 0 when absent. */
static uint64_t keyed_value(const char *path, const char *key)
{
        char text[1024];
        if (read_small_file(path, text, sizeof(text)) <= 0)
                return 0;
        size_t klen = strlen(key);
        for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save))
                if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
                        return strtoull(line + klen + 1, NULL, 10);
        return 0;
}

void guest_cgroup_counts(struct agent_limits *out)
{
        out->oom_kills = keyed_value(SERVICE_CG "/memory.events", "oom_kill");
        out->pids_max_hits = keyed_value(SERVICE_CG "/pids.events", "max");
        if (out->oom_kills > AGENT_COUNT_MAX)
                out->oom_kills = AGENT_COUNT_MAX;
        if (out->pids_max_hits > AGENT_COUNT_MAX)
                out->pids_max_hits = AGENT_COUNT_MAX;
}
