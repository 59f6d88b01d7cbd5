"""The fast kernels' requantization records (tinyedge/ops/layout.py): what the host emits
fits the kernels' te_chan_t (int32_t fields), or the op keeps the generic kernel.

The arithmetic of the records is checked end to end against TFLM by the kernel tests
(test_kernels_conv_fc.py, test_qemu_conv_fc.py); here, the record's own range: a large
right shift with a large output zero point makes round_zp = 2^(rs-1) + zp * 2^rs leave
int32 while every sum the kernel forms from it stays inside. Emitted wrapped, the
kernel's `hi + round_zp` then overflows a signed int (undefined behaviour in C).
"""

from __future__ import annotations

import pytest

from tinyedge.ops import layout

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


@pytest.mark.parametrize("mult, shift, zp, lo, hi", [
    # found by a random search over records (i9-hunt): round_zp = 2^24 - 67 * 2^25 < -2^31
    (1 << 30, -25, -67, 644167601, 952336403),
    ((1 << 31) - 1, -26, -36, 700228649, 1048998989),
    # the same with a positive zero point: round_zp > 2^31 - 1
    (1 << 30, -25, 70, -952336403, -644167601),
])
def test_record_fields_fit_int32(mult: int, shift: int, zp: int, lo: int, hi: int) -> None:
    got = layout.channel_record(lo, hi, 0, mult, shift, zp, -128, 127)
    if got is not None:
        record, _ = got
        assert all(INT32_MIN <= v <= INT32_MAX for v in record), record

