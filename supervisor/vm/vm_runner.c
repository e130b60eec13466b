/* vm_runner.c — starting the microVM runner (vm_runner.h): what `tenantctl run` and the
 * keeper do instead of driving libvirt themselves. Links no libvirt. */
#include "vm/vm_runner.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/cleanup.h"
#include "lib/fileio.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/trust.h"
#include "spec/manifest.h"

int tenantd_helper_find(const char *name, char out[PATH_MAX], struct tn_err **err)
{
        char self[PATH_MAX], candidates[2][PATH_MAX];
        size_t n = 0;
        ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (len > 0) {
                self[len] = '\0';
                if (snprintf(candidates[n], PATH_MAX, "%s/%s", dirname(self), name) < PATH_MAX)
                        n++;
        }
        if (snprintf(candidates[n], PATH_MAX, "%s/%s", TENANTD_LIBEXECDIR, name) < PATH_MAX)
                n++;
        for (size_t i = 0; i < n; i++) {
                if (access(candidates[i], X_OK) < 0)
                        continue;
                _cleanup_free_ char *real = NULL;
                int r = trust_check(candidates[i], TRUST_FILE, &real, err);
                if (r < 0)
                        return tn_err_wrap(err, "%s", name);
                if (snprintf(out, PATH_MAX, "%s", real ? real : candidates[i]) >= PATH_MAX)
                        return tn_err_setx(err, ENAMETOOLONG, "%s: path too long", candidates[i]);
                return 0;
        }
        return tn_err_setx(
            err, ENOENT, "there is no %s (looked for %s%s%s; make install puts it there)", name,
            n > 0 ? candidates[0] : "", n > 1 ? " and " : "", n > 1 ? candidates[1] : "");
}

int vm_runner_manifest_fd(const struct manifest *m, struct tn_err **err)
{
        _cleanup_free_ char *text = manifest_explain(m);
        if (!text)
                return tn_err_setx(err, ENOMEM, "out of memory");
        _cleanup_close_ int fd = memfd_create("tenantd-manifest", MFD_ALLOW_SEALING);
        if (fd < 0)
                return tn_err_set(err, errno, "memfd_create");
        size_t len = strlen(text), off = 0;
        while (off < len) {
                ssize_t w = write(fd, text + off, len - off);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return tn_err_set(err, errno, "write to the manifest memfd");
                off += (size_t)w;
        }
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0 ||
            lseek(fd, 0, SEEK_SET) < 0)
                return tn_err_set(err, errno, "seal the manifest memfd");
        return TAKE_FD(fd);
}

int vm_runner_manifest_read(int fd, struct manifest **ret)
{
        size_t max = json_limits_config.max_bytes, len = 0;
        _cleanup_free_ char *buf = NULL;
        int r = read_fd_bounded(fd, max, &buf, &len);
        close(fd);
        if (r == -EFBIG)
                log_error("the manifest on descriptor %d is longer than %zu bytes", fd, max);
        else if (r < 0)
                log_error("cannot read the manifest from descriptor %d: %s", fd, strerror(-r));
        if (r < 0)
                return r;
        struct diag_list diags = {0};
        r = manifest_parse(buf, len, ret, &diags);
        if (r < 0) {
                diag_print(&diags, "(manifest from the caller)", stderr);
                diag_list_clear(&diags);
        }
        return r;
}

int vm_runner_exec(const struct manifest *m, char **argv, const char *state_dir,
                   const char *storage_dir, const char *master_key, struct tn_err **err)
{
        char runner[PATH_MAX];
        int r = tenantd_helper_find(VM_RUNNER_NAME, runner, err);
        if (r < 0)
                return r;
        int fd = vm_runner_manifest_fd(m, err);
        if (fd < 0)
                return fd;
        if (!argv)
                argv = m->exec;
        size_t argc = 0;
        while (argv[argc])
                argc++;
        char fdstr[16];
        snprintf(fdstr, sizeof(fdstr), "%d", fd);
        _cleanup_free_ char **args = calloc(argc + 12, sizeof(*args));
        if (!args) {
                close(fd);
                return tn_err_setx(err, ENOMEM, "out of memory");
        }
        size_t i = 0;
        args[i++] = (char *)VM_RUNNER_NAME;
        args[i++] = (char *)"run";
        args[i++] = (char *)"--manifest-fd";
        args[i++] = fdstr;
        args[i++] = (char *)"--state";
        args[i++] = (char *)state_dir;
        args[i++] = (char *)"--storage";
        args[i++] = (char *)storage_dir;
        args[i++] = (char *)"--master-key";
        args[i++] = (char *)master_key;
        args[i++] = (char *)"--";
        memcpy(args + i, argv, argc * sizeof(*argv));
        execv(runner, args);
        r = tn_err_set(err, errno, "exec %s", runner);
        close(fd);
        return r;
}

int vm_runner_cleanup(const char *name, const char *state_dir, struct tn_err **err)
{
        char runner[PATH_MAX];
        int r = tenantd_helper_find(VM_RUNNER_NAME, runner, err);
        if (r < 0)
                return r;
        char *const args[] = {(char *)VM_RUNNER_NAME,
                              (char *)"cleanup",
                              (char *)"--state",
                              (char *)state_dir,
                              (char *)"--",
                              (char *)name,
                              NULL};
        pid_t pid = fork();
        if (pid < 0)
                return tn_err_set(err, errno, "fork");
        if (pid == 0) {
                /* Nothing of the caller's (tenantd's sockets, other tenants' pipes) goes
                 * to the runner; stdin is /dev/null, its messages go where the caller's do. */
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (null >= 0)
                        dup2(null, 0);
                close_range(3, ~0U, 0);
                execv(runner, args);
                _exit(127);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return tn_err_set(err, errno, "waitpid");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return tn_err_setx(err, EIO, "%s cleanup %s failed (status %d)", runner, name,
                                   WIFEXITED(status) ? WEXITSTATUS(status)
                                                     : 128 + WTERMSIG(status));
        return 0;
}
