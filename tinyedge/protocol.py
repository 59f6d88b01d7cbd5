"""Host side of the tinyedge serial protocol: framing, commands, payload layouts.

Pure functions and data, no I/O (the port is in :mod:`tinyedge.device`); the
device side is ``firmware_templates/app/te_protocol.c`` and ``main.c.j2``.
The specification is ``docs/protocol.md``; in brief:

    wire  = COBS(raw) 0x00                       (frames delimited by 0x00)
    raw   = cmd:u8 seq:u16 payload crc32:u32     (little-endian)
    crc32 = zlib.crc32(cmd seq payload)

The host sends requests; the device answers each with ``cmd | 0x80`` and the
same ``seq``; the first payload byte of a response is a :class:`Status`.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from tinyedge.errors import TinyEdgeError

# 2: RUN_UNTIL, OP_INFO, READ_OP (per-layer comparison)
# 3: BOOT banner; RUN and RUN_UNTIL carry the inputs' CRC-32 and answer with the
#    outputs' CRC-32 (a device that reset mid-sample is caught); default
#    max payload 1024
# 4: the model's name in HELLO; RUN and RUN_UNTIL answer with the stack the run
#    used (painted stack's high-water mark), and time the same code after
#    restarting SysTick at a fixed phase (instruction counts are identical run to run)
PROTOCOL_VERSION = 4
STACK_UNKNOWN = 0xFFFFFFFF  # RUN's stack field where the firmware cannot measure it (a library)
FRAME_HEADER = 3          # cmd + seq
FRAME_CRC = 4
FRAME_OVERHEAD = FRAME_HEADER + FRAME_CRC
RSP_FLAG = 0x80
WRITE_HEADER = 5          # u8 index, u32 offset
READ_HEADER = 1           # status byte before the data


class Cmd(IntEnum):
    HELLO = 0x01
    TENSOR_INFO = 0x02
    WRITE = 0x03
    RUN = 0x04
    READ = 0x05
    CALIBRATE = 0x06
    ECHO = 0x07
    RUN_UNTIL = 0x08
    OP_INFO = 0x09
    READ_OP = 0x0A


class Msg(IntEnum):
    """Unsolicited device messages (sent with seq 0)."""

    BOOT = 0xFD   # payload: the HELLO answer (status + fields); the device (re)started
    NACK = 0xFE   # payload: u8 status; a request arrived unreadable
    FAULT = 0xFF  # payload: text; the firmware crashed and stopped


class Status(IntEnum):
    OK = 0
    UNKNOWN_CMD = 1
    BAD_LENGTH = 2
    BAD_INDEX = 3
    OUT_OF_RANGE = 4
    BAD_FRAME = 5
    TOO_LONG = 6
    INPUT_MISMATCH = 7  # RUN/RUN_UNTIL: the inputs the device holds are not the host's


# TFLite TensorType numbers (te_types.h uses the same) -> names.
DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64",
          6: "bool", 7: "int16", 9: "int8", 10: "float64"}


class ProtocolError(TinyEdgeError):
    """A frame that is not valid protocol (bad COBS, CRC, length or layout)."""

    def __init__(self, message: str, hint: str = "the serial link corrupted data, "
                 "or the firmware and this tinyedge speak different protocol versions") -> None:
        super().__init__(message, hint)


# ---------------------------------------------------------------------------
# COBS (Cheshire & Baker, 1999): no 0x00 inside a frame.
# ---------------------------------------------------------------------------

def cobs_encode(data: bytes) -> bytes:
    out = bytearray([0])
    code_at, code = 0, 1
    for i, byte in enumerate(data):
        if byte:
            out.append(byte)
            code += 1
        if byte == 0 or (code == 0xFF and i + 1 < len(data)):
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
    out[code_at] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    if 0 in data:
        raise ProtocolError("bad COBS encoding in a received frame (zero byte)")
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        i += 1
        if code == 0 or i + code - 1 > n:
            raise ProtocolError("bad COBS encoding in a received frame")
        out += data[i:i + code - 1]
        i += code - 1
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


# ---------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Frame:
    cmd: int
    seq: int
    payload: bytes


def encode_frame(cmd: int, seq: int, payload: bytes = b"") -> bytes:
    """COBS(cmd seq payload crc) followed by the 0x00 delimiter."""
    if not 0 <= cmd <= 0xFF or not 0 <= seq <= 0xFFFF:
        raise ValueError("cmd must fit u8 and seq u16")
    raw = struct.pack("<BH", cmd, seq) + bytes(payload)
    raw += struct.pack("<I", zlib.crc32(raw))
    return cobs_encode(raw) + b"\x00"


def decode_frame(wire: bytes) -> Frame:
    """Decode one frame (without its 0x00 delimiter); raises ProtocolError."""
    raw = cobs_decode(wire)
    if len(raw) < FRAME_OVERHEAD:
        raise ProtocolError(f"frame too short ({len(raw)} bytes)")
    body, (crc,) = raw[:-FRAME_CRC], struct.unpack("<I", raw[-FRAME_CRC:])
    if zlib.crc32(body) != crc:
        raise ProtocolError("CRC mismatch in a received frame")
    cmd, seq = struct.unpack("<BH", body[:FRAME_HEADER])
    return Frame(cmd, seq, body[FRAME_HEADER:])


class FrameReader:
    """Split a byte stream at 0x00 delimiters into frames (still COBS-encoded).

    Empty frames (delimiter runs) are skipped; a frame longer than
    ``max_frame`` is dropped whole and reported as ``None`` (garbage).
    """

    def __init__(self, max_frame: int = 1 << 16) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[bytes | None]:
        frames: list[bytes | None] = []
        *complete, rest = bytes(data).split(b"\x00")
        for part in complete:
            self._append(part)
            frames.extend(self._end())
        self._append(rest)
        return frames

    def _append(self, chunk: bytes) -> None:
        if self._overflow or len(self._buf) + len(chunk) > self.max_frame:
            self._overflow = True
            self._buf.clear()
        else:
            self._buf += chunk

    def _end(self) -> list[bytes | None]:
        frame, overflow = bytes(self._buf), self._overflow
        self._buf.clear()
        self._overflow = False
        if overflow:
            return [None]
        return [frame] if frame else []


# ---------------------------------------------------------------------------
# Payloads
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str                 # "int8", "uint8", "int32", "float32", ...
    shape: tuple[int, ...]
    scale: float               # 0.0 when not quantized
    zero_point: int
    bytes: int


@dataclass(frozen=True)
class Hello:
    protocol_version: int
    max_payload: int
    num_inputs: int
    num_outputs: int
    clock_hz: int
    model_sha256: str          # hex
    board: str
    core: str
    runtime_version: str
    generator_version: str
    model_name: str = ""      # protocol 4; "" from older firmware


class _Cursor:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def take(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ProtocolError(f"{self.what} response too short")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def text(self) -> str:
        (n,) = self.take("<B")
        raw: bytes = self.take(f"<{n}s")[0]
        return raw.decode("utf-8", errors="replace")


def parse_hello(payload: bytes) -> Hello:
    """Parse a HELLO response payload (after the status byte)."""
    c = _Cursor(payload, "HELLO")
    version, max_payload, n_in, n_out, clock = c.take("<BHBBI")
    (sha,) = c.take("<32s")
    board, core, runtime, generator = c.text(), c.text(), c.text(), c.text()
    # protocol 4 appends the model's name; older firmware ends here (its
    # version is refused by the client, but its HELLO must still parse to say so)
    name = c.text() if version >= 4 else ""
    return Hello(version, max_payload, n_in, n_out, clock, sha.hex(), board, core, runtime, generator, name)


def parse_tensor_info(payload: bytes) -> TensorSpec:
    """Parse a TENSOR_INFO response payload (after the status byte)."""
    c = _Cursor(payload, "TENSOR_INFO")
    dtype, rank = c.take("<BB")
    shape = c.take(f"<{rank}i") if rank else ()
    scale, zero_point, nbytes = c.take("<fiI")
    name = c.text()
    return TensorSpec(name, DTYPES.get(dtype, f"type{dtype}"), tuple(shape),
                      float(scale), zero_point, nbytes)


def write_request(index: int, offset: int, data: bytes) -> bytes:
    return struct.pack("<BI", index, offset) + data


def read_request(index: int, offset: int, length: int) -> bytes:
    return struct.pack("<BIH", index, offset, length)


def tensor_info_request(is_output: bool, index: int) -> bytes:
    return struct.pack("<BB", 1 if is_output else 0, index)


def calibrate_request(iterations: int) -> bytes:
    return struct.pack("<I", iterations)


def run_request(inputs_crc: int) -> bytes:
    return struct.pack("<I", inputs_crc)


def run_until_request(last_op: int, inputs_crc: int) -> bytes:
    return struct.pack("<HI", last_op, inputs_crc)


def crc32_of(parts: list[bytes]) -> int:
    """CRC-32 of the concatenation of ``parts`` (what RUN carries and answers with)."""
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    return crc


def op_info_request(entry: int) -> bytes:
    return struct.pack("<H", entry)


def parse_op_info(payload: bytes) -> tuple[int, int, int]:
    """OP_INFO response: (op index, output number, bytes)."""
    op, output, nbytes = _Cursor(payload, "OP_INFO").take("<HBI")
    return op, output, nbytes


def read_op_request(entry: int, offset: int, length: int) -> bytes:
    return struct.pack("<HIH", entry, offset, length)


def parse_timing(payload: bytes) -> tuple[int, int]:
    """CALIBRATE response: (ticks, cycles)."""
    ticks, cycles = _Cursor(payload, "CALIBRATE").take("<QI")
    return ticks, cycles


def parse_run(payload: bytes) -> tuple[int, int, int, int | None]:
    """RUN / RUN_UNTIL response: (ticks, cycles, CRC-32 of the outputs it computed,
    bytes of stack the run used or None where not measured). A version 3 answer
    ends before the stack field: it parses with None (the client refuses that
    version at HELLO, but a stray answer must not be misread)."""
    c = _Cursor(payload, "RUN")
    ticks, cycles, crc = c.take("<QII")
    stack: int | None = None
    if len(payload) >= c.pos + 4:
        (raw,) = c.take("<I")
        stack = None if raw == STACK_UNKNOWN else int(raw)
    return ticks, cycles, crc, stack


def write_chunk_size(max_payload: int) -> int:
    return max_payload - WRITE_HEADER


def read_chunk_size(max_payload: int) -> int:
    return max_payload - READ_HEADER


def cmd_name(cmd: int) -> str:
    """A request code's name: HELLO, WRITE, ..."""
    try:
        return Cmd(cmd).name
    except ValueError:
        return f"command 0x{cmd:02x}"


def frame_name(cmd: int) -> str:
    """What a frame with this code is, in words: "the answer to WRITE", "BOOT", ..."""
    if cmd in Msg.__members__.values():
        return Msg(cmd).name
    if cmd & RSP_FLAG:
        return f"the answer to {cmd_name(cmd & ~RSP_FLAG)}"
    return cmd_name(cmd)
