#!/usr/bin/env python3
# held_fds.py — which of the given files (as [st_dev, st_ino] pairs) the given processes
# hold open. Looked at from the host: /proc/PID/fd/N followed to the file itself (so a
# terminal is recognised whatever its name inside a namespace). Prints one line per
# match, "PID FD readlink", and nothing when no process holds any of them.
# Usage: held_fds.py FILES-JSON PID...   (FILES-JSON: [[dev, ino], ...])
import json, os, sys

want = {tuple(x) for x in json.loads(sys.argv[1])}
for pid in sys.argv[2:]:
    try:
        fds = os.listdir("/proc/%s/fd" % pid)
    except OSError:
        continue
    for fd in fds:
        p = "/proc/%s/fd/%s" % (pid, fd)
        try:
            st = os.stat(p)
            if (st.st_dev, st.st_ino) in want:
                print(pid, fd, os.readlink(p))
        except OSError:
            pass
