"""Constant layouts of the blocked kernels (runtime te_blocked.h), made on the host.

FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D (channel multiplier 1) have
kernels that read their weights 16 bytes at a time and their requantization
constants 4 lanes at a time (the Helium variant, arm_mve/te_blocked.c; the
portable te_blocked.c reads the same layouts). The op families lower to them
when the kernel set has arm_mve variants; this module only lays the numbers
out, as te_blocked.h documents:

- :func:`row_blocks`: a weight matrix [n_out][depth] as blocks of 4 rows, each
  cut into 16-byte chunks stored side by side, zero padded;
- :func:`rq4_table`: per output channel the folded bias, the Q31 multiplier
  and the exponent split into left (>= 0) and right (<= 0) shifts, 4 channels
  per entry, in any lane order the kernel needs;
- :func:`depthwise_lanes`: which channel each of the 16 lanes of each block
  computes, and the weights in that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from tinyedge import quant

ROWS = 4  # TE_BLOCK_ROWS
CHUNK = 16  # TE_BLOCK_CHUNK
LANES = 16  # TE_DW_LANES
# depthwise: rq entry slot s of a 16-lane block holds lanes 4k + LANE_REM[s], k = 0..3 (TE_DW_LANE)
LANE_REM = (0, 2, 1, 3)
MAX_DW_TAPS = 64  # the arm_mve kernel's tap pointers live in scratch; a sanity bound for the lowering


def row_blocks(w: np.ndarray) -> np.ndarray:
    """W[n_out][depth] (int8) -> filter[((b * chunks + c) * 4 + r) * 16 + i] = W[4b + r][16c + i]."""
    n_out, depth = w.shape
    blocks = -(-n_out // ROWS)
    chunks = -(-depth // CHUNK)
    padded = np.zeros((blocks * ROWS, chunks * CHUNK), dtype=np.int8)
    padded[:n_out, :depth] = w
    return padded.reshape(blocks, ROWS, chunks, CHUNK).transpose(0, 2, 1, 3).reshape(-1)


def rq4_table(bias: np.ndarray, reals: Sequence[float], per_channel: bool,
              lane_channel: Sequence[int] | None = None) -> np.ndarray:
    """The rq table (te_blocked.h) as int32 [entries][bias, mult, left, right][4].

    ``bias`` is the int32 bias with the input zero point folded in, one per
    channel; ``reals`` the effective scales (one per channel, or the first
    alone when per-tensor). Lane ``j`` of the table (entry j // 4, lane j % 4)
    holds channel ``lane_channel[j]`` (default: channel j); a negative entry
    or one past the last channel is a zero lane."""
    n = len(bias)
    mults, shifts = quant.quantize_multipliers(list(reals) if per_channel else list(reals[:1]) * n)
    order = list(range(n)) if lane_channel is None else list(lane_channel)
    entries = -(-len(order) // ROWS)
    table = np.zeros((entries, 4, ROWS), dtype=np.int64)
    for j, ch in enumerate(order):
        if 0 <= ch < n:
            shift = int(shifts[ch])
            table[j // ROWS, :, j % ROWS] = (int(bias[ch]), int(mults[ch]), max(shift, 0), min(shift, 0))
    return table.astype(np.int32).reshape(-1)


@dataclass(frozen=True)
class DepthwiseLanes:
    """How the 16-lane blocks of a depthwise kernel cover the channels."""

    flat: bool  # lanes run along the output row: stride_w 1, channels dividing 16
    blocks: int  # weight / constant blocks
    lane_channel: list[int]  # per block and lane: the channel (-1: none), blocks * 16 entries


def depthwise_lanes(channels: int, stride_w: int) -> DepthwiseLanes:
    flat = stride_w == 1 and channels < LANES and LANES % channels == 0
    if flat:
        return DepthwiseLanes(True, 1, [lane % channels for lane in range(LANES)])
    blocks = -(-channels // LANES)
    return DepthwiseLanes(False, blocks, [c if c < channels else -1 for c in range(blocks * LANES)])


def depthwise_filter(w: np.ndarray, lanes: DepthwiseLanes) -> np.ndarray:
    """w [taps][channels] (int8) -> filter[(g * taps + t) * 16 + l] = w[t][channel of lane l of block g]."""
    taps = w.shape[0]
    out = np.zeros((lanes.blocks, taps, LANES), dtype=np.int8)
    for g in range(lanes.blocks):
        for lane in range(LANES):
            ch = lanes.lane_channel[g * LANES + lane]
            if ch >= 0:
                out[g, :, lane] = w[:, ch]
    return out.reshape(-1)


def depthwise_rq_order(lanes: DepthwiseLanes) -> list[int]:
    """The channel of every rq lane: entry 4g + s, slot k = lane 4k + LANE_REM[s] of block g."""
    order = []
    for g in range(lanes.blocks):
        for s in range(4):
            order += [lanes.lane_channel[g * LANES + 4 * k + LANE_REM[s]] for k in range(ROWS)]
    return order


def depthwise_scratch_bytes(k_h: int, k_w: int, dil_h: int, span_w: int, channels: int) -> int:
    """TE_DW_BLOCKED_SCRATCH_BYTES (te_blocked.h): tap pointers, ring tags, zero-point row and ring."""
    span_h = (k_h - 1) * dil_h + 1
    return 8 * k_h * k_w + 8 * ((span_h + 1) // 2) + (span_h + 1) * span_w * channels + LANES
