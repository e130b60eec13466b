/* runner_proto.h — the VM runner's exec socket (STATE/vm/NAME/exec.sock): what tenantd
 * asks a microVM's runner, and what the runner answers to a health check. One codec for
 * both ends (daemon/control.c and daemon/health.c ask, vm/cmd_run_vm.c answers).
 *
 * A connection carries one request line, at most RUNNER_REQUEST_MAX bytes with its
 * newline:
 *   {"argv":["/bin/sh","-c","..."]}                      an exec session: the runner
 *       answers in the frames of exec_proto.h (output, then the exit status)
 *   {"argv":[...],"stdin":true}                           the same, and the command's
 *       stdin is fed by the EXEC_STDIN frames tenantd sends on the connection (until
 *       one of length 0); without "stdin" it is /dev/null
 *   {"argv":[...],"stdin":true,"tty":{"rows":24,"cols":80}}  a terminal in the guest:
 *       EXEC_WINSIZE frames resize it, its output comes as EXEC_STDOUT
 *   {"console":{"rows":24,"cols":80,"force":false}}    the guest's serial console:
 *       its output comes as EXEC_STDOUT frames, EXEC_STDIN frames are typed on it,
 *       EXEC_WINSIZE frames set the line's size; one client at a time, "force" takes
 *       the console from the one that has it (which ends with status 1)
 *   {"health":{"tcp":8080,"timeout_ms":2000}}            a health check, by port
 *   {"health":{"http":8080,"path":"/","timeout_ms":2000}} by a GET (agent_http_path_ok)
 *   {"health":{"exec":["/bin/check"],"timeout_ms":2000}} or by command
 *       answered by one line: {"status":0,"detail":"ok"} (0 healthy, 1 not)
 *   {"limits":{"pids_max":30}}                          a live `tenantctl set` of the
 *       guest's service cgroup: pids_max 1..AGENT_PIDS_MAX, or 0 for no limit; answered
 *       as a health check is: status 0 done, 1 not, the detail saying why
 * The runner's socket is root's, in a 0700 directory; its peer is tenantd. Both ends
 * still check every member, so neither sends what the other refuses, and a mistake
 * is a message, not a guess. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/json.h"

#define RUNNER_REQUEST_MAX 16384 /* bytes of a request line, newline included */
#define RUNNER_ARGV_MAX 256      /* as the agent takes (AGENT_ARGV_MAX) */
#define RUNNER_DETAIL_MAX 1024   /* bytes of a health detail (AGENT_TEXT_MAX) */
#define RUNNER_ANSWER_MAX 8192   /* bytes of a health answer: the detail escaped, and more */
#define RUNNER_TIMEOUT_MIN_MS 100
#define RUNNER_TIMEOUT_MAX_MS 600000 /* AGENT_TIMEOUT_MAX_MS */

enum runner_request_kind {
        RUNNER_EXEC,
        RUNNER_HEALTH_TCP,
        RUNNER_HEALTH_HTTP,
        RUNNER_HEALTH_EXEC,
        RUNNER_CONSOLE,
        RUNNER_LIMITS,
};

struct runner_request {
        enum runner_request_kind kind;
        const char *const *argv; /* exec, health exec: argc strings, NULL-terminated */
        size_t argc;
        uint16_t port;       /* health tcp, http: 1..65535 */
        const char *path;    /* health http */
        uint32_t timeout_ms; /* health */
        bool stdin_open;     /* exec: stdin in EXEC_STDIN frames (tty implies it) */
        bool tty;            /* exec: a terminal of rows x cols (1..65535 each) */
        uint16_t rows, cols; /* and console's */
        bool force;          /* console: take it from its client */
        uint32_t pids_max;   /* limits: 0 (no limit) to AGENT_PIDS_MAX */
        /* owned by a decoded request */
        struct json_value *tree;
        char **vec_;
};

void runner_request_clear(struct runner_request *req);

/* One line ending in "\n", malloc'ed and NUL-terminated; -EINVAL when the request breaks a rule the
 * decoder enforces, -EMSGSIZE when it is longer than RUNNER_REQUEST_MAX. */
int runner_request_encode(const struct runner_request *req, char **ret, size_t *ret_len);

/* One line (a trailing newline is allowed). On failure *ret is untouched and the error
 * says what is wrong ("\"argv\" must be ..."). */
int runner_request_decode(const char *line, size_t len, struct runner_request *ret,
                          struct tn_err **err);

/* The answer to a health check; the detail is cut to RUNNER_DETAIL_MAX bytes at a
 * character boundary. */
int runner_health_encode(bool healthy, const char *detail, char **ret, size_t *ret_len);
/* *ret_detail: malloc'ed, "" when absent. */
int runner_health_decode(const char *line, size_t len, bool *ret_healthy, char **ret_detail,
                         struct tn_err **err);
