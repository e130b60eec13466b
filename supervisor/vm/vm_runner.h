/* vm_runner.h — the microVM runner: one tenant's VM from start to end, as `tenantctl run`
 * and the keeper both drive it (cmd_run_vm.c). */
#pragma once

#include <signal.h>

struct manifest;

/* Runs the microVM of `m` with `argv` as the service; `forwarded` are blocked already and
 * are read from a signalfd. Returns an exit status: 0 when the service ended with 0. */
int cmd_run_vm(const struct manifest *m, char **argv, const char *state_dir,
               const sigset_t *forwarded);
