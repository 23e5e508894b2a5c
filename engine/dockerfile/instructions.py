"""Typed Dockerfile instructions: frozen values with their source location.

Every instruction has ``line`` (1-based first line), ``end_line`` and ``original``, the text Docker's
classic builder prints as ``Step N/M : <original>`` (continuations joined, outer whitespace
removed).  Argument fields hold the words as written, before variable substitution and quote
removal; :func:`engine.dockerfile.expand_instruction` applies Docker's substitution rules.
"""
from __future__ import annotations

from collections.abc import Iterator

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms)
if TYPE_CHECKING:
    from typing import ClassVar

from .syntax import Directive, Heredoc
from ..values import value

#: a command in exec form (JSON array) or shell form (one string); an absent command is ``()``
CommandLine = tuple[str, ...] | str


@value(kw_only=True)
class Instruction:
    """Base of all instructions."""

    keyword: ClassVar[str] = ""
    line: int
    end_line: int
    original: str

    def __str__(self) -> str:
        return self.original


@value(kw_only=True)
class From(Instruction):
    """``FROM [--platform=p] base [AS name]``; ``name`` is lower-cased like Docker does."""

    keyword: ClassVar[str] = "FROM"
    base: str
    name: str | None = None
    platform: str | None = None


@value(kw_only=True)
class Arg(Instruction):
    """``ARG name[=default] ...``; a pair's default is None when no ``=`` was written."""

    keyword: ClassVar[str] = "ARG"
    pairs: tuple[tuple[str, str | None], ...]

    @property
    def name(self) -> str:
        """The first (usually only) argument's name."""
        return self.pairs[0][0]

    @property
    def default(self) -> str | None:
        """The first argument's default."""
        return self.pairs[0][1]


@value(kw_only=True)
class Env(Instruction):
    """``ENV k=v ...`` or ``ENV k v``: (name, value) pairs, quotes still in place."""

    keyword: ClassVar[str] = "ENV"
    pairs: tuple[tuple[str, str], ...]


@value(kw_only=True)
class Label(Instruction):
    """``LABEL k=v ...``: (name, value) pairs, quotes still in place."""

    keyword: ClassVar[str] = "LABEL"
    pairs: tuple[tuple[str, str], ...]


@value(kw_only=True)
class Maintainer(Instruction):
    """``MAINTAINER name`` (deprecated; sets the image's author)."""

    keyword: ClassVar[str] = "MAINTAINER"
    maintainer: str


@value(kw_only=True)
class Run(Instruction):
    """``RUN cmd`` (shell form: ``cmd`` is a str) or ``RUN ["exe", "arg"]`` (exec form: a tuple).

    ``heredocs`` are the here-documents the line opened (``RUN <<EOF``).
    """

    keyword: ClassVar[str] = "RUN"
    cmd: CommandLine
    exec_form: bool
    heredocs: tuple[Heredoc, ...] = ()


@value(kw_only=True)
class Cmd(Instruction):
    """``CMD``; same forms as RUN.  ``CMD`` with no argument gives ``cmd=()``."""

    keyword: ClassVar[str] = "CMD"
    cmd: CommandLine
    exec_form: bool


@value(kw_only=True)
class Entrypoint(Instruction):
    """``ENTRYPOINT``; same forms as RUN.  ``ENTRYPOINT []`` or no argument (``cmd=()``) resets it."""

    keyword: ClassVar[str] = "ENTRYPOINT"
    cmd: CommandLine
    exec_form: bool


@value(kw_only=True)
class Healthcheck(Instruction):
    """``HEALTHCHECK NONE`` or ``HEALTHCHECK [--interval=..] CMD ...``.

    ``test`` is the image config's ``Healthcheck.Test``: ``("NONE",)``, ``("CMD", exe, args...)``
    or ``("CMD-SHELL", command)``.  Durations are nanoseconds (0 = Docker's default).
    """

    keyword: ClassVar[str] = "HEALTHCHECK"
    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    retries: int = 0


@value(kw_only=True)
class Expose(Instruction):
    """``EXPOSE 80/tcp 443``: the words, sorted as Docker sorts them."""

    keyword: ClassVar[str] = "EXPOSE"
    ports: tuple[str, ...]


@value(kw_only=True)
class Add(Instruction):
    """``ADD [--chown=u:g] [--chmod=m] src... dest``; URLs are kept as sources, not fetched.

    ``heredocs`` are inline sources (``ADD <<EOF /file``), with ``<<-`` tabs already removed.
    """

    keyword: ClassVar[str] = "ADD"
    sources: tuple[str, ...]
    dest: str
    chown: str | None = None
    chmod: str | None = None
    heredocs: tuple[Heredoc, ...] = ()


@value(kw_only=True)
class Copy(Instruction):
    """``COPY [--from=stage|image] [--chown=u:g] [--chmod=m] src... dest``."""

    keyword: ClassVar[str] = "COPY"
    sources: tuple[str, ...]
    dest: str
    from_stage: str | None = None
    chown: str | None = None
    chmod: str | None = None
    heredocs: tuple[Heredoc, ...] = ()


@value(kw_only=True)
class Onbuild(Instruction):
    """``ONBUILD <instruction>``: stored as text, run when a child image is built.

    ``expression`` is what Docker stores in the image's ``OnBuild`` list; ``trigger`` is the
    wrapped instruction's keyword.  :func:`engine.dockerfile.parse_instruction` parses it.
    """

    keyword: ClassVar[str] = "ONBUILD"
    expression: str
    trigger: str


@value(kw_only=True)
class Workdir(Instruction):
    """``WORKDIR path``."""

    keyword: ClassVar[str] = "WORKDIR"
    path: str


@value(kw_only=True)
class User(Instruction):
    """``USER user[:group]``."""

    keyword: ClassVar[str] = "USER"
    user: str


@value(kw_only=True)
class Volume(Instruction):
    """``VOLUME /a /b`` or ``VOLUME ["/a", "/b"]``."""

    keyword: ClassVar[str] = "VOLUME"
    paths: tuple[str, ...]


@value(kw_only=True)
class StopSignal(Instruction):
    """``STOPSIGNAL signal``."""

    keyword: ClassVar[str] = "STOPSIGNAL"
    signal: str


@value(kw_only=True)
class Shell(Instruction):
    """``SHELL ["executable", "param"]`` (JSON form only)."""

    keyword: ClassVar[str] = "SHELL"
    shell: tuple[str, ...]


@value
class Stage:
    """A build stage: a FROM and the instructions up to the next FROM."""

    name: str | None
    base: str
    platform: str | None
    instructions: tuple[Instruction, ...]
    line: int
    index: int = 0
    original: str = ""
    end_line: int = 0

    @property
    def from_instruction(self) -> From:
        """The stage's FROM as an instruction (step 1 of the stage)."""
        return From(line=self.line, end_line=self.end_line or self.line, original=self.original,
                    base=self.base, name=self.name, platform=self.platform)


@value
class Dockerfile:
    """A parsed Dockerfile.

    ``meta_args`` are the ARGs before the first FROM; ``escape`` is the escape character in force
    (``\\`` or a backtick from ``# escape=```); ``warnings`` are the lines Docker 20.10 prints to stderr
    before the first step (empty continuation lines).
    """

    stages: tuple[Stage, ...]
    meta_args: tuple[Arg, ...] = ()
    directives: tuple[Directive, ...] = ()
    escape: str = "\\"
    warnings: tuple[str, ...] = ()
    filename: str = "Dockerfile"

    @property
    def instruction_count(self) -> int:
        """``M`` of ``Step N/M``: meta ARGs, every FROM and every instruction of every stage."""
        return len(self.meta_args) + sum(1 + len(stage.instructions) for stage in self.stages)

    def steps(self) -> Iterator[Instruction]:
        """Every instruction in the order the classic builder numbers them (meta ARGs, then
        each stage's FROM and instructions)."""
        yield from self.meta_args
        for stage in self.stages:
            yield stage.from_instruction
            yield from stage.instructions

    def directive(self, name: str) -> str | None:
        """The value of a parser directive (``escape``, ``syntax``), or None."""
        for directive in self.directives:
            if directive.name == name:
                return directive.value
        return None

    def stage(self, name_or_index: str | int) -> Stage:
        """A stage by name (case-insensitive) or index; KeyError when there is none."""
        if isinstance(name_or_index, int):
            return self.stages[name_or_index]
        for stage in self.stages:
            if stage.name is not None and stage.name == name_or_index.lower():
                return stage
        raise KeyError(name_or_index)
