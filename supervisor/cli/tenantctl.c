/* tenantctl.c — the operator CLI: global options, then one verb (see docs/cli.md).
 * Each verb family lives in its own cmd_*.c; this file only parses and dispatches. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "lib/log.h"
#include "cli/tenantctl.h"

#include "lib/version.h"
#define DEFAULT_SOCKET "/run/tenantd/control.sock"

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: tenantctl [--socket PATH] [--json] VERB [ARGS...]\n"
                "\n"
                "Without a daemon:\n"
                "  validate FILE...        check manifests; every error is printed\n"
                "  explain FILE            the effective configuration, defaults filled in\n"
                "  policy list             seccomp profiles on the search path\n"
                "  policy check NAME...    compile profiles with libseccomp, report their size\n"
                "  policy show NAME        the resolved rules of a profile\n"
                "  run [--state DIR] FILE [-- CMD ARGS...]\n"
                "                          run a sandboxed tenant in the foreground (as root)\n"
                "\n"
                "With tenantd (root or the tenantd group):\n"
                "  list                    every tenant: state, pid, uptime, restarts, health\n"
                "  status NAME             one tenant in detail: usage, mounts, health\n"
                "  start NAME...           start and wait until it runs\n"
                "  stop [--timeout D] NAME...     stop signal, SIGKILL after the timeout\n"
                "  restart [--timeout D] NAME...\n"
                "  kill [--signal SIG] NAME       send a signal to the service\n"
                "  logs [-f] [-n LINES] NAME      the service's output\n"
                "  exec [-t|-T] NAME -- CMD ...   run a command inside, with the same confinement\n"
                "  set [--save] NAME KEY=VALUE... live quota changes (cpu.max=0.5 memory.max=256M\n"
                "                          pids.max=100 net.egress.rate=5mbit ...)\n"
                "  top [--once] [--interval D]    live usage table\n"
                "  events [-f] [-n LINES]  lifecycle events and alerts\n"
                "  reload                  re-read the manifest directory\n"
                "\n"
                "Options:\n"
                "  --socket PATH           control socket (default $TENANTD_SOCKET or %s)\n"
                "  --json                  machine-readable output\n"
                "  -h, --help              this text\n"
                "  --version               the version\n"
                "\n"
                "Exit status: 0 success, 1 the operation failed, 2 bad usage or invalid input.\n",
                DEFAULT_SOCKET);
}

int cli_print_json(struct json_gen *g)
{
        const char *buf;
        size_t len;
        if (json_gen_finish(g, &buf, &len) < 0) {
                log_error("cannot produce JSON output");
                return EXIT_FAILED;
        }
        fwrite(buf, 1, len, stdout);
        if (len && buf[len - 1] != '\n')
                putchar('\n');
        return EXIT_OK;
}

static const struct {
        const char *verb;
        int (*run)(const struct cli *cli, int argc, char **argv);
} verbs[] = {
    {"validate", cmd_validate},
    {"explain", cmd_explain},
    {"policy", cmd_policy},
    {"run", cmd_run},
};

int main(int argc, char **argv)
{
        static const struct option options[] = {
            {"socket", required_argument, NULL, 's'},
            {"json", no_argument, NULL, 'j'},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {NULL, 0, NULL, 0},
        };
        struct cli cli = {.socket = getenv("TENANTD_SOCKET")};
        if (!cli.socket || !*cli.socket)
                cli.socket = DEFAULT_SOCKET;

        log_open("tenantctl", LOG_TARGET_STDERR, 0);
        int c;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
                switch (c) {
                case 's':
                        cli.socket = optarg;
                        break;
                case 'j':
                        cli.json = true;
                        break;
                case 'h':
                        usage(stdout);
                        return EXIT_OK;
                case 'V':
                        printf("tenantctl %s\n", TENANTD_VERSION);
                        return EXIT_OK;
                default:
                        usage(stderr);
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return EXIT_USAGE;
        }
        const char *verb = argv[optind];
        for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
                if (strcmp(verbs[i].verb, verb) == 0)
                        return verbs[i].run(&cli, argc - optind, argv + optind);
        if (cmd_ctl_has(verb))
                return cmd_ctl(&cli, argc - optind, argv + optind);

        log_error("unknown verb \"%s\"; see tenantctl --help", verb);
        return EXIT_USAGE;
}
