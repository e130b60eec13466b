/* tenantctl.c — the operator CLI: one table of verbs (usage, options, argument bounds,
 * whether tenantd serves it), the one parser of options and arguments, and dispatch
 * (see docs/cli.md). Each verb family lives in its own cmd_*.c.
 *
 * Global options are taken before the verb and after it (`tenantctl list --json`, as
 * systemctl and virsh do), up to "--" or, for a verb that runs a command (run, exec),
 * up to the command: what follows the command is the command's own. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "cli/tenantctl.h"

#include "lib/version.h"
#define DEFAULT_SOCKET "/run/tenantd/control.sock"

struct cli_opt_spec {
        const char *name; /* long name, without "--" */
        char short_name;  /* or 0 */
        bool has_arg;
        int id; /* enum cli_option, or one of the GLOBAL_* below */
};

enum { GLOBAL_SOCKET = 100, GLOBAL_JSON, GLOBAL_HELP, GLOBAL_VERSION };

static const struct cli_opt_spec global_options[] = {
    {"socket", 0, true, GLOBAL_SOCKET},
    {"json", 0, false, GLOBAL_JSON},
    {"help", 'h', false, GLOBAL_HELP},
    {"version", 0, false, GLOBAL_VERSION},
    {NULL, 0, false, 0},
};

static const struct cli_opt_spec run_options[] = {
    {"state", 0, true, OPT_STATE},
    {"storage", 0, true, OPT_STORAGE},
    {"master-key", 0, true, OPT_MASTER_KEY},
    {NULL, 0, false, 0},
};
static const struct cli_opt_spec learn_options[] = {
    {"duration", 0, true, OPT_DURATION},     {"out", 0, true, OPT_OUT},
    {"state", 0, true, OPT_STATE},           {"storage", 0, true, OPT_STORAGE},
    {"master-key", 0, true, OPT_MASTER_KEY}, {NULL, 0, false, 0},
};
static const struct cli_opt_spec timeout_options[] = {
    {"timeout", 0, true, OPT_TIMEOUT},
    {NULL, 0, false, 0},
};
static const struct cli_opt_spec kill_options[] = {
    {"signal", 's', true, OPT_SIGNAL},
    {NULL, 0, false, 0},
};
static const struct cli_opt_spec stream_options[] = {
    {"follow", 'f', false, OPT_FOLLOW},
    {"lines", 'n', true, OPT_LINES},
    {NULL, 0, false, 0},
};
static const struct cli_opt_spec exec_options[] = {
    {"tty", 't', false, OPT_TTY},
    {"no-tty", 'T', false, OPT_NO_TTY},
    {NULL, 0, false, 0},
};
static const struct cli_opt_spec set_options[] = {
    {"save", 0, false, OPT_SAVE},
    {NULL, 0, false, 0},
};
static const struct cli_opt_spec top_options[] = {
    {"once", 0, false, OPT_ONCE},
    {"interval", 0, true, OPT_INTERVAL},
    {"count", 0, true, OPT_COUNT},
    {NULL, 0, false, 0},
};

static const struct cli_opt_spec console_options[] = {
    {"force", 0, false, OPT_FORCE},
    {NULL, 0, false, 0},
};
static const struct cli_opt_spec volume_rm_options[] = {
    {"yes", 0, false, OPT_YES},
    {NULL, 0, false, 0},
};

static const struct cli_opt_spec restore_options[] = {
    {"snapshot", 0, true, OPT_SNAPSHOT},
    {"as", 0, true, OPT_AS},
    {"yes", 0, false, OPT_YES},
    {NULL, 0, false, 0},
};

static const struct cli_opt_spec audit_options[] = {
    {"all", 0, false, OPT_ALL},
    {NULL, 0, false, 0},
};

#define ANY (-1)

enum verb_command {
        COMMAND_NONE,     /* only positional arguments */
        COMMAND_OPTIONAL, /* after the positionals, a command whose options are its own */
        COMMAND_REQUIRED,
};

struct cli_verb {
        const char *name; /* one word, or two ("policy show") */
        const char *args; /* usage after the name: options, then positionals */
        const char *help; /* one line for --help */
        const struct cli_opt_spec *options;
        int min, max; /* positional arguments (max ANY: no bound) */
        enum verb_command command;
        bool daemon; /* served by tenantd over its socket */
        int (*run)(const struct cli *cli, int argc, char **argv);
};

static const struct cli_verb verbs[] = {
    {"validate", "FILE...", "check manifests; every error is printed", NULL, 1, ANY, COMMAND_NONE,
     false, cmd_validate},
    {"explain", "FILE", "the effective configuration, defaults filled in", NULL, 1, 1, COMMAND_NONE,
     false, cmd_explain},
    {"policy list", "", "seccomp profiles on the search path", NULL, 0, 0, COMMAND_NONE, false,
     cmd_policy_list},
    {"policy check", "NAME...", "compile profiles with libseccomp, report their size", NULL, 1, ANY,
     COMMAND_NONE, false, cmd_policy_check},
    {"policy show", "NAME", "the resolved rules of a profile (NAME or @SET)", NULL, 1, 1,
     COMMAND_NONE, false, cmd_policy_show},
    {"policy learn",
     "[--duration DURATION] --out FILE [--state DIR] [--storage DIR] [--master-key FILE] MANIFEST",
     "run a sandbox's service, record its calls, write a profile of them (as root)", learn_options,
     1, 1, COMMAND_NONE, false, cmd_policy_learn},
    {"run", "[--state DIR] [--storage DIR] [--master-key FILE] FILE [--] [COMMAND [ARGS...]]",
     "run a tenant in the foreground, without a daemon (as root)", run_options, 1, 1,
     COMMAND_OPTIONAL, false, cmd_run},
    {"list", "", "every tenant: state, pid, uptime, restarts, health", NULL, 0, 0, COMMAND_NONE,
     true, cmd_list},
    {"status", "NAME", "one tenant in detail: usage, mounts, health", NULL, 1, 1, COMMAND_NONE,
     true, cmd_status},
    {"start", "NAME...", "start and wait until it runs", NULL, 1, ANY, COMMAND_NONE, true,
     cmd_lifecycle},
    {"stop", "[--timeout DURATION] NAME...", "stop signal, SIGKILL after the timeout",
     timeout_options, 1, ANY, COMMAND_NONE, true, cmd_lifecycle},
    {"restart", "[--timeout DURATION] NAME...", "stop, then start", timeout_options, 1, ANY,
     COMMAND_NONE, true, cmd_lifecycle},
    {"kill", "[--signal SIG] NAME", "send a signal to the service", kill_options, 1, 1,
     COMMAND_NONE, true, cmd_kill},
    {"logs", "[-f] [-n LINES] NAME", "the service's output", stream_options, 1, 1, COMMAND_NONE,
     true, cmd_logs},
    {"exec", "[-t|-T] NAME [--] COMMAND [ARGS...]",
     "run a command inside, with the same confinement", exec_options, 1, 1, COMMAND_REQUIRED, true,
     cmd_exec},
    {"shell", "NAME", "a login shell inside, for an authorized_keys command= line", NULL, 1, 1,
     COMMAND_NONE, true, cmd_shell},
    {"console", "[--force] NAME",
     "a microVM's serial console, a sandbox's login shell (Ctrl-] detaches)", console_options, 1, 1,
     COMMAND_NONE, true, cmd_console},
    {"set", "[--save] NAME KEY=VALUE...",
     "live quota changes: cpu.max=0.5 memory.max=256M pids.max=100 ...", set_options, 2, ANY,
     COMMAND_NONE, true, cmd_set},
    {"top", "[--once] [--interval DURATION] [--count N]", "live usage table", top_options, 0, 0,
     COMMAND_NONE, true, cmd_top},
    {"events", "[-f] [-n LINES]", "lifecycle events and alerts", stream_options, 0, 0, COMMAND_NONE,
     true, cmd_events},
    {"reload", "", "re-read the manifest directory", NULL, 0, 0, COMMAND_NONE, true, cmd_reload},
    {"audit", "[--all] [NAME|FILE...]", "each tenant's exposure: findings, fixes and a score",
     audit_options, 0, ANY, COMMAND_NONE, true, cmd_audit},
    {"volume list", "", "the volumes in the storage directory, orphans included", NULL, 0, 0,
     COMMAND_NONE, true, cmd_volume_list},
    {"volume rm", "--yes TENANT/NAME", "delete a volume for good (its tenant stopped)",
     volume_rm_options, 1, 1, COMMAND_NONE, true, cmd_volume_rm},
    {"backups", "NAME", "the tenant's snapshots: id, time, volumes, size", NULL, 1, 1, COMMAND_NONE,
     true, cmd_backups},
    {"backup list", "NAME", "the same as backups", NULL, 1, 1, COMMAND_NONE, true, cmd_backups},
    {"backup check", "NAME", "restic check of the tenant's repository", NULL, 1, 1, COMMAND_NONE,
     true, cmd_backup_check},
    {"backup", "NAME", "back up the tenant's volumes now: snapshot id and freeze time", NULL, 1, 1,
     COMMAND_NONE, true, cmd_backup},
    {"restore", "[--snapshot ID|latest] [--as NEWNAME] [--yes] NAME",
     "restore a backup into the stopped tenant (--yes) or a new one (--as), then start it",
     restore_options, 1, 1, COMMAND_NONE, true, cmd_restore},
};

static void usage(FILE *out)
{
        fprintf(out, "Usage: tenantctl [--socket PATH] [--json] VERB [ARGS...]\n");
        for (int daemon = 0; daemon <= 1; daemon++) {
                fputs(daemon ? "\nWith tenantd (root or the tenantd group; a tenant's users: its "
                               "access section):\n"
                             : "\nWithout a daemon:\n",
                      out);
                for (size_t i = 0; i < ARRAY_SIZE(verbs); i++) {
                        const struct cli_verb *v = &verbs[i];
                        if (v->daemon != daemon)
                                continue;
                        char head[128];
                        snprintf(head, sizeof(head), "%s%s%s", v->name, *v->args ? " " : "",
                                 v->args);
                        if (strlen(head) <= 30)
                                fprintf(out, "  %-30s %s\n", head, v->help);
                        else
                                fprintf(out, "  %s\n  %-30s %s\n", head, "", v->help);
                }
        }
        fprintf(out,
                "\n"
                "Options (before or after the verb; after a command they are the command's):\n"
                "  --socket PATH           control socket (default $TENANTD_SOCKET or %s)\n"
                "  --json                  machine-readable output\n"
                "  -h, --help              this text (after a verb: that verb's usage)\n"
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

int cli_usage_error(const struct cli *cli, const char *fmt, ...)
{
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr, "tenantctl %s: %s\n%s\n", cli->verb, msg, cli->usage);
        return EXIT_USAGE;
}

/* The n-th positional word of a verb's usage ("NAME", "KEY=VALUE", "COMMAND"):
 * bracketed parts and "..." left out. */
static void positional_word(const char *args, int n, char *buf, size_t len)
{
        int depth = 0, k = 0;
        const char *last = NULL;
        size_t last_len = 0;
        for (const char *p = args; *p;) {
                if (*p == ' ') {
                        p++;
                        continue;
                }
                size_t w = strcspn(p, " ");
                for (size_t i = 0; i < w; i++)
                        depth += p[i] == '[' ? 1 : p[i] == ']' ? -1 : 0;
                if (depth == 0 && p[0] != '[') {
                        last = p;
                        last_len = w;
                        if (w >= 3 && strncmp(p + w - 3, "...", 3) == 0)
                                last_len -= 3;
                        if (k++ == n)
                                break;
                }
                p += w;
        }
        snprintf(buf, len, "%.*s", last ? (int)last_len : 8, last ? last : "argument");
}

static const struct cli_opt_spec *find_long(const struct cli_opt_spec *const sets[2],
                                            const char *name, size_t len, bool *ambiguous)
{
        const struct cli_opt_spec *found = NULL;
        *ambiguous = false;
        for (int s = 0; s < 2; s++)
                for (const struct cli_opt_spec *o = sets[s]; o && o->name; o++) {
                        if (strncmp(o->name, name, len) != 0)
                                continue;
                        if (strlen(o->name) == len)
                                return o; /* exact */
                        if (found)
                                *ambiguous = true;
                        found = o;
                }
        return *ambiguous ? NULL : found;
}

static const struct cli_opt_spec *find_short(const struct cli_opt_spec *const sets[2], char c)
{
        for (int s = 0; s < 2; s++)
                for (const struct cli_opt_spec *o = sets[s]; o && o->name; o++)
                        if (o->short_name == c)
                                return o;
        return NULL;
}

/* One option taken: a global one sets its field; a verb's goes to cli->opts. Returns
 * -1 to go on, or an exit code (--help, --version, too many options). */
static int take_option(struct cli *cli, const struct cli_opt_spec *o, const char *arg)
{
        switch (o->id) {
        case GLOBAL_SOCKET:
                cli->socket = arg;
                return -1;
        case GLOBAL_JSON:
                cli->json = true;
                return -1;
        case GLOBAL_HELP:
                if (!cli->verb) {
                        usage(stdout);
                } else {
                        printf("%s\n", cli->usage);
                }
                return EXIT_OK;
        case GLOBAL_VERSION:
                printf("tenantctl %s\n", TENANTD_VERSION);
                return EXIT_OK;
        default:
                if (cli->opts_n == CLI_OPTS_MAX)
                        return cli_usage_error(cli, "more than %d options", CLI_OPTS_MAX);
                cli->opts[cli->opts_n].id = (enum cli_option)o->id;
                cli->opts[cli->opts_n].arg = arg;
                cli->opts_n++;
                return -1;
        }
}

static int unknown_option(const struct cli *cli, const char *what)
{
        if (cli->verb)
                return cli_usage_error(cli, "unknown option %s", what);
        log_error("unknown option %s; see tenantctl --help", what);
        return EXIT_USAGE;
}

static int missing_value(const struct cli *cli, const char *what)
{
        if (cli->verb)
                return cli_usage_error(cli, "option %s needs a value", what);
        log_error("option %s needs a value; see tenantctl --help", what);
        return EXIT_USAGE;
}

/* argv[*k] begins with "-" (and is not "-" or "--"): takes it, and its value from the
 * next word when it needs one. Returns -1 to go on, or an exit code. */
static int parse_option(struct cli *cli, const struct cli_opt_spec *verb_options, int argc,
                        char **argv, int *k)
{
        const struct cli_opt_spec *const sets[2] = {global_options, verb_options};
        char *arg = argv[*k];
        if (arg[1] == '-') {
                const char *name = arg + 2;
                const char *eq = strchr(name, '=');
                size_t len = eq ? (size_t)(eq - name) : strlen(name);
                bool ambiguous;
                const struct cli_opt_spec *o = find_long(sets, name, len, &ambiguous);
                char shown[80];
                snprintf(shown, sizeof(shown), "--%.*s", (int)(len < 64 ? len : 64), name);
                if (!o)
                        return ambiguous ? (cli->verb ? cli_usage_error(cli,
                                                                        "option %s is "
                                                                        "ambiguous",
                                                                        shown)
                                                      : unknown_option(cli, shown))
                                         : unknown_option(cli, shown);
                snprintf(shown, sizeof(shown), "--%s", o->name);
                if (!o->has_arg && eq) {
                        if (cli->verb)
                                return cli_usage_error(cli, "option %s takes no value", shown);
                        log_error("option %s takes no value", shown);
                        return EXIT_USAGE;
                }
                if (o->has_arg && !eq) {
                        if (*k + 1 >= argc)
                                return missing_value(cli, shown);
                        return take_option(cli, o, argv[++*k]);
                }
                return take_option(cli, o, eq ? eq + 1 : NULL);
        }
        /* Short options, maybe grouped: -fn 20, -fn20. */
        for (const char *p = arg + 1; *p; p++) {
                const struct cli_opt_spec *o = find_short(sets, *p);
                char shown[3] = {'-', *p, '\0'};
                if (!o)
                        return unknown_option(cli, shown);
                int r;
                if (o->has_arg) {
                        const char *value = p[1] ? p + 1 : NULL;
                        if (!value) {
                                if (*k + 1 >= argc)
                                        return missing_value(cli, shown);
                                value = argv[++*k];
                        }
                        return take_option(cli, o, value);
                }
                if ((r = take_option(cli, o, NULL)) >= 0)
                        return r;
        }
        return -1;
}

static const struct cli_verb *find_verb(int argc, char **argv, int *ret_words)
{
        for (size_t i = 0; i < ARRAY_SIZE(verbs); i++) {
                const char *name = verbs[i].name, *sp = strchr(name, ' ');
                if (!sp && strcmp(name, argv[0]) == 0) {
                        *ret_words = 1;
                        return &verbs[i];
                }
                if (sp && argc > 1 && strncmp(name, argv[0], (size_t)(sp - name)) == 0 &&
                    argv[0][sp - name] == '\0' && strcmp(sp + 1, argv[1]) == 0) {
                        *ret_words = 2;
                        return &verbs[i];
                }
        }
        return NULL;
}

/* "policy" without a known second word: the choices. */
static int unknown_subverb(int argc, char **argv)
{
        char choices[256] = "";
        size_t off = 0, n = strlen(argv[0]);
        for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
                if (strncmp(verbs[i].name, argv[0], n) == 0 && verbs[i].name[n] == ' ' &&
                    off < sizeof(choices))
                        off += (size_t)snprintf(choices + off, sizeof(choices) - off, "%s%s",
                                                off ? ", " : "", verbs[i].name + n + 1);
        if (!off)
                return -1;
        if (argc < 2)
                fprintf(stderr, "tenantctl %s: missing the command; expected one of: %s\n", argv[0],
                        choices);
        else
                fprintf(stderr, "tenantctl %s: unknown command \"%.64s\"; expected one of: %s\n",
                        argv[0], argv[1], choices);
        return EXIT_USAGE;
}

/* The verb's options and arguments, from argv[words] on: options anywhere up to "--"
 * or the command; positionals within the table's bounds. */
static int run_verb(struct cli *cli, const struct cli_verb *v, int words, int argc, char **argv)
{
        static char usage_line[256]; /* cli->usage points here after we return */
        snprintf(usage_line, sizeof(usage_line), "usage: tenantctl %s%s%s", v->name,
                 *v->args ? " " : "", v->args);
        cli->verb = v->name;
        cli->usage = usage_line;
        _cleanup_free_ char **pos = calloc((size_t)argc + 1, sizeof(char *));
        if (!pos)
                return EXIT_FAILED;
        int np = 0;
        pos[np++] = (char *)v->name;
        bool options_done = false;
        for (int k = words; k < argc; k++) {
                char *arg = argv[k];
                if (!options_done && strcmp(arg, "--") == 0) {
                        options_done = true;
                        continue;
                }
                if (!options_done && arg[0] == '-' && arg[1]) {
                        int r = parse_option(cli, v->options, argc, argv, &k);
                        if (r >= 0)
                                return r;
                        continue;
                }
                if (v->command != COMMAND_NONE && np - 1 == v->max) {
                        cli->cmd = argv + k; /* the rest is the command's */
                        break;
                }
                pos[np++] = arg;
        }
        char word[64];
        if (np - 1 < v->min) {
                positional_word(v->args, np - 1, word, sizeof(word));
                return cli_usage_error(cli, "missing %s", word);
        }
        if (v->max != ANY && np - 1 > v->max)
                return cli_usage_error(cli, "unexpected argument \"%.64s\"", pos[v->max + 1]);
        if (v->command == COMMAND_REQUIRED && !cli->cmd) {
                positional_word(v->args, v->max, word, sizeof(word));
                return cli_usage_error(cli, "missing %s", word);
        }
        return v->run(cli, np, pos);
}

int main(int argc, char **argv)
{
        struct cli cli = {.socket = getenv("TENANTD_SOCKET")};
        if (!cli.socket || !*cli.socket)
                cli.socket = DEFAULT_SOCKET;
        log_open("tenantctl", LOG_TARGET_STDERR, 0);

        /* Global options before the verb. */
        int k = 1;
        for (; k < argc && argv[k][0] == '-' && argv[k][1] && strcmp(argv[k], "--") != 0; k++) {
                int r = parse_option(&cli, NULL, argc, argv, &k);
                if (r >= 0)
                        return r;
        }
        if (k < argc && strcmp(argv[k], "--") == 0)
                k++;
        if (k >= argc) {
                usage(stderr);
                return EXIT_USAGE;
        }
        int words;
        const struct cli_verb *v = find_verb(argc - k, argv + k, &words);
        if (!v) {
                int r = unknown_subverb(argc - k, argv + k);
                if (r >= 0)
                        return r;
                log_error("unknown verb \"%.64s\"; see tenantctl --help", argv[k]);
                return EXIT_USAGE;
        }
        return run_verb(&cli, v, words, argc - k, argv + k);
}
