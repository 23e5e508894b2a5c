"""How Docker's parser cuts each instruction's arguments (``line_parsers.go``, ``split_command.go``).

Every function here is a faithful re-creation of its Go namesake; the quirks (quotes kept by
``parse_words``, ``ENV a b c`` meaning ``a="b c"``, JSON that silently falls back to shell form) are
Docker's.
"""
from __future__ import annotations

from collections.abc import Callable

from . import _go


class SyntaxProblem(Exception):
    """An error of the Go parser; ``hint`` explains it to a student."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def parse_words(rest: str, escape: str) -> list[str]:
    """Split at whitespace outside quotes, keeping quotes and escapes (``parseWords``)."""
    words: list[str] = []
    word = ""
    phase = "spaces"
    quote = ""
    blank_ok = False
    pos = 0
    n = len(rest)
    while pos <= n:
        ch = rest[pos] if pos < n else ""
        if phase == "spaces":
            if pos == n:
                break
            if _go.is_space(ch):
                pos += 1
                continue
            phase = "word"
        if pos == n:
            if blank_ok or word:
                words.append(word)
            break
        if phase == "word":
            if _go.is_space(ch):
                phase = "spaces"
                if blank_ok or word:
                    words.append(word)
                word = ""
                blank_ok = False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
                phase = "quote"
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue  # an escape at the end of the line is dropped
                word += ch
                pos += 1
                ch = rest[pos]
            word += ch
            pos += 1
            continue
        # phase == "quote"
        if ch == quote:
            phase = "word"
        if ch == escape and quote != "'":
            if pos + 1 == n:
                phase = "word"
                pos += 1
                continue
            pos += 1
            word += ch
            ch = rest[pos]
        word += ch
        pos += 1
    return words


def _parse_name_val(rest: str, key: str, escape: str) -> list[str]:
    words = parse_words(rest, escape)
    if not words:
        return []
    if "=" not in words[0]:
        parts = _go.split_whitespace(rest, 2)
        if len(parts) < 2:
            raise SyntaxProblem(f"{key} must have two arguments",
                               f"write {key} NAME=value (or the old form {key} NAME value)")
        return [parts[0], parts[1]]
    values: list[str] = []
    for word in words:
        if "=" not in word:
            raise SyntaxProblem(f"Syntax error - can't find = in {_go.quote(word)}. Must be of the form: name=value",
                               f"in '{key} a=b c=d' every word needs '='; quote values with spaces: NAME=\"a b\"")
        name, value = word.split("=", 1)
        values += [name, value]
    return values


def _parse_env(rest: str, escape: str) -> tuple[list[str], bool]:
    return _parse_name_val(rest, "ENV", escape), False


def _parse_label(rest: str, escape: str) -> tuple[list[str], bool]:
    return _parse_name_val(rest, "LABEL", escape), False


def _parse_name_or_name_val(rest: str, escape: str) -> tuple[list[str], bool]:
    return parse_words(rest, escape), False


def _parse_whitespace_delimited(rest: str, escape: str) -> tuple[list[str], bool]:
    return (_go.split_whitespace(rest) if rest else []), False


def _parse_string(rest: str, escape: str) -> tuple[list[str], bool]:
    return ([rest] if rest else []), False


def _parse_json(rest: str) -> list[str] | None:
    try:
        return _go.decode_string_array(rest)
    except _go.NotStringArray as err:
        raise SyntaxProblem(str(err), 'an exec form must be a JSON array of strings, e.g. ["cat", "/etc/hosts"]') from None


def _parse_maybe_json(rest: str, escape: str) -> tuple[list[str], bool]:
    if rest == "":
        return [], False
    values = _parse_json(rest)
    if values is not None:
        return values, True
    return [rest], False


def _parse_maybe_json_to_list(rest: str, escape: str) -> tuple[list[str], bool]:
    values = _parse_json(rest)
    if values is not None:
        return values, True
    return _parse_whitespace_delimited(rest, escape)


def _parse_health_config(rest: str, escape: str) -> tuple[list[str], bool]:
    sep = 0
    while sep < len(rest) and not _go.is_space(rest[sep]):
        sep += 1
    following = sep
    while following < len(rest) and _go.is_space(rest[following]):
        following += 1
    if sep == 0:
        return [], False
    values, is_json = _parse_maybe_json(rest[following:], escape)
    return [rest[:sep], *values], is_json


_LineParser = Callable[[str, str], tuple[list[str], bool]]
DISPATCH: dict[str, _LineParser] = {
    "add": _parse_maybe_json_to_list,
    "arg": _parse_name_or_name_val,
    "cmd": _parse_maybe_json,
    "copy": _parse_maybe_json_to_list,
    "entrypoint": _parse_maybe_json,
    "env": _parse_env,
    "expose": _parse_whitespace_delimited,
    "from": _parse_whitespace_delimited,
    "healthcheck": _parse_health_config,
    "label": _parse_label,
    "maintainer": _parse_string,
    "run": _parse_maybe_json,
    "shell": _parse_maybe_json,
    "stopsignal": _parse_string,
    "user": _parse_string,
    "volume": _parse_maybe_json_to_list,
    "workdir": _parse_string,
}

#: the instructions Docker knows, upper case
KNOWN_INSTRUCTIONS: tuple[str, ...] = tuple(sorted([*(k.upper() for k in DISPATCH), "ONBUILD"]))


def _extract_builder_flags(line: str) -> tuple[str, list[str]]:
    """Leading ``--flag`` words and the rest of the line (``extractBuilderFlags``).

    Go walks bytes here; this walks characters (see the module notes on UTF-8).
    """
    words: list[str] = []
    word = ""
    phase = "spaces"
    quote = ""
    blank_ok = False
    pos = 0
    n = len(line)
    while pos <= n:
        ch = line[pos] if pos < n else ""
        if phase == "spaces":
            if pos == n:
                break
            if _go.is_space(ch):
                pos += 1
                continue
            if ch != "-" or pos + 1 == n or line[pos + 1] != "-":
                return line[pos:], words
            phase = "word"
        if pos == n:
            if word != "--" and (blank_ok or word):
                words.append(word)
            break
        if phase == "word":
            if _go.is_space(ch):
                phase = "spaces"
                if word == "--":
                    return line[pos:], words
                if blank_ok or word:
                    words.append(word)
                word = ""
                blank_ok = False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
                phase = "quote"
                pos += 1
                continue
            if ch == "\\":
                if pos + 1 == n:
                    pos += 1
                    continue
                pos += 1
                ch = line[pos]
            word += ch
            pos += 1
            continue
        # phase == "quote"
        if ch == quote:
            phase = "word"
            pos += 1
            continue
        if ch == "\\":
            if pos + 1 == n:
                phase = "word"
                pos += 1
                continue
            pos += 1
            ch = line[pos]
        word += ch
        pos += 1
    return "", words


def split_command(line: str) -> tuple[str, list[str], str]:
    parts = _go.split_whitespace(_go.trim_space(line), 2)
    args, flags = "", []
    if len(parts) == 2:
        args, flags = _extract_builder_flags(parts[1])
    return parts[0], flags, _go.trim_space(args)
