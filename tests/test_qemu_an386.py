"""End to end on the default board: templates -> make -> QEMU mps2-an386 -> protocol.

The firmware is the real validation server around the hand-written fake
network (tests/fixtures/fake_net); its answers are computed independently
in Python (make_project.expected_outputs), the model hash with hashlib, and
the tick rate is DESIGN.md's calibration (2,000,000 instructions read 50,000
SysTick ticks on mps2-an386 under -icount shift=0).
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from conftest import require_tool

from tinyedge import protocol as p
from tinyedge.boards import load_board
from tinyedge.build import memory_report
from tinyedge.device import DeviceClient
from tinyedge.emulator import QemuInstance
from tinyedge.emulator import qemu as qemu_mod
from tinyedge.errors import TinyEdgeError

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "fake_net"))
from make_project import MODEL_BYTES, build, expected_outputs, make_project  # noqa: E402

pytestmark = pytest.mark.emulator
BOARD = "mps2-an386"


def _require_tools() -> None:
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "make"):
        require_tool(tool)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require_tools()
    proj = make_project(BOARD, tmp_path_factory.mktemp("an386"))
    build(proj)
    return proj


@pytest.fixture(scope="module")
def elf(project: Path) -> Path:
    return project / "build" / "firmware.elf"


@pytest.fixture(scope="module")
def device(elf: Path) -> Iterator[DeviceClient]:
    with QemuInstance(BOARD, elf) as qemu, DeviceClient(qemu.url, timeout=5) as client:
        yield client


def random_inputs(rng: random.Random) -> list[bytes]:
    return [rng.randbytes(400), rng.randbytes(3)]


# ---- protocol against the real firmware -----------------------------------

def test_hello_describes_board_and_model(device: DeviceClient) -> None:
    info = device.hello()
    assert (info.board, info.core, info.clock_hz) == ("mps2-an386", "cortex-m4", 25_000_000)
    assert info.model_sha256 == hashlib.sha256(MODEL_BYTES).hexdigest()
    assert (info.protocol_version, info.max_payload, info.runtime_version) == (4, 1024, "0.1.0")
    assert info.model_name == "fake_net"
    assert [(t.name, t.dtype, t.shape, t.scale, t.zero_point, t.bytes) for t in info.inputs] == [
        ("image", "int8", (1, 20, 20, 1), 0.5, -3, 400), ("bias", "uint8", (3,), 0.0, 0, 3)]
    assert [(t.name, t.dtype, t.shape, t.scale, t.zero_point, t.bytes) for t in info.outputs] == [
        ("mirror", "int8", (1, 400), 0.25, 7, 400), ("sums", "int32", (1, 2), 0.0, 0, 8)]


def test_inferences_match_the_model(device: DeviceClient) -> None:
    rng = random.Random(386)
    cases = [random_inputs(rng) for _ in range(5)]
    cases += [[bytes(400), bytes(3)], [b"\xff" * 400, b"\x00\xff\x00"]]  # zeros stress COBS
    for image, bias in cases:
        result = device.infer([image, bias])
        assert result.outputs == expected_outputs(image, bias)
        assert result.ticks > 0 and result.cycles == 0   # QEMU has no DWT cycle counter


def test_ticks_are_identical_run_to_run(elf: Path) -> None:
    """The timed region starts at a fixed SysTick phase (board_ticks_restart), so the
    count does not depend on when the request arrived: the same input reads the same
    ticks after UART traffic of random lengths, and in another QEMU."""
    rng = random.Random(7)
    inputs = random_inputs(rng)
    seen = set()
    for _ in range(2):
        with QemuInstance(BOARD, elf) as qemu, DeviceClient(qemu.url, timeout=5) as client:
            for _ in range(15):
                client.echo(rng.randbytes(rng.randrange(0, 250)))
                seen.add((client.infer(inputs).ticks, client.calibrate(999).ticks))
    assert len(seen) == 1, seen


def test_hello_carries_any_model_name(tmp_path: Path) -> None:
    """The model's name goes into C as an escaped string literal (quotes, backslashes,
    trigraph-like ?? and UTF-8 included) and into HELLO truncated to what is left of
    the payload, so HELLO always fits."""
    _require_tools()
    name = 'we"ird\\name??=ünï ' + "x" * 300
    proj = make_project(BOARD, tmp_path / "named", model_name=name)
    build(proj)
    with QemuInstance(BOARD, proj / "build" / "firmware.elf") as qemu, \
            DeviceClient(qemu.url, timeout=5) as client:
        info = client.hello()
    raw = name.encode()
    used = 10 + 32 + sum(1 + len(s) for s in ("mps2-an386", "cortex-m4", "0.1.0", "0.1.0"))  # status..sha, strs
    assert info.model_name.encode() == raw[: min(info.max_payload - used - 1, 255)]
def test_run_until_the_last_op_times_what_run_times(device: DeviceClient) -> None:
    """RUN and RUN_UNTIL(last op) run one timed function: the same ticks."""
    inputs = random_inputs(random.Random(8))
    whole = device.infer(inputs)
    device.write_inputs(inputs)
    until, _crc = device.run_until(0, inputs)
    assert (until.ticks, until.stack) == (whole.ticks, whole.stack)


def test_stack_painting_measures_a_known_depth(device: DeviceClient) -> None:
    """The fake network writes one word 16 * n bytes below its stack pointer when
    bias = {0x57, n}: the painted high-water mark grows by exactly 16 bytes per n,
    on top of the network's own frame (a few saved registers)."""
    image = bytes(range(200)) * 2
    base = device.infer([image, bytes([0, 1, 2])]).stack
    assert base is not None and 0 < base <= 64
    depths = {n: device.infer([image, bytes([0x57, n, 0])]).stack for n in (1, 10, 50, 200)}
    frame = {n: (d or 0) - 16 * n for n, d in depths.items()}
    assert len(set(frame.values())) == 1, depths          # exactly 16 bytes more per n
    assert 0 <= frame[1] <= base, (frame, base)
    # and a run that goes less deep afterwards is measured afresh (the paint is renewed)
    assert device.infer([image, bytes([0, 1, 2])]).stack == base


def test_calibration_matches_design(device: DeviceClient) -> None:
    cal = device.calibrate(1_000_000)
    assert cal.instructions == 2_000_000
    assert 49_999 <= cal.ticks <= 50_002               # DESIGN.md: ~50,000 ticks
    ipt = load_board(BOARD).instructions_per_tick
    assert ipt == 40.0
    assert cal.ticks == pytest.approx(cal.instructions / ipt, abs=2)


@pytest.mark.parametrize("size", [0, 1, 253, 255, 1023])
def test_echo_up_to_max_payload(device: DeviceClient, size: int) -> None:
    data = bytes((i * 37 + 1) & 0xFF for i in range(size))
    assert device.echo(data) == data


def test_oversized_frame_is_nacked_then_link_recovers(device: DeviceClient) -> None:
    device.retries, saved = 0, device.retries
    try:
        with pytest.raises(TinyEdgeError, match="ECHO failed.*corrupted request"):
            device.echo(bytes(1100))                   # longer than the device buffer
    finally:
        device.retries = saved
    assert device.echo(b"still alive") == b"still alive"


def test_static_ram_is_split_by_owner(elf: Path) -> None:
    """The ELF's variables by owner: the fake network's 24 bytes of state (network.h),
    the validation server's buffers (docs/protocol.md: max payload + 7 for the frame,
    32 for the stored response, 7 bytes of state) and the board's SysTick wrap count;
    the arena is apart."""
    m = memory_report(elf, 1 << 22, 1 << 22)
    assert (m.static_runtime, m.static_server, m.static_board) == (24, 1024 + 7 + 32 + 7, 4)
    assert m.arena == 416


# ---- link faults: the real firmware's NACK and retry-dedupe paths ------------

class FlakyPort:
    """Wraps the real port: corrupts chosen request frames, corrupts chosen
    response frames, and swallows the response to the first RUN."""

    def __init__(self, port: object, corrupt_requests: set[int], corrupt_responses: set[int],
                 drop_run_response: bool) -> None:
        self.port = port
        self.corrupt_requests = corrupt_requests
        self.corrupt_responses = corrupt_responses
        self.drop_pending = False
        self.drop_run_response = drop_run_response
        self.n_requests = 0
        self.n_responses = 0
        self.in_frame = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.port, name)

    def write(self, data: bytes) -> int:
        cmd = p.cobs_decode(data.strip(b"\x00"))[0]
        if self.drop_run_response and cmd == p.Cmd.RUN:
            self.drop_run_response, self.drop_pending = False, True
        if self.n_requests in self.corrupt_requests:
            mid = len(data) // 2
            data = data[:mid] + bytes([data[mid] ^ 0x20 or 0x21]) + data[mid + 1:]
        self.n_requests += 1
        return self.port.write(data)  # type: ignore[attr-defined]

    def read(self, size: int = 1) -> bytes:
        out = bytearray()
        for b in self.port.read(size):  # type: ignore[attr-defined]
            if b == 0:
                if self.in_frame:
                    self.n_responses += 1
                    dropping, self.in_frame = self.drop_pending, 0
                    if dropping:
                        self.drop_pending = False
                        continue
                out.append(b)
                continue
            self.in_frame += 1
            if self.drop_pending:
                continue
            if self.n_responses in self.corrupt_responses and self.in_frame == 4:
                b = b ^ 0x08 or 0x09
            out.append(b)
        return bytes(out)


def test_corruption_and_loss_are_recovered(elf: Path) -> None:
    rng = random.Random(42)
    with QemuInstance(BOARD, elf) as qemu, DeviceClient(qemu.url, timeout=5.0,
                                                       run_time=1.0) as client:
        client._port = FlakyPort(client._port, corrupt_requests={2, 6, 9},  # type: ignore[assignment]
                                 corrupt_responses={1, 8}, drop_run_response=True)
        client.hello()
        for _ in range(2):
            image, bias = random_inputs(rng)
            # A second execution of RUN would mirror the image back: the outputs
            # prove the retried RUN was answered from the stored response.
            assert client.infer([image, bias]).outputs == expected_outputs(image, bias)
        assert client.stats["retries"] >= 6
        assert client.stats["corrupted"] >= 2


# ---- crashes and the QEMU process --------------------------------------------

def test_hardfault_is_reported(elf: Path) -> None:
    with QemuInstance(BOARD, elf) as qemu, DeviceClient(qemu.url, timeout=2) as client:
        with pytest.raises(TinyEdgeError, match=r"crashed: FAULT HardFault .*pc=0x") as err:
            client.infer([bytes(400), b"\xde\xad\x00"])   # network.c traps on this bias
        assert "cfsr=0x00010000" in err.value.message     # UNDEFINSTR (ARMv7-M ARM B3.2.15)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_qemu_killed_on_normal_exit(elf: Path) -> None:
    with QemuInstance(BOARD, elf) as qemu:
        pid = qemu.pid
        assert pid and qemu.running() and qemu.url.startswith("socket://127.0.0.1:")
    assert pid and _gone(pid)


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_qemu_killed_on_exception(elf: Path, exc: type[BaseException]) -> None:
    pid = None
    with pytest.raises(exc):
        with QemuInstance(BOARD, elf) as qemu:
            pid = qemu.pid
            raise exc()
    assert pid and _gone(pid)


def test_qemu_dying_in_use_is_explained(elf: Path) -> None:
    with pytest.raises(TinyEdgeError, match="QEMU exited while in use") as err:
        with QemuInstance(BOARD, elf) as qemu, DeviceClient(qemu.url, timeout=0.5,
                                                           retries=0) as client:
            client.hello()
            proc = qemu._proc                 # our own QEMU, by its Popen
            assert proc is not None
            proc.kill()
            proc.wait()
            client.hello()
    assert "exit code" in err.value.message


def test_qemu_early_death_shows_its_stderr(elf: Path) -> None:
    start = time.monotonic()
    with pytest.raises(TinyEdgeError, match="QEMU exited at start") as err:
        with QemuInstance(BOARD, elf, extra_args=["-icount", "shift=bogus"]):
            pass
    assert "QEMU said:" in err.value.hint and "shift" in err.value.hint
    assert time.monotonic() - start < 5


def test_not_an_arm_elf_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.elf"
    bad.write_bytes(b"\x7fELF not really an executable")
    with pytest.raises(TinyEdgeError, match="not a 32-bit Arm ELF"):
        QemuInstance(BOARD, bad).start()
    with pytest.raises(TinyEdgeError, match="not found"):
        QemuInstance(BOARD, tmp_path / "missing.elf").start()


def test_port_race_is_retried(elf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    ports = iter([taken])
    real = qemu_mod.free_port
    monkeypatch.setattr(qemu_mod, "free_port", lambda: next(ports, None) or real())
    try:
        with QemuInstance(BOARD, elf) as qemu, DeviceClient(qemu.url, timeout=5) as client:
            assert qemu.port != taken
            assert client.hello().board == BOARD
    finally:
        squatter.close()


# ---- timer wrap, host build, CMake, missing toolchain -------------------------

def test_tick_counter_survives_systick_wraps(tmp_path: Path) -> None:
    """Built with a 16-bit SysTick reload the counter wraps every 65,536 ticks;
    10,000,000 instructions still read 250,000 ticks (40 per tick)."""
    _require_tools()
    proj = make_project(BOARD, tmp_path / "wrap")
    subprocess.run(["make", "-C", str(proj), "-j4", "EXTRA_CFLAGS=-DTE_SYSTICK_RELOAD=0xFFFF"],
                   check=True, capture_output=True)
    with QemuInstance(BOARD, proj / "build" / "firmware.elf") as qemu, \
            DeviceClient(qemu.url, timeout=5) as client:
        cal = client.calibrate(5_000_000)
    assert 249_999 <= cal.ticks <= 250_002


def test_make_host_builds_the_network_for_this_computer(project: Path) -> None:
    build(project, "host")
    out = subprocess.run([str(project / "build" / "host" / "network_host")], check=True,
                         capture_output=True, text=True).stdout.split()
    mirror, sums = expected_outputs(bytes(i & 0xFF for i in range(400)), b"\x01\x02\x03")
    assert out == ["mirror", mirror.hex(), "sums", sums.hex()]


def test_cmake_build(project: Path, tmp_path: Path) -> None:
    require_tool("cmake")
    bdir = tmp_path / "build-cmake"
    subprocess.run(["cmake", "-S", str(project), "-B", str(bdir)], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(bdir), "-j4"], check=True, capture_output=True)
    for name in ("firmware.elf", "firmware.bin", "firmware.hex"):
        assert (bdir / name).stat().st_size > 0


def test_missing_toolchain_says_how_to_install(tmp_path: Path) -> None:
    proj = make_project(BOARD, tmp_path / "notool")
    res = subprocess.run(["make", "-C", str(proj), "CROSS=/nonexistent/arm-none-eabi-"],
                         capture_output=True, text=True)
    assert res.returncode != 0
    assert "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi" in res.stdout + res.stderr
