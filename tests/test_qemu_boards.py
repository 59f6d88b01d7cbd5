"""Every emulated board end to end: build the fake-network project (with the
whole runtime, -Werror, for that core), boot it in QEMU, HELLO, inferences,
and the tick rate: the timed loop of 2,000,000 instructions must read
2,000,000 / instructions_per_tick ticks (plus the timing overhead), where instructions_per_tick is
1e9 ns / the CPU clock QEMU 7.2 models (see test_boards.py)."""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

import pytest

from conftest import require_tool

from tinyedge.boards import list_boards, load_board
from tinyedge.device import DeviceClient
from tinyedge.emulator import QemuInstance

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "fake_net"))
from make_project import build, expected_outputs, make_project  # noqa: E402

pytestmark = pytest.mark.emulator


EMULATED = [b for b in list_boards() if load_board(b).qemu_machine]


@pytest.mark.parametrize("name", [b for b in EMULATED if b != "mps2-an386"])
def test_board_end_to_end(name: str, tmp_path: Path) -> None:
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "make"):
        require_tool(tool)
    board = load_board(name)
    proj = make_project(board, tmp_path / name, full_runtime=True)
    build(proj)
    rng = random.Random(name)
    with QemuInstance(board, proj / "build" / "firmware.elf") as qemu, \
            DeviceClient(qemu.url, timeout=5) as client:
        info = client.hello()
        assert (info.board, info.core, info.clock_hz) == (name, board.core, board.clock_hz)
        for _ in range(2):
            image, bias = rng.randbytes(400), rng.randbytes(3)
            assert client.infer([image, bias]).outputs == expected_outputs(image, bias)
        cal = client.calibrate(1_000_000)
        # The count does not depend on when the request arrived: the same work, after
        # UART traffic of random lengths (random SysTick phases), reads the same ticks.
        ticks = set()
        for _ in range(12):
            client.echo(rng.randbytes(rng.randrange(0, 200)))
            ticks.add((client.calibrate(12_345).ticks, client.infer([image, bias]).ticks))
        assert len(ticks) == 1, ticks
    ipt = board.instructions_per_tick
    assert ipt
    # The two board_ticks() reads around the loop add some 40-60 instructions.
    assert 2_000_000 / ipt - 1 <= cal.ticks <= (2_000_000 + 64) / ipt + 1
