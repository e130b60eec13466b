/* monitor_glue.c — between tenantd's loop and the quota monitor (see monitor_glue.h). */
#include "monitor_glue.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "json.h"
#include "log.h"

void monitor_glue_attach(struct daemon *d, struct tenant *t)
{
        (void)d;
        (void)t;
}

void monitor_glue_detach(struct daemon *d, struct tenant *t)
{
        (void)d;
        (void)t;
}

void monitor_glue_forget(struct daemon *d, struct tenant *t)
{
        monitor_glue_detach(d, t);
}

void monitor_glue_sample(struct daemon *d, uint64_t now_ms)
{
        (void)d;
        (void)now_ms;
}

void monitor_glue_alert_crashloop(struct daemon *d, struct tenant *t)
{
        (void)d;
        log_warning("alert=raised tenant=%s quota=restarts usage=%u limit=%u", t->name,
                    t->consecutive, t->m->restart.burst);
}

void monitor_glue_gen_usage(struct daemon *d, struct json_gen *g, const struct tenant *t)
{
        (void)d;
        (void)g;
        (void)t;
}

/* The mount points of the tenant as its own init sees them (field 5 of mountinfo),
 * read from the host. The tenant cannot change its mounts (its mount namespace
 * belongs to the host's user namespace), but the text is still bounded and escaped. */
void monitor_glue_gen_mounts_seen(struct daemon *d, struct json_gen *g, const struct tenant *t)
{
        (void)d;
        json_gen_key(g, "mounts_seen");
        if (t->state != TENANT_RUNNING || t->init_pid <= 0) {
                json_gen_null(g);
                return;
        }
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)t->init_pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        json_gen_array_open(g);
        char line[4096];
        for (int n = 0; f && n < 256 && fgets(line, sizeof(line), f); n++) {
                char target[4096], opts[4096], fstype[256];
                /* id parent major:minor root target options ... - fstype source superopts */
                if (sscanf(line, "%*s %*s %*s %*s %4095s %4095s", target, opts) != 2)
                        continue;
                char *dash = strstr(line, " - ");
                if (!dash || sscanf(dash + 3, "%255s", fstype) != 1)
                        continue;
                json_gen_object_open(g);
                json_gen_key(g, "target");
                json_gen_string(g, target);
                json_gen_key(g, "fstype");
                json_gen_string(g, fstype);
                json_gen_key(g, "mode");
                json_gen_string(
                    g, strncmp(opts, "ro", 2) == 0 && (opts[2] == ',' || !opts[2]) ? "ro" : "rw");
                json_gen_object_close(g);
        }
        json_gen_array_close(g);
}

int monitor_glue_set(struct daemon *d, struct tenant *t, const struct json_value *req, char *msg,
                     size_t len)
{
        (void)d;
        (void)req;
        snprintf(msg, len, "%s: live changes are not available yet", t->name);
        return -EOPNOTSUPP;
}
