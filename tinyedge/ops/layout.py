"""Constant layouts for the SMLAD kernels (runtime/te_conv_fast.h, te_fc_fast.h,
te_dw_fast.h), computed on the host: weights widened to int16 and interleaved
in each kernel's access order, and one record per output channel with the
bias and the requantization constants.

Why int16: SMLAD multiplies two pairs of signed halfwords. An activation
word is widened once (SXTB16 makes the pairs (byte 0, byte 2) and (byte 1,
byte 3)) and reused for many output channels; weights widened on the host
cost no instruction at run time. Every weight group below pairs depth d with
d + 2 and d + 1 with d + 3 to match SXTB16.

The requantization record ``{bias, mult, rshift, round_zp}`` lets a kernel
requantize with one SMMULR: TFLM's MultiplyByQuantizedMultiplier (double
rounding) is, for a right shift ``rs`` >= 1 and ``|acc| < 2^30``,

    hi  = SMMULR(2 * acc, mult)          = SRDHM(acc, mult) exactly
    out = (hi + round_zp + (hi >> 31)) >> rs
        = RoundingDivideByPOT(hi, rs) + output_zero_point,

with ``round_zp = 2^(rs-1) + output_zero_point * 2^rs`` (adding zp * 2^rs
before a floor shift adds exactly zp; ``hi >> 31`` is the -1 that makes ties
go away from zero). :func:`requant_records` proves those conditions on the
host for every input the channel can see (from the weights, inputs in
[-128, 127]), and that ``round_zp`` fits the record's int32 and no sum above
overflows one; a channel whose output is one constant over all of them (dead
channels: zero weights, or a huge bias with a tiny multiplier) is rewritten
as that constant (zero weights, bias 4v, mult 2^30, rshift 1). When a
channel fits neither, the op keeps the generic kernel. The portable
implementations read the same records and requantize with
te_mul_by_quantized_mult(acc, mult, -rshift) + zero point: the same integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyedge import quant

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
RECORD_FIELDS = 4  # te_chan_t: bias, mult, rshift, round_zp


@dataclass
class Records:
    values: np.ndarray  # int32 [n][4]
    constant: np.ndarray  # bool [n]: channels rewritten to a constant (their weights must read 0)
    constant_value: np.ndarray  # int [n]: what a constant channel outputs (0 for the others)

    def live(self) -> np.ndarray:
        """The channels a kernel must compute (at least one: a kernel computes >= 1)."""
        idx = np.flatnonzero(~self.constant)
        return idx if idx.size else np.array([0])


def acc_range(bias: np.ndarray, w_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, the least and greatest int32 accumulator over every int8 input:
    bias + sum of each weight times -128 or 127, whichever is smaller / larger."""
    w = w_rows.astype(np.int64)
    lo = bias.astype(np.int64) + np.where(w > 0, -128 * w, 127 * w).sum(axis=1)
    hi = bias.astype(np.int64) + np.where(w > 0, 127 * w, -128 * w).sum(axis=1)
    return lo, hi


def _tflm_out(acc: int, mult: int, shift: int, zp: int, act_min: int, act_max: int) -> int:
    return min(max(quant.mul_by_quantized_multiplier(acc, mult, shift) + zp, act_min), act_max)


def _constant_record(value: int, zp: int) -> list[int]:
    """A channel that outputs ``value`` whatever its (zero) weights see: bias 4v, v = value - zp."""
    v = value - zp
    return [4 * v, 1 << 30, 1, 1 + 2 * zp]


def channel_record(lo: int, hi: int, bias: int, mult: int, shift: int, zp: int, act_min: int,
                   act_max: int) -> tuple[list[int], int | None] | None:
    """One channel whose accumulator lies in [lo, hi] for every input: (its record, the
    constant it always outputs or None), or None when the fast requantization cannot
    reproduce TFLM's output over that range."""
    if lo < INT32_MIN or hi > INT32_MAX or mult < 0:
        return None
    if max(-lo, hi) << max(shift, 0) <= INT32_MAX:  # no wrap: TFLM's output is monotonic in acc
        first = _tflm_out(lo, mult, shift, zp, act_min, act_max)
        if first == _tflm_out(hi, mult, shift, zp, act_min, act_max):
            return _constant_record(first, zp), first
    rs = -shift
    if rs < 1 or lo < -(1 << 30) or hi >= (1 << 30):
        return None
    round_zp = (1 << (rs - 1)) + zp * (1 << rs)
    if not INT32_MIN <= round_zp <= INT32_MAX:
        # te_chan_t holds it as an int32_t (a large shift with a large zero point: zp * 2^rs)
        return None
    if quant.srdhm(lo, mult) + round_zp - 1 < INT32_MIN or quant.srdhm(hi, mult) + round_zp > INT32_MAX:
        return None
    return [bias, mult, rs, round_zp], None


def requant_records(bias: np.ndarray, w_rows: np.ndarray, mults: np.ndarray, shifts: np.ndarray,
                    zp: int, act_min: int, act_max: int) -> Records | None:
    """The record of every channel (``w_rows[c]``: the weights channel c sums), or None
    when some channel cannot take the fast requantization exactly."""
    lo, hi = acc_range(bias, w_rows)
    n = len(bias)
    values = np.zeros((n, RECORD_FIELDS), np.int64)
    constant = np.zeros(n, bool)
    constant_value = np.zeros(n, np.int64)
    for c in range(n):
        got = channel_record(int(lo[c]), int(hi[c]), int(bias[c]), int(mults[c]), int(shifts[c]), zp,
                             act_min, act_max)
        if got is None:
            return None
        values[c], value = got
        if value is not None:
            constant[c], constant_value[c] = True, value
    assert values.min() >= INT32_MIN and values.max() <= INT32_MAX, "te_chan_t fields are int32_t"
    return Records(values.astype(np.int32), constant, constant_value)


def fast_requant(acc: int, record: np.ndarray) -> int:
    """What the SMLAD kernels compute from a record (before the clamp), on Python ints."""
    _, mult, rs, round_zp = (int(v) for v in record)
    two = ((2 * acc + (1 << 31)) % (1 << 32)) - (1 << 31)
    hi = (two * mult + (1 << 31)) >> 32  # SMMULR
    return (hi + round_zp + (hi >> 31)) >> rs


def _pad(w: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros((rows, cols), np.int64)
    out[:w.shape[0], :w.shape[1]] = w
    return out


def _sxtb16_order(w: np.ndarray) -> np.ndarray:
    """[..., depth4] -> [..., groups, 2, 2]: per group of 4 depth, the pairs (d, d+2) and (d+1, d+3)."""
    g = w.reshape(*w.shape[:-1], -1, 4)
    return np.stack([g[..., [0, 2]], g[..., [1, 3]]], axis=-2)


def depth4(depth: int) -> int:
    return (depth + 3) // 4 * 4


def pack_conv(w_rows: np.ndarray, k_h: int = 1) -> np.ndarray:
    """te_conv_fast.h's filter: output channels in pairs (an odd last one paired with zeros);
    each channel's weights as k_h filter rows, each zero-padded to a multiple of 4; per pair,
    per group of 4 depth d..d+3, the int16 words [A(o0) A(o1) B(o0) B(o1)] with
    A = (w[d], w[d+2]), B = (w[d+1], w[d+3])."""
    n, depth = w_rows.shape
    row = depth // k_h
    rows = np.zeros((n, k_h, depth4(row)), np.int64)
    rows[:, :, :row] = w_rows.reshape(n, k_h, row)
    w_rows = rows.reshape(n, -1)
    pairs = (n + 1) // 2
    w = _sxtb16_order(_pad(w_rows, 2 * pairs, w_rows.shape[1]))  # [2P][G][2 (A,B)][2]
    w = w.reshape(pairs, 2, -1, 2, 2).transpose(0, 2, 3, 1, 4)  # [P][G][A,B][o0,o1][2]
    return w.reshape(-1).astype(np.int16)


def pack_fc(w_rows: np.ndarray) -> np.ndarray:
    """te_fc_fast.h's weights: output units in blocks of 4 (padded with zero rows), depth
    padded to a multiple of 4; per block, per group of 4 depth, for each of the 4 units the
    int16 words [A B] (A = (w[d], w[d+2]), B = (w[d+1], w[d+3]))."""
    n, depth = w_rows.shape
    blocks = (n + 3) // 4
    w = _sxtb16_order(_pad(w_rows, 4 * blocks, depth4(depth)))  # [4B][G][2][2]
    w = w.reshape(blocks, 4, -1, 2, 2).transpose(0, 2, 1, 3, 4)  # [B][G][unit][A,B][2]
    return w.reshape(-1).astype(np.int16)


def pack_depthwise(w_taps: np.ndarray) -> np.ndarray:
    """te_dw_fast.h's filter from [taps][channels]: channels in quads (the last padded with
    zeros); per quad, per tap, the int16 words [(w[c], w[c+2]) (w[c+1], w[c+3])]."""
    taps, n = w_taps.shape
    quads = (n + 3) // 4
    w = _pad(w_taps, taps, 4 * quads).reshape(taps, quads, 4).transpose(1, 0, 2)  # [Q][T][4]
    return w[..., [0, 2, 1, 3]].reshape(-1).astype(np.int16)
