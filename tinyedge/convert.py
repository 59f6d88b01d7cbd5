"""``tinyedge convert``: a float model -> a full-integer int8 .tflite, with a drift report.

Accepts a Keras model (``.keras``, ``.h5``) or a TensorFlow SavedModel
directory. Post-training quantization with the TF converter: every op int8
(``TFLITE_BUILTINS_INT8``), per-channel weights (the converter's default),
int8 model input/output (``io="int8"``) or float input/output with
QUANTIZE/DEQUANTIZE at the edges (``io="float"``). The batch dimension is
fixed to 1 so the graph holds no run-time shape arithmetic
(SHAPE/STRIDED_SLICE/PACK): a Keras model is re-wrapped on
``keras.Input(shape, batch_size=1)`` and converted with ``from_keras_model``;
a SavedModel signature is wrapped in a concrete function with a ``(1, ...)``
signature and converted with its variables (``from_concrete_functions``
with the loaded object as ``trackable_obj``). The result is read back with
:func:`tinyedge.model.read_model` and refused if anything is not int8 or
still computes shapes at run time.

Recurrent layers: Keras 3's ``LSTM`` traces to a While loop, and TF's int8
calibration of a While loop crashes the process (SIGSEGV, TF 2.21). Before
converting, every ``keras.layers.LSTM`` is rewritten into
:class:`tinyedge.keras_lstm.FusedLSTM` (same weights), which the converter
turns into one UNIDIRECTIONAL_SEQUENCE_LSTM; the rewritten float model must
give the model's outputs (checked on the first calibration samples). A
recurrent layer that cannot be rewritten (GRU, SimpleRNN, Bidirectional,
stateful or backwards LSTM, other activations, masks, ...) is refused by name,
and so is any graph that still holds a loop op (traced apart, before the
converter runs).

LSTM cell state scales: TFLite's integer LSTM silently takes no tanh of the
cell when the int16 cell state's scale is below 2^-15 or above 2^-9, and the
converter writes such scales (2^-16, 2^-17 for stacked Keras LSTMs, whose
int8 outputs then land 200+ LSB from float in TFLite). TensorFlow Lite Micro,
the oracle, takes the tanh at every scale, with the same drift from float at
2^-16 / 2^-17 as at 2^-15 (measured). :func:`fix_lstm_cell_scales` moves such
scales into TFLite's range in the converted flatbuffer (below: raised to
2^-15, which only costs precision; above: lowered to 2^-9, with a warning),
so that the model means the same in TFLite as in TFLM; it checks TFLM runs
the result, and the report lists each change; the drift is that of the fixed
model. The reasoning, with the sources, is in the comment above that
function.

Crashes: :func:`convert_model` runs TensorFlow in a child Python process by
default when this process has not imported TensorFlow (the CLI): a crash in
TensorFlow becomes a TinyEdgeError naming the signal and the stage.
:func:`convert_keras` (an in-memory model) runs in this process.

The report compares the float model with the int8 model (run by the oracle,
:mod:`tinyedge.oracle`, its LSTM state reset before every sample, as on the
device) on the validation data, or on the calibration samples when no
validation data is given.

TensorFlow is imported lazily, only here, and its log output is captured
(set ``TINYEDGE_TF_LOG=1`` to let it through); when TensorFlow fails, the
error lines it printed are put in the error message.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io as _io
import math
import os
import re
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

import numpy as np

from tinyedge.datasets import (
    Dataset,
    check_data_file,
    InputSpec,
    class_labels,
    dequantize,
    from_arrays,
    load_dataset,
    sample_shape,
    to_tensor_dtype,
)
from tinyedge.errors import InternalError, TinyEdgeError
from tinyedge.infiles import check_regular
from tinyedge.model import Graph, read_model
from tinyedge.model.ir import Operator, Quant
from tinyedge.outputs import write_atomic

IoType = Literal["int8", "float"]
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
# Ops that mean the graph still computes shapes or holds variables at run time.
_DYNAMIC_OPS = {"SHAPE": "computes tensor shapes at run time (a dynamic dimension)",
                "READ_VARIABLE": "reads a resource variable", "VAR_HANDLE": "holds a resource variable",
                "ASSIGN_VARIABLE": "assigns a resource variable", "CALL_ONCE": "initialises variables"}
_EVAL_BATCH = 256


# --------------------------------------------------------------------------- TensorFlow, quietly

@dataclass
class _Captured:
    text: str = ""


@contextlib.contextmanager
def _quiet_tf() -> Iterator[_Captured]:
    """Capture what TensorFlow prints (C++ logs on fd 1/2, Python prints and warnings)."""
    cap = _Captured()
    if os.environ.get("TINYEDGE_TF_LOG"):
        yield cap
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    py_out, py_err = _io.StringIO(), _io.StringIO()
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(py_out), \
                    contextlib.redirect_stderr(py_err):
                warnings.simplefilter("ignore")
                yield cap
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            log.seek(0)
            cap.text = log.read().decode(errors="replace") + py_out.getvalue() + py_err.getvalue()


def _tf_missing() -> TinyEdgeError:
    return TinyEdgeError("TensorFlow is not installed; `tinyedge convert` needs it",
                         "pip install tensorflow (or pip install 'tinyedge[convert]')")


def _import_tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with _quiet_tf() as cap:
            import tensorflow as tf

            tf.get_logger().setLevel("ERROR")
    except ImportError as exc:
        if getattr(exc, "name", None) == "tensorflow":
            raise _tf_missing() from None
        raise TinyEdgeError(f"TensorFlow cannot be imported: {exc}",
                            "reinstall it: pip install --force-reinstall tensorflow"
                            + _log_tail(cap.text)) from None
    return tf


def _error_lines(text: str) -> list[str]:
    """The lines of a TF / MLIR log that say what went wrong, without location noise."""
    out = []
    for line in text.splitlines():
        if re.search(r"cuInit|cuda", line, re.IGNORECASE):  # no GPU here: not the problem
            continue
        if re.search(r"\berror\b|TF Select ops:|Error code:", line, re.IGNORECASE):
            line = re.sub(r"^(loc\(.*?\)\)|<unknown>:\d+:|[A-Z]\d{4} [\d:. ]+\S+\])\s*:?\s*", "", line).strip()
            if line and line not in out:
                out.append(line)
    return out


def _log_tail(text: str) -> str:
    lines = _error_lines(text)
    return f"; TensorFlow said: {' | '.join(lines[:3])}" if lines else ""


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


# --------------------------------------------------------------------------- sources

@dataclass
class _Source:
    """A loaded float model: its inputs, how to convert it, how to run it in float."""

    kind: str  # "Keras" | "SavedModel"
    specs: list[InputSpec]
    make_converter: Callable[[list[InputSpec]], Any]  # fixed specs -> TFLiteConverter
    run_float: Callable[[list[np.ndarray]], dict[str, np.ndarray]]  # [N, ...] per input -> key -> [N, ...]
    trace: Callable[[list[InputSpec]], Any]  # fixed specs -> the GraphDef the converter will see
    # Keras LSTM layers rewritten to the fused form (paths), and the check that the rewritten
    # float model computes what the model does: [N, ...] per input -> max |difference|
    rewritten: list[str] = field(default_factory=list)
    rewrite_error: Callable[[list[np.ndarray]], float] | None = None
    rewrite_diff: float | None = None  # measured by _convert_source: max |difference| / max(1, max |output|)


def _keras_specs(model: Any) -> list[InputSpec]:
    try:
        inputs = list(model.inputs)
    except (AttributeError, ValueError):
        inputs = []
    if not inputs:
        raise TinyEdgeError("the Keras model has no defined inputs (a subclassed model never built?)",
                            "build it as a functional model on keras.Input(shape), or call it once on data")
    specs = []
    for t in inputs:
        dtype = str(getattr(t.dtype, "name", t.dtype))
        if not dtype.startswith("float"):
            raise TinyEdgeError(f"model input '{t.name}' is {dtype}; tinyedge quantizes float inputs only",
                                "give the model float inputs (cast inside the model if needed)")
        specs.append(InputSpec(str(t.name), sample_shape(tuple(t.shape)), "float32"))
    return specs


def _keras_outputs(out: Any) -> dict[str, np.ndarray]:
    """Keras model outputs keyed like the converted model's signature outputs."""
    if isinstance(out, dict):
        return {str(k): np.asarray(v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return {f"output_{i}": np.asarray(v) for i, v in enumerate(out)}
    return {"output_0": np.asarray(out)}


def _batched(run_one: Callable[[list[np.ndarray]], dict[str, np.ndarray]], xs: list[np.ndarray],
             batch: int) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(xs[0]), batch):
        for k, v in run_one([x[start : start + batch] for x in xs]).items():
            parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def _keras_source(tf: Any, model: Any) -> _Source:
    import keras

    from tinyedge.keras_lstm import rewrite_lstms

    specs = _keras_specs(model)
    # LSTM layers -> the fused-LSTM form (or a TinyEdgeError naming the recurrent layer that
    # cannot be converted), before the converter sees the model: see tinyedge.keras_lstm
    with _quiet_tf():
        conv_model, rewritten = rewrite_lstms(model)

    def fixed_model(fixed: list[InputSpec]) -> Any:
        inputs = [keras.Input(shape=s.shape, batch_size=1, name=s.name, dtype=s.dtype) for s in fixed]
        return keras.Model(inputs, conv_model(inputs[0] if len(inputs) == 1 else inputs))

    def make_converter(fixed: list[InputSpec]) -> Any:
        return tf.lite.TFLiteConverter.from_keras_model(fixed_model(fixed))

    def trace(fixed: list[InputSpec]) -> Any:
        m = fixed_model(fixed)
        fn = tf.function(lambda *xs: m(xs[0] if len(xs) == 1 else list(xs), training=False))
        sig = [tf.TensorSpec((1, *s.shape), tf.float32) for s in fixed]
        return fn.get_concrete_function(*sig).graph.as_graph_def()

    dynamic_batch = all(t.shape[0] is None for t in model.inputs)

    def run_with(m: Any, xs: list[np.ndarray]) -> dict[str, np.ndarray]:
        def one(b: list[np.ndarray]) -> dict[str, np.ndarray]:
            return _keras_outputs(m(b[0] if len(b) == 1 else b, training=False))

        return _batched(one, xs, _EVAL_BATCH if dynamic_batch else 1)

    def rewrite_error(xs: list[np.ndarray]) -> float:
        want, got = run_with(model, xs), run_with(conv_model, xs)
        return max(float(np.max(np.abs(want[k].astype(np.float64) - got[k]), initial=0.0))
                   / max(1.0, float(np.max(np.abs(want[k]), initial=0.0))) for k in want)

    return _Source("Keras", specs, make_converter, lambda xs: run_with(model, xs), trace, rewritten,
                   rewrite_error if rewritten else None)


def _load_keras(tf: Any, path: Path) -> _Source:
    try:
        with _quiet_tf() as cap:
            import keras

            model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # keras raises many types for bad / foreign files
        text = str(exc)
        hint = "check the file is a Keras model saved with model.save(...)"
        if "safe_mode" in text or "Lambda" in text:
            hint = ("the model holds a Lambda layer, which Keras refuses to deserialize safely; "
                    "replace it with a built-in layer, or export a SavedModel (model.export(dir)) and convert that")
        elif "Unknown layer" in text or "custom" in text.lower():
            hint = "the model uses custom layers: export a SavedModel (model.export(dir)) and convert that"
        raise TinyEdgeError(f"cannot load the Keras model {path}: {_first_line(exc)}",
                            hint + _log_tail(cap.text)) from None
    return _keras_source(tf, model)


def _load_saved_model(tf: Any, path: Path) -> _Source:
    if not (path / "saved_model.pb").exists() and not (path / "saved_model.pbtxt").exists():
        raise TinyEdgeError(f"{path} is a directory but not a SavedModel (no saved_model.pb)",
                            "pass a .keras/.h5 file or a SavedModel directory (model.export(dir))")
    try:
        with _quiet_tf() as cap:
            loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        raise TinyEdgeError(f"cannot load the SavedModel {path}: {_first_line(exc)}",
                            "check it was written by tf.saved_model.save or model.export" + _log_tail(cap.text)
                            ) from None
    sigs = dict(loaded.signatures)
    if "serving_default" in sigs:
        sig = sigs["serving_default"]
    elif len(sigs) == 1:
        sig = next(iter(sigs.values()))
    else:
        raise TinyEdgeError(
            f"{path}: cannot choose a signature ({', '.join(sigs) or 'none'})",
            "save the SavedModel with a 'serving_default' signature (model.export(dir) does)")
    specs = _saved_model_specs(sig, path)
    keys = [s.name for s in specs]

    def concrete(fixed: list[InputSpec]) -> Any:
        sig_specs = [tf.TensorSpec((1, *s.shape), tf.float32, name=s.name) for s in fixed]
        return tf.function(lambda *a: sig(**dict(zip(keys, a))), input_signature=sig_specs).get_concrete_function()

    def make_converter(fixed: list[InputSpec]) -> Any:
        return tf.lite.TFLiteConverter.from_concrete_functions([concrete(fixed)], loaded)

    _, kw = sig.structured_input_signature
    dynamic_batch = all(kw[k].shape.rank and kw[k].shape[0] is None for k in keys)

    def run_float(xs: list[np.ndarray]) -> dict[str, np.ndarray]:
        def one(b: list[np.ndarray]) -> dict[str, np.ndarray]:
            out = sig(**{k: tf.constant(x, tf.float32) for k, x in zip(keys, b)})
            return {str(k): np.asarray(v) for k, v in out.items()}

        return _batched(one, xs, _EVAL_BATCH if dynamic_batch else 1)

    return _Source("SavedModel", specs, make_converter, run_float,
                   lambda fixed: concrete(fixed).graph.as_graph_def())


def _saved_model_specs(sig: Any, path: Path) -> list[InputSpec]:
    args, kw = sig.structured_input_signature
    if args or not kw:
        raise TinyEdgeError(f"{path}: the signature has no named inputs", "re-export with model.export(dir)")
    specs = []
    for name in sorted(kw):
        spec = kw[name]
        if spec.shape.rank is None or spec.shape.rank == 0:
            raise TinyEdgeError(f"{path}: input '{name}' has no batch dimension / unknown rank",
                                "export with a batched input signature, e.g. TensorSpec((None, ...))")
        if not spec.dtype.is_floating:
            raise TinyEdgeError(f"{path}: input '{name}' is {spec.dtype.name}; tinyedge quantizes float inputs only",
                                "give the model float inputs")
        specs.append(InputSpec(name, sample_shape(tuple(spec.shape.as_list())), "float32"))
    return specs


def _load_source(tf: Any, src: Path) -> _Source:
    if src.is_dir():
        return _load_saved_model(tf, src)
    return _load_keras(tf, src)


def _check_source_path(src: Path) -> None:
    if not src.exists():
        raise TinyEdgeError(f"model not found: {src}", "check the path")
    if src.is_dir():
        return
    suffix = src.suffix.lower()
    if suffix == ".tflite":
        raise TinyEdgeError(
            f"{src} is already a TFLite model; convert takes the float model it came from",
            "pass the .keras/.h5 file or SavedModel directory; an int8 .tflite goes straight to "
            "`tinyedge inspect` / `tinyedge generate`")
    if suffix not in KERAS_SUFFIXES:
        raise TinyEdgeError(f"{src}: unknown model format '{suffix or src.name}'",
                            "pass a Keras model (.keras, .h5) or a SavedModel directory")
    check_regular(src, "model", "pass the Keras model file itself, or a SavedModel directory")


# --------------------------------------------------------------------------- conversion

def _fix_specs(specs: list[InputSpec], data: Dataset) -> list[InputSpec]:
    """Fill open (None) dimensions from the data's sample shapes."""
    return [InputSpec(s.name, tuple(int(d) for d in x.shape[1:]), s.dtype) for s, x in zip(specs, data.inputs)]


def _representative(data: Dataset, specs: list[InputSpec]) -> Callable[[], Iterator[dict[str, np.ndarray]]]:
    """Calibration samples keyed by signature input name: the converted graph may order its
    inputs differently from the model (seen with Keras multi-input models)."""
    def gen() -> Iterator[dict[str, np.ndarray]]:
        for i in range(len(data)):
            yield {s.name: x.astype(np.float32) for s, x in zip(specs, data.sample(i))}

    return gen


def _run_converter(tf: Any, converter: Any, calibration: Dataset, specs: list[InputSpec],
                   io: IoType) -> bytes:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _representative(calibration, specs)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if io == "int8":
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        with _quiet_tf() as cap:
            return bytes(converter.convert())
    except Exception as exc:
        lines = _error_lines(str(exc)) or _error_lines(cap.text)
        select = [ln for ln in lines if ln.startswith("TF Select ops:")]
        if select:
            raise TinyEdgeError(
                f"the model uses ops TFLite has no builtin kernel for ({select[0].split(':', 1)[1].strip()})",
                "replace those ops with TFLite builtins; see `tinyedge ops` for what tinyedge supports",
            ) from None
        if type(exc).__name__ == "ConverterError":
            raise TinyEdgeError(
                "the TF converter cannot quantize this model to int8: "
                + (" | ".join(lines[:3]) if lines else _first_line(exc)),
                "check the model converts with tf.lite.TFLiteConverter; set TINYEDGE_TF_LOG=1 for its log",
            ) from None
        sys.stderr.write(cap.text)  # not a conversion problem we know: show everything
        raise


def _check_io(io: str) -> None:
    if io not in ("int8", "float"):
        raise TinyEdgeError(f"unknown io type '{io}'", "use io='int8' (default) or io='float'")


def _float_activations(graph: Graph, op: Any) -> list[Any]:
    ts = (graph.tensors[i] for i in [*op.inputs, *op.outputs] if i >= 0)
    return [t for t in ts if t.dtype.startswith("float") and not t.is_const]


def check_graph(graph: Graph, io: IoType = "int8") -> None:
    """Refuse a converted graph that is not what tinyedge runs: any op in float, run-time
    shape arithmetic or variables, or model inputs/outputs not of the requested type."""
    for op in graph.operators:
        if op.opcode in _DYNAMIC_OPS:
            raise TinyEdgeError(
                f"the converted model still has a {op.opcode} op (it {_DYNAMIC_OPS[op.opcode]})",
                "every model dimension must be fixed: give the model inputs a fixed shape")
    edge = {"QUANTIZE": set(graph.inputs), "DEQUANTIZE": set(graph.outputs)}  # float allowed here
    # Ops with a float tensor other than QUANTIZE/DEQUANTIZE at the model's edges; name the real
    # culprit (e.g. SIN) before the DEQUANTIZE/QUANTIZE the converter put around it.
    bad = [(op, t) for op in graph.operators for t in _float_activations(graph, op)
           if t.index not in edge.get(op.opcode, set())]
    bad.sort(key=lambda ot: ot[0].opcode in ("QUANTIZE", "DEQUANTIZE"))
    if bad:
        op, t = bad[0]
        # the op's own output is named after the Keras layer that made it (e.g.
        # 'functional_1/layer_normalization_1/Neg'); its input often only 'tfl.dequantize'
        named = [graph.tensors[i].name for i in op.outputs if not graph.tensors[i].name.startswith("tfl.")]
        where = named[0] if named else t.name
        raise TinyEdgeError(
            f"the converted model is not fully int8: {op.opcode} (op {op.index}) runs in float "
            f"on tensor '{where}'",
            f"TF's converter did not quantize {op.opcode} to int8 and left it in float; replace the layer "
            "that makes it (named in the tensor) in the model"
            if op.opcode not in ("QUANTIZE", "DEQUANTIZE") else "check the model's ops with `tinyedge ops`")
    want = "int8" if io == "int8" else "float32"
    for t in [*graph.input_tensors, *graph.output_tensors]:
        if t.dtype != want:
            raise TinyEdgeError(f"model tensor '{t.name}' is {t.dtype}, expected {want} (io='{io}')",
                                "this is a converter problem; report it with the model")


# The rewritten float model must compute what the model computes: the same ops in the same order
# give identical float32 results (measured: 0); allow float reassociation, nothing more.
REWRITE_TOLERANCE = 1e-4  # max |difference| / max(1, max |output|)
REWRITE_CHECK_SAMPLES = 16


def _check_rewrite(source: _Source, calibration: Dataset) -> None:
    if source.rewrite_error is None:
        return
    xs = [x[:REWRITE_CHECK_SAMPLES].astype(np.float32) for x in calibration.inputs]
    with _quiet_tf():
        source.rewrite_diff = diff = source.rewrite_error(xs)
    if not diff <= REWRITE_TOLERANCE:
        raise InternalError(
            f"rewriting the LSTM layers ({', '.join(source.rewritten)}) into the fused form changes the "
            f"float model's outputs (relative difference {diff:.3g} > {REWRITE_TOLERANCE:g})")


_LOOP_OPS = ("While", "StatelessWhile", "For")


def loop_ops(graph_def: Any) -> list[str]:
    """Names of the loop ops in a GraphDef, its function library included ("function/node")."""
    found = [n.name for n in graph_def.node if n.op in _LOOP_OPS]
    for fn in graph_def.library.function:
        found += [f"{fn.signature.name}/{n.name}" for n in fn.node_def if n.op in _LOOP_OPS]
    return found


def _refuse_loops(source: _Source, loops: list[str]) -> None:
    """TF's int8 calibration of a While loop crashes the process (SIGSEGV in _feed_tensors,
    TF 2.21): refuse a graph with a loop before the converter sees it."""
    if not loops:
        return
    if source.kind == "SavedModel":
        hint = ("if it comes from a Keras model with LSTM layers, convert the .keras file instead: tinyedge "
                "rewrites keras.layers.LSTM into TFLite's fused LSTM op; other loops cannot be converted")
    else:
        hint = ("remove the loop (a while_loop / fori_loop / scan in a Lambda or custom layer); "
                "for a recurrent layer use keras.layers.LSTM, which tinyedge converts to the fused LSTM op")
    raise TinyEdgeError(f"the model contains a loop ({loops[0]}); TensorFlow's int8 converter crashes "
                        "calibrating loops, and tinyedge has no loop op", hint)


def _convert_source(tf: Any, source: _Source, calibration: Dataset, io: IoType,
                    fix_lstm_cells: bool = True) -> tuple[bytes, Graph, list[CellScaleFix]]:
    """The converted model, its graph and the LSTM cell-state scales changed in it (see
    :func:`fix_lstm_cell_scales`; none when ``fix_lstm_cells`` is False)."""
    fixed = _fix_specs(source.specs, calibration)
    _check_rewrite(source, calibration)
    try:
        with _quiet_tf() as cap:
            loops = loop_ops(source.trace(fixed))  # the graph the converter will see, traced apart
            converter = None if loops else source.make_converter(fixed)
    except Exception as exc:
        raise TinyEdgeError(f"cannot prepare the model for conversion: {_first_line(exc)}",
                            "check the model runs on inputs of shape " +
                            ", ".join(f"(1, {', '.join(map(str, s.shape))})" for s in fixed)
                            + _log_tail(cap.text)) from None
    _refuse_loops(source, loops)
    data = _run_converter(tf, converter, calibration, fixed, io)
    graph = read_model(data, "<converted>")
    check_graph(graph, io)
    if not fix_lstm_cells:
        return data, graph, []
    data, fixes = fix_lstm_cell_scales(data, graph)
    return data, (read_model(data, "<converted>") if fixes else graph), fixes


def convert_keras(model: Any, calibration: np.ndarray | Sequence[np.ndarray], io: IoType = "int8",
                  fix_lstm_cells: bool = True) -> bytes:
    """Convert an in-memory Keras model to int8 .tflite bytes (no files, no report), in this
    process; Keras LSTM layers become the fused LSTM op as in :func:`convert_model`.

    ``calibration``: the samples, ``[N, *input_shape]``; for a multi-input model a
    sequence with one such array per input, in ``model.inputs`` order.
    ``fix_lstm_cells``: move LSTM cell-state scales TFLite takes no tanh at into its range,
    as :func:`convert_model` does (:func:`fix_lstm_cell_scales`); False gives the TF
    converter's model unchanged.
    """
    _check_io(io)
    tf = _import_tf()
    source = _keras_source(tf, model)
    arrays = [calibration] if isinstance(calibration, np.ndarray) else list(calibration)
    data = from_arrays(arrays, source.specs, None, "calibration")
    return _convert_source(tf, source, data, io, fix_lstm_cells)[0]


# --------------------------------------------------------------------------- LSTM cell-state scales
#
# TFLite's integer LSTM (UNIDIRECTIONAL_SEQUENCE_LSTM, 8x8_16: int8 activations, int16 cell
# state of scale 2^k) takes the tanh of the cell through tensor_utils::ApplyTanh(15 + k, ...),
# which has a case for 15 + k in 0..6 only and returns without writing for any other k
# (portable_tensor_utils.cc PortableApplyTanh: `default: return;`, its assert compiled out): the op's
# output then loses the cell's tanh (it becomes o * sigmoid(input gate)). TFLite does not refuse
# such a k: the `cell_scale <= -9` check in Prepare is commented out, and there is no lower bound.
#
# TensorFlow Lite Micro, the oracle, has its own LSTM kernel (micro/kernels/lstm_eval.h,
# UpdateLstmHidden -> lstm_internal::Tanh): it rescales the cell to its int16 tanh's input format by
# a left or a right shift, so it takes the tanh at every scale (tinyedge.ops.lstm accepts 2^-30..2^2,
# where TFLM's int32 arithmetic does not overflow). For TFLM alone the converter's scales would do.
#
# The converter picks k = ceil(log2(max |calibrated cell|)) - 15 (PowerOfTwoBound over 32768 in
# compiler/mlir/lite/transforms/prepare_quantize_helper.h), so a cell that stays within +-0.5
# gets 2^-16 or less: two stacked Keras LSTMs get 2^-16 and 2^-17, and in TFLite their int8
# outputs land 212 and 235 LSB from the float model's; in TFLM 2.8 and 2.6 LSB. A scale of
# 2^-15 covers +-1, MORE range than any smaller one: raising a smaller scale to 2^-15 costs
# precision only, and the drift measured in TFLM stays 2.8 and 2.6 LSB (TFLite: 2.8 and 2.9;
# tests/test_convert.py). So convert raises them: the .tflite then means the same in TFLite
# (the second opinion `validate` reports, and any TFLite deployment) as in TFLM.
#
# Nothing else in the op depends on the scale in a way this breaks. TFLite's Prepare
# (unidirectional_sequence_lstm.cc, PopulateQuantizedLstmParams8x8_16) reads the cell scale for:
# cell_scale = CheckedLog2(scale), which Eval uses for the cell update's shift (30 + k) and the
# tanh's integer bits (15 + k); quantized_cell_clip = cell_clip / scale (cell_clip is a float
# option, so the clip is re-derived; the converter's clip of 10 saturates to 32767 at 2^-15 as
# at 2^-16); and the peephole scales 2^k * w / 2^-12 (derived from k too; the converter emits
# no peephole for Keras LSTMs). TFLM's Prepare (lstm_eval_common.cc) reads it for the same log2,
# the clip, and the two products into the cell (2^-15 * 2^k / 2^k, 2^-30 / 2^k). The gate and
# hidden effective scales come from the input, weight and output-state scales only. The cell
# state is a variable tensor that starts at 0 (0 at any scale), read by its LSTM op only (checked).
#
# Above 2^-9 (a calibrated cell beyond +-64, only possible without a cell clip or with one above
# 64; the converter's clip of 10 keeps Keras LSTMs at 2^-11 or less) TFLite takes no tanh either,
# and above 2^2 TFLM's tanh input overflows int32; in between TFLM takes the tanh, but a coarse cell
# costs precision (the stacked model above: 3.2 LSB at 2^-8, 17.6 at 2^-5, 3.1 at 2^-9). There
# the scale is LOWERED to 2^-9: the cell
# then saturates at +-64, where tanh is 1 - 5e-56, so the output only changes where a cell goes
# beyond +-64 and later decays: the report warns (unless the cell clip is at most 64, when the
# cell never leaves +-64 anyway) and its drift, measured on the fixed model, shows what that
# costs on the user's data.

LSTM_CELL_STATE_INPUT = 19  # lstm_shared.h, kInputCellStateTensor
TFLITE_TANH_SHIFTS = (-15, -9)  # cell scales 2^k TFLite's ApplyTanh(15 + k) takes the tanh at
_QUANT_SCALE_FIELD = 8  # QuantizationParameters vtable offset of `scale: [float]` (field 2)


@dataclass(frozen=True)
class CellScaleFix:
    """One LSTM op whose int16 cell state scale 2^old_shift became 2^new_shift."""

    op_index: int
    tensor_index: int
    old_shift: int
    new_shift: int
    cell_clip: float  # the op's cell_clip option (0: none)

    @property
    def raised(self) -> bool:
        return self.new_shift > self.old_shift

    def note(self) -> str:
        if self.raised:
            how, why = "raised", "below 2^-15"
        else:
            how, why = "lowered", "above 2^-9"
        return (f"LSTM op {self.op_index}: cell state scale 2^{self.old_shift} {how} to 2^{self.new_shift} "
                f"(TFLite skips the cell tanh {why})")

    def warning(self) -> str | None:
        """Lowering the scale cuts the cell's range; None when nothing is lost."""
        limit = 2.0 ** (self.new_shift + 15)
        if self.raised or 0.0 < self.cell_clip <= limit:
            return None
        return (f"LSTM op {self.op_index}: its int16 cell state now saturates at +-{limit:g} (the converter's "
                f"scale covered +-{2.0 ** (self.old_shift + 15):g}, from the calibrated range); tanh is 1 there, "
                f"but a cell that goes beyond +-{limit:g} and decays again follows another path than in float: "
                "check the drift")


def _power_of_two(scale: float) -> int | None:
    """k when the float32 ``scale`` is exactly 2^k (TFLite's Prepare fails on any other cell
    scale; the converter writes powers of two), else None."""
    s = float(np.float32(scale))
    if not math.isfinite(s) or s <= 0.0:
        return None
    m, e = math.frexp(s)
    return e - 1 if m == 0.5 else None


def _cell_scale_fix(graph: Graph, op: Operator) -> CellScaleFix | None:
    """The fix one op needs: an integer (8x8_16) LSTM whose variable int16 cell state has a
    power-of-two scale outside 2^-15..2^-9 (TFLite's ApplyTanh range); None for every other op."""
    k = LSTM_CELL_STATE_INPUT
    if op.opcode != "UNIDIRECTIONAL_SEQUENCE_LSTM" or len(op.inputs) <= k or op.inputs[k] < 0:
        return None
    x, cell = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[k]]
    if x.dtype != "int8" or cell.dtype != "int16" or not cell.is_variable or cell.quant is None \
            or cell.quant.per_channel:
        return None
    shift = _power_of_two(cell.scale)
    lo, hi = TFLITE_TANH_SHIFTS
    if shift is None or lo <= shift <= hi:
        return None
    return CellScaleFix(op.index, cell.index, shift, lo if shift < lo else hi,
                        float(op.options.get("cell_clip", 0.0) or 0.0))


def _scale_position(buf: bytes | bytearray, tensor_index: int) -> int:
    """Byte offset of the (single) float in tensor ``tensor_index``'s quantization scale vector
    (subgraph 0), found with the schema's own accessors."""
    import tflite

    tensor = tflite.Model.GetRootAsModel(buf, 0).Subgraphs(0).Tensors(tensor_index)
    q = tensor.Quantization()
    field_off = q._tab.Offset(_QUANT_SCALE_FIELD) if q is not None else 0
    if not field_off or q._tab.VectorLen(field_off) != 1:
        raise InternalError(f"LSTM cell state tensor {tensor_index} has no single quantization scale to fix")
    return int(q._tab.Vector(field_off))


def _patch_scales(data: bytes, scales: dict[int, float]) -> bytes:
    """``data`` with each tensor's per-tensor scale overwritten in place (same size, same layout)."""
    import struct

    buf = bytearray(data)
    for tensor_index, scale in scales.items():
        struct.pack_into("<f", buf, _scale_position(buf, tensor_index), scale)
    return bytes(buf)


def _check_fixed(before: Graph, data: bytes, fixes: list[CellScaleFix]) -> None:
    """The patched model differs from ``before`` in the fixed cell scales and nothing else, and
    the oracle (TFLM) loads and runs it."""
    from tinyedge.oracle import Oracle

    after = read_model(data, "<converted>")
    want = {f.tensor_index: 2.0 ** f.new_shift for f in fixes}
    for a, b in zip(before.tensors, after.tensors, strict=True):
        expect = a.quant
        if a.index in want and a.quant is not None:
            expect = Quant((want[a.index],), a.quant.zero_point, a.quant.axis)
        if b.quant != expect or (a.shape, a.dtype, a.data, a.is_variable) != (b.shape, b.dtype, b.data, b.is_variable):
            raise InternalError(f"fixing the LSTM cell state scales changed tensor '{a.name}' unexpectedly")
    oracle = Oracle(data)  # a TinyEdgeError if the oracle cannot load it
    oracle.run([np.zeros(d["shape"], d["dtype"]) for d in oracle.input_details])


def fix_lstm_cell_scales(data: bytes, graph: Graph | None = None) -> tuple[bytes, list[CellScaleFix]]:
    """Move every integer LSTM's cell state scale TFLite takes no tanh at into 2^-15..2^-9:
    below 2^-15 raised to 2^-15 (no range lost), above 2^-9 lowered to 2^-9 (see the comment
    above). The scale floats are overwritten in place; the result is checked to differ in those
    scales only and to run in the oracle. Returns the model (``data`` itself when nothing needed
    fixing) and the fixes, one per cell state tensor."""
    graph = graph if graph is not None else read_model(data, "<model>")
    fixes: dict[int, CellScaleFix] = {}
    for op in graph.operators:
        fix = _cell_scale_fix(graph, op)
        if fix is not None:
            fixes.setdefault(fix.tensor_index, fix)
    if not fixes:
        return data, []
    for t, fix in fixes.items():
        users = [op.index for op in graph.operators if t in op.inputs or t in op.outputs]
        if users != [fix.op_index]:
            raise TinyEdgeError(f"the cell state tensor '{graph.tensors[t].name}' of LSTM op {fix.op_index} is "
                                f"also used by op(s) {', '.join(str(u) for u in users if u != fix.op_index)}",
                                "each LSTM needs its own cell state tensor; re-convert the model")
    patched = _patch_scales(data, {t: 2.0 ** f.new_shift for t, f in fixes.items()})
    _check_fixed(graph, patched, list(fixes.values()))
    return patched, sorted(fixes.values(), key=lambda f: f.op_index)


# --------------------------------------------------------------------------- drift report

@dataclass
class OutputDrift:
    """Float model vs int8 model on one output, over the evaluation samples."""

    name: str
    shape: tuple[int, ...]
    lsb: float | None  # the int8 output's scale: one quantization step, in real units
    max_abs_error: float
    mean_abs_error: float
    float_min: float
    float_max: float
    top1_agreement: float | None = None  # classifiers (last dim > 1): argmax equal
    accuracy_float: float | None = None  # vs labels y
    accuracy_int8: float | None = None
    target_mae_float: float | None = None  # regression: mean |output - y|
    target_mae_int8: float | None = None

    def format(self) -> str:
        shape = "x".join(map(str, self.shape))
        lsb = f" ({self.max_abs_error / self.lsb:.1f} LSB)" if self.lsb else ""
        parts = [f"max |err| {self.max_abs_error:.4g}{lsb}", f"mean |err| {self.mean_abs_error:.4g}",
                 f"float range [{self.float_min:.4g}, {self.float_max:.4g}]"]
        if self.top1_agreement is not None:
            parts.append(f"top-1 agreement {100 * self.top1_agreement:.1f} %")
        if self.accuracy_float is not None and self.accuracy_int8 is not None:
            parts.append(f"accuracy float {100 * self.accuracy_float:.1f} % / int8 {100 * self.accuracy_int8:.1f} %")
        if self.target_mae_float is not None and self.target_mae_int8 is not None:
            parts.append(f"MAE vs y float {self.target_mae_float:.4g} / int8 {self.target_mae_int8:.4g}")
        return f"{self.name} [{shape}]: " + ", ".join(parts)


@dataclass
class ConvertReport:
    source: str
    output: str
    source_kind: str  # "Keras" | "SavedModel"
    io: str
    inputs: list[str]  # "name: int8[1x16x1] s=... zp=..."
    outputs: list[str]
    calibration: str
    calibration_samples: int  # used for calibration
    calibration_available: int  # in the file
    evaluated_on: str  # the data file the drift was measured on
    evaluation_samples: int
    in_sample: bool  # drift measured on the calibration samples themselves
    drift: list[OutputDrift]
    op_counts: dict[str, int]
    model_bytes: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    # Keras LSTM layers converted as the fused LSTM op, and how much the rewrite changed the
    # float model's outputs (relative, on the first calibration samples; 0 = identical)
    lstm_rewritten: list[str] = field(default_factory=list)
    lstm_rewrite_diff: float | None = None
    # LSTM cell state scales moved into the range where TFLite applies the cell's tanh
    # (CellScaleFix.note(): "LSTM op 1: cell state scale 2^-16 raised to 2^-15 (...)")
    lstm_cell_scales: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConvertReport:
        drift = [OutputDrift(**{**x, "shape": tuple(x["shape"])}) for x in d["drift"]]
        return cls(**{**d, "drift": drift})

    def format(self) -> str:
        lines = [
            f"converted {self.source} ({self.source_kind}) -> {self.output}",
            f"  {self.model_bytes / 1024:.1f} KB, {self.io} I/O, in {self.seconds:.1f} s",
            f"  calibration: {self.calibration_samples} of {self.calibration_available} samples from {self.calibration}",
        ]
        lines += [f"  input  {s}" for s in self.inputs]
        lines += [f"  output {s}" for s in self.outputs]
        lines.append("  ops: " + ", ".join(f"{k} x{v}" for k, v in self.op_counts.items()))
        if self.lstm_rewritten:
            lines.append(f"  LSTM layers as the fused TFLite LSTM: {', '.join(self.lstm_rewritten)} "
                         f"(float outputs changed by {self.lstm_rewrite_diff or 0:.2g}, relative)")
        lines += [f"  {note}" for note in self.lstm_cell_scales]
        where = "the calibration samples (no validation data given)" if self.in_sample else self.evaluated_on
        lines.append(f"  float vs int8 on {where}, {self.evaluation_samples} samples:")
        lines += [f"    {d.format()}" for d in self.drift]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _signature_io(data: bytes) -> tuple[dict[str, int], dict[str, int]]:
    """The converted model's signature: input key -> tensor index, output key -> tensor index."""
    import tflite

    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SignatureDefsLength() < 1:
        return {}, {}
    sd = model.SignatureDefs(0)
    ins = {sd.Inputs(i).Name().decode(): int(sd.Inputs(i).TensorIndex()) for i in range(sd.InputsLength())}
    outs = {sd.Outputs(i).Name().decode(): int(sd.Outputs(i).TensorIndex()) for i in range(sd.OutputsLength())}
    return ins, outs


def _output_lsb(graph: Graph, index: int) -> float | None:
    t = graph.tensors[index]
    if t.quant is not None and t.dtype == "int8":
        return t.scale
    for op in graph.operators:  # float I/O: the DEQUANTIZE that makes this output
        if op.opcode == "DEQUANTIZE" and index in op.outputs:
            src = graph.tensors[op.inputs[0]]
            return src.scale if src.quant is not None else None
    return None


def _run_int8(data: bytes, graph: Graph, ds: Dataset, specs: list[InputSpec],
              sig_in: dict[str, int]) -> dict[int, np.ndarray]:
    """Run the converted model on every sample with the oracle; outputs dequantized, by tensor index."""
    from tinyedge.oracle import Oracle

    by_tensor = {idx: k for k, idx in sig_in.items()}
    order = [s.name for s in specs]
    pick = [order.index(by_tensor[i]) if by_tensor.get(i) in order else n for n, i in enumerate(graph.inputs)]
    oracle = Oracle(data)
    outs: dict[int, list[np.ndarray]] = {i: [] for i in graph.outputs}
    for n in range(len(ds)):
        sample = ds.sample(n)
        feed = [to_tensor_dtype(sample[j], graph.tensors[i].dtype, graph.tensors[i].quant)
                for j, i in zip(pick, graph.inputs)]
        oracle.reset()  # every sample from the initial LSTM state, like the float model (and the device)
        for i, y in zip(graph.outputs, oracle.run(feed)):
            t = graph.tensors[i]
            outs[i].append(dequantize(y, t.quant) if t.dtype == "int8" and t.quant else y.astype(np.float32))
    return {i: np.concatenate(v) for i, v in outs.items()}


def _drift_one(name: str, shape: tuple[int, ...], lsb: float | None, f: np.ndarray, q: np.ndarray,
               y: np.ndarray | None, labels: np.ndarray | None) -> OutputDrift:
    f = f.reshape(q.shape).astype(np.float64)
    q = q.astype(np.float64)
    err = np.abs(f - q)
    d = OutputDrift(name, shape, lsb, float(err.max()), float(err.mean()), float(f.min()), float(f.max()))
    if shape and shape[-1] > 1:
        d.top1_agreement = float(np.mean(np.argmax(f, -1) == np.argmax(q, -1)))
        if labels is not None and len(shape) == 2:
            d.accuracy_float = float(np.mean(np.argmax(f.reshape(len(f), -1), 1) == labels))
            d.accuracy_int8 = float(np.mean(np.argmax(q.reshape(len(q), -1), 1) == labels))
    elif y is not None and y.size == f.size and y.dtype.kind == "f":
        t = y.reshape(f.shape).astype(np.float64)
        d.target_mae_float = float(np.mean(np.abs(f - t)))
        d.target_mae_int8 = float(np.mean(np.abs(q - t)))
    return d


def _drift(data: bytes, graph: Graph, source: _Source, ds: Dataset) -> list[OutputDrift]:
    sig_in, sig_out = _signature_io(data)
    try:
        with _quiet_tf() as cap:
            float_out = source.run_float([x.astype(np.float32) for x in ds.inputs])
    except Exception:
        sys.stderr.write(cap.text)  # an unexpected failure: show everything TensorFlow said
        raise
    int8_out = _run_int8(data, graph, ds, source.specs, sig_in)
    by_tensor = {idx: k for k, idx in sig_out.items()}
    if len(float_out) == 1 and len(graph.outputs) == 1:  # nothing to match
        by_tensor = {graph.outputs[0]: next(iter(float_out))}
    labels = class_labels(ds.y)
    n_classifiers = sum(1 for i in graph.outputs if graph.tensors[i].shape and graph.tensors[i].shape[-1] > 1)
    result = []
    for i in sorted(graph.outputs, key=lambda i: by_tensor.get(i, "")):
        key = by_tensor.get(i)
        if key not in float_out:
            raise TinyEdgeError(f"cannot match output tensor '{graph.tensors[i].name}' to a float model output "
                                f"({', '.join(float_out)})", "report this with the model")
        t = graph.tensors[i]
        result.append(_drift_one(key, t.shape, _output_lsb(graph, i), float_out[key], int8_out[i], ds.y,
                                 labels if n_classifiers == 1 else None))
    return result


def _warnings(report: ConvertReport) -> list[str]:
    out = []
    if report.calibration_samples < 20:
        out.append(f"only {report.calibration_samples} calibration samples; "
                   "a few hundred representative samples give better scales")
    for d in report.drift:
        if d.top1_agreement is not None and d.top1_agreement < 0.9:
            out.append(f"{d.name}: int8 top-1 agrees with float on only {100 * d.top1_agreement:.1f} % "
                       "of samples; check the calibration data is representative")
    return out


# --------------------------------------------------------------------------- the command

def _subset(ds: Dataset, max_n: int) -> Dataset:
    """At most ``max_n`` samples, evenly spread over the file (deterministic)."""
    if len(ds) <= max_n:
        return ds
    return ds.subset(np.unique(np.linspace(0, len(ds) - 1, max_n).round().astype(np.int64)))


def _write(out: Path, data: bytes) -> None:
    if out.is_dir():
        raise TinyEdgeError(f"{out} is a directory", "give the output .tflite file name, e.g. out/model_int8.tflite")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TinyEdgeError(f"cannot write {out}: {exc.strerror}", "check the directory is writable") from None
    write_atomic(out, data, "the converted model")


def convert_model(src: Path, out: Path, calibration: Path, validation: Path | None = None,
                  io: IoType = "int8", max_calibration: int = 200, isolate: bool | None = None) -> ConvertReport:
    """Convert ``src`` (.keras, .h5, SavedModel dir) to a full-int8 .tflite at ``out``.

    ``calibration``/``validation``: .npy/.npz data files (see tinyedge.datasets);
    at most ``max_calibration`` calibration samples are used, evenly spread over
    the file. Returns the drift report (float vs int8 on the validation data, or
    on the calibration samples when ``validation`` is None).

    ``isolate``: run TensorFlow in a child Python process, so that TensorFlow
    crashing (a segfault in the converter) is a TinyEdgeError here instead of the
    end of this process. ``None`` (default): isolate unless TensorFlow is already
    imported in this process (the child costs a second TensorFlow import, ~4 s;
    a process that has not imported it, like the CLI, pays ~0.1 s).
    """
    t0 = time.monotonic()
    src, out, calibration = Path(src), Path(out), Path(calibration)
    _check_io(io)
    if max_calibration < 1:
        raise TinyEdgeError(f"max_calibration must be at least 1 (got {max_calibration})", "use e.g. 200")
    _check_source_path(src)
    for p in (calibration, validation):
        if p is not None:
            check_data_file(p)   # a real .npy/.npz of finite numbers, before TensorFlow starts
    if importlib.util.find_spec("tensorflow") is None:
        raise _tf_missing()
    if isolate is None:
        isolate = "tensorflow" not in sys.modules
    if isolate:
        args = {"src": str(src), "out": str(out), "calibration": str(calibration),
                "validation": None if validation is None else str(validation), "io": io,
                "max_calibration": max_calibration}
        report = _convert_in_child(args)
    else:
        report = _convert_model(src, out, calibration, validation, io, max_calibration)
    report.seconds = time.monotonic() - t0
    return report


def _convert_model(src: Path, out: Path, calibration: Path, validation: Path | None, io: IoType,
                   max_calibration: int, stage: Callable[[str], None] = lambda s: None) -> ConvertReport:
    stage("importing TensorFlow")
    tf = _import_tf()
    stage(f"loading {src}")
    source = _load_source(tf, src)
    cal_all = load_dataset(calibration, source.specs)
    cal = _subset(cal_all, max_calibration)
    stage("converting the model to int8 (TensorFlow's converter and calibration)")
    data, graph, cell_fixes = _convert_source(tf, source, cal, io)
    fixed = _fix_specs(source.specs, cal)
    val = load_dataset(validation, fixed) if validation is not None else cal
    stage("measuring the float model against the int8 model")
    drift = _drift(data, graph, source, val)
    _write(out, data)
    sig_in, sig_out = _signature_io(data)
    names = {i: k for k, i in [*sig_in.items(), *sig_out.items()]}
    report = ConvertReport(
        source=str(src), output=str(out), source_kind=source.kind, io=io,
        inputs=[f"{names.get(t.index, t.name)}: {t.describe()}" for t in graph.input_tensors],
        outputs=[f"{names.get(t.index, t.name)}: {t.describe()}" for t in graph.output_tensors],
        calibration=str(calibration), calibration_samples=len(cal), calibration_available=len(cal_all),
        evaluated_on=str(validation if validation is not None else calibration),
        evaluation_samples=len(val), in_sample=validation is None, drift=drift,
        op_counts=dict(sorted(Counter(op.opcode for op in graph.operators).items())),
        model_bytes=len(data), seconds=0.0, lstm_rewritten=source.rewritten,
        lstm_rewrite_diff=source.rewrite_diff, lstm_cell_scales=[f.note() for f in cell_fixes],
    )
    report.warnings = _warnings(report) + [w for f in cell_fixes if (w := f.warning()) is not None]
    return report


# --------------------------------------------------------------------------- the child process
#
# The parent never imports TensorFlow: it sends the arguments (JSON, stdin) to
# `python -c _CHILD_CODE`, which runs _convert_model and writes the report or the
# TinyEdgeError (JSON) to a result file, and the stage it is in to a stage file.
# A child killed by a signal becomes a TinyEdgeError naming the signal, the stage
# and the Python frame faulthandler printed.

_CHILD_CODE = "from tinyedge.convert import _child_main; _child_main()"


def _child_main() -> None:
    import faulthandler
    import json
    import traceback

    args = json.load(sys.stdin)
    # faulthandler writes to a copy of the real stderr: _quiet_tf moves fd 2 during TF calls
    crash_log = os.fdopen(os.dup(2), "w")
    faulthandler.enable(file=crash_log)
    stage_path, result_path = Path(args.pop("stage_file")), Path(args.pop("result_file"))

    def stage(text: str) -> None:
        stage_path.write_text(text)

    try:
        validation = None if args["validation"] is None else Path(args["validation"])
        report = _convert_model(Path(args["src"]), Path(args["out"]), Path(args["calibration"]), validation,
                                args["io"], args["max_calibration"], stage)
        result: dict[str, Any] = {"report": report.to_dict()}
    except TinyEdgeError as exc:
        result = {"error": [exc.message, exc.hint]}
    except BaseException as exc:  # noqa: BLE001  (relayed to the parent, which raises)
        result = {"exception": f"{type(exc).__name__}: {_first_line(exc)}", "traceback": traceback.format_exc()}
    result_path.write_text(json.dumps(result))


def _signal_name(returncode: int) -> str:
    import signal

    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _last_frame(stderr: str) -> str:
    """The innermost Python frame of a faulthandler dump ("File ..., line N in f"), if any."""
    frames = re.findall(r'File "([^"]+)", line (\d+) in (\S+)', stderr)
    if not frames:
        return ""
    path, line, func = frames[0]  # faulthandler lists the most recent call first
    return f"; last Python frame: {func} ({Path(path).name}:{line})"


def _convert_in_child(args: dict[str, Any], code: str = _CHILD_CODE) -> ConvertReport:
    import json
    import subprocess

    from tinyedge import procs

    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    show_log = bool(os.environ.get("TINYEDGE_TF_LOG"))
    with tempfile.TemporaryDirectory(prefix="tinyedge-convert-") as tmp:
        stage_file, result_file = Path(tmp) / "stage", Path(tmp) / "result.json"
        payload = json.dumps({**args, "stage_file": str(stage_file), "result_file": str(result_file)})
        proc = procs.run([sys.executable, "-c", code], input=payload, text=True, env=env,
                         stdout=None if show_log else subprocess.PIPE,
                         stderr=None if show_log else subprocess.PIPE)
        stage = stage_file.read_text() if stage_file.exists() else "starting"
        result = json.loads(result_file.read_text()) if result_file.exists() else None
    if result is None:
        how = f"crashed ({_signal_name(proc.returncode)})" if proc.returncode < 0 else \
            f"exited with status {proc.returncode}"
        raise TinyEdgeError(
            f"TensorFlow {how} while {stage}{_last_frame(proc.stderr or '')}",
            "the conversion ran in a child process, so only that process died; this is a TensorFlow "
            "bug: simplify the model around the failing part, or set TINYEDGE_TF_LOG=1 to see its log")
    if "report" in result:
        return ConvertReport.from_dict(result["report"])
    if "error" in result:
        raise TinyEdgeError(*result["error"])
    # an unexpected failure in the child: a bug, shown with the child's traceback
    raise InternalError(f"the conversion failed while {stage}: {result['exception']}",
                        f"in the converter's child process:\n{result['traceback']}")
