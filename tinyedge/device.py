"""Talk to the validation firmware over a serial port, a board's or an emulator's.

    with DeviceClient("socket://127.0.0.1:4321", timeout=5) as dev:
        info = dev.hello()
        result = dev.infer([input_bytes])

The same code reaches ``/dev/ttyACM0`` and QEMU's/Renode's TCP UART (pyserial
``serial_for_url``). What a bench does to a link is handled here:

* A lost or corrupted frame (CRC, COBS, sequence number) is sent again; the
  firmware answers a repeated request from its stored response, so nothing
  runs twice.
* No wait is longer than ``timeout``: every request -- an inference included --
  is answered or given up within ``timeout`` seconds of being sent, retries
  included, and the error then says what was last heard from the device.
* A device that resets mid-run announces itself with a BOOT frame; one that
  lost what it was sent without the host seeing its banner is caught by the
  inputs' CRC that RUN carries (the device refuses to run on other bytes) and
  by the outputs' CRC RUN answers with. Either way :meth:`DeviceClient.recovering`
  checks that the device still runs the same firmware and does the step again
  from scratch.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, TypeVar

from tinyedge import protocol as p
from tinyedge.errors import TinyEdgeError
from tinyedge.protocol import Cmd, Msg, Status, TensorSpec

__all__ = ["DeviceClient", "DeviceInfo", "DeviceReset", "InferResult", "Calibration", "TensorSpec"]

T = TypeVar("T")

SILENT_HINT = "device silent: is the firmware running? right port/baud?"
STOPPED_HINT = ("the device stopped answering: did it hang or crash (a debugger shows where), lose "
                "power, or was it unplugged?")
POLL_INTERVAL = 0.05   # seconds a single port read may block
DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 5
# The first HELLO of a session is re-sent quickly if unanswered: a device that
# has just reset (or an emulated STM32 USART not yet enabled) drops it.
HELLO_FIRST_TIMEOUT = 0.5
# Retransmission timer (after RFC 6298): start, floor and ceiling of the wait
# before a request is sent again, on top of the time its bytes take on the
# line and the device's work; doubled after every timeout, re-estimated from
# the round trips of requests answered at the first attempt.
RTO_INITIAL = 0.5
RTO_MIN = 0.5
RTO_MAX = 8.0
# A step (one sample) is done again at most this many times after device resets.
MAX_RESETS_PER_STEP = 3
# Data per WRITE/READ frame adapts to the line: the first chunk is as large as
# the device allows; a chunk lost twice to corruption is given up and its data
# sent in halves (and so are the chunks after it), and 4 chunks in a row that
# get through at once double the size again. On a clean line every frame stays
# full; on a noisy one frames shrink until most get through (a frame of n bytes
# survives a byte error rate e with probability (1 - e)^n).
MIN_CHUNK = 32
GROW_AFTER = 4
NOISE_SAMPLE = 48      # bytes of unreadable data kept to show the user


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
    stack: int | None = None  # bytes of stack the run used (painted high-water mark); None: unknown


@dataclass(frozen=True)
class Calibration:
    instructions: int  # executed by the timed loop (2 per iteration)
    ticks: int
    cycles: int


@dataclass(frozen=True)
class ResetEvent:
    """One device reset the client noticed (and recovered from, unless too many)."""

    step: str          # what was being done, e.g. "sample 3"
    during: str        # the request in flight, e.g. "WRITE"
    detected_by: str   # "banner" (BOOT frame) or "state check" (CRC of inputs/outputs)
    at: float          # seconds since the port was opened


class DeviceReset(TinyEdgeError):
    """The device restarted, or no longer holds what it was sent (mid-step)."""

    def __init__(self, during: str, detected_by: str, detail: str) -> None:
        super().__init__(f"the device reset during {during} ({detail})",
                         "the board restarted: check its power and reset line, and any watchdog")
        self.during = during
        self.detected_by = detected_by


class _Smaller(Exception):
    """A chunk failed twice to corruption: send its data in smaller pieces."""


class _Retry(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DeviceClient:
    """A connection to the validation firmware.

    ``timeout`` bounds every wait on the device (seconds): each request is
    answered, retries included, within ``timeout`` of being sent, or fails.
    ``run_time`` is how long one inference may take on the device (a
    conservative estimate, see :mod:`tinyedge.timeouts`): RUN is not sent
    again before it has passed. Default: a quarter of ``timeout``.
    ``timeout_note`` says where ``timeout`` came from, for messages.
    ``retries`` is how many times a request is sent again after a lost or
    corrupted answer. ``port`` injects an already open serial-like object
    (tests).
    """

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT, *, baudrate: int = 115200,
                 retries: int = DEFAULT_RETRIES, run_time: float | None = None, timeout_note: str = "",
                 port: SerialLike | None = None) -> None:
        if not timeout > 0 or retries < 0 or (run_time is not None and not run_time >= 0):
            raise ValueError("timeout must be positive, run_time >= 0 and retries >= 0")
        self.url = url
        self.timeout = float(timeout)
        self.run_time = float(run_time) if run_time is not None else self.timeout / 4
        self.timeout_note = timeout_note
        self.baudrate = baudrate
        self.retries = retries
        self.info: DeviceInfo | None = None
        self.stats = {"sent": 0, "retries": 0, "corrupted": 0, "stale": 0, "nacks": 0,
                      "bytes_out": 0, "bytes_in": 0, "resets": 0}
        self.resets: list[ResetEvent] = []
        self._reader = p.FrameReader()
        self._pending: list[bytes | None] = []
        self._seq = random.randrange(1, 0x10000)
        self._chunk_limit: int | None = None   # None: as large as the device allows
        self._clean_chunks = 0
        self._noisy = False                      # the last request needed a retry for corruption
        self._rto = RTO_INITIAL
        self._srtt: float | None = None
        self._rttvar = 0.0
        self._received_any = False   # any byte during the current request
        self._opened = time.monotonic()
        self._last_byte_at: float | None = None
        self._last_frame: tuple[str, float] | None = None   # (what, when)
        self._frames_ok = 0
        self._noise = bytearray()    # the first unreadable bytes (a wrong port or baud)
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
        """Ask what the firmware runs: board, core, clock, versions, model, tensors.

        A BOOT banner meanwhile is no reset to recover from: there is no
        session state to lose yet."""
        self.info = None
        return self._hello()

    def _hello(self) -> DeviceInfo:
        try:
            h = p.parse_hello(self._request(Cmd.HELLO, first_timeout=min(self.timeout, HELLO_FIRST_TIMEOUT)))
        except DeviceReset:
            raise
        except TinyEdgeError as exc:
            raise self._not_tinyedge(exc) from None
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

    def recovering(self, step: Callable[[], T], what: str = "this step") -> T:
        """Run ``step``; when the device resets meanwhile, check that it still runs
        the same firmware and run ``step`` again from scratch (a bounded number of
        times). ``step`` must send everything the device needs (inputs included)."""
        for attempt in range(MAX_RESETS_PER_STEP + 1):
            try:
                return step()
            except DeviceReset as reset:
                self.stats["resets"] += 1
                self.resets.append(ResetEvent(what, reset.during, reset.detected_by,
                                              round(time.monotonic() - self._opened, 3)))
                if attempt == MAX_RESETS_PER_STEP:
                    raise TinyEdgeError(
                        f"the device reset {attempt + 1} times during {what} (last during "
                        f"{reset.during}, noticed by its {reset.detected_by})",
                        "it may crash or trip a watchdog on this input, or its power is unstable; "
                        "the samples completed so far are in the report") from None
                self._reconnect()
        raise AssertionError("unreachable")

    def infer(self, inputs: list[bytes], what: str = "one inference") -> InferResult:
        """Write the inputs, run the network once, read the outputs (again from
        scratch if the device resets meanwhile). ``what`` names it in messages."""
        return self.recovering(lambda: self._infer_once(inputs), what)

    def _infer_once(self, inputs: list[bytes]) -> InferResult:
        info = self._session()
        self.write_inputs(inputs)
        ticks, cycles, crc, stack = p.parse_run(self._request(Cmd.RUN, p.run_request(p.crc32_of(inputs)),
                                                              work=self.run_time))
        outputs = [self._read_chunked(Cmd.READ, p.read_request, index, spec.bytes)
                   for index, spec in enumerate(info.outputs)]
        self._check_crc(crc, outputs, "READ")
        return InferResult(outputs, ticks, cycles, stack)

    def run_until(self, last_op: int, inputs: list[bytes]) -> tuple[InferResult, int]:
        """Run ops 0..``last_op`` from the initial state on ``inputs``, which must be
        what was last written (per-layer comparison). Returns the timing and the
        CRC-32 of op ``last_op``'s outputs, for :meth:`check_crc`."""
        ticks, cycles, crc, stack = p.parse_run(self._request(
            Cmd.RUN_UNTIL, p.run_until_request(last_op, p.crc32_of(inputs)), work=self.run_time))
        return InferResult([], ticks, cycles, stack), crc

    def write_inputs(self, inputs: list[bytes]) -> None:
        """Write every input tensor, in chunks."""
        info = self._session()
        self._check_inputs(info, inputs)
        for index, data in enumerate(inputs):
            self._transfer(Cmd.WRITE, len(data), p.write_chunk_size(info.max_payload),
                           lambda off, n: p.write_request(index, off, data[off:off + n]))

    def op_info(self, entry: int) -> tuple[int, int, int]:
        """Entry ``entry`` of the firmware's op-output table: (op, output number, bytes)."""
        return p.parse_op_info(self._request(Cmd.OP_INFO, p.op_info_request(entry)))

    def read_op_output(self, entry: int, nbytes: int) -> bytes:
        """The bytes of op-output table entry ``entry`` as the last run left them."""
        return self._read_chunked(Cmd.READ_OP, p.read_op_request, entry, nbytes)

    def check_crc(self, expected: int, parts: list[bytes], what: str) -> None:
        """Raise DeviceReset unless ``parts`` are what the device said it computed."""
        self._check_crc(expected, parts, what)

    def calibrate(self, iterations: int = 1_000_000) -> Calibration:
        """Time a loop of exactly ``2 * iterations`` instructions on the device."""
        if not 0 <= iterations < 1 << 32:
            raise ValueError("iterations must fit in 32 bits")
        ticks, cycles = p.parse_timing(self._request(Cmd.CALIBRATE, p.calibrate_request(iterations),
                                                     work=self.run_time))
        return Calibration(2 * iterations, ticks, cycles)

    def echo(self, data: bytes) -> bytes:
        """Round-trip ``data`` through the device (link test)."""
        return self._request(Cmd.ECHO, data)

    # ---- sessions and resets ------------------------------------------------
    def _session(self) -> DeviceInfo:
        return self.info or self.hello()

    def _reconnect(self) -> None:
        """After a reset: the device must still run the very same firmware."""
        before = self.info
        after = self.hello()
        if before is not None and after != before:
            changed = [name for name in ("model_sha256", "board", "core", "generator_version",
                                         "max_payload", "inputs", "outputs")
                       if getattr(before, name) != getattr(after, name)]
            raise TinyEdgeError(
                f"after a reset {self.url} runs other firmware ({', '.join(changed)} changed; "
                f"model SHA-256 now {after.model_sha256[:12]}..., was {before.model_sha256[:12]}...)",
                "someone flashed the board mid-run, or this is another board: "
                "start again with --resume once the right firmware runs")

    def _check_crc(self, expected: int, parts: list[bytes], what: str) -> None:
        if p.crc32_of(parts) != expected:
            raise DeviceReset(what, "state check", "the bytes read back are not those the device computed")

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

    def _read_chunked(self, cmd: Cmd, make_request: Callable[[int, int, int], bytes], index: int,
                      nbytes: int) -> bytes:
        """``nbytes`` of tensor ``index``, one READ-like request per chunk that fits a frame."""
        info = self._session()
        parts = self._transfer(cmd, nbytes, p.read_chunk_size(info.max_payload),
                               lambda off, n: make_request(index, off, n))
        return b"".join(parts)

    def _transfer(self, cmd: Cmd, total: int, max_chunk: int,
                  make: Callable[[int, int], bytes]) -> list[bytes]:
        """Move ``total`` bytes in requests built by ``make(offset, n)``, n bytes each at
        most the current chunk size (adapted to the line, see MIN_CHUNK)."""
        answers: list[bytes] = []
        offset = 0
        while offset < total:
            n = min(self._chunk_limit or max_chunk, max_chunk, total - offset)
            try:
                answer = self._request(cmd, make(offset, n), give_way=n > MIN_CHUNK)
            except _Smaller:
                self._chunk_limit = max(MIN_CHUNK, n // 2)
                self._clean_chunks = 0
                continue
            if cmd != Cmd.WRITE and len(answer) != n:
                raise p.ProtocolError(f"{p.cmd_name(cmd)} returned {len(answer)} bytes, asked for {n}")
            if self._noisy:
                self._clean_chunks = 0
            elif self._chunk_limit is not None and n == self._chunk_limit:
                self._clean_chunks += 1
                if self._clean_chunks >= GROW_AFTER:
                    self._chunk_limit = None if 2 * n >= max_chunk else 2 * n
                    self._clean_chunks = 0
            answers.append(answer)
            offset += n
        return answers

    def _next_seq(self) -> int:
        self._seq = self._seq % 0xFFFF + 1   # 1..65535; 0 is for device messages
        return self._seq

    def _line_time(self, nbytes: int) -> float:
        """Seconds ``nbytes`` take on the line (8N1: 10 bits a byte); 0 for emulators."""
        return 0.0 if self.url.startswith("socket://") else 10.0 * nbytes / self.baudrate

    def _request(self, cmd: Cmd, payload: bytes = b"", *, work: float = 0.0,
                 first_timeout: float | None = None, give_way: bool = False) -> bytes:
        """Send one request, retrying, within ``self.timeout``; return the response
        payload after the status. ``work``: seconds the device may compute before
        it answers (RUN); it is not sent again sooner. ``give_way``: raise _Smaller
        after two attempts lost to corruption (the caller splits the data)."""
        seq = self._next_seq()
        wire = b"\x00" + p.encode_frame(cmd, seq, payload)
        answer_bytes = p.FRAME_OVERHEAD + 2 + (self.info.max_payload if self.info else 256)
        start = time.monotonic()
        deadline = start + self.timeout
        problems: list[str] = []
        self._received_any = False
        attempts = 0
        backoff = 1.0
        self._noisy = False
        while attempts <= self.retries:
            now = time.monotonic()
            if now >= deadline - POLL_INTERVAL / 2:
                break
            attempts += 1
            if attempts > 1:
                self.stats["retries"] += 1
            self._write(wire)
            if attempts == 1 and first_timeout:
                wait = first_timeout
            else:
                wait = work + self._line_time(len(wire) + answer_bytes) + self._rto
            wait *= backoff
            if attempts > self.retries:
                wait = deadline - now      # the last attempt: wait for it as long as allowed
            try:
                rsp = self._await(cmd, seq, min(now + wait, deadline))
            except _Retry as retry:
                problems.append(retry.reason)
                if retry.reason == "timeout":
                    backoff *= 2
                    continue
                self._noisy = True
                if give_way and sum(r != "timeout" for r in problems) >= 2:
                    raise _Smaller() from None
                continue
            if attempts == 1 and not first_timeout and not work:
                self._observe_rtt(time.monotonic() - now)
            return self._check_status(cmd, rsp)
        raise self._give_up(cmd, problems, attempts, start)

    def _observe_rtt(self, rtt: float) -> None:
        """RFC 6298 2.2/2.3: smoothed round trip and its variation -> retransmission timer."""
        rtt = max(rtt, 0.0)
        if self._srtt is None:
            self._srtt, self._rttvar = rtt, rtt / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - rtt)
            self._srtt = 0.875 * self._srtt + 0.125 * rtt
        self._rto = min(RTO_MAX, max(RTO_MIN, self._srtt + 4 * self._rttvar))

    def _give_up(self, cmd: Cmd, problems: list[str], attempts: int, start: float) -> TinyEdgeError:
        waited = time.monotonic() - start
        bound = f"{self.timeout:g} s" + (f" ({self.timeout_note})" if self.timeout_note else "")
        if not self._received_any:
            hint = SILENT_HINT if self._last_byte_at is None else STOPPED_HINT
            return TinyEdgeError(f"no answer from {self.url} to {p.cmd_name(cmd)} within {bound}: "
                                 f"{attempts} attempt(s) in {waited:.1f} s; {self.last_heard()}", hint)
        summary = ", ".join(sorted(set(problems)))
        return TinyEdgeError(f"{p.cmd_name(cmd)} failed after {attempts} attempt(s) in {waited:.1f} s "
                             f"(limit {bound}): {summary}; {self.last_heard()}",
                             "the link loses or corrupts data: check the cable, baud rate "
                             "and that nothing else uses the port")

    def last_heard(self) -> str:
        """What the device last said, and how long ago (for messages)."""
        now = time.monotonic()
        if self._last_byte_at is None:
            return f"nothing heard from it since the port was opened {now - self._opened:.1f} s ago"
        if self._last_frame is not None and self._last_frame[1] >= self._last_byte_at - 1e-3:
            what, when = self._last_frame
            return f"last heard {now - when:.1f} s ago: {what}"
        tail = f" (after {self._last_frame[0]})" if self._last_frame else ""
        return f"last heard {now - self._last_byte_at:.1f} s ago: bytes that were not a frame{tail}"

    def _not_tinyedge(self, exc: TinyEdgeError) -> TinyEdgeError:
        """HELLO failed: if only noise came back, this is not tinyedge firmware (or the baud is wrong)."""
        if self._frames_ok or not self._noise:
            return exc
        sample = bytes(self._noise)
        return TinyEdgeError(
            f"{self.url} does not speak the tinyedge protocol: it sent bytes but not one valid frame "
            f"(first bytes: {sample!r})",
            f"is it the right port (`tinyedge devices` lists them) and baud rate (now {self.baudrate})? "
            f"Is the tinyedge validation firmware flashed? Or does the line corrupt everything?")

    def _await(self, cmd: Cmd, seq: int, deadline: float) -> bytes:
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
            self._frames_ok += 1
            self._last_frame = (f"{p.frame_name(frame.cmd)} (seq {frame.seq})" if frame.seq
                                else p.frame_name(frame.cmd), time.monotonic())
            # device messages carry seq 0, which no request uses (the answer to a
            # request 0x7D..0x7F would otherwise read as BOOT, NACK or FAULT)
            if frame.cmd == Msg.FAULT and frame.seq == 0:
                text = frame.payload.decode("ascii", errors="replace")
                raise TinyEdgeError(f"the firmware crashed: {text}",
                                    "the firmware stopped; look up pc/lr in build/firmware.map "
                                    "or with arm-none-eabi-addr2line -e build/firmware.elf")
            if frame.cmd == Msg.BOOT and frame.seq == 0:
                if self.info is not None:
                    raise DeviceReset(p.cmd_name(cmd), "banner", "it sent its BOOT banner")
                continue   # no session yet: nothing was lost
            if frame.cmd == Msg.NACK and frame.seq == 0:
                self.stats["nacks"] += 1
                raise _Retry("device received a corrupted request")
            if frame.cmd == cmd | p.RSP_FLAG and frame.seq == seq:
                return frame.payload
            self.stats["stale"] += 1   # an answer to an earlier attempt: skip it

    def _check_status(self, cmd: Cmd, rsp: bytes) -> bytes:
        if not rsp:
            raise p.ProtocolError(f"empty {p.cmd_name(cmd)} response")
        if rsp[0] == Status.INPUT_MISMATCH and cmd in (Cmd.RUN, Cmd.RUN_UNTIL):
            raise DeviceReset(p.cmd_name(cmd), "state check",
                              "it no longer holds the inputs written to it")
        if rsp[0] != Status.OK:
            try:
                status = Status(rsp[0]).name
            except ValueError:
                status = f"status {rsp[0]}"
            raise TinyEdgeError(f"the device rejected {p.cmd_name(cmd)}: {status}",
                                "the firmware was built for a different model or tinyedge version; "
                                "regenerate it")
        return rsp[1:]

    def _next_wire(self, deadline: float) -> bytes | None:
        """The next complete frame from the port, COBS-encoded (None: garbage)."""
        while not self._pending:
            if time.monotonic() >= deadline:
                raise _Retry("timeout")
            data = self._read()
            if data:
                if not self._frames_ok and len(self._noise) < NOISE_SAMPLE:
                    self._noise += data[:NOISE_SAMPLE - len(self._noise)]
                self._received_any = True
                self._last_byte_at = time.monotonic()
                self.stats["bytes_in"] += len(data)
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
        self.stats["bytes_out"] += len(data)
        try:
            self._port.write(data)
            self._port.flush()
        except Exception as exc:  # noqa: BLE001
            raise _lost(self.url, exc) from exc


def _lost(url: str, exc: Exception) -> TinyEdgeError:
    return TinyEdgeError(f"connection to {url} lost: {exc}",
                         "the device was unplugged or the emulator stopped")


def check_port(url: str) -> None:
    """A serial port given as a device path must exist: checked before any work
    (generate, build, flash), not when the port is opened at the end."""
    if os.name == "posix" and "://" not in url and not os.path.exists(url):
        raise TinyEdgeError(f"--port {url}: no such serial port",
                            "`tinyedge devices` lists the serial ports attached; or give --port auto")


def _open(url: str, baudrate: int) -> Any:
    import serial  # pyserial; imported here so the rest works without it

    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=POLL_INTERVAL,
                                     write_timeout=10.0)
    except (serial.SerialException, ValueError, OSError) as exc:
        raise TinyEdgeError(f"cannot open {url}: {exc}",
                            "check the port name (e.g. /dev/ttyACM0) and that no other "
                            "program holds it; for an emulator use socket://127.0.0.1:PORT") from exc
