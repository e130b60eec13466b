/* test_manifest_edit.c — `set --save` edits: a value replaced in place, comments and
 * layout kept, missing keys inserted, and the result still a valid manifest. */
#include <stdlib.h>
#include <string.h>

#include "spec/manifest.h"
#include "spec/manifest_edit.h"
#include "tap.h"

static char *edit(const char *text, const char *path, const char *value)
{
        char *out = NULL;
        size_t len;
        struct tn_err *err = NULL;
        if (manifest_text_set(text, strlen(text), path, value, &out, &len, &err) < 0) {
                diag("%s: %s", path, tn_err_msg(err));
                tn_err_free(err);
                return NULL;
        }
        ok(strlen(out) == len, "%s: length is right", path);
        return out;
}

static bool parses(const char *text)
{
        struct manifest *m = NULL;
        struct diag_list d = {0};
        int r = manifest_parse(text, strlen(text), &m, &d);
        if (r < 0)
                diag_print(&d, "edited", stderr);
        diag_list_clear(&d);
        manifest_free(m);
        return r == 0;
}

int main(void)
{
        const char *base =
            "// my service\n"
            "{\n"
            "  \"name\": \"web\", // the name\n"
            "  \"exec\": [\"/bin/true\"],\n"
            "  \"cpu\": { \"max\": 1.5 /* generous */, \"weight\": 100 },\n"
            "  \"network\": { \"mode\": \"private\", \"egress\": { \"rate\": \"20mbit\" } }\n"
            "}\n";
        char *t = edit(base, "cpu.max", "0.5");
        ok(t && strstr(t, "\"max\": 0.5 /* generous */"),
           "a number replaced in place, comment kept");
        ok(t && strstr(t, "// my service") && strstr(t, "// the name"), "other comments kept");
        ok(t && parses(t), "the result is a valid manifest");
        free(t);

        t = edit(base, "network.egress.rate", "\"5mbit\"");
        ok(t && strstr(t, "\"egress\": { \"rate\": \"5mbit\" }"), "a string replaced in place");
        ok(t && parses(t), "still valid");
        free(t);

        t = edit(base, "memory.max", "\"256M\"");
        ok(t && strstr(t, "{ \"memory\": { \"max\": \"256M\" },"), "a missing section is inserted");
        ok(t && parses(t), "still valid");
        free(t);

        t = edit(base, "network.ingress.rate", "\"1mbit\"");
        ok(t && strstr(t, "\"network\": { \"ingress\": { \"rate\": \"1mbit\" }, \"mode\""),
           "a missing key is inserted into the existing object");
        ok(t && parses(t), "still valid");
        free(t);

        t = edit("{\"name\": \"a\", \"exec\": [\"/x\"], \"pids\": {}}", "pids.max", "64");
        ok(t && strcmp(t, "{\"name\": \"a\", \"exec\": [\"/x\"], \"pids\": { \"max\": 64 }}") == 0,
           "an empty object gets the key");
        free(t);

        t = edit("{\"name\": \"a\\\"b\", \"x\": \"q\\\\\"}", "x", "1");
        ok(t && strcmp(t, "{\"name\": \"a\\\"b\", \"x\": 1}") == 0,
           "escapes in strings are skipped");
        free(t);

        const char *vols = "{\"name\": \"a\", \"exec\": [\"/x\"], \"volumes\": [\n"
                           "  {\"name\": \"logs\", \"target\": \"/l\", \"size\": \"20M\"},\n"
                           "  {\"name\": \"data\", \"target\": \"/d\", \"size\": \"16M\"}]}";
        t = edit(vols, "volumes[data].size", "\"32M\"");
        ok(t && strstr(t, "\"target\": \"/d\", \"size\": \"32M\"") &&
               strstr(t, "\"target\": \"/l\", \"size\": \"20M\""),
           "volumes[data].size: the entry named data is changed, the other not");
        ok(t && parses(t), "still valid");
        free(t);
        t = edit(vols, "volumes[logs].io.write", "\"5M\"");
        ok(t && strstr(t, "{ \"io\": { \"write\": \"5M\" },\"name\": \"logs\""),
           "a missing object is inserted into the named entry");
        ok(t && parses(t), "still valid");
        free(t);
        static const char *const bad_sel[] = {"volumes[nope].size", "volumes[].size",
                                              "volumes[data]", "volumes[data.size",
                                              "name[data].size"};
        for (size_t i = 0; i < sizeof(bad_sel) / sizeof(bad_sel[0]); i++) {
                char *o = NULL;
                size_t l;
                struct tn_err *e = NULL;
                int r = manifest_text_set(vols, strlen(vols), bad_sel[i], "1", &o, &l, &e);
                ok(r < 0 && !o && e, "%s is refused: %s", bad_sel[i],
                   e ? tn_err_msg(e) : "(no message)");
                tn_err_free(e);
        }

        char *out = NULL;
        size_t len;
        struct tn_err *err = NULL;
        ok(manifest_text_set(base, strlen(base), "cpu", "1", &out, &len, &err) < 0 && !out,
           "replacing an object is refused");
        tn_err_free(err);
        err = NULL;
        ok(manifest_text_set(base, strlen(base), "exec.x", "1", &out, &len, &err) < 0,
           "a path through an array is refused");
        tn_err_free(err);
        err = NULL;
        ok(manifest_text_set("{ broken", 8, "a", "1", &out, &len, &err) < 0 && err &&
               strstr(tn_err_msg(err), "1:"),
           "a broken file is refused with its position");
        tn_err_free(err);
        return tap_done();
}
