"""Run firmware in Renode, its UART on a loopback TCP port (server-socket terminal).

Renode is not in the package registries this project installs from, so it is
used where it is installed (``renode`` on PATH) and refused clearly where it
is not -- never faked. The host talks to the UART with the same
``socket://127.0.0.1:PORT`` URL and protocol code as with QEMU.

The generated script (``.resc``) loads the board's Renode platform
description, creates a server-socket terminal on a free port, connects it to
the board's UART, loads the ELF and starts the machine.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tinyedge import procs
from tinyedge.boards import Board, list_boards, load_board
from tinyedge.emulator.qemu import free_port
from tinyedge.errors import TinyEdgeError

RENODE_BINARY = "renode"
START_TIMEOUT_S = 30.0


def renode_script(board: Board, elf_path: Path, port: int) -> str:
    """The .resc script for ``board`` (Renode monitor commands)."""
    if not board.renode_platform or not board.renode_uart:
        renode_boards = [b for b in list_boards() if load_board(b).renode_platform]
        raise TinyEdgeError(f"board {board.name!r} has no Renode platform in its board file",
                            f"boards with one: {', '.join(renode_boards) or 'none'}; or use --emulator qemu")
    return "\n".join([
        f"# tinyedge: {board.name} in Renode, UART on 127.0.0.1:{port}",
        f'mach create "{board.name}"',
        f"machine LoadPlatformDescription @{board.renode_platform}",
        f'emulation CreateServerSocketTerminal {port} "te_uart" false',
        f"connector Connect {board.renode_uart} te_uart",
        f"sysbus LoadELF @{elf_path.resolve()}",
        "start",
        "",
    ])


class RenodeInstance:
    """Context manager: a Renode process running ``elf_path`` on ``board``."""

    def __init__(self, board: Board, elf_path: str | Path, renode: str = RENODE_BINARY) -> None:
        self.board = board
        self.elf_path = Path(elf_path)
        self.renode = renode
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def __enter__(self) -> RenodeInstance:
        exe = shutil.which(self.renode)
        if exe is None:
            raise TinyEdgeError(
                "Renode is not installed (`renode` is not on PATH)",
                "install Renode from its own releases (it is in no package registry tinyedge uses), "
                "or validate with --emulator qemu",
            )
        if not self.elf_path.exists():
            raise TinyEdgeError(f"firmware not found: {self.elf_path}", "run `tinyedge build DIR` first")
        self.port = free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="tinyedge-renode-")
        script = Path(self._tmp.name) / "tinyedge.resc"
        script.write_text(renode_script(self.board, self.elf_path, self.port))
        self._proc = procs.popen(
            [exe, "--disable-xwt", "--console", "--plain", "-e", f"include @{script}"],
            stdin=procs.DEVNULL, stdout=procs.PIPE, stderr=procs.STDOUT,
        )
        try:
            self._wait_for_port()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_for_port(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                out = (self._proc.stdout.read() if self._proc.stdout else b"").decode(errors="replace")
                tail = " | ".join(out.strip().splitlines()[-5:])
                raise TinyEdgeError(f"Renode exited with {self._proc.returncode}: {tail}",
                                    "check the board's renode_platform / renode_uart")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise TinyEdgeError(f"Renode did not open the UART socket within {START_TIMEOUT_S:.0f} s",
                            "check the board's renode_uart name")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._proc is not None:
            procs.stop(self._proc)        # Renode and anything it started (mono)
        self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
