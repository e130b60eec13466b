/* launch.c — manifest loading and policy resolution shared by run and tenantd. */
#include "spec/launch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spec/caps.h"
#include "lib/fileio.h"
#include "lib/json.h"
#include "spec/policy.h"
#include "lib/trust.h"

int manifest_load(const char *path, bool trusted_only, struct manifest **ret, char **ret_diags,
                  struct tn_err **err)
{
        /* Read from the real path that was checked; messages name the path as given. */
        _cleanup_free_ char *real = NULL;
        if (trusted_only) {
                int r = trust_check(path, TRUST_FILE, &real, err);
                if (r < 0) {
                        (void)tn_err_wrap(err, "untrusted manifest refused");
                        return r;
                }
        }
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r =
            read_file_bounded(real ? real : path, json_limits_config.max_bytes, &buf, &len, err);
        if (r < 0)
                return r;
        struct diag_list diags = {0};
        r = manifest_parse(buf, len, ret, &diags);
        if (r < 0) {
                char *text = NULL;
                size_t text_len = 0;
                FILE *f = open_memstream(&text, &text_len);
                if (f) {
                        diag_print(&diags, path, f);
                        fclose(f);
                }
                diag_list_clear(&diags);
                if (!text)
                        return tn_err_setx(err, ENOMEM, "out of memory");
                *ret_diags = text;
                return -EINVAL;
        }
        diag_list_clear(&diags);
        return 0;
}

int launch_resolve_caps(const struct manifest *m, int **ret_caps, size_t *ret_n,
                        struct tn_err **err)
{
        int r;
        _cleanup_free_ int *caps = calloc(64, sizeof(*caps));
        size_t n = 0;
        if (!caps)
                return tn_err_setx(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < m->policy.capabilities_n; i++) {
                const char *name = m->policy.capabilities[i];
                int one[1];
                const int *list = one;
                size_t count = 1;
                _cleanup_capset_ struct capset *set = NULL;
                if (name[0] == '@') {
                        r = capset_load(name + 1, &set, err);
                        if (r < 0)
                                return tn_err_wrap(err, "policy.capabilities");
                        count = set->n_caps;
                        list = NULL;
                } else {
                        one[0] = caps_from_name(name);
                }
                for (size_t k = 0; k < count; k++) {
                        int cap = list ? list[k] : set->caps[k].cap;
                        bool seen = false;
                        for (size_t j = 0; j < n; j++)
                                seen |= caps[j] == cap;
                        if (!seen && n < 64)
                                caps[n++] = cap;
                }
        }
        *ret_caps = TAKE_PTR(caps);
        *ret_n = n;
        return 0;
}

int launch_resolve_policy(const struct manifest *m, const char *state_dir,
                          struct policy_bpf **ret_bpf, int **ret_caps, size_t *ret_n,
                          struct tn_err **err)
{
        _cleanup_policy_ struct policy *p = NULL;
        int r = policy_load(m->policy.seccomp, &p, err);
        if (r < 0)
                return tn_err_wrap(err, "policy.seccomp");
        char cache[4096];
        snprintf(cache, sizeof(cache), "%s/seccomp-cache", state_dir);
        (void)mkdir(state_dir, 0700);
        _cleanup_(policy_bpf_freep) struct policy_bpf *bpf = NULL;
        r = policy_compile_cached(p, cache, &bpf, err);
        if (r < 0)
                return tn_err_wrap(err, "policy.seccomp");

        _cleanup_free_ int *caps = NULL;
        size_t n = 0;
        r = launch_resolve_caps(m, &caps, &n, err);
        if (r < 0)
                return r;
        *ret_bpf = TAKE_PTR(bpf);
        *ret_caps = TAKE_PTR(caps);
        *ret_n = n;
        return 0;
}
