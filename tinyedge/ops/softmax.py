"""SOFTMAX, int8 in -> int8 or int16 out -> ``te_softmax_s8`` / ``te_softmax_s8_s16``.

What TensorFlow Lite Micro computes (micro/kernels/softmax_common.cc Prepare,
reference_ops::Softmax Eval; the C side and the per-row algorithm are in
firmware_templates/runtime/te_softmax.c): integer arithmetic throughout.
Prepare (CalculateSoftmaxParams -> PreprocessSoftmaxScaling, CalculateInputRadius):

- ``real = min(double(beta) * double(in_s) * 2^26, 2^31 - 1)`` (the product of
  two float32 values is exact in double), then QuantizeMultiplierGreaterThanOne
  gives ``input_multiplier`` and ``input_left_shift`` (TFLM aborts when
  ``real <= 1``, so tinyedge refuses that);
- ``diff_min = -floor(31 * 2^26 / 2^input_left_shift)`` (exact in double).

Eval works on the difference ``d = max - x`` (0..255) of each value to its
row's maximum; ``exp(-d)`` there is gemmlowp's ``exp_on_negative_values`` of
the Q5.26 value ``MultiplyByQuantizedMultiplierGreaterThanOne(-d, ...)``, a
function of ``d`` alone. This module computes it for all 256 ``d`` with exact
integer arithmetic (:mod:`tinyedge.fixedpoint`) into a table of Q0.31 int32
values, with 0 where ``-d < diff_min`` (TFLM skips those values; a 0 gives the
same sum and the same output). The table depends only on the input scale and
beta, so generated code is the same on every host.

TFLM's Prepare rules, refused here with its reason: int8 output needs zero
point -128 and a scale equal to 1/256 (float ==); int16 output needs zero
point -32768 and a scale within 0.001/65536 of 1/65536 (float32 arithmetic).
int16 input (TFLM's SoftmaxInt16) is not supported: TFLM builds its tables
for it with the host C library's ``expf``, so no exact answer exists
independent of the machine.
"""

from __future__ import annotations

import math

import numpy as np

from tinyedge import fixedpoint
from tinyedge.model.ir import Graph, Operator
from tinyedge.ops.base import ConstArray, LowerCtx, Lowered, OpSpec, register
from tinyedge.quant import f32, quantize_multiplier, srdhm

F32 = np.float32
_SCALED_DIFF_INTEGER_BITS = 5  # reference_ops::Softmax kScaledDiffIntegerBits: exp's input is Q5.26


def softmax_input_params(input_scale: float, beta: float) -> tuple[int, int, int]:
    """PreprocessSoftmaxScaling + CalculateInputRadius: ``(input_multiplier, input_left_shift,
    diff_min)``. Raises ValueError where TFLM's QuantizeMultiplierGreaterThanOne aborts."""
    real = min(f32(beta) * f32(input_scale) * float(1 << (31 - _SCALED_DIFF_INTEGER_BITS)), float((1 << 31) - 1))
    if not real > 1.0:
        raise ValueError(f"beta * input_scale * 2^26 = {real:g} is not above 1")
    multiplier, left_shift = quantize_multiplier(real)
    radius = math.floor(((1 << _SCALED_DIFF_INTEGER_BITS) - 1) * 2.0 ** (31 - _SCALED_DIFF_INTEGER_BITS)
                        / 2.0**left_shift)
    return multiplier, left_shift, -radius


def softmax_exp_table(input_scale: float, beta: float) -> np.ndarray:
    """Entry ``d`` (0..255): TFLM's Q0.31 ``exp_on_negative_values`` for the input difference
    ``-d``, or 0 where ``-d < diff_min`` (TFLM skips it)."""
    multiplier, left_shift, diff_min = softmax_input_params(input_scale, beta)
    table = np.zeros(256, dtype=np.int32)
    for d in range(256):
        if -d >= diff_min:
            # MultiplyByQuantizedMultiplierGreaterThanOne: |d| * 2^left_shift <= 31 * 2^26, no overflow
            scaled_diff = srdhm(-d * (1 << left_shift), multiplier)
            table[d] = fixedpoint.exp_on_negative_values(scaled_diff, _SCALED_DIFF_INTEGER_BITS)
    return table


def _output_problems(dtype: str, scale: float, zero_point: int) -> list[str]:
    """CalculateSoftmaxParams' rules for the output of an int8 softmax."""
    if dtype == "int8":
        if zero_point != -128 or F32(scale) != F32(1.0) / F32(256.0):
            return [f"int8 output must have scale 1/256 exactly and zero point -128 "
                    f"(got scale {scale:g}, zero point {zero_point}; TFLM's Prepare refuses others)"]
        return []
    want = F32(1.0) / F32(65536.0)
    delta = abs(F32(scale) - want)
    if zero_point != -32768 or delta > F32(F32(0.001) * F32(1.0) / F32(65536.0)):
        return [f"int16 output must have zero point -32768 and scale 1/65536 (within 0.001/65536) "
                f"(got scale {scale:g}, zero point {zero_point}; TFLM's Prepare refuses others)"]
    return []


def _check(op: Operator, graph: Graph) -> list[str]:
    problems: list[str] = []
    if len(op.inputs) != 1 or len(op.outputs) != 1 or op.inputs[0] < 0:
        return ["SOFTMAX needs 1 input and 1 output"]
    x = graph.tensor(op.inputs[0])
    y = graph.tensor(op.outputs[0])
    if x.dtype == "int16":
        problems.append("input dtype int16 is not supported (TFLM's int16 softmax builds its tables with "
                        "the host's expf: no host-independent answer)")
    elif x.dtype != "int8":
        problems.append(f"input dtype {x.dtype} is not supported (int8 only)")
    if y.dtype not in ("int8", "int16"):
        problems.append(f"output dtype {y.dtype} is not supported (int8 or int16)")
    for role, t in (("input", x), ("output", y)):
        if t.quant is None:
            problems.append(f"{role} is not quantized")
        elif t.quant.per_channel:
            problems.append(f"{role} is quantized per channel (per-tensor only)")
    if x.is_const:
        problems.append("a constant input is not supported")
    if len(x.shape) < 1 or tuple(x.shape) != tuple(y.shape):
        problems.append(f"input shape {list(x.shape)} and output shape {list(y.shape)} must match (rank >= 1)")
    if problems:
        return problems
    problems += _output_problems(y.dtype, y.scale, y.zero_point)
    beta = float(op.options.get("beta", 1.0))
    try:
        softmax_input_params(x.scale, beta)
    except ValueError as exc:
        problems.append(f"beta {beta:g} with input scale {x.scale:g}: {exc} (TFLM's Prepare aborts)")
    return problems


def _lower(op: Operator, ctx: LowerCtx) -> Lowered:
    g = ctx.graph
    x = g.tensor(op.inputs[0])
    y = g.tensor(op.outputs[0])
    beta = float(op.options.get("beta", 1.0))
    depth = x.shape[-1]
    multiplier, left_shift, diff_min = softmax_input_params(x.scale, beta)
    table_name = ctx.name("exp_table")
    table = ConstArray(
        name=table_name,
        ctype="int32_t",
        values=softmax_exp_table(x.scale, beta),
        comment=(f"softmax exp_table[d] = TFLM's Q0.31 exp_on_negative_values of the difference -d "
                 f"(input scale {x.scale:.9g}, beta {f32(beta):.9g}: input multiplier {multiplier}, "
                 f"left shift {left_shift}; 0 below diff_min {diff_min}), computed with integer arithmetic"),
    )
    pname = ctx.name("params")
    kernel = "te_softmax_s8" if y.dtype == "int8" else "te_softmax_s8_s16"
    return Lowered(
        comment=(f"SOFTMAX over the last axis ({x.size // depth} x {depth}), beta {beta:g}, "
                 f"int8 -> {y.dtype} (s={y.scale:.6g} zp={y.zero_point}), TFLM's fixed point"),
        call=f"{kernel}(&{pname}, {table_name}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});",
        params_type="te_softmax_params_t",
        params={"outer": x.size // depth, "depth": depth},
        params_name=pname,
        consts=[table],
    )


register(OpSpec(
    name="SOFTMAX",
    lower=_lower,
    check=_check,
    constraints=("int8 input; int8 (scale 1/256, zp -128) or int16 (scale 1/65536, zp -32768) output; "
                 "last axis; beta * input_scale > 2^-26; TFLM's fixed point"),
))
