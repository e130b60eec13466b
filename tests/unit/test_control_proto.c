/* test_control_proto.c — the control protocol codec (proto/control_proto.h): the op
 * table, round trips of every op's request, every refusal with the message tenantd
 * answers, and error replies that stay valid JSON whatever text they carry. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "proto/control_proto.h"
#include "tap.h"

/* Decodes `line`; returns the error message ("" when it decoded). */
static const char *refusal(const char *line)
{
        static char msg[1200];
        struct control_request req;
        struct tn_err *err = NULL;
        if (control_request_decode(line, strlen(line), &req, &err) == 0) {
                control_request_clear(&req);
                return "";
        }
        snprintf(msg, sizeof(msg), "%s", tn_err_msg(err));
        tn_err_free(err);
        return msg;
}

static void rejects(const char *line, const char *want)
{
        is_str(refusal(line), want, "refused: %s", line);
}

static void test_table(void)
{
        for (size_t i = 0; i < CONTROL_OP_COUNT_; i++) {
                const struct control_op_info *o = control_op_lookup(control_ops[i].name);
                ok(o == &control_ops[i] && o->op == (enum control_op)i, "op table: %s at %zu",
                   control_ops[i].name, i);
        }
        ok(!control_op_lookup("nope") && !control_op_lookup(""), "unknown ops are not found");
        ok(control_ops[CONTROL_OP_EXEC].flags & CONTROL_F_NAME &&
               control_ops[CONTROL_OP_EXEC].flags & CONTROL_F_FRAMES,
           "exec names a tenant and continues in frames");
        ok(control_ops[CONTROL_OP_EVENTS].flags == CONTROL_F_STREAM,
           "events is a stream on no tenant");
        ok(!control_ops[CONTROL_OP_LIST].flags, "list needs nothing");
}

/* Encodes req, decodes it back, and returns the copy (to be cleared). */
static struct control_request round_trip(const struct control_request *req, const char *what)
{
        char *line = NULL;
        size_t len = 0;
        struct control_request back;
        control_request_init(&back, CONTROL_OP_VERSION);
        struct tn_err *err = NULL;
        int r = control_request_encode(req, &line, &len);
        ok(r == 0 && len > 0 && line[len - 1] == '\n', "%s: encodes to one line", what);
        if (r == 0) {
                r = control_request_decode(line, len - 1, &back, &err);
                ok(r == 0, "%s: decodes back", what);
                if (r)
                        diag("%s", tn_err_msg(err));
                ok(back.op == req->op, "%s: same op", what);
        }
        tn_err_free(err);
        free(line);
        return back;
}

static void test_round_trips(void)
{
        struct control_request req, back;
        control_request_init(&req, CONTROL_OP_STOP);
        req.name = "web";
        req.timeout_ms = 3000;
        back = round_trip(&req, "stop");
        ok(back.name && strcmp(back.name, "web") == 0 && back.timeout_ms == 3000,
           "stop: name and timeout");
        control_request_clear(&back);

        control_request_init(&req, CONTROL_OP_KILL);
        req.name = "web";
        ok(control_signal_parse("SIGUSR1", &req.signal) == 0 && req.signal == SIGUSR1,
           "SIGUSR1 is a signal");
        back = round_trip(&req, "kill");
        is_int(back.signal, SIGUSR1, "kill: the signal");
        control_request_clear(&back);

        control_request_init(&req, CONTROL_OP_LOGS);
        req.name = "web";
        req.lines = 7;
        req.follow = true;
        back = round_trip(&req, "logs");
        ok(back.lines == 7 && back.follow, "logs: lines and follow");
        control_request_clear(&back);

        static const char *const argv[] = {"/bin/sh", "-c", "echo \"a\nb\"\t\x01", NULL};
        control_request_init(&req, CONTROL_OP_EXEC);
        req.name = "web";
        req.argv = argv;
        req.argc = 3;
        req.tty = true;
        req.rows = 50;
        req.cols = 132;
        back = round_trip(&req, "exec");
        ok(back.argc == 3 && strcmp(back.argv[2], argv[2]) == 0 && !back.argv[3],
           "exec: the arguments, control characters and all, NULL-terminated");
        ok(back.tty && back.rows == 50 && back.cols == 132, "exec: the terminal and its size");
        control_request_clear(&back);

        control_request_init(&req, CONTROL_OP_CONSOLE);
        req.name = "web";
        req.force = true;
        req.rows = 40;
        req.cols = 100;
        back = round_trip(&req, "console");
        ok(back.op == CONTROL_OP_CONSOLE && back.force && back.rows == 40 && back.cols == 100,
           "console: force and the window size");
        control_request_clear(&back);
        ok(control_ops[CONTROL_OP_CONSOLE].flags == (CONTROL_F_NAME | CONTROL_F_FRAMES),
           "console names a tenant and continues in frames");
        rejects("{\"v\":1,\"op\":\"console\",\"name\":\"web\",\"force\":1}",
                "\"force\" must be true or false");

        static const char *const keys[] = {"memory.max", "pids.max"};
        static const char *const values[] = {"256M", "64"};
        control_request_init(&req, CONTROL_OP_SET);
        req.name = "web";
        req.keys = keys;
        req.values = values;
        req.n_values = 2;
        req.save = true;
        back = round_trip(&req, "set");
        ok(back.n_values == 2 && strcmp(back.keys[1], "pids.max") == 0 &&
               strcmp(back.values[0], "256M") == 0 && back.save,
           "set: the pairs, in order, and save");
        control_request_clear(&back);

        control_request_init(&req, CONTROL_OP_BACKUP);
        req.name = "db";
        req.action = CONTROL_BACKUP_RESTORE;
        req.snapshot = "4f2a09c1";
        back = round_trip(&req, "backup");
        ok(back.action == CONTROL_BACKUP_RESTORE && back.snapshot &&
               strcmp(back.snapshot, "4f2a09c1") == 0,
           "backup: the action and the snapshot");
        control_request_clear(&back);
        control_request_init(&req, CONTROL_OP_BACKUP);
        req.name = "db";
        back = round_trip(&req, "backup run");
        ok(back.action == CONTROL_BACKUP_RUN && !back.snapshot, "backup: run by default");
        control_request_clear(&back);

        control_request_init(&req, CONTROL_OP_EVENTS);
        back = round_trip(&req, "events");
        ok(back.lines == 20 && !back.follow && !back.name, "events: the defaults");
        control_request_clear(&back);
}

static void test_decode(void)
{
        struct control_request req;
        const char *line =
            "{\"v\":1,\"op\":\"kill\",\"name\":\"web\",\"signal\":\"HUP\",\"x\":[1]}";
        ok(control_request_decode(line, strlen(line), &req, NULL) == 0 && req.signal == SIGHUP &&
               strcmp(req.name, "web") == 0,
           "a signal by name; an unknown member is ignored");
        control_request_clear(&req);
        line = "{\"v\":1,\"op\":\"start\"}";
        ok(control_request_decode(line, strlen(line), &req, NULL) == 0 && !req.name,
           "a missing name decodes (tenantd answers: no tenant named \"\")");
        control_request_clear(&req);
        line = "{\"v\":1,\"op\":\"list\",\"name\":7}";
        ok(control_request_decode(line, strlen(line), &req, NULL) == 0 && !req.name,
           "an op on no tenant ignores \"name\"");
        control_request_clear(&req);
        line = "{\"v\":1,\"op\":\"exec\",\"name\":\"w\",\"argv\":[\"/bin/true\"]}";
        ok(control_request_decode(line, strlen(line), &req, NULL) == 0 && req.rows == 24 &&
               req.cols == 80 && !req.tty && req.argc == 1,
           "exec: default terminal size");
        control_request_clear(&req);
}

static void test_refusals(void)
{
        rejects("{\"v\":1,\"op\":\"list\"", "bad request at 1:19: unexpected end of input (an "
                                            "object or array is not closed)");
        rejects("{\"op\":\"list\"}", "a request is an object with \"v\" and \"op\"");
        rejects("[1]", "a request is an object with \"v\" and \"op\"");
        rejects("{\"v\":\"1\",\"op\":\"list\"}", "a request is an object with \"v\" and \"op\"");
        rejects("{\"v\":2,\"op\":\"list\"}",
                "protocol version 2 is not supported; this tenantd speaks 1");
        rejects("{\"v\":1}", "\"op\" is missing");
        rejects("{\"v\":1,\"op\":7}", "\"op\" is missing");
        rejects("{\"v\":1,\"op\":\"nope\"}", "unknown op \"nope\"");
        rejects("{\"v\":1,\"op\":\"start\",\"name\":[]}", "\"name\" must be a string");
        rejects("{\"v\":1,\"op\":\"stop\",\"name\":\"w\",\"timeout_ms\":\"5\"}",
                "\"timeout_ms\" must be an integer from 0 to 3600000");
        rejects("{\"v\":1,\"op\":\"restart\",\"name\":\"w\",\"timeout_ms\":3600001}",
                "\"timeout_ms\" must be an integer from 0 to 3600000");
        rejects("{\"v\":1,\"op\":\"kill\",\"name\":\"w\",\"signal\":0}",
                "\"signal\" must be a signal name (TERM, KILL, HUP, INT, QUIT, USR1, USR2, CONT, "
                "WINCH) or number");
        rejects("{\"v\":1,\"op\":\"kill\",\"name\":\"w\",\"signal\":\"15\"}",
                "\"signal\" must be a signal name (TERM, KILL, HUP, INT, QUIT, USR1, USR2, CONT, "
                "WINCH) or number");
        rejects("{\"v\":1,\"op\":\"logs\",\"name\":\"w\",\"lines\":1000001}",
                "\"lines\" must be an integer from 0 to 1000000");
        rejects("{\"v\":1,\"op\":\"events\",\"lines\":100001}",
                "\"lines\" must be an integer from 0 to 100000");
        rejects("{\"v\":1,\"op\":\"events\",\"follow\":1}", "\"follow\" must be true or false");
        rejects("{\"v\":1,\"op\":\"exec\",\"name\":\"w\"}",
                "\"argv\" must be an array of 1 to 256 strings");
        rejects("{\"v\":1,\"op\":\"exec\",\"name\":\"w\",\"argv\":[]}",
                "\"argv\" must be an array of 1 to 256 strings");
        rejects("{\"v\":1,\"op\":\"exec\",\"name\":\"w\",\"argv\":[\"/bin/x\",1]}",
                "\"argv\" must hold strings without NUL");
        rejects("{\"v\":1,\"op\":\"exec\",\"name\":\"w\",\"argv\":[\"/bin/x\\u0000y\"]}",
                "bad request at 1:39: string contains a NUL character (\\u0000)");
        rejects("{\"v\":1,\"op\":\"exec\",\"name\":\"w\",\"argv\":[\"sh\"]}",
                "the command must be an absolute path inside the tenant");
        rejects("{\"v\":1,\"op\":\"exec\",\"name\":\"w\",\"argv\":[\"/x\"],\"rows\":0}",
                "\"rows\" must be an integer from 1 to 65535");
        rejects("{\"v\":1,\"op\":\"exec\",\"name\":\"w\",\"argv\":[\"/x\"],\"tty\":\"yes\"}",
                "\"tty\" must be true or false");
        rejects("{\"v\":1,\"op\":\"set\",\"name\":\"w\",\"values\":{}}",
                "\"values\" must be an object of 1 to 16 KEY: VALUE strings");
        rejects("{\"v\":1,\"op\":\"set\",\"name\":\"w\",\"values\":{\"cpu.max\":1}}",
                "cpu.max: the value must be a string of at most 64 bytes");
        rejects("{\"v\":1,\"op\":\"set\",\"name\":\"w\",\"values\":{\"a\":\"1\"},\"save\":1}",
                "\"save\" must be true or false");
        rejects("{\"v\":1,\"op\":\"backup\",\"name\":\"w\",\"action\":\"prune\"}",
                "\"action\" must be \"run\", \"list\", \"check\" or \"restore\"");
        rejects("{\"v\":1,\"op\":\"backup\",\"name\":\"w\",\"snapshot\":\"../x\"}",
                "\"snapshot\" must be a snapshot id (1 to 64 hex digits) or \"latest\"");
        rejects("{\"v\":1,\"op\":\"backup\",\"name\":\"w\",\"snapshot\":\"--tag\"}",
                "\"snapshot\" must be a snapshot id (1 to 64 hex digits) or \"latest\"");
        ok(*refusal("{\"v\":1,\"op\":\"backup\",\"name\":\"w\",\"action\":\"restore\","
                    "\"snapshot\":\"latest\"}") == '\0',
           "backup restore of the latest snapshot is allowed");
        rejects("{\"v\":1,\"op\":\"version\",\"x\":[[[[[[[[1]]]]]]]]}",
                "bad request at 1:34: nesting deeper than 8 levels");
        ok(*refusal("{\"v\":1,\"op\":\"version\",\"x\":[[[[[[[1]]]]]]]}") == '\0',
           "nesting depth 8 is allowed");

        /* 257 arguments */
        char line[4096] = "{\"v\":1,\"op\":\"exec\",\"name\":\"w\",\"argv\":[\"/x\"";
        for (int i = 1; i < 257; i++)
                strcat(line, ",\"a\"");
        strcat(line, "]}");
        is_str(refusal(line), "\"argv\" must be an array of 1 to 256 strings", "257 arguments");
        line[strlen(line) - 6] = '\0';
        strcat(line, "]}");
        is_str(refusal(line), "", "256 arguments");

        /* An unknown op quoted back is cut at a character boundary, never inside one. */
        char op[400] = "{\"v\":1,\"op\":\"";
        for (int i = 0; i < 60; i++)
                strcat(op, "\xc3\xa9");
        strcat(op, "\"}");
        const char *msg = refusal(op);
        size_t n = strlen(msg);
        ok(n > 2 && (unsigned char)msg[n - 2] == 0xa9 && msg[n - 1] == '"',
           "a long unknown op is cut after a whole character");
}

static void test_client_check(void)
{
        struct control_request req;
        struct tn_err *err = NULL;
        static const char *const rel[] = {"sh", NULL};
        control_request_init(&req, CONTROL_OP_EXEC);
        req.name = "w";
        req.argv = rel;
        req.argc = 1;
        ok(control_request_check(&req, &err) == -EINVAL &&
               strcmp(tn_err_msg(err), "the command must be an absolute path inside the tenant") ==
                   0,
           "a client is told what tenantd would answer");
        tn_err_free(err);
        err = NULL;
        control_request_init(&req, CONTROL_OP_LOGS);
        req.name = "w";
        req.lines = 2000000;
        ok(control_request_check(&req, &err) == -EINVAL &&
               strstr(tn_err_msg(err), "\"lines\" must be"),
           "and of a bound it breaks");
        tn_err_free(err);
        err = NULL;
        static const char *const bad[] = {"/bin/\xff", NULL};
        control_request_init(&req, CONTROL_OP_EXEC);
        req.name = "w";
        req.argv = bad;
        req.argc = 1;
        ok(control_request_check(&req, &err) == -EINVAL && strstr(tn_err_msg(err), "UTF-8"),
           "text that is not UTF-8 cannot be sent, and it says so");
        tn_err_free(err);
        int sig;
        ok(control_signal_parse("9", &sig) == 0 && sig == 9, "signal 9 by number");
        ok(control_signal_parse("TERM", &sig) == 0 && sig == SIGTERM, "TERM by name");
        ok(control_signal_parse("0", &sig) < 0 && control_signal_parse("65", &sig) < 0 &&
               control_signal_parse("SIGFOO", &sig) < 0 && control_signal_parse("", &sig) < 0,
           "0, 65, SIGFOO and nothing are not signals");
}

/* An error reply is valid JSON whatever its text: the group name of a refusal comes
 * from a configuration file, a name quoted back may be cut. */
static void test_error_replies(void)
{
        static const struct {
                const char *msg, *want;
        } cases[] = {
            {"in group q\"u\x01te", "in group q\\\"u\\\\x01te"},
            {"in group not\xffutf8", "in group not\\\\xffutf8"},
            {"cut \xc3", "cut \\\\xc3"},
            {"line\nnext\ttab", "line\\nnext\\ttab"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *line = NULL;
                size_t len = 0;
                int r = control_error_encode(-EACCES, cases[i].msg, &line, &len);
                ok(r == 0 && line[len - 1] == '\n', "error reply %zu encodes", i);
                struct json_value *v = NULL;
                struct json_error je;
                struct json_limits lim = {.max_bytes = 1 << 16, .max_depth = 2};
                ok(r == 0 && json_parse(line, len - 1, &lim, &v, &je) == 0,
                   "error reply %zu is valid JSON", i);
                ok(r == 0 && strstr(line, cases[i].want) && strstr(line, "\"code\":\"denied\""),
                   "error reply %zu shows the text escaped", i);
                if (r == 0 && !strstr(line, cases[i].want))
                        diag("got %.*s", (int)len - 1, line);
                json_free(v);
                free(line);
        }
        is_str(control_error_code(-ESRCH), "not-running", "ESRCH is not-running");
        is_str(control_error_code(-EIO), "failed", "anything else failed");
}

int main(void)
{
        test_table();
        test_round_trips();
        test_decode();
        test_refusals();
        test_client_check();
        test_error_replies();
        return tap_done();
}
