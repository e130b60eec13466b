/* control_proto.h — the control protocol (tenantctl <-> tenantd, docs/protocol.md): the
 * one table of operations, the names of the request and reply members, a typed decoder
 * for requests and the one encoder of requests and replies. tenantctl and tenantd both
 * use it, so neither end spells an op or a key of its own.
 *
 * A request is one line of JSON, at most CONTROL_REQUEST_MAX bytes, nested at most
 * CONTROL_DEPTH_MAX levels. Every member a request carries is decoded here, checked for
 * type and range, and refused with a message that names the member and what it
 * accepts; members an op does not take are ignored (docs/protocol.md: new members may
 * appear). Whether a named tenant exists, and may be acted on, is the daemon's to say.
 *
 * This file depends on lib/ only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/json.h"

#define CONTROL_PROTO_VERSION 1
#define CONTROL_REQUEST_MAX (64U << 10) /* bytes of a request line, without its newline */
#define CONTROL_DEPTH_MAX 8
#define CONTROL_ARGV_MAX 256  /* exec: arguments */
#define CONTROL_VALUES_MAX 16 /* set: KEY: VALUE pairs */
#define CONTROL_VALUE_MAX 64  /* set: bytes of one value */
#define CONTROL_TIMEOUT_MAX_MS 3600000
#define CONTROL_LOG_LINES_MAX 1000000
#define CONTROL_EVENT_LINES_MAX 100000
#define CONTROL_NAME_SHOW_MAX 64 /* bytes of a name or op quoted back in an error */

/* Request members. */
#define CTL_V "v"
#define CTL_OP "op"
#define CTL_NAME "name"
#define CTL_TIMEOUT_MS "timeout_ms" /* stop, restart */
#define CTL_SIGNAL "signal"         /* kill */
#define CTL_LINES "lines"           /* logs, events */
#define CTL_FOLLOW "follow"         /* logs, events */
#define CTL_ARGV "argv"             /* exec */
#define CTL_TTY "tty"               /* exec; also in its reply */
#define CTL_ROWS "rows"             /* exec, console */
#define CTL_COLS "cols"             /* exec, console */
#define CTL_VALUES "values"         /* set */
#define CTL_SAVE "save"             /* set */
#define CTL_VOLUME "volume"         /* volume-rm: "TENANT/NAME" */
#define CTL_ACTION "action"         /* backup */
#define CTL_SNAPSHOT "snapshot"     /* backup */
#define CTL_AS "as"                 /* backup restore: into a new tenant of this name */
#define CTL_YES "yes"               /* backup restore: replace the volumes' data in place */
#define CTL_FORCE "force"           /* console: take it from the client that has it */
/* Reply members. */
#define CTL_OK "ok"
#define CTL_ERROR "error"
#define CTL_CODE "code"
#define CTL_MESSAGE "message"
#define CTL_TENANTS "tenants"     /* list, top */
#define CTL_TENANT "tenant"       /* status, audit */
#define CTL_DATA "data"           /* logs stream */
#define CTL_EVENT "event"         /* events stream */
#define CTL_VOLUMES "volumes"     /* volumes */
#define CTL_SNAPSHOTS "snapshots" /* backup list */
#define CTL_MORE "more"           /* backup list: snapshots left out */

enum control_op {
        CONTROL_OP_VERSION,
        CONTROL_OP_LIST,
        CONTROL_OP_TOP,
        CONTROL_OP_STATUS,
        CONTROL_OP_START,
        CONTROL_OP_STOP,
        CONTROL_OP_RESTART,
        CONTROL_OP_KILL,
        CONTROL_OP_LOGS,
        CONTROL_OP_EXEC,
        CONTROL_OP_SET,
        CONTROL_OP_EVENTS,
        CONTROL_OP_RELOAD,
        CONTROL_OP_AUDIT,
        CONTROL_OP_VOLUMES,
        CONTROL_OP_VOLUME_RM,
        CONTROL_OP_BACKUP,
        CONTROL_OP_CONSOLE,
        CONTROL_OP_COUNT_,
};

/* How an op is answered, and what it needs. No op needs more than membership in the
 * control group today; an op that one day needs root gets a flag here. */
enum {
        CONTROL_F_NAME = 1 << 0,   /* acts on one tenant: "name" is required */
        CONTROL_F_WAITS = 1 << 1,  /* answered when the operation is over (start, stop) */
        CONTROL_F_STREAM = 1 << 2, /* after {"ok":true}, data or event lines (logs, events) */
        CONTROL_F_FRAMES = 1 << 3, /* after {"ok":true}, exec_proto.h frames (exec, console) */
};

/* backup's "action" (docs/protocol.md): what is done with the tenant's backups. */
enum control_backup_action {
        CONTROL_BACKUP_RUN,     /* a backup now */
        CONTROL_BACKUP_LIST,    /* the tenant's snapshots (`backups`) */
        CONTROL_BACKUP_CHECK,   /* restic check of the repository */
        CONTROL_BACKUP_RESTORE, /* restore into the stopped tenant's volumes */
        CONTROL_BACKUP_COUNT_,
};
extern const char *const control_backup_actions[CONTROL_BACKUP_COUNT_];
#define CONTROL_SNAPSHOT_MAX 64    /* bytes of a snapshot id */
#define CONTROL_TENANT_NAME_MAX 32 /* "as": a tenant name (MANIFEST_NAME_MAX) */

struct control_op_info {
        enum control_op op;
        const char *name; /* on the wire */
        unsigned flags;
};

/* The table, indexed by enum control_op. */
extern const struct control_op_info control_ops[CONTROL_OP_COUNT_];
/* The op called `name`, or NULL. */
const struct control_op_info *control_op_lookup(const char *name);
const char *control_op_name(enum control_op op);

/* A request, decoded. Strings point into `tree` (or, for one built by a client, into
 * the caller's memory). Fields an op does not take keep their defaults. */
struct control_request {
        enum control_op op;
        const char *name;        /* NULL when absent */
        uint64_t timeout_ms;     /* stop, restart: 0 = the manifest's */
        int signal;              /* kill: 1..64, default SIGTERM */
        int64_t lines;           /* logs (default 50), events (default 20) */
        bool follow;             /* logs, events */
        const char *const *argv; /* exec: argc strings, NULL-terminated */
        size_t argc;
        bool tty;                /* exec */
        uint16_t rows, cols;     /* exec, console: default 24, 80 */
        bool force;              /* console */
        const char *const *keys; /* set: n_values pairs */
        const char *const *values;
        size_t n_values;
        bool save;                         /* set */
        const char *volume;                /* volume-rm: "TENANT/NAME" */
        enum control_backup_action action; /* backup */
        const char *snapshot;              /* backup restore: id, or NULL for the latest */
        const char *as;                    /* backup restore: a new tenant's name, or NULL */
        bool yes;                          /* backup restore in place: replace the data */
        /* owned by the decoder's result */
        struct json_value *tree;
        char **vec_; /* argv, keys and values of a decoded request */
};

/* Defaults for `op` (what a decoder fills in for absent members). */
void control_request_init(struct control_request *req, enum control_op op);
void control_request_clear(struct control_request *req);

/* Decodes one request line (without its newline). On failure *ret is untouched, the
 * error says where and what ("bad request at 1:19: ...", "\"timeout_ms\" must be an
 * integer from 0 to 3600000", "unknown op \"nope\"") and the return is -EINVAL
 * (-ENOMEM when memory ran out). */
int control_request_decode(const char *line, size_t len, struct control_request *ret,
                           struct tn_err **err);

/* Encodes a request as one line ending in "\n" (malloc'ed, NUL-terminated): the members
 * of its op only. -EINVAL when a string is not UTF-8, -EMSGSIZE over
 * CONTROL_REQUEST_MAX; whether tenantd would take it, control_request_check() says. */
int control_request_encode(const struct control_request *req, char **ret, size_t *ret_len);

/* Checks a request a client built, as tenantd will: 0, or -EINVAL and the message
 * tenantd would answer (so tenantctl can say it without asking). */
int control_request_check(const struct control_request *req, struct tn_err **err);

/* A signal as an operator writes it: TERM, SIGTERM, ... (the names tenantd takes) or a
 * number from 1 to 64. 0 and *ret, or -EINVAL. */
int control_signal_parse(const char *s, int *ret);

/* ---- replies ----
 *
 * Every reply opens with {"v":1,"ok":BOOL (control_reply_open); stream lines carry "v"
 * only. Strings go through json_gen, which escapes them; text that is not valid UTF-8
 * (a name from a configuration file, a path) is made so by control_gen_text. */

/* The code of an error reply for a negative errno: "busy", "not-found", "invalid",
 * "denied", "already", "unsupported", "not-running", "failed". */
const char *control_error_code(int r);

struct json_gen *control_reply_open(bool ok);
/* {"v":1} opened, for the lines of a stream. */
struct json_gen *control_stream_open(void);
/* A complete error reply (with "\n"), malloc'ed: code from r, message msg. */
int control_error_encode(int r, const char *msg, char **ret, size_t *ret_len);
/* A string member's value, with invalid UTF-8 replaced by U+FFFD, so that a reply is
 * never lost to a byte the generator refuses. */
void control_gen_text(struct json_gen *g, const char *s);
