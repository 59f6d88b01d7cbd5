"""Small rewrites of a .tflite model's bytes (flatbuffer object API).

Used where an interpreter has to show more than the model's outputs: the
per-layer comparison runs the oracle on a copy of the model whose op outputs
are promoted to subgraph outputs.
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
    import flatbuffers

    schema = _schema()
    obj = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    sub = obj.subgraphs[0]
    outputs = [int(i) for i in (sub.outputs if sub.outputs is not None else [])]
    for t in tensors:
        if int(t) not in outputs:
            outputs.append(int(t))
    sub.outputs = outputs
    builder = flatbuffers.Builder(len(model) + 1024)
    builder.Finish(obj.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), outputs
