"""Instruction options: the ``--flags`` the classic builder accepts and Go's duration syntax."""
from __future__ import annotations

import re

from . import _go

#: flags each instruction accepts in Docker's classic builder
FLAGS: dict[str, tuple[str, ...]] = {
    "ADD": ("chown", "chmod"),
    "COPY": ("chown", "from", "chmod"),
    "FROM": ("platform",),
    "HEALTHCHECK": ("interval", "timeout", "start-period", "retries"),
}
#: flags only BuildKit knows: explained in the hint of the "Unknown flag" error
_BUILDKIT_FLAGS = {
    "ADD": ("link", "keep-git-dir", "checksum", "exclude"),
    "COPY": ("link", "parents", "exclude"),
    "RUN": ("mount", "network", "security"),
    "HEALTHCHECK": ("start-interval",),
}


class InstructionError(Exception):
    """An instruction-level error; Docker prefixes it with ``dockerfile parse error line N:``."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def go_upper(text: str) -> str:
    """``strings.ToUpper`` (simple case mapping)."""
    return "".join(ch.upper() if len(ch.upper()) == 1 else ch for ch in text)


class Flags:
    """The subset of ``BFlags`` the classic builder uses (string flags only)."""

    def __init__(self, keyword: str, raw: tuple[str, ...]) -> None:
        self.keyword = keyword
        self.raw = raw
        self.values: dict[str, str] = {}

    def parse(self, allowed: tuple[str, ...] = ()) -> dict[str, str]:
        for arg in self.raw:
            if not arg.startswith("--"):
                raise InstructionError(f"Arg should start with -- : {arg}")
            if arg == "--":
                break
            name, has_value, value = arg[2:].partition("=")
            if name not in allowed:
                raise InstructionError(f"Unknown flag: {name}", _unknown_flag_hint(self.keyword, name, allowed))
            if name in self.values:
                raise InstructionError(f"Duplicate flag specified: {name}", f"give --{name} only once")
            if not has_value:
                raise InstructionError(f"Missing a value on flag: {name}", f"write --{name}=<value>")
            self.values[name] = value
        return self.values


def _unknown_flag_hint(keyword: str, name: str, allowed: tuple[str, ...]) -> str:
    if name in _BUILDKIT_FLAGS.get(keyword, ()):
        return f"{keyword} --{name} needs BuildKit; LayerLab builds like Docker's classic builder"
    if not allowed:
        return f"{keyword} takes no --flags"
    import difflib  # only for the hint of an error

    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.5)
    known = ", ".join(f"--{flag}" for flag in allowed)
    return f"did you mean --{close[0]}? {keyword} accepts {known}" if close else f"{keyword} accepts {known}"


_DURATION_UNITS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
                   "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` in nanoseconds (``"1m30s"`` → 90_000_000_000)."""
    original = text
    invalid = ValueError(f"time: invalid duration {_go.quote(original)}")
    sign = 1
    if text[:1] in ("-", "+"):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return 0
    if text == "":
        raise invalid
    total = 0
    while text:
        match = _DURATION_PART.match(text)
        whole, frac, unit = match.group(1), match.group(2), match.group(3)
        if whole == "" and not frac:
            raise invalid
        if unit == "":
            raise ValueError(f"time: missing unit in duration {_go.quote(original)}")
        if unit not in _DURATION_UNITS:
            raise ValueError(f"time: unknown unit {_go.quote(unit)} in duration {_go.quote(original)}")
        scale = _DURATION_UNITS[unit]
        total += int(whole or "0") * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        text = text[match.end():]
    if total > 2**63 - 1 + (sign < 0):
        raise invalid
    return sign * total
