/* test_vm_agent.c — the host's agent client over a real unix socket, the test playing
 * the guest: a late answer to a request that timed out is dropped (a slow guest under
 * TCG is not a hostile one), while replies to ids never sent, and a second answer to
 * one request, still count as misbehaviour, and the memory of timed-out ids is bounded. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "vm/vm_agent.h"

struct guest {
        char dir[64];
        char path[96];
        int listen_fd, fd; /* the test's end of the channel */
        struct vm_agent *agent;
};

static int timed_out, answered;

static void on_reply(const struct agent_reply *reply, const char *error, void *userdata)
{
        (void)userdata;
        if (reply)
                answered++;
        else if (error && strcmp(error, "timed out") == 0)
                timed_out++;
}

static bool guest_open(struct guest *g)
{
        static const struct vm_agent_callbacks cb = {0};
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        strcpy(g->dir, "/tmp/test_vm_agent.XXXXXX");
        if (!mkdtemp(g->dir))
                return false;
        snprintf(g->path, sizeof(g->path), "%s/agent.sock", g->dir);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", g->path);
        g->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (g->listen_fd < 0 || bind(g->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            listen(g->listen_fd, 1) < 0)
                return false;
        struct tn_err *err = NULL;
        /* boot timeout 0: a VM whose agent said "ready" long ago */
        if (vm_agent_connect(g->path, 0, &cb, NULL, &g->agent, &err) < 0) {
                diag("connect: %s", tn_err_msg(err));
                tn_err_free(err);
                return false;
        }
        g->fd = accept4(g->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        return g->fd >= 0;
}

static void guest_close(struct guest *g)
{
        vm_agent_free(g->agent);
        close(g->fd);
        close(g->listen_fd);
        unlink(g->path);
        rmdir(g->dir);
}

/* Sends n stats requests that time out at once; returns the first id. */
static uint32_t send_expiring(struct guest *g, int n)
{
        uint32_t first = 0;
        for (int i = 0; i < n; i++) {
                struct agent_request req = {.op = AGENT_OP_STATS};
                struct tn_err *err = NULL;
                if (vm_agent_request(g->agent, &req, 1, on_reply, NULL, &err) < 0) {
                        diag("request: %s", tn_err_msg(err));
                        tn_err_free(err);
                        return 0;
                }
                if (i == 0)
                        first = req.id;
        }
        nanosleep(&(struct timespec){.tv_nsec = 5 * 1000 * 1000}, NULL);
        struct tn_err *err = NULL;
        if (vm_agent_tick(g->agent, &err) < 0)
                tn_err_free(err);
        /* drain the requests: the test does not read them */
        char buf[65536];
        while (recv(g->fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
                ;
        return first;
}

/* The guest answers id (a stats result, or an error reply); returns what the host's
 * client makes of it: 0, or -EPROTO once the agent misbehaved too often. */
static int guest_reply(struct guest *g, uint32_t id, bool success)
{
        char *frame = NULL;
        size_t len = 0;
        struct agent_reply rep = {.id = id, .ok = true, .op = AGENT_OP_STATS};
        int r = success ? agent_reply_encode(&rep, &frame, &len)
                        : agent_error_encode(id, "too slow", &frame, &len);
        if (r < 0 || write(g->fd, frame, len) != (ssize_t)len) {
                free(frame);
                return -EIO;
        }
        free(frame);
        struct tn_err *err = NULL;
        r = vm_agent_handle(g->agent, POLLIN, &err);
        if (r < 0)
                diag("agent: %s", tn_err_msg(err));
        tn_err_free(err);
        return r;
}

static void test_late_replies(void)
{
        struct guest g;
        if (!ok(guest_open(&g), "a client connected to a test guest"))
                return;
        timed_out = answered = 0;
        uint32_t first = send_expiring(&g, 20);
        is_int(timed_out, 20, "20 requests timed out");
        int bad = 0;
        for (uint32_t id = first; id < first + 20; id++)
                if (guest_reply(&g, id, id % 2) < 0)
                        bad++;
        is_int(bad, 0, "20 late answers (ok and error replies) are dropped, the VM lives");
        is_int(answered, 0, "no callback runs twice for a timed-out request");

        /* A request answered in time still reaches its callback. */
        struct agent_request req = {.op = AGENT_OP_STATS};
        struct tn_err *err = NULL;
        ok(vm_agent_request(g.agent, &req, 60000, on_reply, NULL, &err) == 0, "one more request");
        is_int(guest_reply(&g, req.id, true), 0, "its answer is taken");
        is_int(answered, 1, "and reaches the callback");

        /* A second answer to a late request, then ids never sent: misbehaviour, counted
         * up to VM_AGENT_ERRORS_MAX, then the client gives up. */
        int r = guest_reply(&g, first, true);
        is_int(r, 0, "a second late answer counts (1 of %d)", VM_AGENT_ERRORS_MAX);
        for (int i = 1; i < VM_AGENT_ERRORS_MAX && r == 0; i++)
                r = guest_reply(&g, 1000000 + (uint32_t)i, i % 2);
        is_int(r, 0, "replies to ids never sent: %d tolerated", VM_AGENT_ERRORS_MAX);
        is_int(guest_reply(&g, 2000000, false), -EPROTO, "one more stops the VM");
        guest_close(&g);
}

/* The memory of timed-out ids is a ring: the oldest falls out, so a hostile guest
 * cannot make it grow, and an id older than the ring is a reply to nothing again. */
_Static_assert(VM_AGENT_EXPIRED_MAX == VM_AGENT_PENDING_MAX, "one batch fills the ring");

static void test_ring_bound(void)
{
        struct guest g;
        if (!ok(guest_open(&g), "a second client"))
                return;
        timed_out = 0;
        uint32_t first = send_expiring(&g, VM_AGENT_PENDING_MAX);
        uint32_t last = send_expiring(&g, 1);
        is_int(timed_out, VM_AGENT_EXPIRED_MAX + 1, "%d requests timed out",
               VM_AGENT_EXPIRED_MAX + 1);
        is_int(guest_reply(&g, last, true), 0, "the newest timed-out id is remembered");
        is_int(guest_reply(&g, first + 1, false), 0, "so is the second oldest");
        int r = 0, n = 0;
        while (r == 0 && n <= VM_AGENT_ERRORS_MAX) {
                r = guest_reply(&g, first, n % 2);
                n++;
        }
        is_int(r, -EPROTO, "the oldest fell out of the ring: its answers count");
        is_int(n, VM_AGENT_ERRORS_MAX + 1, "after %d of them", VM_AGENT_ERRORS_MAX + 1);
        guest_close(&g);
}

int main(void)
{
        test_late_replies();
        test_ring_bound();
        return tap_done();
}
