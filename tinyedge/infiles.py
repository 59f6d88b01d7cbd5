"""Files tinyedge reads from the user (models, data, firmware, reports, board
files, baselines) must be regular files.

A FIFO blocks the read until some other program writes into it, and a device
such as /dev/zero never ends: either would hang tinyedge (or fill the memory)
instead of failing. :func:`check_regular` refuses them, with the kind of file
named, before anything is read; callers keep their own messages for a
missing file or a directory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tinyedge.errors import TinyEdgeError

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def special_kind(path: Path) -> str | None:
    """What ``path`` is when it exists and is neither a regular file nor a directory."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return next((kind for test, kind in _KINDS if test(mode)), None)


def check_regular(path: Path, what: str, hint: str = "give a regular file") -> None:
    """Refuse ``path`` if it is a FIFO, a device or a socket (module doc)."""
    kind = special_kind(path)
    if kind is not None:
        raise TinyEdgeError(f"{what} {path} is {kind}, not a regular file", hint)
