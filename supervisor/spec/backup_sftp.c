/* backup_sftp.c — restic's sftp repository forms and tenantd's ssh command for them
 * (backup_sftp.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/backup_sftp.h"

#define SSH "/usr/bin/ssh"

bool backup_is_sftp(const char *repository)
{
        return repository && strncmp(repository, "sftp:", 5) == 0;
}

static bool user_ok(const char *s, size_t n)
{
        if (n == 0 || n > BACKUP_SFTP_USER_MAX || s[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
                            s[i]))
                        return false;
        return true;
}

/* A DNS name or IPv4 address (letters, digits, "." and "-"), or with v6 an IPv6
 * address (hex digits, ":" and "."). */
static bool host_ok(const char *s, size_t n, bool v6)
{
        if (n == 0 || n > BACKUP_SFTP_HOST_MAX || s[0] == '-' || s[0] == '.')
                return false;
        const char *allowed =
            v6 ? "0123456789abcdefABCDEF:."
               : "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-";
        for (size_t i = 0; i < n; i++)
                if (!strchr(allowed, s[i]))
                        return false;
        return true;
}

static int fail(const char **ret_why, const char *why)
{
        if (ret_why)
                *ret_why = why;
        return -EINVAL;
}

/* "[USER@]HOST" of s (n bytes) into ret; HOST may be "[IPv6]" when brackets is true. */
static int user_host(const char *s, size_t n, bool brackets, struct backup_sftp *ret,
                     const char **ret_why)
{
        const char *at = memchr(s, '@', n);
        if (at) {
                size_t un = (size_t)(at - s);
                if (!user_ok(s, un))
                        return fail(ret_why, "the user before \"@\" must be letters, digits, "
                                             "\".\", \"_\" or \"-\" (not first), at most 64");
                memcpy(ret->user, s, un);
                ret->user[un] = '\0';
                n -= un + 1;
                s = at + 1;
        }
        bool v6 = brackets && n >= 2 && s[0] == '[' && s[n - 1] == ']';
        if (v6) {
                s++;
                n -= 2;
        }
        if (!host_ok(s, n, v6))
                return fail(ret_why, "the host must be a DNS name, an IPv4 address or, in the "
                                     "sftp://USER@[ADDRESS]:PORT/PATH form, an IPv6 address");
        memcpy(ret->host, s, n);
        ret->host[n] = '\0';
        return 0;
}

int backup_sftp_parse(const char *repository, struct backup_sftp *ret, const char **ret_why)
{
        struct backup_sftp s = {0};
        if (!backup_is_sftp(repository))
                return fail(ret_why, "not an sftp repository");
        const char *p = repository + 5;
        if (strncmp(p, "//", 2) == 0) {
                p += 2;
                size_t n = strcspn(p, "/");
                if (!p[n] || !p[n + 1])
                        return fail(ret_why, "names no path after the host; expected "
                                             "sftp://USER@HOST:PORT//ABSOLUTE/PATH");
                /* a port: digits after the last ":" that is outside [] */
                size_t hn = n;
                const char *colon = NULL;
                for (size_t i = n; i > 0; i--) {
                        if (p[i - 1] == ']')
                                break;
                        if (p[i - 1] == ':') {
                                colon = p + i - 1;
                                break;
                        }
                }
                if (colon) {
                        hn = (size_t)(colon - p);
                        unsigned long port = 0;
                        size_t dn = n - hn - 1;
                        for (size_t i = 0; i < dn; i++) {
                                if (colon[1 + i] < '0' || colon[1 + i] > '9' || i >= 5)
                                        return fail(ret_why, "the port after the host must be a "
                                                             "number from 1 to 65535");
                                port = port * 10 + (unsigned long)(colon[1 + i] - '0');
                        }
                        if (port < 1 || port > 65535)
                                return fail(ret_why,
                                            "the port after the host must be a number from 1 to "
                                            "65535");
                        s.port = (uint16_t)port;
                }
                if (user_host(p, hn, true, &s, ret_why) < 0)
                        return -EINVAL;
        } else {
                const char *colon = strchr(p, ':');
                if (!colon || !colon[1])
                        return fail(ret_why, "expected sftp:USER@HOST:/PATH (or "
                                             "sftp://USER@HOST:PORT//PATH for another port)");
                if (user_host(p, (size_t)(colon - p), false, &s, ret_why) < 0)
                        return -EINVAL;
        }
        *ret = s;
        return 0;
}

bool backup_sftp_path_ok(const char *path)
{
        for (const char *p = path; *p; p++)
                if (*p == ' ' || (*p >= '\t' && *p <= '\r') || *p == '"' || *p == '\'' ||
                    *p == '\\')
                        return false;
        return true;
}

int backup_sftp_option(const struct backup_sftp *s, const char *key, const char *known_hosts,
                       char *buf, size_t len)
{
        /* -F /dev/null: neither ~/.ssh/config nor /etc/ssh/ssh_config changes what runs.
         * Only this key (IdentitiesOnly, no agent), only this known_hosts (no global one),
         * an unknown or changed host key is refused (StrictHostKeyChecking), and nothing
         * ever asks (BatchMode). A server that stops answering ends the backup within
         * about a minute instead of holding it (and the schedule) forever. "-s" asks for
         * the sftp subsystem; "--" ends ssh's options before the host. */
        char port[16] = "";
        if (s->port)
                snprintf(port, sizeof(port), " -p %u", (unsigned)s->port);
        int n = snprintf(buf, len,
                         "sftp.command=" SSH " -F /dev/null -i %s -o IdentitiesOnly=yes"
                         " -o IdentityAgent=none -o UserKnownHostsFile=%s"
                         " -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes"
                         " -o UpdateHostKeys=no -o BatchMode=yes -o ConnectTimeout=30"
                         " -o ServerAliveInterval=15 -o ServerAliveCountMax=4%s%s%s -s -- %s sftp",
                         key, known_hosts, port, s->user[0] ? " -l " : "", s->user, s->host);
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
