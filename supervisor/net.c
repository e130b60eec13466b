/* net.c — see net.h. */
#include "net.h"

#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static int write_sysctl(const char *path, const char *value, struct tn_err **err)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || write(fd, value, strlen(value)) < 0)
                return tn_err_set(err, errno, "cannot set %s", path);
        return 0;
}

int net_setup_namespace(uint32_t id_base, struct tn_err **err)
{
        _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return tn_err_set(err, errno, "socket");
        struct ifreq ifr = {0};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
        if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                return tn_err_set(err, errno, "cannot read the flags of lo");
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
                return tn_err_set(err, errno, "cannot bring lo up");

        /* Both files are per network namespace: what is written here applies to the
         * tenant's namespace only. */
        int r = write_sysctl("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0", err);
        if (r < 0)
                return r;
        char range[32];
        snprintf(range, sizeof(range), "%u %u", id_base, id_base + 65535);
        return write_sysctl("/proc/sys/net/ipv4/ping_group_range", range, err);
}
