"""Small rewrites of a .tflite model's bytes (flatbuffer object API).

Used where an interpreter has to show more than the model's outputs (the
per-layer comparison runs the oracle on a copy of the model whose op outputs
are promoted to subgraph outputs), and where TFLM lacks a kernel (the model is
cut around those ops, which the TFLite interpreter then runs alone).
"""

from __future__ import annotations

from typing import Any, Sequence

from tinyedge.errors import TinyEdgeError


def _schema() -> Any:
    """A generated TFLite schema module with the object API (ModelT ... Pack)."""
    try:
        from ai_edge_litert import schema_py_generated as schema

        return schema
    except ImportError:
        pass
    try:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

        return schema
    except ImportError:
        raise TinyEdgeError("no TFLite schema with the flatbuffer object API is installed",
                            "pip install ai-edge-litert") from None


def promote_to_outputs(model: bytes, tensors: Sequence[int]) -> tuple[bytes, list[int]]:
    """A copy of ``model`` whose subgraph 0 also outputs ``tensors`` (after its own
    outputs, skipping those already there). Returns the bytes and the new output list."""
    _, obj = _load(model)
    sub = obj.subgraphs[0]
    outputs = [int(i) for i in (sub.outputs if sub.outputs is not None else [])]
    for t in tensors:
        if int(t) not in outputs:
            outputs.append(int(t))
    sub.outputs = outputs
    return _pack(obj, len(model)), outputs


def _load(model: bytes) -> tuple[Any, Any]:
    schema = _schema()
    return schema, schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))


def _pack(obj: Any, size_hint: int) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(size_hint + 1024)
    builder.Finish(obj.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _is_const(obj: Any, tensor: int) -> bool:
    t = obj.subgraphs[0].tensors[tensor]
    buf = obj.buffers[t.buffer] if obj.buffers is not None and t.buffer < len(obj.buffers) else None
    return buf is not None and (buf.data is not None and len(buf.data) > 0 or (buf.size or 0) > 0)


def cut_ops(model: bytes, ops: Sequence[int]) -> tuple[bytes, list[int], list[int]]:
    """A copy of ``model`` without the operators ``ops``: each removed op's outputs become
    model inputs (after the model's own) and its activation inputs model outputs (after
    the model's own). Returns the bytes, the new input list and the new output list."""
    _, obj = _load(model)
    sub = obj.subgraphs[0]
    removed = set(ops)
    inputs = [int(i) for i in (sub.inputs if sub.inputs is not None else [])]
    outputs = [int(i) for i in (sub.outputs if sub.outputs is not None else [])]
    for k in sorted(removed):
        op = sub.operators[k]
        for t in op.outputs if op.outputs is not None else []:
            if int(t) not in inputs:
                inputs.append(int(t))
        for t in op.inputs if op.inputs is not None else []:
            if int(t) >= 0 and int(t) not in outputs and not _is_const(obj, int(t)):
                outputs.append(int(t))
    sub.operators = [op for k, op in enumerate(sub.operators) if k not in removed]
    sub.inputs, sub.outputs = inputs, outputs
    return _pack(obj, len(model)), inputs, outputs


def single_op(model: bytes, op_index: int) -> tuple[bytes, list[int], list[int]]:
    """Operator ``op_index`` of ``model`` alone, as a model whose inputs are its activation
    inputs and whose outputs are its outputs (constants and tensors kept as they were)."""
    _, obj = _load(model)
    sub = obj.subgraphs[0]
    op = sub.operators[op_index]
    inputs = [int(t) for t in (op.inputs if op.inputs is not None else []) if int(t) >= 0 and not _is_const(obj, int(t))]
    outputs = [int(t) for t in (op.outputs if op.outputs is not None else [])]
    sub.operators = [op]
    sub.inputs, sub.outputs = inputs, outputs
    return _pack(obj, len(model)), inputs, outputs
