"""Raw commands to typed instructions and stages, with Docker 20.10's classic-builder messages.

This mirrors moby/buildkit ``frontend/dockerfile/instructions/parse.go`` as vendored by Docker
20.10 (argument counts, flags, stage names, HEALTHCHECK options) plus heredoc sources.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from . import _go
from .errors import DockerfileError
from .instructions import (
    Add, Arg, Cmd, CommandLine, Copy, Dockerfile, Entrypoint, Env, Expose, From, Healthcheck,
    Instruction, Label, Maintainer, Onbuild, Run, Shell, Stage, StopSignal, User, Volume, Workdir,
)
from .options import FLAGS, Flags, InstructionError, go_upper, parse_duration
from .arguments import KNOWN_INSTRUCTIONS
from .syntax import Heredoc, RawCommand, chomp, parse_heredoc, parse_raw, parse_raw_line
from ..values import replace

_STAGE_NAME_RE = re.compile(r"[a-z][a-z0-9._-]*")
_ONBUILD_PREFIX_RE = re.compile(r"^[\t\n\f\r ]*ONBUILD[\t\n\f\r ]*", re.IGNORECASE)
_MIN_DURATION_NS = 1_000_000  # container.MinimumDuration (1ms)


# ------------------------------------------------------------------------------------------- helpers


def _at_least_one(keyword: str) -> InstructionError:
    return InstructionError(f"{keyword} requires at least one argument", _USAGE.get(keyword, ""))


def _exactly_one(keyword: str) -> InstructionError:
    return InstructionError(f"{keyword} requires exactly one argument", _USAGE.get(keyword, ""))


def _no_destination(keyword: str) -> InstructionError:
    return InstructionError(
        f"{keyword} requires at least two arguments, but only one was provided. Destination could not be determined.",
        _USAGE[keyword])


_USAGE = {
    "ADD": "use ADD <src>... <dest>",
    "ARG": "use ARG NAME or ARG NAME=default",
    "COPY": "use COPY <src>... <dest>",
    "ENV": "use ENV NAME=value",
    "EXPOSE": "use EXPOSE <port>[/<protocol>]...",
    "FROM": "use FROM <image>[:<tag>] [AS <name>]",
    "HEALTHCHECK": "use HEALTHCHECK NONE or HEALTHCHECK [--interval=30s] CMD <command>",
    "LABEL": 'use LABEL key="value"',
    "MAINTAINER": "use MAINTAINER <name>",
    "ONBUILD": "use ONBUILD <instruction>",
    "SHELL": 'use SHELL ["executable", "parameters"]',
    "STOPSIGNAL": "use STOPSIGNAL <signal>, e.g. STOPSIGNAL SIGTERM",
    "USER": "use USER <user>[:<group>]",
    "VOLUME": "use VOLUME /path or VOLUME [\"/path\"]",
    "WORKDIR": "use WORKDIR /path",
}


def _command_line(raw: RawCommand) -> CommandLine:
    """``handleJSONArgs``: exec form keeps the array, shell form joins the words into one string."""
    if not raw.args:
        return ()
    return tuple(raw.args) if raw.json else " ".join(raw.args)


def _pairs(raw: RawCommand, keyword: str) -> tuple[tuple[str, str], ...]:
    args = raw.args
    if not args:
        raise _at_least_one(keyword)
    if len(args) % 2:
        raise InstructionError(f"Bad input to {keyword}, too many arguments")
    pairs = []
    for key, value in zip(args[::2], args[1::2]):
        if key == "":
            raise InstructionError(f"{keyword} names can not be blank", _USAGE[keyword])
        pairs.append((key, value))
    return tuple(pairs)


def _sources_and_dest(raw: RawCommand, keyword: str) -> tuple[tuple[str, ...], str, tuple[Heredoc, ...]]:
    *sources, dest = raw.args
    if parse_heredoc_quietly(dest) is not None:
        raise InstructionError(f"{keyword} cannot accept a heredoc as a destination",
                                f"the last argument of {keyword} is where the files go, e.g. {keyword} <<EOF /file")
    bodies = {heredoc.name: heredoc for heredoc in raw.heredocs}
    paths: list[str] = []
    inline: list[Heredoc] = []
    for source in sources:
        marker = parse_heredoc_quietly(source)
        if marker is None:
            paths.append(source)
            continue
        body = bodies.get(marker.name)
        content = body.content if body is not None else ""
        if marker.chomp:
            content = chomp(content)
        inline.append(Heredoc(marker.name, content, marker.file_descriptor, marker.expand, marker.chomp))
    return tuple(paths), dest, tuple(inline)


def parse_heredoc_quietly(word: str) -> Heredoc | None:
    """``MustParseHeredoc``: the heredoc ``word`` opens, None also when it cannot be lexed."""
    try:
        return parse_heredoc(word)
    except Exception:  # noqa: BLE001 - Go discards this error
        return None


def _interval(flags: dict[str, str], name: str) -> int:
    value = flags.get(name, "")
    if value == "":
        return 0
    try:
        duration = parse_duration(value)
    except ValueError as err:
        raise InstructionError(str(err), f"--{name} takes a duration such as 30s, 1m30s or 500ms") from None
    if duration < _MIN_DURATION_NS:
        raise InstructionError(f'Interval "{name}" cannot be less than 1ms', f"--{name} must be at least 1ms")
    return duration


# --------------------------------------------------------------------------- per-instruction parsers


def _parse_env(raw: RawCommand, flags: Flags, base: dict) -> Env:
    flags.parse()
    return Env(pairs=_pairs(raw, "ENV"), **base)


def _parse_label(raw: RawCommand, flags: Flags, base: dict) -> Label:
    flags.parse()
    return Label(pairs=_pairs(raw, "LABEL"), **base)


def _parse_maintainer(raw: RawCommand, flags: Flags, base: dict) -> Maintainer:
    if len(raw.args) != 1:
        raise _exactly_one("MAINTAINER")
    flags.parse()
    return Maintainer(maintainer=raw.args[0], **base)


def _parse_add(raw: RawCommand, flags: Flags, base: dict) -> Add:
    if len(raw.args) < 2:
        raise _no_destination("ADD")
    values = flags.parse(FLAGS["ADD"])
    sources, dest, inline = _sources_and_dest(raw, "ADD")
    return Add(sources=sources, dest=dest, chown=values.get("chown") or None,
               chmod=values.get("chmod") or None, heredocs=inline, **base)


def _parse_copy(raw: RawCommand, flags: Flags, base: dict) -> Copy:
    if len(raw.args) < 2:
        raise _no_destination("COPY")
    values = flags.parse(FLAGS["COPY"])
    sources, dest, inline = _sources_and_dest(raw, "COPY")
    return Copy(sources=sources, dest=dest, from_stage=values.get("from") or None,
                chown=values.get("chown") or None, chmod=values.get("chmod") or None, heredocs=inline, **base)


def _parse_from(raw: RawCommand, flags: Flags, base: dict) -> From:
    args = raw.args
    name = None
    if len(args) == 3 and args[1].casefold() == "as":
        name = _go.lower(args[2])
        if not _STAGE_NAME_RE.fullmatch(name):
            raise InstructionError(
                f"invalid name for build stage: {_go.quote(args[2])}, name can't start with a number or contain symbols",
                "stage names are letters, digits, '.', '_' and '-', starting with a letter")
    elif len(args) != 1:
        hint = _USAGE["FROM"]
        if len(args) == 3:
            hint = f"the second word must be AS, not {args[1]}"
        raise InstructionError("FROM requires either one or three arguments", hint)
    values = flags.parse(FLAGS["FROM"])
    return From(base=args[0], name=name, platform=values.get("platform") or None, **base)


def _parse_onbuild(raw: RawCommand, flags: Flags, base: dict) -> Onbuild:
    if not raw.args:
        raise _at_least_one("ONBUILD")
    flags.parse()
    trigger = go_upper(_go.trim_space(raw.args[0]))
    if trigger == "ONBUILD":
        raise InstructionError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise InstructionError(f"{trigger} isn't allowed as an ONBUILD trigger")
    expression = _ONBUILD_PREFIX_RE.sub("", raw.original, count=1)
    for heredoc in raw.heredocs:
        expression += "\n" + heredoc.content + heredoc.name
    return Onbuild(expression=expression, trigger=trigger, **base)


def _parse_workdir(raw: RawCommand, flags: Flags, base: dict) -> Workdir:
    if len(raw.args) != 1:
        raise _exactly_one("WORKDIR")
    flags.parse()
    return Workdir(path=raw.args[0], **base)


def _parse_run(raw: RawCommand, flags: Flags, base: dict) -> Run:
    flags.parse()
    return Run(cmd=_command_line(raw), exec_form=raw.json, heredocs=raw.heredocs, **base)


def _parse_cmd(raw: RawCommand, flags: Flags, base: dict) -> Cmd:
    flags.parse()
    return Cmd(cmd=_command_line(raw), exec_form=raw.json, **base)


def _parse_entrypoint(raw: RawCommand, flags: Flags, base: dict) -> Entrypoint:
    flags.parse()
    return Entrypoint(cmd=_command_line(raw), exec_form=raw.json, **base)


def _parse_healthcheck(raw: RawCommand, flags: Flags, base: dict) -> Healthcheck:
    if not raw.args:
        raise _at_least_one("HEALTHCHECK")
    kind = go_upper(raw.args[0])
    args = raw.args[1:]
    if kind == "NONE":
        if args:
            raise InstructionError("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(test=("NONE",), **base)
    values = flags.parse(FLAGS["HEALTHCHECK"])
    if kind != "CMD":
        raise InstructionError(f"Unknown type {_go.quote(kind)} in HEALTHCHECK (try CMD)", _USAGE["HEALTHCHECK"])
    if not args:
        raise InstructionError("Missing command after HEALTHCHECK CMD", _USAGE["HEALTHCHECK"])
    test = ("CMD", *args) if raw.json else ("CMD-SHELL", " ".join(args))
    interval = _interval(values, "interval")
    timeout = _interval(values, "timeout")
    start_period = _interval(values, "start-period")
    retries = 0
    if values.get("retries", "") != "":
        text = values["retries"]
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise InstructionError(f'strconv.ParseInt: parsing {_go.quote(text)}: invalid syntax',
                                    "--retries takes a whole number")
        retries = int(text)
        if not -(2**31) <= retries < 2**31:
            raise InstructionError(f'strconv.ParseInt: parsing {_go.quote(text)}: value out of range')
        if retries < 1:
            raise InstructionError(f"--retries must be at least 1 (not {retries})")
    return Healthcheck(test=test, interval=interval, timeout=timeout, start_period=start_period,
                       retries=retries, **base)


def _parse_expose(raw: RawCommand, flags: Flags, base: dict) -> Expose:
    if not raw.args:
        raise _at_least_one("EXPOSE")
    flags.parse()
    return Expose(ports=tuple(sorted(raw.args)), **base)


def _parse_user(raw: RawCommand, flags: Flags, base: dict) -> User:
    if len(raw.args) != 1:
        raise _exactly_one("USER")
    flags.parse()
    return User(user=raw.args[0], **base)


def _parse_volume(raw: RawCommand, flags: Flags, base: dict) -> Volume:
    if not raw.args:
        raise _at_least_one("VOLUME")
    flags.parse()
    paths = []
    for path in raw.args:
        path = _go.trim_space(path)
        if path == "":
            raise InstructionError("VOLUME specified can not be an empty string", _USAGE["VOLUME"])
        paths.append(path)
    return Volume(paths=tuple(paths), **base)


def _parse_stopsignal(raw: RawCommand, flags: Flags, base: dict) -> StopSignal:
    if len(raw.args) != 1:
        raise _exactly_one("STOPSIGNAL")
    return StopSignal(signal=raw.args[0], **base)  # Docker does not check STOPSIGNAL's flags


def _parse_arg(raw: RawCommand, flags: Flags, base: dict) -> Arg:
    if not raw.args:
        raise _at_least_one("ARG")
    pairs: list[tuple[str, str | None]] = []
    for arg in raw.args:
        if "=" in arg:
            key, value = arg.split("=", 1)
            if key == "":
                raise InstructionError("ARG names can not be blank", _USAGE["ARG"])
            pairs.append((key, value))
        else:
            pairs.append((arg, None))
    return Arg(pairs=tuple(pairs), **base)  # Docker does not check ARG's flags


def _parse_shell(raw: RawCommand, flags: Flags, base: dict) -> Shell:
    flags.parse()
    if not raw.args:
        raise _at_least_one("SHELL")
    if not raw.json:
        raise InstructionError("SHELL requires the arguments to be in JSON form", _USAGE["SHELL"])
    return Shell(shell=tuple(raw.args), **base)


_PARSERS: dict[str, Callable[[RawCommand, Flags, dict], Instruction]] = {
    "ADD": _parse_add, "ARG": _parse_arg, "CMD": _parse_cmd, "COPY": _parse_copy,
    "ENTRYPOINT": _parse_entrypoint, "ENV": _parse_env, "EXPOSE": _parse_expose, "FROM": _parse_from,
    "HEALTHCHECK": _parse_healthcheck, "LABEL": _parse_label, "MAINTAINER": _parse_maintainer,
    "ONBUILD": _parse_onbuild, "RUN": _parse_run, "SHELL": _parse_shell, "STOPSIGNAL": _parse_stopsignal,
    "USER": _parse_user, "VOLUME": _parse_volume, "WORKDIR": _parse_workdir,
}
assert tuple(sorted(_PARSERS)) == KNOWN_INSTRUCTIONS


def _unknown_instruction(raw: RawCommand, previous: RawCommand | None, escape: str) -> InstructionError:
    word = go_upper(raw.cmd)
    adjacent = previous is not None and previous.end_line == raw.start_line - 1
    looks_like_shell = raw.cmd != word and adjacent and _go.lower(previous.cmd) in ("run", "cmd", "entrypoint")
    import difflib  # only for the hint of an error

    close = difflib.get_close_matches(word, KNOWN_INSTRUCTIONS, n=1, cutoff=0.5)
    if looks_like_shell or (adjacent and not close):
        hint = f"if this continues line {previous.end_line}, end that line with {escape}"
    elif close:
        hint = f"did you mean {close[0]}?"
    else:
        hint = "instructions are " + " ".join(KNOWN_INSTRUCTIONS)
    return InstructionError(f"unknown instruction: {word}", hint)


def instruction_from_raw(raw: RawCommand, previous: RawCommand | None = None, escape: str = "\\") -> Instruction:
    """Type one raw command (``ParseInstruction``); raises the bare, unprefixed error."""
    keyword = _go.lower(raw.cmd).upper()
    if keyword not in _PARSERS:
        raise _unknown_instruction(raw, previous, escape)
    base = {"line": raw.start_line, "end_line": raw.end_line, "original": _go.trim_space(raw.original)}
    return _PARSERS[keyword](raw, Flags(keyword, raw.flags), base)


def _located(err: InstructionError, raw: RawCommand) -> DockerfileError:
    return DockerfileError(f"dockerfile parse error line {raw.start_line}: {err.message}", line=raw.start_line,
                           end_line=raw.end_line, hint=err.hint)


# ---------------------------------------------------------------------------------------- public API


def parse(text: str, *, filename: str = "Dockerfile") -> Dockerfile:
    """Parse a Dockerfile into stages of typed instructions, as Docker's classic builder does.

    >>> df = parse("FROM busybox AS base\\nENV A=1\\nRUN echo $A\\n")
    >>> df.stages[0].name, [step.original for step in df.steps()], df.instruction_count
    ('base', ['FROM busybox AS base', 'ENV A=1', 'RUN echo $A'], 3)

    Raises :class:`DockerfileError` (with ``line`` and ``hint``) for everything Docker refuses
    before building: an empty file, parser errors, unknown instructions or flags, wrong argument
    counts, instructions before the first FROM, and a file with no FROM at all.
    """
    if text == "":
        raise DockerfileError(f"the Dockerfile ({filename}) cannot be empty",
                              hint="write at least a FROM instruction, e.g. FROM busybox")
    raw = parse_raw(text)
    meta_args: list[Arg] = []
    stages: list[Stage] = []
    current: list[Instruction] = []
    previous: RawCommand | None = None

    def close_stage() -> None:
        if stages:
            stages[-1] = replace(stages[-1], instructions=tuple(current))

    for command in raw.commands:
        try:
            instruction = instruction_from_raw(command, previous, raw.escape)
        except InstructionError as err:
            raise _located(err, command) from None
        previous = command
        if not stages and isinstance(instruction, Arg):
            meta_args.append(instruction)
            continue
        if isinstance(instruction, From):
            close_stage()
            current = []
            stages.append(Stage(name=instruction.name, base=instruction.base, platform=instruction.platform,
                                instructions=(), line=instruction.line, index=len(stages),
                                original=instruction.original, end_line=instruction.end_line))
            continue
        if not stages:
            raise DockerfileError("no build stage in current context", line=command.start_line,
                                  end_line=command.end_line,
                                  hint=f"line {command.start_line}: a Dockerfile must start with FROM "
                                       "(only ARG may come before it)")
        current.append(instruction)
    close_stage()
    if not stages:
        raise DockerfileError("No image was generated. Is your Dockerfile empty?",
                              line=meta_args[-1].line if meta_args else None,
                              hint="the Dockerfile has only ARG instructions; add a FROM")
    return Dockerfile(stages=tuple(stages), meta_args=tuple(meta_args), directives=raw.directives,
                      escape=raw.escape, warnings=_printed_warnings(raw.warnings), filename=filename)


def _printed_warnings(warnings: tuple[str, ...]) -> tuple[str, ...]:
    """The parser's warnings as Docker 20.10 prints them to stderr before the first step."""
    if not warnings:
        return ()
    lines = tuple(w.replace("Empty continuation line found in: ", "[WARNING]: Empty continuation line found in:\n    ", 1)
                  for w in warnings)
    return lines + ("[WARNING]: Empty continuation lines will become errors in a future release.",)


def parse_instruction(text: str, *, escape: str = "\\") -> Instruction:
    """Parse one instruction line: an ONBUILD trigger, or a ``docker commit --change`` value.

    >>> parse_instruction('CMD ["sh"]').cmd
    ('sh',)
    """
    raw = parse_raw_line(text, escape=escape)
    try:
        return instruction_from_raw(raw, escape=escape)
    except InstructionError as err:
        raise _located(err, raw) from None
