"""One tinyedge run at a time per project directory.

Two runs that share a project directory (two terminals, parallel CI jobs
with the same ``--project``) would otherwise write its files and run
``make`` in it at the same time. :func:`project_lock` takes an exclusive
``flock`` on ``DIR/.tinyedge.lock`` around generating, building and, for
``validate``, starting the firmware (an emulator has read the ELF once the
device answers HELLO, and the lock is released there). A second run waits,
saying who holds the directory, and gives up with a clear error after
``wait`` seconds. The kernel releases the lock when its holder dies,
however it dies, so a killed run never leaves a directory locked.

The lock is re-entrant within one process (generate and build inside
validate take it again).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from tinyedge.errors import TinyEdgeError

LOCK_NAME = ".tinyedge.lock"
LOCK_WAIT_SECONDS = 600.0
_POLL_SECONDS = 0.2

_held: dict[Path, list[int]] = {}   # resolved project dir -> [fd, depth]


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        return "another tinyedge run"
    return f"another tinyedge run ({text})" if text else "another tinyedge run"


@contextlib.contextmanager
def project_lock(project: Path, wait: float = LOCK_WAIT_SECONDS,
                 log: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold ``project``'s lock (creating the directory if need be) for the block."""
    project.mkdir(parents=True, exist_ok=True)
    key = project.resolve()
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    fd = os.open(key / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        _acquire(fd, project, wait, say)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {' '.join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))}"
                  .encode()[:200], 0)
        _held[key] = [fd, 1]
        try:
            yield
        finally:
            del _held[key]
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)   # releases the flock


def _acquire(fd: int, project: Path, wait: float, say: Callable[[str], None]) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    who = _holder(fd)
    say(f"waiting for {who} to finish with {project} (at most {wait:g} s)")
    deadline = time.monotonic() + wait
    while True:
        time.sleep(_POLL_SECONDS)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TinyEdgeError(f"{project} is still in use by {who} after {wait:g} s",
                                    "wait for that run to finish, or give this one another project "
                                    "directory (--project / -o)") from None
