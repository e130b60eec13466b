/* test_etc_links.c — the /etc entries a host-system tenant gets for the host's /usr
 * links into /etc (host/etc_links.c finds their names, host/etc_synth.c decides each),
 * on a fake host root made in a temporary directory: absolute and relative links found,
 * the fixed trees' and what leaves /etc not indexed, a directory over a tree's bounds
 * dropped with a warning; the cached index used while its key holds, rebuilt when a
 * package database changes, when it is not tenantd's own file or holds a bad name; and
 * per start: files copied, directories as trees (their linked files not twice), links
 * inside /etc followed (bounded), and never a refused name, a tree holding one, a file
 * others may not read or reach, a FIFO, or a synthesized file replaced; the byte bound. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "host/etc_links.h"
#include "host/etc_synth.h"
#include "spec/manifest.h"
#include "tap.h"

static char base[] = "/tmp/test-etc-links.XXXXXX";

static void path_of(char *buf, size_t size, const char *rel)
{
        snprintf(buf, size, "%s/%s", base, rel);
}

static void mk(const char *rel, mode_t mode)
{
        char p[512];
        path_of(p, sizeof(p), rel);
        if (mkdir(p, mode) < 0 || chmod(p, mode) < 0)
                diag("mkdir %s: %m", p);
}

static void put(const char *rel, const char *text, mode_t mode)
{
        char p[512];
        path_of(p, sizeof(p), rel);
        FILE *f = fopen(p, "we");
        if (!f) {
                diag("fopen %s: %m", p);
                return;
        }
        fputs(text, f);
        fclose(f);
        chmod(p, mode);
}

static void ln(const char *target, const char *rel)
{
        char p[512];
        path_of(p, sizeof(p), rel);
        if (symlink(target, p) < 0)
                diag("symlink %s: %m", p);
}

static bool has(const struct etc_links *l, const char *name)
{
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->v[i], name) == 0)
                        return true;
        return false;
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
        static const char text[] = "{\"name\": \"el-test\", \"isolation\": \"sandbox\", "
                                   "\"root\": \"host-system\", \"exec\": [\"/bin/true\"], "
                                   "\"user\": \"1000:1000\", \"network\": {\"mode\": \"none\"}}";
        struct manifest *m = NULL;
        struct diag_list diags = {0};
        if (manifest_parse(text, sizeof(text) - 1, &m, &diags) < 0)
                m = NULL;
        diag_list_clear(&diags);
        return m;
}

static void make_host(void)
{
        static const char *const dirs[] = {
            "root",
            "root/usr",
            "root/usr/bin",
            "root/usr/lib",
            "root/usr/lib/jvm",
            "root/usr/lib/jvm/j",
            "root/usr/lib/jvm/j/conf",
            "root/usr/lib/jvm/j/conf/security",
            "root/usr/lib/jvm/j/lib",
            "root/usr/lib/ssl",
            "root/usr/share",
            "root/usr/share/maven",
            "root/usr/share/maven/bin",
            "root/usr/x",
            "root/var",
            "root/var/lib",
            "root/var/lib/dpkg",
            "root/var/lib/dpkg/info",
            "root/etc",
            "root/etc/alternatives",
            "root/etc/ssl",
            "root/etc/ssl/certs",
            "root/etc/ssl/private",
            "root/etc/ssh",
            "root/etc/java",
            "root/etc/java/security",
            "root/etc/maven",
            "root/etc/py",
            "root/etc/pyreal",
            "root/etc/realdir",
            "root/etc/deep",
            "root/etc/deep/1",
            "root/etc/deep/1/2",
            "root/etc/deep/1/2/3",
            "root/etc/deep/1/2/3/4",
            "root/etc/deep/1/2/3/4/5",
            "root/etc/big",
            "state",
            "out",
        };
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
                mk(dirs[i], 0755);
        mk("root/etc/hidden", 0750);
        put("root/etc/hidden/conf", "HIDDEN\n", 0644);
        put("root/etc/java/security/java.security", "securerandom.source=file:/dev/urandom\n",
            0644);
        put("root/etc/java/jvm.cfg", "-server KNOWN\n", 0644);
        put("root/etc/maven/m2.conf", "main is org.apache.maven\n", 0644);
        put("root/etc/maven/settings.xml", "<settings/>\n", 0644);
        put("root/etc/pyreal/site.py", "import sys\n", 0644);
        put("root/etc/realdir/file", "REAL\n", 0644);
        put("root/etc/secret.conf", "password=hunter2\n", 0600);
        put("root/etc/environment", "https_proxy=http://user:pass@proxy:3128\n", 0644);
        put("root/etc/shadow", "root:$6$secret:1::::::\n", 0640);
        put("root/etc/ssh/ssh_host_ed25519_key.pub", "ssh-ed25519 AAAA\n", 0644);
        put("root/etc/ssl/private/key.pem", "PRIVATE\n", 0600);
        put("root/etc/ssl/openssl.cnf", "[openssl]\n", 0644);
        put("root/etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/"
            "alice:/bin/bash\n",
            0644);
        put("root/etc/deep/1/2/3/4/5/f", "DEEP\n", 0644);
        put("root/etc/big/a", "A\n", 0644);
        ln("../pyreal/site.py", "root/etc/py/site.py");
        ln("realdir", "root/etc/confdir");
        ln("loop2", "root/etc/loop1");
        ln("/etc/loop1", "root/etc/loop2");
        ln("/usr/bin/mawk", "root/etc/alternatives/awk");
        char fifo[512];
        path_of(fifo, sizeof(fifo), "root/etc/afifo");
        mkfifo(fifo, 0644);

        /* /usr's links: what the index must find, and what it must not. */
        ln("/etc/java/security/java.security", "root/usr/lib/jvm/j/conf/security/java.security");
        ln("../../../../../etc/java/jvm.cfg", "root/usr/lib/jvm/j/lib/jvm.cfg");
        ln("/etc/java//security/./java.security", "root/usr/x/same-again");
        ln("/etc/maven", "root/usr/share/maven/conf");
        ln("/etc/maven/m2.conf", "root/usr/share/maven/bin/m2.conf");
        ln("/etc/alternatives/awk", "root/usr/bin/awk");
        ln("/etc/ssl/certs", "root/usr/lib/ssl/certs");
        ln("/etc/ssl/openssl.cnf", "root/usr/lib/ssl/openssl.cnf");
        ln("/etc/ssl/private", "root/usr/lib/ssl/private");
        ln("/etc/shadow", "root/usr/x/shadow");
        ln("/etc/ssh/ssh_host_ed25519_key.pub", "root/usr/x/sshkey");
        ln("/etc/secret.conf", "root/usr/x/secret");
        ln("/etc/environment", "root/usr/x/environment");
        ln("/etc/hidden/conf", "root/usr/x/hidden");
        ln("/etc/../var/lib/x", "root/usr/x/outside");
        ln("/etc", "root/usr/x/whole");
        ln("/etc/ssl", "root/usr/x/ssl");
        ln("/etc/py/site.py", "root/usr/x/chain");
        ln("/etc/confdir/file", "root/usr/x/dirlink");
        ln("/etc/loop1", "root/usr/x/loop");
        ln("/etc/afifo", "root/usr/x/fifo");
        ln("/etc/passwd", "root/usr/x/passwd");
        ln("/etc/deep", "root/usr/x/deep");
        ln("/etc/big", "root/usr/x/big");
        ln("/etc/missing", "root/usr/x/missing");
}

static void test_scan(const char *root)
{
        struct etc_links l = {0};
        char *warnings = NULL;
        size_t wlen = 0;
        FILE *warn = open_memstream(&warnings, &wlen);
        struct tn_err *err = NULL;
        int r = etc_links_scan(root, &l, warn, &err);
        fclose(warn);
        ok(r == 0, "the fake /usr is indexed (%s)", r < 0 ? tn_err_msg(err) : "ok");
        tn_err_free(err);
        static const char *const found[] = {"java/security/java.security",
                                            "java/jvm.cfg",
                                            "maven",
                                            "maven/m2.conf",
                                            "py/site.py",
                                            "confdir/file",
                                            "loop1",
                                            "shadow",
                                            "environment",
                                            "ssl",
                                            "ssl/private",
                                            "missing",
                                            "ssl/openssl.cnf"};
        for (size_t i = 0; i < ARRAY_SIZE(found); i++)
                ok(has(&l, found[i]), "indexed: /etc/%s", found[i]);
        static const char *const not_found[] = {"alternatives/awk", "ssl/certs", "",
                                                "../var/lib/x",     "var/lib/x", "deep"};
        for (size_t i = 0; i < ARRAY_SIZE(not_found); i++)
                ok(!has(&l, not_found[i]), "not indexed: \"%s\"", not_found[i]);
        bool sorted = true;
        for (size_t i = 1; i < l.n; i++)
                sorted &= strcmp(l.v[i - 1], l.v[i]) < 0;
        ok(sorted, "the names are sorted, each once (two links to java.security)");
        ok(warnings && strstr(warnings, "/etc/deep (linked from /usr) is left out"),
           "a directory deeper than a tree's bound is left out, with a warning");
        if (warnings)
                diag("%s", strtok(warnings, "\n"));
        free(warnings);
        etc_links_clear(&l);
}

static void touch_dpkg(const char *root, long sec)
{
        char p[512];
        snprintf(p, sizeof(p), "%s/var/lib/dpkg/info", root);
        struct timeval tv[2] = {{sec, 0}, {sec, 0}};
        utimes(p, tv);
}

static void test_cache(const char *root, const char *state)
{
        char index[512], text[4096], key[2048];
        snprintf(index, sizeof(index), "%s/%s", state, ETC_LINKS_FILE);
        touch_dpkg(root, 1000000);
        struct etc_links l = {0};
        struct tn_err *err = NULL;
        int r = etc_links_load(state, root, ETC_LINKS_CACHED, &l, NULL, &err);
        struct stat st;
        ok(r == 0 && has(&l, "java/jvm.cfg") && stat(index, &st) == 0 &&
               (st.st_mode & 07777) == 0600,
           "a missing index is built and kept, mode 0600 (%s)", r < 0 ? tn_err_msg(err) : "ok");
        etc_links_clear(&l);

        /* The same key: the file is used as it is (a name only it has shows that). */
        etc_links_key(root, key, sizeof(key));
        snprintf(text, sizeof(text),
                 "# tenantd etc-links 1: names below /etc that links in /usr point to\n"
                 "key %s\nonly/in/cache\n",
                 key);
        FILE *f = fopen(index, "we");
        fputs(text, f);
        fclose(f);
        r = etc_links_load(state, root, ETC_LINKS_CACHED, &l, NULL, &err);
        ok(r == 0 && l.n == 1 && has(&l, "only/in/cache"), "a fresh index is read, not rebuilt");
        etc_links_clear(&l);
        r = etc_links_load(state, root, ETC_LINKS_REBUILD, &l, NULL, &err);
        ok(r == 0 && !has(&l, "only/in/cache") && has(&l, "maven"),
           "a reload rebuilds it whatever its key");
        etc_links_clear(&l);

        /* A package installed: the database directory changes, and so does the key. */
        f = fopen(index, "we");
        fputs(text, f);
        fclose(f);
        touch_dpkg(root, 2000000);
        char key2[2048];
        etc_links_key(root, key2, sizeof(key2));
        ok(strcmp(key, key2) != 0, "the key changes with var/lib/dpkg/info's mtime");
        r = etc_links_load(state, root, ETC_LINKS_CACHED, &l, NULL, &err);
        ok(r == 0 && !has(&l, "only/in/cache") && has(&l, "maven"),
           "a stale index is rebuilt at the next start");
        etc_links_clear(&l);

        /* Not tenantd's own, or not an index: rebuilt, with a warning. */
        static const char *const bad[] = {"../shadow", "/etc/shadow", "a//b", "c\td", "zz\nb"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                etc_links_key(root, key, sizeof(key));
                snprintf(text, sizeof(text),
                         "# tenantd etc-links 1: names below /etc that links in /usr point to\n"
                         "key %s\n%s\nzzz\n",
                         key, bad[i]);
                f = fopen(index, "we");
                fputs(text, f);
                fclose(f);
                char *warnings = NULL;
                size_t wlen = 0;
                FILE *warn = open_memstream(&warnings, &wlen);
                r = etc_links_load(state, root, ETC_LINKS_CACHED, &l, warn, &err);
                fclose(warn);
                ok(r == 0 && !has(&l, bad[i]) && !has(&l, "zzz") && has(&l, "maven") && warnings &&
                       strstr(warnings, "rebuilding"),
                   "an index holding a bad name (#%zu) is refused and rebuilt, with a warning", i);
                if (warnings)
                        diag("%s", strtok(warnings, "\n"));
                free(warnings);
                etc_links_clear(&l);
        }
        chmod(index, 0666);
        char *warnings = NULL;
        size_t wlen = 0;
        FILE *warn = open_memstream(&warnings, &wlen);
        r = etc_links_load(state, root, ETC_LINKS_CACHED, &l, warn, &err);
        fclose(warn);
        ok(r == 0 && has(&l, "maven") && warnings && strstr(warnings, "not a file of tenantd's"),
           "an index others may write is rebuilt, with a warning");
        if (warnings)
                diag("%s", strtok(warnings, "\n"));
        ok(stat(index, &st) == 0 && (st.st_mode & 07777) == 0600, "... and written 0600 again");
        free(warnings);
        etc_links_clear(&l);
        tn_err_free(err);
}

static const char *kind_of(const struct etc_entry *e)
{
        return !e                    ? "-"
               : e->kind == ETC_FILE ? "f"
               : e->kind == ETC_COPY ? "c"
               : e->kind == ETC_LINK ? "l"
                                     : "t";
}

/* What the tenant will read at `name`: a copy's content (read from the host file it
 * names), else the entry's data. */
static bool data_is(const struct etc_entry *e, const char *want, char *buf, size_t size)
{
        if (e->kind != ETC_COPY)
                return strcmp(e->data, want) == 0;
        FILE *f = fopen(e->data, "re");
        size_t n = f ? fread(buf, 1, size - 1, f) : 0;
        if (f)
                fclose(f);
        buf[n] = '\0';
        return e->len == strlen(want) && strcmp(buf, want) == 0;
}

static void test_select(const struct manifest *m, const char *root)
{
        struct etc_links l = {0};
        struct tn_err *err = NULL;
        int r = etc_links_scan(root, &l, NULL, &err);
        char etc[512];
        snprintf(etc, sizeof(etc), "%s/etc", root);
        struct etc_set s = {0};
        if (r == 0)
                r = etc_synthesize(m, etc, &l, &s, &err);
        ok(r == 0 && s.left_out == 0, "synthesized with the index (%s)",
           r < 0 ? tn_err_msg(err) : "ok");
        static const struct {
                const char *name, *kind, *data;
        } want[] = {
            {"java/security/java.security", "c", "securerandom.source=file:/dev/urandom\n"},
            {"java/jvm.cfg", "c", "-server KNOWN\n"},
            {"maven", "t", NULL},
            {"maven/m2.conf", "-", NULL}, /* in the tree */
            {"py/site.py", "l", "../pyreal/site.py"},
            {"pyreal/site.py", "c", "import sys\n"},
            {"confdir", "l", "realdir"},
            {"confdir/file", "-", NULL},
            {"realdir/file", "c", "REAL\n"},
            {"loop1", "l", "loop2"},
            {"loop2", "l", "/etc/loop1"},
            {"ssl/openssl.cnf", "c", "[openssl]\n"},
            {"shadow", "-", NULL},
            {"ssh/ssh_host_ed25519_key.pub", "-", NULL},
            {"ssl/private", "-", NULL},
            {"ssl", "-", NULL},
            {"secret.conf", "-", NULL},
            {"environment", "-", NULL},
            {"hidden/conf", "-", NULL},
            {"afifo", "-", NULL},
            {"missing", "-", NULL},
            {"deep", "-", NULL},
            {"big", "t", NULL},
        };
        for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
                const struct etc_entry *e = find(&s, want[i].name);
                char buf[256];
                bool good = strcmp(kind_of(e), want[i].kind) == 0 &&
                            (!want[i].data || data_is(e, want[i].data, buf, sizeof(buf)));
                ok(good, "/etc/%s: %s %.*s", want[i].name, want[i].kind,
                   want[i].data ? (int)strcspn(want[i].data, "\n") : 0,
                   want[i].data ? want[i].data : "");
        }
        const struct etc_entry *e = find(&s, "passwd");
        ok(e && e->kind == ETC_FILE && !strstr(e->data, "alice") && strstr(e->data, "el-test"),
           "passwd stays the synthesized one, though /usr links to the host's");
        size_t passwds = 0;
        for (size_t i = 0; i < s.n; i++)
                passwds += strcmp(s.v[i].name, "passwd") == 0;
        is_int((int)passwds, 1, "and it is there once");

        char out[512];
        path_of(out, sizeof(out), "out");
        int outfd = open(out, O_PATH | O_DIRECTORY | O_CLOEXEC);
        r = etc_write(&s, outfd, &err);
        for (size_t i = 0; r == 0 && i < s.n; i++)
                if (s.v[i].kind == ETC_TREE)
                        r = etc_tree_copy(outfd, s.v[i].name, s.v[i].data, &err);
        ok(r == 0, "written, trees copied, as a microVM's skeleton (%s)",
           r < 0 ? tn_err_msg(err) : "ok");
        char p[512];
        struct stat st;
        path_of(p, sizeof(p), "out/maven/settings.xml");
        ok(access(p, R_OK) == 0, "the linked directory's other files are in its tree");
        path_of(p, sizeof(p), "out/confdir/file");
        ok(access(p, R_OK) == 0, "a file through a linked directory reads");
        path_of(p, sizeof(p), "out/java/security/java.security");
        FILE *f = fopen(p, "re");
        char got[128] = "";
        size_t n = f ? fread(got, 1, sizeof(got) - 1, f) : 0;
        got[n] = '\0';
        if (f)
                fclose(f);
        ok(strcmp(got, "securerandom.source=file:/dev/urandom\n") == 0 && stat(p, &st) == 0 &&
               (st.st_mode & 07777) == 0644,
           "a linked file is copied whole, mode 0644");
        path_of(p, sizeof(p), "out/loop1");
        ok(lstat(p, &st) == 0 && S_ISLNK(st.st_mode), "a loop of links is written as it is");
        close(outfd);
        etc_set_clear(&s);
        etc_links_clear(&l);
        tn_err_free(err);
}

/* More bytes than ETC_LINKED_BYTES: what does not fit is left out and counted. */
static void test_bytes(const struct manifest *m, const char *root)
{
        char p[512];
        static char chunk[1 << 20];
        memset(chunk, 'x', sizeof(chunk));
        static const char *const names[] = {"huge1", "huge2"};
        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                snprintf(p, sizeof(p), "%s/etc/%s", root, names[i]);
                FILE *f = fopen(p, "we");
                for (unsigned k = 0; f && k < ETC_LINKED_BYTES / 2 / sizeof(chunk) + 1; k++)
                        fwrite(chunk, 1, sizeof(chunk), f);
                if (f)
                        fclose(f);
                chmod(p, 0644);
        }
        char h1[] = "huge1", h2[] = "huge2";
        char *v[] = {h1, h2};
        struct etc_links l = {v, 2};
        char etc[512];
        snprintf(etc, sizeof(etc), "%s/etc", root);
        struct etc_set s = {0};
        struct tn_err *err = NULL;
        int r = etc_synthesize(m, etc, &l, &s, &err);
        ok(r == 0 && find(&s, "huge1") && !find(&s, "huge2") && s.left_out == 1,
           "files past %u bytes in all are left out and counted (%zu)", ETC_LINKED_BYTES,
           s.left_out);
        etc_set_clear(&s);
        tn_err_free(err);
}

/* Between etc_synthesize() and etc_write() (a sandbox's supervisor and its first
 * process), a linked file that grew is copied as long as it was, one others may no
 * longer read is left out. */
static void test_changed(const struct manifest *m, const char *root)
{
        put("root/etc/grows", "1234\n", 0644);
        put("root/etc/closes", "open\n", 0644);
        char closes[] = "closes", grows[] = "grows";
        char *v[] = {closes, grows};
        struct etc_links l = {v, 2};
        char etc[512], p[512];
        snprintf(etc, sizeof(etc), "%s/etc", root);
        struct etc_set s = {0};
        struct tn_err *err = NULL;
        int r = etc_synthesize(m, etc, &l, &s, &err);
        put("root/etc/grows", "1234\nmore\n", 0644);
        path_of(p, sizeof(p), "root/etc/closes");
        chmod(p, 0600);
        mk("out3", 0755);
        path_of(p, sizeof(p), "out3");
        int fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (r == 0)
                r = etc_write(&s, fd, &err);
        close(fd);
        char got[64] = "";
        path_of(p, sizeof(p), "out3/grows");
        FILE *f = fopen(p, "re");
        size_t n = f ? fread(got, 1, sizeof(got) - 1, f) : 0;
        got[n] = '\0';
        if (f)
                fclose(f);
        ok(r == 0 && strcmp(got, "1234\n") == 0, "a file that grew is copied as long as it was");
        path_of(p, sizeof(p), "out3/closes");
        ok(access(p, F_OK) < 0, "a file others may no longer read is left out");
        etc_set_clear(&s);
        tn_err_free(err);
}

int main(void)
{
        if (!mkdtemp(base)) {
                ok(false, "mkdtemp");
                return tap_done();
        }
        chmod(base, 0755);
        make_host();
        _cleanup_manifest_ struct manifest *m = service();
        ok(m != NULL, "a host-system manifest parses");
        if (!m)
                return tap_done();
        char root[256], state[256];
        path_of(root, sizeof(root), "root");
        path_of(state, sizeof(state), "state");
        test_scan(root);
        test_cache(root, state);
        test_select(m, root);
        test_bytes(m, root);
        test_changed(m, root);

        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
        if (system(cmd) != 0)
                diag("cannot remove %s", base);
        return tap_done();
}
