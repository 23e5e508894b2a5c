"""A small subset of Go templates for ``--format``: ``{{.A.B}}``, ``{{json .A}}``, ``{{index .A "k"}}``.

Values print as Go's ``fmt`` prints them: lists ``[a b]``, maps ``map[k:v]`` (sorted keys),
null ``<nil>``; ``json`` prints compact JSON like Go's encoder (``<``, ``>``, ``&`` escaped).
"""
from __future__ import annotations

import json
import re
from typing import Any

from .errors import EngineError

_ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}", re.S)


class TemplateError(EngineError):
    """The template cannot be parsed or evaluated."""


def go_json(value: Any, indent: int | None = None) -> str:
    """JSON as Go's encoding/json writes it (HTML-safe escapes)."""
    text = json.dumps(value, indent=indent, ensure_ascii=False, separators=(",", ":") if indent is None else (",", ": "))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def go_print(value: Any) -> str:
    """A value as Go's ``fmt.Sprint`` prints it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_print(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _lookup(data: Any, path: str) -> Any:
    if path == ".":
        return data
    value = data
    for part in path.lstrip(".").split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, dict):
            raise TemplateError(f'template: :1: executing "" at <{path}>: map has no entry for key "{part}"')
        else:
            raise TemplateError(f'template: :1: executing "" at <{path}>: can\'t evaluate field {part}')
    return value


def _eval(expr: str, data: Any) -> str:
    words = re.findall(r'"[^"]*"|\S+', expr)
    if not words:
        raise TemplateError("template: :1: missing value for command")
    if words[0] == "json" and len(words) == 2:
        return go_json(_lookup(data, words[1]))
    if words[0] == "index" and len(words) == 3:
        container = _lookup(data, words[1])
        key = words[2].strip('"')
        if isinstance(container, list):
            return go_print(container[int(key)])
        return go_print((container or {}).get(key))
    if words[0] in ("upper", "lower") and len(words) == 2:
        v = go_print(_lookup(data, words[1]))
        return v.upper() if words[0] == "upper" else v.lower()
    if len(words) == 1 and words[0].startswith("."):
        return go_print(_lookup(data, words[0]))
    raise TemplateError(f'template: :1: function "{words[0]}" not defined')


def render(template: str, data: Any) -> str:
    """Render ``template`` against ``data`` (a JSON-like dict)."""
    return _ACTION.sub(lambda m: _eval(m.group(1), data), template)
