"""SOFTMAX (int8 in, int8 or int16 out): the generated C is bit-exact with
TensorFlow Lite Micro's fixed-point softmax, on the host and in QEMU.

Expected values come only from the TFLM interpreter. The models are Keras
softmax layers (rows of 1 to 511 values, ranks 2 to 4; a wide model with rows
of 512 and 1000 values) converted once and cached, and copies with the
quantization and the options patched (helpers of tests/test_ops_activations.py):

- input scale and zero point: log-uniform scales, plus the edges of TFLM's
  Prepare: ``beta * scale * 2^26`` just above 1 (the smallest TFLM accepts)
  and large enough that the real multiplier is capped at 2^31 - 1;
- beta (SoftmaxOptions.beta) from 1e-2 to 1e2;
- the output switched to int16 (scale 1/65536, zero point -32768, TFLM's rule;
  the scale also at the edge of TFLM's 0.001/65536 tolerance) in every other
  copy.

Samples: random int8 rows, plus all -128 and all 127 (flat rows: every value
at the row's maximum) where TFLM gives an answer. With int8 output TFLM aborts
the process (TFLITE_CHECK) once a row's sum of exponentials reaches 512, so
flat rows of 512 values and more are run in a subprocess, which must abort,
and tinyedge's documented value for such a row (the type minimum everywhere,
te_softmax.c) is checked on the host.

Where else SOFTMAX is tested: tests/test_kernels_misc.py (K2's file: the
SOFTMAX family of single-op flatbuffer models, the kws head, the float paths
in QEMU) and the Keras matrix models with a softmax head.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from test_ops_activations import (converted, loguniform, patch_dtype, patch_option_float, patch_quant, problems_of,
                                  random_zp, run_against_oracle, samples_for, set_quant, set_tensor, validate_in_qemu,
                                  variants)
from tinyedge.hostrun import HostNetwork
from tinyedge.model import Graph, Operator, read_model

N_VARIANTS = int(os.environ.get("TE_ACT_VARIANTS", "4")) * 3
MODEL_VERSION = 1
# per-sample row shapes (the last dimension is the softmax axis) and calibration ranges
ROWS = (((3,), (-4.0, 4.0)), ((1,), (-1.0, 1.0)), ((10,), (-6.0, 3.0)), ((4, 10), (-4.0, 4.0)),
        ((2, 3, 5), (-3.0, 3.0)), ((100,), (-8.0, 8.0)), ((511,), (-2.0, 2.0)))
WIDE = (((512,), (-3.0, 3.0)), ((1000,), (-8.0, 8.0)))
INT16 = 7  # TensorType INT16
# beta * input_scale * 2^26 must be above 1 (TFLM aborts otherwise); the multiplier is
# capped at 2^31 - 1 from beta * input_scale = 32 on
EDGE_SCALES = (2.0**-26 * 1.0001, 2.0**-20, 1.0 / 3, 2.0, 40.0, 1000.0)


def _build(rows: tuple[tuple[tuple[int, ...], tuple[float, float]], ...], seed: int) -> tuple[Any, list[np.ndarray]]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    rng = np.random.default_rng(seed)
    ins = [keras.Input(shape, batch_size=1) for shape, _ in rows]
    calib = [rng.uniform(lo, hi, size=(64, *shape)).astype(np.float32) for shape, (lo, hi) in rows]
    return keras.Model(ins, [keras.layers.Softmax()(x) for x in ins]), calib


def _patch(data: bytes, g: Graph, op: Operator, rng: np.random.Generator, variant: int) -> bytes:
    """Input scale / zero point, beta, and int16 output in every other copy (TFLM's rules)."""
    x, y = op.inputs[0], op.outputs[0]
    beta = loguniform(rng, 1e-2, 1e2) if variant % 3 else 1.0
    if variant < len(EDGE_SCALES) and op.index == 0:
        scale = EDGE_SCALES[variant] / beta
    else:
        scale = loguniform(rng, 1e-3, 2.0)
    data = patch_option_float(data, op.index, beta)
    data = patch_quant(data, x, scale=scale, zero_point=random_zp(rng))
    if variant % 2:
        within = 1.0 + float(rng.choice([0.0, 0.0009, -0.0009]))  # TFLM allows 0.001/65536 off
        data = patch_dtype(data, y, INT16)
        data = patch_quant(data, y, scale=within / 65536, zero_point=-32768)
    return data


@pytest.fixture(scope="module")
def softmax_models(request: pytest.FixtureRequest) -> dict[str, bytes]:
    cache = Path(request.config.cache.mkdir("tinyedge-keras-models"))
    return {"rows": converted("softmax", cache, lambda: _build(ROWS, 21), f"{MODEL_VERSION}-{ROWS!r}"),
            "wide": converted("softmax_wide", cache, lambda: _build(WIDE, 22), f"{MODEL_VERSION}-{WIDE!r}")}


def test_models_hold_softmax_as_meant(softmax_models: dict[str, bytes]) -> None:
    for name, rows in (("rows", ROWS), ("wide", WIDE)):
        g = read_model(softmax_models[name])
        assert [op.opcode for op in g.operators] == ["SOFTMAX"] * len(rows)
        assert [g.tensor(op.inputs[0]).shape[1:] for op in g.operators] == [shape for shape, _ in rows]
        assert all(g.tensor(op.outputs[0]).dtype == "int8" for op in g.operators)
    patched = [read_model(d) for d in variants(softmax_models["rows"], 2, seed=1, patch=_patch)]
    assert {t.dtype for g in patched for t in g.output_tensors} == {"int8", "int16"}


def test_softmax_bit_exact(softmax_models: dict[str, bytes], tmp_path: Path) -> None:
    """Rows of 1 to 511 values, random and flat, int8 and int16 output, many input scales and
    betas (the edges of TFLM's Prepare among them) vs TFLM."""
    models = [(f"softmax v{v}", d) for v, d in enumerate(variants(softmax_models["rows"], N_VARIANTS, seed=31,
                                                                   patch=_patch))]
    betas = {read_model(d).operators[0].options["beta"] for _, d in models}
    assert len(betas) > 3
    compared, bad = run_against_oracle(models, tmp_path, seed=3)
    assert not bad, "not bit-exact with TFLM:\n" + "\n".join(bad[:40])
    assert compared > 50_000


def _wide_random_only(data: bytes, g: Graph, op: Operator, rng: np.random.Generator, variant: int) -> bytes:
    """Wide rows whose random samples keep the sum of exponentials below 512 with int8 output:
    beta * scale >= 0.05 spreads the 256 int8 values over exp(-12.75)..1."""
    beta = loguniform(rng, 0.5, 2.0)
    data = patch_option_float(data, op.index, beta)
    data = patch_quant(data, op.inputs[0], scale=loguniform(rng, 0.05, 1.0) / beta, zero_point=random_zp(rng))
    if variant % 2:
        data = patch_dtype(data, op.outputs[0], INT16)
        data = patch_quant(data, op.outputs[0], scale=1 / 65536, zero_point=-32768)
    return data


def test_wide_rows_bit_exact(softmax_models: dict[str, bytes], tmp_path: Path) -> None:
    """Rows of 512 and 1000 values: random samples (and flat ones with int16 output) vs TFLM.
    run_against_oracle's flat samples would make TFLM abort with int8 output, so the int8
    copies get random rows only."""
    models = variants(softmax_models["wide"], 4, seed=32, patch=_wide_random_only)[1:]
    int16 = [(f"wide v{v}", d) for v, d in enumerate(models) if read_model(d).output_tensors[0].dtype == "int16"]
    int8 = [(f"wide v{v}", d) for v, d in enumerate(models) if read_model(d).output_tensors[0].dtype == "int8"]
    assert int16 and int8
    _, bad = run_against_oracle(int16, tmp_path / "int16", seed=4)
    assert not bad, "not bit-exact with TFLM:\n" + "\n".join(bad)
    from tinyedge.oracle import Oracle

    rng = np.random.default_rng(5)
    for name, data in int8:
        g = read_model(data, name)
        host = HostNetwork(g, tmp_path / name.replace(" ", "_"))
        samples = samples_for(g, rng)[:-2]  # the random ones
        got = host.run_many(samples)
        oracle = Oracle(data)
        for s, outs in zip(samples, got):
            for w, h in zip(oracle.run(s), outs, strict=True):
                assert np.array_equal(w, h.reshape(w.shape)), name


_ABORT_SCRIPT = """
import sys
import numpy as np
from tinyedge.oracle import TflmOracle
o = TflmOracle(open(sys.argv[1], "rb").read())
print(o.run([np.full(d["shape"], int(sys.argv[2]), np.int8) for d in o.input_details])[0].tolist(), flush=True)
"""


def test_flat_wide_int8_rows_where_tflm_aborts(softmax_models: dict[str, bytes], tmp_path: Path) -> None:
    """Flat int8-output rows of 512 and 1000 values make TFLM abort (its exponent check): TFLM
    gives no answer there, and tinyedge writes -128 (every exact probability is below 2^-9).
    A flat row of 511 values still has TFLM's answer (test_softmax_bit_exact compares it)."""
    from tinyedge.oracle import Oracle

    wide = softmax_models["wide"]
    model = tmp_path / "wide.tflite"
    model.write_bytes(wide)
    proc = subprocess.run([sys.executable, "-c", _ABORT_SCRIPT, str(model), "7"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -6 and not proc.stdout, (proc.returncode, proc.stdout[:200], proc.stderr[-300:])
    g = read_model(wide)
    outs = HostNetwork(g, tmp_path / "host").run([np.full(t.shape, 7, np.int8) for t in g.input_tensors])
    assert all(np.all(o == -128) for o in outs), [np.unique(o) for o in outs]
    # the 511 row: TFLM answers without aborting
    rows = softmax_models["rows"]
    g511 = read_model(rows)
    want = Oracle(rows).run([np.full(t.shape, 7, np.int8) for t in g511.input_tensors])
    assert 511 in [w.shape[-1] for w in want]


def test_tflm_abort_is_a_clear_error_for_validate(softmax_models: dict[str, bytes]) -> None:
    """validate runs TFLM in a child process: TFLM aborting on an input ends as one
    clear error (and tinyedge lives on), not as the end of the process."""
    from tinyedge.errors import TinyEdgeError
    from tinyedge.oracle import IsolatedTflmOracle

    wide = softmax_models["wide"]
    g = read_model(wide)
    oracle = IsolatedTflmOracle(wide)
    try:
        with pytest.raises(TinyEdgeError) as exc:
            oracle.run([np.full(t.shape, 7, np.int8) for t in g.input_tensors])
    finally:
        oracle.close()
    assert "TensorFlow Lite Micro itself crashed" in exc.value.message and "SIGABRT" in exc.value.message
    fresh = IsolatedTflmOracle(wide)  # a non-flat input still gets TFLM's answer in a new child
    try:
        rng = np.random.default_rng(3)
        out = fresh.run([rng.integers(-128, 128, t.shape, dtype=np.int8) for t in g.input_tensors])
        assert sorted(o.shape[-1] for o in out) == [512, 1000]
    finally:
        fresh.close()


# ---------------------------------------------------------------- check() refusals


def test_check_names_tflm_rules(softmax_models: dict[str, bytes]) -> None:
    rows = softmax_models["rows"]
    p = problems_of(rows, "SOFTMAX", lambda g, op: set_quant(g, op.outputs[0], zero_point=0))
    assert "zero point -128" in p and "TFLM" in p
    p = problems_of(rows, "SOFTMAX", lambda g, op: set_quant(g, op.outputs[0], scale=1 / 255))
    assert "scale 1/256 exactly" in p
    p = problems_of(rows, "SOFTMAX", lambda g, op: set_tensor(g, op.outputs[0], dtype="int16"))
    assert "int16 output must have zero point -32768 and scale 1/65536" in p
    p = problems_of(rows, "SOFTMAX", lambda g, op: set_quant(set_tensor(g, op.outputs[0], dtype="int16"),
                                                            op.outputs[0], scale=1.0011 / 65536, zero_point=-32768))
    assert "int16 output must have" in p
    assert problems_of(rows, "SOFTMAX", lambda g, op: set_quant(set_tensor(g, op.outputs[0], dtype="int16"),
                                                               op.outputs[0], scale=1.0009 / 65536,
                                                               zero_point=-32768)) == ""
    p = problems_of(rows, "SOFTMAX", lambda g, op: set_quant(g, op.inputs[0], scale=2.0**-27))
    assert "is not above 1" in p and "aborts" in p
    p = problems_of(rows, "SOFTMAX", lambda g, op: set_tensor(set_tensor(g, op.inputs[0], dtype="int16"),
                                                             op.outputs[0], dtype="int16"))
    assert "input dtype int16 is not supported" in p
    from dataclasses import replace

    p = problems_of(rows, "SOFTMAX", lambda g, op: replace(g, operators=[
        replace(o, options={"beta": -1.0}) if o.index == op.index else o for o in g.operators]))
    assert "beta -1" in p


# ---------------------------------------------------------------- emulator


@pytest.mark.emulator
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an385", "mps3-an547", "microbit"])  # M4F, M3, M55, M0
def test_softmax_on_device(board: str, softmax_models: dict[str, bytes], tmp_path: Path) -> None:
    """Patched copies with int16 and int8 output as firmware in QEMU: TFLM's bytes (on the M0
    too: no CLZ or long multiply instruction there, libgcc's helpers instead)."""
    for v, data in enumerate(variants(softmax_models["rows"], 2, seed=33, patch=_patch)[1:]):
        validate_in_qemu(data, f"softmax v{v + 1}", board, tmp_path / f"v{v + 1}", seed=v)
