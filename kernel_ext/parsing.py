"""``(magic name, line, cell)`` → :class:`Request`: what a magic asks the engine to do. Pure, no I/O.

Every Docker magic is a Docker command line: ``%dimages -a`` is ``docker images -a``, ``%docker
image ls`` is ``docker image ls``. This module only splits the line (``shlex``, as a shell would),
puts the verb in front, and takes out the few options that belong to the magic itself; the
Docker flags are parsed later by the CLI's own parser (:func:`engine.cli_parser.parse_args`), so
``%dbuild``, ``%docker build`` and ``layerlab build`` accept exactly the same flags.

The magic's own options:

* ``-o NAME`` or ``--as NAME``: also store the result object in the variable ``NAME``. ``-o`` is
  Docker's ``--output`` for ``save`` and ``export``, so there only ``--as`` works. For ``run``,
  ``create`` and ``exec`` (whose command line ends with the container's command) they are
  recognised only at the start of the line (``%drun -o r busybox ls -o``); elsewhere anywhere.
* ``%%dbuild [--context DIR] FLAGS``: the cell is the Dockerfile (``docker build -f- DIR``, or
  ``docker build -`` without a context).
* ``%%drun FLAGS IMAGE [COMMAND]``: the cell is fed to the container on stdin (``docker run -i``),
  so ``%%drun busybox`` runs the cell as a shell script: the notebook's ``docker run -it … sh``.
* ``%dgraph [--live]`` and ``%dexplore [IMAGE]`` are LayerLab's own (a graph, a widget).
* ``%dlogin`` without ``-u`` or a password asks for them, as ``docker login`` does at a terminal; the
  password then goes on stdin (``--password-stdin``), never into the line.

``$var`` and ``{expr}`` in the line are expanded by the magic (IPython's ``var_expand``) before
this module sees it; the cell is never expanded (a Dockerfile's ``$VAR`` is the builder's).

>>> r = parse_magic("dimages", "-a -o imgs")
>>> r.argv, r.verb, r.output_var
(('images', '-a'), 'images', 'imgs')
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass

#: line magic → the Docker verb it stands for
VERB_MAGICS: dict[str, str] = {
    "dbuild": "build", "drun": "run", "dimages": "images", "dps": "ps", "dcommit": "commit", "ddiff": "diff",
    "dtag": "tag", "drmi": "rmi", "drm": "rm", "dhistory": "history", "dinspect": "inspect", "dlogs": "logs",
    "dstop": "stop", "dpull": "pull", "dpush": "push", "dsearch": "search", "dlogin": "login",
    "dlogout": "logout", "dsave": "save", "dload": "load", "dregistry": "registry",
}
#: LayerLab's own magics (not Docker verbs)
OWN_MAGICS = ("dgraph", "dexplore")
#: ``%docker …``: any command line
DOCKER_MAGIC = "docker"
#: magics that also exist as cell magics
CELL_MAGICS = ("dbuild", "drun")

#: ``docker GROUP WORD`` → the verb it is an alias of
_GROUP_WORDS: dict[str, dict[str, str]] = {
    "image": {"ls": "images", "list": "images", "rm": "rmi", "remove": "rmi", "prune": "image_prune"},
    "container": {"ls": "ps", "list": "ps", "remove": "rm", "prune": "container_prune"},
    "system": {"check": "system_check"},
}
#: verbs whose line ends with a command for the container: magic options only at the start
_COMMAND_VERBS = frozenset({"run", "create", "exec"})
#: verbs where ``-o`` is Docker's ``--output``
_DOCKER_OWNS_O = frozenset({"save", "export"})


class MagicUsageError(ValueError):
    """A line the magic cannot turn into a command (the Docker flags are checked later, by the CLI)."""

    exit_code = 125


@dataclass(frozen=True)
class Request:
    """One magic call, parsed: the Docker command line and what goes around it."""

    magic: str                       # "dimages", "docker", "dbuild" …
    argv: tuple[str, ...]            # the command line, verb first: ("images", "-a")
    verb: str                        # canonical verb: "images" for ``image ls`` too; "graph", "explore"
    cell: str | None = None          # the cell's text (cell magics)
    stdin: bytes | None = None       # what the command reads on stdin (the cell of %%dbuild / %%drun)
    output_var: str | None = None    # -o NAME / --as NAME
    context: str | None = None       # %%dbuild --context DIR
    live: bool = False               # %dgraph --live
    image: str | None = None         # %dexplore IMAGE
    ask_username: bool = False       # %dlogin without -u: ask, as docker login does
    ask_password: bool = False       # %dlogin without a password: ask (never in the cell), send it on stdin


def canonical_verb(argv: tuple[str, ...] | list[str]) -> str:
    """The verb a Docker command line runs: ``images`` for ``image ls``, ``ps`` for ``container ls``."""
    if not argv:
        return ""
    first = argv[0]
    if first in _GROUP_WORDS:
        word = next((w for w in argv[1:] if not w.startswith("-")), "")
        return _GROUP_WORDS[first].get(word, word or first)
    return first


def split_line(line: str) -> list[str]:
    """Split like a POSIX shell (quotes removed); an unbalanced quote is a usage error."""
    try:
        return shlex.split(line)
    except ValueError as e:
        raise MagicUsageError(f"cannot split the line: {e}") from None


def _valid_name(name: str, flag: str) -> str:
    if not name.isidentifier():
        raise MagicUsageError(f"{flag} needs a Python variable name, not {name!r}")
    return name


def _output_flag(words: list[str], i: int, flags: tuple[str, ...]) -> tuple[int, str | None]:
    """``(words used, NAME)`` if ``words[i]`` is ``-o NAME``, ``-oNAME``, ``--as NAME`` or ``--as=NAME``;
    else ``(0, None)``."""
    w = words[i]
    if w in flags:
        if i + 1 >= len(words):
            raise MagicUsageError(f"{w} needs a variable name")
        return 2, _valid_name(words[i + 1], w)
    if "--as" in flags and w.startswith("--as="):
        return 1, _valid_name(w[5:], "--as")
    if "-o" in flags and w.startswith("-o") and len(w) > 2:
        return 1, _valid_name(w[2:].removeprefix("="), "-o")
    return 0, None


def _take_output_var(words: list[str], verb: str) -> tuple[list[str], str | None]:
    """Remove ``-o NAME`` / ``--as NAME`` (see the module docstring for where they count)."""
    flags = ("--as",) if verb in _DOCKER_OWNS_O else ("-o", "--as")
    leading_only = verb in _COMMAND_VERBS
    out: list[str] = []
    name: str | None = None
    i = 0
    while i < len(words):
        if leading_only and out:
            out.extend(words[i:])
            break
        used, found = _output_flag(words, i, flags)
        if used:
            name = found
            i += used
            continue
        out.append(words[i])
        i += 1
    return out, name


def _take_context(words: list[str]) -> tuple[list[str], str | None]:
    out: list[str] = []
    context: str | None = None
    i = 0
    while i < len(words):
        w = words[i]
        if w == "--context":
            if i + 1 >= len(words):
                raise MagicUsageError("--context needs a directory")
            context = words[i + 1]
            i += 2
            continue
        if w.startswith("--context="):
            context = w.partition("=")[2]
            i += 1
            continue
        out.append(w)
        i += 1
    return out, context


def _own_magic(magic: str, words: list[str]) -> Request:
    words, var = _take_output_var(words, magic)
    if magic == "dgraph":
        unknown = [w for w in words if w != "--live"]
        if unknown:
            raise MagicUsageError(f"%dgraph takes only --live and -o NAME, not {' '.join(unknown)}")
        return Request(magic, ("graph", *words), "graph", output_var=var, live="--live" in words)
    flags = [w for w in words if w.startswith("-")]
    if flags or len(words) > 1:
        raise MagicUsageError(f"%dexplore takes at most one image and -o NAME, not {' '.join(words)}")
    image = words[0] if words else None
    return Request(magic, ("explore", *words), "explore", output_var=var, image=image)


def _has_flag(words: tuple[str, ...], short: str, long: str) -> bool:
    return any(w in (short, long) or w.startswith(f"{long}=") or (w.startswith(short) and not w.startswith("--"))
               for w in words)


def _login(magic: str, argv: tuple[str, ...], var: str | None) -> Request:
    """``%dlogin``: what ``docker login`` would ask for at a terminal is asked for by the magic."""
    password = _has_flag(argv, "-p", "--password") or "--password-stdin" in argv
    username = _has_flag(argv, "-u", "--username")
    if not password:
        argv = (*argv, "--password-stdin")
    return Request(magic, argv, "login", output_var=var, ask_username=not username, ask_password=not password)


def parse_magic(magic: str, line: str, cell: str | None = None) -> Request:
    """Turn ``%magic line`` (or ``%%magic line`` + ``cell``) into a :class:`Request`.

    Raises :class:`MagicUsageError` for what only the magic can know is wrong (a missing
    variable name, ``-f`` in ``%%dbuild`` …); bad Docker flags are left to the CLI's parser.
    """
    words = split_line(line)
    if magic in OWN_MAGICS:
        if cell is not None:
            raise MagicUsageError(f"%%{magic} is not a cell magic")
        return _own_magic(magic, words)
    if magic == DOCKER_MAGIC:
        # magic options may come before the verb (`%docker -o r images`); the verb decides the rest
        var: str | None = None
        while words:
            used, found = _output_flag(words, 0, ("-o", "--as"))
            if not used:
                break
            var, words = found, words[used:]
        verb = canonical_verb(words)
        rest, var2 = _take_output_var(words, verb)
        if not rest:
            raise MagicUsageError("%docker needs a command, e.g. %docker images")
        return Request(magic, tuple(rest), verb, output_var=var2 or var)
    if magic not in VERB_MAGICS:
        raise MagicUsageError(f"unknown magic %{magic}")
    verb = VERB_MAGICS[magic]
    if cell is None:
        words, var = _take_output_var(words, verb)
        argv = (verb, *words)
        if verb == "login":
            return _login(magic, argv, var)
        return Request(magic, argv, canonical_verb(argv), output_var=var)
    if magic == "dbuild":
        words, var = _take_output_var(words, verb)
        words, context = _take_context(words)
        if any(w in ("-f", "--file") or w.startswith(("-f", "--file=")) for w in words):
            raise MagicUsageError("%%dbuild reads the Dockerfile from the cell: leave out -f")
        tail = ("-f", "-", context) if context is not None else ("-",)
        return Request(magic, ("build", *words, *tail), "build", cell=cell, stdin=cell.encode(),
                       output_var=var, context=context)
    if magic == "drun":
        words, var = _take_output_var(words, verb)
        return Request(magic, ("run", "-i", *words), "run", cell=cell, stdin=cell.encode(), output_var=var)
    raise MagicUsageError(f"%%{magic} is not a cell magic; use %{magic}")
