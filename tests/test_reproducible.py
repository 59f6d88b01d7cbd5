"""Generated projects are a function of the model bytes and the tinyedge version only.

`tinyedge generate` runs twice in child processes that differ in everything
else a host could change: working directory and relative paths, locale,
time zone, hash seed -- and, in the second, every transcendental function of
the host's C library made unavailable (math.exp/log/tanh/..., numpy's, and
loading libm through ctypes raise). Both projects must be byte-identical,
for the shared models and for Keras models whose ops have transcendental
definitions (SOFTMAX, LOGISTIC, TANH, HARD_SWISH, the LSTM's gates).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import MODEL_NAMES, shared_model
from test_keras_matrix import MATRIX, tflite_for

KERAS = ("activation_zoo", "lstm_classifier", "mlp_bn")

# Imported first in the second child (PYTHONPATH): any use of the host libm's
# transcendental functions (directly, through numpy or through ctypes) fails.
POISON = '''
import ctypes, math, sys
import numpy as np

# Import what generation imports first: the standard library computes some
# constants with math at import time (random, statistics), which is not
# generation calling libm. Then every transcendental is replaced, in math,
# in numpy, and wherever a tinyedge module holds a reference to one.
import tinyedge.cli, tinyedge.codegen.project, tinyedge.compiler, tinyedge.ops
tinyedge.ops.load_all()

def _poisoned(name):
    def fail(*args, **kwargs):
        raise RuntimeError(f"generation called the host's {name}")
    return fail

_MATH = ("exp", "expm1", "log", "log2", "log10", "log1p", "pow", "tanh", "sinh", "cosh", "erf", "erfc",
         "atan", "tan", "sin", "cos", "exp2", "cbrt")
_NUMPY = ("exp", "expm1", "exp2", "log", "log2", "log10", "log1p", "power", "float_power", "tanh", "sinh",
          "cosh", "sin", "cos", "tan", "arctan")
originals = {}
for mod, names in ((math, _MATH), (np, _NUMPY)):
    for n in names:
        if hasattr(mod, n):
            originals[id(getattr(mod, n))] = f"{mod.__name__}.{n}"
            setattr(mod, n, _poisoned(f"{mod.__name__}.{n}"))
for modname, module in list(sys.modules.items()):
    if modname.startswith("tinyedge") and module is not None:
        for key, value in list(vars(module).items()):
            if id(value) in originals:
                setattr(module, key, _poisoned(originals[id(value)]))
_cdll = ctypes.CDLL
class _NoLibm(_cdll):
    def __init__(self, name, *args, **kwargs):
        if name and "libm" in str(name):
            raise RuntimeError("generation loaded the host's libm")
        super().__init__(name, *args, **kwargs)
ctypes.CDLL = _NoLibm
'''


def _generate(model: Path, out: str, cwd: Path, env_extra: dict[str, str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "TZ", "PYTHON"))}
    env.update(env_extra)
    proc = subprocess.run([sys.executable, "-m", "tinyedge.cli", "generate", os.path.relpath(model, cwd),
                           "--board", "mps2-an386", "-o", out], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> list[Path]:
    cache = Path(request.config.cache.mkdir("tinyedge-keras-matrix"))
    out = [shared_model(name) for name in MODEL_NAMES]
    keras_dir = tmp_path_factory.mktemp("keras")
    for case in (c for c in MATRIX if c.name in KERAS):
        path = keras_dir / f"{case.name}.tflite"
        path.write_bytes(tflite_for(case, cache))
        out.append(path)
    return out


def test_generation_is_byte_identical_across_hosts_settings(models: list[Path], tmp_path: Path) -> None:
    poison = tmp_path / "poison"
    poison.mkdir()
    (poison / "sitecustomize.py").write_text(POISON)
    a_cwd = tmp_path / "a"
    b_cwd = tmp_path / "b" / "deeper" / "still"
    a_cwd.mkdir(parents=True)
    b_cwd.mkdir(parents=True)
    for model in models:
        _generate(model, "proj", a_cwd, {"LC_ALL": "C", "TZ": "UTC", "PYTHONHASHSEED": "0"})
        _generate(model, str(tmp_path / "b-proj"), b_cwd,
                  {"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "TZ": "Asia/Kathmandu", "PYTHONHASHSEED": "4242",
                   "PYTHONPATH": str(poison)})
        a, b = _tree(a_cwd / "proj"), _tree(tmp_path / "b-proj")
        assert a.keys() == b.keys(), model.name
        differ = [name for name in a if a[name] != b[name]]
        assert not differ, f"{model.name}: {differ}"
        for name, data in a.items():
            assert str(tmp_path).encode() not in data, f"{model.name}: {name} holds an absolute path"


def test_the_poison_works(tmp_path: Path) -> None:
    """The second child's libm really is unavailable (so the test above can fail)."""
    poison = tmp_path / "poison"
    poison.mkdir()
    (poison / "sitecustomize.py").write_text(POISON)
    env = dict(os.environ, PYTHONPATH=str(poison))
    code = "import math, numpy, ctypes\nfor f in (lambda: math.exp(1.0), lambda: numpy.tanh(0.5), " \
           "lambda: ctypes.CDLL('libm.so.6')):\n    try:\n        f()\n        print('ok')\n" \
           "    except RuntimeError:\n        print('poisoned')\n"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.stdout.split() == ["poisoned"] * 3, proc.stdout + proc.stderr
