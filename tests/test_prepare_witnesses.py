"""How the pinned TFLM wheel derives each op's multipliers from the float32 scales, pinned
by witnesses: the generated C, compiled for the host, gives TFLM's bytes where another
plausible derivation would not.

Every multiplier TFLM's Prepare takes from a product or a quotient of scales can be derived
two ways that differ in the last bits of the Q31 mantissa: in double from the float32
scales (``double(a) * double(b) / double(c)``; a product of two float32 values is exact in
double), or in float32 first (``a * b / c`` on the ``float`` fields, as TFLite writes
several of them and as several TFLM sources of Aug 2026 read; or the float32 product, then a
double division, as TFLite's GetQuantizedConvolutionMultipler). The pinned ``tflite-micro``
wheel (built from a later TFLM commit than that source snapshot) converts every scale to
double first: its machine code has ``cvtss2sd`` of each scale, then ``mulsd`` / ``divsd``, in
CalculateReluOpData, CalculateOpDataLeakyRelu, HardSwishPrepare, CalculatePreluParams,
CalculateOpDataMul, PrepareQuantizeReference, PrepareMeanOrSumHelper,
PreprocessSoftmaxScaling and GetQuantizedConvolutionMultipler (BATCH_MATMUL here; the LSTM
gates in tests/test_ops_matmul_lstm.py; per-tensor FULLY_CONNECTED in
tests/test_kernels_conv_fc.py). tinyedge derives them all with
:func:`tinyedge.quant.scale_ratio` / :func:`tinyedge.quant.scale_product_ratio`.

A multiplier's last bits show in an output only at rare inputs. Each witness below is a
quantization where the two derivations give different multipliers (Q31, or Q15 after
HARD_SWISH's DownScaleInt32ToInt16Multiplier and in int16 BATCH_MATMUL) and an input where
that changes an output byte. The elementwise ones were found by a random search over float32
scales, zero points and the 256 (or 65,536) inputs with a numpy model of the kernel (one
configuration in 10,000 to 30,000 has such an input for a quotient of two scales, one in 100
to 1,000 for a product over a third), the SOFTMAX rows among a million random rows (one in
80,000 tells); the BATCH_MATMUL inputs are steered onto telling accumulators here. The test
builds every witness into one model and checks, against the TFLM interpreter (the only
source of expected values):

- the generated code gives TFLM's bytes everywhere;
- the same code generated with the other derivation (tinyedge's two helpers patched) gives
  other bytes at every witness: the input really tells the two apart.

ADD and SUB (int8) are pinned the same way in tests/test_kernels_misc.py and
tests/test_ops_sub.py (one Prepare for int8 and int16 in the wheel). LOGISTIC and TANH
take ``in_s * 2^27``, exact in float32 and double alike: no second derivation exists; nor
for HARD_SWISH's second multiplier (:func:`test_hard_swish_reluish_multiplier_has_no_witness`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from test_kernels_misc import ACT, T, Op, _schema, build_ops, softmax_options
from tinyedge import quant
from tinyedge.hostrun import HostNetwork
from tinyedge.model import read_model
from tinyedge.oracle import TflmOracle

F32 = np.float32


# ============================================================ the other derivations


def ratio_f32(num: float, den: float) -> float:
    """``num / den`` on float fields: a float32 division, then widened."""
    return float(F32(num) / F32(den))


def product_ratio_f32(a: float, b: float, den: float) -> float:
    """``a * b / den`` on float fields: all in float32."""
    return float(F32(F32(a) * F32(b)) / F32(den))


def product_f32_ratio_double(a: float, b: float, den: float) -> float:
    """``static_cast<double>(a * b) / double(den)``: the float32 product, then a double division
    (TFLite's GetQuantizedConvolutionMultipler and the TFLM sources of Aug 2026)."""
    return float(F32(F32(a) * F32(b))) / float(F32(den))


ALTERNATIVES: dict[str, dict[str, Callable[..., float]]] = {
    "float32": {"scale_ratio": ratio_f32, "scale_product_ratio": product_ratio_f32},
    "float32 product": {"scale_product_ratio": product_f32_ratio_double},
    "float32 quotient": {"scale_ratio": ratio_f32},
}


@contextmanager
def derived_as(alternative: str) -> Iterator[None]:
    """tinyedge's lowerings deriving every multiplier the other way while the block runs."""
    with pytest.MonkeyPatch.context() as mp:
        for name, fn in ALTERNATIVES[alternative].items():
            mp.setattr(quant, name, fn)
        yield


# ============================================================ witnesses


@dataclass(frozen=True)
class Witness:
    label: str
    against: str  # the ALTERNATIVES entry whose bytes differ from TFLM's here
    op: Op
    feeds: tuple[np.ndarray, ...]
    at: tuple[int, ...] | None = (0,)  # flat output indices that each tell them apart (None: any one)


def _io(s_in: float, z_in: int, s_out: float, z_out: int, shape: tuple[int, ...] = (1, 1)) -> tuple[T, T]:
    return T(shape, "int8", s_in, z_in), T(shape, "int8", s_out, z_out)


def _one(v: int) -> np.ndarray:
    return np.full((1, 1), v, np.int8)


ALL_INT8 = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)


def _options(table: str, **fields: Any) -> tuple[str, Callable[[Any], int]]:
    def build(b: Any) -> int:
        S = _schema(table)
        S.Start(b)
        for name, value in fields.items():
            getattr(S, f"Add{name}")(b, value)
        return int(S.End(b))
    return (table, build)


def relu(label: str, s_in: float, z_in: int, s_out: float, z_out: int, x: int) -> Witness:
    a, y = _io(s_in, z_in, s_out, z_out)
    return Witness(label, "float32", Op("RELU", [a], [y]), (_one(x),))


def quantize(label: str, s_in: float, z_in: int, s_out: float, z_out: int, x: int) -> Witness:
    a, y = _io(s_in, z_in, s_out, z_out)
    return Witness(label, "float32", Op("QUANTIZE", [a], [y]), (_one(x),))


def leaky_relu(label: str, s_in: float, z_in: int, s_out: float, z_out: int, alpha: float, x: int) -> Witness:
    a, y = _io(s_in, z_in, s_out, z_out)
    return Witness(label, "float32", Op("LEAKY_RELU", [a], [y], _options("LeakyReluOptions", Alpha=alpha)),
                   (_one(x),))


def prelu(label: str, s_in: float, z_in: int, s_alpha: float, z_alpha: int, alpha: int, s_out: float,
          z_out: int, x: int) -> Witness:
    a, y = _io(s_in, z_in, s_out, z_out)
    al = T((1, 1), "int8", s_alpha, z_alpha, data=_one(alpha))
    return Witness(label, "float32", Op("PRELU", [a, al], [y]), (_one(x),))


def mul(label: str, against: str, s1: float, z1: int, s2: float, z2: int, s_out: float, z_out: int,
        a: int, b: int) -> Witness:
    y = T((1, 1), "int8", s_out, z_out)
    op = Op("MUL", [T((1, 1), "int8", s1, z1), T((1, 1), "int8", s2, z2)], [y],
            _options("MulOptions", FusedActivationFunction=ACT["NONE"]))
    return Witness(label, against, op, (_one(a), _one(b)))


def mean(label: str, s_in: float, z_in: int, s_out: float, z_out: int, total: int, n: int = 16) -> Witness:
    """MEAN over 16 values whose sum is ``total``."""
    a, y = T((1, n), "int8", s_in, z_in), T((1, 1), "int8", s_out, z_out)
    axis = T((1,), "int32", data=np.array([1], np.int32))
    x = np.full(n, total // n, np.int64)
    x[: total % n] += 1
    assert int(x.sum()) == total and x.min() >= -128 and x.max() <= 127
    return Witness(label, "float32", Op("MEAN", [a, axis], [y], _options("ReducerOptions", KeepDims=True)),
                   (x.astype(np.int8).reshape(1, n),))


def hard_swish(label: str, s_in: float, z_in: int, s_out: float, z_out: int) -> Witness:
    """HARD_SWISH on all 256 int8 values: one of them tells the Q15 multipliers apart."""
    a, y = _io(s_in, z_in, s_out, z_out, (1, 256))
    return Witness(label, "float32", Op("HARD_SWISH", [a], [y]), (ALL_INT8,), None)


def softmax(label: str, s_in: float, beta: float, rows: np.ndarray) -> Witness:
    """SOFTMAX (int8 out, TFLM's required 1/256 and -128) of the given rows with a beta that
    is not 1: the float32 product beta * s_in differs from the exact one."""
    a = T(rows.shape, "int8", s_in, 0)
    y = T(rows.shape, "int8", 1.0 / 256.0, -128)
    return Witness(label, "float32", Op("SOFTMAX", [a], [y], softmax_options(beta)), (rows.astype(np.int8),), None)


# ---- BATCH_MATMUL: witnesses crafted here


def _mbqm(acc: np.ndarray, mult: int, shift: int) -> np.ndarray:
    """MultiplyByQuantizedMultiplier (int32 accumulator, shift <= 0): SRDHM, then
    RoundingDivideByPOT (ties away from zero), on int64 numpy values."""
    ab = acc.astype(np.int64) * mult
    v = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(v >= 0, v >> 31, -((-v) >> 31))
    mask = (1 << -shift) - 1
    return (high >> -shift) + ((high & mask) > (mask >> 1) + (high < 0))


def _bmm(lhs: T, rhs: T, out: T) -> Op:
    return Op("BATCH_MATMUL", [lhs, rhs], [out], _options("BatchMatMulOptions", AdjX=False, AdjY=False))


# int8: lhs [1, 8, 1024] x rhs [1, 1024, 2]; column 0 of the rhs is fixed, so that each row's
# accumulator there is a linear form of that row that can be steered to any value in reach
# (up to about 14 million: with a multiplier near 2^-17 the float32 product's error, 2^-24
# relative for these two scales, moves the rounding of most outputs' accumulators near a tie)
BMM_LHS = (0.027970068156719208, 7)  # scale, zero point
BMM_RHS = (0.01746261678636074, -3)
BMM_OUT_ZP = -10
BMM_DEPTH = 1024
BMM_COLUMN = np.array([117] * (BMM_DEPTH - 6) + [-100, 50, 13, 3, 2, 1])  # rhs - rhs_zp


def _steer(column: np.ndarray, target: int, lo: int, hi: int) -> np.ndarray:
    """Offsets e in [lo, hi] with e . column == target (largest weights first)."""
    e = np.zeros(column.size, np.int64)
    rest = target
    for k in np.argsort(-np.abs(column), kind="stable"):
        e[k] = min(hi, max(lo, round(rest / int(column[k]))))
        rest -= int(e[k]) * int(column[k])
    assert rest == 0, f"accumulator {target} out of reach"
    return e


def batch_matmul_int8() -> list[Witness]:
    """An output scale near s_lhs * s_rhs * 2^17 whose exact and other multipliers differ
    most; per alternative, rows steered onto accumulators next to an output rounding tie
    where the two give different outputs."""
    s_l, z_l = BMM_LHS
    s_r, z_r = BMM_RHS
    exact = float(F32(s_l)) * float(F32(s_r))
    alts = {"float32 product": product_f32_ratio_double, "float32": product_ratio_f32}

    def mults(s_o: float) -> dict[str, tuple[int, int]]:
        return {"ours": quant.quantize_multiplier(exact / s_o),
                **{name: quant.quantize_multiplier(alt(s_l, s_r, s_o)) for name, alt in alts.items()}}

    def spread(m: dict[str, tuple[int, int]]) -> int:
        return min(abs(m[name][0] - m["ours"][0]) if m[name][1] == m["ours"][1] else 0 for name in alts)

    s_o = max((float(F32(exact * 2.0**17 * (1.0 + k * 1e-4))) for k in range(300)), key=lambda v: spread(mults(v)))
    m = mults(s_o)
    lo, hi = -128 - z_l, 127 - z_l
    reach = int(np.abs(BMM_COLUMN).sum()) * min(-lo, hi) * 9 // 10
    real = exact / s_o
    ties = np.arange(-100, 100) + 0.5  # outputs (before the zero point) whose rounding is tested
    acc = (np.round(ties / real)[:, None] + np.arange(-3, 4)).astype(np.int64).reshape(-1)
    acc = acc[np.abs(acc) < reach]
    want = _mbqm(acc, *m["ours"])
    rng = np.random.default_rng(6)
    rhs = np.stack([BMM_COLUMN + z_r, rng.integers(-128, 128, BMM_DEPTH)], axis=1).astype(np.int8)
    out: list[Witness] = []
    for name in alts:
        telling = acc[_mbqm(acc, *m[name]) != want]
        assert telling.size >= 8, f"{telling.size} accumulators tell {name} apart"
        rows = rng.integers(-128, 128, (8, BMM_DEPTH))
        for r, a in enumerate(rng.choice(telling, 8, replace=False)):
            rows[r] = _steer(BMM_COLUMN, int(a), lo, hi) + z_l
        op = _bmm(T((1, 8, BMM_DEPTH), "int8", s_l, z_l), T((1, BMM_DEPTH, 2), "int8", s_r, z_r),
                  T((1, 8, 2), "int8", s_o, BMM_OUT_ZP))
        out.append(Witness(f"BATCH_MATMUL int8 vs {name}", name, op, (rows.astype(np.int8)[None], rhs[None]),
                           tuple(2 * r for r in range(8))))
    return out


def batch_matmul_int16() -> list[Witness]:
    """int16 (zero points 0): TFLM rounds the Q31 multiplier to Q15, which hides most
    differences; an output scale where the two Q15 multipliers differ, then random inputs."""
    s_l, s_r = 0.00037170036, 0.00021839178
    exact = float(F32(s_l)) * float(F32(s_r))

    def q15(m: tuple[int, int]) -> tuple[int, int]:
        return (m[0] + (1 << 15)) >> 16 if m[0] < 0x7FFF0000 else 0x7FFF, m[1]

    for k in range(100_000):
        s_o = float(F32(exact * 2.0**17 * (1.0 + k * 1e-6)))
        ours = quant.quantize_multiplier(exact / s_o)
        if q15(ours) != q15(quant.quantize_multiplier(product_f32_ratio_double(s_l, s_r, s_o))):
            break
    else:
        raise AssertionError("no int16 output scale separates the derivations")
    rng = np.random.default_rng(16)
    a = rng.integers(-32768, 32768, (1, 4, 16)).astype(np.int16)
    b = rng.integers(-32768, 32768, (1, 16, 3)).astype(np.int16)
    op = _bmm(T((1, 4, 16), "int16", s_l, 0), T((1, 16, 3), "int16", s_r, 0), T((1, 4, 3), "int16", s_o, 0))
    return [Witness("BATCH_MATMUL int16", "float32 product", op, (a, b), None)]


# (label, quantization..., input): found by random search, as the module docstring says
WITNESSES: list[Witness] = [
    relu("RELU a", 0.00804498977959156, -7, 0.010106771253049374, -48, 118),
    relu("RELU b", 0.8777071833610535, -62, 2.0524845123291016, -123, -24),
    relu("RELU c", 0.0010594871127977967, -83, 0.0009643235825933516, -5, -7),
    quantize("QUANTIZE a", 0.5271457433700562, 125, 1.0935630798339844, 122, -56),
    quantize("QUANTIZE b", 0.987359881401062, -99, 1.134413480758667, -127, -72),
    quantize("QUANTIZE c", 0.829042911529541, -93, 1.578656554222107, 17, 66),
    leaky_relu("LEAKY_RELU identity a", 0.6913564205169678, -109, 1.425730586051941, 29, 0.5685722827911377, 7),
    leaky_relu("LEAKY_RELU identity b", 0.02569654956459999, 13, 0.012109058909118176, -112,
               0.49983498454093933, 99),
    leaky_relu("LEAKY_RELU alpha a", 0.11945263296365738, 43, 0.09581630676984787, 66, 0.11791282892227173, -82),
    leaky_relu("LEAKY_RELU alpha b", 0.0010355846025049686, -42, 0.0010092571610584855, 61,
               0.9087274074554443, -79),
    prelu("PRELU identity a", 0.518503725528717, -101, 0.0024421121925115585, -72, -117, 0.4211197793483734,
          -40, -21),
    prelu("PRELU identity b", 0.9913870096206665, -15, 0.0032171078491955996, 72, -53, 1.0414570569992065,
          -73, 37),
    prelu("PRELU alpha a", 0.05627165362238884, 52, 0.019311189651489258, -67, 22, 0.10076162219047546, 82, -110),
    prelu("PRELU alpha b", 0.9171411991119385, -67, 0.006541059818118811, -71, -78, 1.0385448932647705, 77, -104),
    mul("MUL a", "float32", 0.05657109618186951, -4, 0.17627371847629547, -82, 1.1554415225982666, -119, 79, 89),
    mul("MUL b", "float32", 0.14421391487121582, -53, 0.05539928004145622, 43, 0.4539182484149933, 6, -124, -3),
    mul("MUL c", "float32 product", 0.3033115267753601, -103, 0.20014505088329315, -12, 8.049385070800781, -120,
        76, 118),
    mul("MUL d", "float32 product", 0.4391401410102844, 121, 0.4519752264022827, -64, 36.38356399536133, 117,
        -45, 79),
    mean("MEAN a", 0.10637952387332916, 96, 0.2033097743988037, 19, -1842),
    mean("MEAN b", 0.14222171902656555, -37, 0.2878631353378296, -82, 1302),
    mean("MEAN c", 0.002498436952009797, 110, 0.0027541436720639467, 68, -1035),
    hard_swish("HARD_SWISH a", 0.19171024858951569, -89, 0.2661115229129791, -108),
    hard_swish("HARD_SWISH b", 0.06893295794725418, -3, 0.02615133300423622, -84),
    hard_swish("HARD_SWISH c", 0.009876874275505543, 6, 0.008993398398160934, -63),
    # beta * s_in near 0.03, the float32 product 2^-24 (relative) off the exact one: about one
    # row in 80,000 of 16 values tells them apart
    softmax("SOFTMAX", 0.02888336218893528, 1.0902312994003296, np.array([[
        [127, 95, 90, 100, 83, 59, 90, 71, 61, 65, 32, 75, 38, 45, 117, 91],
        [127, 90, 63, 108, 46, 52, 35, 71, 97, 116, 47, 58, 64, 92, 74, 65],
        [127, 83, 96, 63, 101, 84, 92, 116, 105, 50, 112, 78, 108, 46, 79, 73],
        [127, 50, 115, 42, 62, 67, 50, 58, 117, 95, 70, 98, 51, 42, 87, 60]]])),
    *batch_matmul_int8(),
    *batch_matmul_int16(),
]


# ============================================================ running them


@dataclass
class Runs:
    tflm: list[np.ndarray]
    ours: list[np.ndarray]
    alternative: dict[str, list[np.ndarray]]


def witness_model() -> tuple[bytes, list[np.ndarray]]:
    """Every witness side by side in one model (every input with a batch dimension of 1), and
    the one sample that feeds them all."""
    return build_ops([w.op for w in WITNESSES]), [x for w in WITNESSES for x in w.feeds]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Every witness in one model: TFLM, our generated code, and our code generated with each
    other derivation (one host build each)."""
    model, feeds = witness_model()
    tflm = TflmOracle(model).run(feeds)
    assert len(tflm) == len(WITNESSES)
    graph = read_model(model, "prepare_witnesses")
    base = tmp_path_factory.mktemp("witnesses")

    def host(name: str) -> list[np.ndarray]:
        return HostNetwork(graph, base / name.replace(" ", "_")).run_many([feeds])[0]

    alternative = {}
    for name in sorted({w.against for w in WITNESSES}):
        with derived_as(name):
            alternative[name] = host(name)
    return Runs(tflm, host("ours"), alternative)


@pytest.mark.parametrize("opcode", sorted({w.op.opcode for w in WITNESSES}))
def test_multipliers_derived_as_the_wheel(opcode: str, runs: Runs) -> None:
    """At each witness of the op: our bytes are TFLM's, the other derivation's are not."""
    checked = 0
    for k, w in enumerate(WITNESSES):
        if w.op.opcode != opcode:
            continue
        want = runs.tflm[k].reshape(-1)
        ours = runs.ours[k].reshape(-1)
        other = runs.alternative[w.against][k].reshape(-1)
        assert np.array_equal(ours, want), f"{w.label}: ours {ours.tolist()[:8]}, TFLM {want.tolist()[:8]}"
        if w.at is None:
            assert (other != want).any(), f"{w.label}: not a witness, the {w.against} derivation gives TFLM's bytes"
        else:
            same = [i for i in w.at if other[i] == want[i]]
            assert not same, f"{w.label}: the {w.against} derivation gives TFLM's bytes at {same}"
        checked += 1
    assert checked >= (1 if opcode == "SOFTMAX" else 2)


def test_hard_swish_reluish_multiplier_has_no_witness() -> None:
    """HARD_SWISH's second multiplier, ``hires / (3 / 32768)``, rounded to Q15 is the same in
    float32 and in double for every float32 ``hires`` mantissa (a quotient by 3 is an integer
    plus 1/3 or 2/3 ulp, never within reach of a Q15 rounding boundary the float32 rounding
    could cross): no input can tell the two apart, so only the output multiplier has witnesses."""
    hires = (np.arange(1 << 23, 1 << 24, dtype=np.float64) * 2.0**-31).astype(F32)  # every mantissa, exact
    reals = {"double": hires.astype(np.float64) / (3.0 / 32768.0),
             "float32": (hires / F32(3.0 / 32768.0)).astype(np.float64)}
    q31, q15 = {}, {}
    for name, real in reals.items():  # QuantizeMultiplier, then DownScaleInt32ToInt16Multiplier
        q, e = np.frexp(real)
        m = np.floor(q * 2.0**31 + 0.5).astype(np.int64)
        top = m == 1 << 31
        q31[name] = (np.where(top, m >> 1, m), e + top)
        q15[name] = (np.minimum((q31[name][0] + (1 << 15)) >> 16, (1 << 15) - 1), q31[name][1])
    assert all(np.array_equal(a, b) for a, b in zip(q15["double"], q15["float32"]))
    q31_differ = int(np.count_nonzero(q31["double"][0] != q31["float32"][0]))
    assert q31_differ > hires.size // 2  # the Q31 multipliers do differ; Q15 hides it


# (s_in, z_in, s_out, z_out, x): RELU_N1_TO_1 outputs, inside its [-1, 1] clamp, where the
# float32 and the double quotient give different bytes (random search, as above)
RELU_N1_TO_1_WITNESSES = [
    (0.00802135095000267, 113, 0.010258598253130913, -27, 19),
    (0.01296735368669033, -52, 0.03236296772956848, 32, -125),
    (0.001642893417738378, -72, 0.004073780961334705, 57, 65),
]


def test_relu_n1_to_1_multiplier_is_tflites(tmp_path: Path) -> None:
    """TFLM has no RELU_N1_TO_1: the oracle takes its output from the TFLite interpreter,
    whose ReluPrepare divides the float32 scales in float32. At each witness the double
    quotient (RELU's in the TFLM wheel) gives another byte, TFLite does not follow it, and
    ours is TFLite's."""
    from tinyedge.oracle import Oracle, SplitOracle

    ops = [Op("RELU_N1_TO_1", [T((1, 1), "int8", s_in, z_in)], [T((1, 1), "int8", s_out, z_out)])
           for s_in, z_in, s_out, z_out, _ in RELU_N1_TO_1_WITNESSES]
    feeds = [_one(w[4]) for w in RELU_N1_TO_1_WITNESSES]
    model = build_ops(ops)
    oracle = Oracle(model)
    assert isinstance(oracle, SplitOracle)  # every op here is a RELU_N1_TO_1: TFLite computes them all
    want = [int(o.reshape(-1)[0]) for o in oracle.run(feeds)]
    got = [int(o.reshape(-1)[0]) for o in HostNetwork(read_model(model, "relu_n1_to_1"), tmp_path).run_many([feeds])[0]]
    assert got == want
    for (s_in, z_in, s_out, z_out, x), tflite in zip(RELU_N1_TO_1_WITNESSES, want):
        lo, hi = quant.activation_range("RELU_N1_TO_1", s_out, z_out)
        mult, shift = quant.quantize_multiplier(quant.scale_ratio(s_in, s_out))
        double = max(lo, min(hi, quant.mul_by_quantized_multiplier(x - z_in, mult, shift) + z_out))
        assert double != tflite, f"{(s_in, x)}: not a witness"


# ---- bounds: a constant over a scale, in float32


def _tie_scale(bound: float, k: int) -> float:
    """A float32 scale s whose float32 quotient bound / s is exactly k + 1/2 while the exact one
    is below it: roundf of the float32 quotient gives k + 1, the exact quotient rounds to k."""
    base = F32(bound / (k + 0.5))
    for d in range(4096):
        for s in (F32(base + F32(d) * np.spacing(base)), F32(base - F32(d) * np.spacing(base))):
            if float(F32(bound) / s) == k + 0.5 and bound / float(s) < k + 0.5:
                return float(s)
    raise AssertionError(f"no float32 scale puts {bound} / s on the tie {k} + 1/2")


def test_activation_bounds_divide_in_float32(tmp_path: Path) -> None:
    """RELU6's upper bound (Relu6Prepare: ``roundf(6.0f / in_s)``) and a fused activation's
    (CalculateActivationRangeQuantized: ``roundf(6.0f / out_s)``) are float32 quotients in the
    wheel too (``divss`` in its machine code). With a scale that puts the float32 quotient on a
    tie the exact one is just below, the clamped outputs tell the two derivations apart: TFLM's
    bound is the float32 one, and so is ours."""
    s_relu6, zp_relu6 = _tie_scale(6.0, 90), -100
    s_mul, zp_mul = _tie_scale(6.0, 150), -120
    relu6 = Op("RELU6", [T((1, 1), "int8", s_relu6, zp_relu6)], [T((1, 1), "int8", s_relu6, zp_relu6)])
    mul_relu6 = Op("MUL", [T((1, 1), "int8", 0.05, 0), T((1, 1), "int8", 0.05, 0)], [T((1, 1), "int8", s_mul, zp_mul)],
                   _options("MulOptions", FusedActivationFunction=ACT["RELU6"]))
    model = build_ops([relu6, mul_relu6])
    feeds = [_one(127), _one(127), _one(127)]  # 127 * 0.05 * 127 * 0.05 > 6: clamped
    want = [int(o.reshape(-1)[0]) for o in TflmOracle(model).run(feeds)]
    got = [int(o.reshape(-1)[0]) for o in HostNetwork(read_model(model, "bounds"), tmp_path).run_many([feeds])[0]]
    assert got == want
    exact = [zp_relu6 + 90, zp_mul + 150]  # zero point + the exact quotient rounded (it is below the tie)
    assert all(w != e for w, e in zip(want, exact)), f"not witnesses: TFLM's bounds {want} are the exact ones"
