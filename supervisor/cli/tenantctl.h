/* tenantctl.h — what tenantctl's verbs share: global options, the verb's parsed options
 * and exit codes. tenantctl.c holds the one table of verbs (usage, options, argument
 * bounds) and the one parser; each cmd_*.c holds one verb family and reads what the
 * parser left in struct cli. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

/* Exit codes (docs/cli.md): */
#define EXIT_OK 0     /* the operation succeeded */
#define EXIT_FAILED 1 /* the operation failed */
#define EXIT_USAGE 2  /* bad usage or invalid input */

/* The options of the verbs, as they arrive in cli.opts[].id (tenantctl.c says which
 * verb takes which). */
enum cli_option {
        OPT_FOLLOW = 1, /* logs, events: -f, --follow */
        OPT_LINES,      /* logs, events: -n, --lines N */
        OPT_SIGNAL,     /* kill: -s, --signal SIG */
        OPT_TTY,        /* exec: -t, --tty */
        OPT_NO_TTY,     /* exec: -T, --no-tty */
        OPT_STATE,      /* run: --state DIR */
        OPT_STORAGE,    /* run: --storage DIR */
        OPT_MASTER_KEY, /* run: --master-key FILE */
        OPT_TIMEOUT,    /* stop, restart: --timeout DURATION */
        OPT_SAVE,       /* set: --save */
        OPT_ONCE,       /* top: --once */
        OPT_INTERVAL,   /* top: --interval DURATION */
        OPT_COUNT,      /* top: --count N */
        OPT_ALL,        /* audit: --all */
        OPT_YES,        /* volume rm, restore: --yes */
        OPT_SNAPSHOT,   /* restore: --snapshot */
        OPT_DURATION,   /* policy learn: --duration DURATION */
        OPT_OUT,        /* policy learn: --out FILE */
        OPT_AS,         /* restore: --as NEWNAME */
        OPT_FORCE,      /* console: --force */
};

/* policy learn: how long the service runs when --duration is not given */
#define LEARN_DEFAULT_MS 60000

#define CLI_OPTS_MAX 32

struct cli {
        bool json;          /* --json: machine-readable output on stdout */
        const char *socket; /* --socket or $TENANTD_SOCKET */
        const char *verb;   /* the verb's name, as in the table ("policy show") */
        const char *usage;  /* "usage: tenantctl VERB ARGS" */
        /* The verb's options, in the order given (the parser checked them). */
        struct {
                enum cli_option id;
                const char *arg; /* or NULL */
        } opts[CLI_OPTS_MAX];
        size_t opts_n;
        /* Verbs that run a command (run, exec): the command and its arguments,
         * NULL-terminated, or NULL when none was given. */
        char **cmd;
};

struct json_gen;
struct json_value;
struct control_request;

/* One request to tenantd and its reply in *ret (the caller frees it): EXIT_OK, or the
 * exit code after saying what went wrong (an error reply: its message, and with --json
 * the reply itself on stdout). */
int ctl_call(const struct cli *cli, const struct control_request *req, struct json_value **ret);

/* Prints generated JSON on stdout, newline-terminated; EXIT_OK or EXIT_FAILED. */
int cli_print_json(struct json_gen *g);

/* Reports a bad option value: "tenantctl VERB: MESSAGE; usage: ..."; EXIT_USAGE. */
int cli_usage_error(const struct cli *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The verbs. Each returns an exit code. argv[0] is the verb, argv[1..argc) its
 * positional arguments, as many as the table allows. */
int cmd_validate(const struct cli *cli, int argc, char **argv);
int cmd_explain(const struct cli *cli, int argc, char **argv);
int cmd_policy_list(const struct cli *cli, int argc, char **argv);
int cmd_policy_check(const struct cli *cli, int argc, char **argv);
int cmd_policy_show(const struct cli *cli, int argc, char **argv);
int cmd_run(const struct cli *cli, int argc, char **argv);
int cmd_policy_learn(const struct cli *cli, int argc, char **argv);
/* The verbs served by tenantd (cmd_ctl.c). */
int cmd_list(const struct cli *cli, int argc, char **argv);
int cmd_status(const struct cli *cli, int argc, char **argv);
int cmd_lifecycle(const struct cli *cli, int argc, char **argv); /* start, stop, restart */
int cmd_kill(const struct cli *cli, int argc, char **argv);
int cmd_backup(const struct cli *cli, int argc, char **argv);
int cmd_backups(const struct cli *cli, int argc, char **argv);
int cmd_backup_check(const struct cli *cli, int argc, char **argv);
int cmd_restore(const struct cli *cli, int argc, char **argv);
int cmd_logs(const struct cli *cli, int argc, char **argv);
int cmd_exec(const struct cli *cli, int argc, char **argv);
int cmd_console(const struct cli *cli, int argc, char **argv);
int cmd_shell(const struct cli *cli, int argc, char **argv);
int cmd_set(const struct cli *cli, int argc, char **argv);
int cmd_volume_list(const struct cli *cli, int argc, char **argv);
int cmd_volume_rm(const struct cli *cli, int argc, char **argv);
int cmd_top(const struct cli *cli, int argc, char **argv);
int cmd_events(const struct cli *cli, int argc, char **argv);
int cmd_reload(const struct cli *cli, int argc, char **argv);
/* audit (cmd_audit.c): tenants through tenantd, manifest files directly. */
int cmd_audit(const struct cli *cli, int argc, char **argv);
