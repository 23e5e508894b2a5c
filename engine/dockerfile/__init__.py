"""Dockerfile parsing with Docker's own rules; no execution.

The layers, each usable alone:

* :func:`parse_raw` / :func:`raw_commands` — the Go parser's view (``syntax``): directives, line
  continuations, comments inside continuations, heredocs, per-instruction word splitting, JSON
  exec form.  Comparable one to one with Docker's parser.
* :func:`parse` — typed, frozen instructions grouped in stages, with the classic builder's checks
  and error messages (``dockerfile parse error line N: ...``), plus a hint for students.
* :func:`expand`, :func:`expand_words`, :func:`expand_instruction` — variable substitution with
  ``shell/lex.go``'s quote rules, applied only where Docker applies it (:data:`EXPANDED_INSTRUCTIONS`).
* :func:`check_stages`, :func:`resolve_from`, :func:`target_stages` — stage references.

>>> df = parse('''FROM busybox:latest
... LABEL maintainer=whoami
... RUN echo hello > /greeting && \\\\
...     mkdir -p /var/www/html
... CMD ["cat", "/greeting"]
... ''')
>>> for n, step in enumerate(df.steps(), 1):
...     print(f"Step {n}/{df.instruction_count} : {step.original}")
Step 1/4 : FROM busybox:latest
Step 2/4 : LABEL maintainer=whoami
Step 3/4 : RUN echo hello > /greeting &&     mkdir -p /var/www/html
Step 4/4 : CMD ["cat", "/greeting"]
>>> df.stages[0].instructions[-1].cmd
('cat', '/greeting')

Deliberate differences from Docker are listed in ``DIFFERENCES`` below.
"""
from __future__ import annotations

from .arguments import KNOWN_INSTRUCTIONS
from .errors import DockerfileError
from .expansion import EXPANDED_INSTRUCTIONS, expand_instruction
from .instructions import (
    Add, Arg, Cmd, CommandLine, Copy, Dockerfile, Entrypoint, Env, Expose, From, Healthcheck,
    Instruction, Label, Maintainer, Onbuild, Run, Shell, Stage, StopSignal, User, Volume, Workdir,
)
from .lexer import LexError, expand, expand_words
from .parse import FLAGS, parse, parse_duration, parse_instruction
from .stages import check_stages, resolve_from, target_stages
from .syntax import Directive, Heredoc, RawCommand, RawDockerfile, chomp, parse_raw, raw_commands
from .words import split_fields, split_words

DIFFERENCES = """\
Where LayerLab's Dockerfile parser knowingly differs from Docker (20.10 classic builder; the raw layer
from the buildkit v0.12 parser):

* Heredocs (RUN/COPY/ADD <<EOF) are parsed as BuildKit (Dockerfile 1.4+) does; Docker 20.10's classic
  builder did not know them.
* ${V-x}, ${V+x}, ${V?x} (without colon) are substituted as by BuildKit's lexer; Docker 20.10 rejected
  them with "missing ':' in substitution".
* --flag words and HEALTHCHECK's type are split on Unicode characters; Go scans bytes there and so
  takes the UTF-8 bytes 0x85/0xA0 inside a multi-byte character for spaces.
* Lines longer than 64 KiB are accepted (Go's scanner refuses them).
* A parser-level error (e.g. "ENV must have two arguments") is Docker's bare text; its line is in
  DockerfileError.line and in the hint.
* A file with ARGs but no FROM is refused by parse() ("No image was generated. Is your Dockerfile
  empty?"), before any step, not after printing the ARG steps.
* check_stages refuses COPY --from naming the current or a later stage (Docker would try to pull an
  image of that name); a --from that is a valid image reference is accepted, as by Docker.
"""

__all__ = [
    "Add", "Arg", "Cmd", "CommandLine", "Copy", "DIFFERENCES", "Directive", "Dockerfile", "DockerfileError",
    "EXPANDED_INSTRUCTIONS", "Entrypoint", "Env", "Expose", "FLAGS", "From", "Healthcheck", "Heredoc",
    "Instruction", "KNOWN_INSTRUCTIONS", "Label", "LexError", "Maintainer", "Onbuild", "RawCommand",
    "RawDockerfile", "Run", "Shell", "Stage", "StopSignal", "User", "Volume", "Workdir", "check_stages",
    "chomp", "expand", "expand_instruction", "expand_words", "parse", "parse_duration", "parse_instruction",
    "parse_raw", "raw_commands", "resolve_from", "split_fields", "split_words", "target_stages",
]
