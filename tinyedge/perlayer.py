"""The layer where it breaks: every op's output on the device beside the oracle's.

The firmware runs ops ``0..k`` of the network from its initial state
(protocol ``RUN_UNTIL``) and the host reads op ``k``'s outputs back before any
later op can overwrite them (``READ_OP``), for every ``k``. The oracle runs
the same sample on a copy of the model whose op outputs are promoted to model
outputs. The first op whose output differs is where the firmware and the
oracle part ways: every op before it received the same inputs on both sides.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Callable, Sequence

import numpy as np

from tinyedge.compiler import CompiledNetwork
from tinyedge.errors import TinyEdgeError
from tinyedge.model.rewrite import promote_to_outputs
from tinyedge.oracle import OracleChoice, Reference, TfliteInterpreter, choose_oracle


@dataclass
class LayerResult:
    op: int
    opcode: str
    output: int  # output number of the op
    tensor: int  # tensor index in the model
    name: str
    dtype: str
    shape: list[int]
    elements: int
    mismatches: int
    max_abs_diff: float

    @property
    def exact(self) -> bool:
        return self.mismatches == 0


@dataclass
class PerLayerResult:
    sample: int
    oracle: str  # "tflite-micro 0.dev..." / "ai-edge-litert 2.3.0"
    layers: list[LayerResult]

    @property
    def first_mismatch(self) -> LayerResult | None:
        return next((layer for layer in self.layers if not layer.exact), None)

    def to_dict(self) -> dict[str, Any]:
        first = self.first_mismatch
        return {"sample": self.sample, "oracle": self.oracle,
                "first_mismatch": None if first is None else {"op": first.op, "opcode": first.opcode,
                                                               "output": first.output},
                "layers": [asdict(layer) | {"exact": layer.exact} for layer in self.layers]}


def oracle_intermediates(net: CompiledNetwork, choice: OracleChoice,
                         inputs: Sequence[np.ndarray]) -> dict[int, np.ndarray]:
    """Every op output (tensor index -> value) as the oracle computes it for ``inputs``."""
    graph = net.graph
    wanted = [t for op in graph.operators for t in op.outputs]
    model, outputs = promote_to_outputs(graph.model_bytes, wanted)
    # the same kind of oracle as the run's (TFLM, TFLM + TFLite for the ops TFLM lacks, or TFLite)
    runner: Reference = (TfliteInterpreter(model) if isinstance(choice.oracle, TfliteInterpreter)
                         else choose_oracle(model, [op.opcode for op in graph.operators], isolated=True).oracle)
    try:
        runner.reset()
        values = runner.run(list(inputs))
    finally:
        runner.close()
    return {t: np.asarray(v) for t, v in zip(outputs, values, strict=True)}


def _run_op(client: Any, op: Any, entry: int, raw_inputs: list[bytes], graph: Any) -> list[bytes]:
    """Run ops 0..op on the device from scratch and read op's outputs (table entries
    from ``entry`` on)."""
    # the planner lets later ops reuse the inputs' bytes: write them before every run
    client.write_inputs(raw_inputs)
    _, crc = client.run_until(op.index, raw_inputs)
    outputs = []
    for k, t_index in enumerate(op.outputs):
        t = graph.tensors[t_index]
        dev_op, dev_out, dev_bytes = client.op_info(entry + k)
        if (dev_op, dev_out, dev_bytes) != (op.index, k, t.nbytes):
            raise TinyEdgeError(
                f"the firmware's op table differs from the model at entry {entry + k}: device op {dev_op} "
                f"output {dev_out} ({dev_bytes} B), model op {op.index} output {k} ({t.nbytes} B)",
                "regenerate and rebuild the firmware with this tinyedge")
        outputs.append(client.read_op_output(entry + k, t.nbytes))
    client.check_crc(crc, outputs, "READ_OP")
    return outputs


def compare_layers(net: CompiledNetwork, client: Any, choice: OracleChoice, sample_index: int,
                   inputs: Sequence[np.ndarray],
                   progress: Callable[[LayerResult], None] | None = None) -> PerLayerResult:
    """Run ``inputs`` op by op on the device behind ``client`` and compare every op output."""
    graph = net.graph
    expected = oracle_intermediates(net, choice, inputs)
    raw_inputs = [np.ascontiguousarray(x).tobytes() for x in inputs]
    layers: list[LayerResult] = []
    entry = 0
    for lo in net.ops:
        op = lo.op
        outputs = client.recovering(partial(_run_op, client, op, entry, raw_inputs, graph),
                                    f"op {op.index} of the per-layer run")
        for k, (t_index, raw) in enumerate(zip(op.outputs, outputs, strict=True)):
            t = graph.tensors[t_index]
            want = expected[t_index]
            got = np.frombuffer(raw, dtype=want.dtype).reshape(-1)
            diff = np.abs(got.astype(np.float64) - want.reshape(-1).astype(np.float64))
            mism = int(np.count_nonzero(got != want.reshape(-1)))
            layer = LayerResult(op=op.index, opcode=op.opcode, output=k, tensor=t_index, name=t.name,
                                dtype=t.dtype, shape=list(t.shape), elements=int(t.size), mismatches=mism,
                                max_abs_diff=float(diff.max()) if diff.size else 0.0)
            layers.append(layer)
            if progress:
                progress(layer)
        entry += len(op.outputs)
    oracle = f"{choice.oracle.name} {choice.oracle.version}"
    return PerLayerResult(sample=sample_index, oracle=oracle, layers=layers)
