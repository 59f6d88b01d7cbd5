"""tinyedge.convert and tinyedge.datasets: Keras / .h5 / SavedModel -> full-int8 .tflite.

Expected numbers come from the TFLite oracle and the float model, computed here
independently of the report; tiny models keep every conversion under a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras_models  # noqa: E402  (tests/ is on sys.path)
from tinyedge.convert import ConvertReport, convert_keras, convert_model  # noqa: E402
from tinyedge.datasets import InputSpec, load_dataset, quantize  # noqa: E402
from tinyedge.errors import TinyEdgeError  # noqa: E402
from tinyedge.model import load_model, read_model  # noqa: E402
from tinyedge.oracle import Oracle, Reference, TfliteInterpreter  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CLASSIFIER_OPS = ["RESHAPE", "CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]


def _signals(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """3 easy classes of 16-sample signals: rising ramp, falling ramp, square wave; plus noise."""
    t = np.linspace(-1, 1, 16)
    protos = np.stack([t, -t, np.sign(np.sin(4 * np.pi * t))])
    y = rng.integers(0, 3, n)
    x = protos[y] * rng.uniform(0.5, 1.5, (n, 1)) + 0.1 * rng.standard_normal((n, 16))
    return x[..., None].astype(np.float32), y


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A trained Conv1D classifier saved as .keras, .h5 and a SavedModel, with data files."""
    import keras

    keras.utils.set_random_seed(1)
    d = tmp_path_factory.mktemp("classifier")
    rng = np.random.default_rng(1)
    x, y = _signals(600, rng)
    inp = keras.Input((16, 1), name="signal")
    h = keras.layers.Conv1D(4, 3, activation="relu")(inp)
    h = keras.layers.Flatten()(h)
    out = keras.layers.Dense(3, activation="softmax")(h)
    model = keras.Model(inp, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x[:400], y[:400], epochs=12, batch_size=32, verbose=0)
    model.save(d / "model.keras")
    model.save(d / "model.h5")
    model.export(str(d / "saved"), verbose=False)
    np.save(d / "cal.npy", x[:400])
    np.savez(d / "val.npz", x=x[400:], y=y[400:])
    return {"dir": d, "model": model, "x_val": x[400:], "y_val": y[400:]}


def _float_vs_oracle(model: Any, tflite: bytes, x: np.ndarray) -> tuple[float, float]:
    """(max |float - int8|, top-1 agreement), computed here with the oracle, not the report."""
    g = read_model(tflite)
    tin, tout = g.input_tensors[0], g.output_tensors[0]
    oracle = Oracle(tflite)
    ref = np.asarray(model.predict(x, verbose=0))
    got = []
    for i in range(len(x)):
        xi = x[i : i + 1]
        feed = quantize(xi, tin.quant) if tin.dtype == "int8" else xi
        (q,) = oracle.run([feed])
        got.append(tout.scale * (q.astype(np.float64) - tout.zero_point) if tout.dtype == "int8" else q)
    got_a = np.concatenate(got)
    return float(np.abs(ref - got_a).max()), float(np.mean(ref.argmax(1) == got_a.argmax(1)))


@pytest.mark.parametrize("src", ["model.keras", "model.h5", "saved"])
def test_convert_int8(classifier: dict[str, Any], tmp_path: Path, src: str) -> None:
    d = classifier["dir"]
    out = tmp_path / "out" / "m.tflite"
    report = convert_model(d / src, out, d / "cal.npy", d / "val.npz")
    g = load_model(out)
    assert [op.opcode for op in g.operators] == CLASSIFIER_OPS
    assert [t.dtype for t in g.input_tensors + g.output_tensors] == ["int8", "int8"]
    assert g.input_tensors[0].shape == (1, 16, 1) and g.output_tensors[0].shape == (1, 3)
    assert report.op_counts == {"CONV_2D": 1, "FULLY_CONNECTED": 1, "RESHAPE": 2, "SOFTMAX": 1}
    assert report.source_kind == ("SavedModel" if src == "saved" else "Keras")
    assert report.calibration_samples == 200 and report.calibration_available == 400
    assert report.evaluation_samples == 200 and not report.in_sample
    (drift,) = report.drift
    max_err, agree = _float_vs_oracle(classifier["model"], out.read_bytes(), classifier["x_val"])
    # the report's numbers are the ones measured independently with the oracle
    assert drift.max_abs_error == pytest.approx(max_err, abs=1e-6)
    assert drift.top1_agreement == pytest.approx(agree)
    # sane for an easy classifier: softmax output LSB is 1/256; error of a few LSB
    assert drift.lsb == pytest.approx(1 / 256)
    assert 0 < drift.max_abs_error < 10 / 256 and drift.mean_abs_error < drift.max_abs_error
    assert drift.top1_agreement >= 0.97
    assert drift.accuracy_float is not None and drift.accuracy_float >= 0.9
    assert drift.accuracy_int8 is not None and abs(drift.accuracy_int8 - drift.accuracy_float) <= 0.03
    json.dumps(report.to_dict())


def test_convert_float_io(classifier: dict[str, Any], tmp_path: Path) -> None:
    d = classifier["dir"]
    out = tmp_path / "m_float.tflite"
    report = convert_model(d / "model.keras", out, d / "cal.npy", io="float", max_calibration=50)
    g = load_model(out)
    assert [op.opcode for op in g.operators] == ["QUANTIZE", *CLASSIFIER_OPS, "DEQUANTIZE"]
    assert [t.dtype for t in g.input_tensors + g.output_tensors] == ["float32", "float32"]
    assert report.io == "float" and report.in_sample and report.evaluation_samples == 50
    assert report.calibration_samples == 50
    max_err, agree = _float_vs_oracle(classifier["model"], out.read_bytes(), np.load(d / "cal.npy"))
    assert report.drift[0].lsb == pytest.approx(1 / 256)  # from the tensor DEQUANTIZE reads
    assert report.drift[0].max_abs_error <= max_err + 1e-6  # the 50 in-sample ⊂ the 400
    assert agree >= 0.97


def test_report_format(classifier: dict[str, Any], tmp_path: Path) -> None:
    d = classifier["dir"]
    report = convert_model(d / "model.keras", tmp_path / "m.tflite", d / "cal.npy", d / "val.npz")
    text = report.format()
    assert isinstance(report, ConvertReport)
    assert "int8 I/O" in text and "CONV_2D x1" in text and "top-1 agreement" in text
    assert "signal: int8[1x16x1]" in text and "accuracy float" in text and "LSB" in text


def test_convert_is_quiet(classifier: dict[str, Any], tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    d = classifier["dir"]
    capfd.readouterr()
    convert_model(d / "saved", tmp_path / "m.tflite", d / "cal.npy", max_calibration=20)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_saved_model_module_dynamic_batch_multi_output(tmp_path: Path) -> None:
    """A tf.Module SavedModel, batch None, dict outputs: no SHAPE/PACK, outputs matched by name."""
    import tensorflow as tf

    w = np.random.default_rng(2).standard_normal((8, 3)).astype(np.float32)

    class M(tf.Module):
        def __init__(self) -> None:
            self.w = tf.Variable(w)

        @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="feat")])
        def serve(self, feat: Any) -> dict[str, Any]:
            logits = tf.reshape(tf.matmul(feat, self.w), [-1, 3])
            return {"logits": logits, "probs": tf.nn.softmax(logits)}

    m = M()
    tf.saved_model.save(m, str(tmp_path / "sm"), signatures={"serving_default": m.serve})
    x = np.random.default_rng(3).standard_normal((100, 8)).astype(np.float32)
    np.savez(tmp_path / "cal.npz", feat=x)  # keyed by the input name
    report = convert_model(tmp_path / "sm", tmp_path / "m.tflite", tmp_path / "cal.npz")
    ops = [op.opcode for op in load_model(tmp_path / "m.tflite").operators]
    assert not {"SHAPE", "STRIDED_SLICE", "PACK", "READ_VARIABLE", "VAR_HANDLE"} & set(ops)
    assert {"FULLY_CONNECTED", "SOFTMAX"} <= set(ops)
    by_name = {dr.name: dr for dr in report.drift}
    assert set(by_name) == {"logits", "probs"}
    assert by_name["probs"].float_max <= 1.0 and by_name["logits"].float_min < 0
    for dr in report.drift:  # probs inherit the logits' rounding: a few LSB
        assert dr.lsb is not None and dr.max_abs_error < 8 * dr.lsb
        assert dr.top1_agreement is not None and dr.top1_agreement >= 0.9


def test_multi_input_order(tmp_path: Path) -> None:
    """Inputs of very different ranges, keyed by name in the .npz: calibration and the drift
    report must feed each input its own data (the .tflite orders inputs differently)."""
    import keras

    big, small = keras.Input((4,), name="zeta"), keras.Input((4,), name="alpha")
    model = keras.Model([big, small], keras.layers.Dense(2)(keras.layers.Concatenate()([big, small * 100.0])))
    model.save(tmp_path / "two.keras")
    rng = np.random.default_rng(4)
    xb = rng.uniform(-50, 50, (80, 4)).astype(np.float32)
    xs = rng.uniform(-0.5, 0.5, (80, 4)).astype(np.float32)
    np.savez(tmp_path / "cal.npz", zeta=xb, alpha=xs)
    report = convert_model(tmp_path / "two.keras", tmp_path / "two.tflite", tmp_path / "cal.npz")
    g = load_model(tmp_path / "two.tflite")
    scales = {t.name: t.scale for t in g.input_tensors}
    assert scales["serving_default_zeta:0"] > 10 * scales["serving_default_alpha:0"]
    (dr,) = report.drift
    assert dr.lsb is not None and dr.max_abs_error < 4 * dr.lsb


def test_open_dimension_taken_from_data(tmp_path: Path) -> None:
    import keras

    inp = keras.Input((None, 4))
    keras.Model(inp, keras.layers.Dense(3)(inp)).save(tmp_path / "seq.keras")
    np.save(tmp_path / "cal.npy", np.random.default_rng(5).standard_normal((30, 10, 4)).astype(np.float32))
    report = convert_model(tmp_path / "seq.keras", tmp_path / "seq.tflite", tmp_path / "cal.npy")
    g = load_model(tmp_path / "seq.tflite")
    assert g.input_tensors[0].shape == (1, 10, 4) and g.output_tensors[0].shape == (1, 10, 3)
    assert report.drift[0].shape == (1, 10, 3)


def test_regression_targets_and_single_sample(tmp_path: Path) -> None:
    import keras

    inp = keras.Input((2,))
    model = keras.Model(inp, keras.layers.Dense(1)(keras.layers.Dense(8, activation="relu")(inp)))
    model.save(tmp_path / "reg.keras")
    x = np.random.default_rng(6).uniform(-1, 1, (64, 2)).astype(np.float32)
    np.save(tmp_path / "one.npy", x[0])  # a single sample, shaped like the input
    y = np.asarray(model.predict(x, verbose=0))[:, 0] + 0.25  # a float model off by 0.25
    np.savez(tmp_path / "val.npz", x=x, y=y)
    report = convert_model(tmp_path / "reg.keras", tmp_path / "reg.tflite", tmp_path / "one.npy",
                           tmp_path / "val.npz")
    assert report.calibration_samples == 1 and report.warnings  # too few calibration samples
    (dr,) = report.drift
    assert dr.top1_agreement is None and dr.accuracy_float is None
    assert dr.target_mae_float == pytest.approx(0.25, abs=1e-5)
    assert dr.target_mae_int8 is not None


def test_convert_keras_in_memory() -> None:
    c = keras_models.case("conv_relu6")
    data = convert_keras(keras_models.build_keras(c), keras_models.calibration_data(c)[0])
    g = read_model(data)
    assert [op.opcode for op in g.operators] == ["CONV_2D"]
    assert g.operators[0].options["fused_activation_function"] == 3  # RELU6
    assert len(g.input_tensors[0].quant.scale) == 1
    assert len(g.tensors[g.operators[0].inputs[1]].quant.scale) == 8  # per-channel weights


@pytest.fixture(scope="session")
def model_cache(request: pytest.FixtureRequest) -> Path:
    return Path(request.config.cache.mkdir("tinyedge-keras-models"))


@pytest.mark.parametrize("name", keras_models.NAMES)
def test_keras_model_factory(name: str, model_cache: Path) -> None:
    """Every kernel-test model has exactly its ops (checked by the factory) and runs in the oracle."""
    data = keras_models.tflite_model(name, model_cache)
    keras_models.check_tflite(keras_models.case(name), data)
    oracle = Oracle(data)
    feed = [np.zeros(d["shape"], d["dtype"]) for d in oracle.input_details]
    assert len(oracle.run(feed)) == 1


# --------------------------------------------------------------------------- datasets

def test_dataset_layouts(tmp_path: Path) -> None:
    spec = [InputSpec("img", (4, 4, 1))]
    x = np.arange(3 * 16, dtype=np.float32).reshape(3, 4, 4, 1)
    np.save(tmp_path / "a.npy", x)
    np.save(tmp_path / "one.npy", x[0])
    np.savez(tmp_path / "b.npz", x=x, y=np.eye(3)[[2, 0, 1]])
    np.savez(tmp_path / "c.npz", img=x.astype(np.uint8), extra=np.zeros(2))
    assert len(load_dataset(tmp_path / "a.npy", spec)) == 3
    assert load_dataset(tmp_path / "one.npy", spec).inputs[0].shape == (1, 4, 4, 1)
    b = load_dataset(tmp_path / "b.npz", spec)
    assert list(b.labels()) == [2, 0, 1]
    assert load_dataset(tmp_path / "c.npz", spec).inputs[0].dtype == np.uint8
    two = [InputSpec("a", (2,)), InputSpec("serving_default_b:0", (3,))]
    np.savez(tmp_path / "two.npz", a=np.zeros((5, 2)), b=np.zeros((5, 3)), y=np.arange(5))
    ds = load_dataset(tmp_path / "two.npz", two)
    assert [x.shape for x in ds.inputs] == [(5, 2), (5, 3)] and list(ds.labels()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("content, match", [
    ({"x": np.zeros((5, 4, 4))}, r"shape \[5, 4, 4\].*\[1, 4, 4, 1\]"),
    ({"z": np.zeros((5, 4, 4, 1))}, "no array 'x'"),
    ({"x": np.zeros((5, 4, 4, 1)), "y": np.zeros(4)}, "4 labels for 5 samples"),
    ({"x": np.zeros((0, 4, 4, 1))}, "no samples"),
])
def test_dataset_errors(tmp_path: Path, content: dict[str, np.ndarray], match: str) -> None:
    np.savez(tmp_path / "d.npz", **content)
    with pytest.raises(TinyEdgeError, match=match):
        load_dataset(tmp_path / "d.npz", [InputSpec("img", (4, 4, 1))])


# --------------------------------------------------------------------------- errors

def test_error_missing_files(classifier: dict[str, Any], tmp_path: Path) -> None:
    d = classifier["dir"]
    with pytest.raises(TinyEdgeError, match="model not found"):
        convert_model(tmp_path / "nope.keras", tmp_path / "o.tflite", d / "cal.npy")
    with pytest.raises(TinyEdgeError, match="data file not found"):
        convert_model(d / "model.keras", tmp_path / "o.tflite", tmp_path / "nope.npy")
    with pytest.raises(TinyEdgeError, match="data file not found"):
        convert_model(d / "model.keras", tmp_path / "o.tflite", d / "cal.npy", tmp_path / "nope.npz")


def test_error_shape_mismatch_names_both_shapes(classifier: dict[str, Any], tmp_path: Path) -> None:
    d = classifier["dir"]
    np.save(tmp_path / "bad.npy", np.zeros((10, 16), np.float32))
    with pytest.raises(TinyEdgeError, match=r"\[10, 16\].*\[1, 16, 1\]") as err:
        convert_model(d / "model.keras", tmp_path / "o.tflite", tmp_path / "bad.npy")
    assert "reshape" in err.value.hint
    with pytest.raises(TinyEdgeError, match=r"\[10, 16\].*\[1, 16, 1\]"):
        convert_model(d / "model.keras", tmp_path / "o.tflite", d / "cal.npy", tmp_path / "bad.npy")
    assert not (tmp_path / "o.tflite").exists()


def test_error_unreadable_models(classifier: dict[str, Any], tmp_path: Path) -> None:
    d = classifier["dir"]
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    (tmp_path / "model.onnx").write_bytes(b"x")
    (tmp_path / "notsaved").mkdir()
    cases = [("junk.keras", "cannot load the Keras model"), ("model.onnx", "unknown model format"),
             ("notsaved", "not a SavedModel")]
    for name, match in cases:
        with pytest.raises(TinyEdgeError, match=match):
            convert_model(tmp_path / name, tmp_path / "o.tflite", d / "cal.npy")
    convert_model(d / "model.keras", tmp_path / "ok.tflite", d / "cal.npy", max_calibration=5)
    with pytest.raises(TinyEdgeError, match="already a TFLite model"):
        convert_model(tmp_path / "ok.tflite", tmp_path / "o.tflite", d / "cal.npy")


def test_error_bad_arguments(classifier: dict[str, Any], tmp_path: Path) -> None:
    d = classifier["dir"]
    with pytest.raises(TinyEdgeError, match="io type"):
        convert_model(d / "model.keras", tmp_path / "o.tflite", d / "cal.npy", io="uint8")  # type: ignore[arg-type]
    with pytest.raises(TinyEdgeError, match="max_calibration"):
        convert_model(d / "model.keras", tmp_path / "o.tflite", d / "cal.npy", max_calibration=0)


def test_error_float_op_left_in_graph() -> None:
    """The TF converter silently keeps ops without an int8 kernel in float: refuse that."""
    import keras

    inp = keras.Input((8,))
    model = keras.Model(inp, keras.layers.Lambda(lambda t: keras.ops.sin(t))(keras.layers.Dense(8)(inp)))
    with pytest.raises(TinyEdgeError, match="not fully int8: SIN"):
        convert_keras(model, np.ones((4, 8), np.float32))


def test_error_op_without_tflite_builtin() -> None:
    import keras
    import tensorflow as tf

    inp = keras.Input((8,))
    out = keras.layers.Lambda(lambda t: tf.reshape(tf.linalg.det(tf.reshape(t, (-1, 2, 2, 2))), (-1, 2)))(inp)
    with pytest.raises(TinyEdgeError, match="no builtin kernel.*MatrixDeterminant"):
        convert_keras(keras.Model(inp, out), np.ones((4, 8), np.float32))


def test_error_tensorflow_missing(classifier: dict[str, Any], tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "from pathlib import Path\n"
        "from tinyedge.convert import convert_model\n"
        "from tinyedge.errors import TinyEdgeError\n"
        "try:\n"
        f"    convert_model(Path({str(classifier['dir'] / 'model.keras')!r}), Path({str(tmp_path / 'o')!r}),"
        f" Path({str(classifier['dir'] / 'cal.npy')!r}))\n"
        "except TinyEdgeError as e:\n"
        "    print('MSG', e.message, '|', e.hint)\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert "MSG TensorFlow is not installed" in out.stdout and "pip install tensorflow" in out.stdout


def test_example_sine_model_uses_only_supported_ops() -> None:
    """examples/sine/train.py's model converts to exactly the ops the example promises."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "examples" / "sine" / "train.py"
    spec = importlib.util.spec_from_file_location("sine_train", path)
    assert spec is not None and spec.loader is not None
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    x, _ = train.make_signals(32, np.random.default_rng(0))
    g = read_model(convert_keras(train.build_model(), x))
    allowed = {"FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D",
               "RESHAPE", "SOFTMAX", "ADD", "QUANTIZE", "DEQUANTIZE"}
    ops = [op.opcode for op in g.operators]
    assert set(ops) <= allowed
    assert ops == ["CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MAX_POOL_2D", "CONV_2D", "AVERAGE_POOL_2D",
                   "RESHAPE", "FULLY_CONNECTED", "FULLY_CONNECTED", "SOFTMAX"]


# --------------------------------------------------------------------------- Keras LSTM layers
#
# Keras 3's LSTM traces to a While loop whose int8 calibration segfaults TF 2.21;
# tinyedge.convert rewrites each LSTM layer into tinyedge.keras_lstm.FusedLSTM (the same
# weights), which the converter turns into one UNIDIRECTIONAL_SEQUENCE_LSTM, and refuses
# every recurrent layer it cannot rewrite before TensorFlow runs.

# return_sequences False / True; two stacked layers, the first without bias
LSTM_CASES = ["lstm_last_softmax", "lstm_seq_softmax", "lstm_stacked_nobias"]


@pytest.fixture(scope="module")
def lstm_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each case's Keras 3 model saved as .keras with its calibration .npy, converted by
    convert_model from the files on disk (in this process: TensorFlow is imported already)."""
    import keras

    d = tmp_path_factory.mktemp("lstm")
    out = {}
    for name in LSTM_CASES:
        c = keras_models.case(name)
        model = keras_models.build_keras(c)
        model.save(d / f"{name}.keras")
        (cal,) = keras_models.calibration_data(c)
        np.save(d / f"{name}.npy", cal)
        report = convert_model(d / f"{name}.keras", d / f"{name}.tflite", d / f"{name}.npy", isolate=False)
        lstms = [layer.name for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
        out[name] = {"case": c, "model": model, "cal": cal, "report": report, "lstms": lstms,
                     "dir": d, "tflite": (d / f"{name}.tflite").read_bytes()}
    return out


@pytest.mark.parametrize("name", LSTM_CASES)
def test_keras_lstm_converts_to_fused_op(name: str, lstm_models: dict[str, dict[str, Any]]) -> None:
    m = lstm_models[name]
    g = read_model(m["tflite"])
    assert tuple(op.opcode for op in g.operators) == m["case"].ops  # one fused op per LSTM layer
    assert [t.dtype for t in g.input_tensors + g.output_tensors] == ["int8", "int8"]
    n_fused = sum(op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM" for op in g.operators)
    report = m["report"]
    assert report.lstm_rewritten == m["lstms"] and len(m["lstms"]) == n_fused
    assert report.lstm_rewrite_diff is not None and report.lstm_rewrite_diff <= 1e-6
    assert "LSTM layers as the fused TFLite LSTM" in report.format()
    (drift,) = report.drift  # a few output LSB from float (measured: 1.1 to 1.5)
    assert drift.lsb is not None and drift.max_abs_error < 4 * drift.lsb
    if "softmax" in name:
        assert drift.lsb == pytest.approx(1 / 256)


@pytest.mark.parametrize("name", LSTM_CASES)
def test_lstm_rewrite_keeps_float_outputs(name: str, lstm_models: dict[str, dict[str, Any]]) -> None:
    """The rewritten Keras model and the converter's float fused op both compute the Keras LSTM."""
    import keras
    import tensorflow as tf

    from tinyedge.keras_lstm import FusedLSTM, rewrite_lstms

    m = lstm_models[name]
    model, x = m["model"], m["cal"][:16]
    fused, paths = rewrite_lstms(model)
    assert paths == m["lstms"] and fused is not model
    assert [type(layer) for layer in fused.layers].count(FusedLSTM) == len(m["lstms"])
    assert not any(isinstance(layer, keras.layers.LSTM) for layer in fused.layers)
    want = np.asarray(model([x], training=False))
    assert np.abs(np.asarray(fused([x], training=False)) - want).max() <= 1e-6
    # the float .tflite: the converter's reading of the weights (gate order, bias) is Keras's
    inp = keras.Input(x.shape[1:], batch_size=1)
    data = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, fused(inp))).convert()
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in [op.opcode for op in read_model(data).operators]
    oracle = Oracle(data)
    got = []
    for i in range(len(x)):
        oracle.reset()
        got.append(oracle.run([x[i : i + 1]])[0])
    assert np.abs(np.concatenate(got) - want).max() <= 1e-5


@pytest.mark.parametrize("name", LSTM_CASES)
def test_keras_lstm_bit_exact_on_host(name: str, lstm_models: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """Generated C on the host == the oracle, byte for byte; the state reset before every sample
    in the oracle as the device's te_network_reset() does (each host run is a fresh process)."""
    from tinyedge.hostrun import HostNetwork

    m = lstm_models[name]
    g = read_model(m["tflite"], name)
    tin = g.input_tensors[0]
    rng = np.random.default_rng(11)
    samples = [quantize(m["cal"][i : i + 1], tin.quant) for i in range(6)]
    samples += [rng.integers(-128, 127, tin.shape, dtype=np.int8, endpoint=True) for _ in range(4)]
    samples.append(np.full(tin.shape, -128, np.int8))
    net = HostNetwork(g, tmp_path / "net")
    oracle = Oracle(m["tflite"])
    compared = 0
    for x in samples:
        oracle.reset()
        (want,) = oracle.run([x])
        (got,) = net.run([x])
        assert np.array_equal(got.reshape(want.shape), want), f"{name}: host {got} vs oracle {want}"
        compared += want.size
    assert compared == len(samples) * g.output_tensors[0].size


def _rnn_model(kind: str) -> tuple[Any, str]:
    """A small model with one recurrent layer named 'rnn_under_test' (or in 'blk'); and the
    text the refusal must contain."""
    import keras

    L = keras.layers
    inp = keras.Input((6, 3), batch_size=1 if kind == "stateful" else None)
    nm = "rnn_under_test"
    if kind == "initial_state":
        h0 = keras.Input((4,))
        return keras.Model([inp, h0], L.Dense(2)(L.LSTM(4, name=nm)(inp, initial_state=[h0, h0]))), "initial_state"
    if kind == "custom_layer":
        class Blk(L.Layer):  # type: ignore[misc]
            def __init__(self, **kw: Any) -> None:
                super().__init__(**kw)
                self.inner = L.LSTM(4, name=nm)

            def call(self, x: Any) -> Any:
                return self.inner(x)

        return keras.Model(inp, L.Dense(2)(Blk(name="blk")(inp))), "inside 'blk'"
    if kind == "loop":
        loop = L.Lambda(lambda t: keras.ops.fori_loop(0, 3, lambda i, a: a * 0.5 + 1.0, t), name=nm)
        return keras.Model(inp, L.Dense(2)(L.Flatten()(loop(inp)))), "contains a loop"
    layer, match = {
        "gru": (L.GRU(4, name=nm), "only LSTM layers convert"),
        "simple_rnn": (L.SimpleRNN(4, name=nm), "only LSTM layers convert"),
        "bidirectional": (L.Bidirectional(L.LSTM(4), name=nm), "bidirectional"),
        "stateful": (L.LSTM(4, stateful=True, name=nm), "stateful=True"),
        "relu": (L.LSTM(4, activation="relu", name=nm), "activation 'relu'"),
        "hard_sigmoid": (L.LSTM(4, recurrent_activation="hard_sigmoid", name=nm), "recurrent_activation 'hard_sigmoid'"),
        "go_backwards": (L.LSTM(4, go_backwards=True, name=nm), "go_backwards=True"),
        "return_state": (L.LSTM(4, return_state=True, name=nm), "return_state=True"),
        "mask": (L.LSTM(4, name=nm), "mask"),
    }[kind]
    h = layer(L.Masking()(inp) if kind == "mask" else inp)
    return keras.Model(inp, L.Dense(2)(h[0] if kind == "return_state" else h)), match


RNN_REFUSALS = ["gru", "simple_rnn", "bidirectional", "stateful", "relu", "hard_sigmoid", "go_backwards",
                "return_state", "mask", "initial_state", "custom_layer", "loop"]


@pytest.mark.parametrize("kind", RNN_REFUSALS)
def test_refuses_recurrent_layers_it_cannot_rewrite(kind: str) -> None:
    """Refused with the layer's name, the reason and a hint, before the TF converter runs (which
    would kill the process: these all trace to While loops)."""
    model, match = _rnn_model(kind)
    n_inputs = len(model.inputs)
    cal = [np.ones((4, *(int(d) for d in t.shape[1:])), np.float32) for t in model.inputs]
    with pytest.raises(TinyEdgeError, match=match) as err:
        convert_keras(model, cal[0] if n_inputs == 1 else cal)
    assert "rnn_under_test" in err.value.message or kind == "custom_layer"
    assert err.value.hint


def test_refuses_gru_file_and_lstm_saved_model(tmp_path: Path) -> None:
    """Through convert_model: a .keras file with a GRU (layer check), and a SavedModel exported
    from a Keras LSTM model (no layers to rewrite: the loop check; the hint says use the .keras)."""
    import keras

    model, _ = _rnn_model("gru")
    model.save(tmp_path / "gru.keras")
    np.save(tmp_path / "cal.npy", np.ones((4, 6, 3), np.float32))
    with pytest.raises(TinyEdgeError, match="GRU layer 'rnn_under_test'"):
        convert_model(tmp_path / "gru.keras", tmp_path / "o.tflite", tmp_path / "cal.npy", isolate=False)
    inp = keras.Input((6, 3))
    keras.Model(inp, keras.layers.LSTM(4)(inp)).export(str(tmp_path / "sm"), verbose=False)
    with pytest.raises(TinyEdgeError, match="contains a loop") as err:
        convert_model(tmp_path / "sm", tmp_path / "o.tflite", tmp_path / "cal.npy", isolate=False)
    assert ".keras" in err.value.hint
    assert not (tmp_path / "o.tflite").exists()


# --------------------------------------------------------------------------- LSTM cell state scales
#
# TFLite's integer LSTM takes no tanh of the cell when its int16 scale is below 2^-15 or above
# 2^-9, and the converter writes 2^-16 / 2^-17 for plain stacked Keras LSTMs (the second without
# bias). TFLM, the oracle, takes the tanh at every scale, as close to float at 2^-16 / 2^-17 as at
# 2^-15. convert raises those scales to 2^-15 (tinyedge.convert.fix_lstm_cell_scales) so that the
# model means the same in TFLite, the second opinion, as in TFLM. Both cases as in
# tests/test_ops_matmul_lstm.py (the names seed the weights), converted from files with
# convert_model (fixed) and with convert_keras(..., fix_lstm_cells=False) (the converter's own).

_STACKED_EXPR = "L.LSTM(5, use_bias=False)(L.LSTM(6, return_sequences=True)(x))"
_STACKED_OPS = ("UNIDIRECTIONAL_SEQUENCE_LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE")
SMALL_CELL_CASES = {
    "lstm_stacked_small_cell_a5": keras_models.KerasCase(
        "lstm_stacked_small_cell_a5", ((7, 4),), _STACKED_EXPR, _STACKED_OPS),
    "lstm_stacked_small_cell_b3": keras_models.KerasCase(
        "lstm_stacked_small_cell_b3", ((6, 2),), _STACKED_EXPR, _STACKED_OPS, ranges=((-0.1, 0.1),)),
}
# log2 of the cell state scales, per LSTM op: from TF 2.21's converter, and after the fix
RAW_CELL_SHIFTS = {"lstm_stacked_small_cell_a5": (-14, -16), "lstm_stacked_small_cell_b3": (-16, -17)}
FIXED_CELL_SHIFTS = {"lstm_stacked_small_cell_a5": (-14, -15), "lstm_stacked_small_cell_b3": (-15, -15)}


def _cell_shifts(data: bytes) -> tuple[int | None, ...]:
    from tinyedge.ops.lstm import cell_power

    g = read_model(data)
    return tuple(cell_power(g.tensor(op.inputs[19]).scale) for op in g.operators
                 if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM")


def _lsb_drift(tflite: bytes, x: np.ndarray, want: np.ndarray, interpreter: Any = Oracle) -> float:
    """max |float - int8| in output LSB, every sample from the initial LSTM state (reset), with the
    oracle (TFLM) or another interpreter (TfliteInterpreter: the second opinion)."""
    g = read_model(tflite)
    tin, tout = g.input_tensors[0], g.output_tensors[0]
    oracle: Reference = interpreter(tflite)
    got = []
    for i in range(len(x)):
        oracle.reset()
        (q,) = oracle.run([quantize(x[i : i + 1], tin.quant)])
        got.append(tout.scale * (q.astype(np.float64) - tout.zero_point))
    return float(np.abs(np.concatenate(got).reshape(want.shape) - want).max() / tout.scale)


@pytest.fixture(scope="module")
def small_cells(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    d = tmp_path_factory.mktemp("small_cells")
    out = {}
    for name, c in SMALL_CELL_CASES.items():
        model = keras_models.build_keras(c)
        (cal,) = keras_models.calibration_data(c)
        model.save(d / f"{name}.keras")
        np.save(d / f"{name}.npy", cal)
        report = convert_model(d / f"{name}.keras", d / f"{name}.tflite", d / f"{name}.npy", isolate=False)
        out[name] = {"report": report, "fixed": (d / f"{name}.tflite").read_bytes(), "x": cal,
                     "raw": convert_keras(model, cal, fix_lstm_cells=False),
                     "float": np.asarray(model.predict(cal, verbose=0), np.float64)}
    return out


@pytest.mark.parametrize("name", SMALL_CELL_CASES)
def test_small_lstm_cell_scales_raised_to_2_15(name: str, small_cells: dict[str, dict[str, Any]]) -> None:
    """The converter writes cell scales below 2^-15; convert's model has 2^-15 there, differs from
    the converter's in those scale floats only, and its report says so."""
    from tinyedge.convert import fix_lstm_cell_scales

    m = small_cells[name]
    assert _cell_shifts(m["raw"]) == RAW_CELL_SHIFTS[name]
    assert _cell_shifts(m["fixed"]) == FIXED_CELL_SHIFTS[name]
    raw, fixed = read_model(m["raw"]), read_model(m["fixed"])
    lstms = [op for op in raw.operators if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    changed = {op.inputs[19] for op, old, new in zip(lstms, RAW_CELL_SHIFTS[name], FIXED_CELL_SHIFTS[name])
               if old != new}
    assert [op.opcode for op in fixed.operators] == [op.opcode for op in raw.operators]
    for a, b in zip(raw.tensors, fixed.tensors, strict=True):
        assert (a.shape, a.dtype, a.data, a.is_variable) == (b.shape, b.dtype, b.data, b.is_variable)
        if a.index in changed:
            assert b.quant is not None and b.quant.scale == (2.0 ** -15,) and b.quant.zero_point == (0,)
        else:
            assert a.quant == b.quant, a.name
    # the report: one line per changed op, and no warning (raising a scale loses no range)
    notes = [f"LSTM op {op.index}: cell state scale 2^{old} raised to 2^-15 (TFLite skips the cell tanh below 2^-15)"
             for op, old, new in zip(lstms, RAW_CELL_SHIFTS[name], FIXED_CELL_SHIFTS[name]) if old != new]
    report = m["report"]
    assert report.lstm_cell_scales == notes
    assert all(f"  {n}" in report.format().splitlines() for n in notes)
    assert not any("cell state" in w for w in report.warnings)
    assert ConvertReport.from_dict(json.loads(json.dumps(report.to_dict()))).lstm_cell_scales == notes
    # fixing is a pure function of the converter's model, and idempotent
    again, fixes = fix_lstm_cell_scales(m["raw"])
    assert [f.note() for f in fixes] == notes and _cell_shifts(again) == FIXED_CELL_SHIFTS[name]
    assert fix_lstm_cell_scales(m["fixed"]) == (m["fixed"], [])


@pytest.mark.parametrize("name", SMALL_CELL_CASES)
def test_small_lstm_cell_fix_drift(name: str, small_cells: dict[str, dict[str, Any]]) -> None:
    """Float vs int8 in output LSB on the 64 calibration samples. TFLM (the oracle) takes the cell's
    tanh at the converter's 2^-16 / 2^-17 and at 2^-15 alike: both models a few LSB from float
    (measured 2.8 / 2.6 LSB both). The TFLite interpreter (second opinion) takes none below
    2^-15: the converter's model 212 / 235 LSB away, the fixed one 2.8 / 2.9 -- why convert fixes
    the scale. The report's drift is the fixed model's, with the oracle."""
    m = small_cells[name]
    tflm_raw, tflm_fixed = _lsb_drift(m["raw"], m["x"], m["float"]), _lsb_drift(m["fixed"], m["x"], m["float"])
    assert tflm_raw < 4 and tflm_fixed < 4, (tflm_raw, tflm_fixed)
    assert abs(tflm_raw - tflm_fixed) < 0.5, (tflm_raw, tflm_fixed)
    tflite_raw = _lsb_drift(m["raw"], m["x"], m["float"], TfliteInterpreter)
    tflite_fixed = _lsb_drift(m["fixed"], m["x"], m["float"], TfliteInterpreter)
    assert tflite_raw > 150 and tflite_fixed < 4, (tflite_raw, tflite_fixed)
    (drift,) = m["report"].drift
    assert drift.lsb is not None and drift.max_abs_error / drift.lsb == pytest.approx(tflm_fixed, abs=1e-3)


def test_small_lstm_cell_fixed_bit_exact_on_host(small_cells: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """The generated C on the fixed models == the oracle, byte for byte: every sample from the
    initial state (a fresh host process; Oracle.reset()), then all in order (state carried)."""
    from tinyedge.hostrun import HostNetwork

    compared = 0
    for name, m in small_cells.items():
        g = read_model(m["fixed"], name)
        tin = g.input_tensors[0]
        rng = np.random.default_rng(7)
        samples = [quantize(m["x"][i : i + 1], tin.quant) for i in range(0, 64, 8)]
        samples += [rng.integers(-128, 127, tin.shape, dtype=np.int8, endpoint=True) for _ in range(8)]
        samples += [np.full(tin.shape, v, np.int8) for v in (-128, 127)]
        net = HostNetwork(g, tmp_path / name)
        oracle = Oracle(m["fixed"])
        for x in samples:
            oracle.reset()
            (want,) = oracle.run([x])
            (got,) = net.run([x])
            assert np.array_equal(got.reshape(want.shape), want), f"{name}: host {got} vs oracle {want}"
            compared += want.size
        oracle.reset()
        for (got,), x in zip(net.run_many([[x] for x in samples]), samples, strict=True):
            (want,) = oracle.run([x])
            assert np.array_equal(got.reshape(want.shape), want), f"{name} (state carried): {got} vs {want}"
            compared += want.size
    assert compared == 2 * 2 * 18 * 5


def test_large_lstm_cell_scales_lowered_to_2_9(small_cells: dict[str, dict[str, Any]]) -> None:
    """Above 2^-9 TFLite skips the cell tanh too: the same model with its cell scales set to 2^-8
    or 2^-5 is 150+ LSB from float in the TFLite interpreter, and both scales give it the same
    outputs (the cell no longer matters). TFLM takes the tanh there: the two scales give different
    outputs, 2^-8 a few LSB from float, 2^-5 more (measured 3.2 and 17.6 LSB on all 64 samples: a
    cell quantized in steps of 1/32). The fix lowers them to 2^-9; with the converter's cell clip
    of 10 nothing is lost (a cell within +-10 fits +-64), so no warning, and the drift is a few
    LSB."""
    from tinyedge.convert import _patch_scales, fix_lstm_cell_scales

    m = small_cells["lstm_stacked_small_cell_a5"]
    g = read_model(m["fixed"])
    cells = [op.inputs[19] for op in g.operators if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    x, want = m["x"][:24], m["float"][:24]
    broken = [_patch_scales(m["fixed"], {t: 2.0 ** k for t in cells}) for k in (-8, -5)]
    samples = [quantize(x[i : i + 1], g.input_tensors[0].quant) for i in range(4)]
    assert _lsb_drift(broken[0], x, want, TfliteInterpreter) > 150
    tflite = [TfliteInterpreter(b) for b in broken]
    assert all(np.array_equal(tflite[0].run([s])[0], tflite[1].run([s])[0]) for s in samples)
    tflm_drift = [_lsb_drift(b, x, want) for b in broken]
    assert tflm_drift[0] < 8 and tflm_drift[0] < tflm_drift[1] < 150, tflm_drift
    tflm = [Oracle(b) for b in broken]
    assert not all(np.array_equal(tflm[0].run([s])[0], tflm[1].run([s])[0]) for s in samples)
    for data, k in zip(broken, (-8, -5), strict=True):
        fixed, fixes = fix_lstm_cell_scales(data)
        assert [f.note() for f in fixes] == [
            f"LSTM op {i}: cell state scale 2^{k} lowered to 2^-9 (TFLite skips the cell tanh above 2^-9)"
            for i in (0, 1)]
        assert [f.warning() for f in fixes] == [None, None]  # cell_clip 10
        assert _cell_shifts(fixed) == (-9, -9)
        assert _lsb_drift(fixed, x, want) < 8


def test_lowering_a_cell_scale_warns_when_the_cell_can_exceed_it() -> None:
    from tinyedge.convert import CellScaleFix

    no_clip = CellScaleFix(op_index=2, tensor_index=40, old_shift=-7, new_shift=-9, cell_clip=0.0).warning()
    assert no_clip is not None and "LSTM op 2" in no_clip and "+-64" in no_clip and "+-256" in no_clip
    assert CellScaleFix(2, 40, -7, -9, cell_clip=100.0).warning() is not None
    assert CellScaleFix(2, 40, -7, -9, cell_clip=64.0).warning() is None
    assert CellScaleFix(2, 40, -17, -15, cell_clip=0.0).warning() is None  # raising loses no range


def test_cell_scale_fix_leaves_other_models_alone(model_cache: Path) -> None:
    """In-range cell scales (2^-13 here) and models without LSTM: the same bytes, no fixes."""
    from tinyedge.convert import fix_lstm_cell_scales

    for name in ("lstm_last_softmax", "dense"):
        data = keras_models.tflite_model(name, model_cache)
        assert fix_lstm_cell_scales(data) == (data, [])


# --------------------------------------------------------------------------- the conversion child process

def test_convert_model_in_child_process(lstm_models: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """isolate=True (the CLI's default): TensorFlow runs in a child; same model, same report."""
    m = lstm_models["lstm_last_softmax"]
    d = m["dir"]
    out = tmp_path / "child.tflite"
    report = convert_model(d / "lstm_last_softmax.keras", out, d / "lstm_last_softmax.npy", isolate=True)
    a, b = read_model(out.read_bytes()), read_model(m["tflite"])  # equal but for tensor names
    assert [op.opcode for op in a.operators] == [op.opcode for op in b.operators]
    for ta, tb in zip(a.tensors, b.tensors, strict=True):
        assert (ta.shape, ta.dtype, ta.quant, ta.is_const) == (tb.shape, tb.dtype, tb.quant, tb.is_const)
        assert not ta.is_const or np.array_equal(ta.array(), tb.array())
    mine, ref = report.to_dict(), m["report"].to_dict()
    # the file size follows the tensor names, which Keras numbers per process
    for key in ("seconds", "output", "model_bytes"):
        mine.pop(key), ref.pop(key)
    assert mine == ref


def _child_args(tmp_path: Path) -> dict[str, Any]:
    return {"src": str(tmp_path / "m.keras"), "out": str(tmp_path / "o.tflite"),
            "calibration": str(tmp_path / "c.npy"), "validation": None, "io": "int8", "max_calibration": 10}


def test_child_crash_is_an_error(tmp_path: Path) -> None:
    """A child killed by a signal (as by TF's segfault) is a TinyEdgeError naming the signal, the
    stage and the innermost Python frame (faulthandler); this process lives on."""
    from tinyedge import convert

    crash = ("from pathlib import Path; import json, sys, faulthandler, ctypes\n"
             "a = json.load(sys.stdin); Path(a['stage_file']).write_text('calibrating')\n"
             "faulthandler.enable()\n"
             "def feed():\n    ctypes.string_at(0)\n"
             "feed()\n")
    with pytest.raises(TinyEdgeError, match=r"crashed \(SIGSEGV\) while calibrating; last Python frame: string_at"):
        convert._convert_in_child(_child_args(tmp_path), crash)
    relay = ("from tinyedge import convert as c\n"
             "def fail(*a, **k):\n    raise c.TinyEdgeError('refused here', 'do this')\n"
             "c._convert_model = fail\nc._child_main()\n")
    with pytest.raises(TinyEdgeError, match="refused here") as err:
        convert._convert_in_child(_child_args(tmp_path), relay)
    assert err.value.hint == "do this"
