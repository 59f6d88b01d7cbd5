"""A minimal QEMU Machine Protocol client: enough to reset the emulated board.

QEMU is started with ``qmp_args(path)`` (a QMP server on a Unix socket, so no
TCP port can be taken from under it); ``Qmp(path).system_reset()`` then resets
the machine as its reset button would: the firmware starts again from its
reset vector and sends its BOOT banner. QMP is JSON lines (QEMU's
docs/interop/qmp-spec): a greeting, ``qmp_capabilities``, then commands, each
answered by ``{"return": ...}`` or ``{"error": ...}``, with events between.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from tinyedge.errors import TinyEdgeError


def qmp_args(path: str | Path) -> tuple[str, ...]:
    """QEMU arguments for a QMP server on the Unix socket ``path``."""
    return ("-qmp", f"unix:{path},server=on,wait=off")


class Qmp:
    """One QMP connection, opened at the first command (QEMU answers QMP only once
    its main loop runs: with ``-serial tcp:...,wait=on``, after the UART's client
    has connected); a context manager."""

    def __init__(self, path: str | Path, timeout: float = 5.0) -> None:
        self.path = str(path)
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []   # what QEMU announced meanwhile (RESET, ...)
        self._sock: socket.socket | None = None
        self._buf = b""

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                sock.connect(self.path)
                break
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                if time.monotonic() > deadline:
                    sock.close()
                    raise TinyEdgeError(f"no QMP server at {self.path}: {exc}",
                                        "start QEMU with tinyedge.testing.qmp.qmp_args(path)") from exc
                time.sleep(0.05)
        self._sock = sock
        self._message()                          # the greeting
        self._send({"execute": "qmp_capabilities"})
        self._answer("qmp_capabilities")
        return sock

    def command(self, name: str, **arguments: Any) -> Any:
        if self._sock is None:
            self._connect()
        msg: dict[str, Any] = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        self._send(msg)
        return self._answer(name)

    def _send(self, msg: dict[str, Any]) -> None:
        assert self._sock is not None
        self._sock.sendall(json.dumps(msg).encode() + b"\n")

    def _answer(self, name: str) -> Any:
        while True:
            reply = self._message()
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise TinyEdgeError(f"QMP {name} failed: {reply['error']}", "see QEMU's QMP reference")
            self.events.append(reply)

    def system_reset(self) -> None:
        self.command("system_reset")

    def _message(self) -> dict[str, Any]:
        assert self._sock is not None
        while b"\n" not in self._buf:
            chunk = self._sock.recv(4096)
            if not chunk:
                raise TinyEdgeError("QEMU closed its QMP socket", "QEMU has exited")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        data: dict[str, Any] = json.loads(line)
        return data

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> "Qmp":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
