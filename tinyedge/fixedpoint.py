"""gemmlowp's 32-bit fixed-point math functions on Python ints, for host-side tables.

TensorFlow Lite Micro's int8 LOGISTIC, TANH and SOFTMAX kernels
(``reference_integer_ops::Logistic`` / ``Tanh``, ``reference_ops::Softmax``)
evaluate their transcendentals with gemmlowp's fixed-point functions
(``fixedpoint/fixedpoint.h``, the header TFLM builds against, public under
Apache-2.0). This module is our own implementation of what those functions
compute, for scalar ``int32`` raw values, written from that header's formulas:

- a value ``FixedPoint<int32, m>`` is a raw int32 ``r`` meaning ``r / 2^(31 - m)``;
- ``a * b`` of two fixed-point values is ``SaturatingRoundingDoublingHighMul``
  of the raws (:func:`tinyedge.quant.srdhm`) and the integer bits add up;
- ``+``, ``-`` and negation are plain int32 arithmetic (C++ wraps on overflow
  in practice; :func:`wrap32` does the same -- no call below overflows for the
  inputs TFLM's kernels give them);
- ``Rescale<dst>(x)`` from ``src`` integer bits is
  ``SaturatingRoundingMultiplyByPOT<src - dst>``: a saturating left shift or a
  rounding right shift (:func:`rescale`).

Everything is exact integer arithmetic: the results depend on nothing but the
arguments (no float, no host C library), so a table computed here is the same
on every host and is bit for bit what TFLM computes on any target. The
integer-only kernels that use these functions at generate time are in
tinyedge/ops/activations.py (LOGISTIC, TANH) and tinyedge/ops/softmax.py.
"""

from __future__ import annotations

from tinyedge.quant import rounding_divide_by_pot, srdhm

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

# gemmlowp's raw constants (the Q0/Q2 fixed-point values named in the comments)
_EXP_MINUS_ONE_EIGHTH_Q0 = 1895147668  # exp(-1/8)
_ONE_THIRD_Q0 = 715827883  # 1/3
_48_OVER_17_Q2 = 1515870810  # 48/17
_MINUS_32_OVER_17_Q2 = -1010580540  # -32/17
# exp(-2^k) in Q0 for k = -2..4: the "barrel shifter" of exp_on_negative_values
_EXP_MINUS_POT_Q0 = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                     (2, 39332535), (3, 720401), (4, 242))


def wrap32(x: int) -> int:
    """``x`` reduced to a signed 32-bit integer (two's complement wrap-around)."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturating_rounding_mul_by_pot(x: int, exponent: int) -> int:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT<exponent>`` on an int32: ``x * 2^exponent``,
    saturated to int32 for ``exponent > 0``, rounded to nearest (ties away from 0) for ``< 0``."""
    if exponent > 0:
        threshold = (1 << (31 - exponent)) - 1
        if x > threshold:
            return INT32_MAX
        if x < -threshold:
            return INT32_MIN
        return x << exponent
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    return x


def rescale(x: int, src_integer_bits: int, dst_integer_bits: int) -> int:
    """gemmlowp ``Rescale<dst>`` of a raw value with ``src_integer_bits`` integer bits."""
    return saturating_rounding_mul_by_pot(x, src_integer_bits - dst_integer_bits)


def rounding_half_sum(a: int, b: int) -> int:
    """gemmlowp ``RoundingHalfSum`` on int32: ``(a + b) / 2`` rounded, ties away from zero
    (the C++ division truncates toward zero after adding the sign)."""
    s = a + b
    s += 1 if s >= 0 else -1
    q = abs(s) // 2
    return q if s >= 0 else -q


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    """exp(a) for a Q0 raw ``a`` in [-1/4, 0): a 4th-order Taylor expansion around -1/8. Q0 result."""
    x = wrap32(a + (1 << 28))  # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = saturating_rounding_mul_by_pot(x4, -2)
    poly = saturating_rounding_mul_by_pot(wrap32(srdhm(wrap32(x4_over_4 + x3), _ONE_THIRD_Q0) + x2), -1)
    return wrap32(_EXP_MINUS_ONE_EIGHTH_Q0 + srdhm(_EXP_MINUS_ONE_EIGHTH_Q0, wrap32(x + poly)))


def exp_on_negative_values(a: int, integer_bits: int) -> int:
    """gemmlowp ``exp_on_negative_values`` of a raw value with ``integer_bits`` integer bits
    (meant for a <= 0): exp of the fractional quarter by the polynomial, then one multiply by
    exp(-2^k) per set bit of the rest. Q0 result (``INT32_MAX`` stands for 1.0)."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = wrap32((a & (one_quarter - 1)) - one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0))
    remainder = wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_MINUS_POT_Q0:
        if integer_bits > exponent and remainder & (1 << (fractional_bits + exponent)):
            result = srdhm(result, multiplier)
    if integer_bits > 5 and a < -(1 << (36 - integer_bits)):  # below -32: exp is 0
        result = 0
    return INT32_MAX if a == 0 else result


def _newton_raphson_reciprocal_q2(a: int) -> tuple[int, int]:
    """The shared core of gemmlowp's two divisions: ``half_denominator = (a + 1) / 2`` (Q0) and
    ``x ~ 1 / half_denominator`` (Q2) after three Newton-Raphson steps from 48/17 - 32/17 * d."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = wrap32(_48_OVER_17_Q2 + srdhm(half_denominator, _MINUS_32_OVER_17_Q2))
    one_q2 = 1 << 29
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)  # Q2
        one_minus = wrap32(one_q2 - half_denominator_times_x)  # Q2
        x = wrap32(x + rescale(srdhm(x, one_minus), 4, 2))  # Q2 * Q2 = Q4, back to Q2
    return half_denominator, x


def one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    """gemmlowp ``one_over_one_plus_x_for_x_in_0_1``: 1 / (1 + a) for a Q0 raw ``a`` in (0, 1). Q0."""
    _, x = _newton_raphson_reciprocal_q2(a)
    return rescale(x, 1, 0)  # ExactMulByPot<-1>: Q2 -> Q1 (same raw), then Rescale<0>


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    """gemmlowp ``one_minus_x_over_one_plus_x_for_x_in_0_1``: (1 - a) / (1 + a), Q0 in and out."""
    _, x = _newton_raphson_reciprocal_q2(a)
    return rescale(wrap32(x - (1 << 29)), 2, 0)


def logistic(a: int, integer_bits: int) -> int:
    """gemmlowp ``logistic`` of a raw value with ``integer_bits`` integer bits. Q0 result."""
    if a == 0:
        return 1 << 30  # one half
    on_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap32(-abs(a)), integer_bits))
    return on_positive if a > 0 else wrap32(INT32_MAX - on_positive)


def tanh(a: int, integer_bits: int) -> int:
    """gemmlowp ``tanh`` of a raw value with ``integer_bits`` integer bits. Q0 result."""
    if a == 0:
        return 0
    # -tanh(n) for n = -|a| <= 0, from exp(2n): ExactMulByPot<1> adds one integer bit
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap32(-abs(a)), integer_bits + 1))
    return wrap32(-t) if a < 0 else t

