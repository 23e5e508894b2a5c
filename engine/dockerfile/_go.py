"""Small re-creations of Go standard-library behaviour the Dockerfile parser depends on.

Docker's parser is Go; where Go and Python disagree on a primitive (what is a space, how a string is
quoted in an error, how ``encoding/json`` decodes, how ``regexp.Split`` cuts) the parser uses these.
"""
from __future__ import annotations

import json
import math
import re

#: ``unicode.IsSpace``: Python's ``str.isspace`` also counts U+001C..U+001F, Go does not.
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_GO_SPACE_SET = frozenset(GO_SPACE)

#: the parser's ``reWhitespace`` (ASCII only, no newline)
_RE_WHITESPACE = re.compile(r"[\t\v\f\r ]+")

_SURROGATE = re.compile("[\ud800-\udfff]")


def is_space(ch: str) -> bool:
    """``unicode.IsSpace`` for one character."""
    return ch in _GO_SPACE_SET


def trim_space(text: str) -> str:
    """``strings.TrimSpace``."""
    return text.strip(GO_SPACE)


def trim_left_space(text: str) -> str:
    """``strings.TrimLeftFunc(s, unicode.IsSpace)``."""
    return text.lstrip(GO_SPACE)


def lower(text: str) -> str:
    """``strings.ToLower`` (simple case mapping: U+0130 lowers to a plain ``i``)."""
    return text.replace("\u0130", "i").lower()


def split_whitespace(text: str, limit: int = -1) -> list[str]:
    """``reWhitespace.Split(text, limit)`` with Go's ``regexp.Split`` edge cases."""
    if limit == 0:
        return []
    if text == "":
        return [""]
    pieces: list[str] = []
    begin = end = 0
    for match in _RE_WHITESPACE.finditer(text):
        if limit > 0 and len(pieces) == limit - 1:
            break
        end = match.start()
        if match.end() != 0:
            pieces.append(text[begin:end])
        begin = match.end()
    if end != len(text):
        pieces.append(text[begin:])
    return pieces


def quote(text: str) -> str:
    """``strconv.Quote``: a double-quoted Go string literal."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch == " " or (ch.isprintable() and code != 0x7F):
            out.append(ch)
        elif ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_SIMPLE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


class NotStringArray(ValueError):
    """A JSON array holds something other than strings."""


def _number(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # Go: "cannot unmarshal number ... into float64"
        raise ValueError(f"number {text} out of range")
    return value


def _constant(text: str) -> float:
    raise ValueError(f"invalid character {text[0]!r}")  # NaN, Infinity are not JSON for Go


_DECODER = json.JSONDecoder(parse_float=_number, parse_int=_number, parse_constant=_constant, strict=True)


def decode_string_array(text: str) -> list[str] | None:
    """The parser's ``parseJSON``: the strings of a JSON array at the start of ``text``.

    Like ``json.NewDecoder(...).Decode``, only the first JSON value is read and anything after it
    is ignored.  Returns ``None`` when ``text`` is not a JSON array; raises :class:`NotStringArray`
    when it is an array with a non-string element.
    """
    text = trim_left_space(text)
    if not text.startswith("["):
        return None
    try:
        value, _ = _DECODER.raw_decode(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, list):  # cannot happen after "[", kept for clarity
        return None
    if not all(isinstance(item, str) for item in value):
        raise NotStringArray("when using JSON array syntax, arrays must be comprised of strings only")
    return [_SURROGATE.sub("\ufffd", item) for item in value]
