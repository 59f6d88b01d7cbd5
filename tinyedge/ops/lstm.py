"""UNIDIRECTIONAL_SEQUENCE_LSTM, fully integer (int8 activations and weights,
int16 gates and cell state), lowered to te_lstm_s8: what TensorFlow Lite
Micro computes.

What the TF converter emits for a Keras LSTM layer (checked with TF 2.21):
the fused op is produced only when the layer's TensorFlow function carries
Keras 2's ``api_implements="lstm_<uuid>"`` attribute (tf.keras / tf_keras
LSTM); Keras 3's LSTM becomes a WHILE loop, whose int8 calibration crashes
the converter (tinyedge.convert rewrites it: tinyedge/keras_lstm.py). The
fused int8 op has the 24-input layout with four gates, no CIFG, peephole,
projection or layer normalization, per-tensor symmetric int8 weights, int32
biases, an int8 output-state and an int16 cell-state *variable* tensor, and
five intermediates (TFLite reads them; TFLM does not).
``return_sequences=False`` is the same op followed by a STRIDED_SLICE of the
last step.

TFLM's kernel (micro/kernels/unidirectional_sequence_lstm.cc, lstm_eval.h,
lstm_eval.cc, lstm_eval_common.cc) is its own, not TFLite's
LstmStepInteger8x8_16; the step is spelled out in
firmware_templates/runtime/te_lstm.c. Its Prepare, reproduced here with the
same IEEE operations:

- per gate, two fully connected layers into Q3.12 (scale 2^-12):
  ``double(float(x_scale * w_scale)) / 2^-12`` for the input and the same
  with the output state's scale for the recurrent side
  (CalculateOpDataFullyConnected / GetQuantizedConvolutionMultipler), each as
  a Q31 multiplier (QuantizeMultiplier);
- three element-wise products (CreateInterGateMulParams, in double): forget
  gate x cell ``2^-15 * s_c / s_c``, input gate x cell gate ``2^-15 * 2^-15
  / s_c`` and tanh(cell) x output gate ``2^-15 * 2^-15 / s_h`` with the
  output state's zero point: the hidden state's quantization is the output
  state tensor's (the intermediates are not read);
- the cell scale's log2, p, rounded (CheckedLog2, whose "is it a power of
  two" answer TFLM ignores: any positive scale runs), which sets the cell's
  tanh input rescaling; p is derived exactly here (math.frexp and a
  comparison with sqrt(1/2) in exact arithmetic) instead of with the logf
  TFLM uses, and a scale within 2^-12 in log2 of a half-integer power, where
  logf's rounding could decide, is refused;
- ``quantized_cell_clip = int16(min(max(double(clip) / double(s_c),
  -32768), 32767))``, applied when the float clip is above 0.

What TFLM refuses (Prepare or Eval fails) is refused here with its reason,
and so are the few scales where TFLM's int32 arithmetic would overflow
(undefined behaviour in C++): a cell scale outside 2^-30..2^2 (the converter
picks 2^-17..2^-11), or a hidden state scale below 2^-31.

The state: TFLM keeps output and cell state in variable tensors that start
at (zero point, 0), carry over from one inference to the next, and go back
there on the interpreter's reset(); the generated code keeps them in static
storage (outside the arena) with te_network_reset() doing the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinyedge import quant
from tinyedge.model.ir import Graph, Operator, Tensor
from tinyedge.ops.base import ConstArray, LowerCtx, Lowered, OpSpec, c_array_literal, register
from tinyedge.ops.common import input_tensor

# Input positions in the TFLite LSTM operator (lstm_shared.h)
INPUT = 0
IN_WEIGHTS = (1, 2, 3, 4)  # input_to_{input,forget,cell,output}_weights
REC_WEIGHTS = (5, 6, 7, 8)  # recurrent_to_{...}_weights
PEEPHOLE = (9, 10, 11)
BIASES = (12, 13, 14, 15)
PROJECTION = (16, 17)
OUTPUT_STATE, CELL_STATE = 18, 19
LAYER_NORM = (20, 21, 22, 23)
N_INPUTS = 24  # TFLM's Prepare: TF_LITE_ENSURE_EQ(inputs, 24)
GATES = ("input", "forget", "cell", "output")
GATE_SCALE = 2.0 ** -12  # Q3.12 gate pre-activations (PrepareGateParametersInteger)
GATE_OUT_SCALE = 2.0 ** -15  # Q0.15 gate outputs
ACT_TANH = 4  # ActivationFunctionType TANH, the only cell gate activation a .tflite can give TFLM
# Cell scales 2^p TFLM computes without int32 overflow: the tanh's input rescaling
# c * (3 << (12 + p)) needs 12 + p <= 14, the cell update's i * g product times
# 2^(-29 - p) (its multiplier's left shift) needs -29 - p <= 1.
CELL_POWER_RANGE = (-30, 2)
MAX_PRODUCT_LEFT_SHIFT = 1  # |Q0.15 x Q0.15| < 2^30: shifting left by 1 still fits int32
LOG2_MARGIN_SQ = 2.0 ** -12  # |m^2 - 1/2| below this: log2 within ~2^-12 of a half integer


@dataclass(frozen=True)
class _Sizes:
    batch: int
    steps: int
    n_input: int
    n_cell: int
    time_major: bool


def _sizes(op: Operator, graph: Graph) -> _Sizes:
    """CreateLstmSizeInfo: batch and steps from the input, units from the output state's dim 1."""
    x, h = graph.tensor(op.inputs[INPUT]), graph.tensor(op.inputs[OUTPUT_STATE])
    time_major = bool(op.options.get("time_major", False))
    batch, steps = (x.shape[1], x.shape[0]) if time_major else (x.shape[0], x.shape[1])
    return _Sizes(batch, steps, x.shape[2], h.shape[1], time_major)


def cell_power(scale: float) -> int | None:
    """TFLM's rounded log2 of the cell state scale (CheckedLog2: round(log2(x)) half away from
    zero, its "exact power of two" result ignored), derived exactly; None for a scale that is not
    positive and finite, or whose log2 lies so close to a half integer (within about 2^-12) that
    the logf TFLM computes it with decides the rounding."""
    s = float(np.float32(scale))
    if not math.isfinite(s) or s <= 0.0:
        return None
    m, e = math.frexp(s)  # s = m * 2^e, 1/2 <= m < 1: log2(s) = e + log2(m), log2(m) in [-1, 0)
    d = m * m - 0.5  # exact: m has 24 bits, m * m 48; Sterbenz for the subtraction
    if abs(d) < LOG2_MARGIN_SQ:
        return None
    return e if d > 0 else e - 1  # log2(m) >= -1/2 (m >= sqrt(1/2)) rounds to e, else to e - 1


def _tanh_rescale(power: int) -> tuple[int, int]:
    """lstm_internal::Tanh: the cell (scale 2^power) into the int16 tanh's input, (mult, shift):
    the left shift 12 + power becomes the multiplier 3 << it, a right shift keeps 3."""
    left = 15 + power - 3
    return (3 << left, 0) if left >= 0 else (3, -left)


def _multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier (quantization_util.cc) for the multipliers below 2^30 used here."""
    assert 0.0 <= real < 2.0 ** 30
    return quant.quantize_multiplier(real)


def _gate_reals(op: Operator, graph: Graph, g: int) -> tuple[float, float]:
    """Real multipliers of gate g's input and recurrent fully connected layers: in
    GetQuantizedConvolutionMultipler, the float32 product of the two scales, over 2^-12 in double."""
    x, h = graph.tensor(op.inputs[INPUT]), graph.tensor(op.inputs[OUTPUT_STATE])
    w_in, w_rec = graph.tensor(op.inputs[IN_WEIGHTS[g]]), graph.tensor(op.inputs[REC_WEIGHTS[g]])
    return (quant.f32(quant.f32(x.scale) * quant.f32(w_in.scale)) / GATE_SCALE,
            quant.f32(quant.f32(h.scale) * quant.f32(w_rec.scale)) / GATE_SCALE)


def _inter_gate_reals(cell: Tensor, hidden: Tensor) -> dict[str, float]:
    """CreateInterGateMulParams: double(in1) * double(in2) / double(out), float32 scales."""
    s_c, s_h = quant.f32(cell.scale), quant.f32(hidden.scale)
    return {
        "forget": GATE_OUT_SCALE * s_c / s_c,  # forget gate x cell state -> cell state
        "input": GATE_OUT_SCALE * GATE_OUT_SCALE / s_c,  # input gate x cell gate -> cell state
        "hidden": GATE_OUT_SCALE * GATE_OUT_SCALE / s_h,  # tanh(cell) x output gate -> hidden state
    }


def quantized_cell_clip(op: Operator, cell: Tensor) -> int:
    """CreateLstmCellStateInfo's quantized_cell_clip, or -1 when the float clip is not above 0
    (UpdateLstmCell then does not clip): int16(min(max(double(clip) / double(scale), -32768),
    32767)), the cast truncating toward zero."""
    clip = quant.f32(float(op.options.get("cell_clip", 0.0) or 0.0))
    if not clip > 0.0:
        return -1
    v = clip / quant.f32(cell.scale)  # double division; +inf for a tiny scale
    return int(min(max(v, -32768.0), 32767.0))


# ---- check -----------------------------------------------------------------------------------


def _presence_problems(op: Operator, graph: Graph) -> list[str]:
    """LstmTensors::ValidateTensorStatus: what must and must not be there."""
    def t(k: int) -> Tensor | None:
        return input_tensor(graph, op, k)

    problems = []
    missing = [k for k in (INPUT, OUTPUT_STATE, CELL_STATE, *IN_WEIGHTS, *REC_WEIGHTS, *BIASES) if t(k) is None]
    if any(k in (IN_WEIGHTS[0], REC_WEIGHTS[0], BIASES[0]) for k in missing):
        problems.append("CIFG LSTM (no input gate) is not supported: TFLM requires all eight weight "
                        "tensors and all four gate biases")
    elif missing:
        problems.append(f"inputs {missing} are missing: TFLM requires the input, both states, all eight "
                        "weight tensors and all four gate biases")
    if any(t(k) is not None for k in PEEPHOLE):
        problems.append("peephole connections (cell_to_*_weights) are not supported: TFLM refuses them")
    if any(t(k) is not None for k in PROJECTION):
        problems.append("projection (projection_weights/bias) is not supported: TFLM refuses it")
    if any(t(k) is not None for k in LAYER_NORM):
        problems.append("layer normalization is not supported: TFLM refuses it")
    for k, name in ((OUTPUT_STATE, "output state"), (CELL_STATE, "cell state")):
        s = t(k)
        if s is not None and (not s.is_variable or s.is_const):
            problems.append(f"the {name} must be a variable tensor without initial data, as TFLM requires "
                            "(state fed as model inputs is not supported)")
    return problems


def _type_problems(op: Operator, graph: Graph) -> list[str]:
    x, h, c = (graph.tensor(op.inputs[k]) for k in (INPUT, OUTPUT_STATE, CELL_STATE))
    y = graph.tensor(op.outputs[0])
    if x.dtype != "int8":
        return [f"input is {x.dtype}: only the int8 LSTM (int16 cell state) is supported, not float, "
                "hybrid or 16x8 ones"]
    problems = []
    if c.dtype != "int16":
        problems.append(f"cell state must be int16 (got {c.describe()}); only the fully integer 8x8_16 LSTM "
                        "is supported")
    if h.dtype != "int8" or y.dtype != "int8":
        problems.append(f"output state ({h.dtype}) and output ({y.dtype}) must be int8 like the input, "
                        "as TFLM requires")
    for k in IN_WEIGHTS + REC_WEIGHTS:
        w = graph.tensor(op.inputs[k])
        name = f"{'input' if k in IN_WEIGHTS else 'recurrent'} weights of the {GATES[(k - 1) % 4]} gate"
        if not w.is_const or w.dtype != "int8" or w.quant is None:
            problems.append(f"{name} must be constant int8 (got {w.describe()})")
        elif w.quant.per_channel:
            problems.append(f"{name} are quantized per channel: TFLM's LSTM takes one scale per weight "
                            "tensor (its per-channel multipliers are never used)")
        elif w.zero_point != 0:
            problems.append(f"{name} have zero point {w.zero_point}: TFLM requires symmetric weights")
    for k in BIASES:
        b = graph.tensor(op.inputs[k])
        if not b.is_const or b.dtype != "int32":
            problems.append(f"{GATES[k - 12]} gate bias must be constant int32 (got {b.describe()})")
    for t, name in ((x, "input"), (h, "output state"), (c, "cell state")):
        if t.quant is None or t.quant.per_channel:
            problems.append(f"the {name} needs one scale and zero point (got {t.describe()})")
    if op.options.get("fused_activation_function", ACT_TANH) != ACT_TANH:
        problems.append(f"cell gate activation {op.options.get('fused_activation_function')} is not TANH: "
                        "TFLM's LSTM computes the cell gate with tanh (or sigmoid) only")
    return problems


def _shape_problems(op: Operator, graph: Graph) -> list[str]:
    """CreateLstmSizeInfo / ValidateTensorSize."""
    x, h, c = (graph.tensor(op.inputs[k]) for k in (INPUT, OUTPUT_STATE, CELL_STATE))
    y = graph.tensor(op.outputs[0])
    if len(x.shape) != 3 or len(h.shape) < 2:
        return [f"input must be 3-D and the output state at least 2-D (got {x.describe()}, {h.describe()})"]
    s = _sizes(op, graph)
    if op.options.get("diagonal_recurrent_tensors"):
        return ["diagonal recurrent weights are not supported (TFLM requires [units, units] recurrent weights)"]
    problems = []
    for k in IN_WEIGHTS + REC_WEIGHTS:
        w = graph.tensor(op.inputs[k])
        want = (s.n_cell, s.n_input if k in IN_WEIGHTS else s.n_cell)
        if w.shape != want:
            problems.append(f"{'input' if k in IN_WEIGHTS else 'recurrent'} weights of the "
                            f"{GATES[(k - 1) % 4]} gate have shape {list(w.shape)}, TFLM requires {list(want)}")
    for k in BIASES:
        if graph.tensor(op.inputs[k]).shape != (s.n_cell,):
            problems.append(f"{GATES[k - 12]} gate bias must have shape [{s.n_cell}]")
    if h.size != s.batch * s.n_cell or c.size != s.batch * s.n_cell:
        problems.append(f"output and cell state must hold batch x units = {s.batch * s.n_cell} values "
                        f"(got {h.size} and {c.size})")
    if y.shape != x.shape[:2] + (s.n_cell,):
        problems.append(f"output must be {list(x.shape[:2]) + [s.n_cell]} (got {list(y.shape)})")
    return problems


def _scale_problems(op: Operator, graph: Graph) -> list[str]:
    c, h = graph.tensor(op.inputs[CELL_STATE]), graph.tensor(op.inputs[OUTPUT_STATE])
    scaled = [graph.tensor(op.inputs[k]) for k in (INPUT, OUTPUT_STATE, *IN_WEIGHTS, *REC_WEIGHTS)]
    if not all(quant.f32(t.scale) > 0.0 for t in scaled):
        return ["the input, output state and weight scales must be positive (TFLM's multipliers need "
                "products of scales >= 0)"]
    p = cell_power(c.scale)
    if p is None:
        return [f"cell state scale {c.scale:g} is not positive, or its log2 is too close to a half integer "
                "for TFLM's float log2 (CheckedLog2) to round it the same on every host; re-convert the model"]
    lo, hi = CELL_POWER_RANGE
    if not lo <= p <= hi:
        return [f"cell state scale {c.scale:g} (2^{p}) is outside 2^{lo}..2^{hi}: TFLM's int16 tanh input "
                "or cell update overflows int32 there (undefined behaviour); re-convert the model"]
    reals = _inter_gate_reals(c, h)
    for name in ("input", "hidden"):
        if not reals[name] < 2.0 ** 30 or _multiplier(reals[name])[1] > MAX_PRODUCT_LEFT_SHIFT:
            what = "cell state" if name == "input" else "output state"
            return [f"{what} scale {(c if name == 'input' else h).scale:g} is too small: TFLM's "
                    f"{name} product would overflow int32 (undefined behaviour)"]
    for g in range(4):
        if not all(r < 2.0 ** 30 for r in _gate_reals(op, graph, g)):
            return [f"the {GATES[g]} gate's scales give a multiplier of 2^30 or more: TFLM shifts an int32 "
                    "left by more than 30 bits there (undefined behaviour)"]
    return []


def check_lstm(op: Operator, graph: Graph) -> list[str]:
    """Every reason this UNIDIRECTIONAL_SEQUENCE_LSTM cannot be lowered (TFLM's refusals first)."""
    if len(op.inputs) != N_INPUTS or len(op.outputs) != 1:
        return [f"has {len(op.inputs)} inputs and {len(op.outputs)} outputs; TFLM requires {N_INPUTS} and 1"]
    problems = _presence_problems(op, graph)
    if problems:
        return problems
    problems = _type_problems(op, graph)
    if problems:
        return problems
    return _shape_problems(op, graph) or _scale_problems(op, graph)


# ---- lowering --------------------------------------------------------------------------------


def _folded_biases(op: Operator, graph: Graph) -> dict[str, np.ndarray]:
    """The zero points folded in: bias - x_zp * row sums (input side), -h_zp * row sums
    (recurrent side, which has no bias in TFLM), wrapped to int32 (te_lstm.c adds them modulo
    2^32, so the sums equal TFLM's)."""
    x, h = graph.tensor(op.inputs[INPUT]), graph.tensor(op.inputs[OUTPUT_STATE])
    out: dict[str, np.ndarray] = {}
    for g, name in enumerate(GATES):
        w_in, w_rec = graph.tensor(op.inputs[IN_WEIGHTS[g]]), graph.tensor(op.inputs[REC_WEIGHTS[g]])
        bias = graph.tensor(op.inputs[BIASES[g]]).array().astype(np.int64)
        for side, v in (("in", bias - int(x.zero_point) * w_in.array().astype(np.int64).sum(axis=1)),
                        ("rec", -int(h.zero_point) * w_rec.array().astype(np.int64).sum(axis=1))):
            out[f"{side}_{name}"] = v.astype(np.uint32).astype(np.int32)  # modulo 2^32
    return out


def _c_list(values: list[int] | list[str]) -> str:
    return "{ " + ", ".join(str(v) for v in values) + " }"


def lower_lstm(op: Operator, ctx: LowerCtx) -> Lowered:
    graph = ctx.graph
    x, y = graph.tensor(op.inputs[INPUT]), graph.tensor(op.outputs[0])
    h, c = graph.tensor(op.inputs[OUTPUT_STATE]), graph.tensor(op.inputs[CELL_STATE])
    s = _sizes(op, graph)
    consts: list[ConstArray] = []
    names: dict[str, list[str]] = {"w_in": [], "w_rec": [], "b_in": [], "b_rec": []}
    mults: dict[str, list[int]] = {"in_mult": [], "in_shift": [], "rec_mult": [], "rec_shift": []}
    biases = _folded_biases(op, graph)
    for g, gate in enumerate(GATES):
        for side, k, real in zip(("in", "rec"), (IN_WEIGHTS[g], REC_WEIGHTS[g]), _gate_reals(op, graph, g)):
            w = graph.tensor(op.inputs[k])
            wn, bn = ctx.name(f"w_{side}_{gate}"), ctx.name(f"b_{side}_{gate}")
            consts.append(ConstArray(wn, "int8_t", w.array().reshape(-1),
                                     f"{gate} gate, {side} weights {list(w.shape)}, as in the model"))
            zp_note = (f"bias - input_zp ({x.zero_point}) * row sums" if side == "in"
                       else f"-output_state_zp ({h.zero_point}) * row sums")
            consts.append(ConstArray(bn, "int32_t", biases[f"{side}_{gate}"], f"{gate} gate, {zp_note}"))
            names[f"w_{side}"].append(wn)
            names[f"b_{side}"].append(bn)
            m, sh = _multiplier(real)
            mults[f"{side}_mult"].append(m)
            mults[f"{side}_shift"].append(sh)
    power = cell_power(c.scale)
    assert power is not None
    inter = {k: _multiplier(v) for k, v in _inter_gate_reals(c, h).items()}
    tanh_mult, tanh_shift = _tanh_rescale(power)
    clip = quantized_cell_clip(op, c)
    params: dict[str, object] = {
        "n_batch": s.batch, "n_steps": s.steps, "n_input": s.n_input, "n_cell": s.n_cell,
        "time_major": int(s.time_major),
        **{k: _c_list(v) for k, v in names.items()},
        **{k: _c_list(v) for k, v in mults.items()},
        "forget_mult": inter["forget"][0], "forget_shift": inter["forget"][1],
        "input_mult": inter["input"][0], "input_shift": inter["input"][1],
        "tanh_mult": tanh_mult, "tanh_shift": tanh_shift,
        "cell_clip": clip,
        "hidden_mult": inter["hidden"][0], "hidden_shift": inter["hidden"][1], "hidden_zp": h.zero_point,
    }
    pname = ctx.name("params")
    h_state, c_state = ctx.name("output_state"), ctx.name("cell_state")
    n_state = s.batch * s.n_cell
    globals_ = (
        f"/* TFLM variable tensors t{h.index} (output state, initially its zero point {h.zero_point}) and\n"
        f" * t{c.index} (cell state, initially 0): they persist from one inference to the next\n"
        f" * until te_network_reset(). */\n"
        f"static int8_t {h_state}[{n_state}] = {{ {c_array_literal(np.full(n_state, h.zero_point, np.int8))} }};\n"
        f"static int16_t {c_state}[{n_state}];"
    )
    reset = (f"for (int i = 0; i < {n_state}; ++i) {{ {h_state}[i] = (int8_t){h.zero_point}; "
             f"{c_state}[i] = 0; }}")
    call = (f"te_lstm_s8(&{pname}, {ctx.ptr(x.index)}, {ctx.ptr(y.index)}, {h_state}, {c_state}, "
            f"(int16_t *)(void *){ctx.scratch});")
    layout = "time-major" if s.time_major else "batch-major"
    clip_note = f"cell clip {clip}" if clip >= 0 else "no cell clip"
    return Lowered(
        comment=(f"UNIDIRECTIONAL_SEQUENCE_LSTM {s.batch} x {s.steps} steps ({layout}), {s.n_input} -> {s.n_cell} "
                 f"units, int16 cell state of scale {c.scale:g} (tanh input as 2^{power}), {clip_note}, "
                 "stateful across inferences"),
        call=call,
        params_type="te_lstm_params_t",
        params=params,
        params_name=pname,
        consts=consts,
        scratch_bytes=4 * s.n_cell * 2,
        globals=globals_,
        reset=reset,
    )


def lstm_macs(op: Operator, graph: Graph) -> int:
    x = graph.tensor(op.inputs[INPUT])
    n_cell, n_input = graph.tensor(op.inputs[IN_WEIGHTS[3]]).shape
    return x.shape[0] * x.shape[1] * 4 * n_cell * (n_input + n_cell)


register(OpSpec(
    name="UNIDIRECTIONAL_SEQUENCE_LSTM",
    lower=lower_lstm,
    check=check_lstm,
    constraints="fully integer 8x8_16 as TFLM runs it (int8 in/out/weights, int16 cell state of scale "
                "2^-30..2^2, int32 biases, tanh cell gate), time_major or batch-major, any cell clip; no CIFG, "
                "peephole, projection, layer norm or float/hybrid/16x8; state persists across inferences like "
                "TFLM's variable tensors",
    macs=lstm_macs,
))
