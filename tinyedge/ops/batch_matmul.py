"""BATCH_MATMUL, int8 x int8 -> int8 and int16 x int16 -> int16, lowered to
te_batch_matmul_s8 / _s16: what TensorFlow Lite Micro computes.

The TF converter emits BATCH_MATMUL for ``tf.matmul`` of two activations
(e.g. ``x @ transpose(x)``, attention scores) and for an activation times a
constant of rank >= 3; an activation times a 2-D constant becomes
FULLY_CONNECTED instead. The constant operand is quantized per tensor and is
asymmetric (non-zero zero point) in int8, unlike FULLY_CONNECTED weights; in
the converter's 16x8 mode every operand is int16 with zero point 0.

TFLM (micro/kernels/batch_matmul.cc) Prepare, reproduced on the host: the
real multiplier ``double(float(lhs_scale * rhs_scale)) / double(output_scale)``
(GetQuantizedConvolutionMultipler) as a Q31 multiplier and shift
(QuantizeMultiplier); what it refuses (operand types that differ, an output
type other than the inputs', ranks outside 2..5, batch dims that do not
broadcast, depths that differ, int16 zero points other than 0) is refused
with its reason. Here the batch broadcasting and adj_x / adj_y become element
strides, and a constant operand is re-laid out so that the kernel walks it
contiguously along the depth (TFLM transposes it once at its first Eval).
The kernel applies both zero points and requantizes as TFLM's
reference_ops::BatchMatMul does (see firmware_templates/runtime/te_batch_matmul.c).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyedge import quant
from tinyedge.model.ir import Graph, Operator, Tensor
from tinyedge.ops.base import ConstArray, LowerCtx, Lowered, OpSpec, register

MAX_RANK = 5  # TFLM's BATCH_MATMUL supports ranks 2..5
MAX_DEPTH = ((1 << 31) - 1) // (255 * 255)  # 33025: |sum (a - za)(b - zb)| stays below 2^31
MAX_DEPTH_S16 = (1 << 47) // (1 << 30)  # |sum a * b| of int16 stays below 2^47 (the int64 MBQM's range)
S16_SHIFTS = (-31, 7)  # the int64 MultiplyByQuantizedMultiplier's exponent range (below: flushed to 0)
TYPES = {"int8": ("int8_t", "s8", quant.INT8_MIN, quant.INT8_MAX), "int16": ("int16_t", "s16", -32768, 32767)}


@dataclass(frozen=True)
class _Geometry:
    out_batch: tuple[int, int, int]  # output batch dims, left-padded with 1 to three
    rows: int
    cols: int
    depth: int
    lhs_shape: tuple[int, ...]  # extended to rank 5
    rhs_shape: tuple[int, ...]


def _extend(shape: tuple[int, ...], rank: int) -> tuple[int, ...]:
    return (1,) * (rank - len(shape)) + tuple(shape)


def _adj(op: Operator) -> tuple[bool, bool]:
    return bool(op.options.get("adj_x", False)), bool(op.options.get("adj_y", False))


def _geometry(op: Operator, graph: Graph) -> _Geometry:
    lhs, rhs = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    adj_x, adj_y = _adj(op)
    ls, rs = _extend(lhs.shape, MAX_RANK), _extend(rhs.shape, MAX_RANK)
    batch = tuple(r if l == 1 else l for l, r in zip(ls[:3], rs[:3], strict=True))
    rows = ls[4] if adj_x else ls[3]
    depth = ls[3] if adj_x else ls[4]
    cols = rs[3] if adj_y else rs[4]
    return _Geometry((batch[0], batch[1], batch[2]), rows, cols, depth, ls, rs)


def _operand_problems(t: Tensor, role: str) -> list[str]:
    if t.quant is None:
        return [f"{role} has no quantization parameters"]
    if t.quant.per_channel:
        return [f"{role} is quantized per channel; TFLM's BATCH_MATMUL takes one scale per operand"]
    if not 2 <= len(t.shape) <= MAX_RANK:
        return [f"{role} has rank {len(t.shape)}; TFLM supports ranks 2..{MAX_RANK}"]
    if t.dtype == "int16" and t.zero_point != 0:
        return [f"{role} is int16 with zero point {t.zero_point}; TFLM requires 0"]
    return []


def check_batch_matmul(op: Operator, graph: Graph) -> list[str]:
    """Every reason this BATCH_MATMUL cannot be lowered (TFLM's Prepare refusals included)."""
    if len(op.inputs) != 2 or min(op.inputs) < 0 or len(op.outputs) != 1:
        return [f"has {len(op.inputs)} inputs and {len(op.outputs)} outputs; expected 2 and 1"]
    lhs, rhs, out = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    if lhs.dtype not in TYPES:
        return [f"lhs is {lhs.dtype}; only int8 and int16 are supported"
                + (" (float and hybrid BATCH_MATMUL are not)" if lhs.dtype == "float32" else "")]
    if rhs.dtype != lhs.dtype or out.dtype != lhs.dtype:
        return [f"lhs {lhs.dtype}, rhs {rhs.dtype}, output {out.dtype}: TFLM requires one type for all three "
                "(no hybrid inputs, no int32 output)"]
    problems = _operand_problems(lhs, "lhs") + _operand_problems(rhs, "rhs") + _operand_problems(out, "output")
    if problems:
        return problems
    g = _geometry(op, graph)
    for i in range(3):
        a, b = g.lhs_shape[i], g.rhs_shape[i]
        if a != b and a != 1 and b != 1:
            problems.append(f"batch dims {list(lhs.shape[:-2])} and {list(rhs.shape[:-2])} do not broadcast")
            break
    rhs_depth = g.rhs_shape[4] if _adj(op)[1] else g.rhs_shape[3]
    if rhs_depth != g.depth:
        problems.append(f"depths differ: lhs {g.depth}, rhs {rhs_depth} (adj_x/adj_y applied)")
    limit = MAX_DEPTH if lhs.dtype == "int8" else MAX_DEPTH_S16
    if g.depth > limit:
        problems.append(f"depth {g.depth} is too large for the accumulator (max {limit})")
    want = g.out_batch + (g.rows, g.cols)
    if not problems and _extend(out.shape, MAX_RANK) != want:
        problems.append(f"output shape {list(out.shape)} does not match the product's {list(want)}")
    real = _real_multiplier(lhs, rhs, out)
    if not problems and not 0.0 <= real < 2.0 ** 30:
        problems.append(f"the requantization multiplier {real:g} is negative or 2^30 or more: TFLM shifts an "
                        "int32 left by more than 30 bits there (undefined behaviour)")
    elif not problems and lhs.dtype == "int16" and quant.quantize_multiplier(real)[1] > S16_SHIFTS[1]:
        problems.append(f"the requantization multiplier {real:g} is 2^7 or more: TFLM's int64 "
                        "MultiplyByQuantizedMultiplier takes exponents up to 7")
    return problems


def _real_multiplier(lhs: Tensor, rhs: Tensor, out: Tensor) -> float:
    """GetQuantizedConvolutionMultipler: double(float(lhs_scale * rhs_scale)) / double(out_scale)."""
    return quant.f32(quant.f32(lhs.scale) * quant.f32(rhs.scale)) / float(quant.f32(out.scale))


def _batch_strides(shape: tuple[int, ...], matrix: int) -> tuple[int, int, int]:
    """Element strides of the three batch dims of a rank-5 shape; 0 where the dim is 1."""
    s2 = matrix
    s1 = s2 * shape[2]
    s0 = s1 * shape[1]
    return (s0 if shape[0] > 1 else 0, s1 if shape[1] > 1 else 0, s2 if shape[2] > 1 else 0)


def _lhs_layout(g: _Geometry, adj_x: bool) -> tuple[int, int]:
    """(row stride, depth stride) of the lhs as stored: [..., rows, depth] or adjoint [..., depth, rows]."""
    return (1, g.rows) if adj_x else (g.depth, 1)


def _rhs_layout(g: _Geometry, adj_y: bool) -> tuple[int, int]:
    """(depth stride, col stride) of the rhs as stored: [..., depth, cols] or adjoint [..., cols, depth]."""
    return (1, g.depth) if adj_y else (g.cols, 1)


def _const_depth_major(t: Tensor, depth_axis_last: bool) -> np.ndarray:
    """A constant operand as [..., other, depth] so the kernel reads it contiguously along the depth."""
    a = t.array()
    return a if depth_axis_last else np.swapaxes(a, -1, -2)


def lower_batch_matmul(op: Operator, ctx: LowerCtx) -> Lowered:
    graph = ctx.graph
    lhs, rhs, out = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    adj_x, adj_y = _adj(op)
    g = _geometry(op, graph)
    consts: list[ConstArray] = []
    lhs_row, lhs_depth = _lhs_layout(g, adj_x)
    rhs_depth, rhs_col = _rhs_layout(g, adj_y)
    ctype, suffix, act_min, act_max = TYPES[lhs.dtype]
    lhs_ref, rhs_ref = ctx.ptr(lhs.index), ctx.ptr(rhs.index)
    if lhs.is_const:  # store as [..., rows, depth]
        lhs_ref = ctx.name("lhs")
        consts.append(ConstArray(lhs_ref, ctype, _const_depth_major(lhs, not adj_x).reshape(-1),
                                 f"constant lhs {list(lhs.shape)} as [..., rows={g.rows}, depth={g.depth}]"))
        lhs_row, lhs_depth = g.depth, 1
    if rhs.is_const:  # store as [..., cols, depth]
        rhs_ref = ctx.name("rhs")
        consts.append(ConstArray(rhs_ref, ctype, _const_depth_major(rhs, adj_y).reshape(-1),
                                 f"constant rhs {list(rhs.shape)} as [..., cols={g.cols}, depth={g.depth}]"))
        rhs_depth, rhs_col = 1, g.depth
    mult, shift = quant.quantize_multiplier(_real_multiplier(lhs, rhs, out))
    lb = _batch_strides(g.lhs_shape, g.rows * g.depth)
    rb = _batch_strides(g.rhs_shape, g.depth * g.cols)
    params: dict[str, object] = {
        "b0": g.out_batch[0], "b1": g.out_batch[1], "b2": g.out_batch[2],
        "rows": g.rows, "cols": g.cols, "depth": g.depth,
        "lhs_b0": lb[0], "lhs_b1": lb[1], "lhs_b2": lb[2], "lhs_row": lhs_row, "lhs_depth": lhs_depth,
        "rhs_b0": rb[0], "rhs_b1": rb[1], "rhs_b2": rb[2], "rhs_depth": rhs_depth, "rhs_col": rhs_col,
        "lhs_offset": -lhs.zero_point, "rhs_offset": -rhs.zero_point, "output_offset": out.zero_point,
        "mult": mult, "shift": shift, "act_min": act_min, "act_max": act_max,
    }
    name = ctx.name("params")
    return Lowered(
        comment=(f"BATCH_MATMUL {lhs.dtype} {list(lhs.shape)}{'^T' if adj_x else ''} x {list(rhs.shape)}"
                 f"{'^T' if adj_y else ''} -> {list(out.shape)}, multiplier {mult} * 2^{shift}"),
        call=f"te_batch_matmul_{suffix}(&{name}, {lhs_ref}, {rhs_ref}, {ctx.ptr(out.index)});",
        params_type="te_batch_matmul_params_t",
        params=params,
        params_name=name,
        consts=consts,
    )


def batch_matmul_macs(op: Operator, graph: Graph) -> int:
    g = _geometry(op, graph)
    return g.out_batch[0] * g.out_batch[1] * g.out_batch[2] * g.rows * g.cols * g.depth


register(OpSpec(
    name="BATCH_MATMUL",
    lower=lower_batch_matmul,
    check=check_batch_matmul,
    constraints="int8 x int8 -> int8 (per-tensor asymmetric operands) or int16 x int16 -> int16 (zero points 0), "
                "activations or constants, ranks 2..5 with broadcast batch dims, adj_x/adj_y; no float, hybrid "
                "or int32 output",
    macs=batch_matmul_macs,
))
