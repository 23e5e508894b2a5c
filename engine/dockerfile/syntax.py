"""The low-level Dockerfile parser: text to raw commands, exactly as Docker's Go parser sees them.

This mirrors moby/buildkit ``frontend/dockerfile/parser`` (directives, line continuations with the
escape character, comment and empty lines inside continuations, per-instruction argument splitting,
JSON exec form, heredocs).  No variable is substituted here and no instruction is validated beyond
what the Go parser itself checks; :mod:`engine.dockerfile.instructions` builds typed instructions.

>>> [(c.cmd, c.value, c.start_line, c.end_line) for c in raw_commands("FROM a\\nRUN echo \\\\\\n  hi\\n")]
[('FROM', ('a',), 1, 1), ('RUN', ('echo   hi',), 2, 3)]
"""
from __future__ import annotations

import re

from . import _go
from .arguments import DISPATCH, SyntaxProblem, split_command
from .errors import DockerfileError
from .lexer import LexError, lex_words
from ..values import field, value


@value
class Heredoc:
    """A here-document attached to RUN, COPY or ADD (``<<EOF`` … ``EOF``).

    ``content`` is the body exactly as written (line endings kept, leading tabs kept even for
    ``<<-``; :func:`chomp` removes them).  ``expand`` is False when the name was quoted.
    """

    name: str
    content: str
    file_descriptor: int = 0
    expand: bool = True
    chomp: bool = False


@value
class Directive:
    """A parser directive from the top of the file (``# escape=``` or ``# syntax=...``)."""

    name: str
    value: str
    line: int


@value
class RawCommand:
    """One instruction as Docker's parser produces it, before typing and substitution.

    The fields follow the Go parser's ``Node`` (and the ``dockerfile`` package's ``Command``):
    ``cmd`` as written, ``original`` the instruction with continuations joined (``Node.Original``),
    ``flags`` the leading ``--flag`` words, ``value`` the arguments as the per-instruction parser
    split them, ``json`` whether the exec (JSON) form was used.  For ONBUILD, ``sub_cmd``,
    ``sub_flags``, ``value`` and ``json`` describe the trigger instruction.
    """

    cmd: str
    original: str
    start_line: int
    end_line: int
    flags: tuple[str, ...] = ()
    value: tuple[str, ...] = ()
    json: bool = False
    heredocs: tuple[Heredoc, ...] = ()
    sub_cmd: str | None = None
    sub_flags: tuple[str, ...] = ()
    args: tuple[str, ...] = field(default=(), repr=False)  #: Go's ``nodeArgs`` (ONBUILD: trigger + its args)


@value
class RawDockerfile:
    """The result of :func:`parse_raw`."""

    commands: tuple[RawCommand, ...]
    directives: tuple[Directive, ...]
    escape: str
    warnings: tuple[str, ...]


def chomp(content: str) -> str:
    """Remove leading tabs from every line (what ``<<-EOF`` means)."""
    return re.sub(r"(?m)^\t+", "", content)


# ---------------------------------------------------------------------------------------- internals


@value(frozen=False)
class _Node:
    """The parts of Go's ``Node`` the parser fills in."""

    cmd: str
    original: str
    flags: list[str]
    values: list[str] = field(default_factory=list)
    json: bool = False
    sub: _Node | None = None  # ONBUILD's trigger (Go: Next = Node{Children: [sub]})

    def node_args(self) -> list[str]:
        """Go's ``nodeArgs``: the values, a trigger contributing its name then its own args."""
        if self.sub is not None:
            return [self.sub.cmd, *self.sub.node_args()]
        return list(self.values)

    def go_values(self) -> tuple[str, ...]:
        """The values of the ``Next`` chain (a sub-command holder contributes one empty value)."""
        return ("",) if self.sub is not None else tuple(self.values)


_DIRECTIVE_RE = re.compile(r"#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*")
_HEREDOC_RE = re.compile(r"([0-9]*)<<(-?)([^<]*)", re.DOTALL)
_KNOWN_DIRECTIVES = ("syntax", "escape")
_HEREDOC_COMMANDS = ("add", "copy", "run")


class _Directives:
    """Directive state: the escape token and the directive parser's ``done``/``seen``."""

    def __init__(self) -> None:
        self.escape = "\\"
        self.done = False
        self.seen: list[Directive] = []
        self._continuation = _continuation_regex("\\")

    def possible_directive(self, token: str, line: int) -> None:
        if self.done:
            return
        match = _DIRECTIVE_RE.fullmatch(token)
        if not match:
            self.done = True
            return
        name = match.group(1).lower()
        if name not in _KNOWN_DIRECTIVES:
            self.done = True
            return
        if any(d.name == name for d in self.seen):
            raise SyntaxProblem(f"only one {name} parser directive can be used",
                               f"remove the repeated '# {name}=' line")
        value = match.group(2)
        self.seen.append(Directive(name, value, line))
        if name == "escape":
            if value not in ("`", "\\"):
                raise SyntaxProblem(f"invalid escape token '{value}' does not match ` or \\",
                                   "the escape directive accepts only a backslash or a backtick")
            self.escape = value
            self._continuation = _continuation_regex(value)

    def trim_continuation(self, line: str) -> tuple[str, bool]:
        """Remove a trailing escape; the flag is True when the instruction ends on this line."""
        new, count = self._continuation.subn(r"\1", line)
        return (new, False) if count else (line, True)


def _continuation_regex(escape: str) -> re.Pattern[str]:
    e = re.escape(escape)
    return re.compile(rf"([^{e}]){e}[ \t]*\Z|^{e}[ \t]*\Z")


def _trim_newline(text: str) -> str:
    return text.rstrip("\r\n")


def _is_comment(raw: str) -> bool:
    return _go.trim_left_space(_trim_newline(raw)).startswith("#")


def _process_line(d: _Directives, raw: str, strip_left: bool, line: int) -> str:
    token = _trim_newline(raw)
    if strip_left:
        token = _go.trim_left_space(token)
    d.possible_directive(token, line)
    return "" if token.startswith("#") else token


def _scan_lines(text: str) -> list[str]:
    """``bufio.Scanner`` with the parser's line splitter: split at ``\\n`` only, keep it."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _node_from_line(line: str, d: _Directives) -> _Node:
    cmd, flags, args = split_command(line)
    node = _Node(cmd=cmd, original=line, flags=flags)
    key = _go.lower(cmd)
    if key == "onbuild":
        if args:
            node.sub = _node_from_line(args, d)
    elif key in DISPATCH:
        node.values, node.json = DISPATCH[key](args, d.escape)
    else:
        node.values = [""]  # parseIgnore: unknown instructions are rejected later, with a line number
    return node


def _can_contain_heredoc(node: _Node) -> bool:
    if _go.lower(node.cmd) == "onbuild" and node.sub is not None:
        node = node.sub
    return _go.lower(node.cmd) in _HEREDOC_COMMANDS and not node.json


def parse_heredoc(word: str) -> Heredoc | None:
    """The heredoc that ``word`` (e.g. ``<<EOF``, ``<<-"END"``, ``3<<X``) opens, or None.

    The returned heredoc has no content yet.
    """
    match = _HEREDOC_RE.fullmatch(word)
    if not match:
        return None
    fd = min(int(match.group(1)), 2**64 - 1) if match.group(1) else 0
    rest = match.group(3)
    if not rest:
        return None
    try:
        words = lex_words(rest)
        if len(words) != 1:
            return None
        raw = lex_words(rest, raw_quotes=True)
    except LexError as err:
        raise SyntaxProblem(str(err), "a heredoc name must be a single word") from None
    if len(raw) != len(words):
        raise SyntaxProblem(f"internal lexing of heredoc produced inconsistent results: {rest}")
    quotes = words[0].count("'") + words[0].count('"')
    raw_quotes = raw[0].count("'") + raw[0].count('"')
    return Heredoc(name=words[0], content="", file_descriptor=fd, expand=quotes == raw_quotes,
                   chomp=match.group(2) == "-")


def _heredocs_from_line(line: str) -> list[Heredoc]:
    try:
        words = lex_words(line, raw_quotes=True, raw_escapes=True)
    except LexError:
        words = []  # Go ignores the lexer's error here: such a line opens no heredoc
    found = []
    for word in words:
        heredoc = parse_heredoc(word)
        if heredoc is not None:
            found.append(heredoc)
    return found


# ---------------------------------------------------------------------------------------- public API


def parse_raw(text: str) -> RawDockerfile:
    """Parse Dockerfile text into raw commands (the Go parser's ``parser.Parse``).

    Raises :class:`DockerfileError` for what the Go parser rejects: a bad or repeated directive,
    ``ENV``/``LABEL`` without a value, a JSON array with non-strings, an unterminated heredoc, a file
    with no instructions.
    """
    d = _Directives()
    lines = _scan_lines(text)
    commands: list[RawCommand] = []
    warnings: list[str] = []
    i = 0
    current = 0
    while i < len(lines):
        raw = lines[i]
        i += 1
        if current == 0:
            raw = raw.removeprefix("\ufeff")
        try:
            token = _process_line(d, raw, True, current + 1)
        except SyntaxProblem as err:
            raise _error(err, current + 1) from None
        current += 1
        start = current
        line, end_of_line = d.trim_continuation(token)
        if end_of_line and line == "":
            continue
        has_empty_continuation = False
        while not end_of_line and i < len(lines):
            raw = lines[i]
            i += 1
            try:
                token = _process_line(d, raw, False, current + 1)
            except SyntaxProblem as err:
                raise _error(err, current + 1) from None
            current += 1
            if _is_comment(raw):
                continue
            if _go.trim_left_space(token) == "":
                has_empty_continuation = True
                continue
            continuation, end_of_line = d.trim_continuation(token)
            line += continuation
        if has_empty_continuation:
            warnings.append(f"Empty continuation line found in: {line}")
        try:
            node = _node_from_line(line, d)
            heredocs = _heredocs_from_line(line) if _can_contain_heredoc(node) else []
        except SyntaxProblem as err:
            raise _error(err, start, current) from None
        bodies: list[Heredoc] = []
        for heredoc in heredocs:
            content: list[str] = []
            terminated = False
            while i < len(lines):
                raw = lines[i]
                i += 1
                current += 1
                candidate = _trim_newline(raw)
                if heredoc.chomp:
                    candidate = candidate.lstrip("\t")
                if candidate == heredoc.name:
                    terminated = True
                    break
                content.append(raw)
            if not terminated:
                raise _error(SyntaxProblem("unterminated heredoc", f"end the heredoc with a line holding only {heredoc.name}"),
                             start, current)
            bodies.append(Heredoc(heredoc.name, "".join(content), heredoc.file_descriptor, heredoc.expand, heredoc.chomp))
        commands.append(_raw_command(node, start, current, tuple(bodies)))
    if not commands:
        raise DockerfileError("file with no instructions", line=max(current, 1),
                              hint="the Dockerfile holds only comments or blank lines; start it with FROM")
    return RawDockerfile(tuple(commands), tuple(d.seen), d.escape, tuple(warnings))


def raw_commands(text: str) -> tuple[RawCommand, ...]:
    """The commands of :func:`parse_raw`; comparable with the Go parser's output."""
    return parse_raw(text).commands


def parse_raw_line(text: str, *, escape: str = "\\") -> RawCommand:
    """Parse one instruction (no directives, no continuations), e.g. an ONBUILD trigger."""
    d = _Directives()
    d.done = True
    if escape != "\\":
        d.escape = escape
        d._continuation = _continuation_regex(escape)
    try:
        node = _node_from_line(text, d)
    except SyntaxProblem as err:
        raise _error(err, 1) from None
    return _raw_command(node, 1, 1, ())


def _raw_command(node: _Node, start: int, end: int, heredocs: tuple[Heredoc, ...]) -> RawCommand:
    sub = node.sub
    shown = sub if sub is not None else node
    return RawCommand(
        cmd=node.cmd, original=node.original, start_line=start, end_line=end, flags=tuple(node.flags),
        value=shown.go_values(), json=shown.json, heredocs=heredocs,
        sub_cmd=sub.cmd if sub is not None else None, sub_flags=tuple(sub.flags) if sub is not None else (),
        args=tuple(node.node_args()),
    )


def _error(err: SyntaxProblem, line: int, end_line: int | None = None) -> DockerfileError:
    hint = f"line {line}: {err.hint}" if err.hint else f"line {line}"
    return DockerfileError(err.message, line=line, end_line=end_line or line, hint=hint)
