"""Go's ``encoding/json`` as moby uses it for the legacy ``docker save`` metadata.

:func:`go_json` marshals like ``json.Marshal``; :func:`go_struct` decodes a JSON object into a Go
struct described by a field table and marshals it again (case-insensitive keys, invalid values
zeroed, ``omitempty``), with the tables of Docker 20.10's ``container.Config`` and ``HealthConfig``.
"""
from __future__ import annotations

import re
from typing import Any

_GO_ESCAPE_RE = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029\ud800-\udfff]')
_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _go_escape(m: re.Match[str]) -> str:
    ch = m.group()
    if ch in _GO_ESCAPES:
        return _GO_ESCAPES[ch]
    if "\ud800" <= ch <= "\udfff":
        return "\ufffd"
    return f"\\u{ord(ch):04x}"


def go_json(value: Any) -> str:
    """``json.Marshal`` of Go: compact, HTML-safe escapes, objects in the order given."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return '"' + _GO_ESCAPE_RE.sub(_go_escape, value) + '"'
    if isinstance(value, dict):
        return "{" + ",".join(f"{go_json(str(k))}:{go_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__}")


def go_json_file(value: Any) -> bytes:
    """A JSON file as moby writes it with ``json.NewEncoder``: :func:`go_json` and a newline."""
    return (go_json(value) + "\n").encode()


MISSING = object()


def go_get(obj: Any, name: str) -> Any:
    """A field as Go's decoder finds it: keys match case-insensitively, the last one wins."""
    if not isinstance(obj, dict):
        return MISSING
    found: Any = MISSING
    folded = name.casefold()
    for key, value in obj.items():
        if key.casefold() == folded:
            found = value
    return found


def go_value(kind: str, v: Any) -> Any:
    """A JSON value decoded into a Go field of ``kind`` and marshalled again (invalid → zero)."""
    if kind == "str":
        return v if isinstance(v, str) else ""
    if kind == "bool":
        return v if isinstance(v, bool) else False
    if kind == "int":
        return v if isinstance(v, int) and not isinstance(v, bool) else 0
    if kind == "intptr":
        return v if isinstance(v, int) and not isinstance(v, bool) else None
    if kind == "strs":
        return [x for x in v if isinstance(x, str)] if isinstance(v, list) else None
    if kind == "strslice":
        if isinstance(v, str):
            return [v]
        return [x for x in v if isinstance(x, str)] if isinstance(v, list) else None
    if kind == "set":
        return {k: {} for k in sorted(v)} if isinstance(v, dict) else None
    if kind == "labels":
        return {k: v[k] if isinstance(v[k], str) else "" for k in sorted(v)} if isinstance(v, dict) else None
    if kind == "health":
        return go_struct(_HEALTH_FIELDS, v) if isinstance(v, dict) else None
    if kind == "config":
        return go_struct(_CONFIG_FIELDS, v if isinstance(v, dict) else {})
    if kind == "configptr":
        return go_struct(_CONFIG_FIELDS, v) if isinstance(v, dict) else None
    if kind == "time":
        return _go_time(v)
    raise ValueError(kind)


_POINTER_KINDS = ("health", "configptr", "intptr")


def _omitted(kind: str, value: Any) -> bool:
    """Go's ``omitempty``: nil pointers; false, 0, "" and empty slices/maps."""
    if kind in _POINTER_KINDS:
        return value is None
    return value is None or value is False or value == 0 or value in ("", [], {})


def go_struct(fields: tuple[tuple[str, str, bool], ...], obj: Any) -> dict[str, Any]:
    """A Go struct decoded from ``obj`` and marshalled again, fields in struct order."""
    out: dict[str, Any] = {}
    for name, kind, omitempty in fields:
        raw = go_get(obj, name)
        value = go_value(kind, None if raw is MISSING else raw)
        if not (omitempty and _omitted(kind, value)):
            out[name] = value
    return out


# api/types/container.HealthConfig and container.Config of Docker 20.10, in struct order
_HEALTH_FIELDS = (("Test", "strs", True), ("Interval", "int", True), ("Timeout", "int", True),
                  ("StartPeriod", "int", True), ("Retries", "int", True))
_CONFIG_FIELDS = (
    ("Hostname", "str", False), ("Domainname", "str", False), ("User", "str", False),
    ("AttachStdin", "bool", False), ("AttachStdout", "bool", False), ("AttachStderr", "bool", False),
    ("ExposedPorts", "set", True), ("Tty", "bool", False), ("OpenStdin", "bool", False),
    ("StdinOnce", "bool", False), ("Env", "strs", False), ("Cmd", "strslice", False),
    ("Healthcheck", "health", True), ("ArgsEscaped", "bool", True), ("Image", "str", False),
    ("Volumes", "set", False), ("WorkingDir", "str", False), ("Entrypoint", "strslice", False),
    ("NetworkDisabled", "bool", True), ("MacAddress", "str", True), ("OnBuild", "strs", False),
    ("Labels", "labels", False), ("StopSignal", "str", True), ("StopTimeout", "intptr", True),
    ("Shell", "strslice", True),
)
_TIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$")
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def _go_time(value: Any) -> str:
    """An RFC 3339 time re-marshalled by Go (RFC3339Nano: no trailing zeros, ``Z`` for UTC)."""
    if not isinstance(value, str):
        return GO_ZERO_TIME
    m = _TIME_RE.match(value)
    if not m:
        return value
    date, clock, frac, zone = m.groups()
    frac = (frac or "")[:9].rstrip("0")
    zone = "Z" if zone in ("Z", "z", "+00:00", "-00:00") else zone
    return f"{date}T{clock}{'.' + frac if frac else ''}{zone}"
