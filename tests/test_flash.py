"""`tinyedge flash` without hardware: a fake GDB server with a modelled chip behind it
(tests/fixtures/fake_gdb_server.py), ELF files built byte by byte here, pyOCD's
real probe discovery (no probe is attached on this machine), and the probe and
port selection rules."""

from __future__ import annotations

import dataclasses
import json
import os
import struct
import subprocess
import sys
import tty
from pathlib import Path

import pytest

from conftest import require_tool

from tinyedge.boards import load_board
from tinyedge.errors import TinyEdgeError
from tinyedge.flash import FlashReport, check_core, flash_firmware
from tinyedge.flash_gdb import erase_ranges
from tinyedge.flash_image import Segment, load_image, read_segments
from tinyedge.gdb_rsp import MemoryRegion
from tinyedge.probes import ProbeInfo, SerialPort, check_probe_target, find_board_port, select_probe

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from fake_gdb_server import FakeGdbServer, Region  # noqa: E402

BOARD = load_board("netduinoplus2")       # STM32F405: flash 0x08000000 (1 MiB), RAM 0x20000000 (128 KiB)
FLASH, RAM = 0x0800_0000, 0x2000_0000
STACK_TOP = RAM + 0x2_0000
BLOCK = 0x800


def make_elf(path: Path, segments: list[tuple[int, int, bytes, int]]) -> Path:
    """A 32-bit little-endian Arm ELF with one PT_LOAD per (paddr, vaddr, bytes, memsz)."""
    ehsize, phentsize = 52, 32
    phoff = ehsize
    data_off = phoff + phentsize * len(segments)
    header = struct.pack("<4sBBBB8xHHIIIIIHHHHHH", b"\x7fELF", 1, 1, 1, 0, 2, 40, 1,
                         segments[0][0] | 1, phoff, 0, 0x05000400, ehsize, phentsize, len(segments), 40, 0, 0)
    phdrs, blobs, off = b"", b"", data_off
    for paddr, vaddr, blob, memsz in segments:
        phdrs += struct.pack("<8I", 1, off, vaddr, paddr, len(blob), memsz, 5, 4)
        blobs += blob
        off += len(blob)
    path.write_bytes(header + phdrs + blobs)
    return path


def code_bytes(n: int) -> bytes:
    """Bytes with everything the protocol must escape or may run-length encode."""
    pattern = b"#$}*" + bytes(range(256)) + b"\x00" * 40 + b"\xff" * 33
    return (pattern * (n // len(pattern) + 1))[:n]


@pytest.fixture
def firmware(tmp_path: Path) -> dict[str, object]:
    vectors = struct.pack("<II", STACK_TOP, FLASH + 0x201)
    text = vectors + code_bytes(0x1400 - 8)            # 0x08000000..0x080013ff
    data = bytes(range(64))                            # .data: runs at RAM, loaded at 0x08001400
    elf = make_elf(tmp_path / "fw.elf", [
        (FLASH, FLASH, text, len(text)),
        (FLASH + 0x1400, RAM, data, len(data)),
        (FLASH + 0x1440, RAM + 0x40, b"", 0x100),          # .bss: nothing to load
    ])
    return {"elf": elf, "flash": {FLASH: text, FLASH + 0x1400: data}}


def chip(**kw: object) -> FakeGdbServer:
    regions = [Region("flash", FLASH, 0x1_0000, BLOCK), Region("ram", RAM, 0x2_0000)]
    return FakeGdbServer(regions, **kw).listen()  # type: ignore[arg-type]


def flash_via(srv: FakeGdbServer, firmware: dict) -> FlashReport:
    """Flash the firmware through ``srv`` (closed afterwards, whatever happens)."""
    try:
        return flash_firmware(firmware["elf"], BOARD, f"gdb://127.0.0.1:{srv.port}")
    finally:
        srv.close()


def assert_loaded(srv: FakeGdbServer, firmware: dict) -> None:
    for addr, blob in firmware["flash"].items():
        assert srv.bytes_at(addr, len(blob)) == blob


def test_flash_through_a_server_with_a_flash_memory_map(firmware: dict) -> None:
    srv = chip()
    rep = flash_via(srv, firmware)
    assert_loaded(srv, firmware)
    # the blocks 0x08000000..0x080017ff cover 0x1440 bytes of image: three 0x800 blocks, erased once
    assert sorted(srv.erased) == [(FLASH, 3 * BLOCK)]
    assert not any(p[:1] in (b"M", b"X") and not p.startswith(b"X%x,0:" % FLASH) for p in srv.log)
    assert rep.core == "cortex-m4" and rep.verified_bytes == 0x1440
    assert rep.reset == "monitor reset halt" and srv.resets == 1 and srv.detached
    assert srv.regs[13] == STACK_TOP and srv.regs[15] == FLASH + 0x200


def test_plain_memory_writes_hex_when_no_map_and_no_binary(firmware: dict) -> None:
    """QEMU's gdbstub: no memory map, no X packet, flash is memory the debugger writes."""
    regions = [Region("ram", FLASH, 0x1_0000), Region("ram", RAM, 0x2_0000)]
    srv = FakeGdbServer(regions, memory_map=False, binary=False, reset_commands=("system_reset",),
                        packet_size=0x200).listen()
    rep = flash_via(srv, firmware)
    assert_loaded(srv, firmware)
    writes = [p for p in srv.log if p[:1] == b"M"]
    assert writes and all(len(p) <= 0x200 for p in writes)
    assert not any(p.startswith(b"vFlash") for p in srv.log)
    assert rep.reset == "monitor system_reset"


def test_binary_writes_when_offered(firmware: dict) -> None:
    regions = [Region("ram", FLASH, 0x1_0000), Region("ram", RAM, 0x2_0000)]
    srv = FakeGdbServer(regions, memory_map=False).listen()
    flash_via(srv, firmware)
    assert srv.bytes_at(FLASH, 0x1400) == firmware["flash"][FLASH]
    assert any(p[:1] == b"X" and len(p) > 100 for p in srv.log)
    assert not any(p[:1] == b"M" for p in srv.log)


def test_verify_mismatch_names_the_address_and_does_not_start_the_firmware(firmware: dict) -> None:
    srv = chip(corrupt=FLASH + 0x123)
    with pytest.raises(TinyEdgeError) as err:
        flash_via(srv, firmware)
    assert "verify failed at 0x08000123" in err.value.message
    assert "1 of" in err.value.message
    assert srv.resets == 0 and not srv.detached


def test_another_core_behind_the_probe(firmware: dict) -> None:
    srv = chip(cpuid=0x411FC270)          # a Cortex-M7
    with pytest.raises(TinyEdgeError) as err:
        flash_via(srv, firmware)
    assert "Cortex-M7" in err.value.message and "netduinoplus2" in err.value.message
    assert not any(p.startswith((b"vFlash", b"M", b"X8")) for p in srv.log)


def test_another_chip_memory_map(firmware: dict) -> None:
    """An nRF52-like map (flash at 0, RAM at 0x20000000) is not an STM32F405."""
    srv = FakeGdbServer([Region("flash", 0, 0x10_0000, 0x1000), Region("ram", RAM, 0x4_0000)]).listen()
    with pytest.raises(TinyEdgeError) as err:
        flash_via(srv, firmware)
    assert "is not flash on the target" in err.value.message
    assert not any(p.startswith(b"vFlash") for p in srv.log)


def test_acknowledgement_mode_recovers_corrupted_replies(firmware: dict) -> None:
    srv = chip(no_ack=False, bad_checksums=6)
    flash_via(srv, firmware)
    assert srv.bad_checksums == 0
    assert_loaded(srv, firmware)


def test_no_reset_command_starts_at_the_reset_handler(firmware: dict) -> None:
    srv = chip(reset_commands=())
    rep = flash_via(srv, firmware)
    assert "no chip reset" in rep.reset and srv.resets == 0 and srv.detached
    assert srv.regs[13] == STACK_TOP and srv.regs[15] == FLASH + 0x200 and srv.xpsr & (1 << 24)


def test_black_magic_probe_on_a_serial_port(firmware: dict) -> None:
    """No target until `monitor swdp_scan` and `vAttach;1`, over a serial line (a pty here)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    srv = FakeGdbServer([Region("flash", FLASH, 0x1_0000, BLOCK), Region("ram", RAM, 0x2_0000)],
                        attached=False, no_ack=False).serve_fd(master)
    try:
        rep = flash_firmware(firmware["elf"], BOARD, f"gdb://{os.ttyname(slave)}")
    finally:
        os.close(slave)
        os.close(master)
        srv.close()
    assert srv.scanned and srv.attached and srv.detached
    assert rep.reset == "monitor reset halt"
    assert_loaded(srv, firmware)


def test_image_outside_the_board_is_refused_before_any_probe(tmp_path: Path) -> None:
    elf = make_elf(tmp_path / "other.elf", [(0, 0, struct.pack("<II", STACK_TOP, 0x201) + bytes(600), 608)])
    with pytest.raises(TinyEdgeError) as err:
        flash_firmware(elf, BOARD, "gdb://127.0.0.1:9")      # nothing listens: never reached
    assert "outside the memories of netduinoplus2" in err.value.message


def test_segments_match_objcopy(tmp_path: Path) -> None:
    """The loadable bytes are what arm-none-eabi-objcopy -O binary extracts from a real build."""
    for tool in ("arm-none-eabi-gcc", "arm-none-eabi-objcopy", "make"):
        require_tool(tool)
    sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "fake_net"))
    from make_project import build, make_project

    proj = make_project(BOARD, tmp_path / "p")
    build(proj)
    elf = proj / "build" / "firmware.elf"
    out = tmp_path / "fw.bin"
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(out)], check=True)
    image = load_image(proj)
    assert image.path == elf
    base = image.segments[0].address
    flat = bytearray(image.segments[-1].end - base)
    for s in image.segments:
        flat[s.address - base:s.end - base] = s.data
    assert base == FLASH and bytes(flat) == out.read_bytes()


def test_segment_reader_takes_physical_addresses_and_skips_empty_segments(firmware: dict) -> None:
    segs = read_segments(Path(firmware["elf"]).read_bytes())
    assert [(s.address, len(s.data)) for s in segs] == [(FLASH, 0x1400), (FLASH + 0x1400, 64)]
    with pytest.raises(TinyEdgeError):
        read_segments(b"\x7fELF\x02\x01" + bytes(60))          # 64-bit


def test_erase_ranges_cover_whole_blocks() -> None:
    r1 = MemoryRegion("flash", 0x0800_0000, 0x1_0000, 0x4000)
    r2 = MemoryRegion("flash", 0x0801_0000, 0x2_0000, 0x1_0000)
    pieces = [(Segment(0x0800_0100, bytes(0x10)), r1), (Segment(0x0800_3FF0, bytes(0x20)), r1),
              (Segment(0x0801_8000, bytes(0x10)), r2)]
    assert erase_ranges(pieces) == [(0x0800_0000, 0x0800_8000), (0x0801_0000, 0x0802_0000)]


def test_core_check() -> None:
    assert check_core(0x410FC241, BOARD, "p") == "cortex-m4"
    assert check_core(0x12345678, BOARD, "p") is None              # not an Arm core we know
    with pytest.raises(TinyEdgeError, match="Cortex-M0"):
        check_core(0x410CC200, BOARD, "p")


# ---------------------------------------------------------------- the CLI
def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tinyedge.cli", *args], capture_output=True, text=True)


def test_flash_with_no_probe_attached_is_a_one_line_error(firmware: dict) -> None:
    proc = run_cli("flash", str(firmware["elf"]), "--board", "netduinoplus2")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines[0] == "error: no debug probe found"
    assert len(lines) == 2 and lines[1].startswith("hint:")


def test_flash_a_board_without_a_pyocd_target_says_what_to_use(tmp_path: Path) -> None:
    elf = make_elf(tmp_path / "an386.elf", [(0, 0, struct.pack("<II", 0x2040_0000, 0x201) + bytes(600), 608)])
    proc = run_cli("flash", str(elf), "--board", "mps2-an386")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "names no pyOCD target" in proc.stderr and "gdb://" in proc.stderr
    elf = make_elf(tmp_path / "lm3s.elf", [(0, 0, struct.pack("<II", 0x2001_0000, 0x201) + bytes(600), 608)])
    proc = run_cli("flash", str(elf), "--board", "lm3s6965evb")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "flashed through OpenOCD" in proc.stderr and "openocd -f board/ek-lm3s6965.cfg" in proc.stderr


def test_devices_lists_ports_and_probes_as_json() -> None:
    proc = run_cli("devices", "--json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    from serial.tools import list_ports

    assert [p["device"] for p in got["serial_ports"]] == sorted(p.device for p in list_ports.comports())
    assert got["debug_probes"] == [] and got["debug_probes_note"] is None


# ---------------------------------------------------------------- selection rules
PROBES = [ProbeInfo("066DFF485550755187121723", "STM32 STLink", "STMicroelectronics", "NUCLEO-F746ZG",
                    "stm32f746zgtx"),
          ProbeInfo("0240000034544e45001b00028aa9001e4e61000097969900", "DAPLink CMSIS-DAP", "ARM", None, None)]


def test_probe_selection() -> None:
    with pytest.raises(TinyEdgeError, match="no debug probe found"):
        select_probe([], None)
    with pytest.raises(TinyEdgeError) as err:
        select_probe(PROBES, None)
    assert "2 debug probes attached" in err.value.message
    assert PROBES[0].unique_id in err.value.message and PROBES[1].unique_id in err.value.message
    assert select_probe(PROBES, "066dff48") is PROBES[0]
    assert select_probe(PROBES[1:], None) is PROBES[1]
    with pytest.raises(TinyEdgeError, match="no debug probe matches"):
        select_probe(PROBES, "nope")
    with pytest.raises(TinyEdgeError, match="2 debug probes match"):
        select_probe(PROBES, "0")


def test_probe_on_another_board() -> None:
    with pytest.raises(TinyEdgeError) as err:
        check_probe_target(PROBES[0], BOARD)              # an F746 Nucleo is not an stm32f405rg
    assert "NUCLEO-F746ZG" in err.value.message and "stm32f405rg" in err.value.message
    check_probe_target(PROBES[1], BOARD)                 # a probe that does not know its board: no check
    same = ProbeInfo("x", "STLink", "ST", "Netduino", "stm32f405rgtx")
    check_probe_target(same, BOARD)                      # pack names carry a package suffix
    h7 = ProbeInfo("y", "STLINK-V3", "ST", "NUCLEO-H743ZI2", "stm32h743zitx")
    h743 = dataclasses.replace(BOARD, flash_target="stm32h743xx")
    check_probe_target(h7, h743)                         # x: any letter
    with pytest.raises(TinyEdgeError):
        check_probe_target(PROBES[0], h743)


def _with_vcp(ids: list[str], tmp_path: Path) -> object:
    text = BOARD.path.read_text() + "\n[vcp]\nusb_ids = [" + ", ".join(f'"{i}"' for i in ids) + "]\n"  # type: ignore[union-attr]
    path = tmp_path / "netduinoplus2.toml"
    path.write_text(text)
    return load_board(str(path))


def test_port_auto(tmp_path: Path) -> None:
    board = _with_vcp(["0483:374B", "0483:374e"], tmp_path)
    st1 = SerialPort("/dev/ttyACM0", 0x0483, 0x374B, "066DFF485550755187121723", "STM32 STLink")
    st2 = SerialPort("/dev/ttyACM1", 0x0483, 0x374E, "003A00283132510F33383538", "STLINK-V3")
    ftdi = SerialPort("/dev/ttyUSB0", 0x0403, 0x6001, "A10K", "FT232R USB UART")
    assert find_board_port(board, [ftdi, st1]) == "/dev/ttyACM0"        # type: ignore[arg-type]
    with pytest.raises(TinyEdgeError) as err:
        find_board_port(board, [ftdi])                                 # type: ignore[arg-type]
    assert "no serial port" in err.value.message and "/dev/ttyUSB0 (0403:6001" in err.value.message
    with pytest.raises(TinyEdgeError) as err:
        find_board_port(board, [st1, st2, ftdi])                       # type: ignore[arg-type]
    assert "2 serial ports" in err.value.message and "ttyACM0" in err.value.message
    assert "ttyACM1" in err.value.message and "ttyUSB0" not in err.value.message
    # the probe's ID is its USB serial number: it picks the port of the same USB device
    assert find_board_port(board, [st1, st2], probe="003A0028") == "/dev/ttyACM1"  # type: ignore[arg-type]
    with pytest.raises(TinyEdgeError, match="names no USB ID"):
        find_board_port(BOARD, [st1])


def test_vcp_table_is_validated(tmp_path: Path) -> None:
    assert _with_vcp(["0483:374B"], tmp_path).vcp_usb_ids == ("0483:374b",)  # type: ignore[attr-defined]
    for bad in (["0483-374b"], ["483:374b"], ["0483:374b", "0483:374B"], []):
        with pytest.raises(TinyEdgeError, match=r"\[vcp\]"):
            _with_vcp(bad, tmp_path)
    path = tmp_path / "netduinoplus2.toml"
    path.write_text(BOARD.path.read_text() + '\n[vcp]\nusb_id = ["0483:374b"]\n')  # type: ignore[union-attr]
    with pytest.raises(TinyEdgeError, match="unknown key"):
        load_board(str(path))


def test_firmware_of_another_boards_project_is_refused_before_the_probe(firmware: dict, tmp_path: Path) -> None:
    """An ELF in DIR/build/ of a project generated for one board, flashed with --board
    another whose memories also hold it: refused from the project's manifest."""
    project = tmp_path / "proj"
    (project / "build").mkdir(parents=True)
    (project / "build" / "firmware.elf").write_bytes(Path(str(firmware["elf"])).read_bytes())
    (project / "tinyedge.json").write_text(json.dumps({"board": "nucleo-f746zg", "model_sha256": "00" * 32}))
    with pytest.raises(TinyEdgeError, match="was built for nucleo-f746zg .* not for stm32f4-discovery"):
        flash_firmware(project, load_board("stm32f4-discovery"), "gdb://127.0.0.1:9")
