"""The two error types: what a user can cause, and what only a bug in tinyedge can.

Every failure a user can provoke (bad file, unsupported op, missing tool,
model too big, silent device, a full disk) raises :class:`TinyEdgeError` with
a one-line message and a hint. The CLI prints both without a traceback and
exits 1.

:class:`InternalError` is for tinyedge's own bugs: a check of our own that
fails (the generated C does not compile, the host network writes the wrong
number of bytes, a rewrite changes a model it must not change). It is not a
TinyEdgeError, so no ``except TinyEdgeError`` hides it; the CLI prints its
traceback and asks for a bug report, and exits 70 (EX_SOFTWARE). Any other
unexpected exception is shown the same way.
"""

from __future__ import annotations

INTERNAL_ERROR_EXIT = 70  # sysexits.h EX_SOFTWARE: an internal software error
REPORT_BUG = ("this is a bug in tinyedge, not in your model or command: please report it with the command "
              "line, the model and everything printed above")


class TinyEdgeError(Exception):
    """A user-facing error: a one-line ``message`` and a ``hint`` on what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class InternalError(Exception):
    """A bug in tinyedge. ``detail``: text that helps find it (a compiler's
    output, a child process's traceback), shown with the traceback."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return self.message if not self.detail else f"{self.message}\n{self.detail}"
