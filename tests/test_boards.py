"""Board files, their derived values, and the firmware templates they drive.

Memory maps and UART addresses are checked against DESIGN.md's table and the
QEMU sources named in each board file; divisors against the peripherals'
reference-manual formulas.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from tinyedge.boards import UART_DRIVERS, Board, firmware_files, list_boards, load_board
from tinyedge.errors import TinyEdgeError
from tinyedge.resources import templates_dir

ALL_BOARDS = ["lm3s6965evb", "microbit", "mps2-an385", "mps2-an386", "mps2-an500",
              "mps2-an505", "mps3-an547", "netduinoplus2"]   # the emulated boards
REAL_BOARDS = ["nrf52840-dk", "nucleo-f746zg", "nucleo-h743zi2", "nucleo-l4r5zi", "stm32f4-discovery"]
LIBRARY_BOARDS = [f"generic-cortex-{c}" for c in ("m0", "m3", "m33", "m4", "m55", "m7")]


def test_all_boards_listed() -> None:
    assert list_boards() == sorted(ALL_BOARDS + REAL_BOARDS + LIBRARY_BOARDS)
    assert [b for b in list_boards() if load_board(b).qemu_machine] == ALL_BOARDS


def test_default_board_matches_design() -> None:
    b = load_board("mps2-an386")
    assert (b.core, b.fpu, b.qemu_machine) == ("cortex-m4", "fpv4-sp-d16", "mps2-an386")
    assert (b.flash_origin, b.flash_size) == (0x0, 4 << 20)
    assert (b.ram_origin, b.ram_size) == (0x2000_0000, 4 << 20)
    assert (b.uart.driver, b.uart.base) == ("cmsdk", 0x4000_4000)
    assert b.clock_hz == 25_000_000
    assert b.instructions_per_tick == 40.0
    assert b.cpu_flags == ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]
    assert b.has_fpu and b.has_dsp and not b.has_mve


@pytest.mark.parametrize("name", ALL_BOARDS)
def test_board_is_consistent(name: str) -> None:
    b = load_board(name)
    assert b.name == name and b.description
    assert f"-mcpu={b.core}" in b.cpu_flags
    assert b.flash_end <= b.ram_origin or b.ram_end <= b.flash_origin  # no overlap
    assert b.stack_size < b.ram_size
    assert b.qemu_machine                                    # all eight are emulated
    assert b.instructions_per_tick and b.instructions_per_tick > 0
    # SysTick under -icount shift=0 ticks at the CPU clock QEMU models: 1e9 ns / clock.
    assert b.instructions_per_tick == pytest.approx(1e9 / _qemu_cpu_clock(b), rel=1e-6)


def _qemu_cpu_clock(b: Board) -> float:
    # The CPU clocks QEMU 7.2 gives each machine (hw/arm/*.c), not the board files.
    return {"mps2-an385": 25e6, "mps2-an386": 25e6, "mps2-an500": 25e6, "mps2-an505": 20e6,
            "mps3-an547": 32e6, "lm3s6965evb": 12.5e6, "netduinoplus2": 168e6,
            "microbit": 16e6}[b.name]


@pytest.mark.parametrize("name,uart", [
    ("mps2-an385", ("cmsdk", 0x4000_4000)), ("mps2-an500", ("cmsdk", 0x4000_4000)),
    ("mps2-an505", ("cmsdk", 0x5020_0000)), ("mps3-an547", ("cmsdk", 0x5930_3000)),
    ("lm3s6965evb", ("stellaris", 0x4000_C000)), ("netduinoplus2", ("stm32", 0x4001_1000)),
    ("microbit", ("nrf51", 0x4000_2000)),
])
def test_uart_family_and_address(name: str, uart: tuple[str, int]) -> None:
    b = load_board(name)
    assert (b.uart.driver, b.uart.base) == uart


def test_baud_divisors_follow_the_reference_manuals() -> None:
    defs = {n: v for n, v, _ in load_board("mps2-an386").c_defines()}
    assert defs["TE_UART_BAUDDIV"] == "217u"                 # 25e6 / 115200 = 217.01
    defs = {n: v for n, v, _ in load_board("lm3s6965evb").c_defines()}
    # 12.5e6 / (16 * 115200) = 6.78 -> IBRD 6, FBRD round(0.78 * 64) = 50
    assert (defs["TE_UART_IBRD"], defs["TE_UART_FBRD"]) == ("6u", "50u")
    defs = {n: v for n, v, _ in load_board("netduinoplus2").c_defines()}
    assert defs["TE_UART_BRR"] == "0x008Bu"                  # 16e6 / 115200 = 138.9 -> 139
    defs = {n: v for n, v, _ in load_board("microbit").c_defines()}
    assert defs["TE_UART_BAUDRATE_REG"] == "0x01D7E000u"     # nRF51 RM: 115200 baud


def test_unknown_board_lists_known_ones() -> None:
    with pytest.raises(TinyEdgeError) as err:
        load_board("mps2-an999")
    assert "mps2-an999" in err.value.message
    for name in ALL_BOARDS:
        assert name in err.value.hint


GOOD = """
name = "{name}"
description = "test board"
core = "cortex-m4"
fpu = "fpv4-sp-d16"
clock_hz = 1_000_000
[memory]
flash_origin = 0
flash_size = 0x1000
ram_origin = 0x2000_0000
ram_size = 0x1000
stack_size = 0x400
[uart]
driver = "cmsdk"
base = 0x4000_4000
baud = 9600
"""


def _write(tmp_path: Path, text: str, name: str = "myboard") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text.format(name=name))
    return path


def test_board_from_path(tmp_path: Path) -> None:
    b = load_board(str(_write(tmp_path, GOOD)))
    assert b.name == "myboard" and b.qemu_machine is None and b.instructions_per_tick is None


@pytest.mark.parametrize("change,message", [
    (("fpu = \"fpv4-sp-d16\"", "fpu = \"fpv5-d16\""), "not valid for cortex-m4"),
    (("core = \"cortex-m4\"", "core = \"cortex-m99\""), "unknown core"),
    (("baud = 9600", "baud = 9600\nbuad = 1"), "unknown key"),
    (("clock_hz = 1_000_000", "clock_hz = \"fast\""), "must be an integer"),
    (("driver = \"cmsdk\"", "driver = \"pl011\""), "driver 'pl011' unknown"),
    (("baud = 9600", "baud = 115200"), "BAUDDIV"),
    (("stack_size = 0x400", "stack_size = 0x2000"), "stack_size"),
    (("baud = 9600", "baud = 9600\n[oops]\nx = 1"), "unknown key.*oops"),
])
def test_bad_board_files_are_user_errors(tmp_path: Path, change: tuple[str, str],
                                         message: str) -> None:
    text = GOOD.replace(*change)
    with pytest.raises(TinyEdgeError, match=message) as err:
        load_board(str(_write(tmp_path, text)))
    assert "boards/README.md" in err.value.hint


def test_name_must_match_file(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text(GOOD.format(name="myboard"))
    with pytest.raises(TinyEdgeError, match="does not match"):
        load_board(str(path))


@pytest.mark.parametrize("name", ALL_BOARDS + REAL_BOARDS)
def test_firmware_files_exist_and_render(name: str) -> None:
    board = load_board(name)
    files = firmware_files(board)
    outputs = [out for _, out in files]
    assert len(set(outputs)) == len(outputs)
    for required in ("Makefile", "CMakeLists.txt", "board/linker.ld", "board/board.h",
                     "board/startup.c", "app/main.c", "app/te_protocol.c", "app/te_protocol.h",
                     f"board/uart_{UART_DRIVERS[board.uart.driver]}.c"):
        assert required in outputs
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    context = {"board": board, "model_name": "m", "model_sha256": "00" * 32,
               "arena_bytes": 1024, "version": "0.1.0"}
    for template, output in files:
        assert (templates_dir() / template).is_file(), template
        if template.endswith(".j2"):
            text = env.get_template(template).render(**context)
            assert "{{" not in text and "{%" not in text
            if output == "board/linker.ld":
                assert f"ORIGIN = 0x{board.ram_origin:08X}" in text
            if output == "board/board.h":
                assert f'#define TE_BOARD_NAME "{name}"' in text
                assert f"0x{board.uart.base:08X}u" in text
                for w in board.init_writes:
                    assert f"0x{w.address:08X}u" in text
