/* vm_runner_main.c — tenantd-vm-runner, the program that drives one tenant's microVM
 * (vm_runner.h). It is the only program of tenantd's that links libvirt and libxml2;
 * `tenantctl run` and tenantd's keeper exec it rather than load them.
 *
 *   tenantd-vm-runner run --manifest-fd FD --state DIR -- CMD [ARGS...]
 *       the VM of the manifest read from FD (the effective configuration its caller
 *       checked; never a path), CMD the service, to the end (cmd_run_vm.c); the exit
 *       status is the service's.
 *   tenantd-vm-runner cleanup --state DIR -- NAME
 *       destroys the domain of tenant NAME and removes STATEDIR/vm/NAME, what a runner
 *       killed without its own teardown leaves behind.
 *
 * It is not meant to be run by hand: the caller blocks the forwarded signals before the
 * exec (the blocked mask survives it), keeps its own stdio for the service, and for a
 * keeper passes TENANTD_READY_FD and TENANTD_EVENT_FD (keeper.h's event lines: the
 * guest's denied calls); `tenantctl policy learn` passes TENANTD_LEARN_FD (the counts
 * of every call the service made, one "NR COUNT" line each, then "end"). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "spec/manifest.h"
#include "spec/policy.h"
#include "vm/vm.h"
#include "vm/vm_runner.h"
#include "storage/volume.h"

#define USAGE                                                                                      \
        "usage: " VM_RUNNER_NAME                                                                   \
        " run --manifest-fd FD --state DIR --storage DIR --master-key FILE -- CMD [ARGS...]\n"     \
        "       " VM_RUNNER_NAME " cleanup --state DIR -- NAME\n"                                  \
        "(started by tenantctl run and tenantd; see docs/microvm.md)\n"

static int usage(void)
{
        fputs(USAGE, stderr);
        return 2;
}

/* Nothing the caller left open reaches the VM's helpers but stdio, the manifest and
 * the caller's pipes (the keeper's ready and event pipes, the learning pipe): `keep`,
 * n descriptors, -1 for none. */
static void close_inherited(int *keep, size_t n)
{
        for (size_t i = 1; i < n; i++) /* sorted: a handful, insertion sort */
                for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
                        int t = keep[j];
                        keep[j] = keep[j - 1];
                        keep[j - 1] = t;
                }
        unsigned int from = 3;
        for (size_t i = 0; i < n; i++) {
                if (keep[i] < (int)from)
                        continue;
                if ((unsigned int)keep[i] > from)
                        close_range(from, (unsigned int)keep[i] - 1, 0);
                from = (unsigned int)keep[i] + 1;
        }
        close_range(from, ~0U, 0);
}

static int parse_fd(const char *s)
{
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || *end || end == s || v < 3 || v > 65535)
                return -1;
        return (int)v;
}

static int run_main(int manifest_fd, const char *state_dir, const char *storage_dir,
                    const char *master_key, char **argv)
{
        static const char *const fd_vars[] = {"TENANTD_READY_FD", "TENANTD_EVENT_FD",
                                              "TENANTD_LEARN_FD"};
        int keep[1 + ARRAY_SIZE(fd_vars)] = {manifest_fd};
        for (size_t i = 0; i < ARRAY_SIZE(fd_vars); i++) {
                const char *v = getenv(fd_vars[i]);
                keep[1 + i] = v && *v ? parse_fd(v) : -1;
        }
        close_inherited(keep, ARRAY_SIZE(keep));
        /* The forwarded signals are blocked by the caller already; blocking them again
         * costs nothing and holds when the runner is started some other way. */
        sigset_t forwarded;
        sigemptyset(&forwarded);
        static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
        for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
                sigaddset(&forwarded, sigs[i]);
        sigprocmask(SIG_BLOCK, &forwarded, NULL);

        _cleanup_manifest_ struct manifest *m = NULL;
        if (vm_runner_manifest_read(manifest_fd, &m) < 0 || !m)
                return 2;
        if (m->isolation != ISOLATION_MICROVM) {
                log_error("\"%s\" is not a microVM tenant", m->name);
                return 2;
        }
        /* The profile is read again here (cmd_run_vm.c: its notify rules go to the
         * guest): as root, only files that root alone can change, as tenantd reads them. */
        policy_trust_files(geteuid() == 0, NULL);
        return cmd_run_vm(m, argv, state_dir, storage_dir, master_key, &forwarded);
}

static int cleanup_main(const char *state_dir, const char *name)
{
        close_inherited(NULL, 0);
        struct vm_conn *conn = NULL;
        struct vm *vm = NULL;
        _cleanup_err_ struct tn_err *err = NULL;
        int r = vm_conn_open(NULL, NULL, NULL, &conn, &err);
        if (r >= 0) {
                r = vm_lookup(conn, name, state_dir, &vm, &err);
                if (r == -ENOENT)
                        r = 0; /* nothing left: done */
                else if (r >= 0) {
                        r = vm_destroy(vm, &err);
                        vm_remove_files(vm);
                        vm_free(vm);
                }
        }
        vm_conn_close(conn);
        volumes_close(name); /* after the domain: its virtiofsd held them */
        if (r < 0) {
                log_error("cleanup of \"%s\": %s", name, tn_err_msg(err));
                return 1;
        }
        return 0;
}

int main(int argc, char **argv)
{
        log_open(VM_RUNNER_NAME, LOG_TARGET_STDERR, 0);
        if (argc < 2)
                return usage();
        const char *mode = argv[1];
        const char *state_dir = NULL, *storage_dir = NULL, *master_key = NULL;
        int manifest_fd = -1;
        int i = 2;
        for (; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
                if (i + 1 >= argc)
                        return usage();
                if (strcmp(argv[i], "--state") == 0 && argv[i + 1][0])
                        state_dir = argv[i + 1];
                else if (strcmp(argv[i], "--storage") == 0 && argv[i + 1][0] == '/')
                        storage_dir = argv[i + 1];
                else if (strcmp(argv[i], "--master-key") == 0 && argv[i + 1][0] == '/')
                        master_key = argv[i + 1];
                else if (strcmp(argv[i], "--manifest-fd") == 0 &&
                         (manifest_fd = parse_fd(argv[i + 1])) >= 0)
                        continue;
                else
                        return usage();
        }
        if (i >= argc || !state_dir)
                return usage();
        char **rest = argv + i + 1;
        int rest_n = argc - i - 1;
        if (strcmp(mode, "run") == 0 && manifest_fd >= 0 && storage_dir && master_key &&
            rest_n >= 1 && rest[0][0] == '/')
                return run_main(manifest_fd, state_dir, storage_dir, master_key, rest);
        if (strcmp(mode, "cleanup") == 0 && manifest_fd < 0 && rest_n == 1 && rest[0][0] &&
            strlen(rest[0]) <= MANIFEST_NAME_MAX &&
            strspn(rest[0], "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(rest[0]))
                return cleanup_main(state_dir, rest[0]);
        return usage();
}
