"""int8 activations -> firmware_templates/runtime/te_activations.c.

RELU, RELU_N1_TO_1 -> ``te_relu_s8``; RELU6 -> ``te_clamp_s8``; LEAKY_RELU ->
``te_leaky_relu_s8``; PRELU -> ``te_prelu_s8``; HARD_SWISH ->
``te_hard_swish_s8``; LOGISTIC and TANH -> ``te_lookup_s8`` with a 256-entry
table computed here with exact integer arithmetic.

The constants reproduce TensorFlow Lite Micro's Prepare functions (the
oracle), including where they compute in float32 before widening to double
(``params.scale`` fields are floats, so ``input->params.scale /
output->params.scale`` is a float division):

- RELU (CalculateReluOpData): ``QuantizeMultiplier(float(in_s / out_s))``; the
  range is ``[max(-128, out_zp), 127]``.
- RELU6 (Relu6Prepare): no requantization at all: TFLM clamps the raw int8
  input to ``[in_zp, FloatToQuantizedType(6.0f, in_s, in_zp)]`` and never
  reads the output's quantization.
- RELU_N1_TO_1: TFLM has no kernel. tinyedge keeps TFLite's reference
  arithmetic (RELU's requantization, clamped to ``out_zp + roundf(+-1 /
  out_s)``); such models are compared with the TFLite interpreter.
- LEAKY_RELU (CalculateOpDataLeakyRelu): identity ``float(in_s / out_s)``,
  alpha ``float(float(in_s * alpha) / out_s)``; a negative alpha multiplier is
  applied as its absolute value and the result negated (QuantizeLeakyRelu).
- PRELU (CalculatePreluParams): ``double(in_s) / double(out_s)`` and
  ``double(in_s) * double(alpha_s) / double(out_s)``, in double.
- HARD_SWISH (HardSwishPrepare): float32 ``hires = in_s / 128``, ``hires /
  out_s`` and ``hires / (3 / 32768)``, each QuantizeMultiplier'd then rounded
  to a 16-bit multiplier (DownScaleInt32ToInt16Multiplier); TFLM refuses an
  output exponent above 0.
- LOGISTIC / TANH (CalculateArithmeticOpDataLogistic / TanhPrepare):
  ``frexp(double(in_s) * 2^27)`` gives the Q31 input multiplier and left
  shift, ``floor(15 * 2^27 / 2^shift)`` the input range radius (both exact in
  double). Eval (reference_integer_ops::Logistic / Tanh): inputs at or beyond
  the radius saturate; the others go to Q4.27 with
  MultiplyByQuantizedMultiplier and through gemmlowp's fixed-point logistic /
  tanh (:mod:`tinyedge.fixedpoint`), then ``RoundingDivideByPOT`` by 23 (- 128)
  or 24. LOGISTIC's output is on the scale 1/256 with zero point -128 and
  TANH's on 1/128 with zero point 0 whatever the output tensor says: TFLM
  checks only LOGISTIC's zero point. Every step depends only on the int8
  input, so the table of all 256 results is computed here; it is a function
  of the input scale and zero point alone, the same on every host.
"""

from __future__ import annotations

import math

import numpy as np

from tinyedge import fixedpoint
from tinyedge.model.ir import Graph, Operator, Tensor
from tinyedge.ops.base import ConstArray, LowerCtx, Lowered, OpSpec, register
from tinyedge.ops.broadcast import MAX_DIMS, broadcast_shape, padded
from tinyedge.ops.common import bcast_walk, int8_operand, int8_tensor_problems
from tinyedge.quant import (INT8_MAX, INT8_MIN, activation_range, f32, mul_by_quantized_multiplier,
                            quantize_multiplier, rounding_divide_by_pot)

F32 = np.float32

# ---- host arithmetic, as TFLM's Prepare does it -----------------------------------------


def ratio_f32(num: float, den: float) -> float:
    """``a->params.scale / b->params.scale``: a float32 division, widened."""
    return f32(F32(num) / F32(den))


def product_ratio_f32(a: float, b: float, den: float) -> float:
    """``a * b / den`` with float32 operands, left to right, in float32."""
    return f32(F32(F32(a) * F32(b)) / F32(den))


def roundf(x: float) -> float:
    """C round / roundf on a float32 value: half away from zero (exact in double)."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def relu6_upper(in_scale: float, in_zp: int) -> int:
    """Relu6Prepare's ``FloatToQuantizedType<int8_t>(6.0f, in_s, in_zp)``: ``round(6.0f / in_s)
    + in_zp`` (float32 division), clamped to int8."""
    q = int(roundf(f32(F32(6.0) / F32(in_scale)))) + int(in_zp)
    return max(INT8_MIN, min(INT8_MAX, q))


def downscale_to_int16(mult32: int) -> int:
    """TFLite's DownScaleInt32ToInt16Multiplier: round a Q31 multiplier to Q15."""
    if mult32 >= (1 << 31) - 1 - (1 << 15):
        return (1 << 15) - 1
    return (mult32 + (1 << 15)) >> 16


def hard_swish_constants(in_scale: float, out_scale: float) -> dict[str, int]:
    """HardSwishPrepare's HardSwishParams (multipliers in float32, then Q31, then Q15)."""
    hires = f32(F32(1.0 / 128.0) * F32(in_scale))
    reluish_scale = f32(F32(3.0) / F32(32768.0))
    out_m, out_e = quantize_multiplier(f32(F32(hires) / F32(out_scale)))
    rel_m, rel_e = quantize_multiplier(f32(F32(hires) / F32(reluish_scale)))
    return {"output_mult_fp16": downscale_to_int16(out_m), "output_exp": out_e,
            "reluish_mult_fp16": downscale_to_int16(rel_m), "reluish_exp": rel_e}


_Q4 = 4  # reference_integer_ops::Logistic / Tanh: kInputIntegerBits (the input goes to Q4.27)
_MAX_LEFT_SHIFT = 62  # CalculateInputRadius shifts a 64-bit 1 by the input left shift


def fixed_point_input(in_scale: float) -> tuple[int, int, int]:
    """LOGISTIC / TANH Prepare: ``(input_multiplier, input_left_shift, input_range_radius)``.

    ``frexp(double(in_s) * 2^27)``; the Q31 mantissa is exact (a float32 scale has 24
    significant bits, so ``TfLiteRound`` has nothing to round); the radius
    ``floor(15 * 2^27 / 2^left_shift)`` is CalculateInputRadius(4, left_shift, 31)."""
    q, left_shift = math.frexp(f32(in_scale) * float(1 << (31 - _Q4)))
    multiplier = int(math.floor(q * 2.0**31 + 0.5))
    radius = math.floor(((1 << _Q4) - 1) * 2.0 ** (31 - _Q4) / 2.0**left_shift)
    return multiplier, left_shift, radius


def fixed_point_input_problems(opcode: str, in_scale: float) -> list[str]:
    if not in_scale > 0:
        return [f"{opcode}: input scale {in_scale:g} is not positive"]
    _, left_shift, _ = fixed_point_input(in_scale)
    if not 0 <= left_shift <= _MAX_LEFT_SHIFT:
        return [f"{opcode}: input scale {in_scale:g} is outside [2^-28, 2^35): TFLM's Prepare "
                "(CalculateInputRadius) shifts by a negative or too large amount there"]
    return []


def integer_lut(opcode: str, in_scale: float, in_zp: int) -> np.ndarray:
    """TFLM's reference_integer_ops::Logistic / Tanh for every int8 input: entry ``q + 128``
    is the output for input ``q``. Exact integer arithmetic (:mod:`tinyedge.fixedpoint`)."""
    multiplier, left_shift, radius = fixed_point_input(in_scale)
    table = np.empty(256, dtype=np.int8)
    for q in range(INT8_MIN, INT8_MAX + 1):
        x = q - in_zp
        if x <= -radius:
            y = INT8_MIN
        elif x >= radius:
            y = INT8_MAX
        else:
            x_q4 = mul_by_quantized_multiplier(x, multiplier, left_shift)  # Q4.27
            if opcode == "LOGISTIC":  # Q0.31 in [0, 1) -> 1/256 units, zero point -128
                y = rounding_divide_by_pot(fixedpoint.logistic(x_q4, _Q4), 31 - 8) - 128
            else:  # Q0.31 in (-1, 1) -> 1/128 units
                y = rounding_divide_by_pot(fixedpoint.tanh(x_q4, _Q4), 31 - 7)
            y = max(INT8_MIN, min(INT8_MAX, y))
        table[q + 128] = y
    return table


# ---- checks -------------------------------------------------------------------------------


def _unary_problems(op: Operator, graph: Graph) -> list[str]:
    if len(op.inputs) < 1 or len(op.outputs) != 1 or op.inputs[0] < 0:
        return [f"{op.opcode} needs 1 input and 1 output"]
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    problems = int8_tensor_problems(x, "input") + int8_tensor_problems(y, "output")
    if x.is_const:
        problems.append("a constant input is not supported")
    if x.size != y.size:
        problems.append(f"input shape {list(x.shape)} and output shape {list(y.shape)} differ in size")
    return problems


def _check_unary(op: Operator, graph: Graph) -> list[str]:
    return _unary_problems(op, graph)


def _check_relu6(op: Operator, graph: Graph) -> list[str]:
    problems = _unary_problems(op, graph)
    if not problems:
        s = graph.tensor(op.inputs[0]).scale
        if not (s > 0 and 6.0 / s < 2.0**31 - 256):
            problems.append(f"RELU6: input scale {s:g} is not above 6/2^31: TFLM's Relu6Prepare "
                            "overflows int32 quantizing 6.0")
    return problems


def _check_fixed_point(op: Operator, graph: Graph) -> list[str]:
    """LOGISTIC / TANH: the input scale TFLM's Prepare can shift by; LOGISTIC's output zero point."""
    problems = _unary_problems(op, graph)
    if not problems:
        x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        problems += fixed_point_input_problems(op.opcode, x.scale)
        if op.opcode == "LOGISTIC" and y.zero_point != INT8_MIN:
            problems.append(f"LOGISTIC: int8 output zero point must be -128 (got {y.zero_point}; "
                            "TFLM's Prepare refuses others)")
    return problems


def _check_hard_swish(op: Operator, graph: Graph) -> list[str]:
    problems = _unary_problems(op, graph)
    if not problems:
        x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if hard_swish_constants(x.scale, y.scale)["output_exp"] > 0:
            problems.append("HARD_SWISH: input_scale / 128 / output_scale must be below 1 "
                            f"(scales {x.scale:g}, {y.scale:g}; TFLM's Prepare refuses it)")
    return problems


def _check_prelu(op: Operator, graph: Graph) -> list[str]:
    if len(op.inputs) != 2 or len(op.outputs) != 1 or min(op.inputs) < 0:
        return ["PRELU needs 2 inputs (input, alpha) and 1 output"]
    x, alpha, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    problems = (int8_tensor_problems(x, "input") + int8_tensor_problems(alpha, "alpha")
                + int8_tensor_problems(y, "output"))
    if problems:
        return problems
    rank = max(len(x.shape), len(alpha.shape))
    both = broadcast_shape(x.shape, alpha.shape)
    if rank > MAX_DIMS:
        problems.append(f"PRELU: rank {rank} not supported (max {MAX_DIMS})")
    elif both is None or padded(both, rank) != padded(x.shape, rank):
        problems.append(f"alpha shape {list(alpha.shape)} does not broadcast to the input shape {list(x.shape)}")
    elif tuple(y.shape) != tuple(x.shape):
        problems.append(f"output shape {list(y.shape)} differs from the input shape {list(x.shape)}")
    return problems


# ---- lowerings ----------------------------------------------------------------------------


def _io(op: Operator, ctx: LowerCtx) -> tuple[Tensor, Tensor, str, str]:
    x, y = ctx.graph.tensor(op.inputs[0]), ctx.graph.tensor(op.outputs[0])
    return x, y, ctx.ptr(op.inputs[0]), ctx.ptr(op.outputs[0])


def _lower_relu(op: Operator, ctx: LowerCtx) -> Lowered:
    """RELU (TFLM's ReluQuantized) and RELU_N1_TO_1 (TFLite's reference arithmetic)."""
    x, y, xin, yout = _io(op, ctx)
    real = ratio_f32(x.scale, y.scale)
    mult, shift = quantize_multiplier(real)
    act_min, act_max = activation_range(op.opcode, y.scale, y.zero_point)
    pname = ctx.name("params")
    return Lowered(
        comment=(f"{op.opcode} {x.describe()} -> {y.describe()}, requantize x{real:.9g}, "
                 f"clamp [{act_min}, {act_max}]"),
        call=f"te_relu_s8(&{pname}, {xin}, {yout});",
        params_type="te_relu_params_t",
        params={"size": x.size, "in_zp": x.zero_point, "out_zp": y.zero_point, "mult": mult, "shift": shift,
                "act_min": act_min, "act_max": act_max},
        params_name=pname,
    )


def _lower_relu6(op: Operator, ctx: LowerCtx) -> Lowered:
    x, y, xin, yout = _io(op, ctx)
    lo, hi = x.zero_point, relu6_upper(x.scale, x.zero_point)
    pname = ctx.name("params")
    return Lowered(
        comment=(f"RELU6 {x.describe()} -> {y.describe()}: TFLM clamps the raw input to [{lo}, {hi}] "
                 "(the input's quantized 0 and 6; the output's quantization is not read)"),
        call=f"te_clamp_s8(&{pname}, {xin}, {yout});",
        params_type="te_clamp_params_t",
        params={"size": x.size, "lo": lo, "hi": hi},
        params_name=pname,
    )


def _lower_leaky_relu(op: Operator, ctx: LowerCtx) -> Lowered:
    x, y, xin, yout = _io(op, ctx)
    alpha = float(op.options.get("alpha", 0.2))
    id_m, id_s = quantize_multiplier(ratio_f32(x.scale, y.scale))
    al_m, al_s = quantize_multiplier(product_ratio_f32(x.scale, alpha, y.scale))
    pname = ctx.name("params")
    return Lowered(
        comment=f"LEAKY_RELU alpha {f32(alpha):.9g}, {x.describe()} -> {y.describe()}",
        call=f"te_leaky_relu_s8(&{pname}, {xin}, {yout});",
        params_type="te_leaky_relu_params_t",
        params={"size": x.size, "in_zp": x.zero_point, "out_zp": y.zero_point,
                "identity_mult": id_m, "identity_shift": id_s, "alpha_mult": abs(al_m), "alpha_shift": al_s,
                "alpha_negative": int(al_m < 0)},
        params_name=pname,
    )


def _lower_prelu(op: Operator, ctx: LowerCtx) -> Lowered:
    g = ctx.graph
    x, alpha, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    m1, s1 = quantize_multiplier(float(x.scale) / float(y.scale))
    m2, s2 = quantize_multiplier(float(x.scale) * float(alpha.scale) / float(y.scale))
    alpha_name, consts = int8_operand(ctx, op.inputs[1], "alpha")
    bcast = padded(alpha.shape, MAX_DIMS) != padded(x.shape, MAX_DIMS)
    pname = ctx.name("params")
    return Lowered(
        comment=(f"PRELU {x.describe()} alpha {alpha.describe()} -> {y.describe()}"
                 f"{' (alpha broadcast)' if bcast else ''}"),
        call=f"te_prelu_s8(&{pname}, {ctx.ptr(op.inputs[0])}, {alpha_name}, {ctx.ptr(op.outputs[0])});",
        params_type="te_prelu_params_t",
        params={"in_offset": -x.zero_point, "alpha_offset": -alpha.zero_point, "out_offset": y.zero_point,
                "mult1": m1, "shift1": s1, "mult2": m2, "shift2": s2,
                "walk": bcast_walk(x.shape, alpha.shape)},
        params_name=pname,
        consts=consts,
    )


def _lower_hard_swish(op: Operator, ctx: LowerCtx) -> Lowered:
    x, y, xin, yout = _io(op, ctx)
    k = hard_swish_constants(x.scale, y.scale)
    pname = ctx.name("params")
    return Lowered(
        comment=f"HARD_SWISH {x.describe()} -> {y.describe()}, 16-bit fixed point (TFLM's HardSwishParams)",
        call=f"te_hard_swish_s8(&{pname}, {xin}, {yout});",
        params_type="te_hard_swish_params_t",
        params={"size": x.size, "in_zp": x.zero_point, "out_zp": y.zero_point, **k},
        params_name=pname,
    )


def _lower_lut(op: Operator, ctx: LowerCtx) -> Lowered:
    x, y, xin, yout = _io(op, ctx)
    multiplier, left_shift, radius = fixed_point_input(x.scale)
    out_q = "1/256 zp -128" if op.opcode == "LOGISTIC" else "1/128 zp 0"
    table_name = ctx.name("table")
    table = ConstArray(
        name=table_name, ctype="int8_t",
        values=integer_lut(op.opcode, x.scale, x.zero_point),
        comment=(f"{op.opcode} table[q + 128]: TFLM's reference_integer_ops::{op.opcode.title()} of int8 q "
                 f"(input zp {x.zero_point}, multiplier {multiplier}, left shift {left_shift}, radius {radius}; "
                 f"gemmlowp fixed point, output on {out_q}), computed with integer arithmetic"),
    )
    pname = ctx.name("params")
    return Lowered(
        comment=f"{op.opcode} {x.describe()} -> {y.describe()}, 256-entry table",
        call=f"te_lookup_s8(&{pname}, {table_name}, {xin}, {yout});",
        params_type="te_lookup_params_t",
        params={"size": x.size},
        params_name=pname,
        consts=[table],
    )


_INT8_IO = "int8 in/out, per-tensor, any scales"

register(OpSpec(name="RELU", lower=_lower_relu, check=_check_unary,
                constraints=f"{_INT8_IO} (input and output may differ); clamp to [0, inf)"))
register(OpSpec(name="RELU6", lower=_lower_relu6, check=_check_relu6,
                constraints="int8 in/out, per-tensor; as TFLM: the raw input clamped to its own quantized "
                            "[0, 6], the output's quantization is not read"))
register(OpSpec(name="RELU_N1_TO_1", lower=_lower_relu, check=_check_unary,
                constraints=f"{_INT8_IO} (input and output may differ); clamp to [-1, 1]; TFLM has no kernel: "
                            "TFLite's reference arithmetic, compared with the TFLite interpreter"))
register(OpSpec(name="LEAKY_RELU", lower=_lower_leaky_relu, check=_check_unary,
                constraints=f"{_INT8_IO}; any alpha"))
register(OpSpec(name="PRELU", lower=_lower_prelu, check=_check_prelu,
                constraints="int8 input, alpha (constant or not) and output, per-tensor; alpha broadcast "
                            f"to the input, rank <= {MAX_DIMS}"))
register(OpSpec(name="HARD_SWISH", lower=_lower_hard_swish, check=_check_hard_swish,
                constraints=f"{_INT8_IO} with input_scale/128 < output_scale; TFLM's 16-bit fixed point"))
register(OpSpec(name="LOGISTIC", lower=_lower_lut, check=_check_fixed_point,
                constraints="int8 in/out, per-tensor; output zero point -128, output scale not read (TFLM "
                            "computes on 1/256); TFLM's fixed point as a 256-entry table"))
register(OpSpec(name="TANH", lower=_lower_lut, check=_check_fixed_point,
                constraints="int8 in/out, per-tensor; output quantization not read (TFLM computes on "
                            "1/128, zp 0); TFLM's fixed point as a 256-entry table"))
