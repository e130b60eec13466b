#!/usr/bin/env python3
# console_pty.py — drives an interactive command (tenantctl console ...) on a fresh
# pseudo-terminal, as a person at a terminal would, through a list of steps, and reports
# one JSON object: {"rc": N or null, "out": "...", "failed": "step" or null, "ms": [the
# milliseconds each step took]}.
#
# Usage: console_pty.py [--rows R --cols C] [--timeout S] [--step STEP]... -- COMMAND...
# Steps, in order:
#   type-until:TEXT:PATTERN  types TEXT and Enter, again every 3 s, until PATTERN is in
#                            the output (what the guest echoes of TEXT is not PATTERN
#                            if PATTERN is what TEXT computes, e.g. $((6*7)))
#   type:TEXT                types TEXT and Enter once
#   expect:PATTERN           waits until PATTERN is in the output
#   detach                   types Ctrl-] (the console's escape)
#   touch:PATH               creates PATH (tells the test this point was reached)
#   wait-exit                waits for the command to end (then its rc is reported)
# Every step has --timeout seconds. The command is killed if it outlives the steps and
# wait-exit was asked; otherwise it is left running only until the end of this script.
import argparse, fcntl, json, os, select, signal, struct, sys, termios, time

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=24)
ap.add_argument("--cols", type=int, default=80)
ap.add_argument("--timeout", type=float, default=60)
ap.add_argument("--step", action="append", default=[])
ap.add_argument("cmd", nargs="+")
a = ap.parse_args()

master, slave = os.openpty()
fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", a.rows, a.cols, 0, 0))
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
status = None


def pump(wait):
    global out, status
    r, _, _ = select.select([master], [], [], wait)
    if r:
        try:
            out += os.read(master, 65536)
        except OSError:
            pass
    if status is None:
        p, s = os.waitpid(pid, os.WNOHANG)
        if p:
            status = s


failed = None
ms = []
for step in a.step:
    t0 = time.monotonic()
    kind, _, arg = step.partition(":")
    deadline = time.monotonic() + a.timeout
    if kind == "type-until":
        text, _, pattern = arg.partition(":")
        mark = len(out)
        next_type = 0
        while pattern.encode() not in out[mark:] and status is None:
            if time.monotonic() > deadline:
                failed = step
                break
            if time.monotonic() >= next_type:
                os.write(master, text.encode() + b"\r")
                next_type = time.monotonic() + 3
            pump(0.1)
    elif kind == "type":
        os.write(master, arg.encode() + b"\r")
        pump(0.1)
    elif kind == "expect":
        while arg.encode() not in out and status is None:
            if time.monotonic() > deadline:
                failed = step
                break
            pump(0.1)
        if arg.encode() not in out:
            failed = failed or step
    elif kind == "touch":
        open(arg, "w").close()
    elif kind == "detach":
        os.write(master, b"\x1d")
        pump(0.1)
    elif kind == "wait-exit":
        while status is None and time.monotonic() < deadline:
            pump(0.1)
        if status is None:
            failed = step
    else:
        sys.exit("unknown step " + step)
    ms.append(int((time.monotonic() - t0) * 1000))
    if failed:
        break
end = time.monotonic() + 0.3
while time.monotonic() < end:
    pump(0.05)
if status is None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
rc = os.waitstatus_to_exitcode(status) if status is not None else None
print(json.dumps({"rc": rc, "out": out.decode(errors="replace"), "failed": failed, "ms": ms}))
