"""uint8 model inputs/outputs: the published-model pattern.

TF's converter with ``inference_input_type=tf.uint8`` / ``inference_output_type=tf.uint8`` keeps
the network int8 and puts a QUANTIZE uint8 -> int8 after each input and a QUANTIZE int8 -> uint8
before each output (equal scales, zero points 128 apart). TensorFlow Lite Micro
(micro/kernels/quantize_common.cc) requantizes those with reference_ops::Requantize: every element
``clamp(MultiplyByQuantizedMultiplier(q - in_zp, mult, shift) + out_zp)``, ties of the final shift
away from zero, clamped to the output type. It has no uint8 -> uint8 kernel (Eval: "Input uint8,
output uint8 not supported"), so tinyedge refuses that too.

Checked here, expected values only from TFLM:
- single QUANTIZE ops uint8 -> int8 and int8 -> uint8 over tensor sizes around the x86 TFLite
  interpreter's blocks of 16, random scales (shifts left and right), equal scales with the
  converter's zero points, full-range inputs (all 0/-128, all 255/127);
- a witness: a value whose requantization is a negative tie, at every position of a row: TFLM
  rounds it away from zero everywhere (the x86 interpreter rounded it up in its blocks of 16);
- uint8 -> uint8: TFLM refuses it, and so does ``check``;
- a Keras model converted by tf.lite.TFLiteConverter itself with uint8 I/O, on the host;
- data files for uint8 inputs (uint8 arrays pass through, real values are quantized);
- the same model through ``tinyedge validate --emulator qemu`` (device protocol with
  uint8 tensors), bit-exact.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import require_tool
from test_kernels_misc import Op, T, build_ops
from tinyedge.codegen.lower import check_graph
from tinyedge.datasets import load_model_inputs
from tinyedge.hostrun import HostNetwork
from tinyedge.model import read_model
from tinyedge.oracle import Oracle, TflmOracle

F32 = np.float32
SIZES = (1, 7, 15, 16, 17, 31, 32, 33, 48, 69, 100)
RANGE = {"int8": (-128, 127), "uint8": (0, 255)}
MODEL_VERSION = 1  # bump when _keras_uint8_model changes


def _scale(rng: np.random.Generator, lo: float = -3.0, hi: float = 0.0) -> float:
    return float(F32(10 ** rng.uniform(lo, hi)))


def _zp(rng: np.random.Generator, dtype: str) -> int:
    lo, hi = RANGE[dtype]
    return int(rng.integers(lo, hi + 1))


def _requantize_ops(rng: np.random.Generator) -> list[Op]:
    ops = []
    for src, dst in (("uint8", "int8"), ("int8", "uint8")):
        for n in SIZES:
            si = _scale(rng)
            so = float(F32(si * 10 ** rng.uniform(-2, 2)))
            ops.append(Op("QUANTIZE", [T((1, n), src, si, _zp(rng, src))], [T((1, n), dst, so, _zp(rng, dst))]))
        # what the converter writes: equal scales, zero points 128 apart
        for n, zp8 in ((17, -128), (40, 3), (1, 127)):
            s = _scale(rng)
            zin = zp8 + 128 if src == "uint8" else zp8
            zout = zp8 + 128 if dst == "uint8" else zp8
            ops.append(Op("QUANTIZE", [T((1, n), src, s, zin)], [T((1, n), dst, s, zout)]))
    ops.append(Op("QUANTIZE", [T((1, 5, 5, 3), "uint8", 1 / 255, 0)], [T((1, 5, 5, 3), "int8", 1 / 255, -128)]))
    return ops


def _full_range(g_inputs: list, rng: np.random.Generator, n: int) -> list[list[np.ndarray]]:
    samples = []
    for k in range(n + 2):
        sample = []
        for t in g_inputs:
            lo, hi = RANGE[t.dtype]
            fill = lo if k == n else hi if k == n + 1 else None
            x = (np.full(t.shape, fill) if fill is not None else rng.integers(lo, hi + 1, t.shape))
            sample.append(x.astype(t.dtype))
        samples.append(sample)
    return samples


def _mismatches(model: bytes, workdir: Path, samples: list[list[np.ndarray]]) -> tuple[int, list[str]]:
    g = read_model(model, "<test>")
    got = HostNetwork(g, workdir).run_many(samples)
    oracle = Oracle(model)
    checked, bad = 0, []
    for k, (sample, outs) in enumerate(zip(samples, got, strict=True)):
        for j, (o, w) in enumerate(zip(outs, oracle.run(sample), strict=True)):
            assert o.dtype == w.dtype
            checked += o.size
            diff = np.flatnonzero(o.reshape(-1) != w.reshape(-1))
            if diff.size:
                bad.append(f"sample {k} output {j}: {diff.size} of {o.size} differ, first at {diff[:3].tolist()}: "
                           f"ours {o.reshape(-1)[diff[:3]].tolist()} oracle {w.reshape(-1)[diff[:3]].tolist()}")
    return checked, bad


def test_requantize_uint8_single_ops_bit_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    model = build_ops(_requantize_ops(rng))
    g = read_model(model, "requantize-u8")
    assert not check_graph(g), [str(p) for p in check_graph(g)]
    kinds = {(g.tensor(op.inputs[0]).dtype, g.tensor(op.outputs[0]).dtype) for op in g.operators}
    assert kinds == {("uint8", "int8"), ("int8", "uint8")}
    checked, bad = _mismatches(model, tmp_path, _full_range(g.input_tensors, rng, 10))
    assert not bad, "\n".join(bad)
    assert checked > 10_000


@pytest.mark.parametrize("src,dst", [("uint8", "int8"), ("int8", "uint8")])
def test_requantize_uint8_witness_negative_tie(src: str, dst: str, tmp_path: Path) -> None:
    """in/out = 1/4 (mult 2^30, shift -1): q - in_zp = -2 is exactly -0.5 after the multiply.
    TFLM rounds it away from zero (out_zp - 1) at every position of a 17-element row (the x86
    interpreter gave out_zp in its block of 16, out_zp - 1 in the tail); ours gives TFLM's."""
    zin = 100 if src == "uint8" else 0
    zout = 100 if dst == "uint8" else 0
    model = build_ops([Op("QUANTIZE", [T((1, 17), src, 2.0 ** -8, zin)], [T((1, 17), dst, 2.0 ** -6, zout)])])
    x = np.full((1, 17), zin - 2).astype(src)
    want = TflmOracle(model).run([x])[0].reshape(-1)
    assert (want.astype(np.int64) == zout - 1).all(), want  # away from zero, everywhere
    got = HostNetwork(read_model(model, "witness"), tmp_path).run(([x]))[0].reshape(-1)
    assert got.tobytes() == want.tobytes()


def test_uint8_to_uint8_is_refused_as_tflm_refuses_it() -> None:
    """TFLM's QUANTIZE has no uint8 -> uint8 kernel: its Invoke fails; tinyedge's check says why."""
    model = build_ops([Op("QUANTIZE", [T((1, 5), "uint8", 0.1, 100)], [T((1, 5), "uint8", 0.2, 120)])])
    problems = [str(p) for p in check_graph(read_model(model, "u8u8"))]
    assert any("uint8 -> uint8 is not supported: TFLM's QUANTIZE has no such kernel" in p for p in problems), problems
    with pytest.raises(RuntimeError):
        TflmOracle(model).run([np.zeros((1, 5), np.uint8)])


# ------------------------------------------------------------------ a converter-made uint8 model

def _keras_uint8_model() -> bytes:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf
    from keras import layers as L

    keras.utils.set_random_seed(5)
    x = keras.Input((9, 9, 3), batch_size=1)
    h = L.Conv2D(8, 3, strides=2, activation="relu")(x)
    h = L.DepthwiseConv2D(3, padding="same", activation="relu6")(h)
    h = L.Flatten()(h)
    m = keras.Model(x, [L.Dense(37)(h), L.Dense(5, activation="softmax")(h)])
    rng = np.random.default_rng(5)

    def rep():  # type: ignore[no-untyped-def]
        for _ in range(16):
            yield [rng.uniform(0.0, 1.0, size=(1, 9, 9, 3)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(m)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.uint8
    conv.inference_output_type = tf.uint8
    with warnings.catch_warnings():  # "Statistics for quantized inputs were expected": TF's own default
        warnings.simplefilter("ignore")
        return bytes(conv.convert())


@pytest.fixture(scope="module")
def uint8_model(request: pytest.FixtureRequest) -> bytes:
    tf_version = importlib.metadata.version("tensorflow")
    key = hashlib.sha256(f"{MODEL_VERSION} {tf_version}".encode()).hexdigest()[:16]
    path = Path(request.config.cache.mkdir("tinyedge-uint8")) / f"uint8_io_{key}.tflite"
    if not path.exists():  # xdist workers may both build it: write whole, then rename
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(_keras_uint8_model())
        os.replace(tmp, path)
    return path.read_bytes()


def test_converter_uint8_io_model_has_the_pattern(uint8_model: bytes) -> None:
    g = read_model(uint8_model, "uint8_io")
    assert [t.dtype for t in g.input_tensors] == ["uint8"]
    assert [t.dtype for t in g.output_tensors] == ["uint8", "uint8"]
    assert not check_graph(g)
    edges = [op for op in g.operators if op.opcode == "QUANTIZE"]
    assert len(edges) == 3  # one at the input, one per output
    for op in edges:
        x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
        assert {x.dtype, y.dtype} == {"uint8", "int8"}
        assert x.scale == y.scale
        assert (x.zero_point - y.zero_point) * (1 if x.dtype == "uint8" else -1) == 128


def test_converter_uint8_io_model_bit_exact_on_host(uint8_model: bytes, tmp_path: Path) -> None:
    g = read_model(uint8_model, "uint8_io")
    checked, bad = _mismatches(uint8_model, tmp_path, _full_range(g.input_tensors, np.random.default_rng(3), 20))
    assert not bad, "\n".join(bad)
    assert checked == 22 * 42


def test_data_files_for_uint8_inputs(uint8_model: bytes, tmp_path: Path) -> None:
    """uint8 arrays are the tensor's own bytes (passed through); real values are
    quantized with the input's scale and zero point, saturated to 0..255."""
    g = read_model(uint8_model, "uint8_io")
    t = g.input_tensors[0]
    raw = np.random.default_rng(4).integers(0, 256, size=(3, 9, 9, 3)).astype(np.uint8)
    np.save(tmp_path / "raw.npy", raw)
    got = load_model_inputs(tmp_path / "raw.npy", g)
    assert all(s[0].dtype == np.uint8 and s[0].tobytes() == raw[i].tobytes() for i, s in enumerate(got))
    steps = np.concatenate([np.arange(-3, 120), np.arange(140, 260)])  # 243 values, beyond 0..255 too
    real = ((steps - t.zero_point) * float(t.scale)).astype(np.float32).reshape(1, 9, 9, 3)
    np.save(tmp_path / "real.npy", real)
    q = load_model_inputs(tmp_path / "real.npy", g)[0][0].reshape(-1)
    assert q.dtype == np.uint8
    assert np.array_equal(q.astype(np.int64), np.clip(steps, 0, 255))


# ------------------------------------------------------------------ QEMU, through the CLI

@pytest.mark.emulator
def test_uint8_io_validates_in_qemu_cli(uint8_model: bytes, tmp_path: Path) -> None:
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "make"):
        require_tool(tool)
    model = tmp_path / "uint8_io.tflite"
    model.write_bytes(uint8_model)
    x = np.random.default_rng(6).integers(0, 256, size=(4, 9, 9, 3)).astype(np.uint8)
    x[0], x[1] = 0, 255
    np.save(tmp_path / "data.npy", x)
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tinyedge.cli", "validate", str(model), "--board", "mps2-an386", "--emulator", "qemu",
         "--data", str(tmp_path / "data.npy"), "--report", str(report), "--project", str(tmp_path / "fw")],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rep = json.loads(report.read_text())
    assert rep["all_exact"] and rep["summary"]["exact"] == 4
    assert [i["dtype"] for i in rep["device"]["inputs"]] == ["uint8"]
    assert [o["dtype"] for o in rep["device"]["outputs"]] == ["uint8", "uint8"]
    assert all(s["output_hex"] == s["oracle_hex"] for s in rep["samples"])
