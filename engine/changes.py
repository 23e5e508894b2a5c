"""``-c`` changes of ``import`` and ``commit``: Dockerfile instructions applied to a config.

Docker accepts CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR (and
STOPSIGNAL for commit); anything else is refused with Docker's message.
"""
from __future__ import annotations

import json
import shlex

from .errors import EngineError
from .spec import ContainerConfig
from .values import replace

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME", "WORKDIR", "STOPSIGNAL")


class ChangeError(EngineError):
    """A ``-c`` change is not a valid instruction."""


def _json_or_shell(args: str) -> tuple[str, ...]:
    s = args.strip()
    if s.startswith("["):
        try:
            value = json.loads(s)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(x, str) for x in value):
            return tuple(value)
    return ("/bin/sh", "-c", s)


def _key_values(args: str, instr: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(args, posix=True)
    except ValueError as e:
        raise ChangeError(f"dockerfile parse error line 1: {instr}: {e}") from None
    if not words:
        raise ChangeError(f"dockerfile parse error line 1: {instr} requires at least one argument")
    if "=" not in words[0]:
        # legacy form: ENV key value with spaces
        key, _, value = args.strip().partition(" ")
        return [(key, value.strip())]
    out = []
    for w in words:
        k, eq, v = w.partition("=")
        if not eq or not k:
            raise ChangeError(f"dockerfile parse error line 1: {instr} names can not be blank" if not k else
                              f"dockerfile parse error line 1: Syntax error - can't find = in \"{w}\". "
                              "Must be of the form: name=value")
        out.append((k, v))
    return out


def _expand(value: str, env: dict[str, str]) -> str:
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value) and value[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if c == "$":
            if value[i + 1:i + 2] == "{":
                end = value.find("}", i)
                if end != -1:
                    out.append(env.get(value[i + 2:end], ""))
                    i = end + 1
                    continue
            j = i + 1
            while j < len(value) and (value[j].isalnum() or value[j] == "_"):
                j += 1
            if j > i + 1:
                out.append(env.get(value[i + 1:j], ""))
                i = j
                continue
        out.append(c)
        i += 1
    return "".join(out)


def apply_change(config: ContainerConfig, change: str) -> ContainerConfig:
    """Apply one instruction line to ``config``."""
    line = change.strip()
    instr, _, args = line.partition(" ")
    word = instr.upper()
    if word not in ALLOWED:
        raise ChangeError(f"{word} is not a valid change command")
    args = args.strip()
    env = config.env_dict()
    if word == "CMD":
        return replace(config, cmd=_json_or_shell(args))
    if word == "ENTRYPOINT":
        return replace(config, entrypoint=_json_or_shell(args), cmd=None)
    if word == "ENV":
        for k, v in _key_values(args, word):
            config = config.with_env(k, _expand(v, env))
        return config
    if word == "LABEL":
        labels = dict(config.labels)
        for k, v in _key_values(args, word):
            labels[_expand(k, env)] = _expand(v, env)
        return replace(config, labels=tuple(sorted(labels.items())))
    if word == "EXPOSE":
        ports = set(config.exposed_ports)
        for p in args.split():
            p = _expand(p, env)
            ports.add(p if "/" in p else f"{p}/tcp")
        return replace(config, exposed_ports=tuple(sorted(ports)))
    if word == "VOLUME":
        vols = set(config.volumes)
        vols.update(_json_or_shell(args) if args.startswith("[") else args.split())
        return replace(config, volumes=tuple(sorted(vols)))
    if word == "USER":
        return replace(config, user=_expand(args, env))
    if word == "WORKDIR":
        wd = _expand(args, env)
        if not wd.startswith("/"):
            wd = (config.working_dir or "/").rstrip("/") + "/" + wd
        return replace(config, working_dir=wd)
    if word == "ONBUILD":
        return replace(config, on_build=config.on_build + (args,))
    return replace(config, stop_signal=args)


def apply_changes(config: ContainerConfig, changes: list[str] | tuple[str, ...]) -> ContainerConfig:
    """Apply every ``-c`` change in order."""
    for change in changes:
        config = apply_change(config, change)
    return config
