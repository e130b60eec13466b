#!/usr/bin/env python3
# exec_pty.py — runs a command (tenantctl exec ...) with a fresh pseudo-terminal as its
# stdin, stdout and stderr, as an operator's shell would, and reports what happened as
# one JSON object: {"rc": N, "out": "...", "tty": [st_dev, st_ino]} where "tty" names the
# terminal's slave (so a test can look for it in other processes' descriptors).
#
# Usage: exec_pty.py [--rows R --cols C] [--input TEXT] [--resize R C AFTER_S]
#                    [--record FILE] -- COMMAND...
# --record FILE: writes the slave's [st_dev, st_ino] to FILE as soon as the command runs.
# The command runs in a session of its own with the terminal as its controlling tty.
import argparse, fcntl, json, os, select, signal, struct, sys, termios, time

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=24)
ap.add_argument("--cols", type=int, default=80)
ap.add_argument("--input", default=None)
ap.add_argument("--resize", nargs=3, default=None)
ap.add_argument("--record", default=None)
ap.add_argument("--timeout", type=float, default=60)
ap.add_argument("cmd", nargs="+")
a = ap.parse_args()

master, slave = os.openpty()
fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", a.rows, a.cols, 0, 0))
st = os.fstat(slave)
if a.record:
    with open(a.record, "w") as f:
        json.dump([st.st_dev, st.st_ino], f)
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(master)
    os.close(slave)
    os.execvp(a.cmd[0], a.cmd)
os.close(slave)
out = b""
start = time.monotonic()
sent_input = a.input is None
resized = a.resize is None
status = None
while True:
    now = time.monotonic() - start
    if now > a.timeout:
        os.kill(pid, signal.SIGKILL)
    if not sent_input and now > 0.5:
        os.write(master, a.input.encode())
        sent_input = True
    if not resized and now > float(a.resize[2]):
        fcntl.ioctl(master, termios.TIOCSWINSZ,
                    struct.pack("HHHH", int(a.resize[0]), int(a.resize[1]), 0, 0))
        resized = True  # the kernel sends SIGWINCH to the terminal's foreground group
    r, _, _ = select.select([master], [], [], 0.05)
    if r:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            chunk = b""
        if not chunk and status is not None:
            break
        out += chunk
    if status is None:
        p, s = os.waitpid(pid, os.WNOHANG)
        if p:
            status = s
            end = time.monotonic() + 0.5  # what the terminal still holds
    if status is not None and time.monotonic() > end:
        break
rc = os.waitstatus_to_exitcode(status)
print(json.dumps({"rc": rc, "out": out.decode(errors="replace"), "tty": [st.st_dev, st.st_ino]}))
