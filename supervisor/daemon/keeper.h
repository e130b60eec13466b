/* keeper.h — one small process per running sandboxed tenant, between tenantd and the
 * tenant (the role conmon plays for podman).
 *
 * tenantd forks a keeper for every start. The keeper starts the sandbox (so it is the
 * parent of the tenant's init and holds its lifeline), writes the tenant's output to
 * its log files (rotated by size, capped in rate), waits for the tenant to end, removes
 * its cgroups and network, and records the exit status in a file. It does the middle
 * part in tenantd-keeper, a small program it execs once the tenant runs (a microVM's:
 * once its runner said whether the service started), and the end in tenantd's binary
 * exec'd again (keeper_exec.h). tenantd itself holds
 * nothing a tenant needs, so tenantd can be restarted, upgraded or killed with -9 while
 * tenants run: the new tenantd reads STATE/tenants/NAME/run.json, checks that the
 * keeper and the init are still the processes recorded there (pid and start time, read
 * after taking a pidfd, so a reused pid is never acted on) and adopts them.
 *
 * Files in the tenant's directory (STATE/tenants/NAME/), all written atomically:
 *   run.json   written by the keeper once the service runs: generation, pids, start
 *              times, start time of the run, the tenant's network identity
 *   exit.json  written by the keeper when the tenant has ended: generation, status
 * and the logs in STATE/logs/NAME.log (+ .1 .. .KEEP). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"
#include "spec/manifest.h"

struct policy_bpf;

struct keeper_config {
        const struct manifest *m;
        char **argv;
        const char *state_dir;
        const char *storage_dir; /* the volumes' images (storage/volume.h) */
        const char *master_key;  /* wraps the volumes' keys (storage/keywrap.h) */
        uint32_t uid_base;
        const struct policy_bpf *bpf;
        const int *caps;
        size_t caps_n;
        uint64_t generation; /* tells this run's records from older ones */
};

struct keeper {
        pid_t pid;
        int pidfd;
        int status_fd; /* read end: one line, "started PID" or "error MESSAGE" */
        int event_fd;  /* read end: event lines while the tenant runs (below) */
};

/* The keeper's events, one line each on event_fd, for tenantd's event stream and syslog:
 *   "seccomp-denied SYSCALL COUNT\n"   calls of a "notify" rule denied since the last
 *                                       line for that call (lib/seccomp_notify.h)
 *   "guest-limits OOM PIDS\n"          a microVM's guest: its kernel's totals since the
 *                                       boot of the tenant's processes killed out of
 *                                       memory and forks refused at pids.max (written by
 *                                       the VM runner when one grew, at most once a second)
 * event_fd is the read end of a named pipe, STATE/tenants/NAME/events (0600, in the
 * tenant's 0700 directory): a tenantd restarted while the tenant runs opens it again
 * when it adopts the tenant (keeper_events_open). While no tenantd reads it, the
 * keeper logs the events itself (syslog, ident tenantd-keeper). */
#define KEEPER_EVENTS_FIFO "events"
/* The read end of tenant `name`'s event pipe, non-blocking; refused unless it is a
 * named pipe of root's that no one else may open. */
int keeper_events_open(const char *state_dir, const char *name, struct tn_err **err);
#define KEEPER_EVENT_MAX 128
/* Parses one line, cut at its newline: 0 with *ret_syscall pointing into `line`;
 * -EBADMSG for anything else (a name outside [a-z0-9_-] or longer than 63, a count
 * that is not 1 to 2^63 in decimal, trailing bytes), outputs untouched. */
int keeper_event_parse(char *line, const char **ret_syscall, uint64_t *ret_count);
/* The same for a "guest-limits" line: two decimal totals, 0 to 2^53-1 each. */
int keeper_event_parse_limits(const char *line, uint64_t *ret_oom, uint64_t *ret_pids);
/* The guest's totals tenantd accepted last, STATE/tenants/NAME/guest-limits (0600, the
 * line above with its newline, written atomically each time tenantd accepts one): a
 * tenantd restarted while the microVM runs starts from them, so the kills it counted
 * before are not counted again. Removed with the other records (a new boot starts at 0).
 * load: 0 with the totals; -ENOENT when none were saved; -EBADMSG for anything but one
 * such line; outputs untouched on failure. */
#define KEEPER_GUEST_LIMITS "guest-limits"
int keeper_guest_limits_save(const char *state_dir, const char *name, uint64_t oom, uint64_t pids,
                             struct tn_err **err);
int keeper_guest_limits_load(const char *state_dir, const char *name, uint64_t *ret_oom,
                             uint64_t *ret_pids);

/* The status line, the keeper's only word to tenantd on status_fd: "started PID\n"
 * once the tenant runs, or "error MESSAGE\n" (one line: newlines in MESSAGE become
 * spaces; cut to KEEPER_STATUS_MAX - 1 bytes, newline included). */
#define KEEPER_STATUS_MAX 1200
/* Writes the line for `pid` (error NULL) or `error` into buf (at most len bytes, NUL
 * included); returns its length. */
size_t keeper_status_format(char *buf, size_t len, pid_t pid, const char *error);
/* Reads a line, cut at its newline if it has one: 0 with *ret_pid > 0, or 0 with
 * *ret_error pointing into `line` (*ret_pid = 0); -EBADMSG for anything else, outputs
 * untouched. */
int keeper_status_parse(char *line, pid_t *ret_pid, const char **ret_error);

/* Forks the keeper. It starts the tenant and reports on status_fd. */
int keeper_spawn(const struct keeper_config *kc, struct keeper *ret, struct tn_err **err);

/* tenantd --keeper-finish KIND STATE NAME GENERATION STATUS NET UIDBASE (keeper_exec.h):
 * what a keeper does once the tenant has ended and tenantd-keeper has drained its
 * output. A sandbox: samples and removes its cgroups, removes its firewall, neighbour
 * entries and volumes. A microVM whose runner did not end by itself: keeper_vm_cleanup.
 * Then it writes exit.json. Returns the exit status. */
int keeper_finish_main(int argc, char **argv);
/* Its STATUS word, "exit:N" (0-255) or "signal:N" (1-127), as a shell status in
 * *ret_status (N, or 128 + N) and whether the init ended by itself; -EINVAL for
 * anything else, outputs untouched. */
int keeper_finish_status_parse(const char *s, int *ret_status, bool *ret_exited);

/* What a sandboxed tenant leaves on the host once its init has ended, found by its
 * name: its cgroups (sampled first into *ret_sample unless NULL), its firewall tables
 * (with `net`, its name; with its addresses also the bridge's neighbour entries) and
 * its volumes. --keeper-finish does it, and tenantd after a keeper that died first. */
struct net_tenant;
struct cgroup_sample;
void keeper_sandbox_cleanup(const char *name, struct net_tenant *net,
                            struct cgroup_sample *ret_sample);

/* What run.json says. */
struct run_record {
        uint64_t generation;
        pid_t keeper_pid;
        uint64_t keeper_start; /* /proc/PID/stat starttime, clock ticks since boot */
        pid_t init_pid;
        uint64_t init_start;
        uint64_t started_ms; /* wall clock, ms since the epoch */
        uint32_t id_base;
};

struct exit_record {
        uint64_t generation;
        int status; /* as a shell reports it: exit code or 128+signal */
        uint64_t ended_ms;
        /* The cgroup's counters at the end, read before the cgroups went: an OOM kill
         * that ended the tenant between two samples is still reported. */
        uint64_t oom_kills;
        uint64_t pids_limit_hits;
};

int run_record_read(const char *state_dir, const char *name, struct run_record *ret,
                    struct tn_err **err);
int exit_record_read(const char *state_dir, const char *name, struct exit_record *ret,
                     struct tn_err **err);
/* Removes run.json and exit.json once tenantd has taken note of an exit. */
void keeper_records_remove(const char *state_dir, const char *name);

/* The start time of process `pid` (field 22 of /proc/PID/stat), or 0 if it is gone. */
uint64_t proc_start_time(pid_t pid);

/* A pidfd for `pid` if it is still the process that started at `start`; -ESRCH if not. */
int pidfd_open_checked(pid_t pid, uint64_t start);

/* Destroys the domain of microVM tenant m->name and removes its tap and firewall tables,
 * if they are there: after its keeper or runner was killed. */
void keeper_vm_cleanup(const struct manifest *m, const char *state_dir, uint32_t uid_base);

/* "STATE/tenants/NAME" and "STATE/logs" into buf. */
void tenant_dir(const char *state_dir, const char *name, char *buf, size_t len);
void logs_dir(const char *state_dir, char *buf, size_t len);
