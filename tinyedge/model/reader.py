"""Parse a .tflite flatbuffer with the generated ``tflite`` schema package.

No TensorFlow import: inspect and generate must work on a machine that only
has the small schema package installed.

A model is refused as corrupt (a TinyEdgeError naming what is wrong) unless
its structure holds together, so that everything after reading may rely on
it: every tensor index an op or the graph names exists (or is -1 where an
input may be omitted), every tensor has a type tinyedge knows, a shape of
non-negative sizes no larger than a microcontroller could hold, a buffer
that exists and holds exactly its bytes, and quantization parameters that
make sense (finite, non-negative scales; zero points the type can hold; as
many of them as channels along an axis the tensor has).
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from tinyedge.errors import TinyEdgeError
from tinyedge.infiles import check_regular
from tinyedge.model.ir import DTYPE_SIZES, DTYPES, Graph, Operator, Quant, Tensor

# No tensor of a model for a microcontroller comes near this; beyond it, sizes
# are corrupt (and would make the planner and the lowering allocate gigabytes).
MAX_TENSOR_BYTES = 1 << 31
_INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "int32": (-(1 << 31), (1 << 31) - 1)}


def _enum_names(cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _read_options(table_obj: Any) -> dict[str, Any]:
    """Read every scalar and vector field of a generated options class by reflection."""
    cls = type(table_obj)
    out: dict[str, Any] = {}
    for attr in dir(cls):
        if attr.startswith("_") or attr in ("Init",) or attr.startswith("GetRootAs"):
            continue
        if attr.endswith(("Length", "AsNumpy", "IsNone", "BufferHasIdentifier")):
            continue
        fn = getattr(table_obj, attr)
        if not callable(fn):
            continue
        if hasattr(table_obj, attr + "Length"):
            n = getattr(table_obj, attr + "Length")()
            out[_snake(attr)] = [int(fn(j)) for j in range(n)]
        else:
            try:
                out[_snake(attr)] = fn()
            except TypeError:  # a method that needs arguments we do not know: not a field
                continue
    return out


def _text(raw: bytes | None) -> str:
    """A flatbuffer string field; absent and empty strings (TFLM's own test
    models leave tensor names out) both read as ""."""
    return raw.decode(errors="replace") if raw else ""


def _ints(length: int, as_numpy: Any) -> list[int]:
    """A flatbuffer int vector; the generated ``...AsNumpy()`` returns 0, not an
    empty array, when the vector is absent."""
    return [int(x) for x in as_numpy()] if length else []


def read_model(data: bytes, source: str = "<bytes>") -> Graph:
    """Parse the bytes of a .tflite model into a :class:`Graph` (subgraph 0)."""
    import tflite  # the flatbuffer schema package; small, no TensorFlow

    if len(data) < 8 or data[4:8] != b"TFL3":
        raise TinyEdgeError(
            f"{source} is not a TFLite model (no 'TFL3' file identifier)",
            "pass a .tflite file, e.g. the output of `tinyedge convert`",
        )
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        return _build_graph(model, data, source, tflite)
    except TinyEdgeError:
        raise
    except Exception as exc:  # flatbuffers raises assorted errors on corrupt input
        raise TinyEdgeError(
            f"{source} is a corrupt or truncated TFLite model ({type(exc).__name__}: {exc})",
            "re-export the model; check the file was copied completely",
        ) from None


def _build_graph(model: Any, data: bytes, source: str, tflite: Any) -> Graph:
    op_names = _enum_names(tflite.BuiltinOperator)
    opt_names = _enum_names(tflite.BuiltinOptions)
    if model.SubgraphsLength() < 1:
        raise TinyEdgeError(f"{source} has no subgraph", "re-export the model")
    sg = model.Subgraphs(0)

    codes: list[str] = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        name = op_names.get(code, f"BUILTIN_{code}")
        if name == "CUSTOM":
            custom = oc.CustomCode()
            name = f"CUSTOM({_text(custom) or '?'})"
        codes.append(name)

    type_names = _enum_names(tflite.TensorType)
    tensors: list[Tensor] = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        ttype = int(t.Type())
        what = f"tensor {i} ({_text(t.Name()) or 'unnamed'})"
        # a type tinyedge has no use for (string, resource, complex64, ...) keeps its name, and
        # the checks of the ops that touch it refuse it
        dtype = DTYPES[ttype][0] if ttype in DTYPES else str(type_names.get(ttype, f"type{ttype}")).lower()
        shape = tuple(_ints(t.ShapeLength(), t.ShapeAsNumpy))
        _check_shape(shape, dtype, what, source)
        quant = None
        q = t.Quantization()
        if q is not None and q.ScaleLength() > 0:
            zps = tuple(int(z) for z in q.ZeroPointAsNumpy()) if q.ZeroPointLength() else (0,)
            scales = tuple(float(s) for s in q.ScaleAsNumpy())
            if len(zps) == 1 and len(scales) > 1:
                zps = zps * len(scales)
            quant = Quant(scales, zps, int(q.QuantizedDimension()))
        buf_data: bytes | None = None
        if not 0 <= t.Buffer() < model.BuffersLength():
            raise _corrupt(source, f"{what} names buffer {t.Buffer()}, the model has {model.BuffersLength()}")
        b = model.Buffers(t.Buffer())
        if b is not None:
            off, size = int(b.Offset()), int(b.Size())
            if off > 1:
                buf_data = bytes(data[off : off + size])
            elif b.DataLength() > 0:
                buf_data = b.DataAsNumpy().tobytes()
        if buf_data is not None and dtype in {n for n, _ in DTYPES.values()}:
            expect = int(np.prod(shape, dtype=np.int64)) * np.dtype(
                next(nt for n, nt in DTYPES.values() if n == dtype)
            ).itemsize
            if len(buf_data) != expect:
                raise TinyEdgeError(
                    f"{source}: tensor {i} ({_text(t.Name()) or 'unnamed'}) holds {len(buf_data)} bytes, "
                    f"its shape {list(shape)} needs {expect}",
                    "the model file is corrupt; re-export it",
                )
        if quant is not None:
            _check_quant(quant, shape, dtype, what, source, const=buf_data is not None)
        tensors.append(
            Tensor(index=i, name=_text(t.Name()), shape=shape, dtype=dtype,
                   quant=quant, data=buf_data, is_variable=bool(t.IsVariable()))
        )

    operators: list[Operator] = []
    for i in range(sg.OperatorsLength()):
        o = sg.Operators(i)
        if not 0 <= o.OpcodeIndex() < len(codes):
            raise _corrupt(source, f"op {i} names operator code {o.OpcodeIndex()}, the model has {len(codes)}")
        opcode = codes[o.OpcodeIndex()]
        options: dict[str, Any] = {}
        otype = int(o.BuiltinOptionsType())
        if otype != 0:
            cls_name = opt_names.get(otype)
            cls = getattr(tflite, cls_name, None) if cls_name else None
            table = o.BuiltinOptions()
            if cls is not None and table is not None:
                obj = cls()
                obj.Init(table.Bytes, table.Pos)
                options = _read_options(obj)
        version = int(model.OperatorCodes(o.OpcodeIndex()).Version())
        operators.append(
            Operator(
                index=i,
                opcode=opcode,
                inputs=_ints(o.InputsLength(), o.InputsAsNumpy),
                outputs=_ints(o.OutputsLength(), o.OutputsAsNumpy),
                options=options,
                version=version,
                intermediates=_ints(o.IntermediatesLength(), o.IntermediatesAsNumpy),
            )
        )

    inputs = _ints(sg.InputsLength(), sg.InputsAsNumpy)
    outputs = _ints(sg.OutputsLength(), sg.OutputsAsNumpy)
    _check_indices(operators, inputs, outputs, len(tensors), source)
    _check_dataflow(operators, inputs, outputs, tensors, source)
    desc = model.Description()
    return Graph(
        tensors=tensors,
        operators=operators,
        inputs=inputs,
        outputs=outputs,
        sha256=hashlib.sha256(data).hexdigest(),
        source=source,
        model_bytes=bytes(data),
        description=_text(desc),
    )


def _corrupt(source: str, what: str) -> TinyEdgeError:
    return TinyEdgeError(f"{source} is a corrupt TFLite model: {what}",
                         "re-export the model; check the file was copied completely")


def _check_shape(shape: tuple[int, ...], dtype: str, what: str, source: str) -> None:
    if any(d < 0 for d in shape):
        raise _corrupt(source, f"{what} has shape {list(shape)} (a negative size)")
    nbytes = math.prod(shape) * DTYPE_SIZES.get(dtype, 1)
    if nbytes > MAX_TENSOR_BYTES:
        raise TinyEdgeError(f"{source}: {what} of shape {list(shape)} would take {nbytes:,} bytes",
                            "no microcontroller holds that; check the model")


def _check_quant(q: Quant, shape: tuple[int, ...], dtype: str, what: str, source: str, const: bool) -> None:
    """Scales finite and not negative -- and not zero for integer data computed at run
    time, which every kernel divides by (a constant's channel of zeros may have
    scale 0); zero points within the type; per-channel along an axis that has as
    many channels."""
    if len(q.zero_point) != len(q.scale):
        raise _corrupt(source, f"{what} has {len(q.scale)} quantization scales and {len(q.zero_point)} zero points")
    scales = f"{', '.join(f'{s:g}' for s in q.scale[:4])}{'...' if len(q.scale) > 4 else ''}"
    if not all(math.isfinite(s) and s >= 0 for s in q.scale):
        raise _corrupt(source, f"{what} has a quantization scale that is negative, infinite or NaN ({scales})")
    if not const and dtype in ("int8", "uint8", "int16") and not all(s > 0 for s in q.scale):
        raise _corrupt(source, f"{what}, computed at run time, has a quantization scale of 0 ({scales})")
    lo, hi = _INT_RANGES.get(dtype, (-(1 << 63), (1 << 63) - 1))
    if not all(lo <= z <= hi for z in q.zero_point):
        raise _corrupt(source, f"{what} has a zero point outside the range of {dtype}")
    if q.per_channel and not (0 <= q.axis < len(shape) and shape[q.axis] == len(q.scale)):
        raise _corrupt(source, f"{what} of shape {list(shape)} has {len(q.scale)} per-channel scales along "
                               f"axis {q.axis}")


def _check_indices(operators: list[Operator], inputs: list[int], outputs: list[int], n: int, source: str) -> None:
    """Every tensor index names a tensor; -1 (omitted) only as an op input."""
    for op in operators:
        for kind, indices, omit in (("input", op.inputs, True), ("output", op.outputs, False),
                                    ("intermediate", op.intermediates, False)):
            for k, i in enumerate(indices):
                if not (0 <= i < n or (omit and i == -1)):
                    raise _corrupt(source, f"op {op.index} ({op.opcode}) {kind} {k} is tensor {i}, "
                                           f"the model has {n} tensors")
    for kind, indices in (("input", inputs), ("output", outputs)):
        if not indices:
            raise _corrupt(source, f"the graph has no {kind}s")
        for i in indices:
            if not 0 <= i < n:
                raise _corrupt(source, f"graph {kind} {i} is not one of the model's {n} tensors")


def _check_dataflow(operators: list[Operator], inputs: list[int], outputs: list[int], tensors: list[Tensor],
                    source: str) -> None:
    """Ops run in file order (TFLite's execution order): each reads what is there
    before it runs -- a graph input, a constant, a variable or an earlier op's
    output -- and writes tensors nothing else writes."""
    for i in inputs:
        if not tensors[i].is_activation:
            raise _corrupt(source, f"graph input {i} ({tensors[i].name or 'unnamed'}) is a constant or a variable")
    written = set(inputs)
    for op in operators:
        for k, i in enumerate(op.inputs):
            t = tensors[i] if i >= 0 else None
            if t is not None and t.is_activation and i not in written:
                raise _corrupt(source, f"op {op.index} ({op.opcode}) reads tensor {i} ({t.name or 'unnamed'}) "
                                       "before any op writes it, and it is not a graph input")
        for i in op.outputs:
            t = tensors[i]
            if i in written or not t.is_activation:   # variables (LSTM state) are op inputs only
                why = "a graph input" if i in inputs else "a constant" if t.is_const else \
                    "a variable" if t.is_variable else "written by an earlier op"
                raise _corrupt(source, f"op {op.index} ({op.opcode}) writes tensor {i} ({t.name or 'unnamed'}), "
                                       f"which is {why}")
            written.add(i)
    for i in outputs:
        if not tensors[i].is_activation:
            raise TinyEdgeError(f"{source}: graph output {i} ({tensors[i].name or 'unnamed'}) is a constant or a "
                                "variable, not something an op computes", "tinyedge runs models whose outputs "
                                "are computed by their ops")
        if i not in written:
            raise _corrupt(source, f"graph output {i} ({tensors[i].name or 'unnamed'}) is written by no op")


MAX_FLATBUFFER_BYTES = 1 << 31   # FlatBuffers offsets are signed 32-bit: no model is this large


def load_model(path: str | Path) -> Graph:
    """Read a .tflite file from disk, with clear errors for missing or bad files."""
    p = Path(path)
    if not p.exists():
        raise TinyEdgeError(f"model file not found: {p}", "check the path")
    if p.is_dir():
        raise TinyEdgeError(f"{p} is a directory, not a .tflite file",
                            "convert a SavedModel first with `tinyedge convert`")
    check_regular(p, "model", "give the .tflite file itself")
    if p.stat().st_size >= MAX_FLATBUFFER_BYTES:
        raise TinyEdgeError(f"{p} is {p.stat().st_size:,} bytes: not a .tflite model (a FlatBuffer is smaller "
                            "than 2 GiB)", "give the .tflite file itself")
    return read_model(p.read_bytes(), source=str(p))
