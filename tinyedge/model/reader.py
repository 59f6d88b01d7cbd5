"""Parse a .tflite flatbuffer with the generated ``tflite`` schema package.

No TensorFlow import: inspect and generate must work on a machine that only
has the small schema package installed.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from tinyedge.errors import TinyEdgeError
from tinyedge.model.ir import DTYPES, Graph, Operator, Quant, Tensor


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

    tensors: list[Tensor] = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        ttype = int(t.Type())
        if ttype not in DTYPES:
            dtype = f"type{ttype}"
        else:
            dtype = DTYPES[ttype][0]
        shape = tuple(_ints(t.ShapeLength(), t.ShapeAsNumpy))
        quant = None
        q = t.Quantization()
        if q is not None and q.ScaleLength() > 0:
            zps = tuple(int(z) for z in q.ZeroPointAsNumpy()) if q.ZeroPointLength() else (0,)
            scales = tuple(float(s) for s in q.ScaleAsNumpy())
            if len(zps) == 1 and len(scales) > 1:
                zps = zps * len(scales)
            quant = Quant(scales, zps, int(q.QuantizedDimension()))
        buf_data: bytes | None = None
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
        tensors.append(
            Tensor(index=i, name=_text(t.Name()), shape=shape, dtype=dtype,
                   quant=quant, data=buf_data, is_variable=bool(t.IsVariable()))
        )

    operators: list[Operator] = []
    for i in range(sg.OperatorsLength()):
        o = sg.Operators(i)
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

    desc = model.Description()
    return Graph(
        tensors=tensors,
        operators=operators,
        inputs=_ints(sg.InputsLength(), sg.InputsAsNumpy),
        outputs=_ints(sg.OutputsLength(), sg.OutputsAsNumpy),
        sha256=hashlib.sha256(data).hexdigest(),
        source=source,
        model_bytes=bytes(data),
        description=_text(desc),
    )


def load_model(path: str | Path) -> Graph:
    """Read a .tflite file from disk, with clear errors for missing or bad files."""
    p = Path(path)
    if not p.exists():
        raise TinyEdgeError(f"model file not found: {p}", "check the path")
    if p.is_dir():
        raise TinyEdgeError(f"{p} is a directory, not a .tflite file",
                            "convert a SavedModel first with `tinyedge convert`")
    return read_model(p.read_bytes(), source=str(p))
