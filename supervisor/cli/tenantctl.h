/* tenantctl.h — what tenantctl's subcommands share: global options and exit codes.
 * tenantctl.c parses the global options and dispatches; each cmd_*.c holds one verb
 * family. */
#pragma once

#include <signal.h>
#include <stdbool.h>

/* Exit codes (docs/cli.md): */
#define EXIT_OK 0     /* the operation succeeded */
#define EXIT_FAILED 1 /* the operation failed */
#define EXIT_USAGE 2  /* bad usage or invalid input */

struct cli {
        bool json;          /* --json: machine-readable output on stdout */
        const char *socket; /* --socket or $TENANTD_SOCKET */
};

struct json_gen;

/* Prints generated JSON on stdout, newline-terminated; EXIT_OK or EXIT_FAILED. */
int cli_print_json(struct json_gen *g);

/* Each returns an exit code. argv[0] is the verb itself. */
int cmd_validate(const struct cli *cli, int argc, char **argv);
int cmd_explain(const struct cli *cli, int argc, char **argv);
int cmd_policy(const struct cli *cli, int argc, char **argv);
int cmd_run(const struct cli *cli, int argc, char **argv);
/* The verbs served by tenantd (cmd_ctl.c). */
int cmd_ctl(const struct cli *cli, int argc, char **argv);
bool cmd_ctl_has(const char *verb);
