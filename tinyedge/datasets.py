"""Sample data files: calibration sets, validation sets (with optional labels).

One layout for every command that reads data (``convert --calibration``,
``convert --validation``, ``validate --data``). See ``docs/datasets.md``.

``.npy`` -- a single array, for single-input models:
    ``[N, *input_shape]``  N samples, or
    ``[*input_shape]``     one sample.
``input_shape`` is the model input's shape without the batch dimension, e.g.
``[N, 16, 1]`` for a model whose input is ``(1, 16, 1)``.

``.npz`` -- named arrays (``np.savez``):
    ``x``          the samples of a single-input model, shaped as above;
    ``<name>``     or one array per model input, keyed by the input's name
                   (the Keras input name / SavedModel signature key; TFLite
                   tensor names such as ``serving_default_<name>:0`` also match);
    ``y``          optional: one label per sample -- class indices ``[N]`` (ints)
                   or one-hot / scores ``[N, C]`` (argmax is taken) for
                   classifiers; regression targets shaped like the output
                   ``[N, *output_shape]`` (or ``[N]`` for a one-value output).
Other keys are ignored. Every input array must have the same N.

Refused with a message that names the file: a file that is not what its
name says (a text file named ``.npy``), object (pickled) arrays, non-numeric
arrays, and NaN or infinite values (with the sample and the count).

Values are *real* (float) values as the float model sees them. Arrays of an
integer type (e.g. uint8 images) are read as real values too; the one
exception is data whose dtype is exactly the integer model tensor's dtype (int8,
or uint8 for a uint8-input model), which :func:`to_tensor_dtype` passes through
unchanged (already quantized).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from tinyedge.errors import TinyEdgeError
from tinyedge.infiles import check_regular

if TYPE_CHECKING:
    from tinyedge.model.ir import Graph, Quant

DATA_SUFFIXES = (".npy", ".npz")


@dataclass(frozen=True)
class InputSpec:
    """One model input as data must match it: per-sample shape (no batch dimension)."""

    name: str
    shape: tuple[int | None, ...]  # None: any size (a dimension the model leaves open)
    dtype: str = "float32"

    def describe(self) -> str:
        return "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"


@dataclass
class Dataset:
    """Samples for each model input (in the model's input order) and optional targets ``y``."""

    inputs: list[np.ndarray]  # one array [N, *shape] per input
    y: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return int(self.inputs[0].shape[0])

    def sample(self, i: int) -> list[np.ndarray]:
        """Sample ``i`` with a batch dimension of 1, one array per input."""
        return [x[i : i + 1] for x in self.inputs]

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        idx = np.asarray(indices, dtype=np.int64)
        return Dataset([x[idx] for x in self.inputs], None if self.y is None else self.y[idx], self.source)

    def labels(self) -> np.ndarray | None:
        """``y`` as class indices [N] if it looks like classification labels, else None."""
        return class_labels(self.y)


def clean_name(name: str) -> str:
    """``serving_default_image:0`` -> ``image``: the user-facing name of an input tensor."""
    name = re.sub(r":\d+$", "", name)
    return re.sub(r"^serving_default_", "", name)


def sample_shape(shape: Sequence[int | None]) -> tuple[int | None, ...]:
    """A model input shape with its batch dimension dropped."""
    return tuple(None if d is None or d < 0 else int(d) for d in tuple(shape)[1:])


def specs_from_graph(graph: Graph) -> list[InputSpec]:
    """The input specs of a .tflite graph (tinyedge.model), in its input order."""
    return [InputSpec(clean_name(t.name), sample_shape(t.shape), t.dtype) for t in graph.input_tensors]


def class_labels(y: np.ndarray | None) -> np.ndarray | None:
    """Class indices from ``y``: ints [N], integral floats [N], or one-hot/scores [N, C]."""
    if y is None:
        return None
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1).astype(np.int64)
    flat = y.reshape(len(y), -1) if y.ndim > 1 else y[:, None]
    if flat.shape[1] != 1:
        return None
    v = flat[:, 0]
    if v.dtype.kind in "iub" or (v.dtype.kind == "f" and np.all(np.isfinite(v)) and np.all(v == np.round(v))):
        return v.astype(np.int64)
    return None


def _expected(spec: InputSpec) -> str:
    inner = ", ".join("?" if d is None else str(d) for d in spec.shape)
    return f"[N, {inner}] or [{inner}]" if inner else "[N] or a scalar"


def _matches(shape: tuple[int, ...], want: tuple[int | None, ...]) -> bool:
    return len(shape) == len(want) and all(w is None or w == s for s, w in zip(shape, want))


def _what(key: str) -> str:
    return key if key == "the array" else f"array '{key}'"


def _check_finite(arr: np.ndarray, source: str, key: str, per_sample: bool) -> None:
    """Refuse NaN and infinities, naming the sample (``per_sample``: axis 0 is the
    sample axis) or the first position, and how many there are."""
    if arr.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(arr)
    count = int(np.count_nonzero(bad))
    if not count:
        return
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    if per_sample and arr.ndim >= 1:
        samples = int(np.count_nonzero(bad.reshape(len(arr), -1).any(axis=1)))
        where = f"in {samples} of {len(arr)} sample(s), the first in sample {first[0]}"
    else:
        where = f"the first at index {list(first)}"
    kinds = [k for k, n in (("NaN", np.count_nonzero(np.isnan(arr))), ("infinite", np.count_nonzero(np.isinf(arr))))
             if n]
    raise TinyEdgeError(f"{source}: {_what(key)} holds {count:,} {' and '.join(kinds)} value(s), {where}",
                        "replace or drop them before using the data (e.g. np.nan_to_num, or keep the samples "
                        "where np.isfinite(x) holds everywhere)")


def _fit_array(arr: np.ndarray, spec: InputSpec, source: str, key: str) -> np.ndarray:
    """Check ``arr`` against ``spec`` and return it as [N, *shape]."""
    if arr.dtype.kind not in "biuf":
        raise TinyEdgeError(f"{source}: {_what(key)} has dtype {arr.dtype}; numbers are needed",
                            "save a numeric numpy array (float32 values as the float model sees them)")
    if _matches(arr.shape, spec.shape):
        arr = arr[None]
    elif not (arr.ndim == len(spec.shape) + 1 and _matches(arr.shape[1:], spec.shape)):
        per = int(np.prod([d for d in spec.shape if d is not None], dtype=np.int64))
        hint = f"reshape it, e.g. x.reshape(-1, {', '.join(str(d) for d in spec.shape)})" if (
            None not in spec.shape and arr.ndim >= 1 and per > 0 and arr.size % per == 0
            and arr.size // per >= 1) else "the data must be shaped like the model input"
        raise TinyEdgeError(
            f"{source}: {_what(key)} has shape {list(arr.shape)}, but model input '{spec.name}' "
            f"has shape [1, {', '.join('?' if d is None else str(d) for d in spec.shape)}] "
            f"(expected data {_expected(spec)})",
            hint,
        )
    if len(arr) == 0:
        raise TinyEdgeError(f"{source}: {_what(key)} holds no samples", "save at least one sample")
    _check_finite(arr, source, key, per_sample=True)
    return arr


def _check_y(y: np.ndarray, n: int, source: str) -> np.ndarray:
    if y.ndim == 0 or len(y) != n:
        raise TinyEdgeError(f"{source}: 'y' holds {1 if y.ndim == 0 else len(y)} labels for {n} samples",
                            "save one label per sample")
    _check_finite(y, source, "y", per_sample=True)
    return y


def from_arrays(arrays: Sequence[np.ndarray], specs: Sequence[InputSpec], y: np.ndarray | None = None,
                source: str = "<arrays>") -> Dataset:
    """A :class:`Dataset` from in-memory arrays, one per input in ``specs`` order."""
    if len(arrays) != len(specs):
        raise TinyEdgeError(f"{source}: {len(arrays)} arrays for a model with {len(specs)} inputs",
                            "give one array per model input")
    fitted = [_fit_array(np.asarray(a), s, source, s.name) for a, s in zip(arrays, specs)]
    _same_n(fitted, specs, source)
    return Dataset(fitted, None if y is None else _check_y(np.asarray(y), len(fitted[0]), source), source)


def _same_n(arrays: Sequence[np.ndarray], specs: Sequence[InputSpec], source: str) -> None:
    ns = {s.name: len(a) for a, s in zip(arrays, specs)}
    if len(set(ns.values())) > 1:
        raise TinyEdgeError(f"{source}: inputs hold different numbers of samples: {ns}",
                            "give every input the same number of samples")


def _pick_npz_arrays(npz: dict[str, np.ndarray], specs: Sequence[InputSpec], source: str) -> list[np.ndarray]:
    keys = list(npz)
    if len(specs) == 1:
        spec = specs[0]
        for k in ("x", spec.name, clean_name(spec.name)):
            if k in npz:
                return [npz[k]]
        raise TinyEdgeError(f"{source} has no array 'x' (keys: {', '.join(keys) or 'none'})",
                            "store the samples under 'x' (np.savez(path, x=..., y=...))")
    by_clean = {clean_name(k): k for k in keys}
    out = []
    for spec in specs:
        key = spec.name if spec.name in npz else by_clean.get(clean_name(spec.name))
        if key is None:
            raise TinyEdgeError(
                f"{source} has no array for model input '{clean_name(spec.name)}' "
                f"(keys: {', '.join(keys) or 'none'}; inputs: {', '.join(clean_name(s.name) for s in specs)})",
                "a multi-input model needs one array per input, keyed by the input's name",
            )
        out.append(npz[key])
    return out


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive (np.savez), an empty one


def _read_arrays(p: Path) -> dict[str, np.ndarray]:
    """The arrays of a .npy ("" -> the array) or .npz file, with clear errors."""
    if not p.exists():
        raise TinyEdgeError(f"data file not found: {p}", "check the path")
    if p.is_dir() or p.suffix.lower() not in DATA_SUFFIXES:
        raise TinyEdgeError(f"{p}: data must be a .npy or .npz file",
                            "see docs/datasets.md for the layout (np.save / np.savez)")
    check_regular(p, "data file", "save the data with np.save / np.savez and give that file")
    try:
        with p.open("rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise TinyEdgeError(f"cannot read {p}: {exc.strerror}", "check the file's permissions") from None
    if not head.startswith(_NPY_MAGIC) and not head.startswith(_ZIP_MAGICS):
        kind = ".npz file (a zip archive)" if p.suffix.lower() == ".npz" else ".npy file"
        looks = ""
        if not head:
            looks = ": it is empty"
        elif all(32 <= b < 127 or b in b"\t\r\n" for b in head):
            looks = ": it looks like text"
        raise TinyEdgeError(f"{p} is not a {kind}{looks} (no NumPy header)",
                            "save the data with np.save / np.savez (text such as CSV: read it with np.loadtxt "
                            "and save the array with np.save)")
    try:
        loaded = np.load(p, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                arrays = {k: loaded[k] for k in loaded.files}
        else:
            arrays = {"": np.asarray(loaded)}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "pickle" in text.lower():
            raise TinyEdgeError(f"{p} holds Python objects (a pickled object array), not numbers",
                                "save a numeric array with np.save / np.savez") from None
        raise TinyEdgeError(f"cannot read {p}: {text} (damaged or truncated?)",
                            "save the data again with np.save / np.savez") from None
    return arrays


def check_data_file(path: str | Path) -> None:
    """Check a data file before a model is at hand to check its shapes against:
    a real .npy/.npz, numeric, no NaN or infinity (``convert`` calls it before
    it starts TensorFlow)."""
    p = Path(path)
    for key, arr in _read_arrays(p).items():
        name = key or "the array"
        if arr.dtype.kind not in "biuf":
            raise TinyEdgeError(f"{p}: {_what(name)} has dtype {arr.dtype}; numbers are needed",
                                "save a numeric numpy array (float32 values as the float model sees them)")
        _check_finite(arr, str(p), name, per_sample=False)


def load_dataset(path: str | Path, specs: Sequence[InputSpec]) -> Dataset:
    """Read a ``.npy`` / ``.npz`` data file for a model with inputs ``specs`` (see module doc)."""
    p = Path(path)
    arrays = _read_arrays(p)
    if "" in arrays and len(arrays) == 1 and p.suffix.lower() == ".npy":
        if len(specs) != 1:
            raise TinyEdgeError(f"{p}: a .npy file holds one array, the model has {len(specs)} inputs",
                                "use a .npz with one array per input name")
        return Dataset([_fit_array(arrays[""], specs[0], str(p), "the array")], None, str(p))
    picked = _pick_npz_arrays(arrays, specs, str(p))
    fitted = [_fit_array(a, s, str(p), s.name if len(specs) > 1 else "x") for a, s in zip(picked, specs)]
    _same_n(fitted, specs, str(p))
    y = arrays.get("y")
    return Dataset(fitted, None if y is None else _check_y(y, len(fitted[0]), str(p)), str(p))


def quantize(x: np.ndarray, quant: Quant, dtype: str = "int8") -> np.ndarray:
    """Real values -> integers of ``dtype``: round(x / scale) + zero_point, half away from zero, saturated."""
    info = np.iinfo(np.dtype(dtype))
    v = np.asarray(x, dtype=np.float64) / quant.scale[0]
    q = np.sign(v) * np.floor(np.abs(v) + 0.5) + quant.zero_point[0]
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, quant: Quant) -> np.ndarray:
    """Integers -> real values: scale * (q - zero_point), as float32."""
    return (quant.scale[0] * (np.asarray(q, dtype=np.float64) - quant.zero_point[0])).astype(np.float32)


def to_tensor_dtype(x: np.ndarray, dtype: str, quant: Quant | None) -> np.ndarray:
    """Data for a model tensor: float tensors get float32; integer tensors get ``x`` unchanged
    if it already has that dtype, else ``x`` is taken as real values and quantized."""
    if np.dtype(dtype).kind == "f":
        return np.asarray(x, dtype=dtype)
    if np.asarray(x).dtype == np.dtype(dtype):
        return np.asarray(x)
    if quant is None:
        raise TinyEdgeError(f"integer model input of type {dtype} has no quantization parameters",
                            "give data already of that type")
    return quantize(x, quant, dtype)


def load_model_inputs(path: str | Path, graph: Graph) -> list[list[np.ndarray]]:
    """The samples of a data file as the .tflite ``graph`` takes them: one list per sample,
    one array per model input (graph input order), in the tensor's shape and dtype --
    real (float) data is quantized for int8 inputs (:func:`to_tensor_dtype`).
    Labels, if any: ``load_dataset(path, specs_from_graph(graph)).labels()``."""
    ds = load_dataset(path, specs_from_graph(graph))
    tensors = graph.input_tensors
    return [[to_tensor_dtype(x, t.dtype, t.quant).reshape(t.shape) for x, t in zip(ds.sample(i), tensors)]
            for i in range(len(ds))]
