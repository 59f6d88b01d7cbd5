"""Make malformed or unsupported models from good ones, for error-path tests.

Patches a .tflite flatbuffer in place (field positions found with the
schema's own accessors), so the result is a valid model the TFLite reader
accepts but tinyedge must refuse with a clear message.
"""

from __future__ import annotations

import struct

import tflite


def with_opcode(data: bytes, code_index: int, new_code: int) -> bytes:
    """Return ``data`` with operator code ``code_index`` changed to builtin ``new_code`` (< 127)."""
    buf = bytearray(data)
    model = tflite.Model.GetRootAsModel(buf, 0)
    oc = model.OperatorCodes(code_index)
    tab = oc._tab
    off_dep = tab.Offset(4)  # field 0: deprecated_builtin_code (int8)
    off_new = tab.Offset(10)  # field 3: builtin_code (int32)
    assert off_dep, "operator code has no deprecated_builtin_code field to patch"
    buf[tab.Pos + off_dep] = new_code
    if off_new:
        struct.pack_into("<i", buf, tab.Pos + off_new, new_code)
    return bytes(buf)


def strip_tensor_names(data: bytes) -> bytes:
    """A copy of a model whose tensors have no names (as TFLM's own test models)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    obj = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    for sub in obj.subgraphs or []:
        for t in sub.tensors or []:
            t.name = None
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(obj.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def with_weight_changed(data: bytes) -> bytes:
    """A copy of a model with one byte of its largest constant buffer changed by one:
    another model (another SHA-256) with the same ops, shapes and memory plan."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    obj = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    buf = max((b for b in obj.buffers or [] if b.data is not None and len(b.data)), key=lambda b: len(b.data))
    values = bytearray(bytes(buf.data))
    values[0] = (values[0] + 1) & 0xFF
    buf.data = list(values)
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(obj.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def with_batch(data: bytes, n: int) -> bytes:
    """A copy of a model whose activation tensors (no constant data) of batch 1 have batch ``n``:
    the same ops and weights on ``n`` images at once (CONV_2D / DEPTHWISE_CONV_2D take any
    batch; the Keras converter fixes it to 1)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    obj = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    for sub in obj.subgraphs or []:
        for t in sub.tensors or []:
            buf = obj.buffers[t.buffer] if t.buffer < len(obj.buffers) else None
            constant = buf is not None and buf.data is not None and len(buf.data) > 0
            if not constant and t.shape is not None and len(t.shape) == 4 and t.shape[0] == 1:
                t.shape = [n, *list(t.shape)[1:]]
                if t.shapeSignature is not None and len(t.shapeSignature) == 4:
                    t.shapeSignature = [n, *list(t.shapeSignature)[1:]]
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(obj.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
