"""The oracle: what a model must compute, and a second opinion.

**The oracle is TensorFlow Lite Micro**: the TFLM interpreter from PyPI
(``tflite-micro``, imported as ``tflite_micro.python.tflite_micro.runtime``).
It runs TFLM's portable reference kernels -- the integer arithmetic CMSIS-NN
reproduces and embedded teams deploy -- so its answer is the same on every
host. Its wheels exist for Linux x86-64 only; tinyedge pins the version it is
tested against (:data:`TFLM_PINNED`, also pinned in pyproject.toml).

TFLM has no kernel for a few builtin ops tinyedge runs (:data:`TFLM_LACKS`,
checked against the pinned wheel by tests/test_oracle.py). A model with one of
them, or a host without the TFLM wheel, is compared with the **TFLite
interpreter** instead (``ai-edge-litert``, builtin kernels, no delegate), and
the run says so. The TFLite interpreter is otherwise only a *second opinion*
shown to users who measured accuracy in TFLite: its x86 kernels round some
ties differently, split rows into SIMD blocks and build LOGISTIC/TANH/SOFTMAX
tables with the host's libm, so its answer depends on the host.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import pickle
import platform
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

import numpy as np

from tinyedge import procs
from tinyedge.errors import TinyEdgeError

TFLM_PACKAGE = "tflite-micro"
TFLM_PINNED = "0.dev20261023182759"
TFLITE_PACKAGE = "ai-edge-litert"

# Builtin ops tinyedge supports that the pinned TFLM registers no kernel for
# (its interpreter refuses to allocate a model containing them).
TFLM_LACKS = frozenset({"TILE", "RELU_N1_TO_1"})


class Reference(Protocol):
    """An interpreter that computes a model's expected outputs."""

    name: str  # the PyPI package
    version: str
    input_details: list[dict[str, Any]]  # per input: at least "shape" and "dtype"

    def reset(self) -> None: ...

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]: ...

    def close(self) -> None: ...  # ends a child process, if the interpreter runs in one


@dataclass(frozen=True)
class OracleChoice:
    """Which interpreter is the pass criterion for a model, and why."""

    oracle: Reference
    is_tflm: bool  # TFLM computes every op
    note: str  # one line for the user when the oracle is not TFLM alone; "" otherwise
    label: str = "TensorFlow Lite Micro"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def tflm_unavailable_reason() -> str | None:
    """Why the TFLM interpreter cannot run on this host, or None when it can."""
    try:
        from tflite_micro.python.tflite_micro import runtime  # noqa: F401
    except ImportError:
        where = f"{platform.system()} {platform.machine()}"
        if platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64"):
            return f"the `{TFLM_PACKAGE}` package is not installed (pip install {TFLM_PACKAGE}=={TFLM_PINNED})"
        return f"`{TFLM_PACKAGE}` has wheels for Linux x86-64 only, this host is {where}"
    return None


@contextlib.contextmanager
def _captured_c_output() -> Iterator[list[str]]:
    """Collect what native code writes to file descriptors 1 and 2 (TFLM
    reports its errors there, not through the Python exception)."""
    lines: list[str] = []
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as tmp:
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            yield lines
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            tmp.seek(0)
            lines.extend(tmp.read().decode(errors="replace").splitlines())


_MISSING_OP = re.compile(r"Didn't find op for builtin opcode '([A-Z0-9_]+)'")


class TflmOracle:
    """The TFLM interpreter (reference kernels) on a model's bytes."""

    name = TFLM_PACKAGE

    def __init__(self, model: bytes | str | Path, preserve_all_tensors: bool = False) -> None:
        reason = tflm_unavailable_reason()
        if reason is not None:
            raise TinyEdgeError(f"TensorFlow Lite Micro cannot run here: {reason}",
                                "exactness with TFLM can only be checked on Linux x86-64")
        from tflite_micro.python.tflite_micro import runtime

        self.version = _version(TFLM_PACKAGE)
        content = Path(model).read_bytes() if isinstance(model, (str, Path)) else bytes(model)
        config = (runtime.InterpreterConfig.kPreserveAllTensors if preserve_all_tensors
                  else runtime.InterpreterConfig.kAllocationRecording)
        # TFLM's default arena is 10x the model; small models with large
        # activations need more. The arena is host memory, so be generous.
        arena = max(len(content) * 10, 16 << 20)
        with _captured_c_output() as said:
            try:
                self._interp = runtime.Interpreter.from_bytes(content, arena_size=arena,
                                                              intrepreter_config=config)
                failure = None
            except (RuntimeError, ValueError) as exc:
                failure = str(exc)
        if failure is not None:
            missing = sorted({m.group(1) for line in said for m in [_MISSING_OP.search(line)] if m})
            detail = (f"it has no kernel for {', '.join(missing)}" if missing
                      else (said[0] if said else failure))
            raise TinyEdgeError(f"the TFLite Micro interpreter cannot load this model: {detail}",
                                "check the model runs in TFLite Micro at all")
        n_in, n_out = _io_counts(content)
        self.input_details = [self._interp.get_input_details(i) for i in range(n_in)]
        self.output_details = [self._interp.get_output_details(i) for i in range(n_out)]

    def reset(self) -> None:
        """Back to the state after the first Prepare (LSTM state, variables)."""
        self._interp.reset()

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One inference; ``inputs`` in the model's input order."""
        if len(inputs) != len(self.input_details):
            raise TinyEdgeError(f"the model has {len(self.input_details)} inputs, got {len(inputs)}",
                                "give one array per model input")
        for i, (det, x) in enumerate(zip(self.input_details, inputs)):
            arr = np.ascontiguousarray(np.asarray(x, dtype=det["dtype"]).reshape(det["shape"]))
            self._interp.set_input(arr, i)
        self._interp.invoke()
        return [np.array(self._interp.get_output(i), copy=True) for i in range(len(self.output_details))]

    def close(self) -> None:
        """Nothing to end: the interpreter lives in this process."""


class IsolatedTflmOracle:
    """:class:`TflmOracle` in a child process: TFLM aborts the whole process on some
    inputs (e.g. an int8 SOFTMAX row whose exponentials sum to 512 or more), which
    must end as a clear error, not take tinyedge down. The child reads requests
    from its stdin and exits when tinyedge goes away."""

    name = TFLM_PACKAGE

    def __init__(self, model: bytes | str | Path) -> None:
        reason = tflm_unavailable_reason()
        if reason is not None:
            raise TinyEdgeError(f"TensorFlow Lite Micro cannot run here: {reason}",
                                "exactness with TFLM can only be checked on Linux x86-64")
        content = Path(model).read_bytes() if isinstance(model, (str, Path)) else bytes(model)
        self._stderr = tempfile.TemporaryFile()
        # a child that never outlives tinyedge (tinyedge.procs: own process group, parent-death signal)
        self._proc = procs.popen([sys.executable, "-m", "tinyedge.oracle"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=self._stderr)
        self.version, self.input_details, self.output_details = self._call("load", content)

    def _call(self, what: str, *args: Any) -> Any:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        try:
            pickle.dump((what, args), self._proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._proc.stdin.flush()
            status, value = pickle.load(self._proc.stdout)
        except (EOFError, BrokenPipeError, pickle.UnpicklingError):
            raise self._crashed() from None
        if status == "error":
            raise TinyEdgeError(*value)
        return value

    def _crashed(self) -> TinyEdgeError:
        code = self._proc.wait()
        procs.forget(self._proc)
        self._stderr.seek(0)
        said = [ln for ln in self._stderr.read().decode(errors="replace").splitlines() if ln.strip()]
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        last = f": {said[-1].strip()}" if said else ""
        return TinyEdgeError(f"TensorFlow Lite Micro itself crashed on this input ({how}){last}",
                             "TFLM gives no answer here, so exactness cannot be checked on this sample")

    def reset(self) -> None:
        self._call("reset")

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        result: list[np.ndarray] = self._call("run", [np.asarray(x) for x in inputs])
        return result

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                procs.stop(self._proc, grace=1.0)
        procs.forget(self._proc)
        self._stderr.close()

    def __del__(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            procs.stop(proc, grace=0.0)


def _serve() -> None:
    """The child side of :class:`IsolatedTflmOracle`."""
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the reply pipe
    oracle: TflmOracle | None = None
    while True:
        try:
            what, args = pickle.load(inp)
        except EOFError:
            return
        try:
            if what == "load":
                oracle = TflmOracle(args[0])
                value: Any = (oracle.version, oracle.input_details, oracle.output_details)
            elif what == "reset" and oracle is not None:
                oracle.reset()
                value = None
            elif what == "run" and oracle is not None:
                value = oracle.run(args[0])
            else:
                raise TinyEdgeError(f"oracle child: bad request {what!r}", "this is a tinyedge bug")
            reply: tuple[str, Any] = ("ok", value)
        except TinyEdgeError as exc:
            reply = ("error", (exc.message, exc.hint))
        except (RuntimeError, ValueError) as exc:
            reply = ("error", (f"the TFLite Micro interpreter failed: {exc}", "check the model runs in TFLite Micro"))
        pickle.dump(reply, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


class TfliteInterpreter:
    """The TFLite interpreter, builtin kernels, no delegate, one thread."""

    name = TFLITE_PACKAGE

    def __init__(self, model: bytes | str | Path) -> None:
        interpreter_cls, resolver = _tflite_classes()
        self.version = _version(self.name) if self.name == TFLITE_PACKAGE else _version("tensorflow")
        content = Path(model).read_bytes() if isinstance(model, (str, Path)) else bytes(model)
        try:
            self._interp = interpreter_cls(
                model_content=content,
                experimental_op_resolver_type=resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                num_threads=1,
            )
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise TinyEdgeError(
                f"the TFLite interpreter cannot load this model: {str(exc).splitlines()[0]}",
                "check the model runs in TFLite at all",
            ) from None
        self.input_details = self._interp.get_input_details()
        self.output_details = self._interp.get_output_details()

    def reset(self) -> None:
        """Put variable tensors (LSTM state) back to their initial values."""
        self._interp.reset_all_variables()

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        for det, x in zip(self.input_details, inputs, strict=True):
            self._interp.set_tensor(det["index"], np.asarray(x, dtype=det["dtype"]).reshape(det["shape"]))
        self._interp.invoke()
        return [self._interp.get_tensor(det["index"]).copy() for det in self.output_details]

    def close(self) -> None:
        """Nothing to end: the interpreter lives in this process."""


def _io_counts(content: bytes) -> tuple[int, int]:
    """Number of inputs and outputs of the model's main subgraph."""
    import tflite

    sub = tflite.Model.GetRootAsModel(content, 0).Subgraphs(0)
    return int(sub.InputsLength()), int(sub.OutputsLength())


class SplitOracle:
    """TFLM for every op it has a kernel for, the TFLite interpreter for the others.

    The model is cut around the ops TFLM lacks (:data:`TFLM_LACKS`): TFLM runs the
    rest, with each cut op's outputs fed in as model inputs and its inputs read out
    as model outputs, and the TFLite interpreter runs each cut op alone. The two are
    iterated until the cut ops' outputs stop changing (at most one pass per cut op
    plus two: the graph is acyclic). Each pass starts TFLM from its initial state,
    so samples are independent, as in validation."""

    def __init__(self, model: bytes, lacking_ops: Sequence[int], isolated: bool = False) -> None:
        from tinyedge.model.rewrite import cut_ops, single_op

        cut, self._inputs, self._outputs = cut_ops(model, lacking_ops)
        self._tflm: Reference = IsolatedTflmOracle(cut) if isolated else TflmOracle(cut)
        self.name = self._tflm.name
        self.version = self._tflm.version
        self._n_in, self._n_out = _io_counts(model)
        self.input_details = self._tflm.input_details[: self._n_in]
        self._ops = []
        for k in lacking_ops:
            data, ins, outs = single_op(model, k)
            self._ops.append((TfliteInterpreter(data), ins, outs))
        self.helper = f"{self._ops[0][0].name} {self._ops[0][0].version}" if self._ops else ""

    def reset(self) -> None:
        self._tflm.reset()

    def close(self) -> None:
        self._tflm.close()

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != self._n_in:
            raise TinyEdgeError(f"the model has {self._n_in} inputs, got {len(inputs)}",
                                "give one array per model input")
        details = self._tflm.input_details
        cut_values: dict[int, np.ndarray] = {
            t: np.zeros(tuple(int(d) for d in det["shape"]), det["dtype"])
            for t, det in zip(self._inputs[self._n_in:], details[self._n_in:], strict=True)}
        # a chain of k cut ops needs k + 1 passes to carry values through, one more to see
        # that nothing changes
        for _ in range(len(self._ops) + 2):
            self._tflm.reset()
            results = self._tflm.run(list(inputs) + [cut_values[t] for t in self._inputs[self._n_in:]])
            known = dict(zip(self._outputs, results, strict=True)) | cut_values
            changed = False
            for interp, ins, outs in self._ops:
                interp.reset()
                for t, value in zip(outs, interp.run([known[t] for t in ins]), strict=True):
                    if value.tobytes() != cut_values[t].tobytes():  # bytes: NaN == NaN here
                        cut_values[t] = value
                        changed = True
            if not changed:
                return results[: self._n_out]
        raise TinyEdgeError("the cut model did not settle (an op TFLM lacks feeds itself?)",
                            "this is a tinyedge bug; please report it with the model")


def _tflite_classes() -> tuple[Any, Any]:
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        TfliteInterpreter.name = TFLITE_PACKAGE
        return Interpreter, OpResolverType
    except ImportError:
        pass
    try:
        import tensorflow as tf  # fallback, heavy

        TfliteInterpreter.name = "tensorflow"
        return tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    except ImportError:
        raise TinyEdgeError("no TFLite interpreter is installed", f"pip install {TFLITE_PACKAGE}") from None


def tflm_lacks(opcodes: Sequence[str]) -> list[str]:
    """The ops of a model that the pinned TFLM has no kernel for."""
    return sorted(set(opcodes) & TFLM_LACKS)


def choose_oracle(model_bytes: bytes, opcodes: Sequence[str], isolated: bool = False) -> OracleChoice:
    """TFLM when it can run this model here (for a model with ops TFLM lacks: TFLM for
    every other op, see :class:`SplitOracle`); on a host without TFLM, the TFLite
    interpreter, with the reason. ``isolated``: run TFLM in a child process, so that
    TFLM aborting on an input is a clear error instead of the end of tinyedge."""
    reason = tflm_unavailable_reason()
    if reason is not None:
        return OracleChoice(TfliteInterpreter(model_bytes), False,
                            f"exactness with TensorFlow Lite Micro cannot be checked on this host ({reason}); "
                            "compared with the TFLite interpreter instead", "the TFLite interpreter")
    lacking = tflm_lacks(opcodes)
    if lacking:
        ops = [k for k, code in enumerate(opcodes) if code in TFLM_LACKS]
        split = SplitOracle(model_bytes, ops, isolated=isolated)
        return OracleChoice(split, False,
                            f"TensorFlow Lite Micro has no kernel for {', '.join(lacking)}: the TFLite interpreter "
                            f"({split.helper}) computes {'those ops' if len(ops) > 1 else 'that op'}, "
                            "TFLM every other op",
                            f"TensorFlow Lite Micro (and the TFLite interpreter for {', '.join(lacking)})")
    tflm: Reference = IsolatedTflmOracle(model_bytes) if isolated else TflmOracle(model_bytes)
    return OracleChoice(tflm, True, "")


def Oracle(model: bytes | str | Path) -> Reference:  # noqa: N802 -- the tests' one entry point
    """The pass criterion for a model: TFLM, or the TFLite interpreter for the
    few ops TFLM lacks (see :func:`choose_oracle`)."""
    from tinyedge.model import read_model

    content = Path(model).read_bytes() if isinstance(model, (str, Path)) else bytes(model)
    graph = read_model(content)
    return choose_oracle(content, [op.opcode for op in graph.operators]).oracle


def random_inputs(input_details: Sequence[dict[str, Any]], rng: np.random.Generator) -> list[np.ndarray]:
    """Uniform random inputs over the full range of integer tensors; N(0,1) for float ones."""
    out = []
    for det in input_details:
        dt = np.dtype(det["dtype"])
        shape = tuple(int(d) for d in det["shape"])
        if dt.kind in "iu":
            info = np.iinfo(dt)
            out.append(rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt))
        else:
            out.append(rng.standard_normal(shape).astype(dt))
    return out


if __name__ == "__main__":
    _serve()
