"""Fuzzing with hypothesis: the .tflite reader, the lowering, the generated C, and
both sides of the protocol decoder, fed mutated real models and frames.

Allowed outcomes: success, or TinyEdgeError (our user-facing error). Anything
else -- another exception, an InternalError, a hang, generated C that does not
compile or crashes, a sanitizer report from the firmware's decoder, a device
that stops answering -- fails the test. The number of examples is bounded for
CI; set TINYEDGE_FUZZ_EXAMPLES to run more. Inputs that found bugs are kept in
tests/data/fuzz/regressions.json and replayed by test_fuzz_regressions.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import SHARED_MODELS, require_tool
from fuzztools import mutate_bytes, mutate_model, time_limit

from tinyedge import protocol as p
from tinyedge.analysis import inspect_network, require_fit
from tinyedge.boards import load_board
from tinyedge.compiler import CompiledNetwork, compile
from tinyedge.device import DeviceClient
from tinyedge.errors import TinyEdgeError
from tinyedge.model import read_model
from tinyedge.model.ir import DTYPES
from tinyedge.resources import templates_dir

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES / "fake_net"))
from fake_device import FakeDevice, FakeSerial  # noqa: E402

EXAMPLES = int(os.environ.get("TINYEDGE_FUZZ_EXAMPLES", "120"))
MODELS = {name: (SHARED_MODELS / f"{name}.tflite").read_bytes()
          for name in ("hello_world_int8", "kws_ref_model", "pretrainedResnet_quant", "ad01_int8", "vww_96_int8")}
BOARD = load_board("mps2-an386")
REGRESSIONS = Path(__file__).parent / "data" / "fuzz" / "regressions.json"
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def lower(blob: bytes) -> CompiledNetwork | None:
    """Read, inspect, compile and fit-check a model: the network, or None when it is
    refused with a TinyEdgeError. Anything else propagates (and fails the test)."""
    with time_limit(60):
        try:
            graph = read_model(blob, "fuzzed.tflite")
            inspect_network(compile(graph, BOARD, strict=False))
            net = compile(graph, BOARD)
            require_fit(net)
            return net
        except TinyEdgeError:
            return None


# ---- the reader and the lowering --------------------------------------------------

@FUZZ
@given(st.sampled_from(sorted(MODELS)), st.integers(1, 3), st.data())
def test_fuzz_model_fields(name: str, steps: int, data: st.DataObject) -> None:
    lower(mutate_model(MODELS[name], data.draw, steps))


@FUZZ
@given(st.sampled_from(sorted(MODELS)), st.data())
def test_fuzz_model_bytes(name: str, data: st.DataObject) -> None:
    lower(mutate_bytes(MODELS[name], data.draw))


@settings(max_examples=max(10, EXAMPLES // 6), deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)
@given(st.sampled_from(["hello_world_int8", "kws_ref_model", "ad01_int8"]), st.data())
def test_fuzz_generated_c_compiles_and_runs(tmp_path_factory: pytest.TempPathFactory, name: str,
                                            data: st.DataObject) -> None:
    """Whatever lowers compiles for the host with -Wall -Wextra -Werror, links, and
    runs one inference without crashing (its numbers are not judged here: a
    mutated model may not be one TFLite runs)."""
    from tinyedge.hostrun import HostNetwork

    require_tool("cc")
    net = lower(mutate_model(MODELS[name], data.draw, 1))
    assume(net is not None)
    assert net is not None
    with time_limit(120):
        host = HostNetwork(net, tmp_path_factory.mktemp("fuzzc"))   # InternalError if the C does not build
        host.run([np.zeros(t.shape, np.dtype(next(nt for n, nt in DTYPES.values() if n == t.dtype)))
                  for t in net.graph.input_tensors])


# ---- replayed inputs that found bugs ------------------------------------------------

def _apply(obj: Any, path: str, value: Any) -> None:
    """Set ``obj.<path>`` (dotted, with [i] indices) to ``value``, or with
    ``{"drop": i}`` remove item i of the list there."""
    parts = path.replace("]", "").replace("[", ".").split(".")
    for part in parts[:-1]:
        if part.isdigit():
            obj = obj[int(part)]
        else:
            if isinstance(getattr(obj, part), np.ndarray):   # the object API reads vectors as read-only arrays
                setattr(obj, part, getattr(obj, part).tolist())
            obj = getattr(obj, part)
    last = parts[-1]
    if isinstance(value, dict) and "drop" in value:      # {"drop": i}: remove item i of a list
        del getattr(obj, last)[value["drop"]]
    elif last.isdigit():
        obj[int(last)] = value
    else:
        setattr(obj, last, value)


def regression_model(case: dict[str, Any]) -> bytes:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    data = MODELS[case["model"]]
    if "truncate" in case:
        return data[: case["truncate"]]
    obj = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    for path, value in case["edits"]:
        _apply(obj, path, value)
    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(obj.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _cases(kind: str) -> list[dict[str, Any]]:
    return [c for c in json.loads(REGRESSIONS.read_text()) if c["kind"] == kind]


@pytest.mark.parametrize("case", _cases("model"), ids=lambda c: c["id"])
def test_fuzz_regressions(case: dict[str, Any]) -> None:
    """Each input once crashed tinyedge (the case says how); now it is refused, by name."""
    blob = regression_model(case)
    with pytest.raises(TinyEdgeError, match=case["expect"]):
        graph = read_model(blob, "fuzzed.tflite")
        inspect_network(compile(graph, BOARD, strict=False))
        require_fit(compile(graph, BOARD))


@pytest.mark.parametrize("case", _cases("request"), ids=lambda c: c["id"])
def test_fuzz_request_regressions(case: dict[str, Any]) -> None:
    """Answers to requests whose codes collide with the device's own messages."""
    with DeviceClient("fake://", port=FakeSerial(FakeDevice()), timeout=0.2, retries=1) as c:  # type: ignore[arg-type]
        with pytest.raises(TinyEdgeError, match=case["expect"]):
            c._request(case["cmd"])  # type: ignore[arg-type]
        assert c.stats["retries"] == 0


# ---- the protocol: the host's decoder -------------------------------------------------

def _frames() -> st.SearchStrategy[bytes]:
    """Valid frames (without the trailing 0x00) and mutations of them."""
    valid = st.builds(lambda c, s, pl: p.encode_frame(c, s, pl)[:-1], st.integers(0, 255),
                      st.integers(0, 0xFFFF), st.binary(max_size=300))

    def mutate(wire: bytes, how: int, where: int, value: int) -> bytes:
        i = where % (len(wire) or 1)
        if how == 0:
            return wire[:i]
        if how == 1:
            return wire[:i] + bytes([value]) + wire[i + 1:]
        return wire[:i] + bytes([value]) + wire[i:]

    mutated = st.builds(mutate, valid, st.integers(0, 2), st.integers(0, 10_000), st.integers(0, 255))
    return st.one_of(valid, mutated, st.binary(max_size=400))


@FUZZ
@given(_frames())
def test_fuzz_host_frame_decoder(wire: bytes) -> None:
    for chunk in (wire, wire.replace(b"\x00", b"")):
        try:
            frame = p.decode_frame(chunk)
        except p.ProtocolError:
            continue
        assert p.encode_frame(frame.cmd, frame.seq, frame.payload)[:-1] == chunk   # only what was sent is accepted
    reader = p.FrameReader(max_frame=256)
    frames = reader.feed(wire) + reader.feed(b"\x00")
    assert all(f is None or (b"\x00" not in f and len(f) <= 256) for f in frames)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["hello", "tensor_info", "timing", "op_info"]))
def test_fuzz_host_payload_parsers(payload: bytes, which: str) -> None:
    parse = {"hello": p.parse_hello, "tensor_info": p.parse_tensor_info, "timing": p.parse_timing,
             "op_info": p.parse_op_info}[which]
    try:
        parse(payload)
    except p.ProtocolError:
        pass


class MutatingDevice(FakeDevice):
    """The fake device, with its answers to chosen commands rewritten (framed and
    CRC'd correctly: the client must judge the content, not the framing)."""

    def __init__(self, mutations: dict[int, tuple[int, int, int]]) -> None:
        super().__init__(max_payload=128)
        self.mutations = mutations

    def execute(self, cmd: int, req: bytes) -> bytes:
        try:
            out = super().execute(cmd, req)
        except (IndexError, struct.error, ValueError):
            return b"\x03"   # a request the fake cannot serve: BAD_INDEX, as the firmware would say
        if cmd in self.mutations and out:
            how, where, value = self.mutations[cmd]
            i = where % len(out)
            out = out[:i] if how == 0 else out[:i] + bytes([value]) + out[i + 1:] if how == 1 \
                else out[:i] + bytes([value]) * (1 + where % 300) + out[i:]
        return out


@FUZZ
@given(st.dictionaries(st.sampled_from([0x01, 0x02, 0x03, 0x04, 0x05, 0x07]),
                       st.tuples(st.integers(0, 2), st.integers(0, 1000), st.integers(0, 255)), min_size=1))
def test_fuzz_client_against_lying_device(mutations: dict[int, tuple[int, int, int]]) -> None:
    """A device whose answers are well framed but wrong: the client ends in success
    or a TinyEdgeError, within its time limits."""
    dev = MutatingDevice(mutations)
    with time_limit(30), DeviceClient("fake://", port=FakeSerial(dev), timeout=0.2, retries=1) as c:  # type: ignore[arg-type]
        try:
            info = c.hello()
            c.infer([bytes(s.bytes) for s in info.inputs] if all(0 <= s.bytes < 1 << 16 for s in info.inputs)
                    else [b""])
            c.echo(b"ping")
        except TinyEdgeError:
            pass


# ---- the protocol: the firmware's decoder (te_protocol.c), under sanitizers ------------

@pytest.fixture(scope="module")
def sanitized_harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("cc")
    exe = tmp_path_factory.mktemp("asan") / "harness"
    app = templates_dir() / "app"
    subprocess.run([shutil.which("cc") or "cc", "-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
                    "-fsanitize=address,undefined", "-fno-sanitize-recover=all", f"-I{app}",
                    str(FIXTURES / "proto_harness" / "harness.c"), str(app / "te_protocol.c"), "-o", str(exe)],
                   check=True)
    return exe


_AFTER = p.encode_frame(5, 1, b"ok")


def _verdicts(stream: bytes) -> list[str]:
    """What the device's receiver must make of a byte stream: each piece between
    0x00 delimiters is a frame the host's decoder accepts, or BAD."""
    out = []
    for piece in stream.split(b"\x00"):
        if piece:
            try:
                f = p.decode_frame(piece)
                out.append(f"F:{f.cmd}:{f.seq}:{f.payload.hex() or '-'}")
            except p.ProtocolError:
                out.append("BAD")
    return out


@settings(max_examples=max(10, EXAMPLES // 4), deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)
@given(st.lists(_frames(), min_size=1, max_size=8), st.integers(9, 400))   # 9: the good frame fits
def test_fuzz_firmware_frame_decoder(sanitized_harness: Path, wires: list[bytes], cap: int) -> None:
    """The device's receiver (te_rx_byte, fed byte by byte), compiled with ASan and
    UBSan: no memory error; with room for any frame, the same verdicts as the
    host's decoder; with a buffer of ``cap`` bytes, whatever it makes of the
    garbage, the good frame after it still arrives."""
    stream = b"".join(b"\x00" + w for w in wires) + b"\x00" + _AFTER
    proc = subprocess.run([str(sanitized_harness)], input=f"rx 4096 {stream.hex()}\nrx {cap} {stream.hex()}\n",
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    roomy, tight = proc.stdout.splitlines()
    assert roomy.split() == _verdicts(stream)
    assert tight.split()[-1] == "F:5:1:6f6b"


# ---- the protocol: the firmware itself, in QEMU -------------------------------------

@pytest.fixture(scope="module")
def live_device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeviceClient]:
    from make_project import build, make_project

    from tinyedge.emulator import QemuInstance

    for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "make"):
        require_tool(tool)
    proj = make_project("mps2-an386", tmp_path_factory.mktemp("fuzzfw"))
    build(proj)
    with QemuInstance("mps2-an386", proj / "build" / "firmware.elf") as qemu, \
            DeviceClient(qemu.url, timeout=10, retries=1) as client:   # a loaded CI machine is slow
        client.hello()
        yield client


_U32_EDGES = [0, 1, 2, 255, 256, 399, 400, 401, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF]


@pytest.mark.emulator
@settings(max_examples=max(10, EXAMPLES // 3), deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)
@given(st.lists(st.tuples(st.sampled_from([0x01, 0x02, 0x03, 0x05, 0x07, 0x08, 0x09, 0x0A, 0x00, 0x55, 0xFF]),
                          st.one_of(st.binary(max_size=300),
                                    st.builds(lambda i, off, n: struct.pack("<BIH", i, off, n),
                                              st.integers(0, 255), st.sampled_from(_U32_EDGES),
                                              st.sampled_from([0, 1, 255, 256, 0xFFFF])),
                                    st.builds(lambda e, off, n: struct.pack("<HIH", e, off, n),
                                              st.sampled_from([0, 1, 2, 3, 0xFFFF]), st.sampled_from(_U32_EDGES),
                                              st.sampled_from([0, 1, 255, 0xFFFF])))),
                min_size=1, max_size=6),
       st.binary(max_size=40))
def test_fuzz_firmware_requests_in_qemu(live_device: DeviceClient, requests: list[tuple[int, bytes]],
                                        garbage: bytes) -> None:
    """Requests with wrong lengths, indices, offsets, unknown commands, and raw
    garbage between frames: the firmware answers each with a status (or a NACK)
    and keeps working; it never crashes, hangs or writes out of bounds (the
    fake network's answers stay right)."""
    from make_project import expected_outputs

    dev = live_device
    with time_limit(60):
        dev._write(b"\x00" + garbage)
        for cmd, payload in requests:
            try:
                dev._request(cmd, payload)  # type: ignore[arg-type]
            except TinyEdgeError as exc:
                assert "crashed" not in exc.message and "no answer" not in exc.message, exc.message
        assert dev.echo(b"alive") == b"alive"
        rng = random.Random(len(requests))
        image, bias = rng.randbytes(400), rng.randbytes(3)
        assert dev.infer([image, bias]).outputs == expected_outputs(image, bias)
