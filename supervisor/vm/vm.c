/* vm.c — see vm.h. The only file that includes <libvirt/libvirt.h>.
 *
 * Starting a tenant's VM, in order, and why:
 *  1. STATEDIR/vm/NAME is made, mode 0700 root: the agent's socket lives there, and
 *     only tenantd may connect to it (libvirt opens the socket for QEMU and hands it
 *     the descriptor, so QEMU's user needs no access to the directory).
 *  2. What the guest may see is listed (build_shares): the root (the manifest's image
 *     directory, or the host's /usr read-only for "host-system") and each declared
 *     bind mount, and nothing else. Each source must be a directory reached without a
 *     symbolic link. Read-only shares are 9p served by QEMU with `readonly`: the C
 *     virtiofsd of QEMU 7.2 has no read-only mode, so a "ro" virtiofs share would
 *     only be read-only by the guest's good will. Read-write shares are virtiofs.
 *  3. The domain XML (vm_xml.c) is handed to virDomainCreateXML: a transient domain,
 *     which libvirt forgets once it stops, so nothing is left defined on the host.
 *  4. QEMU is checked, not trusted to be configured right: it must run as a non-root
 *     user and with `-sandbox on` (qemu.conf's user and seccomp_sandbox). Otherwise
 *     the domain is destroyed and the start fails.
 *  5. Limits that cannot be given at creation here: the memory hard limit (libvirt
 *     also raises QEMU's RLIMIT_MEMLOCK to it at creation, which fails where libvirtd
 *     lacks CAP_SYS_RESOURCE; set live it does not) and the emulator threads' quota
 *     (a tight one at creation slows the boot down by seconds). */
#include "vm/vm.h"
#include "vm/qemu_proc.h"
#include "lib/clock.h"
#include "lib/fileio.h"
#include "lib/log.h"
#include "vm/vm_runner.h"

#include <fcntl.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "host/cgroup.h"
#include "host/etc_links.h"
#include "host/etc_synth.h"
#include "vm/share_check.h"
#include "storage/volume.h"
#include "lib/trust.h"
#include "vm/vm_root.h"

#define VM_LOOP_MAX_HANDLES 64
#define VM_LOOP_MAX_TIMEOUTS 64
#define QBOOT_ROM "/usr/share/qemu/qboot.rom"

/* ---- an event loop for libvirt, behind one descriptor ----
 *
 * libvirt's client side needs an event loop for keepalive and for domain events. Its
 * default implementation wants a thread that calls virEventRunDefaultImpl() forever;
 * tenantd is one epoll loop instead. So this registers its own implementation: every
 * handle libvirt adds is a duplicate of its descriptor in a private epoll set
 * (duplicates, because libvirt may watch one descriptor twice and epoll refuses the
 * same one twice), and every timeout is served by one timerfd in that set, armed at
 * the earliest deadline. The private set is itself pollable: the daemon waits on it
 * among its own descriptors and calls vm_conn_dispatch() when it is readable. Callbacks
 * run without the lock held, as they may add or remove handles; removed entries are
 * freed (their free callbacks run) at the end of a dispatch, never during one. */

struct loop_handle {
        int watch; /* 0: free slot */
        int fd, dup;
        int events; /* VIR_EVENT_HANDLE_* */
        bool in_epoll, deleted;
        virEventHandleCallback cb;
        void *opaque;
        virFreeCallback ff;
};

struct loop_timeout {
        int timer; /* 0: free slot */
        int freq;  /* ms; -1 disabled; 0 on every dispatch */
        uint64_t due_ms;
        bool deleted;
        virEventTimeoutCallback cb;
        void *opaque;
        virFreeCallback ff;
};

static struct {
        pthread_mutex_t lock;
        bool registered;
        int epfd, tfd;
        int next_id;
        struct loop_handle h[VM_LOOP_MAX_HANDLES];
        struct loop_timeout t[VM_LOOP_MAX_TIMEOUTS];
} loop = {.lock = PTHREAD_MUTEX_INITIALIZER, .epfd = -1, .tfd = -1};

static uint32_t to_epoll(int events)
{
        uint32_t e = 0;
        if (events & VIR_EVENT_HANDLE_READABLE)
                e |= EPOLLIN;
        if (events & VIR_EVENT_HANDLE_WRITABLE)
                e |= EPOLLOUT;
        return e;
}

static int from_poll(short revents)
{
        int e = 0;
        if (revents & POLLIN)
                e |= VIR_EVENT_HANDLE_READABLE;
        if (revents & POLLOUT)
                e |= VIR_EVENT_HANDLE_WRITABLE;
        if (revents & POLLERR)
                e |= VIR_EVENT_HANDLE_ERROR;
        if (revents & POLLHUP)
                e |= VIR_EVENT_HANDLE_HANGUP;
        return e;
}

/* A handle watched for nothing stays out of the set: epoll would still report its
 * hang-up and keep the daemon spinning. Called with the lock held. */
static void handle_sync(struct loop_handle *h)
{
        uint32_t want = to_epoll(h->events);
        if (want && !h->in_epoll) {
                struct epoll_event ev = {.events = want, .data.u32 = (uint32_t)h->watch};
                h->in_epoll = epoll_ctl(loop.epfd, EPOLL_CTL_ADD, h->dup, &ev) == 0;
        } else if (want) {
                struct epoll_event ev = {.events = want, .data.u32 = (uint32_t)h->watch};
                (void)epoll_ctl(loop.epfd, EPOLL_CTL_MOD, h->dup, &ev);
        } else if (h->in_epoll) {
                (void)epoll_ctl(loop.epfd, EPOLL_CTL_DEL, h->dup, NULL);
                h->in_epoll = false;
        }
}

static struct loop_handle *handle_find(int watch)
{
        for (size_t i = 0; i < VM_LOOP_MAX_HANDLES; i++)
                if (loop.h[i].watch == watch && watch > 0 && !loop.h[i].deleted)
                        return &loop.h[i];
        return NULL;
}

static struct loop_timeout *timeout_find(int timer)
{
        for (size_t i = 0; i < VM_LOOP_MAX_TIMEOUTS; i++)
                if (loop.t[i].timer == timer && timer > 0 && !loop.t[i].deleted)
                        return &loop.t[i];
        return NULL;
}

/* Arms the timerfd at the earliest enabled deadline (disarms it when there is none).
 * Called with the lock held. */
static void timers_arm(void)
{
        uint64_t due = UINT64_MAX;
        for (size_t i = 0; i < VM_LOOP_MAX_TIMEOUTS; i++)
                if (loop.t[i].timer && !loop.t[i].deleted && loop.t[i].freq >= 0 &&
                    loop.t[i].due_ms < due)
                        due = loop.t[i].due_ms;
        struct itimerspec its = {0};
        if (due != UINT64_MAX) {
                uint64_t now = mono_ms(), wait = due > now ? due - now : 0;
                its.it_value.tv_sec = (time_t)(wait / 1000);
                its.it_value.tv_nsec = (long)(wait % 1000) * 1000000L;
                if (wait == 0)
                        its.it_value.tv_nsec = 1; /* zero would disarm */
        }
        (void)timerfd_settime(loop.tfd, 0, &its, NULL);
}

static int loop_add_handle(int fd, int events, virEventHandleCallback cb, void *opaque,
                           virFreeCallback ff)
{
        pthread_mutex_lock(&loop.lock);
        int watch = -1;
        for (size_t i = 0; i < VM_LOOP_MAX_HANDLES; i++) {
                struct loop_handle *h = &loop.h[i];
                if (h->watch)
                        continue;
                int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                if (dup < 0)
                        break;
                *h = (struct loop_handle){.watch = ++loop.next_id,
                                          .fd = fd,
                                          .dup = dup,
                                          .events = events,
                                          .cb = cb,
                                          .opaque = opaque,
                                          .ff = ff};
                handle_sync(h);
                watch = h->watch;
                break;
        }
        pthread_mutex_unlock(&loop.lock);
        return watch;
}

static void loop_update_handle(int watch, int events)
{
        pthread_mutex_lock(&loop.lock);
        struct loop_handle *h = handle_find(watch);
        if (h) {
                h->events = events;
                handle_sync(h);
        }
        pthread_mutex_unlock(&loop.lock);
}

static int loop_remove_handle(int watch)
{
        pthread_mutex_lock(&loop.lock);
        struct loop_handle *h = handle_find(watch);
        if (h) {
                h->events = 0;
                handle_sync(h);
                h->deleted = true;
        }
        pthread_mutex_unlock(&loop.lock);
        return h ? 0 : -1;
}

static int loop_add_timeout(int freq, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff)
{
        pthread_mutex_lock(&loop.lock);
        int timer = -1;
        for (size_t i = 0; i < VM_LOOP_MAX_TIMEOUTS; i++) {
                struct loop_timeout *t = &loop.t[i];
                if (t->timer)
                        continue;
                *t = (struct loop_timeout){.timer = ++loop.next_id,
                                           .freq = freq,
                                           .due_ms = mono_ms() + (uint64_t)(freq > 0 ? freq : 0),
                                           .cb = cb,
                                           .opaque = opaque,
                                           .ff = ff};
                timer = t->timer;
                timers_arm();
                break;
        }
        pthread_mutex_unlock(&loop.lock);
        return timer;
}

static void loop_update_timeout(int timer, int freq)
{
        pthread_mutex_lock(&loop.lock);
        struct loop_timeout *t = timeout_find(timer);
        if (t) {
                t->freq = freq;
                t->due_ms = mono_ms() + (uint64_t)(freq > 0 ? freq : 0);
                timers_arm();
        }
        pthread_mutex_unlock(&loop.lock);
}

static int loop_remove_timeout(int timer)
{
        pthread_mutex_lock(&loop.lock);
        struct loop_timeout *t = timeout_find(timer);
        if (t) {
                t->deleted = true;
                timers_arm();
        }
        pthread_mutex_unlock(&loop.lock);
        return t ? 0 : -1;
}

/* Frees removed entries; their free callbacks run without the lock. */
static void loop_reap(void)
{
        for (;;) {
                virFreeCallback ff = NULL;
                void *opaque = NULL;
                bool found = false;
                pthread_mutex_lock(&loop.lock);
                for (size_t i = 0; i < VM_LOOP_MAX_HANDLES && !found; i++) {
                        struct loop_handle *h = &loop.h[i];
                        if (h->watch && h->deleted) {
                                close(h->dup);
                                ff = h->ff;
                                opaque = h->opaque;
                                *h = (struct loop_handle){0};
                                found = true;
                        }
                }
                for (size_t i = 0; i < VM_LOOP_MAX_TIMEOUTS && !found; i++) {
                        struct loop_timeout *t = &loop.t[i];
                        if (t->timer && t->deleted) {
                                ff = t->ff;
                                opaque = t->opaque;
                                *t = (struct loop_timeout){0};
                                found = true;
                        }
                }
                pthread_mutex_unlock(&loop.lock);
                if (!found)
                        return;
                if (ff)
                        ff(opaque);
        }
}

static void loop_dispatch(void)
{
        /* Handles: which are ready now (poll on the originals, no wait). */
        struct pollfd pfd[VM_LOOP_MAX_HANDLES];
        int watches[VM_LOOP_MAX_HANDLES];
        nfds_t n = 0;
        pthread_mutex_lock(&loop.lock);
        uint64_t expirations;
        (void)!read(loop.tfd, &expirations, sizeof(expirations));
        for (size_t i = 0; i < VM_LOOP_MAX_HANDLES; i++) {
                struct loop_handle *h = &loop.h[i];
                if (!h->watch || h->deleted || !h->events)
                        continue;
                pfd[n] = (struct pollfd){.fd = h->fd, .events = (short)to_epoll(h->events)};
                watches[n++] = h->watch;
        }
        pthread_mutex_unlock(&loop.lock);
        if (n && poll(pfd, n, 0) > 0) {
                for (nfds_t i = 0; i < n; i++) {
                        if (!pfd[i].revents)
                                continue;
                        pthread_mutex_lock(&loop.lock);
                        struct loop_handle *h = handle_find(watches[i]);
                        virEventHandleCallback cb = h ? h->cb : NULL;
                        void *opaque = h ? h->opaque : NULL;
                        int fd = h ? h->fd : -1;
                        pthread_mutex_unlock(&loop.lock);
                        if (cb)
                                cb(watches[i], fd, from_poll(pfd[i].revents), opaque);
                }
        }

        /* Timeouts that are due, each once per dispatch. */
        int due[VM_LOOP_MAX_TIMEOUTS];
        size_t nd = 0;
        uint64_t now = mono_ms();
        pthread_mutex_lock(&loop.lock);
        for (size_t i = 0; i < VM_LOOP_MAX_TIMEOUTS; i++) {
                struct loop_timeout *t = &loop.t[i];
                if (t->timer && !t->deleted && t->freq >= 0 && t->due_ms <= now) {
                        due[nd++] = t->timer;
                        t->due_ms = now + (uint64_t)t->freq;
                }
        }
        pthread_mutex_unlock(&loop.lock);
        for (size_t i = 0; i < nd; i++) {
                pthread_mutex_lock(&loop.lock);
                struct loop_timeout *t = timeout_find(due[i]);
                virEventTimeoutCallback cb = t ? t->cb : NULL;
                void *opaque = t ? t->opaque : NULL;
                pthread_mutex_unlock(&loop.lock);
                if (cb)
                        cb(due[i], opaque);
        }
        loop_reap();
        pthread_mutex_lock(&loop.lock);
        timers_arm();
        pthread_mutex_unlock(&loop.lock);
}

static int loop_register(struct tn_err **err)
{
        if (loop.registered)
                return 0;
        loop.epfd = epoll_create1(EPOLL_CLOEXEC);
        if (loop.epfd < 0)
                return tn_err_set(err, errno, "epoll_create1");
        loop.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 0};
        if (loop.tfd < 0 || epoll_ctl(loop.epfd, EPOLL_CTL_ADD, loop.tfd, &ev) < 0) {
                int e = errno;
                close(loop.epfd);
                if (loop.tfd >= 0)
                        close(loop.tfd);
                loop.epfd = loop.tfd = -1;
                return tn_err_set(err, e, "timerfd");
        }
        virEventRegisterImpl(loop_add_handle, loop_update_handle, loop_remove_handle,
                             loop_add_timeout, loop_update_timeout, loop_remove_timeout);
        loop.registered = true;
        return 0;
}

/* ---- the connection ---- */

static void tsc_window_open(void);

struct vm_conn {
        virConnectPtr conn;
        int lifecycle_id;
        vm_event_fn fn;
        void *userdata;
};

/* libvirt prints every error on stderr unless told otherwise; tenantd reports them
 * itself, once, with context. */
static void silence(void *userdata, virErrorPtr e)
{
        (void)userdata;
        (void)e;
}

static const char *libvirt_msg(void)
{
        const char *m = virGetLastErrorMessage();
        return m ? m : "unknown libvirt error";
}

static int libvirt_code(void)
{
        virErrorPtr e = virGetLastError();
        return e ? e->code : VIR_ERR_OK;
}

static const char *stopped_detail(int detail)
{
        switch (detail) {
        case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN:
                return "shutdown";
        case VIR_DOMAIN_EVENT_STOPPED_DESTROYED:
                return "destroyed";
        case VIR_DOMAIN_EVENT_STOPPED_CRASHED:
                return "crashed";
        case VIR_DOMAIN_EVENT_STOPPED_FAILED:
                return "failed";
        default:
                return "stopped";
        }
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
        (void)conn;
        struct vm_conn *c = opaque;
        const char *name = virDomainGetName(dom);
        size_t plen = strlen(VM_DOMAIN_PREFIX);
        if (!c->fn || !name || strncmp(name, VM_DOMAIN_PREFIX, plen) != 0)
                return 0;
        if (event == VIR_DOMAIN_EVENT_STARTED)
                c->fn(VM_EVENT_STARTED, name + plen, "started", c->userdata);
        else if (event == VIR_DOMAIN_EVENT_STOPPED)
                c->fn(VM_EVENT_STOPPED, name + plen, stopped_detail(detail), c->userdata);
        else if (event == VIR_DOMAIN_EVENT_CRASHED)
                c->fn(VM_EVENT_STOPPED, name + plen, "crashed", c->userdata);
        return 0;
}

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
        (void)conn;
        struct vm_conn *c = opaque;
        if (c->fn)
                c->fn(VM_EVENT_CONNECTION_LOST, NULL,
                      reason == VIR_CONNECT_CLOSE_REASON_KEEPALIVE ? "keepalive" : "closed",
                      c->userdata);
}

int vm_conn_open(const char *uri, vm_event_fn fn, void *userdata, struct vm_conn **ret,
                 struct tn_err **err)
{
        tsc_window_open(); /* host_tsc_khz */
        if (virInitialize() < 0)
                return tn_err_setx(err, EIO, "libvirt: cannot initialize");
        virSetErrorFunc(NULL, silence);
        int r = loop_register(err);
        if (r < 0)
                return r;
        struct vm_conn *c = calloc(1, sizeof(*c));
        if (!c)
                return tn_err_setx(err, ENOMEM, "out of memory");
        c->fn = fn;
        c->userdata = userdata;
        c->lifecycle_id = -1;
        uri = uri ? uri : VM_DEFAULT_URI;
        c->conn = virConnectOpen(uri);
        if (!c->conn) {
                r = tn_err_setx(err, ECONNREFUSED, "cannot connect to libvirt at %s: %s", uri,
                                libvirt_msg());
                free(c);
                return r;
        }
        /* Five seconds between probes, three unanswered: a hung libvirtd is noticed in
         * about 20 s. */
        (void)virConnectSetKeepAlive(c->conn, 5, 3);
        (void)virConnectRegisterCloseCallback(c->conn, on_close, c, NULL);
        c->lifecycle_id =
            virConnectDomainEventRegisterAny(c->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                             VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), c, NULL);
        if (c->lifecycle_id < 0) {
                r = tn_err_setx(err, EIO, "libvirt: cannot watch domain events: %s", libvirt_msg());
                vm_conn_close(c);
                return r;
        }
        *ret = c;
        return 0;
}

void vm_conn_close(struct vm_conn *c)
{
        if (!c)
                return;
        if (c->conn) {
                if (c->lifecycle_id >= 0)
                        virConnectDomainEventDeregisterAny(c->conn, c->lifecycle_id);
                virConnectUnregisterCloseCallback(c->conn, on_close);
                virConnectClose(c->conn);
        }
        /* The connection's handles are removed now; run their free callbacks. */
        loop_reap();
        free(c);
}

int vm_conn_fd(const struct vm_conn *c)
{
        (void)c;
        return loop.epfd;
}

void vm_conn_dispatch(struct vm_conn *c)
{
        (void)c;
        loop_dispatch();
}

/* ---- the host ---- */

bool vm_have_kvm(void)
{
        if (access("/dev/kvm", F_OK) < 0)
                return false;
        _cleanup_fclose_ FILE *f = fopen("/proc/cpuinfo", "re");
        char line[4096];
        while (f && fgets(line, sizeof(line), f)) {
                if (strncmp(line, "flags", 5) != 0)
                        continue;
                for (char *save = NULL, *w = strtok_r(line, " \t\n", &save); w;
                     w = strtok_r(NULL, " \t\n", &save))
                        if (strcmp(w, "vmx") == 0 || strcmp(w, "svm") == 0)
                                return true;
                return false;
        }
        return false;
}

/* Under TCG the guest's TSC is the host's (QEMU's rdtsc reads the host counter). The
 * guest kernel calibrates it against the emulated PIT, which fails whenever the host is
 * busy (the vcpu thread is descheduled during the window), and then hangs before /init.
 * Telling the guest the rate (tsc_early_khz) skips that calibration; tsc=reliable keeps
 * the clocksource watchdog, which is as unreliable under TCG, from discarding it. The
 * rate is measured against CLOCK_MONOTONIC_RAW over at least TSC_WINDOW_MS, within a
 * fraction of a percent. The window opens when the libvirt connection does
 * (tsc_window_open) and closes when the domain's XML is written: the connection's
 * handshake and the share checks run in it instead of a sleep of its own, which is
 * only what is missing of the 20 ms. 0 when unknown. */
#define TSC_WINDOW_MS 20
static struct {
        bool open;
        struct timespec t;
        uint64_t c;
} tsc_window;

static void tsc_window_open(void)
{
#if defined(__x86_64__) || defined(__i386__)
        clock_gettime(CLOCK_MONOTONIC_RAW, &tsc_window.t);
        tsc_window.c = __builtin_ia32_rdtsc();
        tsc_window.open = true;
#endif
}

static int64_t ns_since(const struct timespec *a)
{
        struct timespec b;
        clock_gettime(CLOCK_MONOTONIC_RAW, &b);
        return (b.tv_sec - a->tv_sec) * 1000000000LL + (b.tv_nsec - a->tv_nsec);
}

static unsigned long host_tsc_khz(void)
{
#if defined(__x86_64__) || defined(__i386__)
        if (!tsc_window.open)
                tsc_window_open();
        int64_t left = TSC_WINDOW_MS * 1000000LL - ns_since(&tsc_window.t);
        if (left > 0) {
                struct timespec nap = {0, (long)left};
                nanosleep(&nap, NULL);
        }
        uint64_t c1 = __builtin_ia32_rdtsc();
        int64_t ns = ns_since(&tsc_window.t);
        uint64_t c0 = tsc_window.c;
        tsc_window.open = false; /* the next start measures afresh */
        if (ns <= 0 || c1 <= c0)
                return 0;
        return (unsigned long)((c1 - c0) * 1000000ULL / (uint64_t)ns);
#else
        return 0;
#endif
}

/* Creates the domain from spec. Whether QEMU offers the microvm machine is learned by
 * trying: asking libvirt beforehand (virConnectGetCapabilities) costs a probe of every
 * QEMU binary where libvirt's capability cache does not hold (seconds on hosts where
 * /dev/kvm exists but QEMU's user cannot open it). A refused microvm falls back to
 * q35 with qboot, which boots as fast but emulates a PCI bus. */
static virDomainPtr create_domain(virConnectPtr conn, struct vm_domain_spec *spec, bool autodestroy,
                                  uint64_t *ret_xml_ms, struct tn_err **err)
{
        for (;;) {
                _cleanup_free_ char *xml = NULL;
                if (vm_domain_xml(spec, &xml, err) < 0)
                        return NULL;
                *ret_xml_ms = mono_ms();
                virDomainPtr dom = virDomainCreateXML(
                    conn, xml, autodestroy ? VIR_DOMAIN_START_AUTODESTROY : VIR_DOMAIN_NONE);
                if (dom)
                        return dom;
                int code = libvirt_code();
                const char *msg = libvirt_msg();
                if (spec->microvm && code == VIR_ERR_CONFIG_UNSUPPORTED && strstr(msg, "microvm") &&
                    access(QBOOT_ROM, R_OK) == 0) {
                        spec->microvm = false;
                        continue;
                }
                if (code == VIR_ERR_DOM_EXIST || strstr(msg, "already exists"))
                        tn_err_setx(err, EEXIST, "domain %s: %s", spec->domain_name, msg);
                else
                        tn_err_setx(err, EIO, "cannot start domain %s: %s", spec->domain_name, msg);
                return NULL;
        }
}

/* ---- shares ---- */

/* A share's source: an existing directory whose path holds no symbolic link, so the
 * path libvirt and virtiofsd resolve later is the one the manifest named, and which is
 * none of tenantd's own directories nor, read-write, a host path the host's root trusts
 * (share_check.h). Opened without following any link, and checked by what was opened:
 * tenantd-virtiofsd opens it the same way again, so a component swapped for a link in
 * between is refused there (virtiofsd_wrap.c). */
static int check_source(const char *path, bool readonly, const char *state_dir, const char *what,
                        struct tn_err **err)
{
        char real[PATH_MAX];
        if (!realpath(path, real))
                return tn_err_set(err, errno, "%s: %s", what, path);
        if (strcmp(real, path) != 0)
                return tn_err_setx(err, ELOOP,
                                   "%s: %s leads through a symbolic link (to %s); name the real "
                                   "path",
                                   what, path, real);
        struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                               .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
        _cleanup_close_ int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
        if (fd < 0)
                return tn_err_set(err, errno, "%s: %s", what, path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return tn_err_set(err, errno, "%s: %s", what, path);
        if (!S_ISDIR(st.st_mode))
                return tn_err_setx(err, ENOTDIR,
                                   "%s: %s is not a directory (a microVM shares directories only)",
                                   what, path);
        const struct tenantd_dirs dirs = {.state_dir = state_dir};
        return share_check_fd(fd, readonly, &dirs, what, err);
}

static int add_share(struct vm *vm, const char *tag, const char *source, const char *target,
                     bool readonly, bool noexec, const char *state_dir, const char *what,
                     struct tn_err **err)
{
        if (vm->n_shares >= VM_SHARES_MAX)
                return tn_err_setx(err, E2BIG, "too many shares");
        int r = check_source(source, readonly, state_dir, what, err);
        /* A read-only share is 9p, served by QEMU as its own user, who must reach it. */
        if (r >= 0 && readonly)
                r = share_check_reach(source, SHARE_QEMU_USER, what, err);
        if (r < 0)
                return r;
        struct vm_share *s = &vm->shares[vm->n_shares];
        if (snprintf(s->tag, sizeof(s->tag), "%s", tag) >= (int)sizeof(s->tag))
                return tn_err_setx(err, ENAMETOOLONG, "share tag %s too long", tag);
        s->source = source;
        s->target = target;
        s->readonly = readonly;
        s->noexec = noexec;
        s->fs = readonly ? VM_FS_9P : VM_FS_VIRTIOFS;
        vm->n_shares++;
        return 0;
}

/* tenantd's own read-only shares of a host-system root: the skeleton (under tenantd's
 * VM_ROOT_DIR) and the host's /usr, which no manifest could name. */
static int add_share_trusted(struct vm *vm, const char *tag, const char *source, const char *target,
                             struct tn_err **err)
{
        if (vm->n_shares >= VM_SHARES_MAX)
                return tn_err_setx(err, E2BIG, "too many shares");
        struct vm_share *s = &vm->shares[vm->n_shares++];
        if (snprintf(s->tag, sizeof(s->tag), "%s", tag) >= (int)sizeof(s->tag))
                return tn_err_setx(err, ENAMETOOLONG, "share tag %s too long", tag);
        s->source = source;
        s->target = target;
        s->readonly = true;
        s->fs = VM_FS_9P;
        return 0;
}

/* The host-system skeleton (vm_root.h), with the /etc entries /usr's links lead to from
 * the index in the state directory (host/etc_links.h), as a sandbox's; what either
 * leaves out is said, as a sandbox says it. */
static int skeleton(struct vm *vm, const struct manifest *m, const char *state_dir,
                    struct tn_err **err)
{
        struct etc_links links = {0};
        _cleanup_err_ struct tn_err *lerr = NULL;
        char *warnings = NULL;
        size_t wlen = 0;
        FILE *warn = open_memstream(&warnings, &wlen);
        if (!warn)
                return tn_err_setx(err, ENOMEM, "out of memory");
        if (etc_links_load(state_dir, "/", ETC_LINKS_CACHED, &links, warn, &lerr) < 0)
                fprintf(warn, "/etc: %s: links from /usr into /etc dangle\n", tn_err_msg(lerr));
        size_t left_out = 0;
        int r = vm_root_skeleton(m, &links, vm->root_dir, &left_out, err);
        etc_links_clear(&links);
        if (r >= 0 && left_out)
                fprintf(warn,
                        "/etc: %zu entries that /usr links to are left out (over %u bytes, "
                        "%d directories or %d entries in all)\n",
                        left_out, ETC_LINKED_BYTES, ETC_LINKED_TREES, ETC_LINKED_INODES);
        fclose(warn);
        for (char *save = NULL, *line = strtok_r(warnings, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save))
                log_warning("warning: %s", line);
        free(warnings);
        return r;
}

static int build_shares(struct vm *vm, const struct manifest *m, const char *state_dir,
                        struct tn_err **err)
{
        int r;
        if (m->root.kind == ROOT_PATH) {
                r = add_share(vm, "root", m->root.path, "/", m->root.readonly, false, state_dir,
                              "root.path", err);
        } else {
                /* QEMU (unprivileged) serves these 9p shares: the skeleton's directory
                 * must be reachable by it, hence not under the 0700 state directory. */
                if (mkdir(VM_ROOT_DIR, 0755) < 0 && errno != EEXIST)
                        return tn_err_set(err, errno, "cannot create %s", VM_ROOT_DIR);
                r = skeleton(vm, m, state_dir, err);
                if (r < 0)
                        return tn_err_wrap(err, "root");
                vm->has_skeleton = true;
                r = add_share_trusted(vm, "root", vm->root_dir, "/", err);
                if (r >= 0)
                        r = add_share_trusted(vm, "usr", "/usr", "/usr", err);
        }
        for (size_t i = 0; r >= 0 && i < m->mounts_n; i++) {
                const struct mount_spec *ms = &m->mounts[i];
                if (ms->type != MOUNT_BIND)
                        continue; /* tmpfs: the agent's business, nothing of the host */
                char tag[24], what[48];
                snprintf(tag, sizeof(tag), "m%zu", i);
                snprintf(what, sizeof(what), "mounts[%zu].source", i);
                r = add_share(vm, tag, ms->source, ms->target, ms->readonly, ms->noexec, state_dir,
                              what, err);
        }
        /* Volumes: mounted by the runner on the host (storage/volume.h) in a place of
         * root's alone, which no manifest may name; served read-write through
         * tenantd-virtiofsd like a read-write mount (nosuid, nodev, noexec on its side,
         * no setuid bits or device nodes written); the guest mounts it noexec as well when
         * the volume says so, since the host side's noexec binds only the host. */
        for (size_t i = 0; r >= 0 && i < m->volumes_n; i++) {
                const struct volume_spec *vs = &m->volumes[i];
                struct volume_host v;
                r = volume_paths("", m->name, vs->name, &v, err);
                if (r < 0)
                        break;
                if (vm->n_shares >= VM_SHARES_MAX)
                        return tn_err_setx(err, E2BIG, "too many shares");
                snprintf(vm->volume_mounts[i], sizeof(vm->volume_mounts[i]), "%s", v.data);
                struct vm_share *s = &vm->shares[vm->n_shares++];
                snprintf(s->tag, sizeof(s->tag), "v%u", (unsigned)(i % MANIFEST_MAX_VOLUMES));
                s->source = vm->volume_mounts[i];
                s->target = vs->target;
                s->readonly = false;
                s->noexec = vs->noexec;
                s->fs = VM_FS_VIRTIOFS;
        }
        return r;
}

/* What libvirt runs for a read-write share instead of virtiofsd: tenantd-virtiofsd
 * beside the running program (the build tree), else in TENANTD_LIBEXECDIR; only a file
 * that root alone can change (tenantd_helper_find, vm_runner.h). */
static int find_virtiofsd_wrapper(char out[PATH_MAX], struct tn_err **err)
{
        return tenantd_helper_find("tenantd-virtiofsd", out, err);
}

/* ---- QEMU, checked ---- */

static int set_limits(virDomainPtr dom, const struct manifest *m, struct tn_err **err)
{
        if (m->memory.max != MANIFEST_UNLIMITED) {
                virTypedParameter p[2] = {0};
                snprintf(p[0].field, sizeof(p[0].field), "%s", VIR_DOMAIN_MEMORY_HARD_LIMIT);
                p[0].type = VIR_TYPED_PARAM_ULLONG;
                p[0].value.ul = m->memory.max / 1024;
                if (virDomainSetMemoryParameters(dom, p, 1, VIR_DOMAIN_AFFECT_LIVE) < 0)
                        return tn_err_setx(err, EIO, "cannot set the memory limit: %s",
                                           libvirt_msg());
                /* memory + swap, where the host accounts swap; skipped where it does not
                 * (as cgroup.c does for sandboxes). */
                if (m->memory.swap != MANIFEST_UNLIMITED) {
                        snprintf(p[1].field, sizeof(p[1].field), "%s",
                                 VIR_DOMAIN_MEMORY_SWAP_HARD_LIMIT);
                        p[1].type = VIR_TYPED_PARAM_ULLONG;
                        p[1].value.ul = (m->memory.max + m->memory.swap) / 1024;
                        (void)virDomainSetMemoryParameters(dom, &p[1], 1, VIR_DOMAIN_AFFECT_LIVE);
                }
        }
        /* The emulator threads (QEMU's main loop, device emulation) get at most half of
         * cpu.max, and no less than a tenth of a CPU: a guest that keeps its devices busy
         * cannot take the vcpus' whole share. The global quota still bounds the sum. */
        if (m->cpu.max_millicpus) {
                uint64_t q = (uint64_t)m->cpu.max_millicpus * VM_CPU_PERIOD_US / 2000;
                if (q < VM_CPU_PERIOD_US / 10)
                        q = VM_CPU_PERIOD_US / 10;
                virTypedParameter p[2] = {0};
                snprintf(p[0].field, sizeof(p[0].field), "%s",
                         VIR_DOMAIN_SCHEDULER_EMULATOR_PERIOD);
                p[0].type = VIR_TYPED_PARAM_ULLONG;
                p[0].value.ul = VM_CPU_PERIOD_US;
                snprintf(p[1].field, sizeof(p[1].field), "%s", VIR_DOMAIN_SCHEDULER_EMULATOR_QUOTA);
                p[1].type = VIR_TYPED_PARAM_LLONG;
                p[1].value.l = (long long)q;
                if (virDomainSetSchedulerParametersFlags(dom, p, 2, VIR_DOMAIN_AFFECT_LIVE) < 0)
                        return tn_err_setx(err, EIO, "cannot set the emulator CPU quota: %s",
                                           libvirt_msg());
        }
        return 0;
}

/* ---- the VM ---- */

/* ---- the tenant's cgroups ---- */

/* libvirt starts QEMU, and tenantd-virtiofsd for each read-write share, as children of
 * libvirtd, in cgroups of libvirt's own making. So that cpu.max, memory.max,
 * memory.high, pids.max, usage sampling, alerts, `top`, `status` and `set` mean for a
 * microVM what they mean for a sandbox, the runner moves QEMU (every thread) and
 * every virtiofsd of the domain into the tenant's own cgroups, created as
 * for a sandbox (OWN/tenantd/NAME, below the runner's own, which is tenantd's or
 * tenantctl run's), right after the start, and writes the manifest's limits there.
 * Only the controllers tenantd uses are moved: QEMU stays in libvirt's devices cgroup.
 * What QEMU allocated before the move stays charged to libvirt's cgroup (cgroup v1
 * moves no charges), still under libvirt's memory hard limit; the guest's memory is
 * touched after it. */
static void limits_of(const struct manifest *m, struct tenant_limits *l)
{
        *l = (struct tenant_limits){.cpu_millicpus = m->cpu.max_millicpus,
                                    .cpu_weight = m->cpu.weight,
                                    .memory_max = m->memory.max,
                                    .memory_high = m->memory.high,
                                    .swap_max = m->memory.swap,
                                    .pids_max = m->pids.max};
}

/* The pids of the domain's virtiofsd processes, from libvirt's pid files in
 * VM_QEMU_STATE_DIR: ID-SHORTNAME-ALIAS-fs.pid (libvirt 9.0, Debian 12) or
 * ID-SHORTNAME-ALIAS-virtiofsd.pid (later ones), ID being the running domain's. */
static size_t virtiofsd_pids(virDomainPtr dom, pid_t *pids, size_t max)
{
        unsigned id = virDomainGetID(dom);
        if (id == (unsigned)-1)
                return 0;
        static const char *const suffixes[] = {"fs", "virtiofsd"};
        size_t n = 0;
        for (size_t k = 0; k < ARRAY_SIZE(suffixes); k++) {
                char pattern[128];
                snprintf(pattern, sizeof(pattern), VM_QEMU_STATE_DIR "/%u-*-%s.pid", id,
                         suffixes[k]);
                glob_t g;
                if (glob(pattern, GLOB_NOSORT, NULL, &g) != 0)
                        continue;
                for (size_t i = 0; i < g.gl_pathc && n < max; i++) {
                        char buf[32];
                        if (read_small_file(g.gl_pathv[i], buf, sizeof(buf)) <= 0)
                                continue;
                        long pid = strtol(buf, NULL, 10);
                        if (pid > 1 && pid <= INT_MAX)
                                pids[n++] = (pid_t)pid;
                }
                globfree(&g);
        }
        return n;
}

static int join_tenant_cgroup(struct vm *vm, const struct manifest *m, struct tn_err **err)
{
        _cleanup_(tenant_cgroup_freep) struct tenant_cgroup *cg = NULL;
        int r = tenant_cgroup_create(m->name, &cg, err);
        if (r < 0)
                return tn_err_wrap(err, "the tenant's cgroups");
        struct tenant_limits l;
        limits_of(m, &l);
        r = tenant_cgroup_set_limits(cg, &l, err);
        if (r >= 0)
                r = volumes_set_io(m, cg, err);
        if (r >= 0)
                r = tenant_cgroup_attach_process(cg, vm->qemu_pid, err);
        /* Each virtiofsd and its children: QEMU's C virtiofsd serves from a child it
         * forks into its own namespaces, which moving the parent would leave behind. */
        pid_t pids[VM_SHARES_MAX];
        size_t n = virtiofsd_pids(vm->dom, pids, ARRAY_SIZE(pids));
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = tenant_cgroup_attach_process(cg, pids[i], err);
                pid_t kids[8];
                size_t k = proc_children(pids[i], kids, ARRAY_SIZE(kids));
                for (size_t j = 0; r >= 0 && j < k; j++)
                        r = tenant_cgroup_attach_process(cg, kids[j], err);
        }
        if (r < 0)
                return tn_err_wrap(err, "QEMU into the tenant's cgroups");
        vm->has_cgroup = true;
        return 0;
}

/* Removes the tenant's cgroups once QEMU and its helpers have left them (they exit
 * with the domain; give them a few seconds). */
static void remove_tenant_cgroup(const char *name)
{
        _cleanup_(tenant_cgroup_freep) struct tenant_cgroup *cg = NULL;
        if (tenant_cgroup_open(name, &cg, NULL) < 0)
                return;
        for (int i = 0; i < 60; i++) {
                if (tenant_cgroup_remove(cg, NULL) == 0)
                        return;
                struct timespec ts = {.tv_nsec = 50 * 1000000L};
                nanosleep(&ts, NULL);
        }
}

static struct vm *vm_new(const char *name, const char *state_dir, struct tn_err **err)
{
        struct vm *vm = calloc(1, sizeof(*vm));
        if (!vm) {
                tn_err_setx(err, ENOMEM, "out of memory");
                return NULL;
        }
        snprintf(vm->name, sizeof(vm->name), "%s", name);
        snprintf(vm->domain, sizeof(vm->domain), VM_DOMAIN_PREFIX "%s", name);
        int n = snprintf(vm->dir, sizeof(vm->dir), "%s/vm/%s", state_dir, name);
        if (n < 0 || (size_t)n >= sizeof(vm->dir)) {
                free(vm);
                tn_err_setx(err, ENAMETOOLONG, "state directory path too long");
                return NULL;
        }
        snprintf(vm->agent_socket, sizeof(vm->agent_socket), "%s/agent.sock", vm->dir);
        snprintf(vm->console_log, sizeof(vm->console_log), "%s/console.log", vm->dir);
        snprintf(vm->root_dir, sizeof(vm->root_dir), VM_ROOT_DIR "/%s", name);
        /* A unix socket's path has room for 107 bytes. */
        if (strlen(vm->agent_socket) >= 108) {
                tn_err_setx(err, ENAMETOOLONG, "%s: path too long for a unix socket",
                            vm->agent_socket);
                free(vm);
                return NULL;
        }
        return vm;
}

/* STATEDIR/vm/NAME, 0700 root. A leftover socket from an earlier run goes: libvirt
 * refuses to bind over it. */
static int make_dir(struct vm *vm, const char *state_dir, struct tn_err **err)
{
        char path[4096];
        snprintf(path, sizeof(path), "%s/vm", state_dir);
        if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
                return tn_err_set(err, errno, "cannot create %s", state_dir);
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return tn_err_set(err, errno, "cannot create %s", path);
        if (mkdir(vm->dir, 0700) < 0 && errno != EEXIST)
                return tn_err_set(err, errno, "cannot create %s", vm->dir);
        struct stat st;
        if (lstat(vm->dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
                return tn_err_setx(err, EPERM, "%s is not a directory of tenantd's", vm->dir);
        if ((st.st_mode & 07777) != 0700 && chmod(vm->dir, 0700) < 0)
                return tn_err_set(err, errno, "chmod %s", vm->dir);
        if (unlink(vm->agent_socket) < 0 && errno != ENOENT)
                return tn_err_set(err, errno, "cannot remove %s", vm->agent_socket);
        return 0;
}

static int image_path(const char *given, const char *dir, const char *file, char *out, size_t size,
                      const char *what, struct tn_err **err)
{
        if (given)
                snprintf(out, size, "%s", given);
        else
                snprintf(out, size, "%s/%s", dir, file);
        if (access(out, R_OK) < 0)
                return tn_err_set(err, errno, "%s %s%s", what, out,
                                  given ? "" : " (build it with `make vm-image`)");
        return 0;
}

static int start(struct vm_conn *c, const struct vm_config *cfg, struct vm *vm,
                 struct tn_err **err);

int vm_start(struct vm_conn *c, const struct vm_config *cfg, struct vm **ret, struct tn_err **err)
{
        _cleanup_(vm_freep) struct vm *vm = vm_new(cfg->m->name, cfg->state_dir, err);
        if (!vm)
                return -ENOMEM;
        int r = start(c, cfg, vm, err);
        if (r < 0) {
                /* Nothing of a start that failed stays behind: the root skeleton and the
                 * state directory go (the domain, if any, was destroyed). */
                vm_remove_files(vm);
                return r;
        }
        *ret = TAKE_PTR(vm);
        return 0;
}

static int start(struct vm_conn *c, const struct vm_config *cfg, struct vm *vm, struct tn_err **err)
{
        const struct manifest *m = cfg->m;
        vm->times.begin = mono_ms();
        int r = make_dir(vm, cfg->state_dir, err);
        if (r < 0)
                return r;
        vm->has_dir = true;
        r = build_shares(vm, m, cfg->state_dir, err);
        if (r < 0)
                return r;
        char wrapper[PATH_MAX] = "";
        for (size_t i = 0; i < vm->n_shares && !wrapper[0]; i++)
                if (vm->shares[i].fs == VM_FS_VIRTIOFS && find_virtiofsd_wrapper(wrapper, err) < 0)
                        return -ENOENT;
        vm->times.shares = mono_ms();
        char kernel[4096], initrd[4096];
        r = image_path(m->vm.kernel, cfg->image_dir, "vmlinuz", kernel, sizeof(kernel), "vm.kernel",
                       err);
        if (r >= 0)
                r = image_path(m->vm.initrd, cfg->image_dir, "initramfs.img", initrd,
                               sizeof(initrd), "vm.initrd", err);
        if (r < 0)
                return r;
        vm->kvm = vm_have_kvm();
        char tsc[64] = "";
        unsigned long khz = vm->kvm ? 0 : host_tsc_khz();
        if (khz)
                snprintf(tsc, sizeof(tsc), " tsc_early_khz=%lu tsc=reliable", khz);
        vm->times.tsc = mono_ms();
        _cleanup_free_ char *cmdline = NULL;
        if (asprintf(&cmdline, "%s%s%s%s", VM_CMDLINE_BASE, tsc, m->vm.cmdline ? " " : "",
                     m->vm.cmdline ? m->vm.cmdline : "") < 0)
                return tn_err_setx(err, ENOMEM, "out of memory");

        struct vm_domain_spec spec = {
            .domain_name = vm->domain,
            .kvm = vm->kvm,
            .microvm = true,
            .qboot_rom = QBOOT_ROM,
            .vcpus = m->vm.vcpus,
            .memory = m->vm.memory,
            .kernel = kernel,
            .initrd = initrd,
            .cmdline = cmdline,
            .cpu_millicpus = m->cpu.max_millicpus,
            .cpu_weight = m->cpu.weight,
            .console_log = vm->console_log,
            .agent_socket = vm->agent_socket,
            .shares = vm->shares,
            .n_shares = vm->n_shares,
            .virtiofsd = wrapper[0] ? wrapper : NULL,
            .tap = cfg->net ? cfg->net->host_if : NULL,
            .mac = cfg->net ? cfg->net->mac : NULL,
        };
        virDomainPtr dom = create_domain(c->conn, &spec, cfg->autodestroy, &vm->times.xml, err);
        if (!dom)
                return -EIO;
        vm->times.created = mono_ms();
        vm->microvm = spec.microvm;
        vm->dom = dom;
        vm->qemu_pid = qemu_proc_pid(vm->domain);
        if (vm->qemu_pid <= 0)
                r = tn_err_setx(err, ESRCH, "cannot find QEMU's pid in %s/%s.pid",
                                VM_QEMU_STATE_DIR, vm->domain);
        if (r >= 0) {
                vm->times.qemu_exec = qemu_proc_started_ms(vm->qemu_pid);
                r = qemu_proc_check(vm->qemu_pid, err);
                vm->times.checked = mono_ms();
        }
        if (r >= 0) {
                r = set_limits(dom, m, err);
                vm->times.limits = mono_ms();
        }
        if (r >= 0) {
                r = join_tenant_cgroup(vm, m, err);
                vm->times.cgroup = mono_ms();
        }
        if (r < 0) {
                (void)vm_destroy(vm, NULL);
                return r;
        }
        return 0;
}

int vm_lookup(struct vm_conn *c, const char *name, const char *state_dir, struct vm **ret,
              struct tn_err **err)
{
        _cleanup_(vm_freep) struct vm *vm = vm_new(name, state_dir, err);
        if (!vm)
                return -ENOMEM;
        virDomainPtr dom = virDomainLookupByName(c->conn, vm->domain);
        if (!dom) {
                if (libvirt_code() == VIR_ERR_NO_DOMAIN)
                        return -ENOENT;
                return tn_err_setx(err, EIO, "cannot look up %s: %s", vm->domain, libvirt_msg());
        }
        vm->dom = dom;
        vm->has_dir = true;
        _cleanup_free_ char *xml = virDomainGetXMLDesc(dom, 0);
        vm->kvm = xml && strstr(xml, "<domain type='kvm'");
        vm->microvm = xml && strstr(xml, "machine='microvm'");
        vm->qemu_pid = qemu_proc_pid(vm->domain);
        vm->has_cgroup = true; /* its runner made them; they go with the VM */
        *ret = TAKE_PTR(vm);
        return 0;
}

bool vm_is_running(struct vm *vm)
{
        return vm->dom && virDomainIsActive(vm->dom) == 1;
}

int vm_destroy(struct vm *vm, struct tn_err **err)
{
        if (!vm || !vm->dom)
                return 0;
        if (virDomainDestroy(vm->dom) < 0) {
                int code = libvirt_code();
                if (code != VIR_ERR_NO_DOMAIN && code != VIR_ERR_OPERATION_INVALID &&
                    vm_is_running(vm))
                        return tn_err_setx(err, EIO, "cannot stop %s: %s", vm->domain,
                                           libvirt_msg());
        }
        vm->qemu_pid = 0;
        return 0;
}

void vm_remove_files(struct vm *vm)
{
        /* The channel, the exec socket of tenantctl run's runner, the console and what
         * virtlogd rotated of it. */
        static const char *const files[] = {"agent.sock",    "exec.sock",     "console.log",
                                            "console.log.0", "console.log.1", "console.log.2",
                                            "console.log.3"};
        char path[4096 + 32];
        for (size_t i = 0; vm->has_dir && i < ARRAY_SIZE(files); i++) {
                snprintf(path, sizeof(path), "%s/%s", vm->dir, files[i]);
                (void)unlink(path);
        }
        if (vm->has_dir)
                (void)rmdir(vm->dir);
        if (vm->has_skeleton)
                vm_root_remove(vm->root_dir);
        if (vm->has_cgroup)
                remove_tenant_cgroup(vm->name);
}

void vm_free(struct vm *vm)
{
        if (!vm)
                return;
        if (vm->dom)
                virDomainFree(vm->dom);
        free(vm);
}

/* ---- the serial console (vm.h) ----
 *
 * libvirt relays the guest's serial port (a pty QEMU made) over a stream: the bytes
 * are the guest's, and nothing here looks into them. libvirt lets one stream hold a
 * domain's console at a time (VIR_DOMAIN_CONSOLE_SAFE), as for virsh console; with
 * VIR_DOMAIN_CONSOLE_FORCE the holder's stream is aborted and the new one gets it. */

struct vm_console {
        virStreamPtr st;
        bool watching; /* the stream callback is registered */
        bool ended;    /* fn was told */
        bool busy;     /* inside a call that may call fn: closing waits for its end */
        bool closing;  /* vm_console_close was called while busy */
        vm_console_fn fn;
        void *userdata;
        size_t in_len; /* bytes for the guest not yet taken by the stream */
        uint8_t in[VM_CONSOLE_IN_MAX];
};

static void console_watch(struct vm_console *c)
{
        int ev = VIR_STREAM_EVENT_READABLE | VIR_STREAM_EVENT_ERROR | VIR_STREAM_EVENT_HANGUP;
        if (c->in_len)
                ev |= VIR_STREAM_EVENT_WRITABLE;
        if (c->watching)
                (void)virStreamEventUpdateCallback(c->st, ev);
}

static void console_free(struct vm_console *c)
{
        (void)virStreamAbort(c->st); /* the console is free for the next client */
        virStreamFree(c->st);
        free(c);
}

static void console_end(struct vm_console *c)
{
        if (c->ended || c->closing)
                return;
        c->ended = true;
        if (c->watching)
                (void)virStreamEventRemoveCallback(c->st);
        c->watching = false;
        c->fn(NULL, 0, c->userdata);
}

static void console_flush(struct vm_console *c)
{
        while (c->in_len && !c->ended && !c->closing) {
                int n = virStreamSend(c->st, (const char *)c->in, c->in_len);
                if (n == -2)
                        break;
                if (n <= 0)
                        return console_end(c);
                memmove(c->in, c->in + n, c->in_len - (size_t)n);
                c->in_len -= (size_t)n;
        }
        if (!c->ended && !c->closing)
                console_watch(c);
}

/* At most VM_CONSOLE_READ_BUDGET bytes per call: a guest that floods its console
 * shares the runner's loop with the agent channel. The stream calls again while it
 * holds data. */
static void on_console_stream(virStreamPtr st, int events, void *opaque)
{
        struct vm_console *c = opaque;
        c->busy = true;
        if (events & VIR_STREAM_EVENT_WRITABLE)
                console_flush(c);
        for (size_t got = 0; !c->ended && !c->closing && (events & VIR_STREAM_EVENT_READABLE) &&
                             got < VM_CONSOLE_READ_BUDGET;) {
                char buf[4096];
                int n = virStreamRecv(st, buf, sizeof(buf));
                if (n == -2)
                        break;
                if (n <= 0) {
                        console_end(c);
                        break;
                }
                got += (size_t)n;
                c->fn((const uint8_t *)buf, (size_t)n, c->userdata);
        }
        if (events & (VIR_STREAM_EVENT_ERROR | VIR_STREAM_EVENT_HANGUP))
                console_end(c);
        c->busy = false;
        if (c->closing)
                console_free(c);
}

int vm_console_open(struct vm *vm, bool force, vm_console_fn fn, void *userdata,
                    struct vm_console **ret, struct tn_err **err)
{
        if (!vm->dom)
                return tn_err_setx(err, ESRCH, "the microVM is not running");
        struct vm_console *c = calloc(1, sizeof(*c));
        if (!c)
                return tn_err_setx(err, ENOMEM, "out of memory");
        c->fn = fn;
        c->userdata = userdata;
        c->st = virStreamNew(virDomainGetConnect(vm->dom), VIR_STREAM_NONBLOCK);
        unsigned flags = VIR_DOMAIN_CONSOLE_SAFE | (force ? VIR_DOMAIN_CONSOLE_FORCE : 0);
        int r = 0;
        if (!c->st) {
                r = tn_err_setx(err, EIO, "cannot make a stream: %s", libvirt_msg());
        } else if (virDomainOpenConsole(vm->dom, NULL, c->st, flags) < 0) {
                /* libvirt's words for a console held by another stream: "Active console
                 * session exists for this domain" (VIR_ERR_OPERATION_FAILED). */
                if (libvirt_code() == VIR_ERR_OPERATION_FAILED && !force)
                        r = tn_err_setx(err, EBUSY,
                                        "the console is in use by another client "
                                        "(tenantctl console --force takes it over): %s",
                                        libvirt_msg());
                else
                        r = tn_err_setx(err, EIO, "cannot open the console: %s", libvirt_msg());
        } else if (virStreamEventAddCallback(c->st,
                                             VIR_STREAM_EVENT_READABLE | VIR_STREAM_EVENT_ERROR |
                                                 VIR_STREAM_EVENT_HANGUP,
                                             on_console_stream, c, NULL) < 0) {
                (void)virStreamAbort(c->st);
                r = tn_err_setx(err, EIO, "cannot watch the console: %s", libvirt_msg());
        }
        if (r < 0) {
                if (c->st)
                        virStreamFree(c->st);
                free(c);
                return r;
        }
        c->watching = true;
        *ret = c;
        return 0;
}

size_t vm_console_room(const struct vm_console *c)
{
        return c->ended || c->closing ? 0 : VM_CONSOLE_IN_MAX - c->in_len;
}

int vm_console_write(struct vm_console *c, const void *data, size_t len)
{
        if (c->ended || c->closing)
                return -EPIPE;
        if (len > vm_console_room(c))
                return -EAGAIN;
        memcpy(c->in + c->in_len, data, len);
        c->in_len += len;
        bool nested = c->busy;
        c->busy = true;
        console_flush(c);
        c->busy = nested;
        if (!nested && c->closing)
                console_free(c);
        return 0;
}

void vm_console_close(struct vm_console *c)
{
        if (!c || c->closing)
                return;
        if (c->watching)
                (void)virStreamEventRemoveCallback(c->st);
        c->watching = false;
        c->closing = true;
        if (!c->busy)
                console_free(c);
}
