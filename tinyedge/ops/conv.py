"""CONV_2D and DEPTHWISE_CONV_2D, int8, lowered to te_conv2d_s8 / te_depthwise_conv_s8.

The kernels compute what TFLM's reference ConvPerChannel and
DepthwiseConvPerChannel compute. The host computes every constant they need
as TFLM's Prepare does: per-channel Q31 multipliers and shifts
(PopulateConvolutionQuantizationParams: input_scale * filter_scale /
output_scale in double, a per-tensor filter scale broadcast to every channel,
then QuantizeMultiplier), the fused activation's clamp
(CalculateActivationRangeQuantized), the padding offsets
(ComputePaddingHeightWidth), and the bias with the input zero-point term
folded in (the kernels read the input zero point at padding taps, so the fold
is exact at the borders too). The checks refuse what TFLM's Prepare refuses
or has no defined answer for. See firmware_templates/runtime/te_conv.c and
te_depthwise.c for the arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyedge import kernels as kernel_sets
from tinyedge import quant
from tinyedge.model.ir import Graph, Operator, Tensor
from tinyedge.ops.base import ConstArray, LowerCtx, Lowered, OpSpec, activation_name, register
from tinyedge.ops import blocked, layout
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
from tinyedge.quant import INT8_MAX, INT8_MIN

PADDING = {0: "SAME", 1: "VALID"}


# ---- geometry --------------------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    batches: int
    in_h: int
    in_w: int
    in_c: int
    out_h: int
    out_w: int
    out_c: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    dil_h: int
    dil_w: int
    pad_top: int
    pad_left: int
    padding: str


def out_size(padding: str, in_size: int, k: int, stride: int, dilation: int) -> int:
    """TFLite's ComputeOutSize."""
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    return max(0, (in_size + stride - eff) // stride)


def pad_before(in_size: int, k: int, stride: int, dilation: int, out: int) -> int:
    """TFLite's ComputePadding: the rows/columns of padding before the first input one."""
    eff = (k - 1) * dilation + 1
    total = (out - 1) * stride + eff - in_size
    return max(0, total // 2)


def _int_option(op: Operator, *names: str, default: int = 1) -> int:
    for n in names:
        if n in op.options:
            return int(op.options[n])
    return default


def geometry(op: Operator, graph: Graph, depthwise: bool) -> Geometry:
    x = graph.tensor(op.inputs[0])
    w = graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    n, in_h, in_w, in_c = x.shape
    if depthwise:
        _, k_h, k_w, out_c = w.shape
    else:
        out_c, k_h, k_w, _ = w.shape
    stride_h = _int_option(op, "stride_h")
    stride_w = _int_option(op, "stride_w")
    dil_h = _int_option(op, "dilation_hfactor", "dilation_h_factor")
    dil_w = _int_option(op, "dilation_wfactor", "dilation_w_factor")
    padding = PADDING.get(int(op.options.get("padding", 0)), "?")
    out_h, out_w = y.shape[1], y.shape[2]
    pad_top = pad_before(in_h, k_h, stride_h, dil_h, out_h) if padding == "SAME" else 0
    pad_left = pad_before(in_w, k_w, stride_w, dil_w, out_w) if padding == "SAME" else 0
    return Geometry(n, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, stride_h, stride_w,
                    dil_h, dil_w, pad_top, pad_left, padding)


def _geometry_problems(op: Operator, graph: Graph, depthwise: bool) -> list[str]:
    x, w = input_tensor(graph, op, 0), input_tensor(graph, op, 1)
    y = graph.tensor(op.outputs[0]) if len(op.outputs) == 1 else None
    if y is None:
        return [f"has {len(op.outputs)} outputs; expected 1"]
    assert x is not None and w is not None
    if len(x.shape) != 4 or len(w.shape) != 4 or len(y.shape) != 4:
        return ["input, filter and output must be 4-D (NHWC)"]
    if PADDING.get(int(op.options.get("padding", 0))) is None:
        return [f"padding {op.options.get('padding')} is not supported (supported: SAME, VALID)"]
    for name in ("stride_h", "stride_w"):
        if _int_option(op, name) < 1:
            return [f"{name} {_int_option(op, name)} is not supported (must be >= 1)"]
    if _int_option(op, "dilation_hfactor", "dilation_h_factor") < 1 or \
            _int_option(op, "dilation_wfactor", "dilation_w_factor") < 1:
        return ["dilation factors must be >= 1"]
    g = geometry(op, graph, depthwise)
    problems = []
    if depthwise:
        if w.shape[0] != 1:
            problems.append(f"depthwise filter has leading dimension {w.shape[0]}; expected 1")
        if g.out_c % g.in_c != 0:
            problems.append(f"{g.out_c} output channels is not a multiple of {g.in_c} input channels")
        else:
            # TFLM's DepthwiseConvPerChannel loops over the depth_multiplier option, not the
            # shapes: with any other value (0 included) it leaves outputs unwritten or writes
            # past them.
            mult_opt = int(op.options.get("depth_multiplier", 0))
            if mult_opt != g.out_c // g.in_c:
                problems.append(f"depth_multiplier {mult_opt} does not match the filter "
                                f"({g.out_c} output channels for {g.in_c} input channels); TFLM's "
                                "DEPTHWISE_CONV_2D uses the option as given")
    elif w.shape[3] != g.in_c:
        problems.append(f"grouped convolution (input has {g.in_c} channels, filter {w.shape[3]}) "
                        "is not supported")
    exp_h = out_size(g.padding, g.in_h, g.k_h, g.stride_h, g.dil_h)
    exp_w = out_size(g.padding, g.in_w, g.k_w, g.stride_w, g.dil_w)
    if (y.shape[0], y.shape[1], y.shape[2], y.shape[3]) != (g.batches, exp_h, exp_w, g.out_c):
        problems.append(f"output shape {list(y.shape)} does not match the {g.padding} geometry "
                        f"{[g.batches, exp_h, exp_w, g.out_c]}")
    return problems


def check_conv_like(op: Operator, graph: Graph, depthwise: bool) -> list[str]:
    """Every reason this CONV_2D / DEPTHWISE_CONV_2D cannot be lowered."""
    if not 2 <= len(op.inputs) <= 3:  # TFLM's CalculateOpDataConv: 2 or 3 inputs
        return [f"has {len(op.inputs)} inputs; expected input, filter[, bias]"]
    x, w, b = input_tensor(graph, op, 0), input_tensor(graph, op, 1), input_tensor(graph, op, 2)
    y = graph.tensor(op.outputs[0]) if op.outputs else None
    problems = int8_tensor_problems(x, "input") + int8_tensor_problems(y, "output")
    if w is None or len(w.shape) != 4:
        return problems + ["filter must be a 4-D constant tensor"]
    n_out = w.shape[3] if depthwise else w.shape[0]
    problems += weight_problems(w, n_out, 3 if depthwise else 0)
    problems += bias_problems(b, n_out)
    problems += activation_problems(op)
    if problems:
        return problems
    assert x is not None and y is not None and w.quant is not None
    if not INT8_MIN <= x.zero_point <= INT8_MAX:
        # the padding taps hold the input zero point as an int8 (see te_conv.c)
        problems.append(f"input zero point {x.zero_point} is outside the int8 range")
    problems += fused_range_problems(op, y)
    problems += requant_problems(quant.conv_effective_scales(x.scale, w.quant.scale, y.scale, n_out))
    if problems:
        return problems
    problems = _geometry_problems(op, graph, depthwise)
    if not problems:
        folded = folded_depthwise_bias(op, graph) if depthwise else folded_conv_bias(op, graph)
        if folded.min() < -(1 << 31) or folded.max() >= (1 << 31):
            problems.append("bias with the input zero point folded in does not fit in int32")
    return problems


# ---- lowering ---------------------------------------------------------------------------


def _operands(op: Operator, graph: Graph, depthwise: bool) -> tuple[Tensor, Tensor, Tensor, Geometry, bool,
                                                                     list[float]]:
    """input, filter, output, geometry, per-channel weights?, effective scales (one per output channel)."""
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    g = geometry(op, graph, depthwise)
    assert w.quant is not None
    reals = quant.conv_effective_scales(x.scale, w.quant.scale, y.scale, g.out_c)
    return x, w, y, g, w.quant.per_channel, reals


def _window(g: Geometry) -> str:
    """The C initializer of a te_window_t (runtime/te_window.h)."""
    fields = {"batches": g.batches, "in_h": g.in_h, "in_w": g.in_w, "in_c": g.in_c, "out_h": g.out_h,
              "out_w": g.out_w, "k_h": g.k_h, "k_w": g.k_w, "stride_h": g.stride_h, "stride_w": g.stride_w,
              "dil_h": g.dil_h, "dil_w": g.dil_w, "pad_top": g.pad_top, "pad_left": g.pad_left}
    return "{" + ", ".join(f".{k} = {v}" for k, v in fields.items()) + "}"


def _common_fields(g: Geometry, x: Tensor, y: Tensor, op: Operator) -> dict[str, object]:
    act_min, act_max = quant.activation_range(activation_name(op), y.scale, y.zero_point)
    return {"win": _window(g), "input_zero_point": x.zero_point, "output_offset": y.zero_point,
            "act_min": act_min, "act_max": act_max}


def _records(op: Operator, graph: Graph, bias: np.ndarray, rows: np.ndarray) -> layout.Records | None:
    """The fast kernels' per-channel records (tinyedge/ops/layout.py) of a conv-like op whose
    channel c sums ``rows[c]``, or None when a channel cannot take their requantization."""
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    assert w.quant is not None
    reals = quant.conv_effective_scales(x.scale, w.quant.scale, y.scale, len(rows))
    mults, shifts = quant.quantize_multipliers(reals)
    act_min, act_max = quant.activation_range(activation_name(op), y.scale, y.zero_point)
    return layout.requant_records(bias, rows, mults, shifts, y.zero_point, act_min, act_max)


def _records_const(ctx: LowerCtx, rec: layout.Records, rows: np.ndarray, zero_point: int) -> ConstArray:
    return ConstArray(ctx.name("chan"), "te_chan_t", rec.values[rows],
                      f"per channel: bias - input_zp ({zero_point}) * filter sum, Q31 multiplier, right shift, "
                      "rounding + output zero point << shift (tinyedge/ops/layout.py)")


def _describe(g: Geometry, op: Operator, per_channel: bool) -> str:
    dil = f" dilation {g.dil_h}x{g.dil_w}" if (g.dil_h, g.dil_w) != (1, 1) else ""
    return (f"{g.in_h}x{g.in_w}x{g.in_c} -> {g.out_h}x{g.out_w}x{g.out_c}, kernel {g.k_h}x{g.k_w} "
            f"stride {g.stride_h}x{g.stride_w}{dil} {g.padding} (pad {g.pad_top},{g.pad_left}), "
            f"{'per-channel' if per_channel else 'per-tensor'} weights, {activation_name(op)}")


def folded_conv_bias(op: Operator, graph: Graph) -> np.ndarray:
    """bias[oc] - input_zp * sum(filter[oc]), in int64 (the im2col patch holds input_zp at padding)."""
    x, w, b = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), input_tensor(graph, op, 2)
    sums = w.array().astype(np.int64).reshape(w.shape[0], -1).sum(axis=1)
    bias = b.array().astype(np.int64).reshape(-1) if b is not None else np.zeros(w.shape[0], np.int64)
    return bias - int(x.zero_point) * sums


def conv_scratch_bytes(g: Geometry) -> tuple[bool, int]:
    """(direct, scratch bytes), as TE_CONV2D_SCRATCH_BYTES in te_conv.h."""
    direct = g.k_h == 1 and g.k_w == 1 and g.pad_top == 0 and g.pad_left == 0
    return direct, 0 if direct else g.k_h * g.k_w * g.in_c


def _streams_in_place(g: Geometry) -> bool:
    """Whether a window op can write its output over its input through a ring of input rows
    (runtime/te_window.h te_rows_t): stride 1, the output as large as the input, one batch."""
    return (g.stride_h, g.stride_w, g.batches) == (1, 1, 1) and (g.out_h, g.out_w) == (g.in_h, g.in_w)


def _ring_bytes(g: Geometry, scratch: int) -> int:
    """The scratch beyond ``scratch`` that the ring of te_rows_t takes: TE_ROWS_RING(pad_top) input
    rows, from the next 4-byte boundary."""
    return (-scratch) % 4 + (g.pad_top + 2) * g.in_w * g.in_c


def _lower_conv_fast(op: Operator, ctx: LowerCtx, g: Geometry) -> Lowered | None:
    """te_conv1x1_fast_s8 / te_conv_fast_s8 (te_conv_fast.h) with int16 weights and
    per-channel records, or None when a channel cannot take their requantization."""
    graph = ctx.graph
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    assert w.quant is not None
    rows = w.array().astype(np.int64).reshape(g.out_c, -1)  # OHWI: each channel's patch order
    rec = _records(op, graph, folded_conv_bias(op, graph), rows)
    if rec is None:
        return None
    live = rec.live()
    padded = np.concatenate([live, live[-1:]]) if live.size % 2 else live
    rows = np.where(rec.constant[:, None], 0, rows)  # a constant channel computed anyway reads zeros
    pointwise = g.k_h == 1 and g.k_w == 1 and g.pad_top == 0 and g.pad_left == 0
    n_const = g.out_c - live.size
    f_name, i_name = ctx.name("filter"), ctx.name("index")
    chan = _records_const(ctx, rec, padded, x.zero_point)
    consts = [
        ConstArray(f_name, "int16_t", layout.pack_conv(rows[live], g.k_h),
                   f"filter of the {live.size} computed channels, int16, in channel pairs and groups of 4 "
                   "depth values in SXTB16 order, each filter row zero-padded to 4s (te_conv_fast.h)", align=4),
        chan,
        ConstArray(i_name, "uint16_t", padded.astype(np.uint16), "output channel of each computed channel"),
    ]
    fields = _common_fields(g, x, y, op)
    row = g.k_w * g.in_c
    fields.update({"out_c": g.out_c, "row": row, "row4": layout.depth4(row), "depth4": g.k_h * layout.depth4(row),
                   "live": int(live.size), "chan": chan.name, "index": i_name, "constants": "NULL"})
    if n_const:
        k_name = ctx.name("constants")
        values = np.where(rec.constant, rec.constant_value, 0).astype(np.int8)
        consts.append(ConstArray(k_name, "int8_t", values,
                                 f"the {n_const} channels whose output is the same for every input "
                                 "(proved on the host), by channel"))
        fields["constants"] = k_name
    kernel = "te_conv1x1_fast_s8" if pointwise else "te_conv_fast_s8"
    scratch = 4 * g.k_h * layout.depth4(row) + (0 if pointwise else layout.depth4(row))
    params_name = ctx.name("params")
    dead = f", {n_const} constant channels not computed" if n_const else ""
    return Lowered(
        comment=f"CONV_2D {_describe(g, op, w.quant.per_channel)} ({kernel}{dead})",
        call=f"{kernel}(&{params_name}, {ctx.ptr(op.inputs[0])}, {f_name}, {ctx.ptr(op.outputs[0])}, "
             f"{ctx.scratch});",
        params_type="te_conv_fast_params_t",
        params=fields,
        params_name=params_name,
        consts=consts,
        scratch_bytes=scratch,
        inplace=(0,) if (pointwise or _streams_in_place(g)) and g.out_c <= g.in_c else (),
        inplace_scratch=0 if pointwise else _ring_bytes(g, scratch),
    )


def lower_conv2d(op: Operator, ctx: LowerCtx) -> Lowered:
    graph = ctx.graph
    if kernel_sets.searches(ctx.kernels, "arm_mve"):
        return lower_conv2d_blocked(op, ctx)
    if kernel_sets.searches(ctx.kernels, "arm_dsp"):
        fast = _lower_conv_fast(op, ctx, geometry(op, graph, depthwise=False))
        if fast is not None:
            return fast
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    g = geometry(op, graph, depthwise=False)
    assert w.quant is not None
    per_channel = w.quant.per_channel
    reals = quant.conv_effective_scales(x.scale, w.quant.scale, y.scale, g.out_c)
    req_consts, req_fields = requant_consts(ctx, reals, per_channel)
    f_name, b_name = ctx.name("filter"), ctx.name("bias")
    consts = [
        ConstArray(f_name, "int8_t", w.array().reshape(-1),
                   f"filter OHWI [{g.out_c}][{g.k_h}][{g.k_w}][{g.in_c}], as in the model"),
        ConstArray(b_name, "int32_t", folded_conv_bias(op, graph).astype(np.int32),
                   f"bias - input_zp ({x.zero_point}) * sum of each output channel's filter"),
    ]
    direct, scratch = conv_scratch_bytes(g)
    params_name = ctx.name("params")
    fields = _common_fields(g, x, y, op)
    fields["out_c"] = g.out_c
    fields["direct"] = 1 if direct else 0
    return Lowered(
        comment="CONV_2D " + _describe(g, op, per_channel),
        call=f"te_conv2d_s8(&{params_name}, {ctx.ptr(op.inputs[0])}, {f_name}, {b_name}, "
             f"{ctx.ptr(op.outputs[0])}, {ctx.scratch if scratch else 'NULL'});",
        params_type="te_conv2d_params_t",
        params=fields | req_fields,
        params_name=params_name,
        consts=consts + req_consts,
        scratch_bytes=scratch,
    )


def folded_depthwise_bias(op: Operator, graph: Graph) -> np.ndarray:
    """bias[oc] - input_zp * sum over the taps of filter[.][.][oc], in int64."""
    x, w, b = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), input_tensor(graph, op, 2)
    sums = w.array().astype(np.int64).reshape(-1, w.shape[3]).sum(axis=0)
    bias = b.array().astype(np.int64).reshape(-1) if b is not None else np.zeros(w.shape[3], np.int64)
    return bias - int(x.zero_point) * sums


def depthwise_scratch_bytes(g: Geometry) -> int:
    """TE_DEPTHWISE_SCRATCH_BYTES in te_depthwise.h: 8-byte tap pointer slots, then a zero-point row."""
    return 8 * g.k_h * g.k_w + g.in_c


def _lower_depthwise_fast(op: Operator, ctx: LowerCtx, g: Geometry) -> Lowered | None:
    """te_dw_fast_s8 (te_dw_fast.h, multiplier 1) with int16 weights and per-channel
    records, or None when a channel cannot take its requantization."""
    graph = ctx.graph
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    assert w.quant is not None
    taps = w.array().astype(np.int64).reshape(-1, g.out_c)  # [k_h * k_w][channels]
    rec = _records(op, graph, folded_depthwise_bias(op, graph), taps.T)
    if rec is None:
        return None
    taps = np.where(rec.constant[None, :], 0, taps)  # a constant channel reads zero weights
    f_name = ctx.name("filter")
    chan = _records_const(ctx, rec, np.arange(g.out_c), x.zero_point)
    consts = [
        ConstArray(f_name, "int16_t", layout.pack_depthwise(taps),
                   "filter, int16, in quads of channels per tap in SXTB16 order (te_dw_fast.h)", align=4),
        chan,
    ]
    fields = _common_fields(g, x, y, op)
    fields["chan"] = chan.name
    params_name = ctx.name("params")
    return Lowered(
        comment=f"DEPTHWISE_CONV_2D x1 {_describe(g, op, w.quant.per_channel)} (te_dw_fast_s8)",
        call=f"te_dw_fast_s8(&{params_name}, {ctx.ptr(op.inputs[0])}, {f_name}, {ctx.ptr(op.outputs[0])}, "
             f"{ctx.scratch});",
        params_type="te_dw_fast_params_t",
        params=fields,
        params_name=params_name,
        consts=consts,
        scratch_bytes=16 * g.k_h * g.k_w + g.in_c,
        inplace=(0,) if _streams_in_place(g) else (),
        inplace_scratch=_ring_bytes(g, 16 * g.k_h * g.k_w + g.in_c),
    )


def lower_depthwise(op: Operator, ctx: LowerCtx) -> Lowered:
    graph = ctx.graph
    if kernel_sets.searches(ctx.kernels, "arm_mve") and depthwise_blocked_fits(op, graph):
        return lower_depthwise_blocked(op, ctx)
    if kernel_sets.searches(ctx.kernels, "arm_dsp") and graph.tensor(op.outputs[0]).shape[3] == \
            graph.tensor(op.inputs[0]).shape[3]:
        fast = _lower_depthwise_fast(op, ctx, geometry(op, graph, depthwise=True))
        if fast is not None:
            return fast
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    g = geometry(op, graph, depthwise=True)
    assert w.quant is not None
    per_channel = w.quant.per_channel
    reals = quant.conv_effective_scales(x.scale, w.quant.scale, y.scale, g.out_c)
    req_consts, req_fields = requant_consts(ctx, reals, per_channel)
    f_name, b_name = ctx.name("filter"), ctx.name("bias")
    consts = [
        ConstArray(f_name, "int8_t", w.array().reshape(-1),
                   f"filter [{g.k_h}][{g.k_w}][{g.out_c}], as in the model"),
        ConstArray(b_name, "int32_t", folded_depthwise_bias(op, graph).astype(np.int32),
                   f"bias - input_zp ({x.zero_point}) * sum of each channel's filter taps"),
    ]
    params_name = ctx.name("params")
    fields = _common_fields(g, x, y, op)
    fields["out_c"] = g.out_c
    fields["depth_mult"] = g.out_c // g.in_c
    return Lowered(
        comment=f"DEPTHWISE_CONV_2D x{g.out_c // g.in_c} " + _describe(g, op, per_channel),
        call=f"te_depthwise_conv_s8(&{params_name}, {ctx.ptr(op.inputs[0])}, {f_name}, {b_name}, "
             f"{ctx.ptr(op.outputs[0])}, {ctx.scratch});",
        params_type="te_depthwise_params_t",
        params=fields | req_fields,
        params_name=params_name,
        consts=consts + req_consts,
        scratch_bytes=depthwise_scratch_bytes(g),
    )


# ---- blocked layouts (runtime te_blocked.h; the Helium kernels read them) ----------------


def lower_conv2d_blocked(op: Operator, ctx: LowerCtx) -> Lowered:
    """CONV_2D on te_conv2d_blocked_s8: weights in blocks of 4 output channels x 16-byte chunks."""
    graph = ctx.graph
    x, w, y, g, per_channel, reals = _operands(op, graph, depthwise=False)
    f_name, r_name = ctx.name("filter"), ctx.name("rq")
    depth = g.k_h * g.k_w * g.in_c
    consts = [
        ConstArray(f_name, "int8_t", blocked.row_blocks(w.array().reshape(g.out_c, depth)),
                   f"filter OHWI [{g.out_c}][{depth}] in blocks of 4 output channels x 16-byte chunks "
                   "(te_blocked.h)"),
        ConstArray(r_name, "int32_t", blocked.rq4_table(folded_conv_bias(op, graph), reals, per_channel),
                   f"per 4 output channels: bias - input_zp ({x.zero_point}) * sum of the filter, Q31 "
                   "multiplier, left and right shift (te_blocked.h)", align=16),
    ]
    direct, patch = conv_scratch_bytes(g)
    scratch = 2 * patch  # TE_CONV2D_BLOCKED_SCRATCH_BYTES: two output pixels' patches
    fields = _common_fields(g, x, y, op)
    fields["out_c"] = g.out_c
    fields["direct"] = 1 if direct else 0
    return _blocked_call(op, ctx, "te_conv2d_blocked_s8", "te_conv2d_blocked_params_t", fields, consts, scratch,
                         "CONV_2D " + _describe(g, op, per_channel) + ", blocked weights")


def _blocked_call(op: Operator, ctx: LowerCtx, kernel: str, params_type: str, fields: dict[str, object],
                  consts: list[ConstArray], scratch: int, comment: str) -> Lowered:
    """The call `kernel(&params, input, filter, rq, output, scratch)` of a te_blocked.h kernel (consts:
    the filter, then the rq table)."""
    params_name = ctx.name("params")
    return Lowered(
        comment=comment,
        call=f"{kernel}(&{params_name}, {ctx.ptr(op.inputs[0])}, {consts[0].name}, {consts[1].name}, "
             f"{ctx.ptr(op.outputs[0])}, {ctx.scratch if scratch else 'NULL'});",
        params_type=params_type,
        params=fields,
        params_name=params_name,
        consts=consts,
        scratch_bytes=scratch,
    )


def depthwise_blocked_fits(op: Operator, graph: Graph) -> bool:
    """te_depthwise_blocked_s8 takes channel multiplier 1 (and a sane number of taps)."""
    g = geometry(op, graph, depthwise=True)
    return g.out_c == g.in_c and g.k_h * g.k_w <= blocked.MAX_DW_TAPS


def lower_depthwise_blocked(op: Operator, ctx: LowerCtx) -> Lowered:
    """DEPTHWISE_CONV_2D (multiplier 1) on te_depthwise_blocked_s8: 16-lane blocks."""
    graph = ctx.graph
    x, w, y, g, per_channel, reals = _operands(op, graph, depthwise=True)
    lanes = blocked.depthwise_lanes(g.out_c, g.stride_w)
    taps = w.array().reshape(g.k_h * g.k_w, g.out_c)
    span_w = (g.out_w - 1) * g.stride_w + (g.k_w - 1) * g.dil_w + 1
    f_name, r_name = ctx.name("filter"), ctx.name("rq")
    lane_text = ("16 consecutive output bytes per block (stride 1, channels dividing 16)" if lanes.flat
              else "16 channels per block")
    consts = [
        ConstArray(f_name, "int8_t", blocked.depthwise_filter(taps, lanes),
                   f"filter [{g.k_h}][{g.k_w}][{g.out_c}] as [block][tap][16 lanes]: {lane_text} (te_blocked.h)"),
        ConstArray(r_name, "int32_t",
                   blocked.rq4_table(folded_depthwise_bias(op, graph), reals, per_channel,
                                     blocked.depthwise_rq_order(lanes)),
                   f"per lane: bias - input_zp ({x.zero_point}) * sum of the taps, Q31 multiplier, left and "
                   "right shift, lanes 0,4,8,12 / 2,6,10,14 / 1,5,9,13 / 3,7,11,15 (te_blocked.h)", align=16),
    ]
    fields = _common_fields(g, x, y, op)
    fields["flat"] = 1 if lanes.flat else 0
    # taps 2i and 2i+1 add in int16 unless both weights of a channel are -128 (then 2 * 128 * 128
    # overflows; any other pair of int8 products fits)
    pairs = taps[:taps.shape[0] // 2 * 2].reshape(-1, 2, g.out_c)
    fields["pair_taps"] = 0 if bool(np.any((pairs == -128).all(axis=1))) else 1
    fields["span_w"] = span_w
    return _blocked_call(op, ctx, "te_depthwise_blocked_s8", "te_dw_blocked_params_t", fields, consts,
                         blocked.depthwise_scratch_bytes(g.k_h, g.k_w, g.dil_h, span_w, g.out_c),
                         "DEPTHWISE_CONV_2D x1 " + _describe(g, op, per_channel) + ", blocked weights")


def conv2d_macs(op: Operator, graph: Graph) -> int:
    g = geometry(op, graph, depthwise=False)
    return g.batches * g.out_h * g.out_w * g.out_c * g.k_h * g.k_w * g.in_c


def depthwise_macs(op: Operator, graph: Graph) -> int:
    g = geometry(op, graph, depthwise=True)
    return g.batches * g.out_h * g.out_w * g.out_c * g.k_h * g.k_w


register(OpSpec(
    name="CONV_2D",
    lower=lower_conv2d,
    check=lambda op, graph: check_conv_like(op, graph, depthwise=False),
    constraints="int8 in/out, int8 symmetric weights (per-channel or per-tensor), optional int32 bias; "
                "any stride/dilation, SAME/VALID; fused NONE/RELU/RELU6/RELU_N1_TO_1",
    macs=conv2d_macs,
))

register(OpSpec(
    name="DEPTHWISE_CONV_2D",
    lower=lower_depthwise,
    check=lambda op, graph: check_conv_like(op, graph, depthwise=True),
    constraints="int8 in/out, int8 symmetric weights (per-channel or per-tensor), optional int32 bias; "
                "any channel multiplier (the depth_multiplier option must match the shapes)/stride/dilation, "
                "SAME/VALID; fused NONE/RELU/RELU6/RELU_N1_TO_1",
    macs=depthwise_macs,
))
