"""SUB (int8, broadcast, fused NONE/RELU/RELU6/RELU_N1_TO_1): generated C, compiled for the
host, is bit-exact with TensorFlow Lite Micro.

What TFLM runs (micro/kernels/sub.cc -> reference_ops::Sub / BroadcastQuantSubSlow,
kernels/internal/reference/sub.h) -- every element, whatever the broadcast:

    d   = MBQMSmallerThanOneExp((q1 - z1) << 20, m1, sh1) - MBQMSmallerThanOneExp((q2 - z2) << 20, m2, sh2)
    out = clamp(MBQMSmallerThanOneExp(d, m_out, sh_out) + z_out)

Pinned here by witnesses (inputs where candidate recipes give different bytes), each
checked to really tell the candidates apart before TFLM is asked:

- the multipliers are derived in double, like ADD's (:data:`SUB_PREPARE_WITNESSES`), not in
  float32 as the TFLM source tree's sub_common.cc reads;
- a true subtraction, not ADD's kernel with input 2's multiplier negated (what TFLite's
  sub.cc once did): SRDHM rounds ties upward, so SRDHM(x, -m) != -SRDHM(x, m) at a tie
  (:data:`NEGATED_WITNESSES`);
- no vector blocks (one rounding per input, int16 wrap of the output) as the x86 TFLite
  interpreter's ADD has: :data:`VECTOR_WITNESSES`, placed in a 37-element row (two would-be
  blocks of 16 and a tail) and as single-element broadcasts;
- an output multiplier >= 1 makes TFLM abort, so tinyedge refuses it.

Expected values come only from TFLM. The Python recipe models below only choose the
witnesses and prove they discriminate.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import keras_models
from conftest import HOST_KERNEL_VARIANTS, require_tool
from keras_models import ASYM, KerasCase
from test_kernels_misc import (ACT, Op, Options, T, _schema, add_multipliers_f32, binary_recipe, build_ops,
                               random_broadcast_shapes, run_and_compare, x86_add_vector)
from tinyedge.codegen.lower import check_graph
from tinyedge.model import Graph, read_model
from tinyedge.ops import load_all
from tinyedge.ops.base import LowerCtx
from tinyedge.ops.broadcast import broadcast_shape, generic_plan
from tinyedge.ops.elementwise import add_multipliers
from tinyedge.oracle import TflmOracle
from tinyedge.resources import templates_dir

F32 = np.float32
GRID_A = np.repeat(np.arange(-128, 128), 256).astype(np.int8)  # all 65536 input pairs
GRID_B = np.tile(np.arange(-128, 128), 256).astype(np.int8)


def sub_options(act: str = "NONE") -> Options:
    def f(b: Any) -> int:
        S = _schema("SubOptions")
        S.Start(b)
        S.AddFusedActivationFunction(b, ACT[act])
        return int(S.End(b))
    return ("SubOptions", f)


def _sub(a_shape: tuple[int, ...], b_shape: tuple[int, ...], s1: float, z1: int, s2: float, z2: int,
         so: float, zo: int, act: str = "NONE", const_a: np.ndarray | None = None,
         const_b: np.ndarray | None = None, dtype: str = "int8") -> Op:
    out = broadcast_shape(a_shape, b_shape)
    assert out is not None
    return Op("SUB", [T(a_shape, dtype, s1, z1, data=const_a), T(b_shape, dtype, s2, z2, data=const_b)],
              [T(out, dtype, so, zo)], sub_options(act))


# ============================================================ the candidate recipes (Python)


def recipe_sub(cfg: tuple, a: int, b: int) -> int:
    """reference_ops::Sub / BroadcastQuantSubSlow with the double Prepare (what TFLM is shown
    to run)."""
    s1, z1, s2, z2, so, zo = cfg[:6]
    return binary_recipe(add_multipliers(s1, s2, so), (z1, z2, zo), a, b, sign=-1)


def recipe_sub_f32_prepare(cfg: tuple, a: int, b: int) -> int:
    """The same kernel with the multipliers derived in float32."""
    s1, z1, s2, z2, so, zo = cfg[:6]
    return binary_recipe(add_multipliers_f32(s1, s2, so), (z1, z2, zo), a, b, sign=-1)


def recipe_add_negated(cfg: tuple, a: int, b: int) -> int:
    """ADD's reference recipe with input 2's multiplier negated (older TFLite sub.cc)."""
    s1, z1, s2, z2, so, zo = cfg[:6]
    q = add_multipliers(s1, s2, so)
    q["in2_mult"] = -q["in2_mult"]
    return binary_recipe(q, (z1, z2, zo), a, b)


# (s1, z1, s2, z2, s_out, z_out, a, b): recipe_sub != recipe_sub_f32_prepare at (a, b) (random
# search: configurations whose float32 and double multipliers differ, then an input pair)
SUB_PREPARE_WITNESSES = [
    (0.02979619801044464, -61, 0.0023481417447328568, 68, 0.023639630526304245, -31, 45, 59),
    (0.07972544431686401, -38, 0.031389087438583374, -69, 0.0018585484940558672, 119, 30, 107),
    (0.013195558451116085, 117, 0.26770395040512085, 99, 0.11051930487155914, 81, -115, 108),
    (2.404775381088257, 113, 2.974134922027588, -43, 0.03989680856466293, 83, 44, -97),
    (0.03216882795095444, 113, 0.009456700645387173, 114, 0.029046552255749702, -25, 64, 84),
    (0.00995878130197525, 77, 0.006285938899964094, 40, 0.020565656945109367, 52, -56, -120),
]
# (s1, z1, s2, z2, s_out, z_out, a, b): recipe_sub != recipe_add_negated at (a, b). Found by
# scanning all 65536 pairs of configurations built to have SRDHM ties on input 2 (s1 = 1,
# s2 = an odd multiple of 2^t / 2^31 so the Q31 multiplier has t trailing zeros): about one
# pair in 65536 of one configuration in 130, so random inputs would never show it.
NEGATED_WITNESSES = [
    (1.0, -6, 0.45607078075408936, -127, 0.0002784514508675784, -121, 57, 11),
    (1.0, 29, 0.6457228660583496, 97, 8.515815352438949e-06, -85, -84, -78),
    (1.0, 14, 0.713864803314209, -109, 1.6414411220466718e-05, 110, 9, -116),
    (1.0, -48, 0.33337023854255676, 104, 8.996517863124609e-06, 11, -56, 80),
    (1.0, 46, 0.41160163283348083, 126, 0.0002478024107404053, -25, -10, -10),
    (1.0, -61, 0.7368242740631104, -5, 0.00010431079135742038, -54, 23, 109),
    (1.0, 84, 0.15667051076889038, 18, 0.0004955051699653268, 127, 61, -128),
    (1.0, -61, 0.25641751289367676, 51, 2.1552368707489222e-06, -37, -71, 12),
    (1.0, 55, 0.9956225156784058, -67, 0.0004979121149517596, 38, 43, -79),
    (1.0, 14, 0.25751376152038574, 109, 7.4919457802025136e-06, -73, -46, -124),
]
# recipe_sub's output is unsaturated and both NEON block recipes (and a NEON block with a
# true subtraction) are off by one at (a, b).
VECTOR_WITNESSES = [
    (0.001143849571235478, -45, 0.007304953411221504, -87, 0.021269816905260086, -28, 37, 3),
    (0.0013717417605221272, -41, 0.0015151349361985922, -64, 0.0010585340205579996, -115, 20, -72),
    (0.001993803773075342, -78, 0.020059993490576744, -98, 0.009027262218296528, 102, -34, -34),
    (0.0018909432692453265, -126, 0.002690742490813136, 106, 0.001329311402514577, 67, -103, 115),
    (0.6079256534576416, 100, 0.13162563741207123, 22, 0.3900515139102936, 61, 61, -47),
    (0.22452376782894135, 18, 0.014197058044373989, 72, 0.033006325364112854, 113, -7, -13),
]


def test_witnesses_discriminate_the_recipes() -> None:
    """Pure Python: at each witness the candidate recipes really give different bytes."""
    for w in SUB_PREPARE_WITNESSES:
        assert recipe_sub(w, w[6], w[7]) != recipe_sub_f32_prepare(w, w[6], w[7]), w
    for w in NEGATED_WITNESSES:
        a, b = w[6], w[7]
        assert recipe_sub(w, a, b) != recipe_add_negated(w, a, b), w
    for w in VECTOR_WITNESSES:
        a, b = w[6], w[7]
        ref = recipe_sub(w, a, b)
        assert -128 < ref < 127, w
        assert x86_add_vector(w, a, b, scalar_broadcast=False, in2_sign=-1) != ref, w
        assert x86_add_vector(w, a, b, scalar_broadcast=True, in2_sign=-1) != ref, w


# ============================================================ the op family


def sub_ops(rng: np.random.Generator) -> list[Op]:
    """Awkward shapes (every would-be vector block size, every broadcast category of
    ProcessBroadcastShapes in both input orders, scalars, rank 0, 6-D), constants, every
    activation, extreme scale ratios, an output scale near the smallest allowed (outputs
    saturate far beyond int16: no wrap), plus random configurations."""
    ops = [
        _sub((1, 4, 4, 8), (1, 1, 1, 8), 0.1, 3, 0.05, -3, 0.12, 1),             # rows of 8
        _sub((1, 1, 1, 40), (1, 4, 4, 40), 0.1, 3, 0.05, -3, 0.12, 1),           # input 1 broadcast
        _sub((1, 4, 4, 8), (1, 1, 1, 1), 0.02, -5, 0.3, 9, 0.25, -2),            # scalar input 2
        _sub((1, 1, 1, 1), (1, 5, 5, 3), 0.3, 9, 0.02, -5, 0.25, -2, "RELU"),    # scalar input 1
        _sub((1, 4, 1, 8), (1, 1, 4, 1), 0.05, 1, 0.07, 2, 0.1, 0),              # generic
        _sub((2, 1, 3, 1, 5, 2), (1, 4, 1, 6, 5, 1), 0.05, 1, 0.07, 2, 0.1, 0),  # 6-D generic
        _sub((1, 4, 4, 8), (8,), 0.1, 3, 0.05, -3, 0.12, 1),                     # ranks differ
        _sub((3, 5), (3, 5), 0.6550214, -88, 0.0011691, -37, 0.0022611, -36),
        _sub((1, 37), (1, 37), 0.05, 3, 0.031, -7, 0.07, -2, "RELU6"),
        _sub((1, 33), (1, 33), 0.05, 3, 0.031, -7, 0.07, -2, "RELU_N1_TO_1"),
        _sub((1, 32, 32, 16), (1, 32, 32, 16), 0.0393936, -128, 0.104195, 4, 0.0509457, -128, "RELU"),
        _sub((1, 8, 8, 3), (1, 8, 8, 3), 0.02, 10, 0.02, 10, 0.04, -20),          # equal input scales
        _sub((1, 50), (1, 50), 1.0, 0, 1.0, 0, 2.0 ** -19 * 1.0001, 0),          # out mult ~ 1: saturates
        _sub((1, 50), (1, 50), 0.5, 127, 1e-4, -128, 0.3, 0),                     # s2 << s1
        _sub((1, 50), (1, 50), 1e-4, -128, 0.5, 127, 0.3, 0),                     # s1 << s2
        _sub((1, 6, 6, 4), (1, 6, 6, 4), 0.1, 0, 0.1, 0, 0.2, 0,
             const_b=rng.integers(-128, 128, (1, 6, 6, 4), dtype=np.int8)),       # constant input 2
        _sub((2, 3, 19), (2, 1, 19), 0.1, 3, 0.01, -3, 0.12, 1,
             const_a=rng.integers(-128, 128, (2, 3, 19), dtype=np.int8)),         # constant input 1
        _sub((1, 4, 4, 8), (), 0.1, -3, 0.004, 7, 0.1, 5,
             const_b=np.array(-57, np.int8)),                                     # x - constant (Keras)
        _sub((), (1, 4, 4, 8), 0.004, 7, 0.1, -3, 0.1, 5,
             const_a=np.array(99, np.int8)),                                      # constant - x
    ]
    ops += [_sub((1, n), (1, n), 0.03, -9, 0.011, 40, 0.02, 3) for n in (1, 7, 8, 9, 15, 16, 17, 31, 100)]
    # int16 (left shift 15), zero points 0 and not
    ops += [
        _sub((1, 37), (1, 37), 1e-4, 0, 3e-4, 0, 4e-4, 0, dtype="int16"),
        _sub((1, 4, 4, 8), (1, 1, 1, 8), 2e-4, 5, 1e-4, -7, 3e-4, 11, "RELU", dtype="int16"),
        _sub((1, 1, 1, 1), (1, 5, 5, 3), 3e-4, 0, 2e-5, 0, 2.5e-4, 0, "RELU6", dtype="int16"),
        _sub((1, 3, 1, 5), (2, 1, 4, 1), 5e-5, 1, 7e-5, 2, 1e-4, 0, "RELU_N1_TO_1", dtype="int16"),
        _sub((1, 300), (1, 300), 1e-3, -3, 1e-3, 4, float(F32(2e-3 / 2 ** 15 * 1.0001)), 0,
             dtype="int16"),  # output multiplier just below 1: saturates
    ]
    for _ in range(30):
        a, b = random_broadcast_shapes(rng)
        s1, s2 = float(F32(10 ** rng.uniform(-3, 0.5))), float(F32(10 ** rng.uniform(-3, 0.5)))
        if rng.random() < 0.2:
            s2 = float(F32(s1 * 10 ** rng.uniform(-4, -2)))
        so = float(F32(max(s1, s2) * 10 ** rng.uniform(-2.5, 1.0)))
        act = str(rng.choice(["NONE", "NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))
        z1, z2, zo = (int(v) for v in rng.integers(-128, 128, 3))
        ops.append(_sub(tuple(a), tuple(b), s1, z1, s2, z2, so, zo, act))
    return ops


ALL_WITNESSES = SUB_PREPARE_WITNESSES + NEGATED_WITNESSES + VECTOR_WITNESSES


def _witness_ops() -> tuple[list[Op], list[np.ndarray]]:
    """Every witness configuration on all 65536 input pairs, and each witness pair filling a
    37-element row (blocks of 16 + a tail of 5, were there blocks) and a scalar broadcast
    over 19 elements in both input orders (blocks of 8 + a tail of 3)."""
    ops: list[Op] = []
    feeds: list[np.ndarray] = []
    for w in ALL_WITNESSES:
        s1, z1, s2, z2, so, zo, a, b = w
        ops.append(_sub((1, 65536), (1, 65536), s1, z1, s2, z2, so, zo))
        feeds += [GRID_A.reshape(1, -1), GRID_B.reshape(1, -1)]
        ops.append(_sub((1, 37), (1, 37), s1, z1, s2, z2, so, zo))
        feeds += [np.full((1, 37), a, np.int8), np.full((1, 37), b, np.int8)]
        ops.append(_sub((1, 1), (1, 19), s1, z1, s2, z2, so, zo))
        feeds += [np.full((1, 1), a, np.int8), np.full((1, 19), b, np.int8)]
        ops.append(_sub((1, 19), (1, 1), s1, z1, s2, z2, so, zo))
        feeds += [np.full((1, 19), a, np.int8), np.full((1, 1), b, np.int8)]
    return ops, feeds


@pytest.fixture(scope="module")
def sub_family(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    rng = np.random.default_rng(4242)
    ops = sub_ops(rng)
    model = build_ops(ops)
    g = read_model(model, "sub-family")
    problems = check_graph(g)
    assert not problems, [str(p) for p in problems]
    res = run_and_compare(model, tmp_path_factory.mktemp("sub"), rng)
    return {"ops": ops, "graph": g, "result": res}


def test_sub_family_bit_exact(sub_family: dict[str, Any]) -> None:
    res = sub_family["result"]
    assert not res.mismatches, "not bit-exact with TFLM:\n" + "\n".join(res.mismatches)
    assert res.checked > 100_000


@pytest.mark.parametrize("variant", sorted(HOST_KERNEL_VARIANTS))
def test_witnesses_tflm_and_ours(variant: str, tmp_path: Path) -> None:
    """TFLM takes the subtraction recipe with the double Prepare at every witness (at every
    position: no blocks), not the float32 Prepare, not ADD-with-a-negated-multiplier, not a
    vector block; ours gives TFLM's bytes on all 65536 pairs of every witness configuration."""
    ops, feeds = _witness_ops()
    model = build_ops(ops)
    want = TflmOracle(model).run(feeds)
    for k, w in enumerate(ALL_WITNESSES):
        a, b = w[6], w[7]
        grid, row, bc1, bc2 = (o.reshape(-1) for o in want[4 * k: 4 * k + 4])
        at = (a + 128) * 256 + b + 128
        ref = recipe_sub(w, a, b)  # != the other recipes: test_witnesses_discriminate_the_recipes
        for name, out in (("grid", grid[at: at + 1]), ("row of 37", row), ("scalar - row", bc1),
                          ("row - scalar", bc2)):
            assert (out == ref).all(), f"{w} {name}: TFLM {out.tolist()}, subtraction recipe {ref}"
    res = run_and_compare(model, tmp_path, np.random.default_rng(0), samples=[feeds], variant=variant)
    assert not res.mismatches, "\n".join(res.mismatches)
    assert res.checked == len(ALL_WITNESSES) * (65536 + 37 + 19 + 19)


# ============================================================ lowering


def test_sub_lowering_walks(sub_family: dict[str, Any]) -> None:
    """SUB lowers to one strided walk of the output: a single row of every element for equal
    shapes, merged loops for a broadcast; the family reaches both."""
    registry = load_all()
    g: Graph = sub_family["graph"]
    kinds = set()
    for op in g.operators:
        low = registry["SUB"].lower(op, LowerCtx(g, op))
        kernel = "te_sub_s16(" if g.tensor(op.outputs[0]).dtype == "int16" else "te_sub_s8("
        assert low.call.startswith(kernel) and low.params_type == "te_sub_params_t"
        a, b = g.tensor(op.inputs[0]), g.tensor(op.inputs[1])
        if a.shape == b.shape:
            assert str(low.params["walk"]).startswith("{{1, 1, 1, 1, 1, %d}" % a.size), low.params
            kinds.add("row")
        else:
            kinds.add("broadcast")
    assert kinds == {"row", "broadcast"}


def _walk(plan_dims: list[int], s1: list[int], s2: list[int]) -> list[tuple[int, int]]:
    pairs = []
    for idx in np.ndindex(*plan_dims):
        pairs.append((sum(i * s for i, s in zip(idx, s1)), sum(i * s for i, s in zip(idx, s2))))
    return pairs


def test_generic_plan_walks_like_numpy_broadcast() -> None:
    """The merged generic walk visits the output in order, reading the elements numpy's
    broadcasting pairs with each output element; and it merges what it can."""
    p = generic_plan((1, 4, 4, 8), (1, 1, 1, 8))
    assert (p.out_dims, p.strides1, p.strides2) == ([1, 1, 1, 1, 16, 8], [0, 0, 0, 0, 8, 1], [0, 0, 0, 0, 0, 1])
    assert generic_plan((3, 5), (3, 5)).out_dims == [1, 1, 1, 1, 1, 15]
    rng = np.random.default_rng(11)
    for _ in range(200):
        rank = int(rng.integers(0, 7))
        out = [int(v) for v in rng.integers(1, 4, rank)]
        a = [d if rng.random() < 0.5 else 1 for d in out]
        b = [d if rng.random() < 0.5 else 1 for d in out]
        b = b[int(rng.integers(0, rank + 1)):]
        p = generic_plan(tuple(a), tuple(b))
        ia = np.arange(int(np.prod(a)), dtype=np.int64).reshape(a)
        ib = np.arange(int(np.prod(b)), dtype=np.int64).reshape(b)
        wa, wb = np.broadcast_arrays(ia, ib)
        want = list(zip(wa.reshape(-1).tolist(), wb.reshape(-1).tolist()))
        assert _walk(p.out_dims, p.strides1, p.strides2) == want, (a, b, p)


# ============================================================ Keras


KERAS_CASES = [
    KerasCase("sub_same", ((4, 4, 8), (4, 4, 8)), "L.Subtract()(x)", ("SUB",), ranges=(ASYM, (-4.0, 1.0))),
    KerasCase("sub_relu", ((4, 4, 8), (4, 4, 8)), "L.ReLU()(L.Subtract()(x))", ("SUB",),
              ranges=(ASYM, (-4.0, 1.0))),
    KerasCase("sub_relu6", ((4, 4, 8), (4, 4, 8)), "L.ReLU(6.0)(L.Subtract()(x))", ("SUB",),
              ranges=((-8.0, 8.0), (-4.0, 3.0))),
    KerasCase("sub_broadcast", ((4, 4, 8), (1, 1, 8)), "L.Subtract()(x)", ("SUB",), ranges=(ASYM, (-0.5, 0.3))),
    KerasCase("sub_broadcast_first", ((1, 1, 8), (4, 4, 8)), "L.Lambda(lambda t: t[0] - t[1])(x)", ("SUB",),
              ranges=(ASYM, (-0.5, 0.3))),
    KerasCase("sub_constant", ((4, 4, 8),), "L.Lambda(lambda t: t - 0.37)(x)", ("SUB",), ranges=(ASYM,)),
    KerasCase("constant_sub", ((4, 4, 8),), "L.Lambda(lambda t: 0.37 - t)(x)", ("SUB",), ranges=(ASYM,)),
]
# (fused activation, which inputs are constant) the converter must produce
KERAS_EXPECT = {
    "sub_same": (0, [False, False]), "sub_relu": (1, [False, False]), "sub_relu6": (3, [False, False]),
    "sub_broadcast": (0, [False, False]), "sub_broadcast_first": (0, [False, False]),
    "sub_constant": (0, [False, True]), "constant_sub": (0, [True, False]),
}


def _keras_tflite(c: KerasCase, cache: Path) -> bytes:
    """keras_models' conversion and checks (exactly the op list, int8 I/O), cached on disk."""
    path = cache / f"{c.name}-{c.key()}.tflite"
    if path.exists():
        data = path.read_bytes()
        try:
            keras_models.check_tflite(c, data)
            return data
        except Exception:  # stale or corrupt: rebuild
            pass
    data = keras_models.convert_case(c)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return data


@pytest.fixture(scope="module")
def keras_graphs(request: pytest.FixtureRequest) -> dict[str, Graph]:
    cache = Path(request.config.cache.mkdir("tinyedge-keras-models"))
    return {c.name: read_model(_keras_tflite(c, cache), c.name) for c in KERAS_CASES}


def test_keras_subtract_converts_to_sub(keras_graphs: dict[str, Graph]) -> None:
    """layers.Subtract (and tensor - tensor / tensor - constant / constant - tensor) stays a
    SUB -- not an ADD of a negated constant -- with ReLU / ReLU6 fused into it."""
    for name, g in keras_graphs.items():
        (op,) = g.operators
        assert op.opcode == "SUB", name
        act, const = KERAS_EXPECT[name]
        assert op.options["fused_activation_function"] == act, name
        assert [g.tensor(i).is_const for i in op.inputs] == const, name


def _graph_sub_ops(g: Graph) -> list[Op]:
    act_names = {v: k for k, v in ACT.items()}
    tensors: dict[int, T] = {}

    def tensor(i: int) -> T:
        if i not in tensors:
            t = g.tensor(i)
            tensors[i] = T(t.shape, t.dtype, t.scale, t.zero_point, data=t.array() if t.is_const else None)
        return tensors[i]

    return [Op("SUB", [tensor(i) for i in op.inputs], [tensor(i) for i in op.outputs],
               sub_options(act_names[op.options["fused_activation_function"]])) for op in g.operators]


def test_keras_models_bit_exact(keras_graphs: dict[str, Graph], tmp_path: Path) -> None:
    """The converter's own SUB models, all in one graph (one compile, one oracle)."""
    ops = [op for g in keras_graphs.values() for op in _graph_sub_ops(g)]
    labels = [f"{name} output" for name in keras_graphs]
    res = run_and_compare(build_ops(ops), tmp_path, np.random.default_rng(3), labels)
    assert not res.mismatches, "\n".join(res.mismatches)
    assert res.checked > 5000


# ============================================================ check(): clear refusals


def _problems(ops: list[Op]) -> list[str]:
    return [str(p) for p in check_graph(read_model(build_ops(ops), "<check>"))]


@pytest.mark.parametrize("ops,needle", [
    ([Op("SUB", [T((1, 4), "int32", 0.1, 0), T((1, 4), "int32", 0.1, 0)], [T((1, 4), "int32", 0.1, 0)],
         sub_options())], "dtype int32"),
    ([_sub((1, 4), (1, 4), 0.1, 0, 0.1, 0, 0.1, 0, "TANH")], "fused activation TANH"),
    ([_sub((1, 4), (1, 4), 1.0, 0, 0.5, 3, 1.5e-6, 0)], "SUB output multiplier >= 1"),
    ([Op("SUB", [T((1, 4), "int8", 0.1, 0), T((1, 3), "int8", 0.1, 0)], [T((1, 4), "int8", 0.1, 0)],
         sub_options())], "do not broadcast"),
    ([Op("SUB", [T((1, 4), "int8", 0.1, 0), T((1, 4), "int8", 0.1, 0)], [T((1, 5), "int8", 0.1, 0)],
         sub_options())], "output shape"),
])
def test_check_names_the_problem(ops: list[Op], needle: str) -> None:
    problems = _problems(ops)
    assert any(needle in p for p in problems), problems


def test_tflm_aborts_on_an_output_multiplier_above_one(tmp_path: Path) -> None:
    """Why an output multiplier >= 1 is refused: TFLM's Prepare aborts the process there
    (QuantizeMultiplierSmallerThanOneExp: TFLITE_CHECK_LT), so it gives no answer to match.
    Run in a child process, which must die of SIGABRT."""
    model = tmp_path / "sub.tflite"
    model.write_bytes(build_ops([_sub((1, 256), (1, 256), 1.0, 0, 0.5, 3, 1.5e-6, 0)]))
    code = ("import sys, numpy as np\n"
            "from tinyedge.oracle import TflmOracle\n"
            "o = TflmOracle(sys.argv[1])\n"
            "o.run([np.zeros((1, 256), np.int8), np.zeros((1, 256), np.int8)])\n"
            "print('TFLM answered')\n")
    proc = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGABRT, (proc.returncode, proc.stdout, proc.stderr[-500:])
    assert "TFLM answered" not in proc.stdout


def test_sub_documents_its_constraints() -> None:
    spec = load_all()["SUB"]
    assert "int8" in spec.constraints and "RELU6" in spec.constraints


# ============================================================ the C compiles everywhere


STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-c"]
TARGETS: dict[str, list[str]] = {
    "host": ["gcc", "-Wshadow", "-Wconversion", "-pedantic"],
    "cortex-m4f": ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
    "cortex-m0": ["arm-none-eabi-gcc", "-mcpu=cortex-m0", "-mthumb"],
}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_kernel_compiles_warning_free(target: str, tmp_path: Path) -> None:
    cc, *flags = TARGETS[target]
    require_tool(cc)
    runtime = templates_dir() / "runtime"
    proc = subprocess.run([cc, *STRICT, *flags, "-I", str(runtime), str(runtime / "te_elementwise.c"),
                           "-o", str(tmp_path / "te_elementwise.o")], capture_output=True, text=True)
    assert proc.returncode == 0, f"{target}:\n{proc.stderr}"

