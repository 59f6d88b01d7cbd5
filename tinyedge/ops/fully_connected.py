"""FULLY_CONNECTED, int8, lowered to te_fully_connected_s8.

The kernel computes what TFLM's reference FullyConnected (per-tensor weights)
and FullyConnectedPerChannel (more than one filter scale) compute. The host
computes every constant it needs as TFLM's CalculateOpDataFullyConnected
does: the Q31 multiplier(s) and shift(s) (input scale * filter scale /
output scale in double, per-tensor as in the pinned TFLM's
GetQuantizedConvolutionMultipler, per-channel per unit; see
quant.conv_effective_scales), the fused
activation's clamp, and the bias with the input zero-point term
``-input_zp * sum_i filter[o][i]`` folded in, so that the kernel's inner loop
is a plain int8 dot product. TFLM ignores keep_num_dims: rows and units come
from the output's shape. The check refuses what TFLM's Prepare refuses (e.g.
a per-tensor bias scale too far from input * filter scale) or has no defined
answer for. See firmware_templates/runtime/te_fully_connected.c.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyedge import kernels as kernel_sets
from tinyedge import quant
from tinyedge.model.ir import Graph, Operator, Tensor
from tinyedge.ops import blocked, layout
from tinyedge.ops.base import ConstArray, LowerCtx, Lowered, OpSpec, activation_name, register
from tinyedge.ops.common import (
    activation_problems,
    bias_problems,
    fused_range_problems,
    input_tensor,
    int8_tensor_problems,
    requant_consts,
    requant_problems,
    weight_problems,
)

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _folded_bias(op: Operator, graph: Graph) -> np.ndarray:
    """bias[o] - input_zp * sum_i filter[o][i], in int64 (the caller checks the range)."""
    x, w, b = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), input_tensor(graph, op, 2)
    rows = w.array().astype(np.int64).sum(axis=1)
    bias = b.array().astype(np.int64).reshape(-1) if b is not None else np.zeros(w.shape[0], np.int64)
    return bias - int(x.zero_point) * rows


def _bias_scale_problems(input_scale: float, filter_scale: float, b: Tensor, output_scale: float) -> list[str]:
    """TFLM's GetQuantizedConvolutionMultipler (per-tensor weights, with a bias) requires
    |input_scale * filter_scale - bias_scale| / output_scale <= 0.02, in double; an
    unquantized bias has scale 0 there."""
    bias_scale = b.scale if b.quant is not None else 0.0
    diff = abs(float(input_scale) * float(filter_scale) - float(bias_scale))
    if not diff / float(output_scale) <= 0.02:
        return [f"bias scale {bias_scale:.6g} is not input scale * filter scale "
                f"({float(input_scale) * float(filter_scale):.6g}): TFLM's FULLY_CONNECTED refuses a "
                "difference above 0.02 output scales"]
    return []


def check_fc(op: Operator, graph: Graph) -> list[str]:
    """Every reason this FULLY_CONNECTED cannot be lowered."""
    if len(op.inputs) < 2:
        return [f"has {len(op.inputs)} inputs; expected input, weights[, bias]"]
    if len(op.outputs) != 1:
        return [f"has {len(op.outputs)} outputs; expected 1"]
    x, w, b = input_tensor(graph, op, 0), input_tensor(graph, op, 1), input_tensor(graph, op, 2)
    y = graph.tensor(op.outputs[0])
    problems = int8_tensor_problems(x, "input") + int8_tensor_problems(y, "output")
    if w is None or len(w.shape) != 2:
        return problems + ["weights must be a 2-D constant tensor [units, depth]"]
    problems += weight_problems(w, w.shape[0], 0)
    problems += bias_problems(b, w.shape[0])
    problems += activation_problems(op)
    fmt = int(op.options.get("weights_format", 0))
    if fmt != 0:
        problems.append(f"weights_format {fmt} (shuffled) is not supported; only DEFAULT")
    if problems:
        return problems
    assert x is not None
    units, depth = w.shape
    # TFLM reads the output depth from the output's last dimension and the row count from
    # the others (keep_num_dims only shaped the output tensor, at conversion).
    if not y.shape or y.shape[-1] != units:
        return [f"output shape {list(y.shape)} does not end in the {units} units of the weights "
                "(TFLM's FULLY_CONNECTED takes the output depth from the output's last dimension)"]
    if x.size % depth != 0:
        return [f"input has {x.size} values, not a multiple of the weights' depth {depth}"]
    if y.size != (x.size // depth) * units:
        return [f"output shape {list(y.shape)} does not match {x.size // depth} rows of {units} units"]
    assert w.quant is not None
    problems = fused_range_problems(op, y) + requant_problems(
        quant.conv_effective_scales(x.scale, w.quant.scale, y.scale, units))
    if not w.quant.per_channel and b is not None:
        problems += _bias_scale_problems(x.scale, w.scale, b, y.scale)
    if problems:
        return problems
    folded = _folded_bias(op, graph)
    if folded.min() < INT32_MIN or folded.max() > INT32_MAX:
        return ["bias with the input zero point folded in does not fit in int32"]
    return []


def _lower_fc_fast(op: Operator, ctx: LowerCtx) -> Lowered | None:
    """te_fc_fast_s8 (te_fc_fast.h) with int16 weights and per-unit records, or None when
    a unit cannot take its requantization."""
    graph = ctx.graph
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    assert w.quant is not None
    units, depth = w.shape
    rows = w.array().astype(np.int64)
    mults, shifts = quant.quantize_multipliers(quant.conv_effective_scales(x.scale, w.quant.scale, y.scale, units))
    act = activation_name(op)
    act_min, act_max = quant.activation_range(act, y.scale, y.zero_point)
    rec = layout.requant_records(_folded_bias(op, graph), rows, mults, shifts, y.zero_point, act_min, act_max)
    if rec is None:
        return None
    rows = np.where(rec.constant[:, None], 0, rows)  # a constant unit reads zero weights
    padded = np.concatenate([np.arange(units), np.full((-units) % 4, units - 1)])
    f_name, c_name = ctx.name("filter"), ctx.name("chan")
    consts = [
        ConstArray(f_name, "int16_t", layout.pack_fc(rows),
                   "weights, int16, in blocks of 4 units and groups of 4 depth values in SXTB16 order "
                   "(te_fc_fast.h)", align=4),
        ConstArray(c_name, "te_chan_t", rec.values[padded],
                   f"per unit: bias - input_zp ({x.zero_point}) * row sum, Q31 multiplier, right shift, "
                   "rounding + output zero point << shift (tinyedge/ops/layout.py)"),
    ]
    batches = x.size // depth
    params_name = ctx.name("params")
    return Lowered(
        comment=(f"FULLY_CONNECTED {batches}x{depth} -> {batches}x{units}, "
                 f"{'per-channel' if w.quant.per_channel else 'per-tensor'} weights, {act} (te_fc_fast_s8)"),
        call=f"te_fc_fast_s8(&{params_name}, {ctx.ptr(op.inputs[0])}, {f_name}, {ctx.ptr(op.outputs[0])});",
        params_type="te_fc_fast_params_t",
        params={"batches": batches, "in_depth": depth, "depth4": layout.depth4(depth), "units": units,
                "output_offset": y.zero_point, "act_min": act_min, "act_max": act_max, "chan": c_name},
        params_name=params_name,
        consts=consts,
    )


@dataclass(frozen=True)
class _Fc:
    """What both FULLY_CONNECTED lowerings derive from the operator."""

    x: Tensor
    w: Tensor
    units: int
    depth: int
    per_channel: bool
    reals: list[float]  # effective scales, one per unit
    params: dict[str, object]  # the params fields both kernels take
    comment: str


def _fc(op: Operator, graph: Graph) -> _Fc:
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    assert w.quant is not None
    units, depth = w.shape
    batches = x.size // depth
    act = activation_name(op)
    act_min, act_max = quant.activation_range(act, y.scale, y.zero_point)
    params: dict[str, object] = {
        "batches": batches, "in_depth": depth, "out_depth": units,
        "output_offset": y.zero_point, "act_min": act_min, "act_max": act_max,
    }
    keep = " keep_num_dims" if op.options.get("keep_num_dims") else ""
    comment = (f"FULLY_CONNECTED {batches}x{depth} -> {batches}x{units}{keep}, "
               f"{'per-channel' if w.quant.per_channel else 'per-tensor'} weights, {act}")
    return _Fc(x, w, units, depth, w.quant.per_channel,
               quant.conv_effective_scales(x.scale, w.quant.scale, y.scale, units), params, comment)


def lower_fc(op: Operator, ctx: LowerCtx) -> Lowered:
    if kernel_sets.searches(ctx.kernels, "arm_mve"):
        return lower_fc_blocked(op, ctx)
    if kernel_sets.searches(ctx.kernels, "arm_dsp"):
        fast = _lower_fc_fast(op, ctx)
        if fast is not None:
            return fast
    graph = ctx.graph
    fc = _fc(op, graph)
    x, w, units, depth = fc.x, fc.w, fc.units, fc.depth
    req_consts, req_fields = requant_consts(ctx, fc.reals, fc.per_channel)
    f_name, b_name = ctx.name("filter"), ctx.name("bias")
    consts = [
        ConstArray(f_name, "int8_t", w.array().reshape(-1), f"weights [{units}][{depth}], as in the model"),
        ConstArray(b_name, "int32_t", _folded_bias(op, graph).astype(np.int32),
                   f"bias - input_zp ({x.zero_point}) * row sums of the weights"),
    ]
    params_name = ctx.name("params")
    return Lowered(
        comment=fc.comment,
        call=f"te_fully_connected_s8(&{params_name}, {ctx.ptr(op.inputs[0])}, {f_name}, {b_name}, "
             f"{ctx.ptr(op.outputs[0])});",
        params_type="te_fc_params_t",
        params=fc.params | req_fields,
        params_name=params_name,
        consts=consts + req_consts,
    )


def lower_fc_blocked(op: Operator, ctx: LowerCtx) -> Lowered:
    """FULLY_CONNECTED on te_fully_connected_blocked_s8: weights in blocks of 4 units x 16-byte chunks
    (runtime te_blocked.h; the Helium kernel reads them)."""
    fc = _fc(op, ctx.graph)
    f_name, r_name = ctx.name("filter"), ctx.name("rq")
    consts = [
        ConstArray(f_name, "int8_t", blocked.row_blocks(fc.w.array()),
                   f"weights [{fc.units}][{fc.depth}] in blocks of 4 units x 16-byte chunks (te_blocked.h)"),
        ConstArray(r_name, "int32_t", blocked.rq4_table(_folded_bias(op, ctx.graph), fc.reals, fc.per_channel),
                   f"per 4 units: bias - input_zp ({fc.x.zero_point}) * row sum, Q31 multiplier, left and right "
                   "shift (te_blocked.h)", align=16),
    ]
    params_name = ctx.name("params")
    return Lowered(
        comment=fc.comment + ", blocked weights",
        call=f"te_fully_connected_blocked_s8(&{params_name}, {ctx.ptr(op.inputs[0])}, {f_name}, "
             f"{r_name}, {ctx.ptr(op.outputs[0])});",
        params_type="te_fc_blocked_params_t",
        params=fc.params,
        params_name=params_name,
        consts=consts,
    )


def fc_macs(op: Operator, graph: Graph) -> int:
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    return (x.size // w.shape[1]) * w.shape[0] * w.shape[1]


register(OpSpec(
    name="FULLY_CONNECTED",
    lower=lower_fc,
    check=check_fc,
    constraints="int8 in/out, int8 symmetric weights (per-tensor or per-channel), optional int32 bias; "
                "any number of rows, keep_num_dims; fused NONE/RELU/RELU6/RELU_N1_TO_1",
    macs=fc_macs,
))
