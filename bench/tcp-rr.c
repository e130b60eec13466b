/* tcp-rr.c — netperf's TCP_RR, small: one TCP connection, a 1-byte request and a 1-byte
 * answer, back and forth, for SECONDS; prints "transactions=N per_second=R". For
 * bench/abuse-limits (netperf is not in Debian's main archive).
 *
 *   tcp-rr server PORT            answers every connection, one at a time, forever
 *   tcp-rr client ADDR PORT SECONDS */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nodelay(int fd)
{
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int main(int argc, char **argv)
{
        char b = 'x';
        if (argc == 3 && strcmp(argv[1], "server") == 0) {
                /* IPv6 and IPv4 alike: a dual-stack socket on :: */
                int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, zero = 0;
                struct sockaddr_in6 a = {.sin6_family = AF_INET6,
                                         .sin6_port = htons((uint16_t)atoi(argv[2]))};
                setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
                if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 16) < 0) {
                        perror("tcp-rr server");
                        return 1;
                }
                for (;;) {
                        int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
                        if (c < 0)
                                continue;
                        nodelay(c);
                        while (read(c, &b, 1) == 1 && write(c, &b, 1) == 1)
                                ;
                        close(c);
                }
        }
        if (argc == 5 && strcmp(argv[1], "client") == 0) {
                /* ADDR: IPv4 or IPv6 */
                uint16_t port = htons((uint16_t)atoi(argv[3]));
                struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = port};
                struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = port};
                bool v6 = strchr(argv[2], ':') != NULL;
                int s = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (s < 0 ||
                    (v6 ? inet_pton(AF_INET6, argv[2], &a6.sin6_addr)
                        : inet_pton(AF_INET, argv[2], &a.sin_addr)) != 1 ||
                    (v6 ? connect(s, (struct sockaddr *)&a6, sizeof(a6))
                        : connect(s, (struct sockaddr *)&a, sizeof(a))) < 0) {
                        perror("tcp-rr client");
                        return 1;
                }
                nodelay(s);
                double start = now(), end = start + atof(argv[4]), t = start;
                long n = 0;
                while (t < end) {
                        if (write(s, &b, 1) != 1 || read(s, &b, 1) != 1) {
                                perror("tcp-rr client");
                                return 1;
                        }
                        if (++n % 64 == 0)
                                t = now();
                }
                t = now();
                printf("transactions=%ld per_second=%.0f\n", n, (double)n / (t - start));
                return 0;
        }
        fprintf(stderr, "usage: tcp-rr server PORT | tcp-rr client ADDR PORT SECONDS\n");
        return 2;
}
