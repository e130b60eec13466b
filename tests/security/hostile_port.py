#!/usr/bin/env python3
# hostile_port.py — plays a hostile guest on a tenant's port of the bridge, with raw
# frames: what a microVM guest with root (or anyone holding a veth's far end) can send.
# For test_bridge_fdb.sh and test_host_loopback.sh.
#
#   hostile_port.py PORT ACTION...
#
# PORT is "dev:IFNAME" (an AF_PACKET socket on IFNAME: a tenant's eth0, entered with
# nsenter) or "tap:IFNAME" (opens the persistent tap IFNAME that tenantd made, as QEMU
# would, and is its guest). The actions run in order, each printing one line:
#
#   ll=SRCMAC,COUNT        COUNT frames with source SRCMAC to each link-local group
#                          address the bridge learns from (01:80:c2:00:00:02/03/0e/...)
#   llflood=COUNT          COUNT link-local frames, each with a random source MAC
#   flood=COUNT            COUNT broadcast frames, each with a random source MAC
#   udp=SRCMAC,DSTMAC,SRCIP,DSTIP,PORT,TEXT[,COUNT]
#                          one (or COUNT) IPv4/UDP datagram carrying TEXT
#   udp6=SRCMAC,DSTMAC,SRCIP6,DSTIP6,PORT,TEXT[,COUNT]
#                          the same over IPv6
#   keep=SRCMAC,SECONDS    prints "keeping", then sends link-local frames from SRCMAC
#                          every 2 ms for SECONDS
#   hold=SECONDS           prints "holding" and keeps the port open for SECONDS (a tap's
#                          carrier, and with it what the bridge learned on the port,
#                          goes when its last descriptor is closed)
#   sniff=SECONDS,MAC[,MAC...]
#                          prints "sniffing", then counts the frames received in
#                          SECONDS whose destination is one of the MACs ("any" counts
#                          every frame) and prints "seen N"
#
# Only frames: nothing leaves the bridge the test set up. Exit 0, or 2 on bad usage.
import fcntl
import os
import select
import socket
import struct
import sys
import time

LINK_LOCAL = [0x02, 0x03, 0x0E, 0x0D, 0x0F]  # slow protocols, 802.1X, LLDP, ...


def mac(text):
    b = bytes(int(x, 16) for x in text.split(":"))
    if len(b) != 6:
        raise ValueError("bad MAC " + text)
    return b


def random_mac():
    m = bytearray(os.urandom(6))
    m[0] = (m[0] & 0xFE) | 0x02  # unicast, locally administered
    return bytes(m)


class Port:
    def __init__(self, spec):
        kind, _, name = spec.partition(":")
        if kind == "dev":
            self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
            self.s.bind((name, 0))
            self.fd = self.s.fileno()
        elif kind == "tap":
            self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
            ifr = struct.pack("16sH", name.encode(), 0x0002 | 0x1000)  # IFF_TAP | IFF_NO_PI
            fcntl.ioctl(self.fd, 0x400454CA, ifr)  # TUNSETIFF
            # The carrier comes up now, and the bridge port forwards once the kernel's
            # link watch has seen it (up to a second later): frames sent before are lost.
            state = "/sys/class/net/%s/brport/state" % name
            for _ in range(100):
                if open(state).read().strip() == "3":  # BR_STATE_FORWARDING
                    break
                time.sleep(0.05)
        else:
            raise ValueError("PORT is dev:IFNAME or tap:IFNAME")

    def send(self, frame):
        if len(frame) < 60:
            frame += bytes(60 - len(frame))
        os.write(self.fd, frame)

    def recv(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        return os.read(self.fd, 65536) if r else None


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def udp4(src, dst, sip, dip, port, payload):
    sip, dip = socket.inet_aton(sip), socket.inet_aton(dip)
    udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
    csum = checksum(sip + dip + struct.pack("!BBH", 0, 17, len(udp)) + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, sip, dip)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return dst + src + b"\x08\x00" + ip + udp


def udp6(src, dst, sip, dip, port, payload):
    sip, dip = socket.inet_pton(socket.AF_INET6, sip), socket.inet_pton(socket.AF_INET6, dip)
    udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
    csum = checksum(sip + dip + struct.pack("!I3xB", len(udp), 17) + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    ip = struct.pack("!IHBB16s16s", 0x60000000, len(udp), 17, 64, sip, dip)
    return dst + src + b"\x86\xdd" + ip + udp


def lldp(src, group):
    # An LLDP-looking frame: chassis id, port id, TTL, end.
    body = bytes.fromhex("0207 04") + src + bytes.fromhex("0403 05 7031 0602 0078 0000")
    return bytes([0x01, 0x80, 0xC2, 0, 0, group]) + src + b"\x88\xcc" + body


def act(port, name, arg):
    a = arg.split(",")
    if name == "ll":
        src, count = mac(a[0]), int(a[1])
        for _ in range(count):
            for g in LINK_LOCAL:
                port.send(lldp(src, g))
        print("sent %d link-local frames from %s" % (count * len(LINK_LOCAL), a[0]))
    elif name == "llflood":
        count = int(a[0])
        for i in range(count):
            port.send(lldp(random_mac(), LINK_LOCAL[i % len(LINK_LOCAL)]))
        print("sent %d link-local frames from random sources" % count)
    elif name == "flood":
        count = int(a[0])
        for _ in range(count):
            port.send(b"\xff" * 6 + random_mac() + b"\x08\x06" + bytes(28))
        print("sent %d broadcast frames from random sources" % count)
    elif name in ("udp", "udp6"):
        build = udp4 if name == "udp" else udp6
        count = int(a[6]) if len(a) > 6 else 1
        for _ in range(count):
            port.send(build(mac(a[0]), mac(a[1]), a[2], a[3], int(a[4]), a[5].encode()))
        print("sent %d %s to %s port %s" % (count, name, a[3], a[4]))
    elif name == "keep":
        print("keeping")
        sys.stdout.flush()
        src, end, n = mac(a[0]), time.monotonic() + float(a[1]), 0
        while time.monotonic() < end:
            port.send(lldp(src, 0x0E))
            n += 1
            time.sleep(0.002)
        print("kept claiming %s with %d frames" % (a[0], n))
    elif name == "hold":
        print("holding")
        sys.stdout.flush()
        time.sleep(float(a[0]))
    elif name == "sniff":
        print("sniffing")
        sys.stdout.flush()
        want = None if a[1] == "any" else {mac(x) for x in a[1:]}
        end, seen = time.monotonic() + float(a[0]), 0
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            f = port.recv(left)
            if f and (want is None or f[:6] in want):
                seen += 1
        print("seen %d" % seen)
    else:
        raise ValueError("unknown action " + name)
    sys.stdout.flush()


def main(argv):
    if len(argv) < 3:
        print(__doc__ if __doc__ else "usage: see the top of hostile_port.py", file=sys.stderr)
        return 2
    try:
        port = Port(argv[1])
        for spec in argv[2:]:
            name, _, arg = spec.partition("=")
            act(port, name, arg)
    except (ValueError, IndexError) as e:
        print("hostile_port.py: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
