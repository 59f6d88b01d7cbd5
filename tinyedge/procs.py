"""Child processes that never outlive tinyedge.

Every program tinyedge starts -- QEMU, Renode, ``make`` and the compilers it
runs, the child Python that runs TensorFlow's converter, the host compiler --
is started here, and stops when tinyedge stops, however it stops: normal
exit, an exception, Ctrl-C, SIGTERM (a cancelled CI job), SIGHUP (a closed
terminal or ssh session), and SIGKILL, which no handler sees.

Three mechanisms, each covering what the one before cannot:

1. **Handlers.** :func:`signals_raise` (the CLI runs every command in it) turns
   SIGTERM and SIGHUP into a :class:`Terminated` exception, as Python turns
   SIGINT into KeyboardInterrupt, so every ``with``/``finally`` runs: the
   emulator is stopped in order and the report stays complete.
2. **A watchdog.** Each child is the leader of a process group of its own
   (``process_group=0``), so that the child and whatever it starts (make's
   compilers) can be signalled together, and so that a terminal's Ctrl-C
   reaches tinyedge alone, which then stops its children itself. A small
   watchdog process, started with the first child in a session of its own,
   reads the ids of the live groups from a pipe whose only writer is
   tinyedge (``tinyedge/_watchdog.py``). When tinyedge dies, for any reason, SIGKILL included, the kernel
   closes the pipe; the watchdog sees end-of-file, sends SIGTERM to every
   group still registered (make then deletes its half-written targets) and
   SIGKILL two seconds later to what is left.
3. **A parent-death signal.** On Linux, a child started from the main thread
   also asks the kernel (``prctl(PR_SET_PDEATHSIG)``) for a signal when
   tinyedge dies, in case the watchdog itself was killed. (The kernel sends it
   when the *thread* that started the child ends, which is why only the main
   thread, which ends with the process, uses it.)

:func:`stop` ends a child's whole group (SIGTERM, then SIGKILL after a grace
period) and reaps it; an ``atexit`` hook stops whatever is still registered.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from subprocess import DEVNULL, PIPE, STDOUT
from types import FrameType
from typing import Any, Callable, Iterator, Sequence

GRACE_SECONDS = 3.0   # after SIGTERM, before SIGKILL
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

_WATCHDOG = Path(__file__).with_name("_watchdog.py")


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived; raised in the main thread like KeyboardInterrupt
    (a BaseException, so that ``except Exception`` does not swallow it)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(f"terminated by {self.name}")


_lock = threading.RLock()
_live: dict[int, subprocess.Popen[Any]] = {}   # pid (= pgid) -> process
_watchdog: subprocess.Popen[bytes] | None = None
_watchdog_failed = False
_prctl: Any = None


def _tell_watchdog(line: str) -> None:
    """Register (+pgid) or unregister (-pgid) a group with the watchdog, starting it if need be."""
    global _watchdog, _watchdog_failed
    with _lock:
        if _watchdog is None and not _watchdog_failed and line.startswith("+"):
            try:
                _watchdog = subprocess.Popen([sys.executable, "-I", "-S", str(_WATCHDOG), str(GRACE_SECONDS)],
                                             stdin=PIPE, stdout=DEVNULL, stderr=DEVNULL, start_new_session=True)
            except OSError:
                _watchdog_failed = True   # the parent-death signal and the handlers remain
        if _watchdog is None or _watchdog.stdin is None:
            return
        try:
            _watchdog.stdin.write(line.encode() + b"\n")
            _watchdog.stdin.flush()
        except OSError:   # the watchdog was killed: the other two mechanisms remain
            pass


def _death_signal_preexec(sig: int) -> Callable[[], None] | None:
    """A preexec_fn that asks for ``sig`` when this process dies (Linux, main thread only)."""
    global _prctl
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    if _prctl is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            _prctl = libc.prctl
            _prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
            _prctl.restype = ctypes.c_int
        except (OSError, AttributeError):
            _prctl = False
    if not _prctl:
        return None
    prctl, parent = _prctl, os.getpid()

    def preexec() -> None:   # runs in the child between fork and exec: nothing that allocates much
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:   # the parent died before the request took effect
            os._exit(1)

    return preexec


def popen(cmd: Sequence[str], *, death_signal: int = signal.SIGKILL, **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(cmd, **kwargs)`` as a child that never outlives tinyedge
    (module doc). ``death_signal`` is what the kernel sends it if tinyedge dies
    without stopping it (SIGTERM for ``make``, which then deletes half-written
    targets). End it with :func:`stop`."""
    preexec = _death_signal_preexec(death_signal)
    with _lock:
        proc: subprocess.Popen[Any] = subprocess.Popen(list(cmd), process_group=0, preexec_fn=preexec, **kwargs)
        _live[proc.pid] = proc
        _tell_watchdog(f"+{proc.pid}")
    return proc


def _signal_group(proc: subprocess.Popen[Any], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _exited(proc: subprocess.Popen[Any]) -> bool:
    """Has ``proc`` exited? Without reaping it: while it is a zombie its process
    group id cannot be given to anyone else, so the group can still be signalled."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def stop(proc: subprocess.Popen[Any], grace: float = GRACE_SECONDS) -> None:
    """End ``proc`` and everything in its process group: SIGTERM, then SIGKILL
    after ``grace`` seconds; reap it. Idempotent; a second Ctrl-C while waiting
    goes straight to SIGKILL."""
    try:
        if not _exited(proc):
            _signal_group(proc, signal.SIGTERM)
            end = time.monotonic() + grace
            while not _exited(proc) and time.monotonic() < end:
                time.sleep(0.02)
    finally:
        if proc.returncode is None:
            _signal_group(proc, signal.SIGKILL)   # what is left of the group; the leader is not reaped yet
            proc.wait()
        forget(proc)


def forget(proc: subprocess.Popen[Any]) -> None:
    """Unregister a child that has ended (and been reaped) on its own."""
    with _lock:
        if _live.pop(proc.pid, None) is not None:
            _tell_watchdog(f"-{proc.pid}")


def run(cmd: Sequence[str], *, input: str | bytes | None = None, timeout: float | None = None,
        death_signal: int = signal.SIGKILL, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` for a child that never outlives tinyedge: on an
    exception (KeyboardInterrupt, :class:`Terminated`, a timeout) the child's
    whole process group is stopped before the exception goes on."""
    if input is not None:
        kwargs["stdin"] = PIPE
    if kwargs.pop("capture_output", False):
        kwargs["stdout"] = kwargs["stderr"] = PIPE
    proc = popen(cmd, death_signal=death_signal, **kwargs)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except BaseException:
        stop(proc, grace=1.0)
        raise
    forget(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def live() -> list[subprocess.Popen[Any]]:
    """The children started here that have not been stopped or reaped yet."""
    with _lock:
        return list(_live.values())


def _stop_all() -> None:
    for proc in live():
        stop(proc, grace=1.0)
    global _watchdog
    with _lock:
        if _watchdog is not None and _watchdog.stdin is not None:
            try:
                _watchdog.stdin.close()   # end-of-file: nothing is registered, it exits
            except OSError:
                pass
            _watchdog = None


atexit.register(_stop_all)


def _raise_terminated(signum: int, _frame: FrameType | None) -> None:
    # Cleanup after the first signal is not interrupted by a second one.
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    raise Terminated(signum)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` in the main
    thread (SIGINT already raises KeyboardInterrupt), so that cleanup runs; the
    previous handlers come back afterwards. Elsewhere than in the main thread,
    which alone can handle signals, this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_terminated) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def exit_code(exc: BaseException) -> int:
    """The shell's convention: 128 + the signal number."""
    if isinstance(exc, Terminated):
        return 128 + exc.signum
    return 128 + signal.SIGINT


__all__ = ["Terminated", "popen", "run", "stop", "forget", "live", "signals_raise", "exit_code",
           "GRACE_SECONDS", "DEVNULL", "PIPE", "STDOUT"]

