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
from dataclasses import asdict, dataclass, field
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
    run: dict[str, Any] | None = None  # the run it belongs to (tinyedge.reportfile.RunIdentity)

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
        return {
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


@contextlib.contextmanager
def open_target(board: Any, elf: Path, emulator: str | None, port: str | None,
                timeout: float) -> Iterator[tuple[Any, str]]:
    """Yield (DeviceClient, target description); the emulator is always stopped."""
    from tinyedge.device import DeviceClient

    if emulator == "qemu":
        from tinyedge.emulator.qemu import QemuInstance

        with QemuInstance(board, elf) as q:
            client = DeviceClient(q.url, timeout=timeout)
            try:
                yield client, f"qemu:{board.qemu_machine}"
            finally:
                client.close()
    elif emulator == "renode":
        from tinyedge.emulator.renode import RenodeInstance  # raises a clear error when absent

        with RenodeInstance(board, elf) as r:
            client = DeviceClient(r.url, timeout=timeout)
            try:
                yield client, f"renode:{board.renode_platform}"
            finally:
                client.close()
    elif port:
        client = DeviceClient(port, timeout=timeout)
        try:
            yield client, port
        finally:
            client.close()
    else:
        raise TinyEdgeError("no target given", "pass --emulator qemu or --port /dev/ttyACM0")


def check_device(info: Any, graph: Graph, board: Any) -> None:
    """Refuse a device that is not what we validate: firmware built for another
    board or core (it would be measured against the wrong memories), or for
    another model (named by both names and hashes)."""
    if (info.board, info.core) != (board.name, board.core):
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


def _resumed_samples(path: Path, kept: list[dict[str, Any]]) -> dict[int, SampleResult]:
    done: dict[int, SampleResult] = {}
    for s in kept:
        try:
            done[s["index"]] = SampleResult(**s)
        except TypeError:
            raise TinyEdgeError(f"--resume: {path}: sample {s.get('index')} is malformed",
                                "run without --resume to start again") from None
    return done


def oracle_info(choice: OracleChoice) -> dict[str, Any]:
    return {"name": choice.oracle.name, "version": choice.oracle.version, "is_tflm": choice.is_tflm,
            "label": choice.label, "note": choice.note}


def validate_on_target(
    net: CompiledNetwork,
    elf: Path,
    samples: Sequence[Sequence[np.ndarray]],
    report_path: Path,
    memory: dict[str, Any],
    emulator: str | None = None,
    port: str | None = None,
    resume: bool = False,
    timeout: float = 60.0,
    progress: ProgressFn | None = None,
    per_layer_sample: int | None = None,
    layer_progress: Callable[[LayerResult], None] | None = None,
    inputs: str = "inputs given by the caller",
    force: bool = False,
    started: Callable[[], None] | None = None,
) -> ValidationReport:
    """Validate ``samples`` on the target; with ``per_layer_sample``, compare every
    op's output for that one sample instead. ``inputs`` says how the samples were
    given (recorded in the report); ``resume``/``force``: what to do with an
    existing report (:mod:`tinyedge.reportfile`). ``started`` is called once the
    device has answered HELLO (an emulator has loaded the ELF by then)."""
    graph = net.graph
    board = net.board
    if board is None:
        raise ValueError("validate_on_target needs a network compiled for a board")
    ident = run_identity(net, samples, inputs, per_layer_sample)
    done = _resumed_samples(report_path, check_existing_report(report_path, ident, resume, force))
    choice = choose_oracle(graph.model_bytes, [op.opcode for op in graph.operators])
    second: TfliteInterpreter | None = TfliteInterpreter(graph.model_bytes) if choice.is_tflm else None

    ipt = getattr(board, "instructions_per_tick", None) if emulator else None
    with open_target(board, elf, emulator, port, timeout) as (client, target):
        info = client.hello()
        if started is not None:
            started()
        check_device(info, graph, board)
        report = ValidationReport(
            model=Path(graph.source).name, model_sha256=graph.sha256, board=board.name, target=target,
            tinyedge_version=__version__, device=_plain(info), memory=memory, oracle=oracle_info(choice),
            second_opinion=None if second is None else {"name": second.name, "version": second.version},
            run=ident.run_dict(),
        )
        if per_layer_sample is not None:
            arrays = _device_arrays(graph, samples[per_layer_sample])
            result = compare_layers(net, client, choice, per_layer_sample, arrays, layer_progress)
            report.per_layer = result.to_dict()
            report.complete = True
            report.write(report_path)
            return report
        for i, sample in enumerate(samples):
            digest = sample_inputs_sha(sample)
            if i in done and done[i].input_sha256 == digest:
                report.samples.append(done[i])
                continue
            arrays = _device_arrays(graph, sample)
            result = client.infer([a.tobytes() for a in arrays])
            choice.oracle.reset()  # each sample starts from the initial state, as te_network_reset() on the device
            refs = choice.oracle.run(arrays)
            exact, mism, maxdiff = _compare_all(result.outputs, refs)
            tfl_mism: int | None = None
            tfl_diff: float | None = None
            if second is not None:
                second.reset()
                _, tfl_mism, tfl_diff = _compare_all(result.outputs, second.run(arrays))
            res = SampleResult(
                index=i, exact=exact, mismatches=mism, max_abs_diff=maxdiff, ticks=int(result.ticks),
                instructions=int(round(result.ticks * ipt)) if ipt else None, input_sha256=digest,
                output_hex=b"".join(result.outputs).hex(), oracle_hex=b"".join(r.tobytes() for r in refs).hex(),
                tflite_mismatches=tfl_mism, tflite_max_abs_diff=tfl_diff,
            )
            report.samples.append(res)
            report.write(report_path)
            if progress:
                progress(i, len(samples), res)
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
