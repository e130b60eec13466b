/* backup.c — backups and restores of a tenant's volumes with restic (docs/backup.md).
 *
 * tenantd's loop never waits: each backup operation runs in a worker, a child of tenantd
 * that does the whole job in order and writes what the operator reads to a pipe; tenantd
 * answers the client when the worker ends. A backup, step by step:
 *
 *  1. The password file must be root's and not readable or writable by group or others:
 *     it opens the repository, so a copy anyone could read is refused. Its path is
 *     handed to restic; its contents are never read or logged here.
 *  2. `backup.pre`, if any, runs inside the tenant with the tenant's confinement (the
 *     exec path of `tenantctl exec`; in a microVM through its runner and the guest's
 *     agent) and must exit 0.
 *  3. The tenant is frozen (its cgroup: host/cgroup.h), then each volume's file system
 *     on the host (FIFREEZE), its image copied (a reflink where the file system can,
 *     otherwise a sparse copy: storage/volume.h), and everything thawed. The freeze time
 *     runs from the cgroup's freeze to its thaw. A worker that dies meanwhile is
 *     noticed by tenantd, which thaws the tenant and its file systems itself.
 *  4. The worker moves into a cgroup of its own under tenantd's (backup-of-NAME, with
 *     backup.limits), so restic gets only that much CPU and memory.
 *  5. For each volume a child enters a new mount namespace, private, mounts the copy
 *     read-only there (an encrypted volume's key added to that file system only) and
 *     becomes restic (nice, ionice), which backs up the volume's `data` tagged with the
 *     tenant, the volume, the manifest's hash and tenantd's version. The mount, the key
 *     and the loop device go with that namespace; the copy is removed.
 *  6. `restic forget --prune` by backup.keep, for this tenant's snapshots only.
 *
 * A restore (tenant_op_restore) fills new volumes: in place, the stopped tenant's images
 * are moved aside (VOLUME.img.pre-restore, only with the operator's --yes when they
 * exist); with --as, a copy of the manifest under the new name makes a new tenant
 * (daemon_tenant_copy). restic restores each snapshot into the new volume, the files'
 * ids are moved into the tenant's range, and the tenant is started: the old images go
 * once it runs (backup_restore_started), and stay, said where, when it does not. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/monitor_glue.h"
#include "host/cgroup.h"
#include "host/uidrange.h"
#include "lib/cleanup.h"
#include "lib/clock.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/version.h"
#include "proto/control_proto.h"
#include "proto/exec_proto.h"
#include "proto/runner_proto.h"
#include "spec/backup_schedule.h"
#include "spec/backup_sftp.h"
#include "storage/volume.h"

#define RESTIC "/usr/bin/restic"
#define BACKUP_MOUNT_DIR "/run/tenantd-backup"
#define WORKER_OUT_MAX (48U << 10) /* what the worker says; below a pipe's buffer */
#define FREEZE_BOUND_S 60          /* the longest a tenant stays frozen (docs/backup.md) */

struct backup_job {
        struct watch w; /* the worker's pidfd */
        pid_t pid;
        int out; /* the worker's output pipe */
        enum control_backup_action action;
        struct tenant *t;
        uint64_t started_mono; /* ms: a backup's duration runs from here to its end */
};

/* ---- in the worker ---- */

/* A file of root's that group and others cannot write (nor, with `secret`, read): what
 * opens the repository (the password, ssh's key) and what says which server is the
 * right one (known_hosts). Only its owner and mode are read here, never its contents. */
static int check_root_file(const char *what, const char *path, bool secret, FILE *out)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                fprintf(out, "cannot open the %s %s: %s\n", what, path, strerror(errno));
                return -1;
        }
        mode_t bad = secret ? 077 : 022;
        if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & bad)) {
                fprintf(out,
                        "the %s %s must be a file of root's that group and others can %s (it is "
                        "uid %u, mode %04o): chmod %s it\n",
                        what, path, secret ? "neither read nor write" : "not write",
                        (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
                        secret ? "600" : "644");
                return -1;
        }
        return 0;
}

/* Step 1: the files restic and its ssh read. */
static int check_repository_files(const struct manifest *m, FILE *out)
{
        const struct backup_spec *b = &m->backup;
        if (check_root_file("password file", b->password_file, true, out) < 0)
                return -1;
        if (b->ssh_key && check_root_file("ssh key (backup.ssh_key)", b->ssh_key, true, out) < 0)
                return -1;
        if (b->known_hosts && check_root_file("known hosts file (backup.known_hosts)",
                                              b->known_hosts, false, out) < 0)
                return -1;
        return 0;
}

/* restic's command line: the repository, the password file, a cache of tenantd's and,
 * for an sftp repository, tenantd's ssh command (spec/backup_sftp.h). */
struct restic_bufs {
        char cache[PATH_MAX + 32];
        char sftp[2 * PATH_MAX + 1024];
};

static size_t restic_argv(struct daemon *d, const struct manifest *m, const char **argv,
                          struct restic_bufs *rb)
{
        snprintf(rb->cache, sizeof(rb->cache), "--cache-dir=%s/backup-cache", d->cfg.state_dir);
        size_t n = 0;
        argv[n++] = "restic";
        argv[n++] = "-r";
        argv[n++] = m->backup.repository;
        argv[n++] = "--password-file";
        argv[n++] = m->backup.password_file;
        argv[n++] = rb->cache;
        struct backup_sftp sftp;
        /* the manifest parser made sure these hold (a failure here leaves restic's own) */
        if (backup_is_sftp(m->backup.repository) && m->backup.ssh_key && m->backup.known_hosts &&
            backup_sftp_parse(m->backup.repository, &sftp, NULL) == 0 &&
            backup_sftp_option(&sftp, m->backup.ssh_key, m->backup.known_hosts, rb->sftp,
                               sizeof(rb->sftp)) == 0) {
                argv[n++] = "-o";
                argv[n++] = rb->sftp;
        }
        return n;
}

/* What ssh said when it could not reach an sftp repository, in words that say which
 * manifest key to look at: put before restic's output in buf. */
static void sftp_hint(const struct manifest *m, char *buf, size_t len)
{
        const struct backup_spec *b = &m->backup;
        if (!backup_is_sftp(b->repository) || !b->ssh_key || !b->known_hosts)
                return;
        char hint[PATH_MAX + 512];
        if (strstr(buf, "Host key verification failed") ||
            strstr(buf, "REMOTE HOST IDENTIFICATION HAS CHANGED"))
                snprintf(hint, sizeof(hint),
                         "the sftp server's host key is not the one in backup.known_hosts (%s): "
                         "add the server's key there (ssh-keyscan, after checking its "
                         "fingerprint on the server)\n",
                         b->known_hosts);
        else if (strstr(buf, "Permission denied (") || strstr(buf, "Too many authentication"))
                snprintf(hint, sizeof(hint),
                         "the sftp server refused the key backup.ssh_key (%s): add its public "
                         "key to the repository user's authorized_keys on the server\n",
                         b->ssh_key);
        else if (strstr(buf, "Connection refused") || strstr(buf, "Connection timed out") ||
                 strstr(buf, "Could not resolve hostname") || strstr(buf, "No route to host"))
                snprintf(hint, sizeof(hint),
                         "ssh cannot reach the sftp server of %s (see ssh's words below)\n",
                         b->repository);
        else if (strstr(buf, "unable to start the sftp session"))
                /* ssh ended before the session, and restic kept none of its words (restic
                 * 0.14 loses them now and then): both files are named */
                snprintf(hint, sizeof(hint),
                         "ssh ended before the sftp session began: either the server's host "
                         "key is not in backup.known_hosts (%s), or the server refused the key "
                         "backup.ssh_key (%s) (its public key belongs in the repository user's "
                         "authorized_keys there)\n",
                         b->known_hosts, b->ssh_key);
        else
                return;
        size_t hl = strlen(hint), bl = strlen(buf);
        if (hl >= len)
                return;
        if (bl > len - 1 - hl)
                bl = len - 1 - hl;
        memmove(buf + hl, buf, bl);
        memcpy(buf, hint, hl);
        buf[hl + bl] = '\0';
}

/* The time a backup is recorded at (restic backup --time, local time as restic reads
 * it): tenantd's clock, moved by TENANTD_TEST_CLOCK_OFFSET seconds when that is set.
 * The variable is for tests (retention over simulated days: test_backup_retention.sh);
 * only whoever starts tenantd sets its environment, so no tenant, manifest or control
 * request can move a snapshot's time. A value that is not a whole number of seconds
 * (at most 10 digits, with an optional "-") fails the backup rather than be ignored. */
static int backup_time(char *buf, size_t len, long long *ret_offset, FILE *out)
{
        long long off = 0;
        const char *env = secure_getenv("TENANTD_TEST_CLOCK_OFFSET");
        if (env && *env) {
                const char *p = env + (env[0] == '-');
                size_t digits = strspn(p, "0123456789");
                if (digits == 0 || digits > 10 || p[digits]) {
                        fprintf(out,
                                "TENANTD_TEST_CLOCK_OFFSET=%.32s is not a number of seconds such "
                                "as 86400 or -3600 (it is for tests; unset it)\n",
                                env);
                        return -1;
                }
                off = strtoll(env, NULL, 10);
        }
        time_t when = time(NULL) + (time_t)off;
        struct tm tm;
        if (!localtime_r(&when, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0) {
                fprintf(out, "cannot tell the time of the backup\n");
                return -1;
        }
        *ret_offset = off;
        return 0;
}

static _Noreturn void exec_restic(const struct manifest *m, const char *const *argv, int outfd,
                                  bool confine)
{
        /* TZ as tenantd has it: restic reads backup --time and shows times in it */
        static char tz[128];
        const char *tzv = getenv("TZ");
        if (tzv && strlen(tzv) < sizeof(tz) - 4)
                snprintf(tz, sizeof(tz), "TZ=%s", tzv);
        const char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C",
                                    tz[0] ? tz : NULL, NULL};
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null < 0 || dup2(null, 0) < 0 || dup2(outfd, 1) < 0 || dup2(outfd, 2) < 0)
                _exit(127);
        if (confine) {
                (void)setpriority(PRIO_PROCESS, 0, (int)m->backup.limits.nice);
                /* ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | level) */
                int prio = m->backup.limits.io == BACKUP_IO_IDLE ? (3 << 13) : (2 << 13 | 7);
                (void)syscall(SYS_ioprio_set, 1, 0, prio);
        }
        execve(RESTIC, (char *const *)argv, (char *const *)envp);
        dprintf(2, "cannot run %s: %s (install restic)\n", RESTIC, strerror(errno));
        _exit(127);
}

/* Reads all of fd into out (the last out_len - 1 bytes), then reaps pid: its status. */
static int collect(pid_t pid, int fd, char *out, size_t out_len)
{
        size_t got = 0;
        for (;;) {
                char buf[4096];
                ssize_t r = read(fd, buf, sizeof(buf));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                for (ssize_t k = 0; k < r; k++) {
                        if (got == out_len - 1) {
                                memmove(out, out + 1, out_len - 2);
                                got--;
                        }
                        out[got++] = buf[k];
                }
        }
        out[got] = '\0';
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs restic with argv (a child of the worker), its output in out. */
static int run_restic(const struct manifest *m, const char *const *argv, bool confine, char *out,
                      size_t out_len)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL); /* restic goes with its worker */
                exec_restic(m, argv, p[1], confine);
        }
        close(p[1]);
        int st = collect(pid, p[0], out, out_len);
        close(p[0]);
        if (st != 0)
                sftp_hint(m, out, out_len);
        return st;
}

static uint64_t fnv1a(const char *s)
{
        uint64_t h = 1469598103934665603ULL;
        for (; s && *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        return h;
}

static int mkdir_root(const char *path)
{
        return mkdir(path, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* Step 5 for one volume: restic in a private mount namespace with the copy mounted. */
/* A number member of restic's summary line ("total_bytes_processed":N), added to *sum. */
static void add_summary(const char *buf, const char *key, uint64_t *sum)
{
        char pat[64];
        snprintf(pat, sizeof(pat), "\"%s\":", key);
        const char *p = strstr(buf, pat);
        if (p)
                *sum += strtoull(p + strlen(pat), NULL, 10);
}

static int backup_volume(struct daemon *d, struct tenant *t, const struct volume_spec *vs,
                         const char *snap, const char *when, FILE *out, char *id, size_t id_len,
                         uint64_t *size, uint64_t *added)
{
        const struct manifest *m = t->m;
        char target[PATH_MAX], data[PATH_MAX + 8];
        snprintf(target, sizeof(target), "%s/%s", BACKUP_MOUNT_DIR, t->name);
        if (mkdir_root(BACKUP_MOUNT_DIR) < 0 || mkdir_root(target) < 0 ||
            (snprintf(target, sizeof(target), "%s/%s/%s", BACKUP_MOUNT_DIR, t->name, vs->name),
             mkdir_root(target) < 0)) {
                fprintf(out, "cannot create %s: %s\n", target, strerror(errno));
                return -1;
        }
        snprintf(data, sizeof(data), "%s/data", target);
        struct restic_bufs rb;
        char tags[4][160];
        const char *argv[32];
        size_t n = restic_argv(d, m, argv, &rb);
        snprintf(tags[0], sizeof(tags[0]), "tenant=%s", t->name);
        snprintf(tags[1], sizeof(tags[1]), "volume=%s", vs->name);
        snprintf(tags[2], sizeof(tags[2]), "manifest=%016" PRIx64, fnv1a(t->explained));
        snprintf(tags[3], sizeof(tags[3]), "tenantd=%s", TENANTD_VERSION);
        argv[n++] = "backup";
        argv[n++] = "--quiet";
        argv[n++] = "--json";
        argv[n++] = "--time";
        argv[n++] = when;
        for (int i = 0; i < 4; i++) {
                argv[n++] = "--tag";
                argv[n++] = tags[i];
        }
        argv[n++] = ".";
        argv[n] = NULL;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                _cleanup_err_ struct tn_err *err = NULL;
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (unshare(CLONE_NEWNS) < 0 ||
                    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                        dprintf(p[1], "cannot make a private mount namespace: %s\n",
                                strerror(errno));
                        _exit(1);
                }
                if (volume_mount_snapshot(d->cfg.storage_dir, d->cfg.master_key, t->name, vs, snap,
                                          target, &err) < 0) {
                        dprintf(p[1], "%s\n", tn_err_msg(err));
                        _exit(1);
                }
                if (chdir(data) < 0) {
                        dprintf(p[1], "cannot enter %s: %s\n", data, strerror(errno));
                        _exit(1);
                }
                exec_restic(m, argv, p[1], true);
        }
        close(p[1]);
        char buf[8192];
        int st = collect(pid, p[0], buf, sizeof(buf));
        close(p[0]);
        (void)rmdir(target);
        if (st != 0)
                sftp_hint(m, buf, sizeof(buf));
        const char *sid = strstr(buf, "\"snapshot_id\":\"");
        if (st != 0 || !sid) {
                fprintf(out, "restic backup of volume %s failed (exit %d): %s\n", vs->name, st,
                        buf);
                return -1;
        }
        /* the summary: the volume's bytes read, and what the repository grew by */
        const char *sum = strstr(buf, "\"message_type\":\"summary\"");
        add_summary(sum ? sum : buf, "total_bytes_processed", size);
        add_summary(sum ? sum : buf, "data_added", added);
        sid += 15;
        size_t len = strcspn(sid, "\"");
        snprintf(id, id_len, "%.*s", (int)(len < id_len ? len : id_len - 1), sid);
        return 0;
}

/* Step 2 in a microVM: the command goes to the VM's runner (STATE/vm/NAME/exec.sock),
 * as `tenantctl exec` does, and its frames are read until the exit status; its output
 * is dropped. The guest's agent runs it with the tenant's confinement. */
static int run_pre_vm(struct daemon *d, struct tenant *t, FILE *out)
{
        const char *const *argv = (const char *const *)t->m->backup.pre;
        size_t argc = 0;
        while (argv[argc])
                argc++;
        struct runner_request rr = {.kind = RUNNER_EXEC, .argv = argv, .argc = argc};
        _cleanup_free_ char *req = NULL;
        size_t len;
        if (runner_request_encode(&rr, &req, &len) < 0) {
                fprintf(out, "backup.pre: the command is too long for the microVM's runner\n");
                return -1;
        }
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/vm/%s/exec.sock", d->cfg.state_dir, t->name);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
                fprintf(out, "backup.pre: cannot reach the microVM's runner: %s\n",
                        strerror(errno));
                return -1;
        }
        _cleanup_free_ uint8_t *buf = malloc(EXEC_FRAME_HEADER + EXEC_FRAME_MAX);
        size_t have = 0;
        while (buf) {
                ssize_t n = recv(fd, buf + have, EXEC_FRAME_HEADER + EXEC_FRAME_MAX - have, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                have += (size_t)n;
                size_t off = 0;
                struct exec_frame f;
                int r;
                while ((r = exec_frame_decode(buf + off, have - off, false, &f)) > 0) {
                        off += (size_t)r;
                        if (f.type != EXEC_EXIT)
                                continue;
                        uint32_t st = exec_be32(f.data);
                        if (st == 0)
                                return 0;
                        fprintf(out, "backup.pre %s failed (exit %u)\n", argv[0], st);
                        return -1;
                }
                if (r < 0)
                        break;
                memmove(buf, buf + off, have - off);
                have -= off;
        }
        fprintf(out, "backup.pre %s: the microVM's runner ended without an exit status\n", argv[0]);
        return -1;
}

/* Steps 2 and 3: `pre` (sandbox: the exec path; exit 0 wanted). */
static int run_pre(struct daemon *d, struct tenant *t, FILE *out)
{
        if (!t->m->backup.pre)
                return 0;
        if (t->state != TENANT_RUNNING) {
                fprintf(out, "backup.pre needs the tenant running (it is %s)\n",
                        tenant_state_name(t->state));
                return -1;
        }
        if (t->m->isolation == ISOLATION_MICROVM)
                return run_pre_vm(d, t, out);
        _cleanup_err_ struct tn_err *err = NULL;
        const int stdio[3] = {-1, -1, -1};
        pid_t pid;
        int fd = tenant_exec_spawn(d, t, t->m->backup.pre, stdio, false, &pid, &err);
        if (fd < 0) {
                fprintf(out, "backup.pre: %s\n", tn_err_msg(err));
                return -1;
        }
        siginfo_t si = {0};
        int r = waitid(P_PIDFD, (id_t)fd, &si, WEXITED);
        close(fd);
        if (r < 0 || si.si_code != CLD_EXITED || si.si_status != 0) {
                fprintf(out, "backup.pre %s failed (%s %d)\n", t->m->backup.pre[0],
                        si.si_code == CLD_EXITED ? "exit" : "signal", si.si_status);
                return -1;
        }
        return 0;
}

static bool tenant_up(const struct tenant *t)
{
        return t->state == TENANT_RUNNING || t->state == TENANT_STARTING ||
               t->state == TENANT_STOPPING;
}

/* Step 3: freeze, copy, thaw; the copies' paths in snaps[]. */
static int take_snapshots(struct daemon *d, struct tenant *t, char snaps[][PATH_MAX],
                          uint64_t *ret_freeze_ms, bool *ret_reflink, FILE *out)
{
        const struct manifest *m = t->m;
        _cleanup_err_ struct tn_err *err = NULL;
        bool up = tenant_up(t);
        uint64_t t0 = mono_ms();
        int r = up ? tenant_cgroup_freeze(t->name, true, &err) : 0;
        for (size_t i = 0; r >= 0 && i < m->volumes_n; i++) {
                if (!backup_includes(m, m->volumes[i].name))
                        continue;
                if (up) {
                        r = volume_fs_freeze(t->name, m->volumes[i].name, true, &err);
                        if (r < 0)
                                break;
                        r = volume_snapshot(d->cfg.storage_dir, t->name, m->volumes[i].name,
                                            snaps[i], PATH_MAX, ret_reflink, &err);
                        (void)volume_fs_freeze(t->name, m->volumes[i].name, false, NULL);
                } else {
                        /* stopped: the image is not mounted, copy it as it is */
                        r = volume_snapshot(d->cfg.storage_dir, t->name, m->volumes[i].name,
                                            snaps[i], PATH_MAX, ret_reflink, &err);
                }
        }
        if (up)
                (void)tenant_cgroup_freeze(t->name, false, NULL);
        *ret_freeze_ms = up ? mono_ms() - t0 : 0;
        if (r < 0) {
                fprintf(out, "cannot take the snapshot: %s\n", tn_err_msg(err));
                for (size_t i = 0; i < m->volumes_n; i++)
                        if (snaps[i][0])
                                (void)unlink(snaps[i]);
                return -1;
        }
        return 0;
}

/* Step 4: the worker in backup-of-NAME with backup.limits. */
static int confine_worker(const struct tenant *t, FILE *out)
{
        char name[MANIFEST_NAME_MAX + 16];
        snprintf(name, sizeof(name), MANIFEST_BACKUP_CGROUP_PREFIX "%s", t->name);
        _cleanup_err_ struct tn_err *err = NULL;
        _cleanup_(tenant_cgroup_freep) struct tenant_cgroup *cg = NULL;
        struct tenant_limits l = {.cpu_millicpus = t->m->backup.limits.cpu_millicpus,
                                  .cpu_weight = 100,
                                  .memory_max = t->m->backup.limits.memory,
                                  .memory_high = CGROUP_UNLIMITED,
                                  .swap_max = CGROUP_UNLIMITED,
                                  .pids_max = 256};
        if (tenant_cgroup_create(name, &cg, &err) < 0 ||
            tenant_cgroup_set_limits(cg, &l, &err) < 0 ||
            tenant_cgroup_attach(cg, getpid(), &err) < 0) {
                fprintf(out, "cannot confine restic: %s\n", tn_err_msg(err));
                return -1;
        }
        return 0;
}

static int forget(struct daemon *d, const struct tenant *t, FILE *out)
{
        const struct manifest *m = t->m;
        struct restic_bufs rb;
        char tag[80], nums[6][16];
        const char *argv[40];
        size_t n = restic_argv(d, m, argv, &rb);
        snprintf(tag, sizeof(tag), "tenant=%s", t->name);
        argv[n++] = "forget";
        argv[n++] = "--quiet";
        argv[n++] = "--prune";
        argv[n++] = "--tag";
        argv[n++] = tag;
        const uint32_t keep[6] = {m->backup.keep.last,    m->backup.keep.hourly,
                                  m->backup.keep.daily,   m->backup.keep.weekly,
                                  m->backup.keep.monthly, m->backup.keep.yearly};
        static const char *const flags[6] = {"--keep-last",   "--keep-hourly",  "--keep-daily",
                                             "--keep-weekly", "--keep-monthly", "--keep-yearly"};
        for (int i = 0; i < 6; i++)
                if (keep[i]) {
                        snprintf(nums[i], sizeof(nums[i]), "%u", keep[i]);
                        argv[n++] = flags[i];
                        argv[n++] = nums[i];
                }
        argv[n] = NULL;
        char buf[4096];
        int st = run_restic(m, argv, true, buf, sizeof(buf));
        if (st != 0) {
                fprintf(out, "restic forget --prune failed (exit %d): %s\n", st, buf);
                return -1;
        }
        return 0;
}

static int worker_backup(struct daemon *d, struct tenant *t, FILE *out)
{
        const struct manifest *m = t->m;
        char when[32];
        long long offset;
        if (check_repository_files(m, out) < 0 ||
            backup_time(when, sizeof(when), &offset, out) < 0 || run_pre(d, t, out) < 0)
                return -1;
        char(*snaps)[PATH_MAX] = calloc(m->volumes_n, PATH_MAX);
        if (!snaps)
                return -1;
        uint64_t freeze_ms;
        bool reflink = false;
        /* The bound on a freeze: a worker still copying after FREEZE_BOUND_S dies of
         * SIGALRM, and tenantd, seeing it end by a signal, thaws the tenant. */
        alarm(FREEZE_BOUND_S);
        int taken = take_snapshots(d, t, snaps, &freeze_ms, &reflink, out);
        alarm(0);
        if (taken < 0) {
                free(snaps);
                return -1;
        }
        int r = confine_worker(t, out);
        char ids[512] = "";
        uint64_t size = 0, added = 0;
        for (size_t i = 0; r >= 0 && i < m->volumes_n; i++) {
                if (!snaps[i][0])
                        continue;
                char id[80];
                r = backup_volume(d, t, &m->volumes[i], snaps[i], when, out, id, sizeof(id), &size,
                                  &added);
                if (r >= 0)
                        snprintf(ids + strlen(ids), sizeof(ids) - strlen(ids), "%s%s=%s",
                                 ids[0] ? " " : "", m->volumes[i].name, id);
        }
        for (size_t i = 0; i < m->volumes_n; i++)
                if (snaps[i][0])
                        (void)unlink(snaps[i]);
        free(snaps);
        if (r < 0)
                return -1;
        when[10] = 'T'; /* one word in the line below */
        fprintf(out,
                "snapshot %s freeze_ms=%" PRIu64 " copy=%s size=%" PRIu64 " added=%" PRIu64
                "%s%s\n",
                ids, freeze_ms, reflink ? "reflink" : "sparse", size, added,
                offset ? " test_time=" : "", offset ? when : "");
        return forget(d, t, out);
}

static int worker_check(struct daemon *d, struct tenant *t, FILE *out)
{
        const struct manifest *m = t->m;
        if (check_repository_files(m, out) < 0)
                return -1;
        struct restic_bufs rb;
        const char *argv[24];
        size_t n = restic_argv(d, m, argv, &rb);
        argv[n++] = "check";
        argv[n] = NULL;
        static char buf[32 << 10];
        int st = run_restic(m, argv, false, buf, sizeof(buf));
        fprintf(out, "%s", buf);
        return st == 0 ? 0 : -1;
}

/* restic's JSON in text that may hold other lines before it (restic's notes on stderr
 * share the pipe): the value starting at the first line that opens with `open`. */
static struct json_value *restic_json(const char *text, char open)
{
        static const struct json_limits limits = {.max_bytes = 1U << 20, .max_depth = 16};
        const char *p = text;
        while (p && *p != open) {
                p = strchr(p, '\n');
                p = p ? p + 1 : NULL;
        }
        struct json_value *v = NULL;
        if (!p || json_parse(p, strlen(p), &limits, &v, NULL) < 0)
                return NULL;
        return v;
}

static const char *str_member(const struct json_value *v, const char *key)
{
        const struct json_value *x = json_get(v, key);
        return x && x->type == JSON_STRING ? x->u.str.text : NULL;
}

/* The value of the tag KEY=VALUE of a restic snapshot, or NULL. */
static const char *tag_value(const struct json_value *snap, const char *key)
{
        const struct json_value *tags = json_get(snap, "tags");
        size_t klen = strlen(key);
        for (size_t i = 0; tags && tags->type == JSON_ARRAY && i < tags->u.array.n; i++) {
                const struct json_value *x = tags->u.array.items[i];
                if (x->type == JSON_STRING && strncmp(x->u.str.text, key, klen) == 0 &&
                    x->u.str.text[klen] == '=')
                        return x->u.str.text + klen + 1;
        }
        return NULL;
}

/* One snapshot's size: what a restore of it writes (restic stats --mode restore-size). */
static void snapshot_size(struct daemon *d, const struct manifest *m, const char *id,
                          int64_t *ret_size, int64_t *ret_files)
{
        struct restic_bufs rb;
        const char *argv[24];
        size_t n = restic_argv(d, m, argv, &rb);
        argv[n++] = "stats";
        argv[n++] = "--json";
        argv[n++] = "--mode";
        argv[n++] = "restore-size";
        argv[n++] = id;
        argv[n] = NULL;
        char buf[4096];
        *ret_size = *ret_files = -1;
        if (run_restic(m, argv, true, buf, sizeof(buf)) != 0)
                return;
        _cleanup_json_ struct json_value *v = restic_json(buf, '{');
        const struct json_value *x;
        if (v && (x = json_get(v, "total_size")))
                (void)json_number_int64(x, ret_size);
        if (v && (x = json_get(v, "total_file_count")))
                (void)json_number_int64(x, ret_files);
}

#define BACKUPS_MAX 128 /* snapshots listed, newest first: what fits WORKER_OUT_MAX */

/* backups: the tenant's snapshots, newest first, each with its size, as one JSON object
 * {"snapshots":[...],"more":N} on the pipe (tenantd hands "snapshots" to the client). */
static int worker_list(struct daemon *d, struct tenant *t, FILE *out)
{
        const struct manifest *m = t->m;
        if (check_repository_files(m, out) < 0)
                return -1;
        struct restic_bufs rb;
        char tag[80];
        const char *argv[24];
        size_t n = restic_argv(d, m, argv, &rb);
        snprintf(tag, sizeof(tag), "tenant=%s", t->name);
        argv[n++] = "snapshots";
        argv[n++] = "--json";
        argv[n++] = "--tag";
        argv[n++] = tag;
        argv[n] = NULL;
        static char buf[1U << 20];
        int st = run_restic(m, argv, true, buf, sizeof(buf));
        _cleanup_json_ struct json_value *v = st == 0 ? restic_json(buf, '[') : NULL;
        if (!v || v->type != JSON_ARRAY) {
                fprintf(out, "restic snapshots failed (exit %d): %s\n", st, buf);
                return -1;
        }
        _cleanup_json_gen_ struct json_gen *g = json_gen_new(false);
        if (!g)
                return -1;
        json_gen_object_open(g);
        json_gen_key(g, CTL_SNAPSHOTS);
        json_gen_array_open(g);
        size_t total = v->u.array.n, shown = total < BACKUPS_MAX ? total : BACKUPS_MAX;
        for (size_t k = 0; k < shown; k++) {
                const struct json_value *snap = v->u.array.items[total - 1 - k];
                const char *id = str_member(snap, "id"), *time = str_member(snap, "time");
                if (!id || !time)
                        continue;
                const char *vol = tag_value(snap, "volume");
                int64_t size, files;
                snapshot_size(d, m, id, &size, &files);
                json_gen_object_open(g);
                json_gen_key(g, "id");
                json_gen_string(g, id);
                json_gen_key(g, "time");
                json_gen_string(g, time);
                json_gen_key(g, "volumes");
                json_gen_array_open(g);
                if (vol)
                        json_gen_string(g, vol);
                json_gen_array_close(g);
                json_gen_key(g, "size");
                size >= 0 ? json_gen_int(g, size) : json_gen_null(g);
                json_gen_key(g, "files");
                files >= 0 ? json_gen_int(g, files) : json_gen_null(g);
                const char *mh = tag_value(snap, "manifest"), *ver = tag_value(snap, "tenantd");
                json_gen_key(g, "manifest");
                mh ? json_gen_string(g, mh) : json_gen_null(g);
                json_gen_key(g, "tenantd");
                ver ? json_gen_string(g, ver) : json_gen_null(g);
                json_gen_object_close(g);
        }
        json_gen_array_close(g);
        json_gen_key(g, CTL_MORE);
        json_gen_int(g, (int64_t)(total - shown));
        json_gen_object_close(g);
        const char *text;
        size_t len;
        if (json_gen_finish(g, &text, &len) < 0 || len >= WORKER_OUT_MAX) {
                fprintf(out, "the list of snapshots is too long\n");
                return -1;
        }
        fwrite(text, 1, len, out);
        return 0;
}

/* Runs a program by absolute path with a clean environment; its exit status. */
static int run_plain(const char *const *argv)
{
        static const char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null >= 0) {
                        dup2(null, 0);
                        dup2(null, 1);
                }
                execve(argv[0], (char *const *)argv, (char *const *)envp);
                _exit(127);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

#define RESTORE_DIR ".tenantd-restore"
#define RESTORE_ASIDE ".img.pre-restore" /* docs/backup.md */

/* Restores one volume (mounted at v): restic into data/.tenantd-restore; only when that
 * succeeded are the old contents removed and the restored ones moved up. */
/* The host ids of a restored tree, made the target tenant's. restic restores the ids the
 * files had: a sandbox's volume holds host ids of its tenant's range (uidrange.h), a
 * microVM's its guest's own ids. Any id from the first range's base up is an id of
 * some tenant's range; it becomes the same id in the target's range (to_base), or for a
 * microVM the guest id itself (to_base 0). So a copy (--as), a restore on a new host
 * (other ranges) and one across backends all give the service its own files. */
static uint32_t shift_first_base, shift_to_base;

static uint32_t shifted(uint32_t id)
{
        return id < shift_first_base ? id : shift_to_base + (id - shift_first_base) % UIDRANGE_SIZE;
}

static int shift_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)flag;
        (void)ftw;
        uid_t uid = shifted(st->st_uid);
        gid_t gid = shifted(st->st_gid);
        if ((uid != st->st_uid || gid != st->st_gid) && lchown(path, uid, gid) < 0)
                return -1;
        /* chown clears set-id bits of a file: they are put back */
        if (!S_ISLNK(st->st_mode) && (st->st_mode & (S_ISUID | S_ISGID)) &&
            (uid != st->st_uid || gid != st->st_gid))
                (void)chmod(path, st->st_mode & 07777);
        return 0;
}

static int shift_ids(struct daemon *d, const struct tenant *t, const char *dir, FILE *out)
{
        shift_first_base = d->cfg.uid_base;
        shift_to_base = 0;
        _cleanup_err_ struct tn_err *err = NULL;
        if (t->m->isolation != ISOLATION_MICROVM &&
            uidrange_get(d->cfg.state_dir, t->name, d->cfg.uid_base, &shift_to_base, &err) < 0) {
                fprintf(out, "%s\n", tn_err_msg(err));
                return -1;
        }
        if (nftw(dir, shift_one, 32, FTW_PHYS | FTW_MOUNT) != 0) {
                fprintf(out, "cannot give %s's files to %s: %s\n", dir, t->name, strerror(errno));
                return -1;
        }
        return 0;
}

static int restore_volume(struct daemon *d, const struct tenant *t, const struct tenant *from,
                          const struct volume_spec *vs, const struct volume_host *v,
                          const char *snapshot, FILE *out)
{
        const struct manifest *m = from->m;
        struct restic_bufs rb;
        char tmp[PATH_MAX + 32], tags[80];
        snprintf(tmp, sizeof(tmp), "%s/%s", v->data, RESTORE_DIR);
        const char *rm[] = {"/bin/rm", "-rf", "--one-file-system", "--", tmp, NULL};
        (void)run_plain(rm);
        const char *argv[24];
        size_t n = restic_argv(d, m, argv, &rb);
        snprintf(tags, sizeof(tags), "tenant=%s,volume=%s", from->name, vs->name);
        argv[n++] = "restore";
        argv[n++] = snapshot;
        argv[n++] = "--tag";
        argv[n++] = tags;
        argv[n++] = "--target";
        argv[n++] = tmp;
        argv[n] = NULL;
        char buf[4096];
        int st = run_restic(m, argv, false, buf, sizeof(buf));
        if (st != 0) {
                fprintf(out, "restic restore of volume %s failed (exit %d): %s\n", vs->name, st,
                        buf);
                (void)run_plain(rm);
                return -1;
        }
        if (shift_ids(d, t, tmp, out) < 0) {
                (void)run_plain(rm);
                return -1;
        }
        /* the old contents go, the restored ones move up */
        _cleanup_close_ int dfd = open(v->data, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *dir = dfd < 0 ? NULL : fdopendir(dup(dfd));
        if (!dir || tfd < 0) {
                if (dir)
                        closedir(dir);
                fprintf(out, "cannot open %s: %s\n", v->data, strerror(errno));
                return -1;
        }
        struct dirent *e;
        while ((e = readdir(dir))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
                    !strcmp(e->d_name, RESTORE_DIR))
                        continue;
                char path[PATH_MAX + 300];
                snprintf(path, sizeof(path), "%s/%s", v->data, e->d_name);
                const char *rm1[] = {"/bin/rm", "-rf", "--one-file-system", "--", path, NULL};
                (void)run_plain(rm1);
        }
        closedir(dir);
        dir = fdopendir(dup(tfd));
        while (dir && (e = readdir(dir))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                        continue;
                if (renameat(tfd, e->d_name, dfd, e->d_name) < 0) {
                        fprintf(out, "cannot move %s into %s: %s\n", e->d_name, v->data,
                                strerror(errno));
                        closedir(dir);
                        return -1;
                }
        }
        if (dir)
                closedir(dir);
        (void)unlinkat(dfd, RESTORE_DIR, AT_REMOVEDIR);
        return 0;
}

/* The volume a snapshot (by id) holds, from its tag volume=NAME: a snapshot is of one
 * volume, and only that volume is restored from it. */
static int snapshot_volume(struct daemon *d, const struct tenant *t, const char *snapshot,
                           char *vol, size_t vol_len, FILE *out)
{
        struct restic_bufs rb;
        char tag[80];
        const char *argv[24];
        size_t n = restic_argv(d, t->m, argv, &rb);
        snprintf(tag, sizeof(tag), "tenant=%s", t->name);
        argv[n++] = "snapshots";
        argv[n++] = "--json";
        argv[n++] = "--tag";
        argv[n++] = tag;
        argv[n++] = snapshot;
        argv[n] = NULL;
        static char buf[16 << 10];
        int st = run_restic(t->m, argv, false, buf, sizeof(buf));
        const char *v = st == 0 ? strstr(buf, "\"volume=") : NULL;
        if (!v) {
                fprintf(out, "no snapshot %s of %s in the repository%s%s\n", snapshot, t->name,
                        st ? ": " : "", st ? buf : "");
                return -1;
        }
        v += 8;
        size_t len = strcspn(v, "\"");
        if (len == 0 || len >= vol_len)
                return -1;
        memcpy(vol, v, len);
        vol[len] = '\0';
        return 0;
}

/* STORAGE/TENANT/VOLUME.img and where a restore in place keeps it aside. */
static void aside_paths(const struct daemon *d, const char *tenant, const char *vol,
                        char img[PATH_MAX], char aside[PATH_MAX])
{
        snprintf(img, PATH_MAX, "%s/%s/%s.img", d->cfg.storage_dir, tenant, vol);
        snprintf(aside, PATH_MAX, "%s/%s/%s" RESTORE_ASIDE, d->cfg.storage_dir, tenant, vol);
}

/* One volume of t from the snapshot: a restore in place first moves the image aside
 * (kept until t has started: backup_restore_started), so the volume is made anew, empty,
 * with its key; restic fills it. A failure puts the old image back. */
static int restore_one(struct daemon *d, struct tenant *t, const struct tenant *from,
                       const struct volume_spec *vs, const char *snapshot, FILE *out)
{
        char img[PATH_MAX], aside[PATH_MAX];
        aside_paths(d, t->name, vs->name, img, aside);
        bool moved = false;
        if (t == from && access(img, F_OK) == 0) {
                if (rename(img, aside) < 0) {
                        fprintf(out, "cannot move %s aside: %s\n", img, strerror(errno));
                        return -1;
                }
                moved = true;
        }
        _cleanup_err_ struct tn_err *err = NULL;
        struct volume_host v;
        int r = volume_open(d->cfg.storage_dir, d->cfg.master_key, t->name, vs, 0, 0, &v, &err);
        if (r < 0)
                fprintf(out, "volume %s: %s\n", vs->name, tn_err_msg(err));
        else {
                r = restore_volume(d, t, from, vs, &v, snapshot, out);
                (void)volume_close(t->name, vs->name, NULL);
        }
        if (r < 0) {
                (void)unlink(img);
                if (moved && rename(aside, img) < 0)
                        fprintf(out, "cannot move %s back: %s; it is still there\n", aside,
                                strerror(errno));
                return -1;
        }
        fprintf(out, "restored volume %s from %s%s%s\n", vs->name,
                strcmp(snapshot, "latest") ? snapshot : "the latest snapshot",
                moved ? "; the old image is kept at " : "", moved ? aside : "");
        return 0;
}

/* Restores t's volumes from the snapshots of `from` (t itself, or the tenant restored
 * --as t). */
static int worker_restore(struct daemon *d, struct tenant *t, const struct tenant *from,
                          const char *snapshot, FILE *out)
{
        const struct manifest *m = from->m;
        if (check_repository_files(m, out) < 0)
                return -1;
        if (snapshot && strcmp(snapshot, "latest") == 0)
                snapshot = NULL;
        char only[MANIFEST_NAME_MAX + 1] = "";
        if (snapshot && snapshot_volume(d, from, snapshot, only, sizeof(only), out) < 0)
                return -1;
        int restored = 0;
        for (size_t i = 0; i < t->m->volumes_n; i++) {
                const struct volume_spec *vs = &t->m->volumes[i];
                if (!backup_includes(m, vs->name) || (only[0] && strcmp(only, vs->name) != 0))
                        continue;
                if (restore_one(d, t, from, vs, snapshot ? snapshot : "latest", out) < 0)
                        return -1;
                restored++;
        }
        if (!restored)
                fprintf(out, "snapshot %s is of volume %s, which %s no longer backs up\n",
                        snapshot ? snapshot : "latest", only[0] ? only : "?", from->name);
        return restored ? 0 : -1;
}

static _Noreturn void worker_main(struct daemon *d, struct tenant *t, const struct tenant *from,
                                  enum control_backup_action action, const char *snapshot,
                                  int outfd)
{
        FILE *out = fdopen(outfd, "w");
        if (!out)
                _exit(1);
        int r;
        switch (action) {
        case CONTROL_BACKUP_RUN:
                r = worker_backup(d, t, out);
                break;
        case CONTROL_BACKUP_LIST:
                r = worker_list(d, t, out);
                break;
        case CONTROL_BACKUP_CHECK:
                r = worker_check(d, t, out);
                break;
        default:
                /* A restore dies with tenantd (the next tenantd puts the old image back:
                 * backup_restore_recover), and the volume it fills is mounted in a mount
                 * namespace of its own, which goes with it (its loop device detaches). */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || unshare(CLONE_NEWNS) < 0 ||
                    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                        fprintf(out, "cannot make the restore's mount namespace: %s\n",
                                strerror(errno));
                        r = -1;
                        break;
                }
                r = worker_restore(d, t, from, snapshot, out);
                break;
        }
        fclose(out);
        _exit(r < 0 ? 1 : 0);
}

/* ---- in tenantd ---- */

/* A worker that ended before it thawed (killed, crashed): thaw what it froze. */
static void thaw_all(const struct tenant *t)
{
        (void)tenant_cgroup_freeze(t->name, false, NULL);
        for (size_t i = 0; i < t->m->volumes_n; i++) {
                (void)volume_fs_freeze(t->name, t->m->volumes[i].name, false, NULL);
        }
}

/* A worker that died leaves restic behind in the cgroup for a moment: restic dies with
 * it (PDEATHSIG), and its orphan is reaped by whoever adopts it, which may take a while
 * (this machine's PID 1 reaps every ~2 s). What is left is killed and the removal
 * tried; when it still fails, backup_tick tries again every BACKUP_CG_RETRY_MS, so no
 * backup-of-NAME cgroup outlives its backup, and the event loop never waits for it. */
#define BACKUP_CG_RETRY_MS 200
static void remove_backup_cgroup(struct tenant *t)
{
        char name[MANIFEST_NAME_MAX + 16];
        snprintf(name, sizeof(name), MANIFEST_BACKUP_CGROUP_PREFIX "%s", t->name);
        t->backup_cg_left = tenant_cgroup_kill_remove(name, SIGKILL) == -EBUSY;
}

void backup_recover(struct daemon *d, struct tenant *t)
{
        if (!t->m->volumes_n)
                return;
        thaw_all(t);
        remove_backup_cgroup(t);
        for (size_t i = 0; i < t->m->volumes_n; i++) {
                char snap[PATH_MAX];
                snprintf(snap, sizeof(snap), "%s/%s/%s.snap", d->cfg.storage_dir, t->name,
                         t->m->volumes[i].name);
                if (unlink(snap) == 0)
                        daemon_event(d, "backup-recovered", t, "removed=%s", snap);
        }
}

/* A restore in place that tenantd did not see to its end (tenantd was killed or crashed
 * meanwhile) leaves VOLUME.img.pre-restore, the old image, and would block every later
 * restore. At tenantd's start, once it knows whether the tenant runs:
 * - The tenant runs (adopted), or ran and ended while tenantd was down: it started on the
 *   restored volumes, and a tenant starts only after its restore succeeded. The restore
 *   is done; the old image goes, as backup_restore_started would have removed it.
 * - It has not started since: the restore may have stopped halfway (its worker dies
 *   with tenantd). The old image is put back over the new one, which is removed. The old
 *   image is the only copy of its data, while the restore can be run again from the
 *   repository; a half-filled volume must never start as the tenant's data. This also
 *   undoes a restore that finished but whose tenant did not start (its old image was
 *   kept aside for the operator): tenantd cannot tell the two apart, and the safe
 *   side is the data nobody can fetch again. The event restore-undone and the log say
 *   which images came back. */
void backup_restore_recover(struct daemon *d, struct tenant *t, bool started)
{
        for (size_t i = 0; i < t->m->volumes_n; i++) {
                const char *vol = t->m->volumes[i].name;
                char img[PATH_MAX], aside[PATH_MAX];
                aside_paths(d, t->name, vol, img, aside);
                if (access(aside, F_OK) < 0)
                        continue;
                if (started) {
                        if (unlink(aside) == 0)
                                daemon_event(d, "restore-finished", t, "volume=%s removed=%s", vol,
                                             aside);
                        continue;
                }
                if (rename(aside, img) < 0) {
                        log_error("%s: cannot put the old image %s back over %s: %m; the "
                                  "restore did not finish, move it back by hand",
                                  t->name, aside, img);
                        continue;
                }
                log_warning("%s: a restore of volume %s did not finish before tenantd "
                            "stopped: its old image is back at %s; run the restore again",
                            t->name, vol, img);
                daemon_event(d, "restore-undone", t, "volume=%s image=%s", vol, img);
        }
}

/* backup-failed: an event, and at once a line to syslog (LOG_ERR), as alerts go. */
static void backup_failed(struct daemon *d, const struct tenant *t)
{
        event_with(d, "backup-failed", t, "error", t->backup_last);
        char line[1024], kv[800] = "";
        event_kv(kv, sizeof(kv), "error", t->backup_last);
        snprintf(line, sizeof(line), "event=backup-failed tenant=%s %s", t->name, kv);
        monitor_glue_syslog(d, LOG_ERR, line);
}

/* A tenant restore --as made, whose restore failed: its manifest file and volumes go,
 * and tenantd forgets it (the name is free for the next try). */
static void drop_new(struct daemon *d, struct tenant *t)
{
        for (size_t i = 0; i < t->m->volumes_n; i++)
                (void)volume_remove(d->cfg.storage_dir, t->name, t->m->volumes[i].name, NULL);
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/%s", d->cfg.storage_dir, t->name);
        (void)rmdir(dir);
        (void)unlink(t->path);
        daemon_event(d, "restore-dropped", t, "file=%s", t->path);
        daemon_tenant_drop(d, t);
}

/* Appends to buf where the old images a restore in place kept aside are, if any. */
static void kept_aside(const struct daemon *d, const struct tenant *t, char *buf, size_t len)
{
        size_t n = 0;
        for (size_t i = 0; i < t->m->volumes_n && n < len; i++) {
                char img[PATH_MAX], aside[PATH_MAX];
                aside_paths(d, t->name, t->m->volumes[i].name, img, aside);
                if (access(aside, F_OK) == 0)
                        n += (size_t)snprintf(buf + n, len - n,
                                              "\nthe old image of volume %s is kept at %s (move "
                                              "it back over %s to undo the restore)",
                                              t->m->volumes[i].name, aside, img);
        }
}

static void job_done(struct daemon *d, struct watch *w, uint32_t events)
{
        (void)events;
        struct backup_job *job = (struct backup_job *)w;
        struct tenant *t = job->t;
        siginfo_t si = {0};
        if (waitid(P_PIDFD, (id_t)w->fd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
                return;
        char buf[WORKER_OUT_MAX + 1];
        ssize_t n = read(job->out, buf, WORKER_OUT_MAX);
        buf[n > 0 ? n : 0] = '\0';
        size_t len = strlen(buf);
        while (len && buf[len - 1] == '\n')
                buf[--len] = '\0';
        bool ok = si.si_code == CLD_EXITED && si.si_status == 0;
        if (job->action == CONTROL_BACKUP_RUN) {
                t->backup_due = 0; /* the next one counts from this one's start */
                if (si.si_code != CLD_EXITED)
                        backup_recover(d, t); /* thaws; a half-made VOLUME.snap goes */
                remove_backup_cgroup(t);
                t->backup_last_ms = wall_ms();
                t->backup_last_ok = ok;
                /* the worker's text, cut to what status keeps */
                const char *said = len ? buf : "the backup worker died";
                size_t keep = strnlen(said, sizeof(t->backup_last) - 1);
                memcpy(t->backup_last, said, keep);
                t->backup_last[keep] = '\0';
                t->backup_last[strcspn(t->backup_last, "\n")] = '\0';
                if (ok) {
                        /* size= and added= of the worker's line; the time from the start */
                        const char *sz = strstr(buf, " size="), *ad = strstr(buf, " added=");
                        t->backup_ok_size = sz ? strtoull(sz + 6, NULL, 10) : 0;
                        t->backup_ok_added = ad ? strtoull(ad + 7, NULL, 10) : 0;
                        t->backup_ok_duration_ms = mono_ms() - job->started_mono;
                        t->backup_ok_ms = wall_ms();
                        t->backup_ok_at = time(NULL);
                        t->backup_stale = false;
                        event_with(d, "backup", t, "result", t->backup_last);
                } else
                        backup_failed(d, t);
        } else if (job->action == CONTROL_BACKUP_RESTORE) {
                event_with(d, ok ? "restore" : "restore-failed", t, "result", buf);
        }
        if (!ok && !len)
                len = (size_t)snprintf(buf, sizeof(buf), "the backup worker ended (%s %d)",
                                       si.si_code == CLD_EXITED ? "exit" : "signal", si.si_status);
        daemon_watch_del(d, w);
        close(w->fd);
        close(job->out);
        struct client *c = t->waiter;
        enum control_backup_action action = job->action;
        t->waiter = NULL;
        t->busy = NULL;
        t->backup_job = NULL;
        free(job);
        if (action == CONTROL_BACKUP_LIST && ok) {
                /* the worker's object; its "snapshots" and "more" go to the client */
                _cleanup_json_ struct json_value *v = NULL;
                if (json_parse(buf, len, &json_limits_config, &v, NULL) < 0 ||
                    v->type != JSON_OBJECT)
                        return control_complete(d, c, -EIO, "the backup worker's list is garbled");
                return control_complete_members(d, c, v);
        }
        if (action != CONTROL_BACKUP_RESTORE)
                return control_complete(d, c, ok ? 0 : -EIO, buf);
        if (!ok) { /* a worker killed midway may have left the old images aside */
                kept_aside(d, t, buf + len, sizeof(buf) - len);
                control_complete(d, c, -EIO, buf);
                if (t->restore_new)
                        drop_new(d, t);
                return;
        }
        t->restore_new = false;
        /* Restored: the tenant starts, and the client is answered when it runs. */
        _cleanup_err_ struct tn_err *err = NULL;
        free(t->restore_note);
        t->restore_note = strdup(buf);
        int r = tenant_op_start(d, t, c, &err);
        if (r < 0) {
                char msg[2048];
                control_complete(
                    d, c, r, backup_restore_started(d, t, r, tn_err_msg(err), msg, sizeof(msg)));
        }
}

const char *backup_restore_started(struct daemon *d, struct tenant *t, int r, const char *msg,
                                   char *buf, size_t len)
{
        _cleanup_free_ char *note = TAKE_PTR(t->restore_note);
        if (r < 0 || t->state != TENANT_RUNNING) {
                int n = snprintf(buf, len, "%s\n%s did not start: %s", note, t->name,
                                 msg ? msg : tenant_state_name(t->state));
                if (n > 0 && (size_t)n < len)
                        kept_aside(d, t, buf + n, len - (size_t)n);
                return buf;
        }
        int removed = 0;
        for (size_t i = 0; i < t->m->volumes_n; i++) {
                char img[PATH_MAX], aside[PATH_MAX];
                aside_paths(d, t->name, t->m->volumes[i].name, img, aside);
                removed += unlink(aside) == 0;
        }
        snprintf(buf, len, "%s\n%s started%s", note, t->name,
                 removed ? "; the old images kept aside were removed" : "");
        return buf;
}

/* The worker for t (from: whose snapshots a restore reads), answered to c. */
static int start_job(struct daemon *d, struct tenant *t, const struct tenant *from,
                     struct client *c, enum control_backup_action action, const char *snapshot,
                     struct tn_err **err)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return tn_err_set(err, errno, "pipe");
        struct backup_job *job = calloc(1, sizeof(*job));
        if (!job) {
                close(p[0]);
                close(p[1]);
                return tn_err_setx(err, ENOMEM, "out of memory");
        }
        int pidfd = -1;
        pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, NULL, &pidfd, NULL, 0);
        if (pid < 0) {
                int e = errno;
                close(p[0]);
                close(p[1]);
                free(job);
                return tn_err_set(err, e, "fork");
        }
        if (pid == 0) {
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                close(p[0]);
                worker_main(d, t, from, action, snapshot, p[1]);
        }
        close(p[1]);
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        job->w = (struct watch){.fd = pidfd, .fn = job_done};
        job->pid = pid;
        job->out = p[0];
        job->action = action;
        job->t = t;
        job->started_mono = mono_ms();
        t->backup_job = job;
        if (action == CONTROL_BACKUP_RUN)
                t->backup_started = time(NULL);
        static const char *const busy[] = {"backing up", "listing backups", "checking backups",
                                           "restoring"};
        t->busy = busy[action];
        t->waiter = c;
        daemon_watch_add(d, &job->w, EPOLLIN);
        return 0;
}

static int check_backup_set(const struct tenant *t, struct tn_err **err)
{
        if (!t->m->backup.set)
                return tn_err_setx(err, EINVAL,
                                   "%s has no backup section in its manifest (docs/backup.md)",
                                   t->name);
        if (t->busy)
                return tn_err_setx(err, EBUSY, "%s is busy (%s)", t->name, t->busy);
        return 0;
}

int tenant_op_backup(struct daemon *d, struct tenant *t, struct client *c,
                     enum control_backup_action action, struct tn_err **err)
{
        int r = check_backup_set(t, err);
        if (r < 0)
                return r;
        if (action == CONTROL_BACKUP_RESTORE)
                return tn_err_setx(err, EINVAL, "a restore is tenant_op_restore's");
        if (action == CONTROL_BACKUP_RUN && t->state == TENANT_STARTING)
                return tn_err_setx(err, EBUSY, "%s is starting; try again once it runs", t->name);
        return start_job(d, t, t, c, action, NULL, err);
}

/* In place: what a restore would replace (the images of the volumes backed up that
 * exist), in buf; refused when an earlier restore's image is still kept aside. */
static int in_place_check(const struct daemon *d, const struct tenant *t, char *buf, size_t len,
                          struct tn_err **err)
{
        size_t n = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < t->m->volumes_n; i++) {
                const char *vol = t->m->volumes[i].name;
                char img[PATH_MAX], aside[PATH_MAX];
                if (!backup_includes(t->m, vol))
                        continue;
                aside_paths(d, t->name, vol, img, aside);
                if (access(aside, F_OK) == 0)
                        return tn_err_setx(err, EEXIST,
                                           "%s is still there from an earlier restore: move it "
                                           "back over %s or remove it, then restore again",
                                           aside, img);
                if (access(img, F_OK) == 0 && n < len)
                        n += (size_t)snprintf(buf + n, len - n, "%s%s (%s)", n ? ", " : "", vol,
                                              img);
        }
        return 0;
}

int tenant_op_restore(struct daemon *d, struct tenant *t, struct client *c, const char *snapshot,
                      const char *as, bool yes, struct tn_err **err)
{
        if (as) {
                if (!t->m->backup.set)
                        return check_backup_set(t, err);
                /* The source may run on: only its repository is read. */
                struct tenant *nt = NULL;
                int r = daemon_tenant_copy(d, t, as, &nt, err);
                if (r < 0)
                        return tn_err_wrap(err, "restore --as %s", as);
                nt->restore_new = true;
                r = start_job(d, nt, t, c, CONTROL_BACKUP_RESTORE, snapshot, err);
                if (r < 0)
                        drop_new(d, nt);
                return r;
        }
        int r = check_backup_set(t, err);
        if (r < 0)
                return r;
        if (tenant_up(t) || t->state == TENANT_BACKOFF || t->want_running)
                return tn_err_setx(err, EBUSY,
                                   "%s must be stopped before a restore in place: tenantctl stop "
                                   "%s (or restore --as NEWNAME into a new tenant)",
                                   t->name, t->name);
        char what[1024];
        if (in_place_check(d, t, what, sizeof(what), err) < 0)
                return -EEXIST;
        if (what[0] && !yes)
                return tn_err_setx(err, EEXIST,
                                   "a restore in place replaces the data of %s's volumes %s; add "
                                   "--yes to replace it (the old images are kept aside as "
                                   "VOLUME" RESTORE_ASIDE " until %s has started)",
                                   t->name, what, t->name);
        return start_job(d, t, t, c, CONTROL_BACKUP_RESTORE, snapshot, err);
}

/* ---- backup.schedule ---- */

#define BACKUP_RETRY_S 60 /* a due backup that could not start is tried again then */

/* backup-stale: the last success is older than twice the schedule's period; said once,
 * to the events and to syslog (LOG_WARNING), until a backup succeeds again. */
static void check_stale(struct daemon *d, struct tenant *t, time_t wall)
{
        if (!t->backup_since)
                t->backup_since = wall;
        time_t at = backup_stale_at(&t->m->backup, t->backup_ok_at, t->backup_since);
        if (t->backup_stale || !at || wall < at)
                return;
        t->backup_stale = true;
        char last[32] = "never", line[512];
        struct tm tm;
        if (t->backup_ok_at && gmtime_r(&t->backup_ok_at, &tm))
                strftime(last, sizeof(last), "%Y-%m-%dT%H:%M:%SZ", &tm);
        daemon_event(d, "backup-stale", t, "last_ok=%s", last);
        snprintf(line, sizeof(line), "event=backup-stale tenant=%s last_ok=%s", t->name, last);
        monitor_glue_syslog(d, LOG_WARNING, line);
}

void backup_tick(struct daemon *d, struct tenant *t, uint64_t now)
{
        (void)now;
        if (t->backup_cg_left && !t->backup_job)
                remove_backup_cgroup(t);
        if (t->m->backup.schedule == BACKUP_MANUAL || t->removed)
                return;
        time_t wall = time(NULL);
        check_stale(d, t, wall);
        if (t->backup_job)
                return;
        if (!t->backup_due || t->backup_due_m != t->m) {
                t->backup_due = backup_next_due(&t->m->backup, t->name, wall, t->backup_started);
                t->backup_due_m = t->m;
        }
        if (wall < t->backup_due)
                return;
        _cleanup_err_ struct tn_err *err = NULL;
        if (tenant_op_backup(d, t, NULL, CONTROL_BACKUP_RUN, &err) < 0) {
                t->backup_due = wall + BACKUP_RETRY_S;
                event_with(d, "backup-deferred", t, "reason", tn_err_msg(err));
                return;
        }
        daemon_event(d, "backup-started", t, "by=schedule");
}

uint64_t backup_deadline(const struct tenant *t)
{
        if (t->backup_cg_left && !t->backup_job)
                return mono_ms() + BACKUP_CG_RETRY_MS;
        if (t->m->backup.schedule == BACKUP_MANUAL || t->removed)
                return UINT64_MAX;
        time_t wall = time(NULL);
        if (!t->backup_since || (!t->backup_job && (!t->backup_due || t->backup_due_m != t->m)))
                return mono_ms(); /* backup_tick sets them */
        time_t next = t->backup_job ? 0 : t->backup_due;
        time_t stale =
            t->backup_stale ? 0 : backup_stale_at(&t->m->backup, t->backup_ok_at, t->backup_since);
        if (stale && (!next || stale < next))
                next = stale;
        if (!next)
                return UINT64_MAX;
        uint64_t in = next > wall ? (uint64_t)(next - wall) * 1000 : 0;
        return mono_ms() + in;
}

void backup_forget(struct daemon *d, struct tenant *t)
{
        struct backup_job *job = t->backup_job;
        if (!job)
                return;
        (void)syscall(SYS_pidfd_send_signal, job->w.fd, SIGKILL, NULL, 0);
        siginfo_t si;
        while (waitid(P_PIDFD, (id_t)job->w.fd, &si, WEXITED) < 0 && errno == EINTR)
                ;
        daemon_watch_del(d, &job->w);
        close(job->w.fd);
        close(job->out);
        t->backup_job = NULL;
        free(job);
        backup_recover(d, t);
        if (t->waiter) {
                struct client *c = t->waiter;
                t->waiter = NULL;
                control_complete(d, c, -EIO, "the tenant was removed during its backup");
        }
        t->busy = NULL;
}
