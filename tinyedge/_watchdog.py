"""The watchdog of tinyedge's child processes (see tinyedge.procs); run as a script.

Reads lines "+PGID" (a process group started) and "-PGID" (ended) on stdin,
whose only writer is the tinyedge process. End-of-file means tinyedge has
ended, however it ended (SIGKILL included: the kernel closes the pipe): every
group still registered gets SIGTERM, and SIGKILL after a grace period.

It runs as ``python -I -S _watchdog.py GRACE`` in a session of its own and
ignores the signals a terminal or a job controller sends, so that it outlives
tinyedge long enough to clean up. Standard library only, nothing imported
from tinyedge: it starts in milliseconds.
"""

import os
import signal
import sys
import time


def alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
        return True
    except OSError:
        return False


def main() -> None:
    grace = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(s, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin:
        line = line.strip()
        if line[:1] == "+":
            groups.add(int(line[1:]))
        elif line[:1] == "-":
            groups.discard(int(line[1:]))
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 0.0)):
        for group in [g for g in groups if alive(g)]:
            try:
                os.killpg(group, sig)
            except OSError:
                pass
        end = time.monotonic() + wait
        while time.monotonic() < end and any(alive(g) for g in groups):
            time.sleep(0.05)


if __name__ == "__main__":
    main()
