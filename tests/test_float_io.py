"""Models with float input and output (``convert_keras(..., io="float")``: a
QUANTIZE at each input, a DEQUANTIZE at each output), run on the host and
compared with TensorFlow Lite Micro.

The comparison is EXACT, bit for bit on the float32 outputs (``-0.0`` and
``0.0`` count as different). Why that is achievable: the only float
arithmetic in such a model is at its edges. TFLM's QUANTIZE maps a float to
int8 with one float32 division and a rounding half away from zero, its
DEQUANTIZE maps int8 to float with one rounding (see tinyedge/ops/quantize.py);
the generated C does the same IEEE operations (with ``-ffp-contract=off``), so
round-to-nearest gives the same bits. Everything in between is integer and
already exact. A tolerance would hide a wrong recipe (e.g. the x86 TFLite
interpreter's ``x * (1/s)`` rounded half to even), so none is allowed.

Inputs probe the float -> int8 rounding: values on the exact half-way points
between two quantization steps and the floats just beside them, values far
outside the calibration range (saturation to -128/127), signed zeros, tiny
and denormal values, and random values over (and beyond) the range. Tensor
sizes are not multiples of 8 (the x86 interpreter's block size), and the
models include several inputs and several outputs (order matters), a softmax
head, a tanh head, a MobileNet-like block and an LSTM (state carried across
samples in order, as in the oracle).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from keras_models import KerasCase
from test_keras_matrix import matrix_cache, run_host_vs_oracle, tflite_for  # noqa: F401 (a fixture)
from tinyedge.model import Graph, read_model
from tinyedge.oracle import TflmOracle

F32 = np.float32


def _f(name: str, shape: object, expr: str, ops: str, **kw: object) -> KerasCase:
    shapes = shape if isinstance(shape[0], tuple) else (shape,)  # type: ignore[index]
    return KerasCase(name, shapes, expr, tuple(ops.split()), io="float", **kw)  # type: ignore[arg-type]


FLOAT_CASES: tuple[KerasCase, ...] = (
    _f("fio_cnn_softmax", (11, 11, 3),
       "L.Softmax()(L.Dense(5)(L.Flatten()(L.MaxPooling2D(2)(L.Conv2D(6, 3, padding='same', activation='relu')(x)))))",
       "QUANTIZE CONV_2D MAX_POOL_2D RESHAPE FULLY_CONNECTED SOFTMAX DEQUANTIZE"),
    _f("fio_two_inputs", ((5, 5, 3), (5, 5, 3)), "L.Conv2D(7, 1)(L.Add()(x))",
       "QUANTIZE QUANTIZE ADD CONV_2D DEQUANTIZE", ranges=((-1.0, 2.0), (-5.0, 0.5))),
    _f("fio_two_outputs", (19,),
       "[h := L.Dense(13, activation='relu')(x), L.Dense(3)(h), L.Dense(10, activation='tanh')(h)][1:]",
       "QUANTIZE FULLY_CONNECTED FULLY_CONNECTED DEQUANTIZE FULLY_CONNECTED TANH DEQUANTIZE"),
    _f("fio_mobilenet_block", (10, 10, 3), """[
            s := L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(8, 3, strides=2, padding='same', use_bias=False)(x))),
            d := L.ReLU(6.0)(L.BatchNormalization()(L.DepthwiseConv2D(3, padding='same', use_bias=False)(s))),
            p := L.BatchNormalization()(L.Conv2D(8, 1, use_bias=False)(d)),
            L.Add()([s, p]),
        ][-1]""", "QUANTIZE CONV_2D DEPTHWISE_CONV_2D CONV_2D ADD DEQUANTIZE"),
    _f("fio_lstm", (7, 5), "L.Softmax()(L.Dense(3)(L.LSTM(9)(x)))",
       "QUANTIZE UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE FULLY_CONNECTED SOFTMAX DEQUANTIZE"),
)
_BY_NAME = {c.name: c for c in FLOAT_CASES}


def _quantize_params(g: Graph, input_index: int) -> tuple[float, int]:
    """(scale, zero point) of the QUANTIZE fed by model input ``input_index``."""
    op = next(o for o in g.operators if o.opcode == "QUANTIZE" and o.inputs[0] == input_index)
    t = g.tensor(op.outputs[0])
    return float(t.scale), int(t.zero_point)


def _probe_values(scale: float, zp: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Flat float32 vectors of ``size`` values each, aimed at the float -> int8 rounding."""
    s = F32(scale)
    k = np.arange(-128 - zp - 2, 128 - zp + 2, dtype=np.float64)  # steps around the whole int8 range
    ties = (k + 0.5) * float(s)
    cands = np.concatenate([
        ties, np.nextafter(ties.astype(F32), F32(np.inf)), np.nextafter(ties.astype(F32), F32(-np.inf)),
        k * float(s),  # exactly representable grid points (as close as float32 gets)
        [0.0, -0.0, 1e-40, -1e-40, 1e-30, -1e-30, 1e6, -1e6, 3e38, -3e38],
        (-128 - zp) * float(s) - float(s) * np.array([0.49, 0.5, 0.51, 3.0]),
        (127 - zp) * float(s) + float(s) * np.array([0.49, 0.5, 0.51, 3.0]),
    ]).astype(F32)
    rng.shuffle(cands)
    out = [np.resize(cands[i:], size) for i in range(0, len(cands), size)]  # every candidate, at every lane
    lo, hi = (-128 - zp) * float(s), (127 - zp) * float(s)
    out += [rng.uniform(lo - (hi - lo) * 0.25, hi + (hi - lo) * 0.25, size).astype(F32) for _ in range(4)]
    out += [np.zeros(size, F32), np.full(size, -0.0, F32)]
    return out


def float_samples(g: Graph, seed: int) -> list[list[np.ndarray]]:
    """Per sample one float32 array per model input; inputs probed independently, padded
    with random values where one input has fewer probe vectors than another."""
    rng = np.random.default_rng(seed)
    per_input = []
    for t in g.input_tensors:
        assert t.dtype == "float32", t.dtype
        scale, zp = _quantize_params(g, t.index)
        per_input.append([v.reshape(t.shape) for v in _probe_values(scale, zp, t.size, rng)])
    n = max(len(v) for v in per_input)
    return [[vs[i % len(vs)] for vs in per_input] for i in range(n)]


@pytest.mark.parametrize("name", list(_BY_NAME))
def test_float_io_bit_exact(name: str, matrix_cache: Path, tmp_path: Path) -> None:
    c = _BY_NAME[name]
    data = tflite_for(c, matrix_cache)  # exact op list (QUANTIZE/DEQUANTIZE at the edges), float32 I/O
    g = read_model(data, name)
    assert all(t.dtype == "float32" for t in g.input_tensors + g.output_tensors)
    sizes = [t.size for t in g.input_tensors + g.output_tensors]
    assert any(s % 8 and s > 8 for s in sizes), f"{name}: no tensor exercises both the 8-block and the tail loop"
    samples = float_samples(g, zlib.crc32(name.encode()))
    n = run_host_vs_oracle(data, name, tmp_path / "net", samples=samples)
    assert n == len(samples) * sum(t.size for t in g.output_tensors)


def test_float_probes_separate_the_roundings(matrix_cache: Path) -> None:
    """The probes are not vacuous: on them TFLM's QUANTIZE output (read back from the
    interpreter) differs from the x86 TFLite interpreter's block recipe (x * (1/s) rounded half
    to even) and from a double division rounded half away from zero (its tail recipe), at some
    lanes each -- so a wrong recipe would fail test_float_io_bit_exact."""
    c = _BY_NAME["fio_two_inputs"]
    data = tflite_for(c, matrix_cache)
    g = read_model(data, c.name)
    t = g.input_tensors[0]
    qop = next(o for o in g.operators if o.opcode == "QUANTIZE" and o.inputs[0] == t.index)
    scale, zp = _quantize_params(g, t.index)
    tflm = TflmOracle(data, preserve_all_tensors=True)
    inv = F32(1.0 / float(F32(scale)))
    differ_even = differ_double = 0
    for x in _probe_values(scale, zp, t.size, np.random.default_rng(5)):
        tflm.run([x.reshape(i.shape) if i.index == t.index else np.zeros(i.shape, F32) for i in g.input_tensors])
        q = np.array(tflm._interp.GetTensor(qop.outputs[0], 0)["tensor_data"]).reshape(-1).astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            even = np.clip(np.rint(x * inv).astype(np.float64) + zp, -128, 127)
            y = x.astype(np.float64) / float(F32(scale))
            away = np.clip(np.sign(y) * np.floor(np.abs(y) + 0.5) + zp, -128, 127)
        fits = np.abs(y) < 2.0**31  # beyond: x86's INT32_MIN "integer indefinite" in every recipe
        differ_even += int(np.count_nonzero((q != even) & fits))
        differ_double += int(np.count_nonzero((q != away) & fits))
    assert differ_even > 0 and differ_double > 0, (differ_even, differ_double)
