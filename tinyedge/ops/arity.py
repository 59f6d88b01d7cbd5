"""How many inputs and outputs each supported op takes, as TFLite defines it.

Checked for every op before its family's ``check`` runs (tinyedge.codegen.lower),
so that op code may index its inputs and outputs without guarding each access:
a model whose op has the wrong number of them is refused as malformed, by
position and name, instead of crashing the op's check.

The counts are TFLite's (the ``NumInputs``/``NumOutputs`` checks in each
kernel's Prepare in tflite-micro, tensorflow/lite/micro/kernels/*.cc, and
TFLite's for TILE); an optional input (a bias) may also be given as -1.
``None`` as a maximum: any number.
"""

from __future__ import annotations

from tinyedge.model.ir import Operator

ONE_IN_ONE_OUT = ((1, 1), (1, 1))
TWO_IN_ONE_OUT = ((2, 2), (1, 1))

# opcode -> ((min inputs, max inputs), (min outputs, max outputs))
ARITY: dict[str, tuple[tuple[int, int | None], tuple[int, int | None]]] = {
    "FULLY_CONNECTED": ((2, 3), (1, 1)),
    "CONV_2D": ((2, 3), (1, 1)),
    "DEPTHWISE_CONV_2D": ((2, 3), (1, 1)),
    "AVERAGE_POOL_2D": ONE_IN_ONE_OUT,
    "MAX_POOL_2D": ONE_IN_ONE_OUT,
    "MEAN": TWO_IN_ONE_OUT,
    "REDUCE_MAX": TWO_IN_ONE_OUT,
    "SOFTMAX": ONE_IN_ONE_OUT,
    "ADD": TWO_IN_ONE_OUT,
    "SUB": TWO_IN_ONE_OUT,
    "MUL": TWO_IN_ONE_OUT,
    "MAXIMUM": TWO_IN_ONE_OUT,
    "MINIMUM": TWO_IN_ONE_OUT,
    "RELU": ONE_IN_ONE_OUT,
    "RELU6": ONE_IN_ONE_OUT,
    "RELU_N1_TO_1": ONE_IN_ONE_OUT,
    "LEAKY_RELU": ONE_IN_ONE_OUT,
    "HARD_SWISH": ONE_IN_ONE_OUT,
    "LOGISTIC": ONE_IN_ONE_OUT,
    "TANH": ONE_IN_ONE_OUT,
    "PRELU": TWO_IN_ONE_OUT,
    "CONCATENATION": ((1, None), (1, 1)),
    "PAD": ((2, 3), (1, 1)),
    "PADV2": ((2, 3), (1, 1)),
    "STRIDED_SLICE": ((4, 4), (1, 1)),
    "SPLIT": ((2, 2), (1, None)),
    "SPLIT_V": ((3, 3), (1, None)),
    "TRANSPOSE": TWO_IN_ONE_OUT,
    "TILE": TWO_IN_ONE_OUT,
    "RESIZE_NEAREST_NEIGHBOR": TWO_IN_ONE_OUT,
    "RESHAPE": ((1, 2), (1, 1)),
    "SQUEEZE": ONE_IN_ONE_OUT,
    "EXPAND_DIMS": TWO_IN_ONE_OUT,
    "QUANTIZE": ONE_IN_ONE_OUT,
    "DEQUANTIZE": ONE_IN_ONE_OUT,
    "BATCH_MATMUL": TWO_IN_ONE_OUT,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ((20, 24), (1, 1)),
}

# inputs that may be omitted (-1): the biases
OPTIONAL_INPUTS: dict[str, set[int]] = {"FULLY_CONNECTED": {2}, "CONV_2D": {2}, "DEPTHWISE_CONV_2D": {2},
                                        "PAD": {2}, "PADV2": {2}}


def _count(n: int, lo: int, hi: int | None) -> bool:
    return n >= lo and (hi is None or n <= hi)


def _expected(lo: int, hi: int | None) -> str:
    return f"{lo}" if lo == hi else f"{lo} or more" if hi is None else f"{lo} to {hi}"


def arity_problems(op: Operator) -> list[str]:
    """Why ``op`` does not have the inputs and outputs TFLite's op takes (empty: it does)."""
    if op.opcode not in ARITY:
        return []
    (in_lo, in_hi), (out_lo, out_hi) = ARITY[op.opcode]
    problems = []
    if not _count(len(op.inputs), in_lo, in_hi):
        problems.append(f"malformed: has {len(op.inputs)} inputs, {op.opcode} takes {_expected(in_lo, in_hi)}")
    if not _count(len(op.outputs), out_lo, out_hi):
        problems.append(f"malformed: has {len(op.outputs)} outputs, {op.opcode} takes {_expected(out_lo, out_hi)}")
    optional = OPTIONAL_INPUTS.get(op.opcode, set())
    missing = [k for k, i in enumerate(op.inputs) if i < 0 and k not in optional]
    if op.opcode != "UNIDIRECTIONAL_SEQUENCE_LSTM" and missing:   # the LSTM's op check names its own
        problems.append(f"malformed: input {missing[0]} is missing (-1), and {op.opcode} needs it")
    return problems
