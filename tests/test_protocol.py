"""Protocol framing (host and firmware C side) and the device client's retries.

Expected values come from public specifications (COBS examples from the
COBS article on Wikipedia / Cheshire & Baker; CRC-32 = zlib.crc32) and from
docs/protocol.md, packed by hand here with struct; the device behaviour is
simulated by tests/fixtures/fake_net/fake_device.py.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from conftest import require_tool
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyedge import protocol as p
from tinyedge.device import SILENT_HINT, DeviceClient
from tinyedge.errors import TinyEdgeError
from tinyedge.resources import templates_dir

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES / "fake_net"))
from fake_device import FakeDevice, FakeSerial  # noqa: E402

# Wikipedia "Consistent Overhead Byte Stuffing", examples 1-10 (without the
# trailing 0x00 delimiter).
SEQ_01_FE = bytes(range(1, 0xFF))
COBS_VECTORS = [
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (SEQ_01_FE, b"\xff" + SEQ_01_FE),
    (b"\x00" + SEQ_01_FE, b"\x01\xff" + SEQ_01_FE),
    (SEQ_01_FE + b"\xff", b"\xff" + SEQ_01_FE + b"\x02\xff"),
    (bytes(range(2, 0x100)) + b"\x00", b"\xff" + bytes(range(2, 0x100)) + b"\x01\x01"),
    (bytes(range(3, 0x100)) + b"\x00\x01", b"\xfe" + bytes(range(3, 0x100)) + b"\x02\x01"),
]


# ---------------------------------------------------------------------------
# COBS and frames (host side)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("data,encoded", COBS_VECTORS)
def test_cobs_known_vectors(data: bytes, encoded: bytes) -> None:
    assert p.cobs_encode(data) == encoded
    assert p.cobs_decode(encoded) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1200))
def test_cobs_roundtrip_has_no_zero(data: bytes) -> None:
    enc = p.cobs_encode(data)
    assert b"\x00" not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1
    assert p.cobs_decode(enc) == data


@pytest.mark.parametrize("bad", [b"\x00", b"\x05\x11\x22", b"\x03\x11\x00\x01", b"\x04\x01"])
def test_cobs_decode_rejects_invalid(bad: bytes) -> None:
    with pytest.raises(p.ProtocolError):
        p.cobs_decode(bad)


def test_frame_layout_matches_spec() -> None:
    payload = b"\x01\x02\x00\x03"
    raw = struct.pack("<BH", 0x03, 0xBEEF) + payload
    raw += struct.pack("<I", zlib.crc32(raw))
    assert p.encode_frame(0x03, 0xBEEF, payload) == p.cobs_encode(raw) + b"\x00"
    assert p.decode_frame(p.cobs_encode(raw)) == p.Frame(0x03, 0xBEEF, payload)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=300),
       st.integers(0, 10_000), st.integers(1, 255))
def test_any_corrupted_byte_is_detected(cmd: int, seq: int, payload: bytes,
                                        where: int, mask: int) -> None:
    wire = p.encode_frame(cmd, seq, payload)[:-1]
    assert p.decode_frame(wire) == p.Frame(cmd, seq, payload)
    i = where % len(wire)
    bad = wire[:i] + bytes([wire[i] ^ mask]) + wire[i + 1:]
    with pytest.raises(p.ProtocolError):
        p.decode_frame(bad)


def test_short_frame_rejected() -> None:
    with pytest.raises(p.ProtocolError, match="too short"):
        p.decode_frame(p.cobs_encode(b"\x01\x02\x03"))


def test_frame_reader_splits_stream() -> None:
    f1, f2 = p.encode_frame(1, 1, b"a"), p.encode_frame(2, 2, b"\x00\x00")
    stream = b"\x00\x00" + f1 + b"\x00" + f2
    reader = p.FrameReader()
    frames: list[bytes | None] = []
    for i in range(0, len(stream), 3):           # arbitrary split points
        frames += reader.feed(stream[i:i + 3])
    assert [p.decode_frame(f) for f in frames if f is not None] == [
        p.Frame(1, 1, b"a"), p.Frame(2, 2, b"\x00\x00")]


def test_frame_reader_drops_overlong() -> None:
    reader = p.FrameReader(max_frame=16)
    out = reader.feed(b"\x07" * 40 + b"\x00" + p.encode_frame(1, 1))
    assert out[0] is None and out[1] is not None
    assert p.decode_frame(out[1]) == p.Frame(1, 1, b"")


def test_parse_hello_and_tensor_info_from_spec_layout() -> None:
    sha = bytes(range(32))
    hello = struct.pack("<BHBBI", 3, 256, 2, 1, 25_000_000) + sha
    for text in (b"mps2-an386", b"cortex-m4", b"0.1.0", b"0.2.0", b"kws_ref_model"):
        hello += bytes([len(text)]) + text
    h = p.parse_hello(hello)
    assert (h.protocol_version, h.max_payload, h.num_inputs, h.num_outputs, h.clock_hz) == \
        (3, 256, 2, 1, 25_000_000)
    assert (h.model_sha256, h.board, h.core, h.runtime_version, h.generator_version, h.model_name) == \
        (sha.hex(), "mps2-an386", "cortex-m4", "0.1.0", "0.2.0", "kws_ref_model")
    # a version 2 HELLO has no model name; it still parses, so that the client can name the version
    old = struct.pack("<BHBBI", 2, 256, 2, 1, 25_000_000) + sha + b"\x01a\x01b\x01c\x01d"
    assert (p.parse_hello(old).protocol_version, p.parse_hello(old).model_name) == (2, "")
    with pytest.raises(p.ProtocolError, match="HELLO response too short"):
        p.parse_hello(hello[:-3])

    info = struct.pack("<BB4i", 9, 4, 1, 96, 96, 3) + struct.pack("<fiI", 0.5, -128, 27648)
    info += b"\x05input"
    assert p.parse_tensor_info(info) == p.TensorSpec("input", "int8", (1, 96, 96, 3), 0.5, -128, 27648)
    with pytest.raises(p.ProtocolError):
        p.parse_tensor_info(info[:10])


# ---------------------------------------------------------------------------
# The firmware's te_protocol.c, compiled for the host, agrees with Python
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("cc")
    cc = shutil.which("cc")
    exe = tmp_path_factory.mktemp("harness") / "harness"
    app = templates_dir() / "app"
    subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{app}",
                    str(FIXTURES / "proto_harness" / "harness.c"), str(app / "te_protocol.c"),
                    "-o", str(exe)], check=True)
    return exe


def _run_harness(exe: Path, lines: list[str]) -> list[str]:
    out = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True,
                         text=True, check=True).stdout
    return out.splitlines()


def _hx(b: bytes) -> str:
    return b.hex() or "-"


def test_c_protocol_matches_python(harness: Path) -> None:
    import random
    rng = random.Random(1234)
    samples = [v[0] for v in COBS_VECTORS] + [b""]
    for n in (1, 7, 253, 254, 255, 256, 508, 509, 1000):
        for zero_rate in (0.0, 0.05, 0.5):
            samples.append(bytes(0 if rng.random() < zero_rate else rng.randrange(1, 256)
                                 for _ in range(n)))
    lines, expect = [], []
    for s in samples:
        enc = p.cobs_encode(s)
        lines += [f"crc {_hx(s)}", f"enc {_hx(s)}", f"dec {_hx(enc)}"]
        expect += [f"{zlib.crc32(s):08x}", _hx(enc), _hx(s)]
    for cmd, seq, payload in [(1, 0, b""), (0x85, 0xFFFF, b"\x00\x01"), (3, 513, bytes(251))]:
        raw = p.cobs_decode(p.encode_frame(cmd, seq, payload)[:-1])
        lines += [f"frame {cmd} {seq} {_hx(payload)}", f"check {_hx(raw)}",
                  f"check {_hx(raw[:-1] + bytes([raw[-1] ^ 1]))}"]
        expect += [_hx(raw), f"{cmd} {seq} {_hx(payload)}", "ERR"]
    lines += ["dec 00", "dec 0511", "dec 031100", "check 0102"]
    expect += ["ERR", "ERR", "ERR", "ERR"]
    assert _run_harness(harness, lines) == expect


# ---------------------------------------------------------------------------
# DeviceClient against a simulated device with fault injection
# ---------------------------------------------------------------------------

IMAGE = bytes((i * 7 + 1) & 0xFF for i in range(400))
BIAS = b"\x05\x06\x07"


def expected() -> list[bytes]:
    mirror = bytes((b + 3) & 0xFF for b in reversed(IMAGE))
    s_img = sum(b - 256 if b > 127 else b for b in IMAGE)
    return [mirror, struct.pack("<ii", s_img, 5 * 1 + 6 * 2 + 7 * 3)]


def client(port: FakeSerial, **kw: object) -> DeviceClient:
    kw.setdefault("timeout", 0.2)
    kw.setdefault("run_timeout", 0.3)
    return DeviceClient("fake://", port=port, **kw)  # type: ignore[arg-type]


def test_hello_and_infer_in_chunks() -> None:
    dev = FakeDevice(max_payload=128)
    with client(FakeSerial(dev)) as c:
        info = c.hello()
        assert info.board == "fake-board" and info.max_payload == 128
        assert [t.name for t in info.inputs] == ["image", "bias"]
        assert info.inputs[0].shape == (1, 20, 20, 1) and info.inputs[0].dtype == "int8"
        assert info.outputs[1].dtype == "int32"
        result = c.infer([IMAGE, BIAS])
    assert result.outputs == expected()
    assert result.ticks == 1234
    # 400 input bytes at 123 per WRITE -> 4 frames, 400 output bytes at 127 -> 4 READs
    assert dev.requests == 1 + 4 + (4 + 1) + 1 + (4 + 1)
    assert dev.runs == 1


def test_corrupted_response_is_retried() -> None:
    dev = FakeDevice()
    port = FakeSerial(dev, corrupt_responses={0, 7, 9})
    with client(port) as c:
        result = c.infer([IMAGE, BIAS])
    assert result.outputs == expected()
    assert c.stats["corrupted"] == 3 and c.stats["retries"] == 3
    assert dev.runs == 1


def test_corrupted_request_is_nacked_and_retried() -> None:
    dev = FakeDevice()
    with client(FakeSerial(dev, corrupt_requests={2, 6})) as c:
        assert c.infer([IMAGE, BIAS]).outputs == expected()
        assert c.stats["retries"] == 2


def test_lost_run_response_does_not_run_twice() -> None:
    """The RUN reply is lost; the retry must get the stored answer, not a second
    run (which would mirror the already mirrored image back)."""
    dev = FakeDevice(max_payload=256)
    # responses: HELLO, 4x TENSOR_INFO, 2 WRITE image, 1 WRITE bias, RUN = index 8
    with client(FakeSerial(dev, drop_responses={8})) as c:
        result = c.infer([IMAGE, BIAS])
    assert dev.runs == 1
    assert result.outputs == expected()
    assert c.stats["retries"] == 1


def test_stale_frames_are_skipped() -> None:
    with client(FakeSerial(FakeDevice(), stale_before=True)) as c:
        assert c.infer([IMAGE, BIAS]).outputs == expected()
        assert c.stats["stale"] > 0 and c.stats["retries"] == 0


def test_silent_device_raises_with_hint() -> None:
    port = FakeSerial(FakeDevice(), silent=True)
    start = time.monotonic()
    with client(port, timeout=0.1, retries=2) as c, pytest.raises(TinyEdgeError) as err:
        c.hello()
    assert err.value.hint == SILENT_HINT
    assert port.n_requests == 3                        # bounded: 1 + 2 retries
    assert time.monotonic() - start < 2.0


def test_device_going_silent_mid_session_says_so() -> None:
    port = FakeSerial(FakeDevice())
    with client(port, timeout=0.05, retries=1) as c:
        c.hello()
        port.silent = True
        with pytest.raises(TinyEdgeError, match="no answer .* to WRITE") as err:
            c.infer([IMAGE, BIAS])
    assert err.value.hint == SILENT_HINT


def test_persistent_corruption_gives_up() -> None:
    port = FakeSerial(FakeDevice(), corrupt_responses=set(range(100)))
    with client(port, retries=3) as c, pytest.raises(TinyEdgeError, match="failed after 4"):
        c.echo(b"x")
    assert port.n_requests == 4


def test_fault_message_is_reported() -> None:
    port = FakeSerial(FakeDevice(), fault_text="FAULT HardFault pc=0x00000134")
    with client(port) as c, pytest.raises(TinyEdgeError, match="crashed: FAULT HardFault pc=0x00000134"):
        c.hello()


def test_wrong_inputs_are_user_errors() -> None:
    with client(FakeSerial(FakeDevice())) as c:
        with pytest.raises(TinyEdgeError, match="takes 2 input"):
            c.infer([IMAGE])
        with pytest.raises(TinyEdgeError, match="'bias' needs 3 bytes"):
            c.infer([IMAGE, b"\x01"])


def test_device_error_status_is_raised() -> None:
    with client(FakeSerial(FakeDevice())) as c, pytest.raises(TinyEdgeError, match="UNKNOWN_CMD"):
        c._request(0x33)  # type: ignore[arg-type]


def test_open_bad_url_is_user_error() -> None:
    with pytest.raises(TinyEdgeError, match="cannot open"):
        DeviceClient("/dev/does-not-exist-tinyedge", timeout=0.1)
