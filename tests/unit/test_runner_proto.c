/* test_runner_proto.c — the VM runner's exec socket codec (proto/runner_proto.h): round
 * trips of an exec and of both health checks, every refusal, the bounds, and the answer
 * to a health check; the console and live limits requests. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/runner_proto.h"
#include "tap.h"

#define ONE_OF "a request holds one of \"argv\", \"health\", \"console\" and \"limits\""

static const char *refusal(const char *line)
{
        static char msg[512];
        struct runner_request req;
        struct tn_err *err = NULL;
        if (runner_request_decode(line, strlen(line), &req, &err) == 0) {
                runner_request_clear(&req);
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

static void test_round_trips(void)
{
        static const char *const argv[] = {"/bin/sh", "-c", "printf 'a\\nb' \"$x\"", NULL};
        struct runner_request req = {.kind = RUNNER_EXEC, .argv = argv, .argc = 3}, back;
        char *line = NULL;
        size_t len;
        ok(runner_request_encode(&req, &line, &len) == 0 && line[len - 1] == '\n' &&
               !memchr(line, '\n', len - 1),
           "exec: one line");
        ok(runner_request_decode(line, len, &back, NULL) == 0 && back.kind == RUNNER_EXEC &&
               back.argc == 3 && strcmp(back.argv[2], argv[2]) == 0 && !back.argv[3],
           "exec: decodes back, newline and all");
        runner_request_clear(&back);
        free(line);

        req = (struct runner_request){.kind = RUNNER_EXEC,
                                      .argv = argv,
                                      .argc = 1,
                                      .stdin_open = true,
                                      .tty = true,
                                      .rows = 40,
                                      .cols = 132};
        ok(runner_request_encode(&req, &line, &len) == 0, "exec with a terminal encodes");
        is_str(line, "{\"argv\":[\"/bin/sh\"],\"stdin\":true,\"tty\":{\"rows\":40,\"cols\":132}}\n",
               "exec with a terminal: stdin and tty");
        ok(runner_request_decode(line, len, &back, NULL) == 0 && back.stdin_open && back.tty &&
               back.rows == 40 && back.cols == 132,
           "exec with a terminal decodes back");
        runner_request_clear(&back);
        free(line);
        req.tty = false;
        ok(runner_request_encode(&req, &line, &len) == 0 &&
               runner_request_decode(line, len, &back, NULL) == 0 && back.stdin_open && !back.tty,
           "exec with stdin, no terminal: round trip");
        runner_request_clear(&back);
        free(line);

        req = (struct runner_request){.kind = RUNNER_HEALTH_TCP, .port = 8080, .timeout_ms = 2000};
        ok(runner_request_encode(&req, &line, &len) == 0, "health tcp encodes");
        is_str(line, "{\"health\":{\"tcp\":8080,\"timeout_ms\":2000}}\n",
               "health tcp: the line the runner has always read");
        ok(runner_request_decode(line, len, &back, NULL) == 0 && back.kind == RUNNER_HEALTH_TCP &&
               back.port == 8080 && back.timeout_ms == 2000,
           "health tcp decodes back");
        runner_request_clear(&back);
        free(line);

        req = (struct runner_request){
            .kind = RUNNER_HEALTH_HTTP, .port = 80, .path = "/healthz?a=b", .timeout_ms = 2000};
        ok(runner_request_encode(&req, &line, &len) == 0, "health http encodes");
        is_str(line, "{\"health\":{\"http\":80,\"path\":\"/healthz?a=b\",\"timeout_ms\":2000}}\n",
               "health http: port and path");
        ok(runner_request_decode(line, len, &back, NULL) == 0 && back.kind == RUNNER_HEALTH_HTTP &&
               back.port == 80 && strcmp(back.path, "/healthz?a=b") == 0 && back.timeout_ms == 2000,
           "health http decodes back");
        runner_request_clear(&back);
        free(line);

        static const char *const check[] = {"/usr/bin/check", "--quick", NULL};
        req = (struct runner_request){
            .kind = RUNNER_HEALTH_EXEC, .argv = check, .argc = 2, .timeout_ms = 600000};
        ok(runner_request_encode(&req, &line, &len) == 0 &&
               runner_request_decode(line, len, &back, NULL) == 0 &&
               back.kind == RUNNER_HEALTH_EXEC && back.argc == 2 &&
               strcmp(back.argv[1], "--quick") == 0 && back.timeout_ms == 600000,
           "health exec round trip");
        runner_request_clear(&back);
        free(line);
}

static void test_encode_refuses(void)
{
        char *line = NULL;
        size_t len;
        static const char *const rel[] = {"sh", NULL};
        struct runner_request req = {.kind = RUNNER_EXEC, .argv = rel, .argc = 1};
        is_int(runner_request_encode(&req, &line, &len), -EINVAL, "a relative command");
        req = (struct runner_request){.kind = RUNNER_EXEC};
        is_int(runner_request_encode(&req, &line, &len), -EINVAL, "no command");
        req = (struct runner_request){.kind = RUNNER_HEALTH_TCP, .port = 0, .timeout_ms = 1000};
        is_int(runner_request_encode(&req, &line, &len), -EINVAL, "port 0");
        req = (struct runner_request){.kind = RUNNER_HEALTH_TCP, .port = 1, .timeout_ms = 99};
        is_int(runner_request_encode(&req, &line, &len), -EINVAL, "a timeout under 100 ms");
        req = (struct runner_request){.kind = RUNNER_HEALTH_HTTP, .port = 80, .timeout_ms = 1000};
        is_int(runner_request_encode(&req, &line, &len), -EINVAL, "http without a path");
        req.path = "healthz";
        is_int(runner_request_encode(&req, &line, &len), -EINVAL, "http with a relative path");
        req.path = "/ HTTP/1.1\r\nX: y";
        is_int(runner_request_encode(&req, &line, &len), -EINVAL, "http with a space and CR LF");
        /* 256 arguments of 100 bytes: over 16 KiB */
        static char arg[101];
        memset(arg, 'a', 100);
        const char *many[257] = {"/bin/echo"};
        for (int i = 1; i < 256; i++)
                many[i] = arg;
        req = (struct runner_request){.kind = RUNNER_EXEC, .argv = many, .argc = 256};
        is_int(runner_request_encode(&req, &line, &len), -EMSGSIZE, "a command over 16 KiB");
        req.argc = 257;
        is_int(runner_request_encode(&req, &line, &len), -EINVAL, "257 arguments");
        static const char *const bad[] = {"/bin/\xff", NULL};
        req = (struct runner_request){.kind = RUNNER_EXEC, .argv = bad, .argc = 1};
        is_int(runner_request_encode(&req, &line, &len), -EINVAL, "text that is not UTF-8");
}

#define BAD_PATH                                                                                   \
        "\"health.path\" must be a path of at most 1024 bytes that starts with '/' and holds "     \
        "no space or control character"

static void test_refusals(void)
{
        rejects("", "bad request at 0:0: empty input (no JSON value)");
        rejects("[]", "a request is an object");
        rejects("{}", ONE_OF);
        rejects("{\"argv\":[\"/x\"],\"health\":{}}", ONE_OF);
        rejects("{\"argv\":[]}", "\"argv\" must be an array of 1 to 256 strings");
        rejects("{\"argv\":\"/bin/sh\"}", "\"argv\" must be an array of 1 to 256 strings");
        rejects("{\"argv\":[\"/x\",2]}", "\"argv\" must hold strings without NUL");
        rejects("{\"argv\":[\"x\"]}", "\"argv\": the command must be an absolute path");
        rejects("{\"health\":1}", "\"health\" must be an object");
        rejects("{\"health\":{\"tcp\":80}}",
                "\"health.timeout_ms\" must be an integer from 100 to 600000");
        rejects("{\"health\":{\"tcp\":80,\"timeout_ms\":600001}}",
                "\"health.timeout_ms\" must be an integer from 100 to 600000");
        rejects("{\"health\":{\"timeout_ms\":1000}}",
                "\"health\" holds one of \"tcp\", \"http\" and \"exec\"");
        rejects("{\"health\":{\"tcp\":80,\"http\":80,\"path\":\"/\",\"timeout_ms\":1000}}",
                "\"health\" holds one of \"tcp\", \"http\" and \"exec\"");
        rejects("{\"health\":{\"http\":80,\"timeout_ms\":1000}}",
                "\"health.path\" goes with \"health.http\"");
        rejects("{\"health\":{\"tcp\":80,\"path\":\"/\",\"timeout_ms\":1000}}",
                "\"health.path\" goes with \"health.http\"");
        rejects("{\"health\":{\"http\":0,\"path\":\"/\",\"timeout_ms\":1000}}",
                "\"health.http\" must be a port from 1 to 65535");
        rejects("{\"health\":{\"http\":80,\"path\":\"x\",\"timeout_ms\":1000}}", BAD_PATH);
        rejects("{\"health\":{\"http\":80,\"path\":\"/a b\",\"timeout_ms\":1000}}", BAD_PATH);
        rejects("{\"health\":{\"http\":80,\"path\":\"/\\u0000\",\"timeout_ms\":1000}}",
                "bad request at 1:29: string contains a NUL character (\\u0000)");
        rejects("{\"health\":{\"http\":80,\"path\":\"/\\n\",\"timeout_ms\":1000}}", BAD_PATH);
        rejects("{\"health\":{\"http\":80,\"path\":7,\"timeout_ms\":1000}}", BAD_PATH);
        rejects("{\"health\":{\"tcp\":0,\"timeout_ms\":1000}}",
                "\"health.tcp\" must be a port from 1 to 65535");
        rejects("{\"health\":{\"tcp\":65536,\"timeout_ms\":1000}}",
                "\"health.tcp\" must be a port from 1 to 65535");
        rejects("{\"health\":{\"exec\":[],\"timeout_ms\":1000}}",
                "\"health.exec\" must be an array of 1 to 256 strings");
        rejects("{\"argv\":[\"/x\"]} {}", "bad request at 1:17: invalid JSON: trailing garbage");
        rejects("{\"argv\":[\"/x\"],\"stdin\":1}", "\"stdin\" must be true or false");
        rejects("{\"argv\":[\"/x\"],\"tty\":{\"rows\":1,\"cols\":1}}",
                "\"tty\" goes with \"stdin\":true");
        rejects("{\"argv\":[\"/x\"],\"stdin\":true,\"tty\":{\"rows\":0,\"cols\":1}}",
                "\"tty\" must be {\"rows\":N,\"cols\":N} of 1 to 65535 each");
        rejects("{\"argv\":[\"/x\"],\"stdin\":true,\"tty\":{\"rows\":1,\"cols\":1,\"x\":1}}",
                "\"tty\" must be {\"rows\":N,\"cols\":N} of 1 to 65535 each");
        rejects("{\"argv\":[\"/x\"],\"env\":{}}",
                "an exec request holds \"argv\", \"stdin\" and \"tty\" only");
        is_str(refusal("{\"argv\":[\"/x\"]}\n"), "", "a trailing newline is the line's end");
}

static void test_console(void)
{
        struct runner_request req = {.kind = RUNNER_CONSOLE,
                                     .rows = 50,
                                     .cols = 160,
                                     .force = true},
                              back;
        char *line = NULL;
        size_t len;
        ok(runner_request_encode(&req, &line, &len) == 0, "console: encodes");
        is_str(line, "{\"console\":{\"rows\":50,\"cols\":160,\"force\":true}}\n",
               "console: rows, cols and force");
        ok(runner_request_decode(line, len, &back, NULL) == 0 && back.kind == RUNNER_CONSOLE &&
               back.rows == 50 && back.cols == 160 && back.force,
           "console: decodes back");
        runner_request_clear(&back);
        free(line);
        ok(runner_request_decode("{\"console\":{\"rows\":1,\"cols\":2}}", 31, &back, NULL) == 0 &&
               !back.force,
           "console: force is optional");
        runner_request_clear(&back);
        req.rows = 0;
        is_int(runner_request_encode(&req, &line, &len), -EINVAL, "console: 0 rows");
#define BAD_CONSOLE                                                                                \
        "\"console\" must be {\"rows\":N,\"cols\":N,\"force\":BOOL} with 1 to 65535 rows and "     \
        "columns"
        rejects("{\"console\":1}", BAD_CONSOLE);
        rejects("{\"console\":{\"rows\":1}}", BAD_CONSOLE);
        rejects("{\"console\":{\"rows\":1,\"cols\":65536}}", BAD_CONSOLE);
        rejects("{\"console\":{\"rows\":1,\"cols\":1,\"force\":1}}", BAD_CONSOLE);
        rejects("{\"console\":{\"rows\":1,\"cols\":1,\"x\":true}}", BAD_CONSOLE);
        rejects("{\"console\":{\"rows\":1,\"cols\":1},\"stdin\":true}", ONE_OF);
        rejects("{\"console\":{\"rows\":1,\"cols\":1},\"argv\":[\"/x\"]}", ONE_OF);
}

static void test_limits(void)
{
        struct runner_request req = {.kind = RUNNER_LIMITS, .pids_max = 30}, back;
        char *line = NULL;
        size_t len;
        ok(runner_request_encode(&req, &line, &len) == 0, "limits: encodes");
        is_str(line, "{\"limits\":{\"pids_max\":30}}\n", "limits: pids_max");
        ok(runner_request_decode(line, len, &back, NULL) == 0 && back.kind == RUNNER_LIMITS &&
               back.pids_max == 30,
           "limits: decodes back");
        runner_request_clear(&back);
        free(line);
        ok(runner_request_decode("{\"limits\":{\"pids_max\":0}}", 25, &back, NULL) == 0 &&
               back.kind == RUNNER_LIMITS && back.pids_max == 0,
           "limits: pids_max 0 is no limit");
        runner_request_clear(&back);
        req.pids_max = 4194305;
        line = NULL;
        is_int(runner_request_encode(&req, &line, &len), -EINVAL,
               "limits: over the kernel's pids.max is not sent");
        ok(!line, "limits: nothing encoded");
#define BAD_LIMITS "\"limits\" must be {\"pids_max\":N} with N from 0 (no limit) to 4194304"
        rejects("{\"limits\":30}", BAD_LIMITS);
        rejects("{\"limits\":{}}", BAD_LIMITS);
        rejects("{\"limits\":{\"pids_max\":4194305}}", BAD_LIMITS);
        rejects("{\"limits\":{\"pids_max\":-1}}", BAD_LIMITS);
        rejects("{\"limits\":{\"pids_max\":\"30\"}}", BAD_LIMITS);
        rejects("{\"limits\":{\"pids_max\":1.5}}", BAD_LIMITS);
        rejects("{\"limits\":{\"pids_max\":1,\"memory_max\":1}}", BAD_LIMITS);
        rejects("{\"limits\":{\"pids_max\":1},\"stdin\":true}", ONE_OF);
        rejects("{\"limits\":{\"pids_max\":1},\"console\":{\"rows\":1,\"cols\":1}}", ONE_OF);
}

static void test_health_answer(void)
{
        char *line = NULL, *detail = NULL;
        size_t len;
        bool healthy = true;
        ok(runner_health_encode(false, "port 80 refused\n\"x\"", &line, &len) == 0 &&
               runner_health_decode(line, len, &healthy, &detail, NULL) == 0 && !healthy &&
               strcmp(detail, "port 80 refused\n\"x\"") == 0,
           "an unhealthy answer and its detail round trip");
        free(line);
        free(detail);
        ok(runner_health_encode(true, NULL, &line, &len) == 0 &&
               runner_health_decode(line, len, &healthy, &detail, NULL) == 0 && healthy &&
               strcmp(detail, "") == 0,
           "a healthy answer without detail");
        free(line);
        free(detail);
        /* A detail over the bound is cut at a character boundary. */
        char big[2100] = "";
        for (int i = 0; i < 1000; i++)
                strcat(big, "\xc3\xa9");
        ok(runner_health_encode(false, big, &line, &len) == 0 &&
               runner_health_decode(line, len, &healthy, &detail, NULL) == 0 &&
               strlen(detail) == RUNNER_DETAIL_MAX,
           "a long detail is cut to %d bytes, whole characters", RUNNER_DETAIL_MAX);
        ok(len <= RUNNER_ANSWER_MAX, "the answer fits the reader's buffer");
        free(line);
        free(detail);
        struct tn_err *err = NULL;
        ok(runner_health_decode("{\"status\":2}", 12, &healthy, &detail, &err) == -EINVAL &&
               strcmp(tn_err_msg(err), "\"status\" must be 0 or 1") == 0,
           "status 2 is refused");
        tn_err_free(err);
        err = NULL;
        ok(runner_health_decode("{\"status\":0,\"detail\":5}", 23, &healthy, &detail, &err) ==
               -EINVAL,
           "a detail that is not a string is refused");
        tn_err_free(err);
        err = NULL;
        ok(runner_health_decode("\x05\x00", 2, &healthy, &detail, &err) == -EINVAL &&
               strstr(tn_err_msg(err), "bad answer"),
           "frames where an answer was due are refused");
        tn_err_free(err);
}

int main(void)
{
        test_round_trips();
        test_encode_refuses();
        test_refusals();
        test_console();
        test_limits();
        test_health_answer();
        return tap_done();
}
