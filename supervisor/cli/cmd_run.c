/* cmd_run.c — `tenantctl run MANIFEST [-- CMD ARGS...]`: one tenant in the foreground,
 * without a daemon, through the same sandbox code the daemon uses. Standard input and
 * output are the tenant's; SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are
 * forwarded to it (a third SIGINT kills it); the exit status is the service's (128+N
 * when signal N ended it); everything the run created is removed at the end. */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spec/launch.h"
#include "lib/log.h"
#include "spec/manifest.h"
#include "spec/policy.h"
#include "lib/clock.h"
#include "sandbox/notify.h"
#include "sandbox/sandbox.h"
#include "storage/volume.h"
#include "vm/share_check.h"
#include "cli/tenantctl.h"
#include "vm/vm_runner.h"
#include "host/uidrange.h"

#define DEFAULT_STATE_DIR "/var/lib/tenantd"

static int load(const char *path, struct manifest **ret)
{
        _cleanup_free_ char *diags = NULL;
        _cleanup_err_ struct tn_err *err = NULL;
        /* As root, only a manifest that root alone can change is run (trust.h). */
        int r = manifest_load(path, geteuid() == 0, ret, &diags, &err);
        if (diags)
                fputs(diags, stderr);
        if (r < 0 && err)
                log_error("%s", tn_err_msg(err));
        return r < 0 ? EXIT_USAGE : EXIT_OK;
}

/* A notified call's denials, aggregated (sandbox/notify.h): on standard error. */
static void report_denied(void *ctx, int nr, uint64_t count)
{
        char line[256];
        notifier_format(line, sizeof(line), ctx, nr, count);
        log_warning("%s", line);
}

/* Forwards signals until the tenant's init exits, answering its notified calls;
 * returns the service's status. */
static int supervise(struct sandbox *sb, const char *name, const sigset_t *forwarded)
{
        _cleanup_close_ int sfd = signalfd(-1, forwarded, SFD_CLOEXEC);
        int interrupts = 0;
        for (;;) {
                struct pollfd fds[3] = {{.fd = sb->pidfd, .events = POLLIN},
                                        {.fd = sfd, .events = POLLIN}};
                uint64_t now = clock_ms(CLOCK_MONOTONIC);
                int timeout = notifier_pollfd(sb->notifier, now, &fds[2], -1);
                if (poll(fds, 3, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (fds[2].revents)
                        (void)notifier_answer(sb->notifier, clock_ms(CLOCK_MONOTONIC));
                if (sb->notifier)
                        (void)notifier_report(sb->notifier, clock_ms(CLOCK_MONOTONIC), false,
                                              report_denied, (void *)name);
                if (fds[0].revents)
                        break;
                struct signalfd_siginfo si;
                if (fds[1].revents && read(sfd, &si, sizeof(si)) == sizeof(si)) {
                        int sig = (int)si.ssi_signo;
                        if (sig == SIGINT && ++interrupts >= 3) {
                                log_warning("third interrupt: killing the tenant");
                                sig = SIGKILL;
                        }
                        (void)sandbox_signal(sb, sig);
                }
        }
        if (sb->notifier)
                (void)notifier_report(sb->notifier, 0, true, report_denied, (void *)name);
        int status = EXIT_FAILED;
        _cleanup_err_ struct tn_err *err = NULL;
        if (sandbox_wait(sb, &status, &err) < 0)
                log_error("%s", tn_err_msg(err));
        return status;
}

int cmd_run(const struct cli *cli, int argc, char **argv)
{
        (void)argc;
        const char *state_dir = getenv("TENANTD_STATE_DIR");
        if (!state_dir || !*state_dir)
                state_dir = DEFAULT_STATE_DIR;
        const char *storage_dir = getenv("TENANTD_STORAGE_DIR");
        const char *master_key = NULL;
        for (size_t i = 0; i < cli->opts_n; i++) {
                if (cli->opts[i].id == OPT_STATE)
                        state_dir = cli->opts[i].arg;
                else if (cli->opts[i].id == OPT_STORAGE)
                        storage_dir = cli->opts[i].arg;
                else if (cli->opts[i].id == OPT_MASTER_KEY)
                        master_key = cli->opts[i].arg;
        }
        _cleanup_free_ char *default_master_key = NULL;
        if (!master_key) {
                if (asprintf(&default_master_key, "%s/master.key", state_dir) < 0) {
                        log_error("out of memory");
                        return EXIT_FAILED;
                }
                master_key = default_master_key;
        }
        if (master_key[0] != '/') {
                log_error("master key %s: not an absolute path", master_key);
                return EXIT_USAGE;
        }
        _cleanup_free_ char *default_storage = NULL;
        if (!storage_dir || !*storage_dir) {
                if (asprintf(&default_storage, "%s/volumes", state_dir) < 0) {
                        log_error("out of memory");
                        return EXIT_FAILED;
                }
                storage_dir = default_storage;
        }
        const char *path = argv[1];
        char **override = cli->cmd;

        /* Policy files likewise: as root, refused unless root alone can change them. */
        policy_trust_files(geteuid() == 0, NULL);
        _cleanup_manifest_ struct manifest *m = NULL;
        int rc = load(path, &m);
        if (rc != EXIT_OK)
                return rc;
        /* No backend is given tenantd's own files or, read-write, what the host's root
         * trusts (share_check.h); the microVM path checks again what it opens. */
        _cleanup_err_ struct tn_err *share_err = NULL;
        const struct tenantd_dirs dirs = {.state_dir = state_dir, .storage_dir = storage_dir};
        if (share_check_manifest(m, &dirs, NULL, NULL, &share_err) < 0) {
                log_error("%s: %s", path, tn_err_msg(share_err));
                return EXIT_USAGE;
        }
        if (override && override[0][0] != '/') {
                log_error("%s: the command must be an absolute path inside the tenant",
                          override[0]);
                return EXIT_USAGE;
        }
        /* Said before the start, not discovered by the operator later. */
        if (m->network.mode == NET_PRIVATE && m->network.transfer.period != TRANSFER_NONE)
                log_warning("warning: %s: network transfer volumes are not counted yet", path);
        for (size_t i = 0; m->network.mode == NET_PRIVATE && i < m->network.publish_n; i++)
                if (m->network.publish[i].bind_family == AF_INET6)
                        log_warning("warning: %s: network.publish[%zu] is bound to an IPv6 address "
                                    "and is not published: private tenants are IPv4 only for now",
                                    path, i);
        if (geteuid() != 0) {
                log_error("tenantctl run needs root: it creates namespaces and cgroups and maps "
                          "a host uid range for the tenant (the tenant itself gets no privilege)");
                return EXIT_FAILED;
        }

        if (m->isolation == ISOLATION_MICROVM) {
                /* tenantctl becomes the runner (tenantd-vm-runner: the program that loads
                 * libvirt, vm_runner.h), with this pid and stdio. The signals it forwards
                 * are blocked before the exec and stay blocked across it, so none is lost
                 * before it reads them from a signalfd. */
                sigset_t forwarded;
                sigemptyset(&forwarded);
                static const int vm_sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
                for (size_t i = 0; i < ARRAY_SIZE(vm_sigs); i++)
                        sigaddset(&forwarded, vm_sigs[i]);
                sigprocmask(SIG_BLOCK, &forwarded, NULL);
                _cleanup_err_ struct tn_err *vm_err = NULL;
                (void)vm_runner_exec(m, override, state_dir, storage_dir, master_key, &vm_err);
                log_error("cannot start \"%s\": %s", m->name, tn_err_msg(vm_err));
                return EXIT_FAILED;
        }

        _cleanup_err_ struct tn_err *err = NULL;
        _cleanup_(policy_bpf_freep) struct policy_bpf *bpf = NULL;
        _cleanup_free_ int *caps = NULL;
        size_t caps_n = 0;
        if (launch_resolve_policy(m, state_dir, &bpf, &caps, &caps_n, &err) < 0) {
                log_error("%s: %s", path, tn_err_msg(err));
                return EXIT_USAGE;
        }

        /* Signals to forward are blocked from here on, so none is lost between the
         * start of the tenant and the signalfd; the sandbox unblocks them inside. */
        sigset_t forwarded;
        sigemptyset(&forwarded);
        static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
                sigaddset(&forwarded, sigs[i]);
        sigprocmask(SIG_BLOCK, &forwarded, NULL);

        struct sandbox_config cfg = {
            .m = m,
            .argv = override ? override : m->exec,
            .state_dir = state_dir,
            .uid_base = UIDRANGE_DEFAULT_BASE,
            .bpf = bpf,
            .caps = caps,
            .caps_n = caps_n,
            .die_with_parent = true,
        };
        struct sandbox *sb = NULL;
        _cleanup_free_ char *warnings = NULL;
        /* The volumes on the host first (their roots given to the service's ids by the
         * sandbox's plan), closed once the tenant is gone. */
        int r = volumes_open(m, storage_dir, master_key, 0, 0, &err);
        if (r >= 0) {
                r = sandbox_start(&cfg, &sb, &warnings, &err);
                if (r < 0)
                        volumes_close(m->name);
        }
        if (warnings && *warnings) {
                for (char *save = NULL, *line = strtok_r(warnings, "\n", &save); line;
                     line = strtok_r(NULL, "\n", &save))
                        log_warning("warning: %s", line);
        }
        if (r < 0) {
                log_error("cannot start \"%s\": %s", m->name, tn_err_msg(err));
                return EXIT_FAILED;
        }
        int status = supervise(sb, m->name, &forwarded);
        _cleanup_err_ struct tn_err *derr = NULL;
        if (sandbox_destroy(sb, &derr) < 0)
                log_warning("cleanup of \"%s\": %s", m->name, tn_err_msg(derr));
        volumes_close(m->name);
        return status;
}
