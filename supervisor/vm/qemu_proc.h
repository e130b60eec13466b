/* qemu_proc.h — what the host's /proc and libvirt's pid file say about a microVM's
 * QEMU, without libvirt: its pid, whether it runs as root, whether its seccomp sandbox
 * is on. The start check (vm.c), `status` and `audit` (tenantd) share it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"

/* QEMU's pid for libvirt domain `domain` ("tenantd-NAME"), from libvirt's pid file
 * (VM_QEMU_STATE_DIR); 0 when there is none. */
pid_t qemu_proc_pid(const char *domain);

/* 1 when QEMU's command line has "-sandbox on[,...]", 0 when not, -errno when it
 * cannot be read. */
int qemu_proc_sandboxed(pid_t pid);

/* QEMU must not run as root (any of its uids) and must have its seccomp sandbox on:
 * 0, or -EPERM and the fix in *err (another -errno when /proc cannot be read). */
int qemu_proc_check(pid_t pid, struct tn_err **err);

/* When the kernel started process `pid`, as CLOCK_MONOTONIC ms (to the kernel's tick,
 * 10 ms at USER_HZ 100); 0 when unknown. For the runner's timing report. */
uint64_t qemu_proc_started_ms(pid_t pid);

/* The pids of parent's children (from each process's /proc/PID/stat), at most max:
 * QEMU's C virtiofsd forks its worker after libvirt wrote the parent's pid file, and
 * the worker is what does the IO a volume's limits must see. */
size_t proc_children(pid_t parent, pid_t *out, size_t max);
