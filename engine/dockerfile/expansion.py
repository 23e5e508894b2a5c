"""Which instructions the builder substitutes variables in, and how.

Docker's classic builder expands ``$VAR`` in ADD, COPY (sources, dest, --chown; not --chmod or
--from), ENV and LABEL
(names and values), EXPOSE (which may also split one word into several), ARG, STOPSIGNAL, USER,
VOLUME and WORKDIR, and in FROM with the meta ARGs only.  It never expands RUN, CMD, ENTRYPOINT,
SHELL, HEALTHCHECK, MAINTAINER or ONBUILD: those reach the shell (or the image config) verbatim.
"""
from __future__ import annotations

from collections.abc import Mapping

from .errors import DockerfileError
from .instructions import (
    Add, Arg, Copy, Env, Expose, From, Instruction, Label, StopSignal, User, Volume, Workdir,
)
from .lexer import LexError, expand, expand_words
from ..values import replace

#: instructions whose arguments the builder substitutes (moby's ``replaceEnvAllowed`` plus FROM)
EXPANDED_INSTRUCTIONS = frozenset(
    {"ADD", "ARG", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"})


def expand_instruction(instruction: Instruction, env: Mapping[str, str], *, escape: str = "\\") -> Instruction:
    """The instruction with Docker's substitution applied to the fields Docker substitutes.

    ``env`` is what is in scope at that step (the image's ENV plus the ARGs allowed so far; for
    FROM, the meta ARGs).  ``escape`` is the Dockerfile's escape character.  Instructions Docker
    does not expand are returned unchanged.  Raises :class:`DockerfileError` at the instruction's
    line when a word cannot be processed (e.g. ``${V:?must be set}`` with V unset).

    >>> from engine.dockerfile import parse
    >>> env_step = parse("FROM x\\nENV A=1 B=\\"$HOME/x y\\"\\n").stages[0].instructions[0]
    >>> expand_instruction(env_step, {"HOME": "/root"}).pairs
    (('A', '1'), ('B', '/root/x y'))
    """
    def word(text: str) -> str:
        return expand(text, env, escape=escape)

    def optional(text: str | None) -> str | None:
        return None if text is None else word(text)

    try:
        if isinstance(instruction, (Env, Label)):
            pairs = tuple((word(key), word(value)) for key, value in instruction.pairs)
            return replace(instruction, pairs=pairs)
        if isinstance(instruction, Arg):
            return replace(instruction, pairs=tuple(
                (word(key), optional(value)) for key, value in instruction.pairs))
        if isinstance(instruction, Copy):
            return replace(instruction, sources=tuple(map(word, instruction.sources)),
                                       dest=word(instruction.dest), chown=optional(instruction.chown))
        if isinstance(instruction, Add):
            return replace(instruction, sources=tuple(map(word, instruction.sources)),
                                       dest=word(instruction.dest), chown=optional(instruction.chown))
        if isinstance(instruction, Expose):
            ports = tuple(port for text in instruction.ports for port in expand_words(text, env, escape=escape))
            return replace(instruction, ports=ports)
        if isinstance(instruction, Volume):
            return replace(instruction, paths=tuple(map(word, instruction.paths)))
        if isinstance(instruction, Workdir):
            return replace(instruction, path=word(instruction.path))
        if isinstance(instruction, User):
            return replace(instruction, user=word(instruction.user))
        if isinstance(instruction, StopSignal):
            return replace(instruction, signal=word(instruction.signal))
        if isinstance(instruction, From):
            return replace(instruction, base=word(instruction.base),
                                       platform=optional(instruction.platform))
    except LexError as err:
        raise DockerfileError(str(err), line=instruction.line, end_line=instruction.end_line,
                              hint=f"line {instruction.line}: check the quotes and ${{...}} in {instruction.keyword}"
                              ) from None
    return instruction
