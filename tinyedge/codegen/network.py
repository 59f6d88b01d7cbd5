"""Render network.c/.h and model_data.c/.h for one compiled network.

Everything a template prints is prepared here: the templates only lay out
text. Output is a pure function of the model bytes and the tinyedge version,
so generation is reproducible byte for byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tinyedge import __version__
from tinyedge import kernels as kernel_sets
from tinyedge.codegen.render import c_escape, render_template
from tinyedge.compiler import CompiledNetwork
from tinyedge.model.ir import DTYPE_SIZES, Graph, Tensor
from tinyedge.ops.base import c_array_literal
from tinyedge.outputs import write_atomic
from tinyedge.resources import templates_dir

C_TYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t",
           "float32": "float", "int64": "int64_t", "bool": "uint8_t"}
DTYPE_ENUM = {"float32": "TE_DTYPE_FLOAT32", "int32": "TE_DTYPE_INT32", "uint8": "TE_DTYPE_UINT8",
              "int16": "TE_DTYPE_INT16", "int8": "TE_DTYPE_INT8"}


def short_name(name: str, limit: int = 48) -> str:
    """A tensor name fit for a comment: TF joins fused ops' names with ';' --
    keep the first one, and its tail if still long (the .tflite keeps the full name)."""
    name = name.split(";")[0] or name
    name = name.replace("*/", "* /")
    return name if len(name) <= limit else "..." + name[-(limit - 3):]


def _shape(t: Tensor) -> str:
    return "x".join(str(d) for d in t.shape) or "1"


def _tensor_macros(net: CompiledNetwork) -> list[dict[str, str]]:
    rows = []
    for t_index in sorted(net.plan.tensor_offsets):
        t = net.graph.tensors[t_index]
        first, last = net.plan.lifetime(t_index)
        rows.append({
            "name": f"T{t_index}",
            "ctype": C_TYPES.get(t.dtype, "uint8_t"),
            "offset": str(net.plan.tensor_offsets[t_index]),
            "comment": f"{short_name(t.name)}: {t.dtype}[{_shape(t)}], {t.nbytes} B, ops {first}..{last}",
        })
    for op_index in sorted(net.plan.scratch_offsets):
        lo = next(o for o in net.ops if o.op.index == op_index)
        rows.append({
            "name": f"S{op_index}",
            "ctype": "int8_t",
            "offset": str(net.plan.scratch_offsets[op_index]),
            "comment": f"scratch of op {op_index} ({lo.op.opcode}), {lo.lowered.scratch_bytes} B"
                       + (f" + {lo.lowered.inplace_scratch} B (in place: its output over its input)"
                          if op_index in net.plan.inplace_ops and lo.lowered.inplace_scratch else ""),
        })
    return rows


def _c_literal(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        from tinyedge.ops.base import _c_float

        return f"{_c_float(float(v))} /* {float(np.float32(v))!r} */"
    return str(v)


def _op_blocks(net: CompiledNetwork) -> list[dict[str, Any]]:
    blocks = []
    for lo in net.ops:
        low = lo.lowered
        consts = []
        for c in low.consts:
            values = np.asarray(c.values)
            per_line = 16 if values.dtype.itemsize <= 2 else 8
            if values.ndim == 2:  # an array of structs: one braced initializer per element
                length = values.shape[0]
                body = ",\n    ".join("{" + c_array_literal(row, row.size) + "}" for row in values)
            else:
                length = values.size
                body = c_array_literal(values, per_line)
            consts.append({
                "decl": f"static const {c.ctype} {c.name}[{length}]",
                "body": body,
                "comment": c.comment,
                # word-aligned from 16 values on (4-byte loads), or what the kernel asks for
                "align": max(c.align, 4 if values.size >= 16 else 0),
            })
        params = None
        if low.params_type:
            params = {
                "decl": f"static const {low.params_type} {low.params_name or f'op{lo.op.index}_params'}",
                "fields": [(k, _c_literal(v)) for k, v in low.params.items()],
            }
        ins = ", ".join(f"t{i}" for i in lo.op.inputs if i >= 0)
        outs = ", ".join(f"t{i}" for i in lo.op.outputs)
        blocks.append({
            "index": lo.op.index,
            "opcode": lo.op.opcode,
            "comment": low.comment,
            "io": f"({ins}) -> ({outs})",
            "macs": net.macs.get(lo.op.index, 0),
            "consts": consts,
            "params": params,
            "call": low.call,
            "globals": low.globals.strip(),
            "reset": low.reset.strip(),
        })
    return blocks


def _io_info(net: CompiledNetwork, indices: list[int]) -> list[dict[str, Any]]:
    rows = []
    for t_index in indices:
        t = net.graph.tensors[t_index]
        dims = list(t.shape) or [1]
        scale = t.quant.scale[0] if t.quant else 0.0
        zp = t.quant.zero_point[0] if t.quant else 0
        rows.append({
            "name": c_escape(t.name),
            "macro": f"T{t_index}",
            "bytes": t.nbytes,
            "dtype": DTYPE_ENUM.get(t.dtype, "TE_DTYPE_INT8"),
            "rank": len(dims),
            "dims": ", ".join(str(d) for d in dims),
            "scale": _c_literal(float(scale)),
            "zero_point": zp,
            "describe": t.describe(),
        })
    return rows


def _op_outputs(net: CompiledNetwork) -> list[dict[str, Any]]:
    """te_network_op_outputs[]: every output of every op, in op order."""
    rows = []
    for lo in net.ops:
        for k, t_index in enumerate(lo.op.outputs):
            t = net.graph.tensors[t_index]
            rows.append({"op": lo.op.index, "output": k, "macro": f"T{t_index}", "bytes": t.nbytes,
                         "comment": f"{lo.op.opcode} -> {short_name(t.name) or f't{t_index}'} {t.dtype}[{_shape(t)}]"})
    return rows


def _hex_body(data: bytes, per_line: int = 16) -> str:
    lines = []
    for i in range(0, len(data), per_line):
        lines.append(", ".join(f"0x{b:02x}" for b in data[i : i + per_line]))
    return ",\n    ".join(lines)


def runtime_headers() -> list[str]:
    """Every kernel header of the runtime, in a fixed order."""
    skip = {"te_types.h"}
    return sorted(p.name for p in (templates_dir() / "runtime").glob("te_*.h") if p.name not in skip)


def render_network_files(net: CompiledNetwork, model_name: str) -> dict[str, str]:
    """network.c, network.h, model_data.c, model_data.h as text."""
    g = net.graph
    ctx: dict[str, Any] = {
        "version": __version__,
        "model_name": model_name,
        "model_sha256": g.sha256,
        "model_bytes": len(g.model_bytes),
        "n_ops": len(g.operators),
        "total_macs": net.total_macs,
        "arena_bytes": net.arena_bytes,
        "tensor_macros": _tensor_macros(net),
        "ops": _op_blocks(net),
        "inputs": _io_info(net, g.inputs),
        "outputs": _io_info(net, g.outputs),
        "op_outputs": _op_outputs(net),
        "sha_bytes": ", ".join(f"0x{b:02x}" for b in bytes.fromhex(g.sha256)),
        "runtime_headers": runtime_headers(),
        "kernels": kernel_sets.describe(net.kernels),
    }
    files = {
        "network.c": render_template("network/network.c.j2", ctx),
        "network.h": render_template("network/network.h.j2", ctx),
        "model_data.h": render_template("network/model_data.h.j2", ctx),
    }
    ctx["model_data_body"] = _hex_body(g.model_bytes)
    files["model_data.c"] = render_template("network/model_data.c.j2", ctx)
    return files


def write_files(outdir: Path, files: dict[str, str]) -> None:
    """Write text files, each atomically, leaving files whose content is
    unchanged untouched (so make's incremental build stays incremental)."""
    for rel, text in files.items():
        path = outdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_bytes() != text.encode():
            write_atomic(path, text, durable=False)


def io_sizes(graph: Graph) -> tuple[list[int], list[int]]:
    return ([graph.tensors[i].nbytes for i in graph.inputs],
            [graph.tensors[i].nbytes for i in graph.outputs])


__all__ = ["render_network_files", "write_files", "io_sizes", "DTYPE_SIZES"]
