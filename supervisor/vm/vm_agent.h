/* vm_agent.h — the host's side of the agent channel: a client of tenant-agent over the
 * unix socket libvirt gives the VM's virtio-serial port (STATEDIR/vm/NAME/agent.sock).
 *
 * Everything that arrives is hostile: the guest belongs to the tenant, who may have
 * replaced the agent. The client never blocks (a non-blocking socket driven by the
 * caller's poll or epoll loop), reads at most VM_AGENT_READ_BUDGET bytes per call so one
 * guest cannot starve the loop, holds at most one frame (1 MiB) of input and
 * VM_AGENT_OUT_MAX bytes of output, and times out every request. It decides when an
 * agent misbehaves: a frame over the size limit, more than VM_AGENT_ERRORS_MAX frames
 * that do not decode (garbage, unknown events, replies to nothing, a second reply to one
 * request), a second "ready", or no "ready" within the boot timeout. A late reply to one
 * of the last VM_AGENT_EXPIRED_MAX requests that timed out is dropped, not counted: a slow
 * guest (TCG on a busy host) is not a hostile one. vm_agent_handle() or vm_agent_tick() then
 * return -EPROTO and the error says why: the caller stops the VM. tenantd itself is
 * never at risk from what the guest sends. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/agent_proto.h"
#include "lib/err.h"

#define VM_AGENT_READ_BUDGET (256 * 1024)
#define VM_AGENT_OUT_MAX (4 * 1024 * 1024)
#define VM_AGENT_ERRORS_MAX 8
#define VM_AGENT_PENDING_MAX 64
#define VM_AGENT_EXPIRED_MAX 64 /* timed-out request ids whose late answer is dropped */

struct vm_agent;

struct vm_agent_callbacks {
        void (*ready)(void *userdata);
        /* data: decoded output of session (0: the service), at most AGENT_DATA_MAX */
        void (*log)(uint32_t session, enum agent_stream stream, const uint8_t *data, size_t len,
                    void *userdata);
        void (*exit)(uint32_t session, bool signaled, int code, void *userdata);
        /* The guest's word on its seccomp listener (docs/agent-protocol.md#events):
         * decoded and bounded, not trusted; the callback checks the numbers. */
        void (*denied)(const struct agent_call_count *c, void *userdata);
        void (*learned)(const struct agent_call_count *calls, size_t n, void *userdata);
        /* The guest's counters of the tenant's cgroup in the guest: bounded, not
         * trusted (a guest may lie about itself, and only about itself). */
        void (*limits)(const struct agent_limits *l, void *userdata);
};

/* A request's outcome: the reply (ok or not), or NULL with `error` set when it timed
 * out or the channel closed. */
typedef void (*vm_agent_reply_fn)(const struct agent_reply *reply, const char *error,
                                  void *userdata);

/* Connects to the socket (it exists once the domain runs). boot_timeout_ms: how long
 * the agent may take to say "ready"; 0 for a VM found again after a tenantd restart,
 * whose agent said so long ago (a later "ready" is then a protocol error). */
int vm_agent_connect(const char *socket_path, uint32_t boot_timeout_ms,
                     const struct vm_agent_callbacks *cb, void *userdata, struct vm_agent **ret,
                     struct tn_err **err);

/* The descriptor to poll, and the events to poll it for (POLLIN, plus POLLOUT while
 * output waits). */
int vm_agent_fd(const struct vm_agent *a);
short vm_agent_events(const struct vm_agent *a);

/* Reads and writes what poll reported, decodes frames, runs callbacks. Returns 0, or
 * -EPROTO (agent misbehaved), -ECONNRESET (the channel closed: the VM is gone or the
 * agent closed its port), another negative errno on a local failure. */
int vm_agent_handle(struct vm_agent *a, short revents, struct tn_err **err);

/* Milliseconds until the next deadline (a request's or the boot timeout), -1 for none;
 * call vm_agent_tick() when it passes. */
int vm_agent_timeout_ms(const struct vm_agent *a);
/* Times out overdue requests (their callbacks get an error). Returns -EPROTO when the
 * agent did not say "ready" in time. */
int vm_agent_tick(struct vm_agent *a, struct tn_err **err);

bool vm_agent_is_ready(const struct vm_agent *a);
/* ms from vm_agent_connect() to the "ready" event (0 before it). */
uint64_t vm_agent_ready_ms(const struct vm_agent *a);

/* Sends req (its id is assigned here) with a timeout; fn runs exactly once.
 * VM_AGENT_NO_TIMEOUT: a request the agent answers when something in the guest happens
 * (exec input once the command has read it); the agent answers it at the session's
 * end at the latest, and the channel's end answers it anyway. */
#define VM_AGENT_NO_TIMEOUT UINT32_MAX
int vm_agent_request(struct vm_agent *a, struct agent_request *req, uint32_t timeout_ms,
                     vm_agent_reply_fn fn, void *userdata, struct tn_err **err);

/* Cancels pending requests (their callbacks get "closed") and closes the socket. */
void vm_agent_free(struct vm_agent *a);
DEFINE_POINTER_CLEANUP(struct vm_agent, vm_agent_free)
