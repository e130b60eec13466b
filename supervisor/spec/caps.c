/* caps.c — capability names and the sandbox grant rules (see caps.h). */
#include "spec/caps.h"

#include <ctype.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cap-ng.h>
#include <linux/capability.h>

#include "lib/strutil.h"

int caps_from_name(const char *name)
{
        char lower[64];
        if (strncasecmp(name, "cap_", 4) == 0)
                name += 4;
        size_t n = strlen(name);
        if (n == 0 || n >= sizeof(lower))
                return -1;
        for (size_t i = 0; i <= n; i++)
                lower[i] = (char)tolower((unsigned char)name[i]);
        int cap = capng_name_to_capability(lower);
        return cap >= 0 && cap <= CAP_LAST_CAP ? cap : -1;
}

const char *caps_to_name(int cap, char *buf, size_t len)
{
        const char *n = cap >= 0 ? capng_capability_to_name((unsigned)cap) : NULL;
        if (!n) {
                snprintf(buf, len, "CAP_%d", cap);
                return buf;
        }
        size_t off = (size_t)snprintf(buf, len, "CAP_");
        for (size_t i = 0; n[i] && off + 1 < len; i++)
                buf[off++] = (char)toupper((unsigned char)n[i]);
        buf[off < len ? off : len - 1] = '\0';
        return buf;
}

const char *caps_suggest(const char *name, char *buf, size_t len)
{
        char names[CAP_LAST_CAP + 1][48];
        const char *cands[CAP_LAST_CAP + 1];
        size_t n = 0;
        char upper[64];
        size_t i;
        for (i = 0; name[i] && i + 1 < sizeof(upper); i++)
                upper[i] = (char)toupper((unsigned char)name[i]);
        upper[i] = '\0';
        const char *word = upper;
        char prefixed[72];
        if (strncmp(upper, "CAP_", 4) != 0) {
                snprintf(prefixed, sizeof(prefixed), "CAP_%s", upper);
                word = prefixed;
        }
        for (int c = 0; c <= CAP_LAST_CAP; c++) {
                caps_to_name(c, names[n], sizeof(names[n]));
                cands[n] = names[n];
                n++;
        }
        const char *best = suggest_nearest(word, cands, n);
        if (!best)
                return NULL;
        snprintf(buf, len, "%s", best);
        return buf;
}

bool caps_forbidden_in_sandbox(int cap, const char **ret_why)
{
        static const struct {
                int cap;
                const char *why;
        } forbidden[] = {
            {CAP_SYS_ADMIN, "it opens mount, namespace and many driver interfaces"},
            {CAP_SYS_MODULE, "it loads kernel code"},
            {CAP_SYS_RAWIO, "it gives raw device and port I/O"},
            {CAP_SYS_BOOT, "it reboots or kexecs the host"},
            {CAP_SYS_TIME, "it sets the host's clock"},
            {CAP_SYS_PTRACE, "it inspects and rewrites other processes"},
            {CAP_SYS_PACCT, "it controls process accounting"},
            {CAP_SYS_TTY_CONFIG, "it reconfigures terminals"},
            {CAP_DAC_READ_SEARCH, "it allows open_by_handle_at, which escapes mounts"},
            {CAP_NET_ADMIN, "it reconfigures interfaces, routes and firewall rules"},
            {CAP_MAC_ADMIN, "it changes the host's MAC policy"},
            {CAP_MAC_OVERRIDE, "it bypasses the host's MAC policy"},
            {CAP_SYSLOG, "it reads and clears the kernel log"},
            {CAP_AUDIT_CONTROL, "it changes the host's audit rules"},
            {CAP_AUDIT_READ, "it reads the host's audit log"},
            {CAP_LINUX_IMMUTABLE, "it changes immutable and append-only file flags"},
            {CAP_MKNOD, "it creates device nodes"},
            {CAP_WAKE_ALARM, "it wakes the host from suspend"},
            {CAP_BLOCK_SUSPEND, "it prevents the host from suspending"},
            {CAP_BPF, "it loads BPF programs into the kernel"},
            {CAP_PERFMON, "it opens the performance monitoring interfaces"},
            {CAP_CHECKPOINT_RESTORE, "it rewrites other processes' state"},
            {CAP_SETFCAP, "it grants file capabilities that survive exec"},
        };
        for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
                if (forbidden[i].cap == cap) {
                        if (ret_why)
                                *ret_why = forbidden[i].why;
                        return true;
                }
        }
        return false;
}

int caps_apply(const int *caps, size_t n, uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups,
               struct tn_err **err)
{
        capng_clear(CAPNG_SELECT_ALL);
        for (size_t i = 0; i < n; i++)
                if (capng_update(CAPNG_ADD,
                                 CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_INHERITABLE |
                                     CAPNG_BOUNDING_SET,
                                 (unsigned)caps[i]) < 0)
                        return tn_err_setx(err, EINVAL, "unknown capability %d", caps[i]);
        /* Bounding set first: dropping from it needs CAP_SETPCAP, gone after the
         * switch below. */
        if (capng_apply(CAPNG_SELECT_BOUNDS) < 0)
                return tn_err_set(err, errno, "cannot limit the capability bounding set");
        if (setgroups(ngroups, groups) < 0)
                return tn_err_set(err, errno, "setgroups");
        if (capng_change_id((int)uid, (int)gid, CAPNG_NO_FLAG) < 0)
                return tn_err_set(err, errno, "cannot switch to uid %u gid %u", (unsigned)uid,
                                  (unsigned)gid);
        for (size_t i = 0; i < n; i++)
                capng_update(CAPNG_ADD, CAPNG_AMBIENT, (unsigned)caps[i]);
        if (capng_apply(CAPNG_SELECT_AMBIENT) < 0)
                return tn_err_set(err, errno, "cannot set ambient capabilities");
        return 0;
}
