"""int8 activations -> firmware_templates/runtime/te_activations.c.

RELU, RELU6, RELU_N1_TO_1 -> ``te_relu_s8``; LEAKY_RELU -> ``te_leaky_relu_s8``;
PRELU -> ``te_prelu_s8``; HARD_SWISH -> ``te_hard_swish_s8``; LOGISTIC and
TANH -> ``te_lookup_s8`` with a 256-entry table computed here.

The constants reproduce TFLite's kernels/activations.cc Prepare functions,
including where they compute in float32 before widening to double (the
``params.scale`` fields are floats, so ``input->params.scale /
output->params.scale`` is a float division):

- ReluPrepare: ``QuantizeMultiplier(float(in_s / out_s))``; the bounds are
  ``out_zp + roundf(bound / out_s)`` (QuantizedReluX).
- LeakyReluPrepare: identity ``float(in_s / out_s)``, alpha
  ``float(float(in_s * alpha) / out_s)``.
- PreluPrepare: ``float(in_s / out_s)`` and ``float(float(in_s * alpha_s) / out_s)``.
- HardSwishPrepare: float32 ``hires = in_s / 128``, ``hires / out_s`` and
  ``hires / (3 / 32768)``, each QuantizeMultiplier'd then rounded to a 16-bit
  multiplier (DownScaleInt32ToInt16Multiplier).
- LOGISTIC / TANH: the oracle's registered kernels (Register_LOGISTIC /
  Register_TANH -> the generic-optimized variants) build a 256-entry table in
  Prepare with LUTPopulate (kernels/internal/common.h), all in float32:
  ``round(f(in_s * (q - in_zp)) * (1 / out_s)) + out_zp``, clamped, with
  ``f = 1 / (1 + expf(-x))`` or ``tanhf(x)`` and ``round`` = roundf (half
  away from zero). Not the gemmlowp fixed-point logistic/tanh (those are the
  kFixedPointOptimized variants, not registered). We call the host C
  library's ``expf`` / ``tanhf`` through ctypes: the oracle's shared library
  imports exactly these symbols from libm (checked with ``nm -D``), so on the
  same machine the tables are identical; numpy's own float32 exp/tanh are not
  the same functions. A table generated against a different C library could
  differ where a value lands within an ulp of a rounding boundary.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from functools import lru_cache
from typing import Callable

import numpy as np

from tinyedge.model.ir import Graph, Operator, Tensor
from tinyedge.ops.base import ConstArray, LowerCtx, Lowered, OpSpec, register
from tinyedge.ops.broadcast import broadcast_shape, broadcast_strides, padded
from tinyedge.ops.common import c_int_list, int8_operand, int8_tensor_problems
from tinyedge.quant import INT8_MAX, INT8_MIN, activation_range, f32, quantize_multiplier

F32 = np.float32
PRELU_MAX_RANK = 4  # the oracle's BroadcastPrelu4DSlow

# ---- host float math, as the oracle's Prepare does it ---------------------------------


@lru_cache(maxsize=None)
def _libm_function(name: str) -> Callable[[float], float] | None:
    lib_name = ctypes.util.find_library("m") or "libm.so.6"
    try:
        fn = getattr(ctypes.CDLL(lib_name), name)
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_float
    fn.argtypes = [ctypes.c_float]
    return fn  # type: ignore[no-any-return]


def libm_f32(name: str, x: float) -> float:
    """The C library's float function ``name`` (expf, tanhf) at float32 ``x``.

    Falls back to the double-precision function rounded to float32 (at most one
    ulp away) when no C math library can be loaded."""
    fn = _libm_function(name)
    x = f32(x)
    if fn is not None:
        return f32(fn(x))
    fallback = {"expf": math.exp, "tanhf": math.tanh}[name]
    try:
        return f32(fallback(x))
    except OverflowError:
        return math.inf


def sigmoid_f32(x: float) -> float:
    """``1.0f / (1.0f + std::exp(-x))`` in float32."""
    return float(F32(1.0) / (F32(1.0) + F32(libm_f32("expf", -x))))


def tanh_f32(x: float) -> float:
    return libm_f32("tanhf", x)


def roundf(x: float) -> float:
    """C roundf on a float32 value: half away from zero (exact in double)."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def lut_int8(in_scale: float, in_zp: int, out_scale: float, out_zp: int,
             transform: Callable[[float], float]) -> np.ndarray:
    """TFLite's LUTPopulate<int8_t>, float32 step by step; entry ``q + 128`` is the output for input ``q``."""
    inverse_scale = F32(1.0) / F32(out_scale)
    table = np.empty(256, dtype=np.int8)
    for q in range(INT8_MIN, INT8_MAX + 1):
        dequantized = F32(in_scale) * F32(q - in_zp)
        transformed = F32(transform(float(dequantized)))
        rescaled = roundf(float(F32(transformed * inverse_scale)))
        summed = float(F32(F32(rescaled) + F32(out_zp)))
        # static_cast<int32_t>: truncation; out of range (or NaN) x86's cvttss2si gives INT32_MIN
        quantized = int(summed) if -2.0**31 <= summed < 2.0**31 else -(2**31)
        table[q + 128] = max(INT8_MIN, min(INT8_MAX, quantized))
    return table


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


def ratio_f32(num: float, den: float) -> float:
    """``a->params.scale / b->params.scale``: a float32 division, widened."""
    return f32(F32(num) / F32(den))


def product_ratio_f32(a: float, b: float, den: float) -> float:
    """``a * b / den`` with float32 operands, left to right, in float32."""
    return f32(F32(F32(a) * F32(b)) / F32(den))


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


def _check_logistic(op: Operator, graph: Graph) -> list[str]:
    problems = _unary_problems(op, graph)
    if not problems:
        y = graph.tensor(op.outputs[0])
        if y.scale != 1.0 / 256:
            problems.append(f"LOGISTIC: int8 output scale must be 1/256 (got {y.scale:g}; the oracle refuses others)")
    return problems


def _check_hard_swish(op: Operator, graph: Graph) -> list[str]:
    problems = _unary_problems(op, graph)
    if not problems:
        x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if hard_swish_constants(x.scale, y.scale)["output_exp"] > 0:
            problems.append("HARD_SWISH: input_scale / 128 / output_scale must be below 1 "
                            f"(scales {x.scale:g}, {y.scale:g}; the oracle refuses it)")
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
    if rank > PRELU_MAX_RANK:
        problems.append(f"PRELU: rank {rank} not supported (max {PRELU_MAX_RANK})")
    elif both is None or padded(both, rank) != padded(x.shape, rank):
        problems.append(f"alpha shape {list(alpha.shape)} does not broadcast to the input shape {list(x.shape)}")
    elif tuple(y.shape) != tuple(x.shape):
        problems.append(f"output shape {list(y.shape)} differs from the input shape {list(x.shape)}")
    return problems


# ---- lowerings ----------------------------------------------------------------------------

_RELU_BOUNDS = {"RELU": "RELU", "RELU6": "RELU6", "RELU_N1_TO_1": "RELU_N1_TO_1"}


def _io(op: Operator, ctx: LowerCtx) -> tuple[Tensor, Tensor, str, str]:
    x, y = ctx.graph.tensor(op.inputs[0]), ctx.graph.tensor(op.outputs[0])
    return x, y, ctx.ptr(op.inputs[0]), ctx.ptr(op.outputs[0])


def _lower_relu(op: Operator, ctx: LowerCtx) -> Lowered:
    x, y, xin, yout = _io(op, ctx)
    real = ratio_f32(x.scale, y.scale)
    mult, shift = quantize_multiplier(real)
    act_min, act_max = activation_range(_RELU_BOUNDS[op.opcode], y.scale, y.zero_point)
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
                "identity_mult": id_m, "identity_shift": id_s, "alpha_mult": al_m, "alpha_shift": al_s},
        params_name=pname,
    )


def _lower_prelu(op: Operator, ctx: LowerCtx) -> Lowered:
    g = ctx.graph
    x, alpha, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    m1, s1 = quantize_multiplier(ratio_f32(x.scale, y.scale))
    m2, s2 = quantize_multiplier(product_ratio_f32(x.scale, alpha.scale, y.scale))
    alpha_name, consts = int8_operand(ctx, op.inputs[1], "alpha")
    bcast = padded(alpha.shape, PRELU_MAX_RANK) != padded(x.shape, PRELU_MAX_RANK)
    pname = ctx.name("params")
    return Lowered(
        comment=(f"PRELU {x.describe()} alpha {alpha.describe()} -> {y.describe()}"
                 f"{' (alpha broadcast)' if bcast else ''}"),
        call=f"te_prelu_s8(&{pname}, {ctx.ptr(op.inputs[0])}, {alpha_name}, {ctx.ptr(op.outputs[0])});",
        params_type="te_prelu_params_t",
        params={"in_offset": -x.zero_point, "alpha_offset": -alpha.zero_point, "out_offset": y.zero_point,
                "mult1": m1, "shift1": s1, "mult2": m2, "shift2": s2, "broadcast": int(bcast),
                "size": x.size, "dims": c_int_list(padded(x.shape, PRELU_MAX_RANK)),
                "alpha_strides": c_int_list(broadcast_strides(alpha.shape, x.shape, PRELU_MAX_RANK))},
        params_name=pname,
        consts=consts,
    )


def _lower_hard_swish(op: Operator, ctx: LowerCtx) -> Lowered:
    x, y, xin, yout = _io(op, ctx)
    k = hard_swish_constants(x.scale, y.scale)
    pname = ctx.name("params")
    return Lowered(
        comment=f"HARD_SWISH {x.describe()} -> {y.describe()}, 16-bit fixed point (TFLite HardSwishParams)",
        call=f"te_hard_swish_s8(&{pname}, {xin}, {yout});",
        params_type="te_hard_swish_params_t",
        params={"size": x.size, "in_zp": x.zero_point, "out_zp": y.zero_point, **k},
        params_name=pname,
    )


def _lower_lut(op: Operator, ctx: LowerCtx, transform: Callable[[float], float], what: str) -> Lowered:
    x, y, xin, yout = _io(op, ctx)
    table_name = ctx.name("table")
    table = ConstArray(
        name=table_name, ctype="int8_t",
        values=lut_int8(x.scale, x.zero_point, y.scale, y.zero_point, transform),
        comment=(f"{op.opcode} table[q + 128] = clamp(roundf({what}({x.scale:.9g} * (q - {x.zero_point})) "
                 f"/ {y.scale:.9g}) + {y.zero_point}), float32 with the host C library, as TFLite's LUTPopulate"),
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

for _name, _bounds in (("RELU", "[0, inf)"), ("RELU6", "[0, 6]"), ("RELU_N1_TO_1", "[-1, 1]")):
    register(OpSpec(name=_name, lower=_lower_relu, check=_check_unary,
                    constraints=f"{_INT8_IO} (input and output may differ); clamp to {_bounds}"))
register(OpSpec(name="LEAKY_RELU", lower=_lower_leaky_relu, check=_check_unary,
                constraints=f"{_INT8_IO}; any alpha"))
register(OpSpec(name="PRELU", lower=_lower_prelu, check=_check_prelu,
                constraints="int8 input, alpha (constant or not) and output, per-tensor; alpha broadcast "
                            "to the input, rank <= 4"))
register(OpSpec(name="HARD_SWISH", lower=_lower_hard_swish, check=_check_hard_swish,
                constraints=f"{_INT8_IO} with input_scale/128 < output_scale; TFLite's 16-bit fixed point"))
register(OpSpec(name="LOGISTIC", lower=lambda op, ctx: _lower_lut(op, ctx, sigmoid_f32, "sigmoid"),
                check=_check_logistic,
                constraints="int8 in/out, per-tensor; output scale 1/256; float table as TFLite's LUTPopulate"))
register(OpSpec(name="TANH", lower=lambda op, ctx: _lower_lut(op, ctx, tanh_f32, "tanh"),
                check=_check_unary,
                constraints=f"{_INT8_IO}; float table as TFLite's LUTPopulate"))
