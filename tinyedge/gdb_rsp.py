"""A small client for the GDB remote serial protocol (RSP).

Enough of the protocol to load firmware into a Cortex-M through any GDB
server (OpenOCD, pyOCD gdbserver, J-Link GDB Server, st-util, a Black Magic
Probe on its serial port, QEMU's gdbstub), written from the GDB manual,
appendix "GDB Remote Serial Protocol":

* Overview: a packet is ``$data#cc``, ``cc`` the modulo-256 sum of the
  data bytes in two hex digits; the receiver answers ``+`` (good) or ``-``
  (send it again). Binary data escapes ``#``, ``$``, ``}`` (and ``*`` in
  replies) as ``}`` followed by the byte XOR 0x20. Replies may be
  run-length encoded: ``c*N`` stands for ``c`` followed by ``ord(N) - 29``
  more copies of it.
* Packet Acknowledgment: after ``QStartNoAckMode`` (when the server offers
  it) neither side sends ``+``/``-``; TCP already guarantees delivery.
* General Query Packets: ``qSupported`` (features, ``PacketSize`` = the
  largest packet the server accepts, hex), ``qXfer:OBJECT:read:ANNEX:OFF,LEN``
  (``m`` + data: more follows, ``l`` + data: last part), ``qRcmd,HEX``
  (a ``monitor`` command; output comes back in ``O`` + hex packets).
* Packets: ``m`` / ``M`` / ``X`` (read, write hex, write binary memory),
  ``g`` / ``P`` (read all registers, write one), ``?``, ``vAttach``,
  ``vRun``, ``D`` (detach: the target runs on), and ``vFlashErase`` /
  ``vFlashWrite`` / ``vFlashDone`` for flash the server's memory map
  (``qXfer:memory-map:read``, "Memory Map Format") declares.
* Target Description Format: register numbers come from the description
  (``qXfer:features:read:target.xml``), each register one more than the
  previous one unless it carries ``regnum``.

Framing is in plain functions (:func:`encode_packet`, :func:`escape`,
:func:`unescape`, :func:`rle_expand`, :class:`PacketReader`) so it can be
tested byte by byte; :class:`RspClient` is the conversation.
"""

from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Callable, Protocol
from urllib.parse import urlsplit

from tinyedge.errors import TinyEdgeError

ESCAPE = 0x7D          # '}'
RLE_MARK = 0x2A        # '*'
RLE_BIAS = 29          # a repeat count n is sent as the character n + 29
_SPECIAL = frozenset(b"#$}*")

DEFAULT_PACKET_SIZE = 400    # what GDB assumes when a server does not say
MAX_PACKET_SIZE = 0x4000     # never build packets larger than this
CONNECT_TIMEOUT = 5.0


class RspError(TinyEdgeError):
    """The server answered with an error, or the conversation broke."""


# ---------------------------------------------------------------------------
# Framing
# ---------------------------------------------------------------------------

def checksum(data: bytes) -> int:
    """Modulo-256 sum of the packet data bytes."""
    return sum(data) & 0xFF


def encode_packet(data: bytes) -> bytes:
    """``$data#cc`` (``data`` already escaped where the packet needs it)."""
    return b"$" + data + b"#" + b"%02x" % checksum(data)


def escape(data: bytes) -> bytes:
    """Escape binary data: ``#``, ``$``, ``}`` and ``*`` become ``}`` + (byte XOR 0x20)."""
    out = bytearray()
    for b in data:
        if b in _SPECIAL:
            out += bytes((ESCAPE, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def unescape(data: bytes) -> bytes:
    """Undo :func:`escape`."""
    out = bytearray()
    it = iter(data)
    for b in it:
        if b == ESCAPE:
            nxt = next(it, None)
            if nxt is None:
                raise RspError("malformed binary data from the GDB server (ends in an escape)")
            out.append(nxt ^ 0x20)
        else:
            out.append(b)
    return bytes(out)


def rle_expand(data: bytes) -> bytes:
    """Expand run-length encoding: ``c*N`` = ``c`` and ``ord(N) - 29`` more ``c``."""
    if RLE_MARK not in data:
        return data
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b == RLE_MARK:
            if not out or i + 1 >= len(data) or data[i + 1] < RLE_BIAS:
                raise RspError("malformed run-length encoding from the GDB server")
            out += bytes((out[-1],)) * (data[i + 1] - RLE_BIAS)
            i += 2
        else:
            out.append(b)
            i += 1
    return bytes(out)


@dataclass(frozen=True)
class Event:
    kind: str          # "ack", "nak", "packet", "notification"
    data: bytes = b""  # packet data as sent (not yet expanded or unescaped)
    ok: bool = True    # checksum matched


class PacketReader:
    """Splits a byte stream into acks, naks, packets and notifications."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._kind: str | None = None   # inside a packet ("packet"/"notification")
        self._sum: bytearray | None = None

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        for b in data:
            if self._sum is not None:          # reading the two checksum digits
                self._sum.append(b)
                if len(self._sum) == 2:
                    try:
                        ok = int(self._sum.decode("ascii"), 16) == checksum(bytes(self._buf))
                    except ValueError:
                        ok = False
                    assert self._kind is not None
                    events.append(Event(self._kind, bytes(self._buf), ok))
                    self._kind, self._sum = None, None
                    self._buf.clear()
            elif self._kind is not None:
                if b == ord("#"):
                    self._sum = bytearray()
                elif b in (ord("$"), ord("%")):   # a new packet: the previous one was cut
                    self._kind = "packet" if b == ord("$") else "notification"
                    self._buf.clear()
                else:
                    self._buf.append(b)
            elif b == ord("+"):
                events.append(Event("ack"))
            elif b == ord("-"):
                events.append(Event("nak"))
            elif b == ord("$"):
                self._kind = "packet"
            elif b == ord("%"):
                self._kind = "notification"
            # anything else between packets is noise: ignored
        return events


# ---------------------------------------------------------------------------
# Transports
# ---------------------------------------------------------------------------

class Transport(Protocol):
    name: str

    def write(self, data: bytes) -> None: ...
    def read(self, timeout: float) -> bytes: ...   # b"" when nothing came in time
    def close(self) -> None: ...


class SocketTransport:
    """A TCP connection to a GDB server (``gdb://HOST:PORT``)."""

    def __init__(self, host: str, port: int, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.name = f"gdb://{host}:{port}"
        try:
            self._sock = socket.create_connection((host, port), timeout=connect_timeout)
        except OSError as exc:
            raise TinyEdgeError(f"cannot connect to the GDB server at {host}:{port}: {exc.strerror or exc}",
                                "start the server first (docs/flashing.md says how for each) "
                                "and check the port") from exc
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise RspError(f"connection to {self.name} lost: {exc}", "is the GDB server still running?") from exc

    def read(self, timeout: float) -> bytes:
        self._sock.settimeout(max(timeout, 0.001))
        try:
            data = self._sock.recv(65536)
        except socket.timeout:
            return b""
        except OSError as exc:
            raise RspError(f"connection to {self.name} lost: {exc}", "is the GDB server still running?") from exc
        if not data:
            raise RspError(f"{self.name} closed the connection", "the GDB server stopped or refused the session")
        return data

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass


class SerialTransport:
    """A GDB server on a serial port (``gdb:///dev/ttyACM0``: a Black Magic Probe)."""

    def __init__(self, path: str, baudrate: int = 115200) -> None:
        import serial

        self.name = f"gdb://{path}"
        try:
            self._port = serial.Serial(path, baudrate=baudrate, timeout=0.05, write_timeout=10.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TinyEdgeError(f"cannot open {path}: {exc}",
                                "is the probe plugged in? `tinyedge devices` lists the serial ports "
                                "(a Black Magic Probe's GDB port is the first of its two)") from exc

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except Exception as exc:  # noqa: BLE001 - pyserial raises several types
            raise RspError(f"{self.name}: write failed: {exc}", "the probe was unplugged?") from exc

    def read(self, timeout: float) -> bytes:
        self._port.timeout = max(timeout, 0.001)
        try:
            waiting = self._port.in_waiting
            return bytes(self._port.read(waiting if waiting > 0 else 1))
        except Exception as exc:  # noqa: BLE001
            raise RspError(f"{self.name}: read failed: {exc}", "the probe was unplugged?") from exc

    def close(self) -> None:
        try:
            self._port.close()
        except Exception:  # noqa: BLE001 - closing a dead port is not an error
            pass


def parse_gdb_url(url: str) -> tuple[str, int] | str:
    """``gdb://HOST:PORT`` -> (host, port); ``gdb:///dev/ttyACM0`` -> the serial port path."""
    parts = urlsplit(url)
    if parts.scheme != "gdb":
        raise TinyEdgeError(f"not a GDB server address: {url!r}",
                            "write gdb://HOST:PORT (e.g. gdb://127.0.0.1:3333) or gdb:///dev/ttyACM0")
    if not parts.netloc:
        if not parts.path.startswith("/") or parts.path == "/":
            raise TinyEdgeError(f"{url!r}: no serial port path", "e.g. gdb:///dev/ttyACM0")
        return parts.path
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or parts.path not in ("", "/"):
        raise TinyEdgeError(f"{url!r}: expected gdb://HOST:PORT", "e.g. gdb://127.0.0.1:3333")
    return parts.hostname, port


def open_transport(url: str) -> Transport:
    where = parse_gdb_url(url)
    if isinstance(where, str):
        return SerialTransport(where)
    return SocketTransport(*where)


# ---------------------------------------------------------------------------
# The conversation
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class MemoryRegion:
    """One ``<memory>`` of the server's memory map."""

    kind: str          # "ram", "rom" or "flash"
    start: int
    length: int
    blocksize: int = 0  # flash erase block

    @property
    def end(self) -> int:
        return self.start + self.length


def parse_memory_map(xml: bytes) -> list[MemoryRegion]:
    """Regions of a GDB memory map document (GDB manual, "Memory Map Format")."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise RspError(f"the GDB server sent an unreadable memory map: {exc}") from exc
    regions = []
    for mem in root.iter("memory"):
        kind = mem.get("type", "")
        try:
            start, length = int(mem.get("start", ""), 0), int(mem.get("length", ""), 0)
            blocksize = 0
            for prop in mem.iter("property"):
                if prop.get("name") == "blocksize":
                    blocksize = int((prop.text or "").strip(), 0)
        except ValueError as exc:
            raise RspError(f"the GDB server's memory map has a malformed region: {exc}") from exc
        if kind not in ("ram", "rom", "flash"):
            raise RspError(f"the GDB server's memory map has a region of unknown type {kind!r}")
        if kind == "flash" and blocksize <= 0:
            raise RspError(f"the GDB server's memory map gives flash at 0x{start:08x} no blocksize")
        regions.append(MemoryRegion(kind, start, length, blocksize))
    return sorted(regions, key=lambda r: r.start)


def parse_features(reply: bytes) -> dict[str, str | bool]:
    """``qSupported`` reply: ``name=value``, ``name+`` (True), ``name-`` / ``name?`` (False)."""
    features: dict[str, str | bool] = {}
    for item in reply.decode("ascii", errors="replace").split(";"):
        if not item:
            continue
        if "=" in item:
            name, value = item.split("=", 1)
            features[name] = value
        elif item[-1] in "+-?":
            features[item[:-1]] = item[-1] == "+"
    return features


def register_numbers(documents: Callable[[str], bytes]) -> dict[str, int]:
    """Register name -> number from a target description and the files it includes."""
    numbers: dict[str, int] = {}
    next_num = 0

    def walk(annex: str, depth: int) -> None:
        nonlocal next_num
        if depth > 4:
            return
        # QEMU writes <xi:include> without declaring the xi prefix: read it as <include>.
        text = documents(annex).replace(b"<xi:include", b"<include")
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise RspError(f"the GDB server sent an unreadable target description ({annex}): {exc}") from exc
        for el in root.iter():
            tag = el.tag.rsplit("}", 1)[-1]
            if tag == "include" and el.get("href"):
                walk(el.get("href", ""), depth + 1)
            elif tag == "reg" and el.get("name"):
                if el.get("regnum") is not None:
                    next_num = int(el.get("regnum", "0"), 0)
                numbers[el.get("name", "").lower()] = next_num
                next_num += 1

    walk("target.xml", 0)
    return numbers


class RspClient:
    """One session with a GDB server. ``timeout`` bounds each reply (seconds)."""

    def __init__(self, transport: Transport, timeout: float = 5.0, retries: int = 3) -> None:
        self.transport = transport
        self.timeout = timeout
        self.retries = retries
        self.ack_mode = True
        self.features: dict[str, str | bool] = {}
        self.packet_size = DEFAULT_PACKET_SIZE
        self.binary_writes: bool | None = None   # X packet: unknown until tried
        self._reader = PacketReader()
        self._events: list[Event] = []

    # ---- lifecycle -------------------------------------------------------
    def connect(self) -> None:
        """Exchange features; leave acknowledgement mode when the server offers it."""
        reply = self.request(b"qSupported:swbreak+;hwbreak+;xmlRegisters=arm")
        self.features = parse_features(reply)
        size = self.features.get("PacketSize")
        if isinstance(size, str):
            try:
                self.packet_size = max(64, min(int(size, 16), MAX_PACKET_SIZE))
            except ValueError:
                pass
        if self.features.get("QStartNoAckMode") is True and self.request(b"QStartNoAckMode") == b"OK":
            self.ack_mode = False

    def supports(self, feature: str) -> bool:
        return self.features.get(feature) is True

    def close(self) -> None:
        self.transport.close()

    # ---- packets ----------------------------------------------------------
    def request(self, data: bytes, timeout: float | None = None,
                console: Callable[[str], None] | None = None) -> bytes:
        """Send one packet and return the reply's data (run-length expanded).

        ``console``: receives ``O`` (console output) packets until the final reply
        (``qRcmd``). An empty reply means the server does not know the packet.
        """
        self._send(data)
        while True:
            reply = self._receive(timeout or self.timeout, data)
            if console is not None and reply.startswith(b"O") and reply != b"OK":
                try:
                    console(bytes.fromhex(reply[1:].decode("ascii")).decode("utf-8", "replace"))
                except ValueError:
                    console(reply[1:].decode("ascii", "replace"))
                continue
            return reply

    def _send(self, data: bytes) -> None:
        wire = encode_packet(data)
        for _attempt in range(self.retries + 1):
            self.transport.write(wire)
            if not self.ack_mode:
                return
            ev = self._next_event(self.timeout, {"ack", "nak"})
            if ev is not None and ev.kind == "ack":
                return
        raise RspError(f"{self.transport.name} did not acknowledge {_name(data)} "
                       f"({self.retries + 1} attempts)",
                       "is this a GDB server? (OpenOCD's GDB port is 3333, not its telnet port 4444)")

    def _receive(self, timeout: float, request: bytes) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            ev = self._next_event(deadline - time.monotonic(), {"packet"})
            if ev is None:
                raise RspError(f"no reply from {self.transport.name} to {_name(request)} within {timeout:g} s",
                               "the GDB server or the probe stopped answering")
            if ev.ok:
                if self.ack_mode:
                    self.transport.write(b"+")
                return rle_expand(ev.data)
            if not self.ack_mode:
                raise RspError(f"corrupted reply from {self.transport.name} to {_name(request)} (checksum)",
                               "check the connection to the GDB server")
            self.transport.write(b"-")    # ask for it again

    def _next_event(self, timeout: float, kinds: set[str]) -> Event | None:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            for i, ev in enumerate(self._events):
                if ev.kind in kinds:
                    del self._events[i]
                    return ev
            # keep packets for later; acks/naks we are not waiting for are stale
            self._events = [ev for ev in self._events if ev.kind == "packet"]
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._events += [ev for ev in self._reader.feed(self.transport.read(left))
                             if ev.kind != "notification"]

    # ---- memory ----------------------------------------------------------
    def read_memory(self, address: int, length: int) -> bytes:
        out = bytearray()
        chunk_max = max(16, (self.packet_size - 16) // 2)
        while len(out) < length:
            addr = address + len(out)
            n = min(chunk_max, length - len(out))
            reply = self.request(b"m%x,%x" % (addr, n))
            if not reply or _is_error(reply):
                raise RspError(f"cannot read memory at 0x{addr:08x} ({_describe(reply)})",
                               "is the address mapped on this target?")
            try:
                data = bytes.fromhex(reply.decode("ascii"))
            except ValueError as exc:
                raise RspError(f"malformed memory read reply at 0x{addr:08x}") from exc
            if not data:
                raise RspError(f"the GDB server returned no bytes for 0x{addr:08x}")
            out += data[:n]
        return bytes(out)

    def write_memory(self, address: int, data: bytes) -> None:
        """Write with ``X`` (binary) where the server takes it, else ``M`` (hex)."""
        if self.binary_writes is None:
            self.binary_writes = self.request(b"X%x,0:" % address) == b"OK"
        off = 0
        while off < len(data):
            addr = address + off
            if self.binary_writes:
                n, payload = self._binary_chunk(b"X%x,%x:" % (addr, 0), data, off)
                packet = b"X%x,%x:" % (addr, n) + payload
            else:
                n = min(len(data) - off, max(1, (self.packet_size - 32) // 2))
                packet = b"M%x,%x:" % (addr, n) + data[off:off + n].hex().encode("ascii")
            reply = self.request(packet)
            if reply != b"OK":
                raise RspError(f"cannot write memory at 0x{addr:08x} ({_describe(reply)})",
                               "is the address writable on this target?")
            off += n

    def _binary_chunk(self, header: bytes, data: bytes, off: int) -> tuple[int, bytes]:
        """As many bytes from ``data[off:]`` as fit one packet once escaped."""
        room = self.packet_size - len(header) - 16
        out = bytearray()
        n = 0
        while off + n < len(data):
            b = data[off + n]
            cost = 2 if b in _SPECIAL else 1
            if len(out) + cost > room:
                break
            out += escape(bytes((b,)))
            n += 1
        return n, bytes(out)

    # ---- flash -------------------------------------------------------------
    def memory_map(self) -> list[MemoryRegion] | None:
        """The server's memory map, or None if it does not offer one."""
        if not self.supports("qXfer:memory-map:read"):
            return None
        return parse_memory_map(self.qxfer(b"memory-map", b""))

    def qxfer(self, obj: bytes, annex: bytes) -> bytes:
        out = bytearray()
        chunk = max(64, self.packet_size - 16)
        while True:
            reply = self.request(b"qXfer:%s:read:%s:%x,%x" % (obj, annex, len(out), chunk))
            if not reply or reply[:1] not in (b"m", b"l"):
                raise RspError(f"cannot read {obj.decode()} {annex.decode()} from the GDB server "
                               f"({_describe(reply)})")
            out += unescape(reply[1:])
            if reply[:1] == b"l":
                return bytes(out)

    def flash_erase(self, address: int, length: int) -> None:
        reply = self.request(b"vFlashErase:%x,%x" % (address, length), timeout=max(self.timeout, 120.0))
        if reply != b"OK":
            raise RspError(f"flash erase of 0x{address:08x}+0x{length:x} failed ({_describe(reply)})",
                           "is the flash write-protected (option bytes)?")

    def flash_write(self, address: int, data: bytes) -> None:
        off = 0
        while off < len(data):
            addr = address + off
            header = b"vFlashWrite:%x:" % addr
            n, payload = self._binary_chunk(header, data, off)
            reply = self.request(header + payload, timeout=max(self.timeout, 30.0))
            if reply != b"OK":
                raise RspError(f"flash write at 0x{addr:08x} failed ({_describe(reply)})",
                               "is the flash write-protected, or this region not flash?")
            off += n

    def flash_done(self) -> None:
        reply = self.request(b"vFlashDone", timeout=max(self.timeout, 120.0))
        if reply != b"OK":
            raise RspError(f"the GDB server could not finish programming the flash ({_describe(reply)})",
                           "see the server's log")

    # ---- control -------------------------------------------------------------
    def halt_reason(self) -> bytes:
        return self.request(b"?")

    def monitor(self, command: str, timeout: float = 15.0) -> tuple[bytes, str]:
        """Run a ``monitor`` command: (final reply, console output)."""
        text: list[str] = []
        reply = self.request(b"qRcmd," + command.encode("ascii").hex().encode("ascii"),
                             timeout=timeout, console=text.append)
        if reply and reply != b"OK" and not _is_error(reply):
            try:                          # some servers answer with hex output directly
                text.append(bytes.fromhex(reply.decode("ascii")).decode("utf-8", "replace"))
            except ValueError:
                pass
        return reply, "".join(text)

    def core_registers(self) -> list[int]:
        """r0..r15 from ``g`` (the first sixteen 32-bit registers in every Arm layout)."""
        reply = self.request(b"g")
        try:
            raw = bytes.fromhex(reply.decode("ascii"))
        except ValueError as exc:
            raise RspError(f"cannot read the registers ({_describe(reply)})") from exc
        if len(raw) < 64:
            raise RspError(f"cannot read the registers ({_describe(reply)})")
        return [int.from_bytes(raw[4 * i:4 * i + 4], "little") for i in range(16)]

    def register_numbers(self) -> dict[str, int]:
        """Register name -> number from the server's target description (empty if none)."""
        if not self.supports("qXfer:features:read"):
            return {}
        return register_numbers(lambda annex: self.qxfer(b"features", annex.encode("ascii")))

    def write_register(self, number: int, value: int) -> bool:
        """``P``: False if the server does not know the packet."""
        reply = self.request(b"P%x=%s" % (number, value.to_bytes(4, "little").hex().encode("ascii")))
        if reply == b"":
            return False
        if reply != b"OK":
            raise RspError(f"cannot write register {number} ({_describe(reply)})")
        return True

    def detach(self) -> None:
        """``D``: the server lets the target run and ends the session."""
        reply = self.request(b"D")
        if reply not in (b"OK", b""):
            raise RspError(f"detach failed ({_describe(reply)})", "reset the board by hand to start the firmware")


def _is_error(reply: bytes) -> bool:
    return len(reply) == 3 and reply[:1] == b"E" and all(c in b"0123456789abcdefABCDEF" for c in reply[1:])


def _describe(reply: bytes) -> str:
    if reply == b"":
        return "not supported by the server"
    if _is_error(reply):
        return f"error {reply.decode()}"
    text = reply[:40].decode("ascii", "replace")
    return f"reply {text!r}"


def _name(data: bytes) -> str:
    """A short name for a request in messages (its letters before any argument)."""
    head = data.split(b":", 1)[0].split(b",", 1)[0]
    if head[:1] in (b"m", b"M", b"X", b"P"):
        head = head[:1]
    return repr(head[:24].decode("ascii", "replace"))
