/* guest_seccomp.c — the service's filter inside the guest (see guest_seccomp.h). */
#include "guest_seccomp.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <stddef.h>

#define X32_SYSCALL_BIT 0x40000000U

size_t guest_filter_build(const struct agent_seccomp *sc, bool as_errno,
                          struct sock_filter insns[GUEST_FILTER_MAX])
{
        size_t n = 0;
        const __u32 hand = as_errno ? SECCOMP_RET_ERRNO | EPERM : SECCOMP_RET_USER_NOTIF;
        /* Another architecture (i386 through int 0x80) or the x32 ABI: run. */
        insns[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                                  offsetof(struct seccomp_data, arch));
        insns[n++] =
            (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
        insns[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        insns[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                                  offsetof(struct seccomp_data, nr));
        if (sc->learn) {
                insns[n++] =
                    (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1);
                insns[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
                insns[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, hand);
                return n;
        }
        /* One test per call, each followed by its own return: jump offsets stay 0 and 1
         * whatever the number of calls (a BPF jump reaches at most 255 ahead). */
        for (size_t i = 0; i < sc->n_notify && i < AGENT_NR_MAX; i++) {
                insns[n++] =
                    (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, sc->notify[i], 0, 1);
                insns[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, hand);
        }
        insns[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        return n;
}
