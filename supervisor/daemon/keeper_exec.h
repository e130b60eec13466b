/* keeper_exec.h — how a keeper hands its tenant to tenantd-keeper, the small program it
 * execs once the tenant runs (keeper_loop.c), and how that program hands the tenant's
 * end back to tenantd's own binary.
 *
 * A keeper is a fork of tenantd: it starts the tenant with tenantd's code and libraries,
 * and would keep tenantd's heap for the tenant's life (~400 KiB each, bench/RESULTS.md).
 * So once the tenant runs it execs tenantd-keeper (libexec, beside tenantd in a build
 * tree), linked with libc and lib/logsink.c, lib/logtext.c and lib/seccomp_notify.c
 * only. The exec keeps the process: its PID and start time, which run.json records and
 * adoption checks; it stays the parent of the tenant's init, so the init's
 * parent-death signal and the lifeline are still the keeper's.
 *
 * Both kinds of tenant take that path (KEEPER_ARG_KIND):
 *   sandbox  the init is the sandbox's; the keeper execs once the sandbox has started.
 *   microvm  the "init" is the VM runner (vm/vm_runner.h), the keeper's child; the
 *            keeper execs once the runner said on its ready pipe that the agent started
 *            the service, or that it did not (the keeper reports either to tenantd
 *            first). The runner writes its own event lines on the event FIFO.
 *
 * Once the tenant has ended and its output is drained, tenantd-keeper execs tenantd's
 * binary again (the descriptor KEEPER_FD_TENANTD, opened from /proc/self/exe before the
 * first exec: the same file even if tenantd was upgraded meanwhile) as
 *   tenantd --keeper-finish KIND STATE NAME GENERATION STATUS NET UIDBASE
 * (keeper_finish_main), which for a sandbox samples the tenant's cgroups, removes them,
 * its firewall and neighbour entries and volumes by the tenant's name, and for a microVM
 * whose runner did not end by itself removes what the runner's own teardown would have
 * (keeper_vm_cleanup: the domain, the tap, the firewall, the volumes, from the manifest
 * on KEEPER_FD_MANIFEST); then it writes exit.json. */
#pragma once

#include "lib/seccomp_notify.h"

/* The descriptors across the exec; everything above KEEPER_FD_MAX is closed. 0-2 are
 * /dev/null. */
enum {
        KEEPER_FD_EVENT = 3,   /* the event FIFO's write end, non-blocking (keeper.h) */
        KEEPER_FD_LOGDIR = 4,  /* STATE/logs */
        KEEPER_FD_LOGFILE = 5, /* NAME.log, O_APPEND */
        KEEPER_FD_OUT = 6,     /* the read ends of the tenant's stdout and stderr */
        KEEPER_FD_ERR = 7,
        KEEPER_FD_PIDFD = 8,     /* the tenant's init, the keeper's child */
        KEEPER_FD_LIFELINE = 9,  /* the write end the init watches while it starts */
        KEEPER_FD_TENANTD = 10,  /* O_PATH: tenantd's executable, for --keeper-finish */
        KEEPER_FD_NOTIFY = 11,   /* sandbox: the seccomp listener, when the profile notifies */
        KEEPER_FD_MANIFEST = 12, /* microvm: its manifest in a sealed memfd, for the finish */
        KEEPER_FD_MAX = 12,
};

#define KEEPER_PROGRAM "tenantd-keeper"
#define KEEPER_FINISH_ARG "--keeper-finish"
#define KEEPER_KIND_SANDBOX "sandbox"
#define KEEPER_KIND_MICROVM "microvm"

/* tenantd-keeper's arguments, one word each:
 *   argv[1] NAME         the tenant
 *   argv[2] KIND         KEEPER_KIND_SANDBOX or KEEPER_KIND_MICROVM
 *   argv[3] SINK         log_sink_state_format (lib/logsink.h)
 *   argv[4] NOTIFY       "0" without a listener; "1" when KEEPER_FD_NOTIFY is the
 *                        listener, followed by ",NR" for each call the keeper has just
 *                        reported (its calls answered before the exec, which it reports
 *                        itself: tenantd-keeper's next report of NR is then due
 *                        NOTIFY_REPORT_MS later; NR -1 is "other")
 *   argv[5] STATE        tenantd's state directory     } passed on to
 *   argv[6] GENERATION   this run's (keeper.h)          } --keeper-finish
 *   argv[7] NET          a sandbox's addresses, "-" without a network of its own:
 *                        host/net.h's net_addr_word, "IPV4", "IPV4,IPV6" or
 *                        "IPV4,IPV6/64" (the bridge's neighbour entries, a /64's
 *                        route); "-" for a microVM (its manifest says)
 *   argv[8] UIDBASE      tenantd's first uid range (a microVM's tap is found by it) */
enum {
        KEEPER_ARG_NAME = 1,
        KEEPER_ARG_KIND,
        KEEPER_ARG_SINK,
        KEEPER_ARG_NOTIFY,
        KEEPER_ARG_STATE,
        KEEPER_ARG_GENERATION,
        KEEPER_ARG_NET,
        KEEPER_ARG_UIDBASE,
        KEEPER_ARGC
};

/* --keeper-finish's, after argv[1] KEEPER_FINISH_ARG. STATUS is how the init ended, as
 * waitid said: "exit:N" (it exited with N) or "signal:N" (killed by signal N; also when
 * the keeper could not tell). */
enum {
        KEEPER_FINISH_KIND = 2,
        KEEPER_FINISH_STATE,
        KEEPER_FINISH_NAME,
        KEEPER_FINISH_GENERATION,
        KEEPER_FINISH_STATUS,
        KEEPER_FINISH_NET,
        KEEPER_FINISH_UIDBASE,
        KEEPER_FINISH_ARGC
};

/* The longest NOTIFY word: "1" and ",NR" for every call number counted one by one
 * (NOTIFY_MAX_NR, four digits) and "other". */
#define KEEPER_NOTIFY_ARG_MAX (2 + 6 * (NOTIFY_MAX_NR + 1))
