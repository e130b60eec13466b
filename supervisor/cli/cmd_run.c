/* cmd_run.c — `tenantctl run MANIFEST [-- CMD ARGS...]`: one tenant in the foreground,
 * without a daemon, through the same sandbox code the daemon uses. Standard input and
 * output are the tenant's; SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are
 * forwarded to it (a third SIGINT kills it); the exit status is the service's (128+N
 * when signal N ended it); everything the run created is removed at the end. */
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <errno.h>
#include <linux/sched.h>
#include <unistd.h>

#include "spec/launch.h"
#include "lib/fileio.h"
#include "lib/strutil.h"
#include "lib/units.h"
#include "spec/policy_learn.h"
#include "lib/log.h"
#include "spec/manifest.h"
#include "spec/policy.h"
#include "lib/clock.h"
#include "lib/seccomp_notify.h"
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

/* A notified call's denials, aggregated (lib/seccomp_notify.h): on standard error. */
static void report_denied(void *ctx, int nr, uint64_t count)
{
        char line[256], name[64] = "other";
        if (nr >= 0)
                policy_syscall_name(nr, name, sizeof(name));
        notifier_format(line, sizeof(line), ctx, name, count);
        log_warning("%s", line);
}

/* Learning: SIGTERM once the duration is over, SIGKILL this long after. */
#define LEARN_STOP_GRACE_MS 10000

/* When the tenant must stop (0: never): `tenantctl policy learn --duration`. */
struct stop_at {
        uint64_t term_ms, kill_ms;
};

/* The timeout until the next stop step, merged with `timeout`; sends what is due. */
static int stop_step(struct stop_at *s, struct sandbox *sb, uint64_t now, int timeout)
{
        if (s->term_ms && now >= s->term_ms) {
                log_info("the learning time is over: stopping the service (SIGTERM)");
                (void)sandbox_signal(sb, SIGTERM);
                s->term_ms = 0;
        }
        if (s->kill_ms && now >= s->kill_ms) {
                log_warning("the service did not stop within %d s: killing it",
                            LEARN_STOP_GRACE_MS / 1000);
                (void)sandbox_signal(sb, SIGKILL);
                s->kill_ms = 0;
        }
        uint64_t next = s->term_ms ? s->term_ms : s->kill_ms;
        if (!next)
                return timeout;
        int in = (int)(next - now);
        return timeout < 0 || in < timeout ? in : timeout;
}

/* Forwards signals until the tenant's init exits, answering its notified calls;
 * returns the service's status. */
static int supervise(struct sandbox *sb, const char *name, const sigset_t *forwarded,
                     struct stop_at *stop)
{
        _cleanup_close_ int sfd = signalfd(-1, forwarded, SFD_CLOEXEC);
        int interrupts = 0;
        for (;;) {
                struct pollfd fds[3] = {{.fd = sb->pidfd, .events = POLLIN},
                                        {.fd = sfd, .events = POLLIN}};
                uint64_t now = clock_ms(CLOCK_MONOTONIC);
                int timeout = notifier_pollfd(sb->notifier, now, &fds[2], -1);
                timeout = stop_step(stop, sb, now, timeout);
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

/* Learning (`tenantctl policy learn`): how long, and where the profile goes. */
struct learning {
        uint64_t duration_ms;
        const char *out;
        const char *source;  /* the manifest, for the profile's header */
        struct policy *ref;  /* the manifest's profile: how calls are answered */
        struct policy *dflt; /* "default": what is dangerous */
        int answers[NOTIFY_MAX_NR];
};

/* Learning: the calls the notifier counted, with the init's (sandbox.h) added, into
 * a profile at l->out. */
static int write_learned(const struct learning *l, const struct notifier *n, uint64_t took_ms)
{
        static const char *const init_calls[] = {SANDBOX_INIT_SYSCALLS, SANDBOX_SETUP_SYSCALLS};
        struct learned_call calls[NOTIFY_MAX_NR + ARRAY_SIZE(init_calls)];
        char names[NOTIFY_MAX_NR][64];
        size_t k = 0;
        for (int nr = 0; n && nr < NOTIFY_MAX_NR; nr++)
                if (n->seen[nr]) {
                        policy_syscall_name(nr, names[nr], sizeof(names[nr]));
                        calls[k++] = (struct learned_call){names[nr], n->seen[nr]};
                }
        for (size_t i = 0; i < ARRAY_SIZE(init_calls); i++) {
                bool have = false;
                for (size_t j = 0; j < k && !have; j++)
                        have = strcmp(calls[j].name, init_calls[i]) == 0;
                if (!have)
                        calls[k++] = (struct learned_call){init_calls[i], 0};
        }
        if (n && n->seen[NOTIFY_MAX_NR])
                log_warning("warning: %" PRIu64 " calls numbered above %d were seen and are not "
                            "in the profile",
                            n->seen[NOTIFY_MAX_NR], NOTIFY_MAX_NR);
        _cleanup_err_ struct tn_err *err = NULL;
        char dur[32], desc[256], header[PATH_MAX + 512];
        format_duration(took_ms, dur);
        snprintf(desc, sizeof(desc),
                 "learned by tenantctl policy learn: what the service called in %s, as its "
                 "profile %s answered; anything else fails with EPERM",
                 dur, l->ref->name);
        snprintf(header, sizeof(header),
                 "Learned by `tenantctl policy learn` from %s (%s, %" PRIu64 " calls seen),\n"
                 "answered as its profile `%s` answers them. Format: docs/policies.md.\n"
                 "The rules are those of `%s` for the calls seen; a call marked (init) is made\n"
                 "by the sandbox's init or its setup, not the service (sandbox.h).",
                 l->source, dur, n ? n->total : 0, l->ref->name, l->ref->name);
        _cleanup_free_ char *text = NULL;
        struct learned_summary sum;
        if (policy_learned_profile(l->ref, l->dflt, calls, k, desc, header, &text, &sum, &err) <
                0 ||
            write_file_atomic(l->out, text, strlen(text), 0644, &err) < 0) {
                log_error("%s: %s", l->out, tn_err_msg(err));
                return EXIT_FAILED;
        }
        const char *base = strrchr(l->out, '/');
        base = base ? base + 1 : l->out;
        _cleanup_policy_bpf_ struct policy_bpf *refb = NULL;
        size_t ref_allowed = policy_compile(l->ref, &refb, NULL) == 0 ? refb->n_allowed : 0;
        log_info("wrote %s: %zu calls allowed (%s allows %zu), %zu attempted and refused as %s "
                 "refuses them",
                 l->out, sum.allowed, l->ref->name, ref_allowed, sum.refused, l->ref->name);
        if (sum.dangerous)
                log_warning("warning: calls seen of the families that default blocks: %zu; read "
                            "the DANGEROUS comments in %s",
                            sum.dangerous, l->out);
        log_info("use it: copy it to /etc/tenantd/policies/seccomp/ and name it in the manifest: "
                 "\"policy\": {\"seccomp\": \"%.*s\"}",
                 (int)(strlen(base) - 5), base);
        return EXIT_OK;
}

static int run_manifest(const struct cli *cli, const char *path, char **override,
                        struct learning *learn);

/* Learning from a microVM: the runner (tenantd-vm-runner, a child here rather than this
 * process as for `run`) tells the guest agent to record every call the service makes
 * under a filter that answers as the manifest's profile would (guest_seccomp.h), and
 * writes the counts the agent reports at the service's end to TENANTD_LEARN_FD: one
 * "NR COUNT" line per call, then "end". They are the guest's word: each line is checked
 * (a number below NOTIFY_MAX_NR, or NOTIFY_MAX_NR for "other", each once; a count from 1
 * to 2^53-1) and the whole is bounded (what a pipe and NOTIFY_MAX_NR + 2 lines hold).
 * After the duration the runner gets SIGTERM, which it passes to the service; one it
 * does not stop by LEARN_STOP_GRACE_MS later is killed, and nothing is written. */
static bool learned_line(const char *line, struct notifier *n)
{
        char *end;
        errno = 0;
        unsigned long nr = strtoul(line, &end, 10);
        if (end == line || *end != ' ' || nr > NOTIFY_MAX_NR || n->seen[nr])
                return false;
        const char *c = end + 1;
        unsigned long long count = strtoull(c, &end, 10);
        if (end == c || *end != '\0' || errno || count < 1 || count > 9007199254740991ULL ||
            *c == '-' || *c == '+')
                return false;
        n->seen[nr] = count;
        n->total += count;
        return true;
}

static int learn_vm(const struct manifest *m, struct learning *learn, const char *state_dir,
                    const char *storage_dir, const char *master_key)
{
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0) {
                log_error("pipe: %m");
                return EXIT_FAILED;
        }
        sigset_t forwarded, old;
        sigemptyset(&forwarded);
        static const int vm_sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
        for (size_t i = 0; i < ARRAY_SIZE(vm_sigs); i++)
                sigaddset(&forwarded, vm_sigs[i]);
        sigprocmask(SIG_BLOCK, &forwarded, &old);
        int pidfd = -1;
        pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, NULL, &pidfd, NULL, 0);
        if (pid < 0) {
                log_error("fork: %m");
                return EXIT_FAILED;
        }
        if (pid == 0) {
                char fdstr[16];
                fcntl(pipefd[1], F_SETFD, 0);
                snprintf(fdstr, sizeof(fdstr), "%d", pipefd[1]);
                setenv("TENANTD_LEARN_FD", fdstr, 1);
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                _cleanup_err_ struct tn_err *vm_err = NULL;
                (void)vm_runner_exec(m, NULL, state_dir, storage_dir, master_key, &vm_err);
                log_error("cannot start \"%s\": %s", m->name, tn_err_msg(vm_err));
                _exit(EXIT_FAILED);
        }
        close(pipefd[1]);
        int sfd = signalfd(-1, &forwarded, SFD_CLOEXEC);
        struct notifier *n = calloc(1, sizeof(*n));
        char buf[64 * (NOTIFY_MAX_NR + 2)];
        size_t len = 0;
        bool ended = false, bad = false, end_seen = false;
        uint64_t started = clock_ms(CLOCK_MONOTONIC), term_ms = started + learn->duration_ms,
                 kill_ms = 0;
        while (!ended) {
                uint64_t now = clock_ms(CLOCK_MONOTONIC);
                if (!kill_ms && now >= term_ms) {
                        kill(pid, SIGTERM); /* passed on to the service by the runner */
                        kill_ms = now + LEARN_STOP_GRACE_MS;
                } else if (kill_ms && now >= kill_ms) {
                        log_warning("the service did not stop within %d s of SIGTERM: stopping "
                                    "the VM",
                                    LEARN_STOP_GRACE_MS / 1000);
                        kill(pid, SIGKILL);
                        kill_ms = UINT64_MAX;
                }
                uint64_t next = kill_ms ? kill_ms : term_ms;
                int timeout = next == UINT64_MAX ? -1 : next > now ? (int)(next - now) : 0;
                struct pollfd p[3] = {{.fd = pipefd[0], .events = POLLIN},
                                      {.fd = pidfd, .events = POLLIN},
                                      {.fd = sfd, .events = POLLIN}};
                if (poll(p, 3, timeout) < 0 && errno != EINTR)
                        break;
                if (p[0].revents) {
                        ssize_t got = read(pipefd[0], buf + len, sizeof(buf) - 1 - len);
                        if (got > 0)
                                len += (size_t)got;
                        if (len >= sizeof(buf) - 1)
                                bad = true;
                        if (got <= 0 || bad) {
                                close(pipefd[0]);
                                pipefd[0] = -1;
                        }
                }
                struct signalfd_siginfo si;
                /* The operator's Ctrl-C reaches the runner from the terminal already;
                 * a signal sent to tenantctl alone is passed on. */
                if (p[2].revents && read(sfd, &si, sizeof(si)) == sizeof(si) &&
                    si.ssi_code == SI_USER)
                        kill(pid, (int)si.ssi_signo);
                if (p[1].revents)
                        ended = true;
        }
        siginfo_t wi = {0};
        while (waitid(P_PIDFD, (id_t)pidfd, &wi, WEXITED) < 0 && errno == EINTR)
                ;
        if (pipefd[0] >= 0) { /* what is left after the runner ended */
                ssize_t got;
                while (!bad && (got = read(pipefd[0], buf + len, sizeof(buf) - 1 - len)) > 0)
                        if ((len += (size_t)got) >= sizeof(buf) - 1)
                                bad = true;
                close(pipefd[0]);
        }
        close(pidfd);
        if (sfd >= 0)
                close(sfd);
        sigprocmask(SIG_SETMASK, &old, NULL);
        buf[len] = '\0';
        for (char *save = NULL, *line = strtok_r(buf, "\n", &save); n && line && !bad && !end_seen;
             line = strtok_r(NULL, "\n", &save)) {
                if (strcmp(line, "end") == 0)
                        end_seen = true;
                else
                        bad = !learned_line(line, n);
        }
        int status = wi.si_code == CLD_EXITED ? wi.si_status : 128 + wi.si_status;
        int rc = EXIT_FAILED;
        if (!n)
                log_error("out of memory");
        else if (bad)
                log_error("\"%s\": the counts from the guest are malformed; no profile written",
                          m->name);
        else if (!end_seen)
                log_error("\"%s\": the guest reported no counts (runner status %d); no profile "
                          "written",
                          m->name, status);
        else {
                if (status != 0)
                        log_warning("warning: the service ended with status %d; the profile "
                                    "holds what it called until then",
                                    status);
                rc = write_learned(learn, n, clock_ms(CLOCK_MONOTONIC) - started);
        }
        free(n);
        return rc;
}

int cmd_run(const struct cli *cli, int argc, char **argv)
{
        (void)argc;
        return run_manifest(cli, argv[1], cli->cmd, NULL);
}

int cmd_policy_learn(const struct cli *cli, int argc, char **argv)
{
        (void)argc;
        struct learning l = {.duration_ms = LEARN_DEFAULT_MS, .source = argv[1]};
        char why[128];
        for (size_t i = 0; i < cli->opts_n; i++) {
                if (cli->opts[i].id == OPT_DURATION &&
                    (parse_duration(cli->opts[i].arg, &l.duration_ms, why, sizeof(why)) < 0 ||
                     l.duration_ms == 0))
                        return cli_usage_error(cli, "--duration: %s",
                                               l.duration_ms ? why : "must be more than 0");
                if (cli->opts[i].id == OPT_OUT)
                        l.out = cli->opts[i].arg;
        }
        if (!l.out)
                return cli_usage_error(cli, "--out FILE is required");
        /* The profile is found by its name (policy.h): the file must be NAME.json. */
        const char *base = strrchr(l.out, '/');
        base = base ? base + 1 : l.out;
        size_t blen = strlen(base);
        char stem[80];
        if (blen <= 5 || blen - 5 >= sizeof(stem) || strcmp(base + blen - 5, ".json") != 0)
                return cli_usage_error(cli,
                                       "--out %s: the file must be NAME.json, NAME the "
                                       "profile's name ([a-z0-9-])",
                                       l.out);
        snprintf(stem, sizeof(stem), "%.*s", (int)(blen - 5), base);
        /* Said now, not after the whole duration. */
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%.*s", base == l.out ? 1 : (int)(base - l.out),
                 base == l.out ? "." : l.out);
        if (access(dir, W_OK) < 0) {
                log_error("--out %s: cannot write in %s: %m", l.out, dir);
                return EXIT_USAGE;
        }
        if (!is_simple_name(stem))
                return cli_usage_error(cli,
                                       "--out %s: \"%s\" is not a profile name ([a-z0-9-], "
                                       "not starting or ending with '-')",
                                       l.out, stem);
        int rc = run_manifest(cli, argv[1], NULL, &l);
        policy_free(l.ref);
        policy_free(l.dflt);
        return rc;
}

static int run_manifest(const struct cli *cli, const char *path, char **override,
                        struct learning *learn)
{
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
                if (m->network.publish[i].bind_family == AF_INET6 && !m->network.ipv6)
                        log_warning("warning: %s: network.publish[%zu] is bound to an IPv6 address "
                                    "and is not published: network.ipv6 is false",
                                    path, i);
                else if (m->network.publish[i].bind_family == AF_INET6 &&
                         memcmp(m->network.publish[i].bind_addr, &in6addr_loopback, 16) == 0)
                        log_warning(
                            "warning: %s: network.publish[%zu] is bound to ::1, which Linux "
                            "never forwards out of loopback: no client can reach it; use "
                            "127.0.0.1 or another of the host's addresses",
                            path, i);
        if (geteuid() != 0) {
                log_error("tenantctl %s needs root: it creates namespaces and cgroups and maps "
                          "a host uid range for the tenant (the tenant itself gets no privilege)",
                          learn ? "policy learn" : "run");
                return EXIT_FAILED;
        }

        if (learn && m->isolation == ISOLATION_MICROVM) {
                if (policy_load(m->policy.seccomp, &learn->ref, NULL) < 0 ||
                    policy_load("default", &learn->dflt, NULL) < 0) {
                        _cleanup_err_ struct tn_err *perr = NULL;
                        (void)policy_load(m->policy.seccomp, &learn->ref, &perr);
                        log_error("%s: policy.seccomp: %s", path, tn_err_msg(perr));
                        return EXIT_USAGE;
                }
                return learn_vm(m, learn, state_dir, storage_dir, master_key);
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
        /* Learning: the manifest's capabilities, and instead of its profile the filter
         * that notifies every call (policy.h). */
        if (learn ? launch_resolve_caps(m, &caps, &caps_n, &err) < 0 ||
                        policy_learning_filter(&bpf, &err) < 0
                  : launch_resolve_policy(m, state_dir, &bpf, &caps, &caps_n, &err) < 0) {
                log_error("%s: %s", path, tn_err_msg(err));
                return EXIT_USAGE;
        }
        /* Learning: calls are answered as the manifest's profile answers them. */
        if (learn && (policy_load(m->policy.seccomp, &learn->ref, &err) < 0 ||
                      policy_load("default", &learn->dflt, &err) < 0)) {
                log_error("%s: policy.seccomp: %s", path, tn_err_msg(err));
                return EXIT_USAGE;
        }
        if (learn)
                policy_learning_answers(learn->ref, learn->answers, NOTIFY_MAX_NR);

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
            .learn = learn != NULL,
            .learn_answers = learn ? learn->answers : NULL,
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
        uint64_t started = clock_ms(CLOCK_MONOTONIC);
        struct stop_at stop = {0};
        if (learn) {
                stop.term_ms = started + learn->duration_ms;
                stop.kill_ms = stop.term_ms + LEARN_STOP_GRACE_MS;
                if (!sb->notifier)
                        log_warning("warning: the learning filter's listener did not arrive: "
                                    "nothing is recorded");
        }
        int status = supervise(sb, m->name, &forwarded, &stop);
        if (learn) {
                if (status != 0 && stop.term_ms)
                        log_warning("warning: the service ended with status %d; the profile "
                                    "holds what it called until then",
                                    status);
                status = write_learned(learn, sb->notifier, clock_ms(CLOCK_MONOTONIC) - started);
        }
        _cleanup_err_ struct tn_err *derr = NULL;
        if (sandbox_destroy(sb, &derr) < 0)
                log_warning("cleanup of \"%s\": %s", m->name, tn_err_msg(derr));
        volumes_close(m->name);
        return status;
}
