"""The error every Dockerfile problem is reported with."""
from __future__ import annotations

from ..errors import EngineError


class DockerfileError(EngineError):
    """A Dockerfile (or .dockerignore) cannot be parsed or used.

    ``message`` is Docker's own text (e.g. ``dockerfile parse error line 2: unknown instruction:
    FOO``); ``line``/``end_line`` locate the instruction (1-based, None when not tied to a line);
    ``hint`` says what to do about it.  ``str(err)`` is the message followed by the hint in
    parentheses.
    """

    def __init__(self, message: str, *, line: int | None = None, hint: str = "",
                 end_line: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.end_line = end_line if end_line is not None else line
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message
