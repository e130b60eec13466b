/* seccomp_notify.c — answering notified system calls and counting them (see seccomp_notify.h). */
#include "lib/seccomp_notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Not in the uapi headers of every build machine (Linux 6.6). */
#define NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#define NOTIF_FD_SYNC_WAKE_UP 1UL

int notifier_new(int fd, struct notifier **ret)
{
        struct seccomp_notif_sizes sz;
        if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) < 0)
                return -errno;
        struct notifier *n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        /* The kernel writes its own size of struct seccomp_notif: never less room. */
        size_t req = sz.seccomp_notif > sizeof(struct seccomp_notif) ? sz.seccomp_notif
                                                                     : sizeof(struct seccomp_notif);
        size_t resp = sz.seccomp_notif_resp > sizeof(struct seccomp_notif_resp)
                          ? sz.seccomp_notif_resp
                          : sizeof(struct seccomp_notif_resp);
        n->req = calloc(1, req);
        n->resp = calloc(1, resp);
        if (!n->req || !n->resp) {
                free(n->req);
                free(n->resp);
                free(n);
                return -ENOMEM;
        }
        n->fd = fd;
        /* Linux 6.6+: the listener runs on the caller's CPU when it answers at once,
         * which saves a cross-CPU wake-up per call; older kernels refuse, harmlessly. */
        (void)ioctl(fd, NOTIF_SET_FLAGS, NOTIF_FD_SYNC_WAKE_UP);
        *ret = n;
        return 0;
}

void notifier_free(struct notifier *n)
{
        if (!n)
                return;
        if (n->fd >= 0)
                close(n->fd);
        free(n->req);
        free(n->resp);
        free(n);
}

bool notifier_wants_poll(struct notifier *n, uint64_t now_ms, int *ret_wait_ms)
{
        if (n->hup)
                return false;
        if (n->learn)
                return true; /* no budget: notifier_answer returns after a batch */
        if (now_ms >= n->window_start_ms + NOTIFY_WINDOW_MS) {
                n->window_start_ms = now_ms;
                n->window_used = 0;
        }
        if (n->window_used < NOTIFY_BUDGET)
                return true;
        *ret_wait_ms = (int)(n->window_start_ms + NOTIFY_WINDOW_MS - now_ms);
        return false;
}

/* One waiting notification answered; false when none is waiting or the listener is
 * done. RECV blocks when nothing is queued, so it is called only after poll says so. */
static bool answer_one(struct notifier *n)
{
        struct pollfd p = {.fd = n->fd, .events = POLLIN};
        if (poll(&p, 1, 0) <= 0)
                return false;
        if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) {
                n->hup = !(p.revents & POLLIN);
                if (n->hup)
                        return false;
        }
        struct seccomp_notif *req = n->req;
        memset(req, 0, sizeof(*req)); /* RECV refuses a buffer that is not zeroed */
        if (ioctl(n->fd, SECCOMP_IOCTL_NOTIF_RECV, req) < 0)
                return errno == ENOENT || errno == EINTR; /* its caller died: next */
        struct seccomp_notif_resp *resp = n->resp;
        memset(resp, 0, sizeof(*resp));
        resp->id = req->id;
        int nr = req->data.nr, i = nr >= 0 && nr < NOTIFY_MAX_NR ? nr : NOTIFY_MAX_NR;
        if (n->learn) {
                /* Learning: counted, and refused or let run (seccomp_notify.h). */
                if (i < NOTIFY_MAX_NR && n->answer[i])
                        resp->error = -n->answer[i];
                else
                        resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
                (void)ioctl(n->fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
                n->seen[i]++;
                n->total++;
                return true;
        }
        resp->error = -EPERM; /* never SECCOMP_USER_NOTIF_FLAG_CONTINUE */
        /* ENOENT: the caller died or was interrupted meanwhile; nothing to answer. */
        (void)ioctl(n->fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
        /* A call not reported within NOTIFY_REPORT_MS is due at once (notifier_report);
         * later ones only add to a count already scheduled. */
        notifier_add(n, nr, 1);
        return true;
}

size_t notifier_answer(struct notifier *n, uint64_t now_ms)
{
        size_t done = 0;
        int wait;
        while (notifier_wants_poll(n, now_ms, &wait) && answer_one(n)) {
                n->window_used++;
                if (++done >= NOTIFY_LEARN_BATCH && n->learn)
                        break; /* back to the caller's loop: its signals, its timers */
        }
        return done;
}

void notifier_mark_reported(struct notifier *n, int nr, uint64_t now_ms)
{
        n->reported_ms[nr >= 0 && nr < NOTIFY_MAX_NR ? nr : NOTIFY_MAX_NR] = now_ms ? now_ms : 1;
}

int notifier_report(struct notifier *n, uint64_t now_ms, bool flush,
                    void (*fn)(void *ctx, int nr, uint64_t count), void *ctx)
{
        /* Nothing new and nothing due: no need to look at every call. */
        if (!flush && !n->dirty && (!n->next_report_ms || now_ms < n->next_report_ms))
                return n->next_report_ms ? (int)(n->next_report_ms - now_ms) : -1;
        n->dirty = false;
        int next = -1;
        for (int i = 0; i <= NOTIFY_MAX_NR; i++) {
                if (!n->pending[i])
                        continue;
                uint64_t due = n->reported_ms[i] ? n->reported_ms[i] + NOTIFY_REPORT_MS : 0;
                if (flush || now_ms >= due) {
                        fn(ctx, i == NOTIFY_MAX_NR ? -1 : i, n->pending[i]);
                        n->pending[i] = 0;
                        n->reported_ms[i] = now_ms ? now_ms : 1;
                        continue;
                }
                int in = (int)(due - now_ms);
                if (next < 0 || in < next)
                        next = in;
        }
        n->next_report_ms = next < 0 ? 0 : now_ms + (uint64_t)next;
        return next;
}

static int min_timeout(int a, int b)
{
        return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

int notifier_pollfd(struct notifier *n, uint64_t now_ms, struct pollfd *p, int timeout)
{
        *p = (struct pollfd){.fd = -1, .events = POLLIN};
        if (!n)
                return timeout;
        int wait = -1;
        if (notifier_wants_poll(n, now_ms, &wait))
                p->fd = n->fd;
        if (n->next_report_ms)
                wait = min_timeout(
                    wait, n->next_report_ms > now_ms ? (int)(n->next_report_ms - now_ms) : 0);
        return min_timeout(timeout, wait);
}

void notifier_format(char *buf, size_t len, const char *tenant, const char *syscall, uint64_t count)
{
        snprintf(buf, len, "event=seccomp-denied tenant=%s syscall=%s count=%" PRIu64, tenant,
                 syscall, count);
}

void notifier_add(struct notifier *n, int nr, uint64_t count)
{
        int i = nr >= 0 && nr < NOTIFY_MAX_NR ? nr : NOTIFY_MAX_NR;
        if (!count)
                return;
        if (!n->pending[i])
                n->dirty = true;
        /* Saturating: counts come from a guest too (a lying one sends huge ones). */
        n->pending[i] = n->pending[i] > UINT64_MAX - count ? UINT64_MAX : n->pending[i] + count;
        n->total = n->total > UINT64_MAX - count ? UINT64_MAX : n->total + count;
}
