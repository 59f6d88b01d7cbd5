"""Protocol framing (host and firmware C side) and the device client's retries.

Expected values come from public specifications (COBS examples from the
COBS article on Wikipedia / Cheshire & Baker; CRC-32 = zlib.crc32) and from
docs/protocol.md, packed by hand here with struct; the device behaviour is
simulated by tests/fixtures/fake_net/fake_device.py.
"""

from __future__ import annotations

import re
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
from tinyedge.device import SILENT_HINT, STOPPED_HINT, DeviceClient
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
    hello = struct.pack("<BHBBI", 4, 256, 2, 1, 25_000_000) + sha
    for text in (b"mps2-an386", b"cortex-m4", b"0.1.0", b"0.2.0", b"kws_ref_model"):
        hello += bytes([len(text)]) + text
    h = p.parse_hello(hello)
    assert (h.protocol_version, h.max_payload, h.num_inputs, h.num_outputs, h.clock_hz) == \
        (4, 256, 2, 1, 25_000_000)
    assert (h.model_sha256, h.board, h.core, h.runtime_version, h.generator_version, h.model_name) == \
        (sha.hex(), "mps2-an386", "cortex-m4", "0.1.0", "0.2.0", "kws_ref_model")
    # a version 3 HELLO has no model name; it still parses, so that the client can name the version
    old = struct.pack("<BHBBI", 3, 256, 2, 1, 25_000_000) + sha + b"\x01a\x01b\x01c\x01d"
    assert (p.parse_hello(old).protocol_version, p.parse_hello(old).model_name) == (3, "")
    with pytest.raises(p.ProtocolError, match="HELLO response too short"):
        p.parse_hello(hello[:-3])

    info = struct.pack("<BB4i", 9, 4, 1, 96, 96, 3) + struct.pack("<fiI", 0.5, -128, 27648)
    info += b"\x05input"
    assert p.parse_tensor_info(info) == p.TensorSpec("input", "int8", (1, 96, 96, 3), 0.5, -128, 27648)
    with pytest.raises(p.ProtocolError):
        p.parse_tensor_info(info[:10])


def test_parse_run_from_spec_layout() -> None:
    # version 4: u64 ticks, u32 cycles, u32 outputs crc, u32 stack bytes
    assert p.parse_run(struct.pack("<QIII", 5 << 33, 7, 0xDEADBEEF, 1612)) == (5 << 33, 7, 0xDEADBEEF, 1612)
    assert p.parse_run(struct.pack("<QIII", 81, 0, 1, 0xFFFFFFFF)) == (81, 0, 1, None)  # not measured
    # a version 3 answer (no stack field) still parses, without a stack figure
    assert p.parse_run(struct.pack("<QII", 81, 0, 1)) == (81, 0, 1, None)
    with pytest.raises(p.ProtocolError, match="RUN response too short"):
        p.parse_run(struct.pack("<QI", 81, 0))


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


def _samples() -> list[bytes]:
    import random
    rng = random.Random(1234)
    samples = [v[0] for v in COBS_VECTORS] + [b""]
    for n in (1, 7, 253, 254, 255, 256, 508, 509, 1000, 1031):
        for zero_rate in (0.0, 0.05, 0.5):
            samples.append(bytes(0 if rng.random() < zero_rate else rng.randrange(1, 256)
                                 for _ in range(n)))
    return samples


def test_c_crc_and_cobs_match_python(harness: Path) -> None:
    lines, expect = [], []
    for s in _samples():
        lines += [f"crc {_hx(s)}", f"enc {_hx(s)}", f"crc2 {_hx(s[:5])} {_hx(s[5:])}"]
        expect += [f"{zlib.crc32(s):08x}", _hx(p.cobs_encode(s)), f"{zlib.crc32(s):08x}"]
    assert _run_harness(harness, lines) == expect


def test_c_frames_match_python(harness: Path) -> None:
    """te_frame_write sends what encode_frame builds; te_rx_byte accepts exactly
    the frames decode_frame accepts, byte by byte, at any buffer limit."""
    lines, expect = [], []
    for cmd, seq, payload in [(1, 0, b""), (0x85, 0xFFFF, b"\x00\x01"), (3, 513, bytes(251))] + [
            (0x03, 7, s) for s in _samples() if len(s) <= 1024]:
        wire = b"\x00" + p.encode_frame(cmd, seq, payload)
        lines += [f"send {cmd} {seq} {_hx(payload)}", f"rx 2048 {_hx(wire)}"]
        expect += [_hx(wire), f"F:{cmd}:{seq}:{_hx(payload)}"]
        # a buffer one byte short refuses the frame; an exact one takes it twice over
        raw_len = len(payload) + p.FRAME_OVERHEAD
        lines += [f"rx {raw_len - 1} {_hx(wire)}", f"rx {raw_len} {_hx(wire + wire)}"]
        expect += ["LONG", f"F:{cmd}:{seq}:{_hx(payload)} F:{cmd}:{seq}:{_hx(payload)}"]
    good = p.encode_frame(4, 9, b"\x01\x02\x03\x04")
    bad_crc = bytearray(good)
    bad_crc[3] ^= 0x04
    z = b"\x00"
    for wire in (bytes(bad_crc),                           # CRC
                 p.cobs_encode(b"abc") + z,                # shorter than header + CRC
                 b"\x05\x11\x22" + z,                      # block runs past the frame
                 z * 3 + good + z,                         # empty frames are ignored
                 b"\x09\x01" + z + bytes(bad_crc) + good):  # garbage, bad, good
        lines.append("rx 64 " + _hx(wire))
    expect += ["BAD", "BAD", "BAD", "F:4:9:01020304", "BAD BAD F:4:9:01020304"]
    assert _run_harness(harness, lines) == expect


def test_c_receiver_rejects_any_corruption(harness: Path) -> None:
    """One byte of a frame changed to any other value (0x00 included, which splits
    it): every piece is rejected, and the frame after it is still received."""
    import random
    rng = random.Random(99)
    after = p.encode_frame(5, 1, b"ok")
    lines = []
    for _ in range(400):
        payload = rng.randbytes(rng.randrange(1, 300))
        wire = p.encode_frame(3, rng.randrange(1, 0x10000), payload)[:-1]
        i = rng.randrange(len(wire))
        bad = wire[:i] + bytes([wire[i] ^ rng.randrange(1, 256)]) + wire[i + 1:]
        lines.append("rx 2048 " + _hx(bad + b"\x00" + after))
    for verdicts in _run_harness(harness, lines):
        *pieces, last = verdicts.split()
        assert pieces and all(v == "BAD" for v in pieces) and last == "F:5:1:6f6b"


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
    kw.setdefault("timeout", 2.0)
    kw.setdefault("run_time", 0.1)
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
    assert result.stack == 96   # the fake device's stack figure reaches the result
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
    with client(port, timeout=2.0, retries=5) as c, pytest.raises(TinyEdgeError) as err:
        c.hello()
    took = time.monotonic() - start
    assert err.value.hint == SILENT_HINT
    assert "no answer from fake:// to HELLO within 2 s" in err.value.message
    assert "nothing heard from it since the port was opened" in err.value.message
    # sent again after 0.5 s, then after waits that double: 0.5 + 1 + (the rest of 2 s)
    assert port.n_requests == 3
    assert 2.0 <= took < 2.5


def test_device_going_silent_mid_session_says_so() -> None:
    port = FakeSerial(FakeDevice())
    with client(port, timeout=1.0, retries=1) as c:
        c.hello()
        port.silent = True
        with pytest.raises(TinyEdgeError, match="no answer .* to WRITE") as err:
            c.infer([IMAGE, BIAS])
    assert re.search(r"last heard \d\.\d s ago: the answer to TENSOR_INFO \(seq \d+\)", err.value.message)
    assert err.value.hint == STOPPED_HINT


def test_silent_inference_fails_within_the_timeout() -> None:
    """A device that hangs in RUN: the wait ends at --timeout, not at a run limit
    times the retries, and the message says what the bound was."""
    dev = FakeDevice()
    dev.hang_on_run = True
    with client(FakeSerial(dev), timeout=1.5, run_time=30.0, timeout_note="--timeout 1.5") as c:
        c.hello()
        start = time.monotonic()
        with pytest.raises(TinyEdgeError) as err:
            c.infer([IMAGE, BIAS])
        took = time.monotonic() - start
    assert "no answer from fake:// to RUN within 1.5 s (--timeout 1.5)" in err.value.message
    assert "last heard" in err.value.message and "the answer to WRITE" in err.value.message
    assert 1.5 <= took < 2.0 + 0.3     # the writes, then 1.5 s for RUN at most


def test_retries_stay_inside_the_timeout() -> None:
    """Corrupted answers are retried only while the request's time lasts."""
    port = FakeSerial(FakeDevice(), corrupt_responses=set(range(10**6)))
    start = time.monotonic()
    with client(port, timeout=1.0, retries=10**6) as c, pytest.raises(TinyEdgeError, match="failed after"):
        c.echo(b"x")
    assert time.monotonic() - start < 1.3


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


# ---------------------------------------------------------------------------
# Resets mid-run: banner, state checks, identity
# ---------------------------------------------------------------------------
# Request frames with max_payload 128: 0 HELLO, 1-4 TENSOR_INFO, 5-8 WRITE image,
# 9 WRITE bias, 10 RUN, 11-14 READ mirror, 15 READ sums.

def test_reset_during_write_is_recovered_by_its_banner() -> None:
    dev = FakeDevice()
    with client(FakeSerial(dev, reset_before={7})) as c:
        assert c.infer([IMAGE, BIAS]).outputs == expected()
    assert dev.runs == 1 and dev.boots == 1
    assert c.stats["resets"] == 1
    assert [(r.during, r.detected_by) for r in c.resets] == [("WRITE", "banner")]


def test_reset_with_lost_banner_is_caught_by_the_inputs_crc() -> None:
    """Without the banner the device executes the rest of the WRITEs on a fresh
    arena; RUN refuses inputs that are not the host's, and the sample is redone."""
    dev = FakeDevice()
    with client(FakeSerial(dev, reset_before={7}, lose_banner=True)) as c:
        assert c.infer([IMAGE, BIAS]).outputs == expected()
    assert dev.runs == 1
    assert [(r.during, r.detected_by) for r in c.resets] == [("RUN", "state check")]


def test_reset_between_run_and_read_is_caught_by_the_outputs_crc() -> None:
    dev = FakeDevice()
    with client(FakeSerial(dev, reset_before={12}, lose_banner=True)) as c:
        assert c.infer([IMAGE, BIAS]).outputs == expected()
    assert dev.runs == 2          # the lost run, then the one that counted
    assert [(r.during, r.detected_by) for r in c.resets] == [("READ", "state check")]


def test_lost_run_answer_after_a_reset_reruns_on_rewritten_inputs() -> None:
    """The device resets while the host waits for RUN's answer (banner seen):
    inputs are written again before the next RUN."""
    dev = FakeDevice()
    with client(FakeSerial(dev, reset_before={10})) as c:
        assert c.infer([IMAGE, BIAS]).outputs == expected()
        assert c.infer([IMAGE, BIAS]).outputs == expected()
    assert dev.runs == 2 and c.stats["resets"] == 1


def test_device_that_keeps_resetting_gives_up_clearly() -> None:
    dev = FakeDevice()
    with client(FakeSerial(dev, reset_before=set(range(7, 500, 6)))) as c, \
            pytest.raises(TinyEdgeError, match=r"reset 4 times during one inference \(last during") as err:
        c.infer([IMAGE, BIAS])
    assert "completed so far are in the report" in err.value.hint


def test_reset_into_other_firmware_is_refused() -> None:
    dev = FakeDevice()
    port = FakeSerial(dev)
    with client(port) as c:
        c.hello()
        dev.sha = bytes(32)          # reflashed with another model, then reset
        port.reset_before = {port.n_requests + 2}
        with pytest.raises(TinyEdgeError, match=r"after a reset fake:// runs other firmware \(model_sha256"):
            c.infer([IMAGE, BIAS])


def test_banner_before_the_session_is_not_a_reset() -> None:
    dev = FakeDevice()
    port = FakeSerial(dev)
    port.rx += dev.reset()           # a board that boots as the port opens
    with client(port) as c:
        assert c.infer([IMAGE, BIAS]).outputs == expected()
    assert c.stats["resets"] == 0


def test_wrong_port_names_what_it_heard() -> None:
    port = FakeSerial(FakeDevice(), noise=b"uart:~$ Zephyr shell\r\n")
    with client(port, timeout=1.0) as c, \
            pytest.raises(TinyEdgeError, match="does not speak the tinyedge protocol") as err:
        c.hello()
    assert "uart:~$ Zephyr" in err.value.message
    assert "baud rate (now 115200)" in err.value.hint
