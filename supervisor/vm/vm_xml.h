/* vm_xml.h — the libvirt domain XML of a microVM tenant, from a plain description.
 *
 * Pure: no libvirt, no file access. The XML is written with libxml2's xmlTextWriter,
 * which escapes every attribute and text node, so a path or name holding '<', '&' or
 * quotes cannot change the document's structure (libvirt has no builder API of its
 * own, and libxml2 is already linked through libvirt). vm.c fills the description and
 * hands the XML to libvirt; unit tests read it back. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define VM_DOMAIN_PREFIX "tenantd-"
#define VM_AGENT_PORT_NAME "org.tenantd.agent.0"
#define VM_CMDLINE_BASE "console=ttyS0 quiet panic=-1"
#define VM_CPU_PERIOD_US 100000U
#define VM_SHARES_MAX                                                                              \
        82 /* the root (or /usr), a /etc of the host-system root, 64 mounts, 16 volumes */

enum vm_fs {
        VM_FS_VIRTIOFS, /* virtiofsd (root, on the host, started through tenantd-virtiofsd)
                         * serves it; read-write */
        VM_FS_9P,       /* QEMU itself serves it; read-only shares */
};

/* One host directory the guest sees. */
struct vm_share {
        char tag[16];       /* "root", "usr", "m0", "m1", ...: the guest mounts by tag */
        const char *source; /* absolute host path */
        const char *target; /* absolute path inside the guest */
        enum vm_fs fs;
        bool readonly;
        bool noexec; /* the guest mounts it noexec (the host side's noexec does not bind it) */
};

struct vm_domain_spec {
        const char *domain_name; /* "tenantd-NAME" */
        bool kvm;                /* domain type kvm (hardware virtualization) or qemu (TCG) */
        bool microvm;            /* machine microvm with virtio-mmio; else q35 + qboot */
        const char *qboot_rom;   /* q35 only */
        uint32_t vcpus;
        uint64_t memory; /* bytes */
        const char *kernel, *initrd, *cmdline;
        uint32_t cpu_millicpus;   /* 0 = unlimited; else global period/quota */
        uint32_t cpu_weight;      /* 1..10000 -> <shares> */
        const char *console_log;  /* the serial console's log file (virtlogd bounds it) */
        const char *agent_socket; /* the agent channel's unix socket */
        const struct vm_share *shares;
        size_t n_shares;
        const char *virtiofsd; /* what libvirt runs for a virtiofs share (tenantd-virtiofsd) */
        const char *tap;       /* an existing tap device, or NULL for no network */
        const uint8_t *mac;
};

/* Returns 0 and a malloc'd NUL-terminated document, or a negative errno. */
int vm_domain_xml(const struct vm_domain_spec *spec, char **ret, struct tn_err **err);
