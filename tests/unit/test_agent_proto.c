/* test_agent_proto.c — the agent protocol codec: the frame reader's bounds, round trips
 * of every request, reply and event, and every kind of rejection. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/agent_proto.h"
#include "tap.h"

/* ---- frame reader ---- */

static void test_reader(void)
{
        struct agent_reader r;
        agent_reader_init(&r);
        const char *line;
        size_t len;
        const char *in = "{\"a\":1}\n{\"b\"";
        is_int(agent_reader_feed(&r, in, strlen(in)), strlen(in),
               "reader takes a frame and a half");
        ok(agent_reader_next(&r, &line, &len) == AGENT_READ_FRAME && len == 7 &&
               memcmp(line, "{\"a\":1}", 7) == 0,
           "first frame, without its newline");
        is_int(agent_reader_next(&r, &line, &len), AGENT_READ_NONE, "half a frame waits");
        agent_reader_feed(&r, ":2}\n\n", 5);
        ok(agent_reader_next(&r, &line, &len) == AGENT_READ_FRAME && len == 7 &&
               memcmp(line, "{\"b\":2}", 7) == 0,
           "second frame assembled from two feeds");
        ok(agent_reader_next(&r, &line, &len) == AGENT_READ_FRAME && len == 0,
           "an empty line is an (empty) frame");
        is_int(agent_reader_next(&r, &line, &len), AGENT_READ_NONE, "nothing left");

        /* A 10 MiB line: reported once, discarded to its newline, then all is well. */
        size_t chunk = 256 * 1024;
        char *junk = malloc(chunk);
        memset(junk, 'x', chunk);
        int oversized = 0, frames = 0;
        size_t peak = 0;
        for (size_t fed = 0; fed < 10 * 1024 * 1024; fed += chunk) {
                size_t off = 0;
                while (off < chunk) {
                        off += agent_reader_feed(&r, junk + off, chunk - off);
                        enum agent_read k;
                        while ((k = agent_reader_next(&r, &line, &len)) != AGENT_READ_NONE)
                                k == AGENT_READ_OVERSIZED ? oversized++ : frames++;
                        if (r.cap > peak)
                                peak = r.cap;
                }
        }
        agent_reader_feed(&r, "xx\n{}\n", 6);
        enum agent_read k = agent_reader_next(&r, &line, &len);
        is_int(oversized, 1, "a 10 MiB line is reported once");
        is_int(frames, 0, "no frame comes out of it");
        ok(k == AGENT_READ_FRAME && len == 2 && memcmp(line, "{}", 2) == 0,
           "the frame after the oversized line is intact");
        ok(peak <= AGENT_FRAME_MAX, "buffer never exceeded 1 MiB (peak %zu)", peak);

        /* Exactly at the cap: 1 MiB with the newline passes, one byte more does not. */
        char *big = malloc(AGENT_FRAME_MAX + 2);
        memset(big, ' ', AGENT_FRAME_MAX + 1);
        big[AGENT_FRAME_MAX - 1] = '\n';
        size_t off = 0;
        while (off < AGENT_FRAME_MAX)
                off += agent_reader_feed(&r, big + off, AGENT_FRAME_MAX - off);
        k = agent_reader_next(&r, &line, &len);
        ok(k == AGENT_READ_FRAME && len == AGENT_FRAME_MAX - 1, "a frame of exactly 1 MiB passes");
        big[AGENT_FRAME_MAX - 1] = ' ';
        big[AGENT_FRAME_MAX] = '\n';
        off = 0;
        int over = 0, fr = 0;
        while (off < AGENT_FRAME_MAX + 1) {
                off += agent_reader_feed(&r, big + off, AGENT_FRAME_MAX + 1 - off);
                while ((k = agent_reader_next(&r, &line, &len)) != AGENT_READ_NONE)
                        k == AGENT_READ_OVERSIZED ? over++ : fr++;
        }
        ok(over == 1 && fr == 0, "1 MiB + 1 byte is oversized");
        free(big);
        free(junk);
        agent_reader_free(&r);
}

/* ---- requests ---- */

static struct agent_request *decode_req(const char *text, struct tn_err **err, uint32_t *id)
{
        static struct agent_request req;
        agent_request_clear(&req);
        if (agent_request_decode(text, strlen(text), &req, id, err) < 0)
                return NULL;
        return &req;
}

/* Decodes, re-encodes and decodes again; the two encodings must be identical. */
static void round_trip_request(const char *name, const char *text)
{
        struct agent_request a, b;
        _cleanup_err_ struct tn_err *err = NULL;
        uint32_t id;
        int r = agent_request_decode(text, strlen(text), &a, &id, &err);
        if (!ok(r == 0, "%s: decodes", name)) {
                diag("%s", tn_err_msg(err));
                return;
        }
        char *e1 = NULL, *e2 = NULL;
        size_t l1 = 0, l2 = 0;
        ok(agent_request_encode(&a, &e1, &l1) == 0 && e1[l1 - 1] == '\n', "%s: encodes", name);
        ok(e1 && agent_request_decode(e1, l1 - 1, &b, NULL, NULL) == 0, "%s: re-decodes", name);
        ok(e1 && agent_request_encode(&b, &e2, &l2) == 0 && l1 == l2 && memcmp(e1, e2, l1) == 0,
           "%s: encoding is a fixed point", name);
        agent_request_clear(&a);
        agent_request_clear(&b);
        free(e1);
        free(e2);
}

static void test_requests(void)
{
        round_trip_request("hello", "{\"v\":1,\"id\":1,\"op\":\"hello\"}");
        round_trip_request("stats", "{\"v\":1,\"id\":4294967295,\"op\":\"stats\"}");
        round_trip_request(
            "setup",
            "{\"v\":1,\"id\":2,\"op\":\"setup\",\"hostname\":\"web-1.example\",\"mounts\":["
            "{\"tag\":\"root\",\"target\":\"/\",\"fstype\":\"virtiofs\",\"readonly\":true},"
            "{\"tag\":\"t0\",\"target\":\"/data\",\"fstype\":\"9p\"}],\"net\":{\"address\":"
            "\"10.88.0.5/16\",\"gateway\":\"10.88.0.1\",\"dns\":[\"10.88.0.1\",\"fd00::1\"]}}");
        round_trip_request(
            "setup with IPv6",
            "{\"v\":1,\"id\":2,\"op\":\"setup\",\"mounts\":[],\"net\":{\"address\":"
            "\"10.88.0.5/16\",\"gateway\":\"10.88.0.1\",\"address6\":"
            "\"fd12:3456:789a::5/64\",\"gateway6\":\"fd12:3456:789a::1\",\"dns\":[]}}");
        round_trip_request("setup, nothing", "{\"v\":1,\"id\":2,\"op\":\"setup\"}");
        round_trip_request(
            "setup with pids_max",
            "{\"v\":1,\"id\":2,\"op\":\"setup\",\"mounts\":[],\"pids_max\":4194304}");
        round_trip_request(
            "setup with tmpfs mounts",
            "{\"v\":1,\"id\":2,\"op\":\"setup\",\"mounts\":["
            "{\"tag\":\"root\",\"target\":\"/\",\"fstype\":\"9p\",\"readonly\":true},"
            "{\"target\":\"/var/cache/app\",\"fstype\":\"tmpfs\",\"size\":4194304,"
            "\"noexec\":true},"
            "{\"target\":\"/ro\",\"fstype\":\"tmpfs\",\"readonly\":true,\"size\":1048576},"
            "{\"tag\":\"m0\",\"target\":\"/var/cache/app/share\",\"fstype\":\"9p\"},"
            "{\"tag\":\"v0\",\"target\":\"/data\",\"fstype\":\"virtiofs\",\"noexec\":true}]}");
        round_trip_request("start",
                           "{\"v\":1,\"id\":3,\"op\":\"start\",\"argv\":[\"/bin/sh\",\"-c\",\"\"],"
                           "\"env\":{\"PATH\":\"/bin\",\"A_1\":\"x=y\"},\"uid\":1000,\"gid\":100,"
                           "\"groups\":[4,27],\"workdir\":\"/srv\"}");
        round_trip_request("signal", "{\"v\":1,\"id\":5,\"op\":\"signal\",\"session\":0,"
                                     "\"signal\":15}");
        round_trip_request("exec", "{\"v\":1,\"id\":6,\"op\":\"exec\",\"session\":7,\"argv\":["
                                   "\"cat\"],\"env\":{},\"uid\":0,\"gid\":0,\"workdir\":\"/\","
                                   "\"stdin\":\"aGVsbG8K\"}");
        round_trip_request("exec tty", "{\"v\":1,\"id\":6,\"op\":\"exec\",\"session\":7,\"argv\":["
                                       "\"sh\"],\"env\":{},\"uid\":0,\"gid\":0,\"workdir\":\"/\","
                                       "\"tty\":true,\"rows\":40,\"cols\":132}");
        round_trip_request("exec stdin_open",
                           "{\"v\":1,\"id\":6,\"op\":\"exec\",\"session\":7,\"argv\":[\"cat\"],"
                           "\"env\":{},\"uid\":0,\"gid\":0,\"workdir\":\"/\",\"stdin_open\":true}");
        round_trip_request("stdin", "{\"v\":1,\"id\":11,\"op\":\"stdin\",\"session\":7,"
                                    "\"data\":\"aGVsbG8K\"}");
        round_trip_request("stdin eof", "{\"v\":1,\"id\":12,\"op\":\"stdin\",\"session\":7,"
                                        "\"eof\":true,\"data\":\"aGk=\"}");
        round_trip_request("resize", "{\"v\":1,\"id\":13,\"op\":\"resize\",\"session\":7,"
                                     "\"rows\":50,\"cols\":200}");
        round_trip_request("console", "{\"v\":1,\"id\":14,\"op\":\"console\",\"argv\":["
                                      "\"/bin/sh\",\"-l\"],\"env\":{\"A\":\"b\"},\"uid\":1000,"
                                      "\"gid\":1000,\"workdir\":\"/\",\"rows\":40,\"cols\":132}");
        round_trip_request("health tcp", "{\"v\":1,\"id\":8,\"op\":\"health\",\"tcp\":80}");
        round_trip_request("health http", "{\"v\":1,\"id\":8,\"op\":\"health\",\"http\":8080,"
                                          "\"path\":\"/healthz?x=1\",\"timeout_ms\":2000}");
        round_trip_request("health exec", "{\"v\":1,\"id\":9,\"op\":\"health\",\"exec\":["
                                          "\"/bin/true\"],\"timeout_ms\":2000}");
        round_trip_request("shutdown", "{\"v\":1,\"id\":10,\"op\":\"shutdown\",\"timeout_ms\":0}");
        round_trip_request("limits", "{\"v\":1,\"id\":15,\"op\":\"limits\",\"pids_max\":30}");
        round_trip_request("limits, no limit",
                           "{\"v\":1,\"id\":15,\"op\":\"limits\",\"pids_max\":0}");
        round_trip_request("limits, the kernel's largest",
                           "{\"v\":1,\"id\":15,\"op\":\"limits\",\"pids_max\":4194304}");

        _cleanup_err_ struct tn_err *err = NULL;
        uint32_t id;
        struct agent_request *req = decode_req(
            "{\"v\":1,\"id\":3,\"op\":\"start\",\"argv\":[\"/x\"],\"uid\":1,\"gid\":2}", &err, &id);
        ok(req && req->op == AGENT_OP_START && req->u.start.argc == 1 &&
               strcmp(req->u.start.workdir, "/") == 0 && req->u.start.n_groups == 0 &&
               req->u.start.env && !req->u.start.env[0],
           "start defaults: workdir /, no groups, empty env");
        req = decode_req("{\"v\":1,\"id\":6,\"op\":\"exec\",\"session\":7,\"argv\":[\"cat\"],"
                         "\"uid\":0,\"gid\":0,\"stdin\":\"aGk=\"}",
                         &err, &id);
        ok(req && req->u.exec.has_stdin && req->u.exec.stdin_len == 2 &&
               memcmp(req->u.exec.stdin_data, "hi", 2) == 0,
           "exec stdin decoded");
        req = decode_req("{\"v\":1,\"id\":15,\"op\":\"limits\",\"pids_max\":30}", &err, &id);
        ok(req && req->op == AGENT_OP_LIMITS && req->u.limits.pids_max == 30 && id == 15,
           "limits decoded: pids_max 30");
        req = decode_req("{\"v\":1,\"id\":8,\"op\":\"health\",\"tcp\":80}", &err, &id);
        ok(req && req->u.health.kind == AGENT_HEALTH_TCP && req->u.health.port == 80 &&
               req->u.health.timeout_ms == AGENT_HEALTH_TIMEOUT_DEFAULT_MS,
           "health tcp with the default timeout");
        req = decode_req("{\"v\":1,\"id\":2,\"op\":\"setup\",\"net\":{\"address\":\"10.0.0.2/8\"}}",
                         &err, &id);
        ok(req && req->u.setup.has_net && req->u.setup.net.prefix == 8 &&
               !req->u.setup.net.has_gateway && req->u.setup.net.n_dns == 0,
           "setup net without gateway or dns");
        req = decode_req("{\"v\":1,\"id\":2,\"op\":\"setup\",\"net\":{\"address\":\"10.0.0.2/8\","
                         "\"address6\":\"fd00:1::5/64\",\"gateway6\":\"fd00:1::1\"}}",
                         &err, &id);
        struct in6_addr a6, g6;
        inet_pton(AF_INET6, "fd00:1::5", &a6);
        inet_pton(AF_INET6, "fd00:1::1", &g6);
        ok(req && req->u.setup.net.has_address6 && req->u.setup.net.prefix6 == 64 &&
               memcmp(&req->u.setup.net.address6, &a6, 16) == 0 && req->u.setup.net.has_gateway6 &&
               memcmp(&req->u.setup.net.gateway6, &g6, 16) == 0,
           "setup net with an IPv6 address and gateway");
        req = decode_req("{\"v\":1,\"id\":2,\"op\":\"setup\",\"mounts\":[{\"target\":"
                         "\"/cache\",\"fstype\":\"tmpfs\",\"size\":68719476736,\"noexec\":"
                         "true},{\"target\":\"/t\",\"fstype\":\"tmpfs\",\"size\":1048576}]}",
                         &err, &id);
        const struct agent_mount *tm = req ? req->u.setup.mounts : NULL;
        ok(req && req->u.setup.n_mounts == 2 && tm[0].fstype == AGENT_FS_TMPFS && !tm[0].tag &&
               strcmp(tm[0].target, "/cache") == 0 && tm[0].size == AGENT_TMPFS_SIZE_MAX &&
               tm[0].noexec && !tm[0].readonly,
           "setup tmpfs: no tag, the largest size, noexec");
        ok(req && tm[1].size == AGENT_TMPFS_SIZE_MIN && !tm[1].noexec && !tm[1].readonly,
           "setup tmpfs: the smallest size, noexec and readonly default to false");
        req =
            decode_req("{\"v\":1,\"id\":2,\"op\":\"setup\",\"mounts\":[{\"tag\":\"v0\","
                       "\"target\":\"/data\",\"fstype\":\"virtiofs\",\"noexec\":true},"
                       "{\"tag\":\"m0\",\"target\":\"/ro\",\"fstype\":\"9p\",\"readonly\":true}]}",
                       &err, &id);
        tm = req ? req->u.setup.mounts : NULL;
        ok(req && req->u.setup.n_mounts == 2 && tm[0].noexec && !tm[0].readonly && tm[1].readonly &&
               !tm[1].noexec,
           "setup shares: noexec as sent, false by default");
        decode_req("{\"v\":1,\"id\":1,\"op\":\"hello\"}", &err, &id); /* frees the last */
}

static void rejects(const char *name, const char *text, uint32_t want_id, const char *want_msg)
{
        _cleanup_err_ struct tn_err *err = NULL;
        uint32_t id = 12345;
        struct agent_request req;
        int r = agent_request_decode(text, strlen(text), &req, &id, &err);
        ok(r == -EINVAL && id == want_id && strstr(tn_err_msg(err), want_msg),
           "%s: refused (id %u, \"%s\")", name, id, tn_err_msg(err));
        if (r == 0)
                agent_request_clear(&req);
}

static void test_request_rejects(void)
{
        rejects("address6 without a prefix",
                "{\"v\":1,\"id\":3,\"op\":\"setup\",\"net\":{\"address\":\"10.0.0.2/8\","
                "\"address6\":\"fd00::5\"}}",
                3, "\"address6\" must be an IPv6 ADDR/N");
        rejects("address6 with an IPv4 address",
                "{\"v\":1,\"id\":3,\"op\":\"setup\",\"net\":{\"address\":\"10.0.0.2/8\","
                "\"address6\":\"10.0.0.2/64\"}}",
                3, "\"address6\" must be an IPv6 ADDR/N");
        rejects("gateway6 without address6",
                "{\"v\":1,\"id\":3,\"op\":\"setup\",\"net\":{\"address\":\"10.0.0.2/8\","
                "\"gateway6\":\"fd00::1\"}}",
                3, "\"gateway6\" needs \"address6\"");
        rejects("not JSON", "hello", 0, "bad frame");
        rejects("binary noise", "\x01\x02\xff\xfe", 0, "invalid UTF-8");
        rejects("array frame", "[1]", 0, "must be a JSON object");
        rejects("trailing bytes", "{\"v\":1,\"id\":1,\"op\":\"hello\"} x", 0, "bad frame");
        rejects("two objects", "{\"v\":1,\"id\":1,\"op\":\"hello\"}{}", 0, "bad frame");
        rejects("comment", "{\"v\":1,\"id\":1,\"op\":\"hello\"}//", 0, "bad frame");
        rejects("NUL in string", "{\"v\":1,\"id\":1,\"op\":\"h\\u0000\"}", 0, "NUL");
        rejects("duplicate key", "{\"v\":1,\"id\":1,\"id\":2,\"op\":\"hello\"}", 0, "duplicate");
        rejects("too deep", "{\"v\":1,\"id\":1,\"op\":\"setup\",\"x\":[[[[[[[[1]]]]]]]]}", 0,
                "nesting deeper than 8");
        rejects("id 0", "{\"v\":1,\"id\":0,\"op\":\"hello\"}", 0, "\"id\" must be an integer");
        rejects("id too big", "{\"v\":1,\"id\":4294967296,\"op\":\"hello\"}", 0, "\"id\"");
        rejects("id string", "{\"v\":1,\"id\":\"1\",\"op\":\"hello\"}", 0,
                "\"id\" must be a number, not a string");
        rejects("id float", "{\"v\":1,\"id\":1.5,\"op\":\"hello\"}", 0, "\"id\"");
        rejects("missing id", "{\"v\":1,\"op\":\"hello\"}", 0, "missing key \"id\"");
        rejects("missing v", "{\"id\":7,\"op\":\"hello\"}", 7, "missing key \"v\"");
        rejects("v 2", "{\"v\":2,\"id\":7,\"op\":\"hello\"}", 7, "unsupported protocol version 2");
        rejects("unknown op", "{\"v\":1,\"id\":7,\"op\":\"reboot\"}", 7, "unknown op");
        rejects("op not a string", "{\"v\":1,\"id\":7,\"op\":1}", 7, "\"op\" must be a string");
        rejects("unknown key", "{\"v\":1,\"id\":7,\"op\":\"hello\",\"x\":1}", 7,
                "unknown key \"x\"");
        rejects("unknown key, control chars quoted",
                "{\"v\":1,\"id\":7,\"op\":\"hello\",\"a\\u001b[2J\":1}", 7,
                "unknown key \"a?[2J\"");
        rejects("unknown mount key",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"tag\":\"a\",\"target\":\"/a\","
                "\"fstype\":\"9p\",\"source\":\"/etc\"}]}",
                7, "unknown key \"source\"");
        rejects("mount target with ..",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"tag\":\"a\",\"target\":"
                "\"/a/../etc\",\"fstype\":\"9p\"}]}",
                7, "absolute path");
        rejects("relative mount target",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"tag\":\"a\",\"target\":"
                "\"a\",\"fstype\":\"9p\"}]}",
                7, "absolute path");
        rejects("mount at / not root",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"tag\":\"a\",\"target\":"
                "\"/\",\"fstype\":\"9p\"}]}",
                7, "only the share tagged \"root\"");
        rejects("root share second",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"tag\":\"a\",\"target\":"
                "\"/a\",\"fstype\":\"9p\"},{\"tag\":\"root\",\"target\":\"/\",\"fstype\":\"9p\"}]}",
                7, "must be the first");
        rejects("duplicate target",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"tag\":\"a\",\"target\":"
                "\"/a\",\"fstype\":\"9p\"},{\"tag\":\"b\",\"target\":\"/a\",\"fstype\":\"9p\"}]}",
                7, "repeats");
        rejects("bad fstype",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"tag\":\"a\",\"target\":"
                "\"/a\",\"fstype\":\"ext4\"}]}",
                7, "\"fstype\" must be");
        rejects("an unknown key in a mount with a tag and no target",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"tag\":\"a\",\"targstype\":"
                "\"9p\"}]}",
                7, "unknown key \"targstype\"");
        rejects("a share without a target",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"tag\":\"root\","
                "\"fstype\":\"9p\"}]}",
                7, "missing key \"target\"");
        rejects("tmpfs with a tag",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"tag\":\"a\",\"target\":"
                "\"/a\",\"fstype\":\"tmpfs\",\"size\":1048576}]}",
                7, "mounts[0]: a tmpfs mount has no \"tag\"");
        rejects("tmpfs without a size",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"target\":\"/a\","
                "\"fstype\":\"tmpfs\"}]}",
                7, "missing key \"size\"");
        rejects("tmpfs smaller than 1 MiB",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"target\":\"/a\","
                "\"fstype\":\"tmpfs\",\"size\":1048575}]}",
                7, "\"size\" must be an integer from 1048576 to 68719476736");
        rejects("tmpfs larger than 64 GiB",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"target\":\"/a\","
                "\"fstype\":\"tmpfs\",\"size\":68719476737}]}",
                7, "\"size\" must be an integer from 1048576");
        rejects("tmpfs size negative",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"target\":\"/a\","
                "\"fstype\":\"tmpfs\",\"size\":-1}]}",
                7, "\"size\" must be an integer");
        rejects("tmpfs size a string",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"target\":\"/a\","
                "\"fstype\":\"tmpfs\",\"size\":\"64M\"}]}",
                7, "\"size\" must be a number");
        rejects("tmpfs size a fraction",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"target\":\"/a\","
                "\"fstype\":\"tmpfs\",\"size\":1048576.5}]}",
                7, "\"size\" must be an integer");
        rejects("tmpfs noexec not a boolean",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"target\":\"/a\","
                "\"fstype\":\"tmpfs\",\"size\":1048576,\"noexec\":1}]}",
                7, "\"noexec\" must be");
        rejects("tmpfs at /",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"target\":\"/\","
                "\"fstype\":\"tmpfs\",\"size\":1048576}]}",
                7, "only the share tagged \"root\"");
        rejects("tmpfs target with ..",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"target\":\"/a/../etc\","
                "\"fstype\":\"tmpfs\",\"size\":1048576}]}",
                7, "absolute path");
        rejects("tmpfs relative target",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"target\":\"tmp\","
                "\"fstype\":\"tmpfs\",\"size\":1048576}]}",
                7, "absolute path");
        rejects("tmpfs without a target",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"fstype\":\"tmpfs\","
                "\"size\":1048576}]}",
                7, "missing key \"target\"");
        rejects("tmpfs at a share's target",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"tag\":\"a\",\"target\":"
                "\"/a\",\"fstype\":\"9p\"},{\"target\":\"/a\",\"fstype\":\"tmpfs\",\"size\":"
                "1048576}]}",
                7, "mounts[1]: tag or target repeats mounts[0]");
        rejects("pids_max 0", "{\"v\":1,\"id\":7,\"op\":\"setup\",\"pids_max\":0}", 7,
                "\"pids_max\" must be an integer from 1 to 4194304");
        rejects("pids_max past the kernel's limit",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"pids_max\":4194305}", 7,
                "\"pids_max\" must be");
        rejects("share with a size",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"tag\":\"a\",\"target\":"
                "\"/a\",\"fstype\":\"virtiofs\",\"size\":1048576}]}",
                7, "a share mount has no \"size\"");
        rejects("share with a noexec that is not a boolean",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"tag\":\"a\",\"target\":"
                "\"/a\",\"fstype\":\"9p\",\"noexec\":\"yes\"}]}",
                7, "\"noexec\" must be");
        rejects("share without a tag",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"target\":\"/a\","
                "\"fstype\":\"9p\"}]}",
                7, "missing key \"tag\"");
        rejects("bad tag",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"mounts\":[{\"tag\":\"a b\",\"target\":"
                "\"/a\",\"fstype\":\"9p\"}]}",
                7, "\"tag\" must be");
        rejects("bad hostname", "{\"v\":1,\"id\":7,\"op\":\"setup\",\"hostname\":\"-x\"}", 7,
                "\"hostname\"");
        rejects("bad address",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"net\":{\"address\":\"10.0.0.300/8\"}}", 7,
                "\"address\"");
        rejects("prefix 33",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"net\":{\"address\":\"10.0.0.3/33\"}}", 7,
                "\"address\"");
        rejects("four dns",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"net\":{\"address\":\"10.0.0.3/8\",\"dns\":["
                "\"1.1.1.1\",\"1.1.1.2\",\"1.1.1.3\",\"1.1.1.4\"]}}",
                7, "0 to 3 items");
        rejects("bad dns",
                "{\"v\":1,\"id\":7,\"op\":\"setup\",\"net\":{\"address\":\"10.0.0.3/8\",\"dns\":["
                "\"resolver\"]}}",
                7, "not an IP address");
        rejects("empty argv", "{\"v\":1,\"id\":7,\"op\":\"start\",\"argv\":[],\"uid\":0,\"gid\":0}",
                7, "1 to 256 items");
        rejects("argv not strings",
                "{\"v\":1,\"id\":7,\"op\":\"start\",\"argv\":[1],\"uid\":0,\"gid\":0}", 7,
                "must be a string");
        rejects("uid -1",
                "{\"v\":1,\"id\":7,\"op\":\"start\",\"argv\":[\"x\"],\"uid\":-1,\"gid\":0}", 7,
                "\"uid\" must be an integer");
        rejects("uid 2^32-1",
                "{\"v\":1,\"id\":7,\"op\":\"start\",\"argv\":[\"x\"],\"uid\":4294967295,\"gid\":0}",
                7, "\"uid\" must be an integer");
        rejects("missing gid", "{\"v\":1,\"id\":7,\"op\":\"start\",\"argv\":[\"x\"],\"uid\":0}", 7,
                "missing key \"gid\"");
        rejects("bad env name",
                "{\"v\":1,\"id\":7,\"op\":\"start\",\"argv\":[\"x\"],\"uid\":0,\"gid\":0,\"env\":{"
                "\"A=B\":\"c\"}}",
                7, "not a variable name");
        rejects("env value not a string",
                "{\"v\":1,\"id\":7,\"op\":\"start\",\"argv\":[\"x\"],\"uid\":0,\"gid\":0,\"env\":{"
                "\"A\":1}}",
                7, "must be a string");
        rejects("relative workdir",
                "{\"v\":1,\"id\":7,\"op\":\"start\",\"argv\":[\"x\"],\"uid\":0,\"gid\":0,"
                "\"workdir\":\"srv\"}",
                7, "\"workdir\"");
        rejects("groups in exec",
                "{\"v\":1,\"id\":7,\"op\":\"exec\",\"session\":1,\"argv\":[\"x\"],\"uid\":0,"
                "\"gid\":0,\"groups\":[]}",
                7, "unknown key \"groups\"");
        rejects("exec session 0",
                "{\"v\":1,\"id\":7,\"op\":\"exec\",\"session\":0,\"argv\":[\"x\"],\"uid\":0,"
                "\"gid\":0}",
                7, "\"session\"");
        rejects("bad base64",
                "{\"v\":1,\"id\":7,\"op\":\"exec\",\"session\":1,\"argv\":[\"x\"],\"uid\":0,"
                "\"gid\":0,\"stdin\":\"aGk\"}",
                7, "base64");
        rejects("base64 with whitespace",
                "{\"v\":1,\"id\":7,\"op\":\"exec\",\"session\":1,\"argv\":[\"x\"],\"uid\":0,"
                "\"gid\":0,\"stdin\":\"aGk= \"}",
                7, "base64");
        rejects("base64 non-canonical",
                "{\"v\":1,\"id\":7,\"op\":\"exec\",\"session\":1,\"argv\":[\"x\"],\"uid\":0,"
                "\"gid\":0,\"stdin\":\"aGl=\"}",
                7, "base64");
        rejects("stdin data with tty",
                "{\"v\":1,\"id\":7,\"op\":\"exec\",\"session\":1,\"argv\":[\"x\"],\"uid\":0,"
                "\"gid\":0,\"tty\":true,\"rows\":1,\"cols\":1,\"stdin\":\"aGk=\"}",
                7, "\"stdin\" goes with neither");
        rejects("tty without size",
                "{\"v\":1,\"id\":7,\"op\":\"exec\",\"session\":1,\"argv\":[\"x\"],\"uid\":0,"
                "\"gid\":0,\"tty\":true,\"rows\":24}",
                7, "missing key \"cols\"");
        rejects("rows without tty",
                "{\"v\":1,\"id\":7,\"op\":\"exec\",\"session\":1,\"argv\":[\"x\"],\"uid\":0,"
                "\"gid\":0,\"rows\":24,\"cols\":80}",
                7, "only with \"tty\"");
        rejects("stdin without data or eof",
                "{\"v\":1,\"id\":7,\"op\":\"stdin\",\"session\":1,\"eof\":false}", 7,
                "needs \"data\"");
        rejects("stdin empty data",
                "{\"v\":1,\"id\":7,\"op\":\"stdin\",\"session\":1,\"data\":\"\"}", 7, "\"data\"");
        rejects("stdin session 0", "{\"v\":1,\"id\":7,\"op\":\"stdin\",\"session\":0,\"eof\":true}",
                7, "\"session\"");
        rejects("resize 0 rows",
                "{\"v\":1,\"id\":7,\"op\":\"resize\",\"session\":1,\"rows\":0,\"cols\":80}", 7,
                "\"rows\"");
        rejects("resize 65536 cols",
                "{\"v\":1,\"id\":7,\"op\":\"resize\",\"session\":1,\"rows\":1,\"cols\":65536}", 7,
                "\"cols\"");
        rejects("console without a size",
                "{\"v\":1,\"id\":7,\"op\":\"console\",\"argv\":[\"/bin/sh\"],\"env\":{},"
                "\"uid\":0,\"gid\":0,\"workdir\":\"/\"}",
                7, "\"rows\"");
        rejects("console with a session",
                "{\"v\":1,\"id\":7,\"op\":\"console\",\"session\":1,\"argv\":[\"/bin/sh\"],"
                "\"env\":{},\"uid\":0,\"gid\":0,\"workdir\":\"/\",\"rows\":1,\"cols\":1}",
                7, "session");
        rejects("console with groups",
                "{\"v\":1,\"id\":7,\"op\":\"console\",\"argv\":[\"/bin/sh\"],\"groups\":[1],"
                "\"env\":{},\"uid\":0,\"gid\":0,\"workdir\":\"/\",\"rows\":1,\"cols\":1}",
                7, "groups");
        rejects("signal 0", "{\"v\":1,\"id\":7,\"op\":\"signal\",\"session\":0,\"signal\":0}", 7,
                "\"signal\"");
        rejects("signal 65", "{\"v\":1,\"id\":7,\"op\":\"signal\",\"session\":0,\"signal\":65}", 7,
                "\"signal\"");
        rejects("health both", "{\"v\":1,\"id\":7,\"op\":\"health\",\"tcp\":1,\"exec\":[\"x\"]}", 7,
                "exactly one");
        rejects("health http and tcp",
                "{\"v\":1,\"id\":7,\"op\":\"health\",\"tcp\":1,\"http\":1,\"path\":\"/\"}", 7,
                "exactly one");
        rejects("health http without path", "{\"v\":1,\"id\":7,\"op\":\"health\",\"http\":80}", 7,
                "missing key \"path\"");
        rejects("health http relative path",
                "{\"v\":1,\"id\":7,\"op\":\"health\",\"http\":80,\"path\":\"x\"}", 7,
                "must start with '/'");
        rejects("health http path with a space",
                "{\"v\":1,\"id\":7,\"op\":\"health\",\"http\":80,\"path\":\"/ HTTP/1.1\"}", 7,
                "no space");
        rejects("health http path with CR LF",
                "{\"v\":1,\"id\":7,\"op\":\"health\",\"http\":80,\"path\":\"/\\r\\nX: y\"}", 7,
                "control character");
        rejects("health path with tcp",
                "{\"v\":1,\"id\":7,\"op\":\"health\",\"tcp\":80,\"path\":\"/\"}", 7,
                "only with \"http\"");
        rejects("health http port 0",
                "{\"v\":1,\"id\":7,\"op\":\"health\",\"http\":0,\"path\":\"/\"}", 7, "\"http\"");
        rejects("health neither", "{\"v\":1,\"id\":7,\"op\":\"health\"}", 7, "exactly one");
        rejects("health port 0", "{\"v\":1,\"id\":7,\"op\":\"health\",\"tcp\":0}", 7, "\"tcp\"");
        rejects("shutdown timeout too long",
                "{\"v\":1,\"id\":7,\"op\":\"shutdown\",\"timeout_ms\":600001}", 7, "timeout_ms");
        rejects("limits without pids_max", "{\"v\":1,\"id\":7,\"op\":\"limits\"}", 7,
                "missing key \"pids_max\"");
        rejects("limits pids_max over the kernel's",
                "{\"v\":1,\"id\":7,\"op\":\"limits\",\"pids_max\":4194305}", 7, "\"pids_max\"");
        rejects("limits pids_max negative", "{\"v\":1,\"id\":7,\"op\":\"limits\",\"pids_max\":-1}",
                7, "\"pids_max\"");
        rejects("limits pids_max a string",
                "{\"v\":1,\"id\":7,\"op\":\"limits\",\"pids_max\":\"30\"}", 7, "\"pids_max\"");
        rejects("limits pids_max fractional",
                "{\"v\":1,\"id\":7,\"op\":\"limits\",\"pids_max\":30.5}", 7, "\"pids_max\"");
        rejects("limits with memory",
                "{\"v\":1,\"id\":7,\"op\":\"limits\",\"pids_max\":30,\"memory_max\":1}", 7,
                "unknown key \"memory_max\"");
        rejects("shutdown timeout bool",
                "{\"v\":1,\"id\":7,\"op\":\"shutdown\",\"timeout_ms\":true}", 7, "timeout_ms");

        /* 257 arguments, and stdin of 64 KiB + 1. */
        char *text = malloc(8192);
        strcpy(text, "{\"v\":1,\"id\":7,\"op\":\"start\",\"uid\":0,\"gid\":0,\"argv\":[\"x\"");
        for (int i = 0; i < 256; i++)
                strcat(text, ",\"a\"");
        strcat(text, "]}");
        rejects("257 arguments", text, 7, "1 to 256 items");
        free(text);
        size_t n = AGENT_DATA_MAX + 1;
        uint8_t *raw = calloc(1, n);
        char *b64 = malloc(agent_base64_encoded_len(n) + 1);
        agent_base64_encode(raw, n, b64);
        text = malloc(strlen(b64) + 200);
        sprintf(text,
                "{\"v\":1,\"id\":7,\"op\":\"exec\",\"session\":1,\"argv\":[\"x\"],\"uid\":0,"
                "\"gid\":0,\"stdin\":\"%s\"}",
                b64);
        rejects("stdin over 64 KiB", text, 7, "at most 65536 bytes");
        free(text);
        free(raw);
        free(b64);

        /* Over the frame size at the JSON layer too (a caller that bypasses the reader). */
        size_t big = AGENT_FRAME_MAX + 10;
        text = malloc(big + 1);
        memset(text, ' ', big);
        memcpy(text, "{\"v\":1,\"id\":7,\"op\":\"hello\"}", 27);
        text[big] = '\0';
        rejects("over 1 MiB", text, 0, "limit is 1048576 bytes");
        free(text);
}

/* ---- replies and events ---- */

static int lookup(uint32_t id, void *userdata)
{
        (void)userdata;
        switch (id) {
        case 1:
                return AGENT_OP_HELLO;
        case 2:
                return AGENT_OP_SETUP;
        case 3:
                return AGENT_OP_START;
        case 4:
                return AGENT_OP_STATS;
        case 5:
                return AGENT_OP_HEALTH;
        case 6:
                return AGENT_OP_EXEC;
        case 7:
                return AGENT_OP_LIMITS;
        default:
                return -1;
        }
}

static void round_trip_msg(const char *name, const char *text)
{
        struct agent_msg m = {0}, m2 = {0};
        _cleanup_err_ struct tn_err *err = NULL;
        if (!ok(agent_msg_decode(text, strlen(text), lookup, NULL, &m, &err) == 0, "%s: decodes",
                name)) {
                diag("%s", tn_err_msg(err));
                return;
        }
        char *enc = NULL;
        size_t len = 0;
        int r = m.is_event ? agent_event_encode(&m.event, &enc, &len)
                           : agent_reply_encode(&m.reply, &enc, &len);
        ok(r == 0 && len == strlen(text) + 1 && memcmp(enc, text, len - 1) == 0,
           "%s: encodes back to the same frame (%.*s)", name, enc ? (int)len - 1 : 1,
           enc ? enc : "-");
        ok(enc && agent_msg_decode(enc, len - 1, lookup, NULL, &m2, NULL) == 0, "%s: re-decodes",
           name);
        agent_msg_clear(&m);
        agent_msg_clear(&m2);
        free(enc);
}

static void msg_rejects(const char *name, const char *text, const char *want_msg)
{
        struct agent_msg m;
        _cleanup_err_ struct tn_err *err = NULL;
        int r = agent_msg_decode(text, strlen(text), lookup, NULL, &m, &err);
        ok(r == -EINVAL && strstr(tn_err_msg(err), want_msg), "%s: refused (\"%s\")", name,
           tn_err_msg(err));
        if (r == 0)
                agent_msg_clear(&m);
}

static void test_messages(void)
{
        round_trip_msg("hello reply",
                       "{\"v\":1,\"id\":1,\"ok\":true,\"agent\":\"tenant-agent 1.0\","
                       "\"kernel\":\"6.1.0-56-amd64\",\"boot_ms\":2300}");
        round_trip_msg("setup reply", "{\"v\":1,\"id\":2,\"ok\":true}");
        round_trip_msg("limits reply", "{\"v\":1,\"id\":7,\"ok\":true}");
        round_trip_msg("limits error", "{\"v\":1,\"id\":7,\"ok\":false,"
                                       "\"error\":\"write /run/tenant-cgroup/tenant/pids.max\"}");
        round_trip_msg("start reply", "{\"v\":1,\"id\":3,\"ok\":true,\"pid\":42}");
        round_trip_msg("exec reply", "{\"v\":1,\"id\":6,\"ok\":true,\"pid\":43}");
        round_trip_msg("stats reply",
                       "{\"v\":1,\"id\":4,\"ok\":true,\"cpu_ns\":123456789,\"mem_total\":"
                       "268435456,\"mem_available\":200000000,\"load1\":0.25,\"uptime_ms\":9000}");
        round_trip_msg("health reply",
                       "{\"v\":1,\"id\":5,\"ok\":true,\"healthy\":false,\"detail\":\"connect: "
                       "Connection refused\"}");
        round_trip_msg("error reply", "{\"v\":1,\"id\":3,\"ok\":false,\"error\":\"unknown op\"}");
        round_trip_msg("error reply, id 0",
                       "{\"v\":1,\"id\":0,\"ok\":false,\"error\":\"frame too large\"}");
        round_trip_msg("ready", "{\"v\":1,\"event\":\"ready\"}");
        round_trip_msg("log", "{\"v\":1,\"event\":\"log\",\"session\":0,\"stream\":\"stderr\","
                              "\"data\":\"AP8K\"}");
        round_trip_msg("exit code", "{\"v\":1,\"event\":\"exit\",\"session\":9,\"code\":3}");
        round_trip_msg("exit signal", "{\"v\":1,\"event\":\"exit\",\"session\":0,\"signal\":9}");

        struct agent_msg m;
        const char *logf = "{\"v\":1,\"event\":\"log\",\"session\":5,\"stream\":\"stdout\","
                           "\"data\":\"AP8K\"}";
        ok(agent_msg_decode(logf, strlen(logf), NULL, NULL, &m, NULL) == 0 && m.is_event &&
               m.event.kind == AGENT_EVENT_LOG && m.event.session == 5 && m.event.len == 3 &&
               memcmp(m.event.data, "\0\xff\n", 3) == 0,
           "log data decoded to its bytes");
        agent_msg_clear(&m);

        msg_rejects("a limits reply with a result (the guest's word is not asked for)",
                    "{\"v\":1,\"id\":7,\"ok\":true,\"pids_max\":30}", "unknown key \"pids_max\"");
        msg_rejects("reply to an unknown id", "{\"v\":1,\"id\":99,\"ok\":true}", "no request");
        msg_rejects("ok reply with id 0", "{\"v\":1,\"id\":0,\"ok\":true}", "id from 1");
        msg_rejects("no v", "{\"id\":2,\"ok\":true}", "missing key \"v\"");
        msg_rejects("neither", "{\"v\":1}", "reply (\"id\") or an event");
        msg_rejects("both", "{\"v\":1,\"id\":2,\"event\":\"ready\"}", "unknown key \"id\"");
        msg_rejects("extra key in result", "{\"v\":1,\"id\":2,\"ok\":true,\"pid\":3}",
                    "unknown key \"pid\"");
        msg_rejects("error with result keys",
                    "{\"v\":1,\"id\":3,\"ok\":false,\"error\":\"x\","
                    "\"pid\":3}",
                    "unknown key \"pid\"");
        msg_rejects("error without text", "{\"v\":1,\"id\":3,\"ok\":false}", "missing key");
        msg_rejects("error with escape codes",
                    "{\"v\":1,\"id\":3,\"ok\":false,\"error\":\"\\u001b[31m\"}", "control");
        msg_rejects("pid 0", "{\"v\":1,\"id\":3,\"ok\":true,\"pid\":0}", "\"pid\"");
        msg_rejects("pid negative", "{\"v\":1,\"id\":3,\"ok\":true,\"pid\":-5}", "\"pid\"");
        msg_rejects("hello missing kernel",
                    "{\"v\":1,\"id\":1,\"ok\":true,\"agent\":\"a\",\"boot_ms\":1}", "\"kernel\"");
        msg_rejects(
            "stats load NaN-ish",
            "{\"v\":1,\"id\":4,\"ok\":true,\"cpu_ns\":1,\"mem_total\":1,\"mem_available\":1,"
            "\"load1\":1e999,\"uptime_ms\":1}",
            "\"load1\"");
        msg_rejects("health not bool",
                    "{\"v\":1,\"id\":5,\"ok\":true,\"healthy\":1,\"detail\":\"\"}", "\"healthy\"");
        msg_rejects("unknown event", "{\"v\":1,\"event\":\"boom\"}", "unknown event");
        msg_rejects("ready with extra", "{\"v\":1,\"event\":\"ready\",\"x\":1}", "unknown key");
        msg_rejects(
            "log bad stream",
            "{\"v\":1,\"event\":\"log\",\"session\":0,\"stream\":\"stdin\",\"data\":\"AA==\"}",
            "\"stream\"");
        msg_rejects(
            "log bad base64",
            "{\"v\":1,\"event\":\"log\",\"session\":0,\"stream\":\"stdout\",\"data\":\"A===\"}",
            "base64");
        msg_rejects("log empty data",
                    "{\"v\":1,\"event\":\"log\",\"session\":0,\"stream\":\"stdout\",\"data\":\"\"}",
                    "\"data\"");
        msg_rejects("exit both",
                    "{\"v\":1,\"event\":\"exit\",\"session\":0,\"code\":1,\"signal\":9}",
                    "exactly one");
        msg_rejects("exit code 256", "{\"v\":1,\"event\":\"exit\",\"session\":0,\"code\":256}",
                    "\"code\"");
        msg_rejects("trailing garbage", "{\"v\":1,\"event\":\"ready\"}garbage", "bad frame");

        /* The log frame limit: 64 KiB decoded passes, one byte more does not. */
        size_t n = AGENT_DATA_MAX;
        uint8_t *raw = calloc(1, n + 1);
        struct agent_event ev = {.kind = AGENT_EVENT_LOG, .data = raw, .len = n};
        char *enc = NULL;
        size_t len = 0;
        ok(agent_event_encode(&ev, &enc, &len) == 0 &&
               agent_msg_decode(enc, len - 1, NULL, NULL, &m, NULL) == 0 && m.event.len == n,
           "a 64 KiB log frame round-trips");
        agent_msg_clear(&m);
        free(enc);
        ev.len = n + 1;
        ok(agent_event_encode(&ev, &enc, &len) == -EINVAL, "a 64 KiB + 1 log frame is not sent");
        free(raw);

        /* Encoders refuse what decoders would. */
        struct agent_reply rep = {.id = 3, .ok = true, .op = AGENT_OP_START, .u.pid = 0};
        ok(agent_reply_encode(&rep, &enc, &len) == -EINVAL, "a pid 0 reply is not sent");
        enc = NULL;
        int r = agent_error_encode(4, "bad \x1b[2J\xc3\xa9", &enc, &len);
        ok(r == 0 && strstr(enc, "\"error\":\"bad ?[2J??\""), "error text is sanitized: %.*s",
           r == 0 ? (int)len - 1 : 0, r == 0 ? enc : "");
        free(enc);
        struct agent_request req = {.id = 0, .op = AGENT_OP_HELLO};
        ok(agent_request_encode(&req, &enc, &len) == -EINVAL, "a request with id 0 is not sent");
        req = (struct agent_request){.id = 5, .op = AGENT_OP_LIMITS};
        req.u.limits.pids_max = AGENT_PIDS_MAX + 1;
        ok(agent_request_encode(&req, &enc, &len) == -EINVAL,
           "a limits request over the kernel's pids.max is not sent");

        /* The host never sends a tmpfs the agent would refuse. */
        struct agent_mount tm = {
            .target = (char *)"/cache", .fstype = AGENT_FS_TMPFS, .size = 16 << 20};
        req = (struct agent_request){.id = 5, .op = AGENT_OP_SETUP};
        req.u.setup = (struct agent_setup){.mounts = &tm, .n_mounts = 1};
        enc = NULL;
        ok(agent_request_encode(&req, &enc, &len) == 0 && enc &&
               strstr(enc, "{\"target\":\"/cache\",\"fstype\":\"tmpfs\",\"readonly\":false,"
                           "\"size\":16777216}"),
           "a tmpfs is sent without a tag: %s", enc ? enc : "(nothing)");
        free(enc);
        static const struct {
                const char *what;
                struct agent_mount m;
        } bad_tmpfs[] = {
            {"smaller than 1 MiB",
             {.target = (char *)"/c", .fstype = AGENT_FS_TMPFS, .size = 1048575}},
            {"larger than 64 GiB",
             {.target = (char *)"/c", .fstype = AGENT_FS_TMPFS, .size = AGENT_TMPFS_SIZE_MAX + 1}},
            {"of size 2^64-1",
             {.target = (char *)"/c", .fstype = AGENT_FS_TMPFS, .size = UINT64_MAX}},
            {"at /", {.target = (char *)"/", .fstype = AGENT_FS_TMPFS, .size = 1 << 20}},
            {"at a relative path",
             {.target = (char *)"c", .fstype = AGENT_FS_TMPFS, .size = 1 << 20}},
            {"at /a/..", {.target = (char *)"/a/..", .fstype = AGENT_FS_TMPFS, .size = 1 << 20}},
            {"(a share) with a size",
             {.tag = (char *)"a", .target = (char *)"/c", .size = 1 << 20}},
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad_tmpfs); i++) {
                tm = bad_tmpfs[i].m;
                enc = NULL;
                ok(agent_request_encode(&req, &enc, &len) == -EINVAL && !enc,
                   "a tmpfs %s is not sent", bad_tmpfs[i].what);
                free(enc);
        }
}

static void test_base64(void)
{
        const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
        const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
        for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
                char out[16];
                agent_base64_encode((const uint8_t *)plain[i], strlen(plain[i]), out);
                uint8_t *back = NULL;
                size_t n = 0;
                ok(strcmp(out, coded[i]) == 0 &&
                       agent_base64_decode(out, strlen(out), &back, &n, 100) == 0 &&
                       n == strlen(plain[i]) && memcmp(back, plain[i], n) == 0,
                   "base64 RFC 4648 vector \"%s\"", plain[i]);
                free(back);
        }
        const char *bad[] = {"Zg", "Zg=", "Z===", "Zh==", "Zg==Zg==", "Zm9v\n", "Zm-v", "=Zg="};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                uint8_t *back = NULL;
                size_t n;
                ok(agent_base64_decode(bad[i], strlen(bad[i]), &back, &n, 100) < 0,
                   "base64 refuses bad[%zu] (%.4s...)", i, bad[i]);
                free(back);
        }
}

static void test_http(void)
{
        static const struct {
                const char *line;
                int code;
        } lines[] = {
            {"HTTP/1.0 200 OK\r\n", 200},
            {"HTTP/1.1 302 Found\r\n", 302},
            {"HTTP/1.1 500 Internal Server Error\r\n", 500},
            {"HTTP/1.1 204", 204},
            {"HTTP/1.1 404\r\n", 404},
            {"HTTP/2.0 200\n", 200},
            {"HTTP/1.1 099 x", -1},
            {"HTTP/1.1 600 x", -1},
            {"HTTP/1.1 20 OK", -1},
            {"HTTP/1.1 2000 OK", -1},
            {"HTTP/1.1  200 OK", -1},
            {"HTTP/11 200 OK", -1},
            {"http/1.1 200 OK", -1},
            {"SSH-2.0-OpenSSH_9.2\r\n", -1},
            {"HTTP/1.", -1},
            {"", -1},
        };
        for (size_t i = 0; i < ARRAY_SIZE(lines); i++)
                ok(agent_http_status(lines[i].line, strlen(lines[i].line)) == lines[i].code,
                   "status line %zu gives %d", i, lines[i].code);
        ok(agent_http_status("HTTP/1.1 200 OK", 10) == -1, "a cut status line is no status");
        ok(agent_http_path_ok("/", 1) && agent_http_path_ok("/a/b?c=d&e", 10), "paths accepted");
        ok(!agent_http_path_ok("", 0) && !agent_http_path_ok("a", 1) &&
               !agent_http_path_ok("/a b", 4) && !agent_http_path_ok("/a\tb", 4) &&
               !agent_http_path_ok("/a\x7f", 3) && !agent_http_path_ok("/a\0b", 4) &&
               !agent_http_path_ok(NULL, 0),
           "paths refused: empty, relative, space, control, NUL");
        char longp[AGENT_HEALTH_PATH_MAX + 2];
        memset(longp, 'a', sizeof(longp));
        longp[0] = '/';
        ok(agent_http_path_ok(longp, AGENT_HEALTH_PATH_MAX) &&
               !agent_http_path_ok(longp, AGENT_HEALTH_PATH_MAX + 1),
           "a path of at most %d bytes", AGENT_HEALTH_PATH_MAX);
}

/* start's "seccomp" and the denied and learned events (issue 17). */
static void test_seccomp(void)
{
#define START                                                                                      \
        "{\"v\":1,\"id\":3,\"op\":\"start\",\"argv\":[\"/x\"],\"env\":{},\"uid\":0,"               \
        "\"gid\":0,\"groups\":[],\"workdir\":\"/\""
        round_trip_request("start, notify", START ",\"seccomp\":{\"notify\":[103,163]}}");
        round_trip_request("start, learn", START ",\"seccomp\":{\"learn\":true,\"refuse\":"
                                                 "[[435,38],[163,1]]}}");
        round_trip_request("start, learn, nothing refused",
                           START ",\"seccomp\":{\"learn\":true,\"refuse\":[]}}");
        struct agent_request req;
        const char *sorted = START ",\"seccomp\":{\"notify\":[163,103]}}";
        ok(agent_request_decode(sorted, strlen(sorted), &req, NULL, NULL) == 0 &&
               req.u.start.seccomp.set && req.u.start.seccomp.n_notify == 2 &&
               req.u.start.seccomp.notify[0] == 103,
           "notify numbers come out sorted");
        agent_request_clear(&req);
        rejects("notify, empty", START ",\"seccomp\":{\"notify\":[]}}", 3, "1 to 1024 items");
        rejects("notify, repeated", START ",\"seccomp\":{\"notify\":[103,103]}}", 3,
                "not repeated");
        rejects("notify, 1024", START ",\"seccomp\":{\"notify\":[1024]}}", 3, "0 to 1023");
        rejects("notify, a name", START ",\"seccomp\":{\"notify\":[\"syslog\"]}}", 3,
                "system call number");
        rejects("refuse without learn", START ",\"seccomp\":{\"notify\":[1],\"refuse\":[]}}", 3,
                "\"refuse\" only with");
        rejects("refuse, errno 0", START ",\"seccomp\":{\"learn\":true,\"refuse\":[[1,0]]}}", 3,
                "ERRNO 1 to 4095");
        rejects("refuse, a triple", START ",\"seccomp\":{\"learn\":true,\"refuse\":[[1,1,1]]}}", 3,
                "[NR, ERRNO]");
        rejects("seccomp, unknown key", START ",\"seccomp\":{\"notify\":[1],\"kill\":[2]}}", 3,
                "unknown key \"kill\"");
        rejects("seccomp in exec",
                "{\"v\":1,\"id\":4,\"op\":\"exec\",\"session\":1,\"argv\":[\"/x\"],"
                "\"uid\":0,\"gid\":0,\"seccomp\":{\"notify\":[1]}}",
                4, "unknown key \"seccomp\"");
#undef START
        round_trip_msg("denied event", "{\"v\":1,\"event\":\"denied\",\"nr\":103,\"count\":40000}");
        round_trip_msg("denied event, other",
                       "{\"v\":1,\"event\":\"denied\",\"nr\":1024,\"count\":9007199254740991}");
        round_trip_msg("learned event",
                       "{\"v\":1,\"event\":\"learned\",\"calls\":[[0,12],[59,1],[1024,2]]}");
        msg_rejects("denied, count 0", "{\"v\":1,\"event\":\"denied\",\"nr\":1,\"count\":0}",
                    "\"count\" must be");
        msg_rejects("denied, count 2^53",
                    "{\"v\":1,\"event\":\"denied\",\"nr\":1,\"count\":9007199254740992}",
                    "\"count\" must be");
        msg_rejects("denied, nr 1025", "{\"v\":1,\"event\":\"denied\",\"nr\":1025,\"count\":1}",
                    "\"nr\" must be");
        msg_rejects("denied, a name",
                    "{\"v\":1,\"event\":\"denied\",\"nr\":\"syslog\",\"count\":1}",
                    "\"nr\" must be");
        msg_rejects("learned, repeated", "{\"v\":1,\"event\":\"learned\",\"calls\":[[1,1],[1,2]]}",
                    "not repeated");
        msg_rejects("learned, count 0", "{\"v\":1,\"event\":\"learned\",\"calls\":[[1,0]]}",
                    "COUNT 1 to");
        round_trip_msg("limits event",
                       "{\"v\":1,\"event\":\"limits\",\"oom_kills\":2,\"pids_max_hits\":0}");
        round_trip_msg("limits event, the largest totals",
                       "{\"v\":1,\"event\":\"limits\",\"oom_kills\":9007199254740991,"
                       "\"pids_max_hits\":9007199254740991}");
        msg_rejects("limits, a total past 2^53-1",
                    "{\"v\":1,\"event\":\"limits\",\"oom_kills\":9007199254740992,"
                    "\"pids_max_hits\":0}",
                    "\"oom_kills\" must be");
        msg_rejects("limits, negative",
                    "{\"v\":1,\"event\":\"limits\",\"oom_kills\":0,\"pids_max_hits\":-1}",
                    "\"pids_max_hits\" must be");
        msg_rejects("limits, one missing", "{\"v\":1,\"event\":\"limits\",\"oom_kills\":0}",
                    "\"pids_max_hits\"");
        msg_rejects("limits, an unknown key",
                    "{\"v\":1,\"event\":\"limits\",\"oom_kills\":0,\"pids_max_hits\":0,"
                    "\"x\":1}",
                    "unknown key \"x\"");
}

int main(void)
{
        test_http();
        test_reader();
        test_requests();
        test_request_rejects();
        test_messages();
        test_seccomp();
        test_base64();
        return tap_done();
}
