/* volume_probe.c — drives storage/volume.c for test_volumes.sh, as tenantd will:
 *   volume_probe open STORAGE TENANT NAME SIZE UID:GID [noexec]   prints the mount point
 *   volume_probe close TENANT NAME */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/units.h"
#include "storage/volume.h"

int main(int argc, char **argv)
{
        struct tn_err *err = NULL;
        if (argc >= 7 && strcmp(argv[1], "open") == 0) {
                char why[UNITS_WHY_MAX];
                unsigned uid, gid;
                struct volume_spec vs = {.name = argv[4],
                                         .encrypt = false,
                                         .noexec = argc > 7 && strcmp(argv[7], "noexec") == 0};
                if (parse_size(argv[5], &vs.size, why, sizeof(why)) < 0 ||
                    sscanf(argv[6], "%u:%u", &uid, &gid) != 2) {
                        fprintf(stderr, "volume_probe: bad size or UID:GID\n");
                        return 2;
                }
                struct volume_host v;
                if (volume_open(argv[2], "", argv[3], &vs, uid, gid, &v, &err) < 0) {
                        fprintf(stderr, "volume_probe: %s\n", tn_err_msg(err));
                        tn_err_free(err);
                        return 1;
                }
                printf("%s\n", v.mount);
                return 0;
        }
        if (argc == 4 && strcmp(argv[1], "close") == 0) {
                if (volume_close(argv[2], argv[3], &err) < 0) {
                        fprintf(stderr, "volume_probe: %s\n", tn_err_msg(err));
                        tn_err_free(err);
                        return 1;
                }
                return 0;
        }
        fprintf(stderr, "usage: volume_probe open STORAGE TENANT NAME SIZE UID:GID [noexec]\n"
                        "       volume_probe close TENANT NAME\n");
        return 2;
}
