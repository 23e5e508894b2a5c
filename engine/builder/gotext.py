"""Go's ways of printing values that the classic builder's history texts and messages use."""
from __future__ import annotations

from ..format import go_quote


def go_list(words) -> str:
    """Go's ``%v`` of a string slice: ``[a b c]``."""
    return "[" + " ".join(words) + "]"


def go_quote_list(words) -> str:
    """Go's ``%q`` of a string slice: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(w) for w in words) + "]"


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String`` (``1m30s``, ``500ms``, ``0s``)."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                text = f"{ns / size:.9f}".rstrip("0").rstrip(".")
                return f"{sign}{text}{unit}"
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    seconds = f"{rest / 10**9:.9f}".rstrip("0").rstrip(".")
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + f"{seconds}s"
    return sign + out


def go_quote_rune(n: int) -> str:
    """Go's ``%q`` of an integer: a quoted character literal (``'\\x03'``)."""
    specials = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v", 39: "\\'", 92: "\\\\"}
    if n in specials:
        return f"'{specials[n]}'"
    ch = chr(n) if 0 <= n <= 0x10FFFF else "\ufffd"
    if ch.isprintable():
        return f"'{ch}'"
    if n < 0x80:
        return f"'\\x{n:02x}'"
    return f"'\\u{n:04x}'" if n < 0x10000 else f"'\\U{n:08x}'"
