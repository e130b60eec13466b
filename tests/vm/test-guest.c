/* test-guest.c — a stand-in for tenant-agent, for the microVM tests only: the /init of a
 * test initramfs that plays a hostile (or a minimal) agent on the channel, so the
 * tests can check that tenantd survives what a tenant who owns its guest may send.
 *
 * The mode comes from the kernel command line, tnd_test=MODE:
 *   garbage   "ready", then binary garbage with newlines, without end
 *   bigline   "ready", then one 10 MiB line (and more, without newline, without end)
 *   badframes "ready", then one invalid JSON frame after another
 *   silent    never says anything (the host's boot timeout must fire)
 *   minimal   "ready"; answers hello, setup, start (one log line, then exit 7), signal,
 *             shutdown (powers off); anything else gets ok:false
 *
 * It loads the virtio modules it finds under /lib/modules (the test initramfs is the
 * real image with this program appended as /init, so the modules are the image's),
 * finds the port named org.tenantd.agent.0 and opens it. Static, no libc beyond the
 * basics; not part of tenantd. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *const modules[] = {"virtio_ring", "virtio", "virtio_mmio", "virtio_console"};
static char module_path[sizeof(modules) / sizeof(modules[0])][512];

static int find_module(const char *path, const struct stat *st, int type, struct FTW *f)
{
        (void)st;
        (void)f;
        if (type != FTW_F)
                return 0;
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        for (size_t i = 0; i < sizeof(modules) / sizeof(modules[0]); i++) {
                char want[64];
                snprintf(want, sizeof(want), "%s.ko", modules[i]);
                if (strcmp(base, want) == 0)
                        snprintf(module_path[i], sizeof(module_path[i]), "%s", path);
        }
        return 0;
}

/* modprobe's job, done here: "mod.key=value" words of the kernel command line are the
 * module's parameters (virtio_mmio learns its devices from them on a microvm). */
static void module_params(const char *cmdline, const char *mod, char *out, size_t size)
{
        size_t n = strlen(mod), used = 0;
        out[0] = '\0';
        for (const char *p = cmdline; *p;) {
                while (*p == ' ' || *p == '\n')
                        p++;
                size_t w = strcspn(p, " \n");
                if (w > n + 1 && strncmp(p, mod, n) == 0 && p[n] == '.' && used + w - n < size) {
                        memcpy(out + used, p + n + 1, w - n - 1);
                        used += w - n - 1;
                        out[used++] = ' ';
                        out[used] = '\0';
                }
                p += w;
        }
}

static void load_modules(const char *cmdline)
{
        nftw("/lib/modules", find_module, 16, FTW_PHYS);
        for (size_t i = 0; i < sizeof(modules) / sizeof(modules[0]); i++) {
                if (!module_path[i][0]) {
                        fprintf(stderr, "test-guest: module %s not found\n", modules[i]);
                        continue;
                }
                int fd = open(module_path[i], O_RDONLY | O_CLOEXEC);
                if (fd >= 0) {
                        char params[2048];
                        module_params(cmdline, modules[i], params, sizeof(params));
                        if (syscall(SYS_finit_module, fd, params, 0) < 0 && errno != EEXIST)
                                fprintf(stderr, "test-guest: %s: %s\n", module_path[i],
                                        strerror(errno));
                        close(fd);
                } else {
                        fprintf(stderr, "test-guest: %s: %s\n", module_path[i], strerror(errno));
                }
        }
}

static int open_port(void)
{
        for (int tries = 0; tries < 200; tries++) {
                DIR *d = opendir("/sys/class/virtio-ports");
                struct dirent *e;
                while (d && (e = readdir(d))) {
                        char path[512], name[128] = "";
                        snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", e->d_name);
                        FILE *f = fopen(path, "re");
                        if (!f)
                                continue;
                        if (!fgets(name, sizeof(name), f))
                                name[0] = '\0';
                        fclose(f);
                        name[strcspn(name, "\n")] = '\0';
                        if (strcmp(name, "org.tenantd.agent.0") == 0) {
                                snprintf(path, sizeof(path), "/dev/%s", e->d_name);
                                closedir(d);
                                return open(path, O_RDWR | O_CLOEXEC);
                        }
                }
                if (d)
                        closedir(d);
                usleep(50000);
        }
        return -1;
}

static void put(int fd, const char *s, size_t n)
{
        while (n > 0) {
                ssize_t w = write(fd, s, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0) {
                        usleep(10000);
                        continue;
                }
                s += w;
                n -= (size_t)w;
        }
}

static void say(int fd, const char *s)
{
        put(fd, s, strlen(s));
}

static _Noreturn void forever(void)
{
        for (;;)
                pause();
}

static unsigned long json_id(const char *line)
{
        const char *p = strstr(line, "\"id\":");
        return p ? strtoul(p + 5, NULL, 10) : 0;
}

static bool json_op(const char *line, const char *op)
{
        char want[64];
        snprintf(want, sizeof(want), "\"op\":\"%s\"", op);
        return strstr(line, want) != NULL;
}

static _Noreturn void minimal(int fd)
{
        static char buf[1 << 20];
        size_t len = 0;
        for (;;) {
                ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
                if (n <= 0) {
                        usleep(10000);
                        continue;
                }
                len += (size_t)n;
                char *nl;
                while ((nl = memchr(buf, '\n', len))) {
                        *nl = '\0';
                        char out[512];
                        unsigned long id = json_id(buf);
                        if (json_op(buf, "hello"))
                                snprintf(out, sizeof(out),
                                         "{\"v\":1,\"id\":%lu,\"ok\":true,\"agent\":\"test-guest "
                                         "0.1\",\"kernel\":\"test\",\"boot_ms\":1}\n",
                                         id);
                        else if (json_op(buf, "start"))
                                snprintf(out, sizeof(out),
                                         "{\"v\":1,\"id\":%lu,\"ok\":true,\"pid\":2}\n"
                                         "{\"v\":1,\"event\":\"log\",\"session\":0,\"stream\":"
                                         "\"stdout\",\"data\":\"aGVsbG8gZnJvbSB0aGUgZ3Vlc3QK\"}\n"
                                         "{\"v\":1,\"event\":\"exit\",\"session\":0,\"code\":7}\n",
                                         id);
                        else if (json_op(buf, "setup") || json_op(buf, "signal") ||
                                 json_op(buf, "shutdown"))
                                snprintf(out, sizeof(out), "{\"v\":1,\"id\":%lu,\"ok\":true}\n",
                                         id);
                        else
                                snprintf(out, sizeof(out),
                                         "{\"v\":1,\"id\":%lu,\"ok\":false,\"error\":\"unknown "
                                         "op\"}\n",
                                         id);
                        say(fd, out);
                        if (json_op(buf, "shutdown")) {
                                sync();
                                reboot(RB_POWER_OFF);
                        }
                        len -= (size_t)(nl + 1 - buf);
                        memmove(buf, nl + 1, len);
                }
                if (len == sizeof(buf) - 1)
                        len = 0;
        }
}

int main(void)
{
        mkdir("/dev", 0755);
        mkdir("/sys", 0755);
        mkdir("/proc", 0755);
        mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
        mount("sysfs", "/sys", "sysfs", 0, NULL);
        mount("proc", "/proc", "proc", 0, NULL);
        char cmdline[4096] = "";
        int c = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
        if (c >= 0) {
                ssize_t n = read(c, cmdline, sizeof(cmdline) - 1);
                cmdline[n > 0 ? n : 0] = '\0';
                close(c);
        }
        const char *mode = strstr(cmdline, "tnd_test=");
        mode = mode ? mode + 9 : "minimal";
        load_modules(cmdline);
        if (strncmp(mode, "silent", 6) == 0)
                forever();
        int fd = open_port();
        if (fd < 0) {
                fprintf(stderr, "test-guest: no agent port; cmdline: %s\n", cmdline);
                DIR *d = opendir("/sys/bus/virtio/devices");
                struct dirent *e;
                while (d && (e = readdir(d)))
                        fprintf(stderr, "test-guest: virtio device %s\n", e->d_name);
                forever();
        }
        fprintf(stderr, "test-guest: port open, mode %.16s\n", mode);
        say(fd, "{\"v\":1,\"event\":\"ready\"}\n");
        fprintf(stderr, "test-guest: ready sent\n");
        if (strncmp(mode, "garbage", 7) == 0) {
                char junk[4096];
                unsigned x = 12345;
                for (;;) {
                        for (size_t i = 0; i < sizeof(junk); i++) {
                                x = x * 1103515245 + 12345;
                                junk[i] = (char)(x >> 16);
                        }
                        put(fd, junk, sizeof(junk));
                }
        } else if (strncmp(mode, "bigline", 7) == 0) {
                static char chunk[65536];
                memset(chunk, 'A', sizeof(chunk));
                say(fd, "{\"v\":1,\"event\":\"log\",\"data\":\"");
                for (int i = 0; i < 160; i++) /* 10 MiB */
                        put(fd, chunk, sizeof(chunk));
                say(fd, "\"}\n");
                for (;;)
                        put(fd, chunk, sizeof(chunk));
        } else if (strncmp(mode, "badframes", 9) == 0) {
                for (;;)
                        say(fd, "{\"v\":1,\"event\":\"nonsense\",\"x\":[[[[[[[[[[1]]]]]]]]]]}\n");
        }
        minimal(fd);
}
