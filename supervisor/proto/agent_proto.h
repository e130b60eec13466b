/* agent_proto.h — the tenantd <-> tenant-agent protocol (v1): frames, typed messages,
 * decoders and encoders, shared by the supervisor and the guest agent.
 *
 * Transport is a virtio-serial port carrying one JSON object per line (see
 * docs/agent-protocol.md). Both ends treat the other as hostile: the agent runs inside
 * a guest a tenant may own, and a confused host must not crash the agent. So every
 * frame is bounded (1 MiB with its newline, nesting depth 8), and every message is
 * decoded into a C struct whose fields have been checked for type, range and length;
 * unknown keys, unknown ops, missing "v" and trailing bytes are errors.
 *
 * This file depends on json.c and err.c only (no libvirt, no logging), so the static
 * agent links it as is. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"

#define AGENT_PROTO_VERSION 1
#define AGENT_PORT_NAME "org.tenantd.agent.0"

#define AGENT_FRAME_MAX (1024 * 1024) /* bytes of one frame, newline included */
#define AGENT_DEPTH_MAX 8
#define AGENT_DATA_MAX (64 * 1024) /* decoded bytes of a log frame or of exec stdin */
#define AGENT_ARGV_MAX 256
#define AGENT_ENV_MAX 256
#define AGENT_GROUPS_MAX 64
#define AGENT_MOUNTS_MAX 96 /* the root and /usr shares, 64 mounts and 16 volumes fit */
#define AGENT_DNS_MAX 3     /* what resolv.conf honours */
#define AGENT_STRING_MAX 4096
#define AGENT_TEXT_MAX 1024 /* error and health detail texts */
#define AGENT_NAME_MAX 128  /* agent version and kernel release in hello */
#define AGENT_TAG_MAX 32
#define AGENT_HOSTNAME_MAX 64
#define AGENT_TIMEOUT_MAX_MS 600000
#define AGENT_HEALTH_TIMEOUT_DEFAULT_MS 5000
#define AGENT_HEALTH_PATH_MAX 1024 /* bytes of an http check's path (the manifest's limit) */
#define AGENT_SHUTDOWN_TIMEOUT_DEFAULT_MS 10000
/* System call numbers the guest's filter names: 0..AGENT_NR_MAX-1 (lib/seccomp_notify.h's
 * NOTIFY_MAX_NR). In the agent's events AGENT_NR_MAX itself stands for any other number. */
#define AGENT_NR_MAX 1024
#define AGENT_COUNT_MAX 9007199254740991ULL /* 2^53 - 1: exact in every JSON reader */
#define AGENT_PIDS_MAX 4194304              /* the kernel's PID_MAX_LIMIT */

/* ---- frames ----
 *
 * An incremental line reader with a fixed ceiling: its buffer grows on demand up to
 * AGENT_FRAME_MAX and never beyond. A line that does not fit is dropped up to and
 * including its newline, and reported once, as AGENT_READ_OVERSIZED. */
struct agent_reader {
        char *buf;
        size_t cap;     /* allocated, <= AGENT_FRAME_MAX */
        size_t start;   /* first byte not yet returned */
        size_t len;     /* bytes held */
        size_t scanned; /* bytes after start known to hold no newline */
        bool discarding;
};

enum agent_read {
        AGENT_READ_NONE,      /* no complete line buffered: feed more */
        AGENT_READ_FRAME,     /* a line, without its newline */
        AGENT_READ_OVERSIZED, /* a line over the cap was (or is being) discarded */
};

void agent_reader_init(struct agent_reader *r);
void agent_reader_free(struct agent_reader *r);

/* Takes bytes from data; returns how many it consumed (less than len when its buffer
 * is full: call agent_reader_next() until AGENT_READ_NONE, then feed the rest). Never
 * fails: when memory runs out it consumes nothing. */
size_t agent_reader_feed(struct agent_reader *r, const void *data, size_t len);

/* Reads once from fd (non-blocking or not) into the buffer. Returns the bytes read, 0 at
 * end of file, or a negative errno (-EAGAIN included). */
ssize_t agent_reader_fill(struct agent_reader *r, int fd);

/* The next line, valid until the next call on r. */
enum agent_read agent_reader_next(struct agent_reader *r, const char **ret_line, size_t *ret_len);

/* ---- messages ---- */

enum agent_op {
        AGENT_OP_HELLO = 1,
        AGENT_OP_SETUP,
        AGENT_OP_START,
        AGENT_OP_SIGNAL,
        AGENT_OP_EXEC,
        AGENT_OP_STATS,
        AGENT_OP_HEALTH,
        AGENT_OP_SHUTDOWN,
        AGENT_OP_STDIN,
        AGENT_OP_RESIZE,
        AGENT_OP_CONSOLE,
        AGENT_OP_LIMITS,
};
const char *agent_op_name(enum agent_op op); /* "hello", ... or NULL */

enum agent_fstype {
        AGENT_FS_VIRTIOFS,
        AGENT_FS_9P,
        AGENT_FS_TMPFS, /* a fresh tmpfs of the guest's: no tag, nothing of the host */
};

/* A tmpfs mount's size in bytes: the manifest's bounds (1M to 64G). Its top directory
 * is mode AGENT_TMPFS_MODE, as a sandbox's declared tmpfs (sandbox/rootfs.c). */
#define AGENT_TMPFS_SIZE_MIN (1ULL << 20)
#define AGENT_TMPFS_SIZE_MAX (64ULL << 30)
#define AGENT_TMPFS_MODE 01777

/* One mount of the guest, made in the order of the setup request: a share (tag,
 * virtiofs or 9p) or a tmpfs (no tag, a size). Every one is nosuid and nodev. */
struct agent_mount {
        char *tag;    /* shares: 1..AGENT_TAG_MAX of [A-Za-z0-9._-]; tmpfs: NULL */
        char *target; /* absolute, canonical: no "//", ".", ".." or trailing "/" */
        enum agent_fstype fstype;
        bool readonly;
        bool noexec;
        uint64_t size; /* tmpfs only: AGENT_TMPFS_SIZE_MIN..AGENT_TMPFS_SIZE_MAX bytes */
};

struct agent_net {
        struct in_addr address;
        unsigned prefix; /* 0..32 */
        bool has_gateway;
        struct in_addr gateway;
        bool has_address6; /* without: IPv6 off in the guest */
        struct in6_addr address6;
        unsigned prefix6; /* 1..128 */
        bool has_gateway6;
        struct in6_addr gateway6;
        char *dns[AGENT_DNS_MAX]; /* IPv4 or IPv6 literals */
        size_t n_dns;
};

struct agent_setup {
        char *hostname; /* NULL when absent */
        struct agent_mount *mounts;
        size_t n_mounts;
        bool has_net;
        struct agent_net net;
        uint32_t pids_max; /* the manifest's pids.max for the guest's processes; 0: none */
};

/* The manifest's seccomp profile as far as the guest applies it (start only; see
 * docs/agent-protocol.md#start): the calls of its "notify" rules, which the agent
 * denies with EPERM and reports in "denied" events, or, learning, every call notified
 * and counted, answered as the profile would by number, reported in a "learned" event. */
struct agent_errno_rule {
        uint16_t nr;  /* < AGENT_NR_MAX */
        uint16_t err; /* 1..4095 */
};

struct agent_seccomp {
        bool set;                        /* the start request had "seccomp" */
        bool learn;                      /* learning mode */
        uint16_t *notify;                /* not learning: sorted, unique, < AGENT_NR_MAX */
        size_t n_notify;                 /* 1..AGENT_NR_MAX */
        struct agent_errno_rule *refuse; /* learning: calls refused with an errno */
        size_t n_refuse;                 /* 0..AGENT_NR_MAX, numbers unique */
};

/* A process to run: the service (start) or an exec session. */
struct agent_proc {
        char **argv; /* NULL-terminated, 1..AGENT_ARGV_MAX */
        size_t argc;
        char **env; /* "KEY=VALUE", NULL-terminated, sorted as received */
        size_t n_env;
        uint32_t uid, gid;
        uint32_t *groups;
        size_t n_groups;
        char *workdir;                /* absolute */
        struct agent_seccomp seccomp; /* start only */
};

struct agent_signal {
        uint32_t session;
        int signo; /* 1..64 */
};

struct agent_exec {
        uint32_t session; /* > 0 */
        struct agent_proc proc;
        bool has_stdin; /* stdin_data is the whole input, then end of file */
        uint8_t *stdin_data;
        size_t stdin_len;
        bool stdin_open;     /* stdin is fed by stdin requests until one says eof */
        bool tty;            /* a terminal in the guest (implies stdin_open) */
        uint16_t rows, cols; /* tty: its first window size, 1..65535 each */
};

/* Input for an exec session opened with stdin_open (or tty). Answered once the bytes
 * are written to the command's stdin (or dropped because it closed it): the host
 * sends the next chunk only then, so the agent holds at most one per session. */
struct agent_stdin {
        uint32_t session; /* > 0 */
        uint8_t *data;    /* decoded, 0..AGENT_DATA_MAX bytes */
        size_t len;
        bool eof; /* after data: close the command's stdin (ignored with a terminal) */
};

struct agent_resize {
        uint32_t session; /* > 0, a session with a terminal */
        uint16_t rows, cols;
};

/* A login shell on the guest's serial console (`tenantctl console`): started unless one
 * runs there already, with the same confinement as an exec; the console line gets the
 * window size either way. Its exit is reported as the exit event of session
 * AGENT_CONSOLE_SESSION, an id the host never gives an exec session. */
#define AGENT_CONSOLE_SESSION UINT32_MAX
struct agent_console {
        struct agent_proc proc;
        uint16_t rows, cols; /* 1..65535 each */
};

enum agent_health_kind {
        AGENT_HEALTH_TCP,
        AGENT_HEALTH_HTTP,
        AGENT_HEALTH_EXEC,
};

struct agent_health {
        enum agent_health_kind kind;
        uint16_t port; /* tcp, http */
        char *path;    /* http: agent_http_path_ok() */
        char **argv;   /* NULL-terminated */
        size_t argc;
        uint32_t timeout_ms;
};

/* A live change of the tenant's cgroup in the guest (`tenantctl set` on a running
 * microVM): its pids.max, 1..AGENT_PIDS_MAX, or 0 for no limit ("max"). Answered by an
 * empty reply once written, or by an error (no cgroup, the kernel refused it). */
struct agent_limits_req {
        uint32_t pids_max;
};

struct agent_request {
        uint32_t id; /* > 0 */
        enum agent_op op;
        union {
                struct agent_setup setup;
                struct agent_proc start;
                struct agent_signal signal;
                struct agent_exec exec;
                struct agent_stdin stdin;
                struct agent_resize resize;
                struct agent_console console;
                struct agent_health health;
                uint32_t shutdown_timeout_ms;
                struct agent_limits_req limits;
        } u;
};
void agent_request_clear(struct agent_request *req);

struct agent_hello {
        char *agent;
        char *kernel;
        uint64_t boot_ms;
};

struct agent_stats {
        uint64_t cpu_ns;
        uint64_t mem_total;
        uint64_t mem_available;
        double load1;
        uint64_t uptime_ms;
};

struct agent_health_result {
        bool healthy;
        char *detail;
};

struct agent_reply {
        uint32_t id; /* 0 only for an error about a frame with no usable id */
        bool ok;
        char *error;      /* when !ok */
        enum agent_op op; /* which request this answers (decides the result's shape) */
        union {
                struct agent_hello hello;
                int32_t pid; /* start, exec, console (the console's shell) */
                struct agent_stats stats;
                struct agent_health_result health;
        } u;
};
void agent_reply_clear(struct agent_reply *reply);

enum agent_event_kind {
        AGENT_EVENT_READY = 1,
        AGENT_EVENT_LOG,
        AGENT_EVENT_EXIT,
        AGENT_EVENT_DENIED,  /* calls of a notify rule denied since the last event */
        AGENT_EVENT_LEARNED, /* learning: every call the service made, counted */
        AGENT_EVENT_LIMITS,  /* the guest's OOM kills and refused forks, totals since boot */
};

/* What the guest's kernel did to the tenant's processes (their cgroup in the guest):
 * processes killed out of memory, forks refused at pids_max. Totals, each 0 to
 * AGENT_COUNT_MAX; the agent sends them when one grew, at most once a second. */
struct agent_limits {
        uint64_t oom_kills;
        uint64_t pids_max_hits;
};

struct agent_call_count {
        uint16_t nr;    /* 0..AGENT_NR_MAX (AGENT_NR_MAX: any other number) */
        uint64_t count; /* 1..AGENT_COUNT_MAX */
};

enum agent_stream {
        AGENT_STREAM_STDOUT,
        AGENT_STREAM_STDERR,
};

struct agent_event {
        enum agent_event_kind kind;
        uint32_t session;
        enum agent_stream stream; /* log */
        uint8_t *data;            /* log, decoded, at most AGENT_DATA_MAX */
        size_t len;
        bool signaled; /* exit: code is a signal number (1..64), else an exit code */
        int code;
        struct agent_call_count denied; /* denied */
        struct agent_call_count *calls; /* learned: numbers unique, at most AGENT_NR_MAX + 1 */
        size_t n_calls;
        struct agent_limits limits; /* limits */
};
void agent_event_clear(struct agent_event *ev);

/* An agent -> host frame: a reply or an event. */
struct agent_msg {
        bool is_event;
        struct agent_reply reply;
        struct agent_event event;
};
void agent_msg_clear(struct agent_msg *msg);

/* ---- decoding ----
 *
 * Each takes one line as returned by agent_reader_next(). On failure *ret is left
 * cleared, the error names the offending key or value, and the return is -EINVAL
 * (-ENOMEM when memory ran out). */

/* Host -> agent. *ret_id is set to the request's id whenever the frame carried a
 * usable one, even when the rest is refused, so the agent can answer it; else 0. */
int agent_request_decode(const char *line, size_t len, struct agent_request *ret, uint32_t *ret_id,
                         struct tn_err **err);

/* Agent -> host. A reply's result is decoded for the op that `op_of` returns for its
 * id (a negative return: no request with that id is pending, an error). */
typedef int (*agent_op_lookup)(uint32_t id, void *userdata);
int agent_msg_decode(const char *line, size_t len, agent_op_lookup op_of, void *userdata,
                     struct agent_msg *ret, struct tn_err **err);

/* ---- encoding ----
 *
 * Each returns 0 and a malloc'ed frame ending in "\n", or -EINVAL when the message
 * breaks a rule the decoder enforces (so neither end sends what the other refuses),
 * -EMSGSIZE when it exceeds AGENT_FRAME_MAX, -ENOMEM. */
int agent_request_encode(const struct agent_request *req, char **ret, size_t *ret_len);
int agent_reply_encode(const struct agent_reply *reply, char **ret, size_t *ret_len);
int agent_event_encode(const struct agent_event *ev, char **ret, size_t *ret_len);

/* An error reply; the text is cut to AGENT_TEXT_MAX and control characters replaced. */
int agent_error_encode(uint32_t id, const char *text, char **ret, size_t *ret_len);

/* ---- http health checks (the same rules on both ends and in runner_proto.c) ---- */

/* A path an http check may GET: 1..AGENT_HEALTH_PATH_MAX bytes, starting with '/', no
 * space, no control character, no NUL inside len: what the manifest accepts. */
bool agent_http_path_ok(const char *path, size_t len);

/* The status code of an HTTP status line at the start of buf ("HTTP/1.1 200 OK"):
 * "HTTP/" digit "." digit, one space, three digits, then a space, '\r', '\n' or the
 * end of buf; 100..599. -1 for anything else (buf is the service's: untrusted). */
int agent_http_status(const char *buf, size_t len);

/* ---- base64 (RFC 4648, padded, strict) ---- */
size_t agent_base64_encoded_len(size_t n);
void agent_base64_encode(const uint8_t *in, size_t n, char *out); /* out: len + 1 bytes */
/* Refuses whitespace, missing padding and non-zero unused bits. */
int agent_base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len, size_t max_out);
