#!/usr/bin/env python3
# abuse_peer.py — both ends of the abuse tests (test_abuse_limits.sh): a hostile tenant's
# traffic and the sink it is aimed at, and a relay that makes a tap behave as a guest
# with a real network stack. Traffic goes only to the addresses given, which the test
# owns (network namespaces it created).
#
#   abuse_peer.py sink STATEFILE TCPPORT[,TCPPORT...] UDPPORT
#       accepts and holds every TCP connection on the ports until its client closes it,
#       counts UDP datagrams on
#       UDPPORT, and rewrites STATEFILE every 100 ms: "open=N accepted=A udp=U" and one
#       "port P accepted=A" line per port
#   abuse_peer.py conns HOST PORT N HOLD
#       tries N connections one after the other (3 s each), keeps those that are
#       established open, prints "established=E refused=R timeout=T", then holds them
#       HOLD seconds
#   abuse_peer.py connect HOST PORT
#       one connection: prints "connected", "refused" or "timeout"
#   abuse_peer.py burst HOST PORT N
#       N connections as fast as it can, each closed once established; prints
#       "established=E refused=R timeout=T seconds=S"
#   abuse_peer.py scan HOST FIRSTPORT N
#       one TCP connection attempt to each of N ports from FIRSTPORT (1 s each, closed
#       at once); prints "open=O refused=R timeout=T seconds=S"
#   abuse_peer.py udpflood HOST PORT SECONDS
#       small UDP datagrams as fast as it can for SECONDS; prints "sent=N"
#   abuse_peer.py relay TAP NETNS IFNAME GUESTIF
#       opens the persistent tap TAP as QEMU would, enters network namespace NETNS
#       (/run/netns/NETNS) and copies frames between the tap and IFNAME there (one end
#       of a veth pair whose other end GUESTIF, with the tenant's address and MAC, is
#       the guest's eth0): the namespace's kernel plays the guest. Prints "relaying".
#
# Exit 0, or 2 on bad usage.
import array
import ctypes
import errno
import fcntl
import os
import resource
import select
import socket
import struct
import sys
import time


def usage():
    sys.stderr.write(open(__file__).read().split("\n\n")[0] + "\n")
    sys.exit(2)


def sink(statefile, tcp_ports, udp_port):
    listeners = {}
    for p in tcp_ports:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", p))
        s.listen(4096)
        s.setblocking(False)
        listeners[s] = p
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", udp_port))
    u.setblocking(False)
    held = {}  # fd -> socket, closed when the client closes
    accepted = {p: 0 for p in tcp_ports}
    udp = 0
    last = 0.0
    poll = select.poll()
    for s in listeners:
        poll.register(s, select.POLLIN)
    poll.register(u, select.POLLIN)
    while True:
        for fd, _ in poll.poll(50):
            if fd == u.fileno():
                while True:
                    try:
                        u.recv(2048)
                        udp += 1
                    except BlockingIOError:
                        break
                continue
            if fd in held:
                try:
                    data = held[fd].recv(4096)
                except OSError:
                    data = b""
                if not data:
                    poll.unregister(fd)
                    held.pop(fd).close()
                continue
            for s, p in listeners.items():
                if s.fileno() != fd:
                    continue
                while True:
                    try:
                        c, _ = s.accept()
                    except BlockingIOError:
                        break
                    except OSError as e:  # out of descriptors: refuse, count nothing
                        if e.errno in (errno.EMFILE, errno.ENFILE):
                            break
                        raise
                    c.setblocking(False)
                    held[c.fileno()] = c
                    poll.register(c, select.POLLIN)
                    accepted[p] += 1
        now = time.monotonic()
        if now - last >= 0.1:
            last = now
            tmp = statefile + ".tmp"
            with open(tmp, "w") as f:
                f.write("open=%d accepted=%d udp=%d\n" % (len(held), sum(accepted.values()), udp))
                for p in tcp_ports:
                    f.write("port %d accepted=%d\n" % (p, accepted[p]))
            os.rename(tmp, statefile)


def try_connect(host, port, timeout=3.0):
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        return "connected", s
    except ConnectionRefusedError:
        s.close()
        return "refused", None
    except (socket.timeout, OSError):
        s.close()
        return "timeout", None


def conns(host, port, n, hold):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    kept, counts = [], {"connected": 0, "refused": 0, "timeout": 0}
    for _ in range(n):
        what, s = try_connect(host, port)
        counts[what] += 1
        if s:
            kept.append(s)
    print("established=%d refused=%d timeout=%d" % (counts["connected"], counts["refused"],
                                                    counts["timeout"]), flush=True)
    time.sleep(hold)


def burst(host, port, n):
    counts = {"connected": 0, "refused": 0, "timeout": 0}
    start = time.monotonic()
    for _ in range(n):
        what, s = try_connect(host, port, 1.0)
        counts[what] += 1
        if s:
            s.close()
    print("established=%d refused=%d timeout=%d seconds=%.3f" % (
        counts["connected"], counts["refused"], counts["timeout"], time.monotonic() - start),
        flush=True)


def scan(host, first, n):
    counts = {"connected": 0, "refused": 0, "timeout": 0}
    start = time.monotonic()
    for port in range(first, first + n):
        what, s = try_connect(host, port, 1.0)
        counts[what] += 1
        if s:
            s.close()
    print("open=%d refused=%d timeout=%d seconds=%.3f" % (
        counts["connected"], counts["refused"], counts["timeout"], time.monotonic() - start),
        flush=True)


def udpflood(host, port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    end = time.monotonic() + seconds
    sent = 0
    data = b"x" * 16
    while time.monotonic() < end:
        for _ in range(100):
            try:
                s.sendto(data, (host, port))
                sent += 1
            except (BlockingIOError, OSError):
                pass
    print("sent=%d" % sent, flush=True)


def relay(tap, netns, ifname, guestif):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    ifr = struct.pack("16sH", tap.encode(), 0x0002 | 0x1000)  # IFF_TAP | IFF_NO_PI
    fcntl.ioctl(fd, 0x400454CA, ifr)  # TUNSETIFF
    # The bridge port forwards once the kernel's link watch has seen the carrier, up to a
    # second later; its sysfs file is the host's, so read before entering NETNS.
    state = "/sys/class/net/%s/brport/state" % tap
    for _ in range(100):
        if open(state).read().strip() == "3":  # BR_STATE_FORWARDING
            break
        time.sleep(0.05)
    libc = ctypes.CDLL(None, use_errno=True)
    ns = os.open("/run/netns/" + netns, os.O_RDONLY | os.O_CLOEXEC)
    if libc.setns(ns, 0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "setns")
    os.close(ns)
    # The guest's stack must finish its checksums and segments itself, as a guest's
    # virtio-net without offloads does: a tap without a vnet header has no way to carry
    # "checksum not done yet" or "to be segmented", so such frames would reach the host
    # with bad checksums or larger than the MTU. (ethtool -K GUESTIF tx off gso off,
    # through the ioctl: ethtool may not be installed.)
    for cmd in (0x17, 0x24):  # ETHTOOL_STXCSUM, ETHTOOL_SGSO
        ev = array.array("I", [cmd, 0])
        ifr = struct.pack("16sP", guestif.encode(), ev.buffer_info()[0])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s, 0x8946, ifr)  # SIOCETHTOOL
    p = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    p.bind((ifname, 0))
    print("relaying", flush=True)
    debug = os.environ.get("RELAY_DEBUG")
    while True:
        r, _, _ = select.select([fd, p], [], [])
        if fd in r:
            frame = os.read(fd, 65536)
            try:
                p.send(frame)
            except OSError as e:
                if debug:
                    sys.stderr.write("to guest: %s\n" % e)
        if p in r:
            frame, addr = p.recvfrom(65536)
            if addr[2] == socket.PACKET_OUTGOING:  # what this relay itself sent
                continue
            try:
                os.write(fd, frame)
            except OSError as e:
                if debug:
                    sys.stderr.write("to tap: %d bytes: %s\n" % (len(frame), e))


def main(a):
    if len(a) < 1:
        usage()
    if a[0] == "sink" and len(a) == 4:
        sink(a[1], [int(x) for x in a[2].split(",")], int(a[3]))
    elif a[0] == "conns" and len(a) == 5:
        conns(a[1], int(a[2]), int(a[3]), float(a[4]))
    elif a[0] == "connect" and len(a) == 3:
        what, s = try_connect(a[1], int(a[2]))
        print(what, flush=True)
    elif a[0] == "burst" and len(a) == 4:
        burst(a[1], int(a[2]), int(a[3]))
    elif a[0] == "scan" and len(a) == 4:
        scan(a[1], int(a[2]), int(a[3]))
    elif a[0] == "udpflood" and len(a) == 4:
        udpflood(a[1], int(a[2]), float(a[3]))
    elif a[0] == "relay" and len(a) == 5:
        relay(a[1], a[2], a[3], a[4])
    else:
        usage()


if __name__ == "__main__":
    main(sys.argv[1:])
