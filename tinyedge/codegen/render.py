"""Jinja2 rendering of the firmware templates (StrictUndefined, no logic)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2

from tinyedge.resources import templates_dir


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["c_string"] = c_string
    return env


def c_escape(text: str) -> str:
    """``text`` as the inside of a C99 string literal, in plain ASCII: quote,
    backslash and ``?`` (no trigraphs under -std=c99) escaped, control
    characters and the UTF-8 bytes of anything beyond ASCII as octal escapes
    (always three digits, so a following digit is never taken into one)."""
    out = []
    for byte in text.encode("utf-8", errors="replace"):
        ch = chr(byte)
        if ch in '\\"?':
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return "".join(out)


def c_string(text: str) -> str:
    """``text`` as a C99 string literal (see :func:`c_escape`)."""
    return f'"{c_escape(text)}"'


def render_template(rel_path: str, context: dict[str, Any]) -> str:
    return environment().get_template(rel_path).render(**context)
