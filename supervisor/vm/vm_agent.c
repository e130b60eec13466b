/* vm_agent.c — see vm_agent.h. Frames are cut by agent_proto's bounded reader and
 * decoded by its typed decoder; this file adds the connection, the request table, the
 * deadlines and the misbehaviour accounting. */
#include "vm/vm_agent.h"
#include "lib/clock.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct pending {
        uint32_t id; /* 0: free */
        enum agent_op op;
        uint64_t deadline_ms;
        vm_agent_reply_fn fn;
        void *userdata;
};

/* A request that timed out: its answer may still come (a slow guest under TCG). */
struct expired {
        uint32_t id; /* 0: free */
        enum agent_op op;
};

struct vm_agent {
        int fd;
        struct agent_reader reader;
        char *out;
        size_t out_len, out_off;
        struct vm_agent_callbacks cb;
        void *userdata;
        uint64_t connected_ms, ready_deadline_ms, ready_ms;
        bool ready;
        uint32_t next_id;
        unsigned errors;
        struct pending pending[VM_AGENT_PENDING_MAX];
        /* The last VM_AGENT_EXPIRED_MAX requests that timed out, a ring: a late answer to
         * one of them is dropped, not counted as misbehaviour. Bounded whatever the
         * guest does; an id older than the ring counts as a reply to nothing again. */
        struct expired expired[VM_AGENT_EXPIRED_MAX];
        size_t expired_next;
};

int vm_agent_connect(const char *socket_path, uint32_t boot_timeout_ms,
                     const struct vm_agent_callbacks *cb, void *userdata, struct vm_agent **ret,
                     struct tn_err **err)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(socket_path) >= sizeof(sa.sun_path))
                return tn_err_setx(err, ENAMETOOLONG, "%s: path too long", socket_path);
        memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return tn_err_set(err, errno, "socket");
        /* A local stream socket connects at once or not at all (EAGAIN: backlog full). */
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return tn_err_set(err, errno, "cannot connect to the agent channel %s",
                                  socket_path);
        struct vm_agent *a = calloc(1, sizeof(*a));
        if (!a)
                return tn_err_setx(err, ENOMEM, "out of memory");
        agent_reader_init(&a->reader);
        a->fd = TAKE_FD(fd);
        a->cb = *cb;
        a->userdata = userdata;
        a->connected_ms = mono_ms();
        a->ready_deadline_ms = a->connected_ms + boot_timeout_ms;
        a->ready = boot_timeout_ms == 0; /* a VM found again: it said so long ago */
        a->ready_ms = a->connected_ms;
        *ret = a;
        return 0;
}

int vm_agent_fd(const struct vm_agent *a)
{
        return a->fd;
}

short vm_agent_events(const struct vm_agent *a)
{
        return (short)(POLLIN | (a->out_len > a->out_off ? POLLOUT : 0));
}

bool vm_agent_is_ready(const struct vm_agent *a)
{
        return a->ready;
}

uint64_t vm_agent_ready_ms(const struct vm_agent *a)
{
        return a->ready ? a->ready_ms - a->connected_ms : 0;
}

static struct pending *pending_find(struct vm_agent *a, uint32_t id)
{
        for (size_t i = 0; i < VM_AGENT_PENDING_MAX; i++)
                if (id && a->pending[i].id == id)
                        return &a->pending[i];
        return NULL;
}

static struct expired *expired_find(struct vm_agent *a, uint32_t id)
{
        for (size_t i = 0; i < VM_AGENT_EXPIRED_MAX; i++)
                if (id && a->expired[i].id == id)
                        return &a->expired[i];
        return NULL;
}

static void expired_add(struct vm_agent *a, const struct pending *p)
{
        a->expired[a->expired_next] = (struct expired){.id = p->id, .op = p->op};
        a->expired_next = (a->expired_next + 1) % VM_AGENT_EXPIRED_MAX;
}

/* The op a reply answers: a pending request's, or a timed-out one's (so that a late
 * answer decodes and can be recognised and dropped). */
static int op_of(uint32_t id, void *userdata)
{
        struct pending *p = pending_find(userdata, id);
        if (p)
                return (int)p->op;
        struct expired *e = expired_find(userdata, id);
        return e ? (int)e->op : -1;
}

/* Runs a request's callback once and frees its slot first, so the callback may send
 * another request. */
static void pending_finish(struct pending *p, const struct agent_reply *reply, const char *error)
{
        struct pending done = *p;
        *p = (struct pending){0};
        if (done.fn)
                done.fn(reply, error, done.userdata);
}

static int misbehaved(struct vm_agent *a, struct tn_err **err, const char *what, const char *detail)
{
        if (++a->errors <= VM_AGENT_ERRORS_MAX)
                return 0;
        return tn_err_setx(err, EPROTO, "the agent misbehaves: %u bad frames, the last: %s%s%s",
                           a->errors, what, detail ? ": " : "", detail ? detail : "");
}

static int handle_frame(struct vm_agent *a, const char *line, size_t len, struct tn_err **err)
{
        struct agent_msg msg = {0};
        struct tn_err *derr = NULL;
        int r = agent_msg_decode(line, len, op_of, a, &msg, &derr);
        if (r == -ENOMEM) {
                tn_err_free(derr);
                return tn_err_setx(err, ENOMEM, "out of memory");
        }
        if (r < 0) {
                r = misbehaved(a, err, "undecodable frame", tn_err_msg(derr));
                tn_err_free(derr);
                return r;
        }
        if (msg.is_event) {
                const struct agent_event *ev = &msg.event;
                if (ev->kind == AGENT_EVENT_READY) {
                        if (a->ready) {
                                agent_msg_clear(&msg);
                                return tn_err_setx(err, EPROTO,
                                                   "the agent misbehaves: a second ready event");
                        }
                        a->ready = true;
                        a->ready_ms = mono_ms();
                        if (a->cb.ready)
                                a->cb.ready(a->userdata);
                } else if (!a->ready) {
                        r = misbehaved(a, err, "an event before ready", NULL);
                } else if (ev->kind == AGENT_EVENT_LOG && a->cb.log) {
                        a->cb.log(ev->session, ev->stream, ev->data, ev->len, a->userdata);
                } else if (ev->kind == AGENT_EVENT_EXIT && a->cb.exit) {
                        a->cb.exit(ev->session, ev->signaled, ev->code, a->userdata);
                } else if (ev->kind == AGENT_EVENT_DENIED && a->cb.denied) {
                        a->cb.denied(&ev->denied, a->userdata);
                } else if (ev->kind == AGENT_EVENT_LEARNED && a->cb.learned) {
                        a->cb.learned(ev->calls, ev->n_calls, a->userdata);
                } else if (ev->kind == AGENT_EVENT_LIMITS && a->cb.limits) {
                        a->cb.limits(&ev->limits, a->userdata);
                }
        } else {
                struct pending *p = pending_find(a, msg.reply.id);
                struct expired *e = p ? NULL : expired_find(a, msg.reply.id);
                if (p)
                        pending_finish(p, &msg.reply, NULL);
                else if (e) /* a late answer: honest but too slow; a second one is not */
                        *e = (struct expired){0};
                else /* id 0: the agent refused a frame of ours; else a reply to nothing */
                        r = misbehaved(a, err, "a reply to no request",
                                       msg.reply.error ? msg.reply.error : NULL);
        }
        agent_msg_clear(&msg);
        return r;
}

static int do_read(struct vm_agent *a, struct tn_err **err)
{
        size_t budget = VM_AGENT_READ_BUDGET;
        while (budget > 0) {
                ssize_t n = agent_reader_fill(&a->reader, a->fd);
                if (n == -EAGAIN || n == -EINTR)
                        return 0;
                if (n == 0)
                        return tn_err_setx(err, ECONNRESET, "the agent channel closed");
                if (n < 0 && n != -ENOBUFS)
                        return tn_err_set(err, (int)-n, "cannot read the agent channel");
                budget = n > 0 && (size_t)n < budget ? budget - (size_t)n : 0;
                for (;;) {
                        const char *line;
                        size_t len;
                        enum agent_read rd = agent_reader_next(&a->reader, &line, &len);
                        if (rd == AGENT_READ_NONE)
                                break;
                        /* No legitimate agent sends a frame over the limit: its encoder
                         * refuses to produce one. */
                        if (rd == AGENT_READ_OVERSIZED)
                                return tn_err_setx(err, EPROTO,
                                                   "the agent misbehaves: a frame over %u bytes",
                                                   AGENT_FRAME_MAX);
                        int r = handle_frame(a, line, len, err);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int do_write(struct vm_agent *a, struct tn_err **err)
{
        while (a->out_off < a->out_len) {
                ssize_t n = send(a->fd, a->out + a->out_off, a->out_len - a->out_off,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return 0;
                if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
                        return tn_err_setx(err, ECONNRESET, "the agent channel closed");
                if (n < 0)
                        return tn_err_set(err, errno, "cannot write the agent channel");
                a->out_off += (size_t)n;
        }
        a->out_off = a->out_len = 0;
        return 0;
}

int vm_agent_handle(struct vm_agent *a, short revents, struct tn_err **err)
{
        int r = 0;
        if (revents & POLLOUT)
                r = do_write(a, err);
        if (r >= 0 && (revents & (POLLIN | POLLHUP | POLLERR)))
                r = do_read(a, err);
        return r;
}

int vm_agent_timeout_ms(const struct vm_agent *a)
{
        uint64_t next = a->ready ? UINT64_MAX : a->ready_deadline_ms;
        for (size_t i = 0; i < VM_AGENT_PENDING_MAX; i++)
                if (a->pending[i].id && a->pending[i].deadline_ms < next)
                        next = a->pending[i].deadline_ms;
        if (next == UINT64_MAX)
                return -1;
        uint64_t now = mono_ms();
        return next <= now ? 0 : (int)(next - now > INT32_MAX ? INT32_MAX : next - now);
}

int vm_agent_tick(struct vm_agent *a, struct tn_err **err)
{
        uint64_t now = mono_ms();
        for (size_t i = 0; i < VM_AGENT_PENDING_MAX; i++)
                if (a->pending[i].id && a->pending[i].deadline_ms <= now) {
                        expired_add(a, &a->pending[i]);
                        pending_finish(&a->pending[i], NULL, "timed out");
                }
        if (!a->ready && now >= a->ready_deadline_ms)
                return tn_err_setx(err, EPROTO,
                                   "the agent did not say it was ready within %llu ms of boot",
                                   (unsigned long long)(a->ready_deadline_ms - a->connected_ms));
        return 0;
}

int vm_agent_request(struct vm_agent *a, struct agent_request *req, uint32_t timeout_ms,
                     vm_agent_reply_fn fn, void *userdata, struct tn_err **err)
{
        struct pending *slot = NULL;
        for (size_t i = 0; i < VM_AGENT_PENDING_MAX && !slot; i++)
                if (!a->pending[i].id)
                        slot = &a->pending[i];
        if (!slot)
                return tn_err_setx(err, EBUSY, "too many requests to the agent in flight");
        if (++a->next_id == 0)
                a->next_id = 1;
        req->id = a->next_id;
        _cleanup_free_ char *frame = NULL;
        size_t len;
        int r = agent_request_encode(req, &frame, &len);
        if (r < 0)
                return tn_err_set(err, -r, "cannot encode the %s request",
                                  agent_op_name(req->op) ? agent_op_name(req->op) : "?");
        if (a->out_len - a->out_off + len > VM_AGENT_OUT_MAX)
                return tn_err_setx(err, ENOBUFS, "the agent is not reading its channel");
        if (a->out_off > 0) {
                memmove(a->out, a->out + a->out_off, a->out_len - a->out_off);
                a->out_len -= a->out_off;
                a->out_off = 0;
        }
        char *out = realloc(a->out, a->out_len + len);
        if (!out)
                return tn_err_setx(err, ENOMEM, "out of memory");
        memcpy(out + a->out_len, frame, len);
        a->out = out;
        a->out_len += len;
        *slot = (struct pending){
            .id = req->id,
            .op = req->op,
            .deadline_ms = timeout_ms == VM_AGENT_NO_TIMEOUT ? UINT64_MAX : mono_ms() + timeout_ms,
            .fn = fn,
            .userdata = userdata};
        /* Try at once; what does not fit waits for POLLOUT. */
        return do_write(a, err);
}

void vm_agent_free(struct vm_agent *a)
{
        if (!a)
                return;
        for (size_t i = 0; i < VM_AGENT_PENDING_MAX; i++)
                if (a->pending[i].id)
                        pending_finish(&a->pending[i], NULL, "the agent channel closed");
        agent_reader_free(&a->reader);
        free(a->out);
        if (a->fd >= 0)
                close(a->fd);
        free(a);
}
