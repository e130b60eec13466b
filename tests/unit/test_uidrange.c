/* test_uidrange.c — the host id health probes run as (uidrange_probe_id): just below the
 * first tenant range, and refused when a recorded range, an account or a group holds it.
 * Works in a temporary state directory of its own. */
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "host/uidrange.h"

static void write_ranges(const char *dir, const char *text)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/uidranges", dir);
        FILE *f = fopen(path, "we");
        if (f) {
                fputs(text, f);
                fclose(f);
        }
}

int main(void)
{
        char dir[] = "/tmp/test-uidrange.XXXXXX";
        if (!mkdtemp(dir)) {
                ok(false, "mkdtemp");
                return tap_done();
        }
        struct tn_err *err = NULL;
        uint32_t id = 0;

        int r = uidrange_probe_id(dir, UIDRANGE_DEFAULT_BASE, &id, &err);
        ok(r == 0 && id == UIDRANGE_DEFAULT_BASE - 1,
           "with no state yet the probe id is the one below the first range (%u)", id);
        tn_err_free(err);
        err = NULL;

        /* A tenant's range recorded by a supervisor that started lower. */
        write_ranges(dir, "a 1073676288\n"); /* 2^30 - 65536: ends at 2^30 - 1 */
        id = 7;
        r = uidrange_probe_id(dir, UIDRANGE_DEFAULT_BASE, &id, &err);
        ok(r == -EEXIST && id == 7 && strstr(tn_err_msg(err), "tenant's range"),
           "a recorded tenant range holding it is refused, the output untouched (%s)",
           r < 0 ? tn_err_msg(err) : "accepted");
        tn_err_free(err);
        err = NULL;

        /* Ranges elsewhere do not matter. */
        write_ranges(dir, "a 1073741824\nb 1073807360\n");
        r = uidrange_probe_id(dir, UIDRANGE_DEFAULT_BASE, &id, &err);
        ok(r == 0 && id == UIDRANGE_DEFAULT_BASE - 1, "ranges above it do not matter");
        tn_err_free(err);
        err = NULL;

        /* An account's uid: 1 is "daemon" on Debian (any account with uid 1 will do). */
        if (!getpwuid(1)) {
                skip("no account has uid 1 here");
        } else {
                r = uidrange_probe_id(dir, 1 + 1, &id, &err);
                ok(r == -EEXIST && strstr(tn_err_msg(err), "account"),
                   "an id that an account has is refused (%s)",
                   r < 0 ? tn_err_msg(err) : "accepted");
                tn_err_free(err);
                err = NULL;
        }

        r = uidrange_probe_id(dir, 1, &id, &err);
        ok(r == -EINVAL, "no id below a first range at 1 (root is never a probe)");
        tn_err_free(err);

        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                diag("could not remove %s", dir);
        return tap_done();
}
