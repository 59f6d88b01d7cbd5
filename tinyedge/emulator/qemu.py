"""Run firmware in QEMU with its UART on a loopback TCP port.

    with QemuInstance(load_board("mps2-an386"), "build/firmware.elf") as qemu:
        with DeviceClient(qemu.url, timeout=5) as dev:
            dev.hello()

QEMU runs with ``-icount shift=0`` (one guest instruction = 1 ns of virtual
time) so SysTick counts are reproducible; the UART is a TCP server on a free
127.0.0.1 port that QEMU waits on before it starts the guest. The instance
kills exactly the QEMU process it started, by its pid, when the ``with``
block ends for any reason (exception, KeyboardInterrupt included); QEMU is
started through :mod:`tinyedge.procs`, so it also dies when tinyedge is
killed (SIGTERM, SIGHUP, even SIGKILL).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
import weakref
from pathlib import Path
from types import TracebackType

from tinyedge import procs
from tinyedge.boards import Board, list_boards, load_board
from tinyedge.errors import TinyEdgeError

QEMU_BINARY = "qemu-system-arm"
INSTALL_HINT = "install it: sudo apt-get install qemu-system-arm"
READY_MARK = "waiting for connection"       # QEMU's notice once the socket listens
PORT_IN_USE_MARKS = ("Address already in use", "Failed to bind")
PORT_ATTEMPTS = 5
OUTPUT_TAIL_LINES = 12


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def qemu_command(board: Board, elf_path: Path, port: int, qemu: str = QEMU_BINARY,
                 extra_args: tuple[str, ...] = ()) -> list[str]:
    """The QEMU command line for ``board`` (no process is started)."""
    if not board.qemu_machine:
        emulated = [b for b in list_boards() if load_board(b).qemu_machine]
        raise TinyEdgeError(f"board {board.name!r} has no QEMU machine",
                            f"boards QEMU can run: {', '.join(emulated)}")
    return [
        qemu, "-M", board.qemu_machine, "-nographic", "-monitor", "none",
        "-kernel", str(elf_path),
        # nodelay=on: without it Nagle + delayed ACK add ~40 ms to every
        # request/response round trip (measured: 44 ms -> 1 ms).
        "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on",
        "-icount", "shift=0",
        *board.qemu_args, *extra_args,
    ]


class QemuInstance:
    """One QEMU process running ``elf_path`` on ``board``; a context manager."""

    def __init__(self, board: Board | str, elf_path: str | Path, *, qemu: str = QEMU_BINARY,
                 extra_args: tuple[str, ...] | list[str] = (), start_timeout: float = 10.0) -> None:
        self.board = load_board(board) if isinstance(board, str) else board
        self.elf_path = Path(elf_path)
        self.qemu = qemu
        self.extra_args = tuple(extra_args)
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.command: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes]], QemuInstance] | None = None

    # ---- public ---------------------------------------------------------
    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("QEMU is not started")
        return f"socket://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def output(self) -> str:
        """Everything QEMU printed (stderr and stdout) so far."""
        with self._lock:
            return "".join(self._lines)

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def check(self) -> None:
        """Raise TinyEdgeError if QEMU has exited on its own."""
        if self._proc is not None and self._proc.poll() is not None:
            raise self._exited_error("QEMU exited")

    def start(self) -> "QemuInstance":
        if self._proc is not None:
            raise RuntimeError("QEMU already started")
        exe = shutil.which(self.qemu)
        if exe is None:
            raise TinyEdgeError(f"{self.qemu} not found", INSTALL_HINT)
        self._check_inputs()
        for _ in range(PORT_ATTEMPTS):
            port = free_port()
            self.command = self._command(port, exe)
            if self._launch(port):
                return self
        raise TinyEdgeError(f"QEMU could not bind a free port in {PORT_ATTEMPTS} attempts",
                            "another program keeps taking loopback ports; try again")

    def stop(self) -> None:
        """Kill the QEMU this instance started (and only it). Idempotent."""
        proc = self._proc
        if proc is None:
            return
        try:
            procs.stop(proc)              # SIGTERM, SIGKILL after a grace period; reaped
        finally:
            if self._finalizer is not None:
                self._finalizer.detach()
            if self._reader is not None:
                self._reader.join(timeout=2)
            if proc.stdout is not None:
                proc.stdout.close()

    def __enter__(self) -> "QemuInstance":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        died_by_itself = self._proc is not None and self._proc.poll() is not None
        self.stop()
        # A device error is often QEMU having died (e.g. a CPU lockup): say so.
        if died_by_itself and isinstance(exc, TinyEdgeError):
            raise self._exited_error(f"QEMU exited while in use ({exc.message})") from exc

    # ---- internals ------------------------------------------------------
    def _check_inputs(self) -> None:
        _check_elf(self.elf_path)

    def _command(self, port: int, exe: str) -> list[str]:
        return qemu_command(self.board, self.elf_path, port, exe, self.extra_args)

    def _is_ready(self, line: str) -> bool:
        return READY_MARK in line

    def _launch(self, port: int) -> bool:
        """Start QEMU on ``port``; True once it listens, False if the port was taken."""
        with self._lock:
            self._lines = []
        self._ready.clear()
        proc = procs.popen(self.command, stdin=procs.DEVNULL, stdout=procs.PIPE, stderr=procs.STDOUT)
        self._proc = proc
        self._finalizer = weakref.finalize(self, _kill, proc)
        self._reader = threading.Thread(target=self._collect, args=(proc,), daemon=True,
                                        name=f"qemu-{proc.pid}-output")
        self._reader.start()
        deadline = time.monotonic() + self.start_timeout
        try:
            while not self._ready.wait(0.01):
                if proc.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    raise TinyEdgeError(f"QEMU did not open its UART port within "
                                        f"{self.start_timeout:g} s", self._tail_hint())
        except BaseException:
            self.stop()
            raise
        if self._ready.is_set():
            self.port = port
            return True
        self.stop()
        if any(mark in self.output for mark in PORT_IN_USE_MARKS):
            self._proc = None
            return False                  # lost the race for the port: try another
        raise self._exited_error("QEMU exited at start")

    def _collect(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            with self._lock:
                self._lines.append(line)
            if self._is_ready(line):
                self._ready.set()

    def _tail(self) -> str:
        lines = [line.rstrip() for line in self.output.splitlines() if line.strip()]
        return " | ".join(lines[-OUTPUT_TAIL_LINES:])

    def _tail_hint(self) -> str:
        tail = self._tail()
        return f"QEMU said: {tail}" if tail else "QEMU printed nothing"

    def _exited_error(self, what: str) -> TinyEdgeError:
        code = self._proc.poll() if self._proc else None
        return TinyEdgeError(f"{what} (exit code {code}) running {self.elf_path.name} on "
                             f"{self.board.qemu_machine}", self._tail_hint())


def _check_elf(path: Path) -> None:
    """QEMU only reads -kernel once a client has connected: check it first."""
    if not path.is_file():
        raise TinyEdgeError(f"firmware {path} not found", "build it first (make)")
    with path.open("rb") as f:
        head = f.read(20)
    # ELF header: magic, EI_CLASS 1 = 32-bit, EI_DATA 1 = little-endian, e_machine 40 = ARM.
    if len(head) < 20 or head[:4] != b"\x7fELF" or head[4] != 1 or head[5] != 1 \
            or int.from_bytes(head[18:20], "little") != 40:
        raise TinyEdgeError(f"{path} is not a 32-bit Arm ELF executable",
                            "give the firmware.elf that make builds (build/firmware.elf)")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Last resort (garbage collection, interpreter exit): kill our QEMU by pid."""
    procs.stop(proc, grace=0.0)


PTY_MARK = re.compile(r"char device redirected to (/dev/pts/\d+) \(label serial0\)")


class QemuHaltedInstance(QemuInstance):
    """QEMU standing in for a board on a desk and its debug probe.

    The machine starts halted (``-S``) with NO firmware loaded (no
    ``-kernel``), a gdbstub on a free 127.0.0.1 port (``gdb_url``) and the
    UART on a pseudo-terminal (``pty``, a /dev/pts path that pyserial opens as
    it opens /dev/ttyACM0). Firmware arrives through the GDB protocol
    (`tinyedge flash --probe gdb://...`), which also starts it.

    The gdbstub is a ``-chardev socket`` declared before the serial port:
    QEMU creates it first, so once QEMU has printed the pty's name the
    gdbstub is listening.
    """

    def __init__(self, board: Board | str, *, qemu: str = QEMU_BINARY,
                 extra_args: tuple[str, ...] | list[str] = (), start_timeout: float = 10.0) -> None:
        super().__init__(board, Path("(no firmware yet: it comes through the gdbstub)"), qemu=qemu,
                         extra_args=extra_args, start_timeout=start_timeout)
        self.pty: str | None = None

    @property
    def gdb_url(self) -> str:
        if self.port is None:
            raise RuntimeError("QEMU is not started")
        return f"gdb://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        if self.pty is None:
            raise RuntimeError("QEMU is not started")
        return self.pty

    def _check_inputs(self) -> None:
        qemu_command(self.board, Path(), 0)      # refuses a board without a QEMU machine

    def _command(self, port: int, exe: str) -> list[str]:
        assert self.board.qemu_machine
        return [
            exe, "-M", self.board.qemu_machine, "-nographic", "-monitor", "none", "-S",
            "-chardev", f"socket,id=gdb0,host=127.0.0.1,port={port},server=on,wait=off,nodelay=on",
            "-gdb", "chardev:gdb0",
            "-serial", "pty",
            "-icount", "shift=0",
            *self.board.qemu_args, *self.extra_args,
        ]

    def _is_ready(self, line: str) -> bool:
        m = PTY_MARK.search(line)
        if m:
            self.pty = m.group(1)
        return m is not None
