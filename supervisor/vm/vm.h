/* vm.h — microVM tenants through libvirt. vm.c is the only file that includes
 * <libvirt/libvirt.h>.
 *
 * A tenant NAME with isolation "microvm" is a transient libvirt domain "tenantd-NAME"
 * on qemu:///system (domain type kvm where the CPU has hardware virtualization and
 * /dev/kvm exists, else qemu, i.e. TCG), booted directly from a kernel and initramfs
 * whose /init is tenant-agent. Its files live in STATEDIR/vm/NAME/ (mode 0700): the
 * agent channel's socket agent.sock and the serial console's log console.log (bounded
 * by virtlogd's rotation). docs/microvm.md says what is shared and why.
 *
 * Events: vm_conn_open() installs an event loop implementation of its own in libvirt
 * (virEventRegisterImpl) whose handles and timeouts sit behind one epoll descriptor,
 * vm_conn_fd(). An epoll- or poll-based daemon adds that descriptor to its own set and
 * calls vm_conn_dispatch() whenever it is readable; no thread is started. Lifecycle
 * events of tenantd's domains, and the loss of the libvirt connection, reach the
 * callback given to vm_conn_open(). */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"
#include "spec/manifest.h"
#include "host/net.h"
#include "vm/vm_xml.h"

#define VM_DEFAULT_URI "qemu:///system"
#define VM_QEMU_STATE_DIR "/run/libvirt/qemu" /* libvirt's NAME.pid files */

enum vm_event {
        VM_EVENT_STARTED,
        VM_EVENT_STOPPED,         /* powered off, destroyed, crashed or failed */
        VM_EVENT_CONNECTION_LOST, /* libvirtd went away: name is NULL */
};

/* name: the tenant's name (the domain's without "tenantd-"); detail: libvirt's reason,
 * such as "shutdown", "destroyed", "crashed", "failed". */
typedef void (*vm_event_fn)(enum vm_event ev, const char *name, const char *detail, void *userdata);

struct vm_conn;

/* Connects to uri (NULL: qemu:///system) with keepalive. Events of domains named
 * "tenantd-*" go to fn (may be NULL). One connection per process: the event loop
 * implementation is process-wide. */
int vm_conn_open(const char *uri, vm_event_fn fn, void *userdata, struct vm_conn **ret,
                 struct tn_err **err);
void vm_conn_close(struct vm_conn *c);
DEFINE_POINTER_CLEANUP(struct vm_conn, vm_conn_close)

/* Readable when libvirt has something to do; then call vm_conn_dispatch(). */
int vm_conn_fd(const struct vm_conn *c);
/* Runs every libvirt handle and timer that is due; never blocks. */
void vm_conn_dispatch(struct vm_conn *c);

/* "kvm" when hardware virtualization is there (vmx or svm in /proc/cpuinfo and
 * /dev/kvm), else "qemu": the domain type vm_start() uses. */
bool vm_have_kvm(void);

struct vm_config {
        const struct manifest *m;
        const char *state_dir; /* STATEDIR: the VM's files go to STATEDIR/vm/NAME */
        const char *image_dir; /* vmlinuz and initramfs.img when vm.kernel/initrd are unset */
        const struct net_tenant *net; /* its tap exists (net_private_attach_tap), or NULL */
        bool autodestroy; /* libvirt destroys the domain when this connection closes, even
                           * if the process dies (tenantctl run); the daemon leaves this
                           * off, so tenants outlive a tenantd restart */
};

struct vm {
        char name[MANIFEST_NAME_MAX + 1];
        char domain[sizeof(VM_DOMAIN_PREFIX) + MANIFEST_NAME_MAX];
        char dir[4064];          /* STATEDIR/vm/NAME */
        char agent_socket[4096]; /* dir/agent.sock */
        char console_log[4096];  /* dir/console.log */
        char root_dir[128];      /* host-system: the guest's root skeleton (vm_root.h) */
        bool has_skeleton;
        bool has_dir;    /* dir is tenantd's (made or found by vm_start / vm_lookup) */
        bool has_cgroup; /* QEMU was moved into the tenant's cgroups (vm.c): remove them */
        bool kvm;        /* accelerated, or emulated (TCG) */
        bool microvm;    /* machine microvm, or the q35 fallback */
        pid_t qemu_pid;
        struct vm_share shares[VM_SHARES_MAX]; /* what the agent is to mount (vm_start) */
        char volume_mounts[MANIFEST_MAX_VOLUMES][PATH_MAX]; /* the volumes' shares' sources */
        size_t n_shares;
        void *dom; /* virDomainPtr */
        /* When vm_start's steps ended (CLOCK_MONOTONIC ms; 0: not reached), for the
         * runner's TENANTD_VM_TIMING report. qemu_exec is when the kernel started QEMU's
         * process (/proc/PID/stat, to the kernel's 10 ms tick). */
        struct vm_start_times {
                uint64_t begin, shares, tsc, xml, qemu_exec, created, checked, limits, cgroup;
        } times;
};

/* Defines and starts the transient domain, then checks that QEMU really runs as an
 * unprivileged user with its seccomp sandbox on (else destroys it and fails), sets the
 * memory hard limit (memory.max) and tightens the emulator threads' CPU quota. Returns
 * once QEMU runs; the guest boots on its own (wait for the agent's ready event). */
int vm_start(struct vm_conn *c, const struct vm_config *cfg, struct vm **ret, struct tn_err **err);

/* Finds the running domain of tenant `name` again (after a tenantd restart): -ENOENT
 * when there is none. The shares are not known then (the agent has mounted them). */
int vm_lookup(struct vm_conn *c, const char *name, const char *state_dir, struct vm **ret,
              struct tn_err **err);

/* Whether the domain still runs. */
bool vm_is_running(struct vm *vm);

/* Powers the guest off at once (virDomainDestroy; a graceful stop goes through the
 * agent's shutdown first). Harmless when it is gone already. */
int vm_destroy(struct vm *vm, struct tn_err **err);

/* Removes STATEDIR/vm/NAME and what is in it, and the root skeleton (once the domain is
 * gone). vm_start() does this itself when it fails. */
void vm_remove_files(struct vm *vm);

void vm_free(struct vm *vm);
DEFINE_POINTER_CLEANUP(struct vm, vm_free)

/* ---- the serial console ----
 *
 * The guest's serial console (ttyS0: the kernel's console, and the line the agent runs
 * a login shell on for `tenantctl console`), through libvirt's console stream. One
 * holder at a time per domain, as libvirt enforces for virsh console too. */
#define VM_CONSOLE_IN_MAX (64U << 10)      /* bytes for the guest held while it reads */
#define VM_CONSOLE_READ_BUDGET (64U << 10) /* bytes read from the guest per dispatch */
struct vm_console;

/* What the guest wrote (len > 0; the guest's bytes, to be relayed, never read), or
 * the end of the stream (data NULL, len 0: the VM stopped, or another client took the
 * console with force). Called from vm_conn_dispatch() or vm_console_write(); it may
 * close the console (the console is freed once the call that called it returns). */
typedef void (*vm_console_fn)(const uint8_t *data, size_t len, void *userdata);

/* Opens the console of a running VM. -EBUSY when another client holds it and `force`
 * is false; with `force` the other holder's stream ends. */
int vm_console_open(struct vm *vm, bool force, vm_console_fn fn, void *userdata,
                    struct vm_console **ret, struct tn_err **err);
/* Queues bytes for the guest: 0, -EAGAIN when they do not fit in what is free
 * (vm_console_room), -EPIPE once the stream ended. */
int vm_console_write(struct vm_console *c, const void *data, size_t len);
size_t vm_console_room(const struct vm_console *c);
/* Lets go of the console (NULL is fine); fn is not called any more. */
void vm_console_close(struct vm_console *c);
