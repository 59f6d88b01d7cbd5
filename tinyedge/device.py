"""Talk to the validation firmware over a serial port, a board's or an emulator's.

    with DeviceClient("socket://127.0.0.1:4321", timeout=5) as dev:
        info = dev.hello()
        result = dev.infer([input_bytes])

The same code reaches ``/dev/ttyACM0`` and QEMU's/Renode's TCP UART (pyserial
``serial_for_url``). Every request is retried a bounded number of times when
its response is lost or corrupted (CRC, COBS, sequence number); the firmware
answers a repeated request from its stored response, so nothing runs twice.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from tinyedge import protocol as p
from tinyedge.errors import TinyEdgeError
from tinyedge.protocol import Cmd, Msg, Status, TensorSpec

__all__ = ["DeviceClient", "DeviceInfo", "InferResult", "Calibration", "TensorSpec"]

SILENT_HINT = "device silent: is the firmware running? right port/baud?"
POLL_INTERVAL = 0.05   # seconds a single port read may block
# The first HELLO of a session is re-sent quickly if unanswered: a device that
# has just reset (or an emulated STM32 USART not yet enabled) drops it.
HELLO_FIRST_TIMEOUT = 0.5


class SerialLike(Protocol):
    """The part of pyserial's ``Serial`` the client uses."""

    timeout: float | None

    @property
    def in_waiting(self) -> int: ...
    def read(self, size: int = 1) -> bytes: ...
    def write(self, data: bytes) -> int | None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class DeviceInfo:
    board: str
    core: str
    clock_hz: int
    runtime_version: str
    generator_version: str
    model_sha256: str                 # hex
    protocol_version: int
    max_payload: int
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    model_name: str = ""              # the model the firmware was generated from (protocol 3)


@dataclass(frozen=True)
class InferResult:
    outputs: list[bytes]
    ticks: int        # SysTick ticks at the CPU clock (instructions / N under QEMU icount)
    cycles: int = 0   # DWT CYCCNT delta (mod 2^32); 0 where there is none (QEMU, M0)


@dataclass(frozen=True)
class Calibration:
    instructions: int  # executed by the timed loop (2 per iteration)
    ticks: int
    cycles: int


class _Retry(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DeviceClient:
    """A connection to the validation firmware.

    ``timeout`` bounds each attempt of each request (seconds); ``run_timeout``
    bounds an inference (default: ``max(timeout, 120)``). ``retries`` is how
    many times a request is sent again after a lost or corrupted answer.
    ``port`` injects an already open serial-like object (tests).
    """

    def __init__(self, url: str, timeout: float = 5.0, *, baudrate: int = 115200,
                 retries: int = 3, run_timeout: float | None = None,
                 port: SerialLike | None = None) -> None:
        if timeout <= 0 or retries < 0:
            raise ValueError("timeout must be positive and retries >= 0")
        self.url = url
        self.timeout = float(timeout)
        self.run_timeout = float(run_timeout) if run_timeout else max(self.timeout, 120.0)
        self.retries = retries
        self.info: DeviceInfo | None = None
        self.stats = {"sent": 0, "retries": 0, "corrupted": 0, "stale": 0}
        self._reader = p.FrameReader()
        self._pending: list[bytes | None] = []
        self._seq = random.randrange(1, 0x10000)
        self._received_any = False   # any byte during the current request
        self._port: SerialLike = port if port is not None else _open(url, baudrate)
        if port is not None and getattr(self._port, "timeout", None) is None:
            self._port.timeout = POLL_INTERVAL

    # ---- lifecycle ------------------------------------------------------
    def close(self) -> None:
        try:
            self._port.close()
        except Exception:  # noqa: BLE001 - closing a dead port is not an error
            pass

    def __enter__(self) -> "DeviceClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- commands -------------------------------------------------------
    def hello(self) -> DeviceInfo:
        """Ask what the firmware runs: board, core, clock, versions, model, tensors."""
        first = None if self.info else min(self.timeout, HELLO_FIRST_TIMEOUT)
        h = p.parse_hello(self._request(Cmd.HELLO, first_timeout=first))
        if h.protocol_version != p.PROTOCOL_VERSION:
            raise TinyEdgeError(
                f"firmware speaks protocol version {h.protocol_version}, "
                f"this tinyedge speaks {p.PROTOCOL_VERSION}",
                "regenerate and rebuild the firmware with this tinyedge")
        if h.max_payload < p.WRITE_HEADER + 1:
            raise p.ProtocolError(f"device reports an unusable max payload {h.max_payload}")
        inputs = [p.parse_tensor_info(self._request(Cmd.TENSOR_INFO, p.tensor_info_request(False, i)))
                  for i in range(h.num_inputs)]
        outputs = [p.parse_tensor_info(self._request(Cmd.TENSOR_INFO, p.tensor_info_request(True, i)))
                   for i in range(h.num_outputs)]
        self.info = DeviceInfo(h.board, h.core, h.clock_hz, h.runtime_version, h.generator_version,
                               h.model_sha256, h.protocol_version, h.max_payload, inputs, outputs,
                               model_name=h.model_name)
        return self.info

    def infer(self, inputs: list[bytes]) -> InferResult:
        """Write the inputs, run the network once, read the outputs."""
        self.write_inputs(inputs)
        info = self.info or self.hello()
        ticks, cycles = p.parse_timing(self._request(Cmd.RUN, timeout=self.run_timeout))
        outputs = [self._read_output(info, index, spec.bytes)
                   for index, spec in enumerate(info.outputs)]
        return InferResult(outputs, ticks, cycles)

    def run_until(self, last_op: int) -> InferResult:
        """Run ops 0..``last_op`` from the initial state on the inputs already written
        (per-layer comparison); no outputs are read."""
        ticks, cycles = p.parse_timing(self._request(Cmd.RUN_UNTIL, p.run_until_request(last_op),
                                                     timeout=self.run_timeout))
        return InferResult([], ticks, cycles)

    def write_inputs(self, inputs: list[bytes]) -> None:
        """Write every input tensor, in chunks."""
        info = self.info or self.hello()
        self._check_inputs(info, inputs)
        chunk = p.write_chunk_size(info.max_payload)
        for index, data in enumerate(inputs):
            for offset in range(0, len(data), chunk):
                self._request(Cmd.WRITE, p.write_request(index, offset, data[offset:offset + chunk]))

    def op_info(self, entry: int) -> tuple[int, int, int]:
        """Entry ``entry`` of the firmware's op-output table: (op, output number, bytes)."""
        return p.parse_op_info(self._request(Cmd.OP_INFO, p.op_info_request(entry)))

    def read_op_output(self, entry: int, nbytes: int) -> bytes:
        """The bytes of op-output table entry ``entry`` as the last run left them."""
        return self._read_chunked(Cmd.READ_OP, p.read_op_request, entry, nbytes)

    def calibrate(self, iterations: int = 1_000_000) -> Calibration:
        """Time a loop of exactly ``2 * iterations`` instructions on the device."""
        if not 0 <= iterations < 1 << 32:
            raise ValueError("iterations must fit in 32 bits")
        ticks, cycles = p.parse_timing(self._request(Cmd.CALIBRATE, p.calibrate_request(iterations),
                                                     timeout=self.run_timeout))
        return Calibration(2 * iterations, ticks, cycles)

    def echo(self, data: bytes) -> bytes:
        """Round-trip ``data`` through the device (link test)."""
        return self._request(Cmd.ECHO, data)

    # ---- helpers --------------------------------------------------------
    @staticmethod
    def _check_inputs(info: DeviceInfo, inputs: list[bytes]) -> None:
        if len(inputs) != len(info.inputs):
            raise TinyEdgeError(f"the model takes {len(info.inputs)} input(s), got {len(inputs)}",
                                "give one byte string per model input")
        for spec, data in zip(info.inputs, inputs):
            if len(data) != spec.bytes:
                raise TinyEdgeError(
                    f"input {spec.name!r} needs {spec.bytes} bytes "
                    f"({spec.dtype} {list(spec.shape)}), got {len(data)}",
                    "quantize the input to the model's input type and shape")

    def _read_output(self, info: DeviceInfo, index: int, nbytes: int) -> bytes:
        return self._read_chunked(Cmd.READ, p.read_request, index, nbytes)

    def _read_chunked(self, cmd: Cmd, make_request: Callable[[int, int, int], bytes], index: int,
                      nbytes: int) -> bytes:
        """``nbytes`` of tensor ``index``, one READ-like request per chunk that fits a frame."""
        info = self.info or self.hello()
        chunk = p.read_chunk_size(info.max_payload)
        out = bytearray()
        for offset in range(0, nbytes, chunk):
            n = min(chunk, nbytes - offset)
            data = self._request(cmd, make_request(index, offset, n))
            if len(data) != n:
                raise p.ProtocolError(f"{_cmd_name(cmd)} returned {len(data)} bytes, asked for {n}")
            out += data
        return bytes(out)

    def _next_seq(self) -> int:
        self._seq = self._seq % 0xFFFF + 1   # 1..65535; 0 is for device messages
        return self._seq

    def _request(self, cmd: Cmd, payload: bytes = b"", timeout: float | None = None,
                 first_timeout: float | None = None) -> bytes:
        """Send one request, retrying; return the response payload after the status."""
        seq = self._next_seq()
        wire = b"\x00" + p.encode_frame(cmd, seq, payload)
        problems: list[str] = []
        self._received_any = False
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["retries"] += 1
            self._write(wire)
            limit = first_timeout if attempt == 0 and first_timeout else timeout or self.timeout
            try:
                rsp = self._await(cmd, seq, limit)
            except _Retry as retry:
                problems.append(retry.reason)
                continue
            return _check_status(cmd, rsp)
        raise self._give_up(cmd, problems)

    def _give_up(self, cmd: Cmd, problems: list[str]) -> TinyEdgeError:
        tries = self.retries + 1
        if not self._received_any:
            return TinyEdgeError(f"no answer from {self.url} to {_cmd_name(cmd)} "
                                 f"({tries} attempt(s), {self.timeout:g} s each)", SILENT_HINT)
        summary = ", ".join(sorted(set(problems)))
        return TinyEdgeError(f"{_cmd_name(cmd)} failed after {tries} attempt(s): {summary}",
                             "the link loses or corrupts data: check the cable, baud rate "
                             "and that nothing else uses the port")

    def _await(self, cmd: Cmd, seq: int, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            wire = self._next_wire(deadline)
            if wire is None:
                self.stats["corrupted"] += 1
                raise _Retry("overlong frame")
            try:
                frame = p.decode_frame(wire)
            except p.ProtocolError as exc:
                self.stats["corrupted"] += 1
                raise _Retry(exc.message) from None
            # device messages carry seq 0, which no request uses (a response to a
            # request 0x7E or 0x7F would otherwise read as NACK or FAULT)
            if frame.cmd == Msg.FAULT and frame.seq == 0:
                text = frame.payload.decode("ascii", errors="replace")
                raise TinyEdgeError(f"the firmware crashed: {text}",
                                    "the firmware stopped; look up pc/lr in build/firmware.map "
                                    "or with arm-none-eabi-addr2line -e build/firmware.elf")
            if frame.cmd == Msg.NACK and frame.seq == 0:
                raise _Retry("device received a corrupted request")
            if frame.cmd == cmd | p.RSP_FLAG and frame.seq == seq:
                return frame.payload
            self.stats["stale"] += 1   # an answer to an earlier attempt: skip it

    def _next_wire(self, deadline: float) -> bytes | None:
        """The next complete frame from the port, COBS-encoded (None: garbage)."""
        while not self._pending:
            if time.monotonic() >= deadline:
                raise _Retry("timeout")
            data = self._read()
            if data:
                self._received_any = True
                self._pending.extend(self._reader.feed(data))
        return self._pending.pop(0)

    def _read(self) -> bytes:
        try:
            waiting = self._port.in_waiting
            return self._port.read(waiting if waiting > 0 else 1)
        except Exception as exc:  # noqa: BLE001 - pyserial raises several types
            raise _lost(self.url, exc) from exc

    def _write(self, data: bytes) -> None:
        self.stats["sent"] += 1
        try:
            self._port.write(data)
            self._port.flush()
        except Exception as exc:  # noqa: BLE001
            raise _lost(self.url, exc) from exc


def _cmd_name(cmd: int) -> str:
    try:
        return Cmd(cmd).name
    except ValueError:
        return f"command 0x{cmd:02x}"


def _check_status(cmd: Cmd, rsp: bytes) -> bytes:
    if not rsp:
        raise p.ProtocolError(f"empty {_cmd_name(cmd)} response")
    if rsp[0] != Status.OK:
        try:
            status = Status(rsp[0]).name
        except ValueError:
            status = f"status {rsp[0]}"
        raise TinyEdgeError(f"the device rejected {_cmd_name(cmd)}: {status}",
                            "the firmware was built for a different model or tinyedge version; "
                            "regenerate it")
    return rsp[1:]


def _lost(url: str, exc: Exception) -> TinyEdgeError:
    return TinyEdgeError(f"connection to {url} lost: {exc}",
                         "the device was unplugged or the emulator stopped")


def _open(url: str, baudrate: int) -> Any:
    import serial  # pyserial; imported here so the rest works without it

    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=POLL_INTERVAL,
                                     write_timeout=10.0)
    except (serial.SerialException, ValueError, OSError) as exc:
        raise TinyEdgeError(f"cannot open {url}: {exc}",
                            "check the port name (e.g. /dev/ttyACM0) and that no other "
                            "program holds it; for an emulator use socket://127.0.0.1:PORT") from exc
