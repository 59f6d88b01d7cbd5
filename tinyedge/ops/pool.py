"""AVERAGE_POOL_2D and MAX_POOL_2D, int8 NHWC -> ``te_avgpool_s8`` / ``te_maxpool_s8``.

Arithmetic (see firmware_templates/runtime/te_pool.c): TFLM's reference
int8 AveragePool / MaxPool average or max the raw int8 values of the valid
(non-padding) cells; the average rounds half away from zero; the result is
clamped to the fused activation range computed with the output's
quantization. TFLM's Prepare refuses an input and output whose scales differ
by more than 1e-6 or whose zero points differ; so does the check. Padding and
output size follow ``ComputePaddingHeightWidth`` / ``ComputeOutSize``
(kernels/padding.h).
"""

from __future__ import annotations

import numpy as np

from tinyedge.model.ir import Graph, Operator, Tensor
from tinyedge.ops.base import LowerCtx, Lowered, OpSpec, activation_name, register
from tinyedge.ops.common import fused_range_problems
from tinyedge.quant import activation_range

PADDING = {0: "SAME", 1: "VALID"}
SUPPORTED_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def out_size(padding: str, in_size: int, filter_size: int, stride: int) -> int:
    """TFLite's ComputeOutSize (dilation 1)."""
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    return (in_size + stride - filter_size) // stride


def pad_before(in_size: int, filter_size: int, stride: int, out: int) -> int:
    """TFLite's ComputePaddingWithOffset: the top/left padding (the extra odd cell goes after)."""
    total = (out - 1) * stride + filter_size - in_size
    return max(total, 0) // 2


def _quant_problems(op: Operator, x: Tensor, y: Tensor) -> list[str]:
    """TFLM's PoolingPrepare: |input scale - output scale| (float32) <= 1e-6 and equal zero
    points (the kernels do not requantize), and a fused range it can compute."""
    problems = []
    diff = abs(np.float32(x.scale) - np.float32(y.scale))
    if not float(diff) <= 1.0e-6:
        problems.append(f"input scale {x.scale:.6g} and output scale {y.scale:.6g} differ by more than 1e-6; "
                        "TFLM's pooling requires them equal")
    if x.zero_point != y.zero_point:
        problems.append(f"input zero point {x.zero_point} and output zero point {y.zero_point} differ; "
                        "TFLM's pooling requires them equal")
    return problems + fused_range_problems(op, y)


def _check(op: Operator, graph: Graph) -> list[str]:
    problems: list[str] = []
    if len(op.inputs) < 1 or len(op.outputs) != 1 or op.inputs[0] < 0:
        return [f"{op.opcode} needs 1 input and 1 output"]
    x = graph.tensor(op.inputs[0])
    y = graph.tensor(op.outputs[0])
    for role, t in (("input", x), ("output", y)):
        if t.dtype != "int8":
            problems.append(f"{role} dtype {t.dtype} is not supported (int8 only)")
        if len(t.shape) != 4:
            problems.append(f"{role} must be 4-D NHWC, got shape {list(t.shape)}")
        elif t.quant is None:
            problems.append(f"{role} is not quantized")
        elif t.quant.per_channel:
            problems.append(f"{role} is quantized per channel (per-tensor only)")
    if x.is_const:
        problems.append("a constant input is not supported")
    if not problems:
        problems += _quant_problems(op, x, y)
    act = activation_name(op)
    if act not in SUPPORTED_ACTIVATIONS:
        problems.append(f"fused activation {act} is not supported (NONE, RELU, RELU6, RELU_N1_TO_1)")
    pad = PADDING.get(int(op.options.get("padding", -1)))
    if pad is None:
        problems.append(f"padding {op.options.get('padding')} is not supported (SAME, VALID)")
    fh, fw = int(op.options.get("filter_height", 0)), int(op.options.get("filter_width", 0))
    sh, sw = int(op.options.get("stride_h", 0)), int(op.options.get("stride_w", 0))
    if min(fh, fw, sh, sw) < 1:
        problems.append(f"filter {fh}x{fw} and stride {sh}x{sw} must be at least 1")
    if problems:
        return problems
    assert pad is not None
    n, h, w, c = x.shape
    want = (n, out_size(pad, h, fh, sh), out_size(pad, w, fw, sw), c)
    if tuple(y.shape) != want:
        problems.append(f"output shape {list(y.shape)} is not the {pad} pooling of {list(x.shape)} "
                        f"(expected {list(want)})")
    elif min(want) < 1:
        problems.append(f"{pad} pooling of {list(x.shape)} with a {fh}x{fw} filter is empty")
    return problems


def _lower(op: Operator, ctx: LowerCtx, kernel: str) -> Lowered:
    graph = ctx.graph
    x = graph.tensor(op.inputs[0])
    y = graph.tensor(op.outputs[0])
    pad = PADDING[int(op.options["padding"])]
    fh, fw = int(op.options["filter_height"]), int(op.options["filter_width"])
    sh, sw = int(op.options["stride_h"]), int(op.options["stride_w"])
    n, h, w, c = x.shape
    _, oh, ow, _ = y.shape
    act = activation_name(op)
    act_min, act_max = activation_range(act, y.scale, y.zero_point)
    params = {
        "batches": n, "in_h": h, "in_w": w, "channels": c, "out_h": oh, "out_w": ow,
        "filter_h": fh, "filter_w": fw, "stride_h": sh, "stride_w": sw,
        "pad_h": pad_before(h, fh, sh, oh), "pad_w": pad_before(w, fw, sw, ow),
        "act_min": act_min, "act_max": act_max,
    }
    pname = ctx.name("params")
    return Lowered(
        comment=(f"{op.opcode} {fh}x{fw} stride {sh}x{sw} {pad}, "
                 f"{'x'.join(map(str, x.shape))} -> {'x'.join(map(str, y.shape))}, "
                 f"activation {act} [{act_min}, {act_max}]"),
        call=f"{kernel}(&{pname}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});",
        params_type="te_pool_params_t",
        params=params,
        params_name=pname,
    )


def _lower_avg(op: Operator, ctx: LowerCtx) -> Lowered:
    return _lower(op, ctx, "te_avgpool_s8")


def _lower_max(op: Operator, ctx: LowerCtx) -> Lowered:
    return _lower(op, ctx, "te_maxpool_s8")


register(OpSpec(
    name="AVERAGE_POOL_2D",
    lower=_lower_avg,
    check=_check,
    constraints="int8 NHWC, input and output quantization equal (as TFLM requires); SAME/VALID padding, "
                "any filter and stride; fused NONE/RELU/RELU6/RELU_N1_TO_1",
))

register(OpSpec(
    name="MAX_POOL_2D",
    lower=_lower_max,
    check=_check,
    constraints="int8 NHWC, input and output quantization equal (as TFLM requires); SAME/VALID padding, "
                "any filter and stride; fused NONE/RELU/RELU6/RELU_N1_TO_1",
))
