"""A seeded fault-injecting TCP proxy between tinyedge and a device's UART.

    with QemuInstance(board, elf, extra_args=qmp_args(sock)) as qemu, Qmp(sock) as qmp, \\
            FaultProxy(qemu.url, Faults(seed=1, corrupt=1e-3, drop=1e-3,
                                        reset_after=((Cmd.RUN, 2),)), reset=qmp.system_reset) as proxy:
        tinyedge ... --port proxy.url

It stands where a bench's cable, USB bridge and power supply are: each byte
that passes may be corrupted (some of its bits flipped) or dropped, a chunk
may be held back, and the device may be reset -- after the n-th frame of a
kind has passed (``reset_after``: deterministic, e.g. during a RUN), or after
a random number of bytes sent to the device (``reset_every``). Everything
random comes from ``random.Random(seed)``, one stream per direction, so a
run with the same seed and the same traffic injects the same faults.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from tinyedge import protocol as p

TO_DEVICE, TO_HOST = "to_device", "to_host"


@dataclass(frozen=True)
class Faults:
    seed: int = 0
    corrupt: float = 0.0    # per byte: flip 1-8 of its bits (a 0x00 may appear or vanish)
    drop: float = 0.0       # per byte: lose it
    delay: float = 0.0      # per chunk read: hold it (and what follows) back up to max_delay s
    max_delay: float = 0.02
    # reset the device once the n-th frame with this code has passed, e.g.
    # ((Cmd.RUN, 1),): during the first inference; ((Cmd.RUN | 0x80, 1),): after
    # the first RUN was answered, before its outputs are read. Frames are counted
    # as they were sent, before any fault.
    reset_after: tuple[tuple[int, int], ...] = ()
    # reset after a random number of bytes sent to the device, in [lo, hi]
    reset_every: tuple[int, int] | None = None
    directions: tuple[str, ...] = (TO_DEVICE, TO_HOST)


@dataclass
class ProxyStats:
    forwarded: dict[str, int] = field(default_factory=lambda: {TO_DEVICE: 0, TO_HOST: 0})
    corrupted: dict[str, int] = field(default_factory=lambda: {TO_DEVICE: 0, TO_HOST: 0})
    dropped: dict[str, int] = field(default_factory=lambda: {TO_DEVICE: 0, TO_HOST: 0})
    delayed: dict[str, int] = field(default_factory=lambda: {TO_DEVICE: 0, TO_HOST: 0})
    resets: int = 0


class _FrameSpotter:
    """Counts valid frames by code in a byte stream (before faults)."""

    def __init__(self) -> None:
        self._reader = p.FrameReader()
        self.counts: dict[int, int] = {}

    def feed(self, data: bytes) -> list[tuple[int, int]]:
        """(code, how many of that code so far) for each frame completed by ``data``."""
        seen = []
        for wire in self._reader.feed(data):
            if wire is None:
                continue
            try:
                cmd = p.decode_frame(wire).cmd
            except p.ProtocolError:
                continue
            self.counts[cmd] = self.counts.get(cmd, 0) + 1
            seen.append((cmd, self.counts[cmd]))
        return seen


class FaultProxy:
    """Listens on a free 127.0.0.1 port (``url``); the first client is joined to
    ``upstream`` (``socket://HOST:PORT``, e.g. QEMU's UART) through the faults.
    ``reset`` resets the device (e.g. :meth:`tinyedge.testing.qmp.Qmp.system_reset`)."""

    def __init__(self, upstream: str, faults: Faults, reset: Callable[[], None] | None = None) -> None:
        if (faults.reset_after or faults.reset_every) and reset is None:
            raise ValueError("resets need a reset function")
        host, _, port = upstream.removeprefix("socket://").rpartition(":")
        self.upstream = (host, int(port))
        self.faults = faults
        self.stats = ProxyStats()
        self._reset = reset
        self._reset_lock = threading.Lock()
        self._rng = {d: random.Random(f"{faults.seed}:{d}") for d in (TO_DEVICE, TO_HOST)}
        self._spot = {d: _FrameSpotter() for d in (TO_DEVICE, TO_HOST)}
        self._pending_resets = set(faults.reset_after)
        self._next_random_reset = self._draw_reset(0)
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(1)
        self.port = int(self._srv.getsockname()[1])
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True, name="faultproxy-accept")]
        self._threads[0].start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    # ---- lifecycle ------------------------------------------------------
    def close(self) -> None:
        self._stop.set()
        for s in [self._srv, *self._socks]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self._threads:
            t.join(timeout=2)

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ------------------------------------------------------
    def _accept(self) -> None:
        try:
            client, _ = self._srv.accept()
        except OSError:
            return
        device = socket.create_connection(self.upstream, timeout=10)
        for s in (client, device):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(None)
        self._socks += [client, device]
        for src, dst, direction in ((client, device, TO_DEVICE), (device, client, TO_HOST)):
            t = threading.Thread(target=self._pump, args=(src, dst, direction), daemon=True,
                                 name=f"faultproxy-{direction}")
            self._threads.append(t)
            t.start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        rng = self._rng[direction]
        f = self.faults
        active = direction in f.directions
        while not self._stop.is_set():
            try:
                data = src.recv(4096)
            except OSError:
                break
            if not data:
                break
            out = self._damage(data, rng, direction) if active else data
            if active and f.delay and rng.random() < f.delay:
                self.stats.delayed[direction] += 1
                time.sleep(rng.uniform(0, f.max_delay))
            try:
                dst.sendall(out)
            except OSError:
                break
            self.stats.forwarded[direction] += len(out)
            self._maybe_reset(data, direction)
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _damage(self, data: bytes, rng: random.Random, direction: str) -> bytes:
        f = self.faults
        if not (f.corrupt or f.drop):
            return data
        out = bytearray()
        for byte in data:
            if f.drop and rng.random() < f.drop:
                self.stats.dropped[direction] += 1
                continue
            if f.corrupt and rng.random() < f.corrupt:
                self.stats.corrupted[direction] += 1
                byte ^= rng.randrange(1, 256)
            out.append(byte)
        return bytes(out)

    def _maybe_reset(self, data: bytes, direction: str) -> None:
        due = False
        for code, n in self._spot[direction].feed(data):
            if (code, n) in self._pending_resets:
                self._pending_resets.discard((code, n))
                due = True
        if direction == TO_DEVICE and self._next_random_reset is not None \
                and self.stats.forwarded[TO_DEVICE] >= self._next_random_reset:
            self._next_random_reset = self._draw_reset(self.stats.forwarded[TO_DEVICE])
            due = True
        if due and self._reset is not None:
            with self._reset_lock:
                self._reset()
                self.stats.resets += 1

    def _draw_reset(self, now: int) -> int | None:
        if self.faults.reset_every is None:
            return None
        lo, hi = self.faults.reset_every
        return now + random.Random(f"{self.faults.seed}:reset:{now}").randint(lo, hi)
