"""Validate firmware on a device or emulator against the oracle (TensorFlow Lite Micro).

Flow: start the emulator (or open the serial port), HELLO (the device must
run this very model), then for each sample send the input, read the output
and the tick count, and compare with the oracle on the same input -- TFLM,
or the TFLite interpreter where TFLM cannot run the model (see
:func:`tinyedge.oracle.choose_oracle`; the report says which). The TFLite
interpreter also gives a second opinion: how many output elements differ from
it, for users who measured accuracy in TFLite; it never decides pass or fail.
The report is rewritten (atomically) after every sample so an interrupted run
loses nothing, and ``resume`` picks up where it stopped; what an existing
report file means for a run is :mod:`tinyedge.reportfile`'s decision.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from tinyedge import __version__
from tinyedge.compiler import CompiledNetwork
from tinyedge.errors import TinyEdgeError
from tinyedge.model import Graph
from tinyedge.model.ir import DTYPES
from tinyedge.oracle import OracleChoice, TfliteInterpreter, choose_oracle
from tinyedge.outputs import write_atomic
from tinyedge.perlayer import LayerResult, compare_layers
from tinyedge.reportfile import REPORT_FORMAT, RunIdentity, check_existing_report, inputs_sha256

ProgressFn = Callable[[int, int, "SampleResult"], None]


@dataclass
class SampleResult:
    index: int
    exact: bool
    mismatches: int  # output values that differ from the oracle
    max_abs_diff: float  # in output units (LSB for integer outputs)
    ticks: int
    instructions: int | None  # emulated: ticks x instructions per tick
    input_sha256: str
    output_hex: str
    oracle_hex: str
    # second opinion (the TFLite interpreter), when the oracle is TFLM: output
    # elements of the device that differ from it, and by how much; None when not run
    tflite_mismatches: int | None = None
    tflite_max_abs_diff: float | None = None
    device_resets: int = 0  # times the device reset during this sample (it was then sent again)
    cycles: int | None = None  # real boards (DWT) and libraries (port layer): CPU cycles
    microseconds: float | None = None  # cycles at the clock HELLO reported (when known)
    stack_bytes: int | None = None  # stack the run used (painted high-water mark); None: not measured


def latency_cycles(timer: str, ticks: int, cycles: int) -> int | None:
    """CPU cycles of one RUN from its (ticks, cycles) answer, or None where the
    board has no cycle counter to report (emulated boards: SysTick only).

    ``dwt``: cycles is the 32-bit DWT count; ticks, SysTick at the CPU clock
    extended to 64 bits, counts the same cycles give or take the few of the
    two reads, so it tells how often CYCCNT wrapped. ``port``: the library's
    ticks already are the port layer's cycle counter extended to 64 bits.
    """
    if timer == "port":
        return ticks
    if timer != "dwt":
        return None
    wraps = round((ticks - cycles) / 2**32)
    return cycles + max(wraps, 0) * 2**32


@dataclass
class ValidationReport:
    model: str
    model_sha256: str
    board: str
    target: str  # "qemu:<machine>" or the serial port
    tinyedge_version: str
    device: dict[str, Any]
    memory: dict[str, Any]
    oracle: dict[str, Any]  # name, version, is_tflm, note
    second_opinion: dict[str, Any] | None  # name, version of the TFLite interpreter; None if not run
    samples: list[SampleResult] = field(default_factory=list)
    complete: bool = False
    per_layer: dict[str, Any] | None = None
    # the link: time limits, baud, retries, corrupted frames, device resets (see link_summary)
    link: dict[str, Any] | None = None
    run: dict[str, Any] | None = None  # the run it belongs to (tinyedge.reportfile.RunIdentity)
    kernels: str | None = None  # the firmware's kernel set (tinyedge.kernels); "unknown" for a bare ELF
    profile: dict[str, Any] | None = None  # --profile: every op's cost (tinyedge.profile.Profile)

    @property
    def all_exact(self) -> bool:
        return bool(self.samples) and all(s.exact for s in self.samples)

    @property
    def first_mismatch(self) -> int | None:
        return next((s.index for s in self.samples if not s.exact), None)

    def second_opinion_summary(self) -> dict[str, Any] | None:
        """Across the run: samples and output elements where the device differs from
        the TFLite interpreter, and the largest difference."""
        checked = [s for s in self.samples if s.tflite_mismatches is not None]
        if self.second_opinion is None or not checked:
            return None
        return {
            "samples": len(checked),
            "samples_differing": sum(1 for s in checked if s.tflite_mismatches),
            "elements_differing": sum(int(s.tflite_mismatches or 0) for s in checked),
            "max_abs_diff": max(float(s.tflite_max_abs_diff or 0.0) for s in checked),
        }

    def summary(self) -> dict[str, Any]:
        ticks = [s.ticks for s in self.samples]
        instr = [s.instructions for s in self.samples if s.instructions is not None]
        cycles = [s.cycles for s in self.samples if s.cycles is not None]
        micros = [s.microseconds for s in self.samples if s.microseconds is not None]
        stacks = [s.stack_bytes for s in self.samples if s.stack_bytes is not None]
        return {
            "stack_bytes_max": max(stacks) if stacks else None,
            "cycles_median": int(np.median(cycles)) if cycles else None,
            "microseconds_median": float(np.median(micros)) if micros else None,
            "samples": len(self.samples),
            "exact": sum(s.exact for s in self.samples),
            "mismatched": sum(not s.exact for s in self.samples),
            "max_abs_diff": max((s.max_abs_diff for s in self.samples), default=0.0),
            "ticks_median": int(np.median(ticks)) if ticks else None,
            "instructions_median": int(np.median(instr)) if instr else None,
            "instructions_min": min(instr) if instr else None,
            "instructions_max": max(instr) if instr else None,
        }

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["format_version"] = REPORT_FORMAT
        d["summary"] = self.summary()
        d["second_opinion_summary"] = self.second_opinion_summary()
        d["all_exact"] = self.all_exact
        return d

    def write(self, path: Path) -> None:
        """Replace the report file atomically: on any failure the last complete report stays."""
        write_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n", "the report")


def _np_dtype(dtype: str) -> np.dtype:
    return np.dtype(next(nt for n, nt in DTYPES.values() if n == dtype))


def compare(out: bytes, ref: np.ndarray) -> tuple[bool, int, float]:
    """(exact, number of differing values, max abs difference) of device vs oracle output."""
    got = np.frombuffer(out, dtype=ref.dtype).reshape(-1)
    want = ref.reshape(-1)
    if got.size != want.size:
        return False, int(want.size), float("inf")
    mism = int(np.count_nonzero(got != want))
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    return mism == 0, mism, float(diff.max()) if diff.size else 0.0


def sample_inputs_sha(sample: Sequence[np.ndarray]) -> str:
    h = hashlib.sha256()
    for x in sample:
        h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class LinkSettings:
    """How to talk to the target: the wait limit (and where it came from), the
    bound on one inference, and the baud rate of a serial port."""

    timeout: float
    timeout_source: str       # "--timeout" or how the default was made
    run_time: float           # RUN is not sent again sooner (the inference bound)
    baud: int


def link_settings(net: CompiledNetwork, emulator: str | None, timeout: float | None,
                  baud: int | None) -> LinkSettings:
    """The default --timeout comes from the model's size and the target's speed
    (tinyedge.timeouts); a --timeout given wins, lower or higher."""
    from tinyedge.timeouts import default_timeout, inference_bound

    assert net.board is not None
    bound = inference_bound(net, emulator)
    if timeout is None:
        timeout = default_timeout(bound)
        source = f"default: 2 x {bound.seconds:.2g} s, the bound on one inference, + 2 s; at least 10 s"
    else:
        if not timeout > 0:
            raise TinyEdgeError(f"--timeout must be positive, got {timeout:g}",
                                "give the longest wait on the device in seconds, e.g. --timeout 30")
        source = "--timeout"
    uart_baud = net.board.uart.baud if net.board.uart is not None else 115200  # library: the port layer's
    return LinkSettings(timeout, source, min(bound.seconds, timeout), baud or uart_baud)


@contextlib.contextmanager
def open_target(board: Any, elf: Path | None, emulator: str | None, port: str | None,
                link: LinkSettings) -> Iterator[tuple[Any, str]]:
    """Yield (DeviceClient, target description); the emulator is always stopped."""
    from tinyedge.device import DeviceClient

    def client_for(url: str) -> DeviceClient:
        note = f"--timeout {link.timeout:g}" if link.timeout_source == "--timeout" else "the default --timeout"
        return DeviceClient(url, timeout=link.timeout, baudrate=link.baud, run_time=link.run_time,
                            timeout_note=note)

    if emulator and elf is None:
        raise TinyEdgeError("no firmware to run in an emulator", "build the project first")
    if emulator == "qemu":
        from tinyedge.emulator.qemu import QemuInstance

        assert elf is not None
        with QemuInstance(board, elf) as q, client_for(q.url) as client:
            yield client, f"qemu:{board.qemu_machine}"
    elif emulator == "renode":
        from tinyedge.emulator.renode import RenodeInstance  # raises a clear error when absent

        assert elf is not None
        with RenodeInstance(board, elf) as r, client_for(r.url) as client:
            yield client, f"renode:{board.renode_platform}"
    elif port:
        with client_for(port) as client:
            yield client, port
    else:
        raise TinyEdgeError("no target given", "pass --emulator qemu or --port /dev/ttyACM0")


def link_summary(client: Any, link: LinkSettings) -> dict[str, Any]:
    """What the report says about the link: limits, traffic, faults, resets."""
    st = client.stats
    resets = [asdict(r) for r in client.resets]
    return {"timeout_s": link.timeout, "timeout_source": link.timeout_source,
            "inference_bound_s": round(link.run_time, 3), "baud": link.baud,
            "requests_sent": st["sent"], "retries": st["retries"], "corrupted_frames": st["corrupted"],
            "nacks": st["nacks"], "bytes_sent": st["bytes_out"], "bytes_received": st["bytes_in"],
            "device_resets": st["resets"], "reset_events": resets}


def _library_on(info: Any, board: Any) -> bool:
    """Firmware of the user's own, with tinyedge's library built for this board's core
    (``generic-cortex-*``): it runs on whatever board the user built it for."""
    from tinyedge.boards import list_boards, load_board

    return info.board in list_boards() and load_board(info.board).is_library and info.core == board.core


def check_device(info: Any, graph: Graph, board: Any) -> None:
    """Refuse a device that is not what we validate: firmware built for another
    board or core (it would be measured against the wrong memories), or for
    another model (named by both names and hashes). The library target for the
    board's core runs on any board with that core."""
    if (info.board, info.core) != (board.name, board.core) and not _library_on(info, board):
        raise TinyEdgeError(
            f"the device runs firmware built for {info.board} ({info.core}), not for {board.name} ({board.core})",
            f"build the firmware for {board.name} (`tinyedge generate ... --board {board.name}` + "
            f"`tinyedge build`), or validate with --board {info.board}",
        )
    if info.model_sha256.lower() != graph.sha256:
        theirs = f"'{info.model_name}'" if info.model_name else "another model"
        raise TinyEdgeError(
            f"the device runs {theirs} (SHA-256 {info.model_sha256[:12]}...), not '{Path(graph.source).stem}' "
            f"(SHA-256 {graph.sha256[:12]}...)",
            "rebuild and flash the firmware for this model (`tinyedge generate` + `tinyedge build`)",
        )
    want_in = [t.nbytes for t in graph.input_tensors]
    got_in = [int(s.bytes) for s in info.inputs]
    want_out = [t.nbytes for t in graph.output_tensors]
    got_out = [int(s.bytes) for s in info.outputs]
    if want_in != got_in or want_out != got_out:
        raise TinyEdgeError(
            f"device tensors differ from the model: inputs {got_in} vs {want_in} bytes, outputs {got_out} vs {want_out}",
            "regenerate and rebuild the firmware",
        )


def _device_arrays(graph: Graph, sample: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.ascontiguousarray(np.asarray(x, dtype=_np_dtype(t.dtype)).reshape(t.shape))
            for x, t in zip(sample, graph.input_tensors, strict=True)]


def run_identity(net: CompiledNetwork, samples: Sequence[Sequence[np.ndarray]], inputs: str,
                 per_layer_sample: int | None) -> RunIdentity:
    """The identity of a validation run, as recorded in (and checked against) its report."""
    assert net.board is not None
    return RunIdentity(model=Path(net.graph.source).name, model_sha256=net.graph.sha256, board=net.board.name,
                       inputs=inputs, count=len(samples), inputs_sha256=inputs_sha256(samples),
                       per_layer_sample=per_layer_sample)


def _field_ok(value: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in kinds
    return isinstance(value, kinds) or (float in kinds and isinstance(value, int))


def _sample_fields() -> dict[str, tuple[type, ...]]:
    """The types a report's sample may hold per field, from SampleResult's annotations."""
    hints = typing.get_type_hints(SampleResult)
    return {f.name: typing.get_args(hints[f.name]) or (hints[f.name],) for f in fields(SampleResult)}


def resumed_samples(path: Path, kept: list[dict[str, Any]]) -> dict[int, SampleResult]:
    """The samples of a report being resumed, each checked field by field: a
    hand-edited or damaged sample is refused (before any work), never half-read."""
    done: dict[int, SampleResult] = {}
    kinds = _sample_fields()
    for s in kept:
        wrong = sorted(set(s) ^ set(kinds)) or [k for k, ok in kinds.items() if not _field_ok(s[k], ok)]
        if wrong:
            raise TinyEdgeError(f"--resume: {path}: sample {s.get('index')} is malformed "
                                f"(field(s) {', '.join(map(str, wrong))} missing, unknown or of the wrong type)",
                                "run without --resume to start again (add --force to overwrite the file), "
                                "or choose another --report")
        done[s["index"]] = SampleResult(**s)
    return done


def oracle_info(choice: OracleChoice) -> dict[str, Any]:
    return {"name": choice.oracle.name, "version": choice.oracle.version, "is_tflm": choice.is_tflm,
            "label": choice.label, "note": choice.note}


def validate_on_target(
    net: CompiledNetwork,
    elf: Path | None,
    samples: Sequence[Sequence[np.ndarray]],
    report_path: Path,
    memory: dict[str, Any],
    emulator: str | None = None,
    port: str | None = None,
    resume: bool = False,
    timeout: float | None = None,
    progress: ProgressFn | None = None,
    per_layer_sample: int | None = None,
    layer_progress: Callable[[LayerResult], None] | None = None,
    baud: int | None = None,
    inputs: str = "inputs given by the caller",
    force: bool = False,
    started: Callable[[], None] | None = None,
    kernels: str | None = None,
    profile_sample: int | None = None,
    profile_progress: Callable[[int, int], None] | None = None,
) -> ValidationReport:
    """Validate ``samples`` on the target; with ``per_layer_sample``, compare every
    op's output for that one sample instead.

    ``timeout`` bounds every wait on the device (default: from the model's size and
    the target's speed, :mod:`tinyedge.timeouts`); ``baud`` is the serial port's
    rate (default: the board file's). A device that resets mid-run is checked
    again and the sample in flight is sent again from scratch; completed samples
    are in the report whatever happens. ``inputs`` says how the samples were
    given (recorded in the report); ``resume``/``force``: what to do with an
    existing report (:mod:`tinyedge.reportfile`). ``started`` is called once the
    device has answered HELLO (an emulator has loaded the ELF by then).
    ``kernels``: the firmware's kernel set, recorded in the report (default: the
    set ``net`` was lowered for). With ``profile_sample``, every op's cost is then measured on that sample
    (:mod:`tinyedge.profile`) and put in the report."""
    graph = net.graph
    board = net.board
    if board is None:
        raise ValueError("validate_on_target needs a network compiled for a board")
    ident = run_identity(net, samples, inputs, per_layer_sample)
    done = resumed_samples(report_path, check_existing_report(report_path, ident, resume, force))
    link = link_settings(net, emulator, timeout, baud)
    choice = choose_oracle(graph.model_bytes, [op.opcode for op in graph.operators], isolated=True)
    second: TfliteInterpreter | None = None
    if not isinstance(choice.oracle, TfliteInterpreter):  # TFLM decides: TFLite is the second opinion
        try:
            second = TfliteInterpreter(graph.model_bytes)
        except TinyEdgeError:  # information only: a model TFLM runs but TFLite refuses (e.g. int16
            second = None      # QUANTIZE/ADD with a non-zero zero point) is still validated

    ipt = getattr(board, "instructions_per_tick", None) if emulator else None
    timer = getattr(board, "timer", "systick")
    with contextlib.closing(choice.oracle), open_target(board, elf, emulator, port, link) as (client, target):
        info = client.hello()
        if started is not None:
            started()
        check_device(info, graph, board)
        report = ValidationReport(
            model=Path(graph.source).name, model_sha256=graph.sha256, board=board.name, target=target,
            tinyedge_version=__version__, device=_plain(info), memory=memory, oracle=oracle_info(choice),
            second_opinion=None if second is None else {"name": second.name, "version": second.version},
            run=ident.run_dict(), kernels=kernels or net.kernels,
        )
        try:
            if per_layer_sample is not None:
                arrays = _device_arrays(graph, samples[per_layer_sample])
                result = compare_layers(net, client, choice, per_layer_sample, arrays, layer_progress)
                report.per_layer = result.to_dict()
                report.complete = True
                report.link = link_summary(client, link)
                report.write(report_path)
                return report
            for i, sample in enumerate(samples):
                digest = sample_inputs_sha(sample)
                if i in done and done[i].input_sha256 == digest:
                    report.samples.append(done[i])
                    continue
                arrays = _device_arrays(graph, sample)
                seen = len(client.resets)
                result = client.infer([a.tobytes() for a in arrays], f"sample {i}")
                try:
                    choice.oracle.reset()  # each sample starts from the initial state, as te_network_reset() does
                    refs = choice.oracle.run(arrays)
                except TinyEdgeError as exc:
                    raise TinyEdgeError(f"sample {i}: {exc.message}", exc.hint) from None
                exact, mism, maxdiff = _compare_all(result.outputs, refs)
                tfl_mism: int | None = None
                tfl_diff: float | None = None
                if second is not None:
                    second.reset()
                    _, tfl_mism, tfl_diff = _compare_all(result.outputs, second.run(arrays))
                cyc = latency_cycles(timer, int(result.ticks), int(result.cycles))
                res = SampleResult(
                    index=i, exact=exact, mismatches=mism, max_abs_diff=maxdiff, ticks=int(result.ticks),
                    instructions=int(round(result.ticks * ipt)) if ipt else None, input_sha256=digest,
                    output_hex=b"".join(result.outputs).hex(),
                    oracle_hex=b"".join(r.tobytes() for r in refs).hex(),
                    tflite_mismatches=tfl_mism, tflite_max_abs_diff=tfl_diff,
                    device_resets=len(client.resets) - seen,
                    cycles=cyc, microseconds=cyc * 1e6 / info.clock_hz if cyc is not None and info.clock_hz else None,
                    stack_bytes=result.stack,
                )
                report.samples.append(res)
                report.link = link_summary(client, link)
                report.write(report_path)
                if progress:
                    progress(i, len(samples), res)
            if profile_sample is not None:
                from tinyedge.profile import profile_on_device

                raw = [a.tobytes() for a in _device_arrays(graph, samples[profile_sample])]
                prof = profile_on_device(net, client, profile_sample, raw, emulated=bool(emulator),
                                         progress=profile_progress)
                report.profile = prof.to_dict()
        except TinyEdgeError:
            # stopped mid-run: the report keeps every completed sample and what the link saw
            report.link = link_summary(client, link)
            report.write(report_path)
            raise
        report.link = link_summary(client, link)
    report.complete = True
    report.write(report_path)
    return report


def _compare_all(outputs: Sequence[bytes], refs: Sequence[np.ndarray]) -> tuple[bool, int, float]:
    exact, mism, maxdiff = True, 0, 0.0
    for out, ref in zip(outputs, refs, strict=True):
        e, m, d = compare(out, ref)
        exact, mism, maxdiff = exact and e, mism + m, max(maxdiff, d)
    return exact, mism, maxdiff


def _plain(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {k: _plain(v) for k, v in asdict(obj).items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, bytes):
        return obj.hex()
    return obj
