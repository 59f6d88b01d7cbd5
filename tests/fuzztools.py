"""Mutating real models and protocol frames for the fuzz tests (tests/test_fuzz.py).

Models are mutated in two ways: through the TFLite schema's object API (one
field at a time: a shape, a type, a buffer or tensor index, quantization
parameters, an op's inputs, its opcode or its options, the graph's inputs),
so that the result is a well-formed flatbuffer that says something wrong;
and byte by byte (flips, truncation), so that it is not well-formed at all.
"""

from __future__ import annotations

import contextlib
import math
import signal
import struct
from typing import Any, Callable, Iterator

import flatbuffers
from hypothesis import assume
from hypothesis import strategies as st

Draw = Callable[[st.SearchStrategy[Any]], Any]

INTS = [0, 1, 2, 3, 4, 7, 8, 16, 255, 256, 65535, 65536, 2**31 - 1, -1, -2, -128, -(2**31)]
FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-30, 1e30, 2.0**-40, math.inf, -math.inf, math.nan, 3.4e38]
MUTATIONS = ["shape", "dtype", "buffer", "quant", "op_inputs", "op_outputs", "opcode", "builtin_code",
             "options", "options_type", "graph_io", "buffer_data", "drop_op", "variable"]


def _pick(draw: Draw, items: list[Any]) -> Any:
    return items[draw(st.integers(0, len(items) - 1))]


def _int(draw: Draw, valid: int = 0) -> int:
    """A value from the interesting ints, or a valid index below ``valid``."""
    if valid and draw(st.booleans()):
        return int(draw(st.integers(0, valid - 1)))
    return int(draw(st.sampled_from(INTS)))


def _mutate_list(draw: Draw, values: list[int], valid: int) -> list[int]:
    values = list(values)
    how = draw(st.sampled_from(["set", "drop", "add", "empty"]))
    if how == "set" and values:
        values[draw(st.integers(0, len(values) - 1))] = _int(draw, valid)
    elif how == "drop" and values:
        del values[draw(st.integers(0, len(values) - 1))]
    elif how == "add":
        values.insert(draw(st.integers(0, len(values))), _int(draw, valid))
    else:
        values = []
    return values


def mutate_model(data: bytes, draw: Draw, steps: int = 1) -> bytes:
    """One to a few field mutations of a .tflite through the schema's object API."""
    from ai_edge_litert import schema_py_generated as schema

    obj = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    sg = obj.subgraphs[0]
    tensors, ops, buffers, codes = sg.tensors, sg.operators, obj.buffers, obj.operatorCodes
    for _ in range(steps):
        kind = draw(st.sampled_from(MUTATIONS))
        t = _pick(draw, tensors)
        op = _pick(draw, ops) if ops else None
        if kind == "shape":
            t.shape = _mutate_list(draw, list(t.shape if t.shape is not None else []), 0)
        elif kind == "dtype":
            t.type = draw(st.integers(0, 20))
        elif kind == "buffer":
            t.buffer = draw(st.sampled_from([0, len(buffers), len(buffers) + 5, 2**32 - 1,
                                             draw(st.integers(0, len(buffers) - 1))]))
        elif kind == "quant":
            q = t.quantization or schema.QuantizationParametersT()
            what = draw(st.sampled_from(["scale", "zero_point", "dim", "none", "lengths"]))
            if what == "scale":
                q.scale = [draw(st.sampled_from(FLOATS)) for _ in range(draw(st.integers(0, 3)))]
            elif what == "zero_point":
                q.zeroPoint = [draw(st.sampled_from(INTS + [-129, 128])) for _ in range(draw(st.integers(0, 3)))]
            elif what == "dim":
                q.quantizedDimension = draw(st.sampled_from([-1, 0, 1, 3, 4, 100]))
            elif what == "lengths":
                q.scale = list(q.scale if q.scale is not None else [1.0]) * draw(st.integers(2, 3))
            t.quantization = None if what == "none" else q
        elif kind == "op_inputs" and op is not None:
            op.inputs = _mutate_list(draw, list(op.inputs if op.inputs is not None else []), len(tensors))
        elif kind == "op_outputs" and op is not None:
            op.outputs = _mutate_list(draw, list(op.outputs if op.outputs is not None else []), len(tensors))
        elif kind == "opcode" and op is not None:
            op.opcodeIndex = draw(st.sampled_from([len(codes), len(codes) + 3,
                                                   draw(st.integers(0, len(codes) - 1))]))
        elif kind == "builtin_code":
            code = _pick(draw, codes)
            code.builtinCode = draw(st.integers(0, 210))
            code.deprecatedBuiltinCode = min(code.builtinCode, 127)
        elif kind == "options" and op is not None and op.builtinOptions is not None:
            fields = [k for k, v in vars(op.builtinOptions).items() if isinstance(v, (int, float))]
            if fields:
                name = draw(st.sampled_from(sorted(fields)))
                old = getattr(op.builtinOptions, name)
                new = draw(st.sampled_from(FLOATS)) if isinstance(old, float) else _int(draw)
                setattr(op.builtinOptions, name, new)
        elif kind == "options_type" and op is not None:
            op.builtinOptionsType = draw(st.integers(0, 130))
        elif kind == "graph_io":
            if draw(st.booleans()):
                sg.inputs = _mutate_list(draw, list(sg.inputs), len(tensors))
            else:
                sg.outputs = _mutate_list(draw, list(sg.outputs), len(tensors))
        elif kind == "buffer_data":
            b = _pick(draw, [b for b in buffers if b.data is not None and len(b.data)] or buffers)
            if b.data is not None and len(b.data):
                n = len(b.data)
                b.data = b.data[: draw(st.integers(0, n - 1))] if draw(st.booleans()) else \
                    list(bytes(b.data)) + [7] * draw(st.integers(1, 9))
        elif kind == "drop_op" and len(ops) > 1:
            del ops[draw(st.integers(0, len(ops) - 1))]
        elif kind == "variable":
            t.isVariable = not t.isVariable
    builder = flatbuffers.Builder(len(data) + 4096)
    try:
        builder.Finish(obj.Pack(builder), file_identifier=b"TFL3")
    except (struct.error, TypeError, ValueError, AttributeError):
        assume(False)  # a value the field's type cannot hold: not a file anyone can write
    return bytes(builder.Output())


def mutate_bytes(data: bytes, draw: Draw) -> bytes:
    """Byte flips (mostly in the tables at the ends of the file, where the
    structure is), or a truncation."""
    buf = bytearray(data)
    if draw(st.integers(0, 4)) == 0:
        return bytes(buf[: draw(st.integers(0, len(buf) - 1))])
    for _ in range(draw(st.integers(1, 8))):
        region = draw(st.sampled_from(["head", "tail", "any"]))
        if region == "head":
            i = draw(st.integers(0, min(len(buf), 4096) - 1))
        elif region == "tail":
            i = len(buf) - 1 - draw(st.integers(0, min(len(buf), 4096) - 1))
        else:
            i = draw(st.integers(0, len(buf) - 1))
        buf[i] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, buf[i] ^ 0x01, buf[i] ^ 0x80]))
    return bytes(buf)


class Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail an example that takes longer than ``seconds`` (a hang), main thread only."""
    def on_alarm(_sig: int, _frame: object) -> None:
        raise Hang(f"took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
