"""The graph IR every later step works on: tensors, operators, quantization.

It is a plain, typed snapshot of one subgraph of a .tflite file. It knows
nothing of boards, code generation or devices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# TFLite TensorType enum value -> (our dtype name, numpy dtype)
DTYPES: dict[int, tuple[str, str]] = {
    0: ("float32", "<f4"),
    1: ("float16", "<f2"),
    2: ("int32", "<i4"),
    3: ("uint8", "u1"),
    4: ("int64", "<i8"),
    6: ("bool", "?"),
    7: ("int16", "<i2"),
    9: ("int8", "i1"),
    10: ("float64", "<f8"),
}

DTYPE_SIZES: dict[str, int] = {name: np.dtype(np_t).itemsize for name, np_t in DTYPES.values()}


@dataclass(frozen=True)
class Quant:
    """Affine quantization: real = scale * (q - zero_point), per tensor or per ``axis``."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Quant | None = None
    data: bytes | None = None  # constant buffer contents, None for activations
    is_variable: bool = False  # state kept across inferences (e.g. LSTM state)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def is_activation(self) -> bool:
        """Lives in the arena: neither a constant nor persistent state."""
        return self.data is None and not self.is_variable

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        """Bytes of the tensor's data; 0 for a type without a fixed size (string, resource)."""
        return self.size * DTYPE_SIZES.get(self.dtype, 0)

    def array(self) -> np.ndarray:
        """The constant contents as a numpy array of the tensor's shape."""
        if self.data is None:
            raise ValueError(f"tensor {self.index} ({self.name}) is not constant")
        np_t = next(t for n, t in DTYPES.values() if n == self.dtype)
        return np.frombuffer(self.data, dtype=np_t).reshape(self.shape)

    @property
    def scale(self) -> float:
        assert self.quant is not None
        return self.quant.scale[0]

    @property
    def zero_point(self) -> int:
        assert self.quant is not None
        return self.quant.zero_point[0]

    def describe(self) -> str:
        shape = "x".join(str(d) for d in self.shape) or "scalar"
        q = ""
        if self.quant is not None:
            if self.quant.per_channel:
                q = f" per-channel[{len(self.quant.scale)}] axis={self.quant.axis}"
            else:
                q = f" s={self.quant.scale[0]:.6g} zp={self.quant.zero_point[0]}"
        return f"{self.dtype}[{shape}]{q}"


@dataclass
class Operator:
    index: int
    opcode: str  # TFLite builtin operator name, e.g. "CONV_2D"
    inputs: list[int]  # tensor indices; -1 marks an omitted optional input
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    intermediates: list[int] = field(default_factory=list)  # e.g. the int8 LSTM's gate scales


@dataclass
class Graph:
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    sha256: str
    source: str  # path (or "<bytes>") the model came from
    model_bytes: bytes = b""
    description: str = ""

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def op_inputs(self, op: Operator) -> list[Tensor | None]:
        return [self.tensors[i] if i >= 0 else None for i in op.inputs]

    def op_outputs(self, op: Operator) -> list[Tensor]:
        return [self.tensors[i] for i in op.outputs]

    @property
    def input_tensors(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.inputs]

    @property
    def output_tensors(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.outputs]

    def const_bytes(self) -> int:
        """Bytes held by constant tensors that operators use (weights, biases, tables)."""
        used = {i for op in self.operators for i in op.inputs if i >= 0}
        return sum(t.nbytes for t in self.tensors if t.is_const and t.index in used)
