"""Host-side quantization arithmetic shared by every lowering.

Everything here reproduces, on the host, the integer parameters TensorFlow
Lite Micro's kernels (the oracle, see DESIGN.md) derive in their Prepare from
a model's float scales, so that the firmware's kernels can take them as
constants:

- :func:`quantize_multiplier` is ``QuantizeMultiplier``
  (kernels/internal/quantization_util.cc): ``frexp`` the real multiplier into
  a mantissa in [0.5, 1) and an exponent, round the mantissa to Q31 (half away
  from zero, ``std::round``), renormalize when it rounds up to 2^31, flush
  exponents below -31 to zero. :func:`multiplier_exponent` is the exponent it
  gives before any saturation (TFLM's default double-rounding build does not
  saturate; exponents above 30 make its MultiplyByQuantizedMultiplier shift
  by 31 bits or more, so the ops refuse them).
- the effective-scale helpers reproduce how the kernels compute the real
  multiplier in double precision (including where a float32 product is taken
  first), because a one-ulp difference in the double can change the Q31
  mantissa.
- :func:`activation_range` is ``CalculateActivationRangeQuantized``
  (kernels/kernel_util.cc), including its refusal of bounds beyond int32.

All functions are pure and vectorize over channels by plain Python loops;
they run once per op at generate time.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

INT8_MIN = -128
INT8_MAX = 127


MAX_LEFT_SHIFT = 30  # MultiplyByQuantizedMultiplier's x * (1 << shift) needs shift <= 30


def _frexp_q31(real: float) -> tuple[int, int]:
    """QuantizeMultiplier's mantissa and exponent before the flush/saturation steps."""
    if not math.isfinite(real):
        raise ValueError(f"cannot quantize a non-finite multiplier ({real})")
    q, shift = math.frexp(real)  # real = q * 2^shift, 0.5 <= |q| < 1
    scaled = q * float(1 << 31)  # exact: only the exponent changes
    # std::round: half away from zero. |scaled| >= 2^30, so +0.5 is exact.
    q_fixed = int(math.floor(abs(scaled) + 0.5))
    if scaled < 0:
        q_fixed = -q_fixed
    if abs(q_fixed) == (1 << 31):
        q_fixed //= 2
        shift += 1
    return q_fixed, shift


def multiplier_exponent(real: float) -> int:
    """The exponent TFLM's QuantizeMultiplier gives ``real`` (0 for 0 or a flushed multiplier).

    Above :data:`MAX_LEFT_SHIFT` TFLM's double-rounding MultiplyByQuantizedMultiplier
    computes ``x * (1 << shift)`` with a shift of 31 or more: undefined in C++.
    """
    if real == 0.0:
        return 0
    _, shift = _frexp_q31(real)
    return 0 if shift < -31 else shift


def quantize_multiplier(real: float) -> tuple[int, int]:
    """``real`` as ``(mult, shift)`` with real ~= mult * 2^shift / 2^31, like TFLM.

    ``mult`` is a Q31 int32 in [2^30, 2^31) (or 0, or negative for a negative
    ``real``); ``shift`` is the exponent: positive means left shift. An
    exponent above 30 (``real`` >= 2^30), which TFLM has no defined result
    for, is saturated to (2^31 - 1, 30); ops check :func:`multiplier_exponent`
    and refuse such multipliers first.
    """
    if real == 0.0:
        return 0, 0
    q_fixed, shift = _frexp_q31(real)
    if shift < -31:  # everything would be shifted out: flush to zero
        return 0, 0
    if shift > MAX_LEFT_SHIFT:
        return (1 << 31) - 1, MAX_LEFT_SHIFT
    return int(q_fixed), int(shift)


def quantize_multipliers(reals: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel :func:`quantize_multiplier`: two int32 arrays (mults, shifts)."""
    pairs = [quantize_multiplier(float(r)) for r in reals]
    mults = np.array([m for m, _ in pairs], dtype=np.int32)
    shifts = np.array([s for _, s in pairs], dtype=np.int32)
    return mults, shifts


def f32(x: float | np.floating) -> float:
    """Round a Python float (double) to float32 and back, like a C++ ``float``."""
    return float(np.float32(x))


def conv_effective_scales(input_scale: float, filter_scales: Sequence[float],
                          output_scale: float, n_channels: int) -> list[float]:
    """Real multipliers of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED, one per output channel.

    ``double(input_scale) * double(filter_scale[c]) / double(output_scale)``, all in
    double; a per-tensor filter scale is broadcast to every channel. That is TFLM's
    ``PopulateConvolutionQuantizationParams`` (CONV_2D, DEPTHWISE_CONV_2D), its
    per-channel FULLY_CONNECTED path, and -- in the pinned ``tflite-micro`` wheel --
    its per-tensor FULLY_CONNECTED path too: that wheel's
    ``GetQuantizedConvolutionMultipler`` converts both scales to double before
    multiplying (its machine code: two cvtss2sd, mulsd, divsd), where TFLite and
    the TFLM source snapshot of Aug 2026 multiply the float32 scales first.
    tests/test_kernels_conv_fc.py pins the difference against the TFLM interpreter.
    """
    if len(filter_scales) not in (1, n_channels):
        raise ValueError(f"{len(filter_scales)} filter scales for {n_channels} channels")
    scales = list(filter_scales) if len(filter_scales) == n_channels else [filter_scales[0]] * n_channels
    return [float(input_scale) * float(s) / float(output_scale) for s in scales]


def activation_range(activation: str, scale: float, zero_point: int,
                     qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[int, int]:
    """TFLM's ``CalculateActivationRangeQuantized`` for a fused activation.

    Quantizes the real bounds of the activation with the output's scale and
    zero point (``zero_point + round(x / scale)``, the division in float32 and
    ``TfLiteRound``'s half away from zero, as its ``Quantize`` helper does),
    intersected with [qmin, qmax]. ``activation`` is one of NONE, RELU, RELU6,
    RELU_N1_TO_1. Raises ValueError where TFLM's Prepare fails: a rounded
    bound outside int32 (a tiny or non-finite scale); a bound of exactly 2^31,
    which TFLM's check lets through into an undefined float-to-int32
    conversion, is refused too.
    """
    def quantize(x: float) -> int:
        with np.errstate(all="ignore"):
            q = float(np.float32(np.float32(x) / np.float32(scale)))
        r = math.copysign(math.floor(abs(q) + 0.5), q) if math.isfinite(q) else q
        if not -2.0 ** 31 <= r < 2.0 ** 31:
            raise ValueError(f"{activation}: the bound {x:g} is {q:g} output quanta (scale {scale:g}), "
                             "beyond int32: TFLM's CalculateActivationRangeQuantized refuses it")
        return int(zero_point) + int(r)

    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    raise ValueError(f"unsupported fused activation {activation}")


# ---- integer reference arithmetic (for host-side tests and tools) -------------------


def srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul on Python ints."""
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    q = abs(v) >> 31  # C division truncates toward zero
    return q if v >= 0 else -q


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT: round to nearest, ties away from zero."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mul_by_quantized_multiplier(x: int, mult: int, shift: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier, double rounding (default build)."""
    left = max(shift, 0)
    right = max(-shift, 0)
    shifted = ((x << left) + (1 << 31)) % (1 << 32) - (1 << 31)  # int32 wrap
    return rounding_divide_by_pot(srdhm(shifted, mult), right)
