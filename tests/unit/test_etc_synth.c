/* test_etc_synth.c — the /etc of a host-system root (host/etc_synth.c), from a fake host
 * /etc made in a temporary directory: what is taken (links as links, files copied, the
 * alternatives and ssl/certs trees), what never is (shadow, ssh keys, ssl/private,
 * human accounts, password fields, a FIFO, what others may not read), and that etc_write() plus etc_tree_copy()
 * give the same entries the host has, link targets included, within their bounds. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/etc_synth.h"
#include "spec/manifest.h"
#include "tap.h"

static char base[] = "/tmp/test-etc-synth.XXXXXX";

static void put(const char *name, const char *text)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/host/%s", base, name);
        FILE *f = fopen(path, "we");
        if (f) {
                fputs(text, f);
                fclose(f);
        }
}

static void link_to(const char *target, const char *name)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/host/%s", base, name);
        if (symlink(target, path) < 0)
                diag("symlink %s: %m", path);
}

static void dir(const char *name)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", base, name);
        mkdir(path, 0755);
}

static const struct etc_entry *find(const struct etc_set *s, const char *name)
{
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->v[i].name, name) == 0)
                        return &s->v[i];
        return NULL;
}

static struct manifest *service(void)
{
        static const char text[] = "{\"name\": \"es-test\", \"isolation\": \"sandbox\", "
                                   "\"root\": \"host-system\", \"exec\": [\"/bin/true\"], "
                                   "\"user\": \"1000:1000\", \"network\": {\"mode\": \"none\"}}";
        struct manifest *m = NULL;
        struct diag_list diags = {0};
        if (manifest_parse(text, sizeof(text) - 1, &m, &diags) < 0)
                m = NULL;
        diag_list_clear(&diags);
        return m;
}

/* What `rel` (below base) is: "l TARGET", "f CONTENT", "d", or "-" when absent. */
static const char *what(const char *rel, char *buf, size_t size)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", base, rel);
        struct stat st;
        if (lstat(path, &st) < 0)
                return "-";
        if (S_ISDIR(st.st_mode))
                return "d";
        if (S_ISLNK(st.st_mode)) {
                char t[128];
                ssize_t n = readlink(path, t, sizeof(t) - 1);
                t[n < 0 ? 0 : n] = '\0';
                snprintf(buf, size, "l %s", t);
                return buf;
        }
        FILE *f = fopen(path, "re");
        char c[128] = "";
        if (f) {
                size_t n = fread(c, 1, sizeof(c) - 1, f);
                c[n] = '\0';
                fclose(f);
        }
        snprintf(buf, size, "f%s %s", (st.st_mode & 07777) == 0644 ? "" : "(mode)", c);
        return buf;
}

int main(void)
{
        char fifo[512];
        if (!mkdtemp(base)) {
                ok(false, "mkdtemp");
                return tap_done();
        }
        static const char *const dirs[] = {"host",
                                           "host/alternatives",
                                           "host/ssl",
                                           "host/ssl/certs",
                                           "host/ssl/certs/java",
                                           "host/ssl/private",
                                           "host/ssh",
                                           "out",
                                           "host/ssl/certs/java/a",
                                           "host/ssl/certs/java/a/b",
                                           "host/ssl/certs/java/a/b/c",
                                           "host/ssl/certs/java/a/b/c/d",
                                           "host/ssl/certs/java/a/hidden"};
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
                dir(dirs[i]);
        put("passwd", "root:x:0:0:root:/root:/bin/bash\n"
                      "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
                      "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
                      "old:$6$salt$hash:20:20::/:/bin/sh\n");
        put("group", "root:x:0:\nwww-data:x:33:\nalice:x:1000:\n");
        put("shadow", "root:$6$secret:1::::::\n");
        put("ssh/ssh_host_ed25519_key", "PRIVATE\n");
        put("ssl/private/key.pem", "PRIVATE\n");
        put("machine-id", "0123\n");
        put("services", "ssh 22/tcp\n");
        put("ssl/openssl.cnf", "[openssl]\n");
        put("ssl/certs/ca-certificates.crt", "BUNDLE\n");
        put("ssl/certs/java/cacerts", "JKS\n");
        put("ssl/certs/java/a/b/c/d/deep", "DEEP\n");
        put("alternatives/README", "readme\n");
        put("ssl/certs/private.pem", "PRIVATE\n");
        put("ssl/certs/java/a/hidden/in", "HIDDEN\n");
        snprintf(fifo, sizeof(fifo), "%s/host/ssl/certs/private.pem", base);
        chmod(fifo, 0640);
        snprintf(fifo, sizeof(fifo), "%s/host/ssl/certs/java/a/hidden", base);
        chmod(fifo, 0750);
        snprintf(fifo, sizeof(fifo), "%s/host/gai.conf", base);
        put("gai.conf", "private\n");
        chmod(fifo, 0600);
        link_to("/usr/share/zoneinfo/Etc/UTC", "localtime");
        link_to("../usr/lib/os-release", "os-release");
        link_to("/usr/bin/mawk", "alternatives/awk");
        link_to("/usr/share/ca-certificates/x.crt", "ssl/certs/x.pem");
        link_to("x.pem", "ssl/certs/1234abcd.0");
        snprintf(fifo, sizeof(fifo), "%s/host/alternatives/fifo", base);
        mkfifo(fifo, 0644);
        snprintf(fifo, sizeof(fifo), "%s/host/timezone", base);
        mkfifo(fifo, 0644); /* not a regular file: left out */

        _cleanup_manifest_ struct manifest *m = service();
        ok(m != NULL, "a host-system manifest parses");
        if (!m)
                return tap_done();
        char host[512];
        snprintf(host, sizeof(host), "%s/host", base);
        struct etc_set s = {0};
        struct tn_err *err = NULL;
        int r = etc_synthesize(m, host, NULL, &s, &err);
        ok(r == 0, "synthesized (%s)", r < 0 ? tn_err_msg(err) : "ok");

        const struct etc_entry *e = find(&s, "passwd");
        ok(e && e->kind == ETC_FILE && strstr(e->data, "root:x:0:0:") &&
               strstr(e->data, "www-data:x:33:33:") && strstr(e->data, "es-test:x:1000:1000:") &&
               strstr(e->data, "nobody:x:65534:"),
           "passwd: root, the host's system account, the service's user, nobody");
        ok(e && !strstr(e->data, "alice") && !strstr(e->data, "/home") && !strstr(e->data, "$6$"),
           "passwd: no human account, no home, no password field");
        e = find(&s, "group");
        ok(e && strstr(e->data, "www-data:x:33:") && !strstr(e->data, "alice"),
           "group: the system group, no human one");
        e = find(&s, "localtime");
        ok(e && e->kind == ETC_LINK && strcmp(e->data, "/usr/share/zoneinfo/Etc/UTC") == 0,
           "localtime stays a link to the host's zone");
        e = find(&s, "os-release");
        ok(e && e->kind == ETC_LINK && strcmp(e->data, "../usr/lib/os-release") == 0,
           "os-release stays a relative link");
        e = find(&s, "ssl/openssl.cnf");
        ok(e && e->kind == ETC_COPY && strcmp(e->data, host) > 0 &&
               strcmp(e->data + strlen(host), "/ssl/openssl.cnf") == 0 && e->len == 10,
           "ssl/openssl.cnf is copied (by etc_write, from the host file)");
        e = find(&s, "resolv.conf");
        ok(e && strstr(e->data, "no resolver"), "resolv.conf says network.mode none has none");
        ok(find(&s, "alternatives") && find(&s, "alternatives")->kind == ETC_TREE &&
               find(&s, "ssl/certs") && find(&s, "ssl/certs")->kind == ETC_TREE,
           "alternatives and ssl/certs are trees");
        static const char *const never[] = {"shadow",   "ssh", "ssl/private", "machine-id",
                                            "timezone", "ssl", "ld.so.cache", "gai.conf"};
        bool none = true;
        for (size_t i = 0; i < ARRAY_SIZE(never); i++)
                if (find(&s, never[i])) {
                        diag("/etc/%s is in the set", never[i]);
                        none = false;
                }
        ok(none, "never shadow, ssh, ssl/private, machine-id, a FIFO, a file others may not read, "
                 "or what the host lacks");

        char out[512];
        snprintf(out, sizeof(out), "%s/out", base);
        int etcdir = open(out, O_PATH | O_DIRECTORY | O_CLOEXEC);
        r = etc_write(&s, etcdir, &err);
        ok(r == 0, "etc_write (%s)", r < 0 ? tn_err_msg(err) : "ok");
        for (size_t i = 0; r == 0 && i < s.n; i++)
                if (s.v[i].kind == ETC_TREE) {
                        r = etc_tree_copy(etcdir, s.v[i].name, s.v[i].data, &err);
                        ok(r == 0, "etc_tree_copy %s (%s)", s.v[i].name,
                           r < 0 ? tn_err_msg(err) : "ok");
                }
        char b[256];
        static const struct {
                const char *rel, *want;
        } want[] = {
            {"out/localtime", "l /usr/share/zoneinfo/Etc/UTC"},
            {"out/ssl", "d"},
            {"out/ssl/openssl.cnf", "f [openssl]\n"},
            {"out/alternatives/awk", "l /usr/bin/mawk"},
            {"out/alternatives/README", "f readme\n"},
            {"out/alternatives/fifo", "-"},
            {"out/ssl/certs/1234abcd.0", "l x.pem"},
            {"out/ssl/certs/x.pem", "l /usr/share/ca-certificates/x.crt"},
            {"out/ssl/certs/ca-certificates.crt", "f BUNDLE\n"},
            {"out/ssl/certs/java/cacerts", "f JKS\n"},
            {"out/ssl/certs/java/a/b/c", "d"},
            {"out/ssl/certs/java/a/b/c/d", "-"},
            {"out/ssl/private", "-"},
            {"out/ssl/certs/private.pem", "-"},
            {"out/ssl/certs/java/a/hidden", "-"},
            {"out/gai.conf", "-"},
            {"out/shadow", "-"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(want); i++)
                is_str(what(want[i].rel, b, sizeof(b)), want[i].want, "%s", want[i].rel);
        ok(etc_write(&s, etcdir, &err) == -EEXIST, "etc_write over an existing /etc is refused");
        tn_err_free(err);
        err = NULL;

        /* A tree of more entries than the bound is refused, not copied in part silently. */
        dir("big");
        dir("out2");
        for (int i = 0; i <= ETC_TREE_ENTRIES; i++) {
                char p[512];
                snprintf(p, sizeof(p), "%s/big/l%d", base, i);
                if (symlink("x", p) < 0)
                        break;
        }
        char big[512], out2[512];
        snprintf(big, sizeof(big), "%s/big", base);
        snprintf(out2, sizeof(out2), "%s/out2", base);
        int out2fd = open(out2, O_PATH | O_DIRECTORY | O_CLOEXEC);
        r = etc_tree_copy(out2fd, "alternatives", big, &err);
        ok(r == -E2BIG, "a tree of more than %d entries is refused (%s)", ETC_TREE_ENTRIES,
           r < 0 ? tn_err_msg(err) : "copied");
        tn_err_free(err);
        err = NULL;
        /* A tree that is a link on the host is not followed. */
        link_to(big, "linked");
        char linked[512];
        snprintf(linked, sizeof(linked), "%s/host/linked", base);
        r = etc_tree_copy(out2fd, "other", linked, &err);
        ok(r == -ELOOP || r == -ENOTDIR, "a source that is a link is not followed (%s)",
           r < 0 ? tn_err_msg(err) : "followed");
        tn_err_free(err);
        close(out2fd);
        close(etcdir);
        etc_set_clear(&s);
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
        if (system(cmd) != 0)
                diag("cannot remove %s", base);
        return tap_done();
}
