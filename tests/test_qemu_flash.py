"""QEMU as the board on the desk and its debug probe.

QEMU starts halted with its gdbstub on a free port and the UART on a
pseudo-terminal, with NO firmware (no -kernel): `tinyedge flash --probe
gdb://...` loads it through the GDB protocol, reads it back and starts it;
`tinyedge validate --port /dev/pts/N` then opens the pty as it would open a
board's USB CDC port and must be exact against the oracle. Each QEMU is
killed by its pid in a `finally`.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_tool, shared_model

from tinyedge.boards import list_boards, load_board
from tinyedge.device import DeviceClient
from tinyedge.emulator import QemuHaltedInstance
from tinyedge.flash import flash_firmware
from tinyedge.flash_image import load_image
from tinyedge.gdb_rsp import RspClient, open_transport

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "fake_net"))
from make_project import build, expected_outputs, make_project  # noqa: E402

pytestmark = pytest.mark.emulator

MODEL = "hello_world_int8"


def tinyedge(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tinyedge.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def built_project(board: str, tmp: Path) -> Path:
    for tool in ("arm-none-eabi-gcc", "make", "qemu-system-arm"):
        require_tool(tool)
    proj = tmp / f"{MODEL}-{board}"
    gen = tinyedge("generate", str(shared_model(MODEL)), "--board", board, "-o", str(proj))
    assert gen.returncode == 0, gen.stderr
    b = tinyedge("build", str(proj))
    assert b.returncode == 0, b.stderr
    return proj


def assert_gone(pid: int | None) -> None:
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize("board", ["netduinoplus2", "mps2-an386"])
def test_flash_through_the_gdbstub_then_validate_on_the_pty(board: str, tmp_path: Path) -> None:
    proj = built_project(board, tmp_path)
    report = tmp_path / "report.json"
    qemu = QemuHaltedInstance(board)
    try:
        qemu.start()
        flashed = tinyedge("flash", str(proj), "--board", board, "--probe", qemu.gdb_url)
        assert flashed.returncode == 0, flashed.stderr
        size = load_image(proj).size
        assert f"{size:,} bytes written, {size:,} read back and equal" in flashed.stdout
        # QEMU 7.2: the gdbstub's own monitor resets the machine (see tinyedge/flash_gdb.py)
        assert "started by monitor system_reset" in flashed.stdout
        assert qemu.url.startswith("/dev/pts/")
        val = tinyedge("validate", str(shared_model(MODEL)), "--board", board, "--port", qemu.url,
                       "--random", "4", "--project", str(proj), "--report", str(report))
        assert val.returncode == 0, val.stdout + val.stderr
        assert "PASS: 4/4 samples exact with TensorFlow Lite Micro" in val.stdout
    finally:
        pid = qemu.pid
        qemu.stop()
    assert_gone(pid)
    rep = json.loads(report.read_text())
    assert rep["all_exact"] and rep["target"] == qemu.url and len(rep["samples"]) == 4


def test_run_generates_builds_flashes_and_validates(tmp_path: Path) -> None:
    for tool in ("arm-none-eabi-gcc", "make", "qemu-system-arm"):
        require_tool(tool)
    qemu = QemuHaltedInstance("mps2-an386")
    try:
        qemu.start()
        proc = tinyedge("run", str(shared_model(MODEL)), "--board", "mps2-an386", "--port", qemu.url,
                        "--flash", "--probe", qemu.gdb_url, "--random", "3", "-o", str(tmp_path / "out"))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "flashed and verified" in proc.stdout and "PASS: 3/3 samples exact with TensorFlow Lite Micro" in proc.stdout
    finally:
        pid = qemu.pid
        qemu.stop()
    assert_gone(pid)


@pytest.mark.parametrize("board", [b for b in list_boards() if load_board(b).qemu_machine
                                   and b not in ("netduinoplus2", "mps2-an386")])
def test_every_emulated_board_flashes_through_its_gdbstub(board: str, tmp_path: Path) -> None:
    """The hand-written fake network (tests/fixtures/fake_net), flashed and started the same way."""
    for tool in ("arm-none-eabi-gcc", "make", "qemu-system-arm"):
        require_tool(tool)
    proj = make_project(board, tmp_path / board)
    build(proj)
    qemu = QemuHaltedInstance(board)
    try:
        qemu.start()
        rep = flash_firmware(proj, load_board(board), qemu.gdb_url)
        assert rep.reset == "monitor system_reset" and rep.verified_bytes == load_image(proj).size
        with DeviceClient(qemu.url, timeout=5) as dev:
            assert dev.hello().board == board
            image, bias = bytes(range(200)) * 2, b"\x05\x80\xff"
            assert dev.infer([image, bias]).outputs == expected_outputs(image, bias)
    finally:
        pid = qemu.pid
        qemu.stop()
    assert_gone(pid)


def test_what_the_qemu_gdbstub_does(tmp_path: Path) -> None:
    """The QEMU 7.2 facts tinyedge/flash_gdb.py relies on and documents."""
    require_tool("qemu-system-arm")
    qemu = QemuHaltedInstance("netduinoplus2")
    try:
        qemu.start()
        client = RspClient(open_transport(qemu.gdb_url))
        try:
            client.connect()
            assert not client.supports("qXfer:memory-map:read")      # no flash map: plain writes
            assert client.core_registers()[15] == 0                  # reset before anything was loaded
            client.write_memory(0x0800_0000, struct.pack("<II", 0x2000_1000, 0x0800_0009) + b"\x00\xbf" * 8)
            assert client.binary_writes is False                      # no X packet: M (hex)
            assert client.read_memory(0x0800_0000, 8) == struct.pack("<II", 0x2000_1000, 0x0800_0009)
            client.write_memory(0xE000_ED08, struct.pack("<I", 0x0800_0000))   # VTOR: MMIO
            assert client.read_memory(0xE000_ED08, 4) == bytes(4)              # ... answered OK, unchanged
            reply, text = client.monitor("system_reset")
            assert reply == b"OK"
            regs = client.core_registers()
            assert (regs[13], regs[15]) == (0x2000_1000, 0x0800_0008)        # from the loaded vectors
            assert client.read_memory(0x0800_0000, 8) == struct.pack("<II", 0x2000_1000, 0x0800_0009)
            reply, text = client.monitor("reset halt")
            assert reply == b"OK" and "unknown command" in text
        finally:
            client.close()
    finally:
        pid = qemu.pid
        qemu.stop()
    assert_gone(pid)
