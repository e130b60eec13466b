/* backup_sftp.h — a restic sftp repository (backup.repository "sftp:..."), and the ssh
 * command tenantd hands restic for it (restic's -o sftp.command=...): ssh with the
 * manifest's key and known_hosts only, no ssh config, no agent, no prompt
 * (docs/backup.md#sftp). Pure: the manifest parser checks with it, the backup worker
 * builds restic's option with it, the unit test drives both. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BACKUP_SFTP_USER_MAX 64
#define BACKUP_SFTP_HOST_MAX 253

/* Where an sftp repository lives. */
struct backup_sftp {
        char user[BACKUP_SFTP_USER_MAX + 1]; /* "": ssh's default (root's own name) */
        char host[BACKUP_SFTP_HOST_MAX + 1]; /* a name, an IPv4 or an IPv6 address (no []) */
        uint16_t port;                       /* 0: ssh's default, 22 */
};

/* The repository names restic's sftp backend. */
bool backup_is_sftp(const char *repository);

/* Parses restic's two sftp forms, "sftp:[USER@]HOST:PATH" and
 * "sftp://[USER@]HOST[:PORT]/PATH" (HOST may be "[IPv6]" there). A user is letters,
 * digits, ".", "_" and "-"; a host a DNS name or an address; neither may start with "-"
 * (they become ssh's arguments). 0, or -EINVAL with *ret_why saying what is wrong
 * (static text). */
int backup_sftp_parse(const char *repository, struct backup_sftp *ret, const char **ret_why);

/* A host path that may stand in ssh's command line as restic splits it: no white space,
 * no quote and no backslash (restic's splitting of sftp.command differs between
 * versions in how it reads those). */
bool backup_sftp_path_ok(const char *path);

/* restic's option "sftp.command=/usr/bin/ssh ... HOST sftp" for s with the identity file
 * `key` and the known hosts file `known_hosts`, in buf. 0, or -ENAMETOOLONG. */
int backup_sftp_option(const struct backup_sftp *s, const char *key, const char *known_hosts,
                       char *buf, size_t len);
