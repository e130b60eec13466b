/* vm_runner.h — the microVM runner: one tenant's VM from start to end. It is a program
 * of its own, tenantd-vm-runner (vm_runner_main.c), the only one that links libvirt;
 * `tenantctl run` and the keeper exec it (vm_runner.c) and so load no libvirt, libxml2,
 * glib or gnutls themselves.
 *
 * The runner gets the manifest as bytes on an inherited descriptor, never a path: the
 * caller has parsed and checked it (trust, shares) and hands on what it checked, as the
 * effective configuration (manifest_explain), in a sealed memfd. */
#pragma once

#include <limits.h>
#include <signal.h>

#include "lib/err.h"

struct manifest;

#define VM_RUNNER_NAME "tenantd-vm-runner"

/* Replaces the calling process with the runner of `m`'s microVM, `argv` the service
 * (NULL: the manifest's exec), STATE_DIR its state, STORAGE_DIR its volumes' images,
 * MASTER_KEY the file that wraps their keys. The signals the runner forwards
 * (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) must be blocked already: the
 * blocked mask survives exec, so none is lost before the runner reads its signalfd.
 * The runner then has the caller's pid, stdio and TENANTD_READY_FD. Returns only on
 * failure (-errno, `err` set). */
int vm_runner_exec(const struct manifest *m, char **argv, const char *state_dir,
                   const char *storage_dir, const char *master_key, struct tn_err **err);

/* The effective configuration of `m` (manifest_explain) in a sealed memfd at offset 0,
 * inherited across exec (no close-on-exec): what the runner, and a microVM keeper's
 * --keeper-finish (daemon/keeper_exec.h), parse, exactly what the caller checked. */
int vm_runner_manifest_fd(const struct manifest *m, struct tn_err **err);

/* Reads a manifest from `fd` (bounded as a manifest file is), closes it and parses it
 * into *ret; failures are logged (log.h) and the parser's diagnostics go to stderr. */
int vm_runner_manifest_read(int fd, struct manifest **ret);

/* Destroys what a runner killed without its own teardown left of tenant `name`: the
 * domain, STATEDIR/vm/NAME and the volumes' mounts (the runner does this in a child
 * process; waits for it). */
int vm_runner_cleanup(const char *name, const char *state_dir, struct tn_err **err);

/* A helper program of tenantd's: beside the running executable (the build tree), else
 * in TENANTD_LIBEXECDIR. Such helpers run as root, so only a file root alone can
 * change will do (trust.h). */
int tenantd_helper_find(const char *name, char out[PATH_MAX], struct tn_err **err);

/* The runner's own entry (vm_runner_main.c; in tenantd-vm-runner only): runs the
 * microVM of `m` with `argv` as the service; `forwarded` are blocked already and are
 * read from a signalfd. Returns an exit status: 0 when the service ended with 0. */
int cmd_run_vm(const struct manifest *m, char **argv, const char *state_dir,
               const char *storage_dir, const char *master_key, const sigset_t *forwarded);
