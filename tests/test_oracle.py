"""The oracle is TensorFlow Lite Micro; which ops it lacks is checked against the pinned wheel.

Each supported op is put, alone, into a minimal model built here with the
flatbuffer object API; the pinned TFLM interpreter either finds a kernel for it
or says "Didn't find op for builtin opcode" -- whatever its Prepare then thinks
of our dummy tensors does not matter. tinyedge's list of ops TFLM lacks
(``tinyedge.oracle.TFLM_LACKS``), which routes such models to the TFLite
interpreter, must be exactly the set the wheel reports.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import flatbuffers
import numpy as np
import pytest

from conftest import ROOT, shared_model
from modelpatch import strip_tensor_names
from tinyedge.model import read_model
from tinyedge.ops import load_all
from tinyedge.oracle import (
    TFLM_LACKS,
    TFLM_PINNED,
    Oracle,
    TflmOracle,
    SplitOracle,
    TfliteInterpreter,
    choose_oracle,
)


def _one_op_model(opcode: str) -> bytes:
    from ai_edge_litert import schema_py_generated as s

    code = getattr(s.BuiltinOperator, opcode)
    model = s.ModelT()
    model.version = 3
    oc = s.OperatorCodeT()
    oc.builtinCode = code
    oc.deprecatedBuiltinCode = min(code, 127)
    oc.version = 1
    model.operatorCodes = [oc]
    empty = s.BufferT()
    model.buffers = [empty]
    tensors = []
    for name in ("a", "b", "y"):
        t = s.TensorT()
        t.shape = [1, 4]
        t.type = s.TensorType.INT8
        t.buffer = 0
        t.name = name
        q = s.QuantizationParametersT()
        q.scale = [0.5]
        q.zeroPoint = [0]
        t.quantization = q
        tensors.append(t)
    op = s.OperatorT()
    op.opcodeIndex = 0
    op.inputs = [0, 1]
    op.outputs = [2]
    sub = s.SubGraphT()
    sub.tensors = tensors
    sub.inputs = [0, 1]
    sub.outputs = [2]
    sub.operators = [op]
    model.subgraphs = [sub]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


_PROBE = """
import sys
from tflite_micro.python.tflite_micro import runtime
try:
    runtime.Interpreter.from_bytes(sys.stdin.buffer.read())
except (RuntimeError, ValueError):
    pass
"""


def _tflm_has_kernel(opcodes: list[str], tmp: Path) -> dict[str, bool]:
    """Per op: does the pinned TFLM find a kernel for it? One child process per op
    (TFLM's Prepare may crash on the dummy tensors; the kernel lookup, and its
    message on stderr, come before)."""
    procs = {}
    for name in opcodes:
        procs[name] = subprocess.Popen([sys.executable, "-c", _PROBE], stdin=subprocess.PIPE,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    found = {}
    for name, proc in procs.items():
        _, stderr = proc.communicate(_one_op_model(name), timeout=120)
        found[name] = b"Didn't find op for builtin opcode" not in stderr
    return found


def test_tflm_lacks_exactly_the_listed_ops(tmp_path: Path) -> None:
    found = _tflm_has_kernel(sorted(load_all()), tmp_path)
    assert {name for name, has in found.items() if not has} == set(TFLM_LACKS)


def test_the_probe_can_tell(tmp_path: Path) -> None:
    """The probe is not blind: an op TFLM certainly has, and one it certainly lacks."""
    assert _tflm_has_kernel(["CONV_2D", "SKIP_GRAM"], tmp_path) == {"CONV_2D": True, "SKIP_GRAM": False}


def test_pinned_version_is_the_installed_one_and_the_packaged_pin() -> None:
    assert importlib.metadata.version("tflite-micro") == TFLM_PINNED
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d for d in deps if d.startswith("tflite-micro")]
    assert len(pins) == 1 and re.match(rf"tflite-micro=={re.escape(TFLM_PINNED)};", pins[0]), pins


def test_models_are_routed_to_tflm_unless_it_lacks_an_op() -> None:
    data = shared_model("kws_ref_model").read_bytes()
    choice = choose_oracle(data, [op.opcode for op in read_model(data).operators])
    assert choice.is_tflm and isinstance(choice.oracle, TflmOracle) and not choice.note
    assert choice.oracle.version == TFLM_PINNED



def test_tflm_refusal_is_one_clear_line() -> None:
    from tinyedge.errors import TinyEdgeError

    with pytest.raises(TinyEdgeError) as exc:
        TflmOracle(_one_op_model("SKIP_GRAM"))
    assert "no kernel for SKIP_GRAM" in exc.value.message and "\n" not in exc.value.message


def test_model_with_unnamed_tensors_loads_and_runs(tmp_path: Path) -> None:
    """TFLM's own test models leave tensor names out: such a model must load
    (not be called corrupt), compile, and give the oracle's answer on the host."""
    from tinyedge.hostrun import HostNetwork

    data = strip_tensor_names(shared_model("kws_ref_model").read_bytes())
    graph = read_model(data, "unnamed.tflite")
    assert all(t.name == "" for t in graph.tensors)
    host = HostNetwork(graph, tmp_path / "host")
    oracle = Oracle(data)
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.integers(-128, 128, size=graph.input_tensors[0].shape, dtype=np.int8)
        oracle.reset()
        want = oracle.run([x])
        got = host.run([x])
        assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))


def test_host_without_tflm_says_so_and_uses_tflite(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the tflite-micro wheel cannot be installed (not Linux x86-64), the run
    goes on against the TFLite interpreter and says in one line why."""
    import platform

    for mod in ("tflite_micro", "tflite_micro.python", "tflite_micro.python.tflite_micro",
                "tflite_micro.python.tflite_micro.runtime"):
        monkeypatch.setitem(sys.modules, mod, None)  # import fails as where no wheel exists
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    data = shared_model("kws_ref_model").read_bytes()
    choice = choose_oracle(data, [op.opcode for op in read_model(data).operators])
    assert not choice.is_tflm and isinstance(choice.oracle, TfliteInterpreter)
    assert "cannot be checked on this host" in choice.note and "x86-64" in choice.note
    assert "\n" not in choice.note


def test_split_oracle_cuts_and_rejoins_the_graph_exactly() -> None:
    """Cutting ops out (here ops TFLM has: a RESHAPE and an AVERAGE_POOL_2D, which the
    TFLite interpreter then runs alone) and iterating gives TFLM's whole-model answer:
    the machinery that serves models with TILE / RELU_N1_TO_1 loses nothing."""
    data = shared_model("kws_ref_model").read_bytes()
    g = read_model(data)
    cut = [op.index for op in g.operators if op.opcode in ("RESHAPE", "AVERAGE_POOL_2D")]
    assert len(cut) == 2
    split = SplitOracle(data, cut)
    whole = TflmOracle(data)
    rng = np.random.default_rng(5)
    for _ in range(4):
        x = rng.integers(-128, 128, size=g.input_tensors[0].shape, dtype=np.int8)
        assert all(np.array_equal(a, b) for a, b in zip(split.run([x]), whole.run([x]), strict=True))


def test_models_with_tile_follow_tflm_for_every_other_op(request: pytest.FixtureRequest) -> None:
    """unet_upsampling has TILE (UpSampling2D) before CONV_2Ds. The oracle computes TILE with
    the TFLite interpreter and the rest with TFLM; the x86 TFLite interpreter alone rounds some
    of the convolution's ties differently (so the split is what makes the answer TFLM's)."""
    from test_keras_matrix import MATRIX, tflite_for

    cache = Path(request.config.cache.mkdir("tinyedge-keras-matrix"))
    data = tflite_for(next(c for c in MATRIX if c.name == "unet_upsampling"), cache)
    g = read_model(data)
    assert "TILE" in [op.opcode for op in g.operators]
    choice = choose_oracle(data, [op.opcode for op in g.operators])
    split = choice.oracle
    assert not choice.is_tflm and isinstance(split, SplitOracle)
    assert "TILE" in choice.note and "TFLite interpreter" in choice.note and "TFLM every other op" in choice.note
    tflite = TfliteInterpreter(data)
    rng = np.random.default_rng(2)
    differ = 0
    for _ in range(20):
        xs = [rng.integers(-128, 128, size=t.shape, dtype=np.int8) for t in g.input_tensors]
        differ += sum(int(np.count_nonzero(a != b)) for a, b in zip(split.run(xs), tflite.run(xs), strict=True))
    assert differ > 0


def test_the_oracle_child_dies_with_its_parent(tmp_path: Path) -> None:
    """TFLM runs in a child process (IsolatedTflmOracle); when the process that started
    it is killed outright (SIGKILL: no handler runs), the child goes too -- even one
    that is busy and would never read the end of its input (here: stopped)."""
    import os
    import signal
    import time

    parent = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from tinyedge.oracle import IsolatedTflmOracle\n"
        "o = IsolatedTflmOracle(sys.argv[1])\n"
        "print(o._proc.pid, flush=True)\n"
        "time.sleep(600)\n"), str(shared_model("hello_world_int8"))], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    os.kill(child, 0)                      # alive while its parent is
    os.kill(child, signal.SIGSTOP)         # busy: it will not see its input pipe close
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    pytest.fail(f"the TFLM child {child} outlived its parent")
