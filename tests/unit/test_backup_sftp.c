/* test_backup_sftp.c — restic's sftp repository forms and tenantd's ssh command for them
 * (spec/backup_sftp.h): both forms, ports, IPv6, and what must never reach ssh's
 * command line (an option for a host or user, spaces or quotes in a path). */
#include <errno.h>
#include <string.h>

#include "spec/backup_sftp.h"
#include "tap.h"

static void test_parse(void)
{
        struct backup_sftp s;
        const char *why = NULL;
        is_int(backup_sftp_parse("sftp:restic@nas:/srv/restic", &s, &why), 0, "USER@HOST:PATH");
        is_str(s.user, "restic", "its user");
        is_str(s.host, "nas", "its host");
        is_int(s.port, 0, "no port: ssh's default");
        is_int(backup_sftp_parse("sftp:backup-box:/srv/restic", &s, &why), 0, "HOST:PATH");
        is_str(s.user, "", "no user: ssh's default");
        is_int(backup_sftp_parse("sftp://u@127.0.0.1:2222//srv/r", &s, &why), 0, "the URL form");
        ok(strcmp(s.host, "127.0.0.1") == 0 && s.port == 2222 && strcmp(s.user, "u") == 0,
           "its host, port and user (%s %u %s)", s.host, s.port, s.user);
        is_int(backup_sftp_parse("sftp://u@[2001:db8::1]:22//r", &s, &why), 0, "IPv6 in []");
        is_str(s.host, "2001:db8::1", "the address without []");
        is_int(backup_sftp_parse("sftp://[::1]//r", &s, &why), 0, "IPv6 without a port");
        ok(strcmp(s.host, "::1") == 0 && s.port == 0, "no port taken from the address");

        static const char *const bad[] = {
            "sftp:-oProxyCommand=x:/r",
            "sftp:u@-h:/r",
            "sftp:-l@h:/r",
            "sftp:u@h",
            "sftp://u@h:0//r",
            "sftp://u@h:65536//r",
            "sftp://u@h:2x//r",
            "sftp://u@h",
            "sftp://u@h/",
            "sftp:u@h a:/r",
            "sftp:u;x@h:/r",
            "sftp:u@h$(x):/r",
            "sftp:u@[::1]:/r",
            "/srv/r",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                why = NULL;
                ok(backup_sftp_parse(bad[i], &s, &why) == -EINVAL && why, "refused: %s (%s)",
                   bad[i], why ? why : "no reason");
        }
}

static void test_option(void)
{
        struct backup_sftp s;
        char buf[1024];
        backup_sftp_parse("sftp://restic@nas:2222//r", &s, NULL);
        is_int(backup_sftp_option(&s, "/etc/k", "/etc/kh", buf, sizeof(buf)), 0, "the option");
        is_str(buf,
               "sftp.command=/usr/bin/ssh -F /dev/null -i /etc/k -o IdentitiesOnly=yes -o "
               "IdentityAgent=none -o UserKnownHostsFile=/etc/kh -o GlobalKnownHostsFile=/dev/null "
               "-o StrictHostKeyChecking=yes -o UpdateHostKeys=no -o BatchMode=yes -o "
               "ConnectTimeout=30 -o ServerAliveInterval=15 -o ServerAliveCountMax=4 -p 2222 -l "
               "restic -s -- nas sftp",
               "no config, only this key and known_hosts, no prompt, the host after --");
        backup_sftp_parse("sftp:nas:/r", &s, NULL);
        backup_sftp_option(&s, "/etc/k", "/etc/kh", buf, sizeof(buf));
        ok(!strstr(buf, " -p ") && !strstr(buf, " -l "), "no port, no user: neither option");
        is_int(backup_sftp_option(&s, "/etc/k", "/etc/kh", buf, 40), -ENAMETOOLONG, "too long");
        ok(backup_sftp_path_ok("/etc/tenantd/backup_ed25519"), "a plain path may stand");
        ok(!backup_sftp_path_ok("/etc/a b") && !backup_sftp_path_ok("/etc/a\"b") &&
               !backup_sftp_path_ok("/etc/a'b") && !backup_sftp_path_ok("/etc/a\\b") &&
               !backup_sftp_path_ok("/etc/a\tb"),
           "a space, quote, backslash or tab may not");
}

int main(void)
{
        test_parse();
        test_option();
        return tap_done();
}
