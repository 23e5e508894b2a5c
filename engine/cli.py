"""``layerlab``: Docker's verbs on the command line, with Docker's flags, output and exit codes.

Each verb is a ten-line shell over one :class:`engine.Engine` call; formatting comes from
:mod:`engine.format`. :func:`run` is what the notebook magics call in-process.

Modules only some verbs need (:mod:`engine.format`, :mod:`engine.gotemplate`, the container verbs'
own) are imported by those verbs: every command pays for what is imported here, and ``layerlab run``
is measured against ``docker run`` (see bench/README.md).
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence

from . import __version__
from .api import Engine
from .cli_parser import UsageError, parse_args
from .errors import Conflict, EngineError, ImageNotFound, InvalidReference
from .values import field, value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing, which costs every command 3 ms
if TYPE_CHECKING:
    from typing import BinaryIO, TextIO


@value(frozen=False)
class Streams:
    """Where a verb reads and writes; the CLI uses the process's, magics their own."""

    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: BinaryIO | None = None
    stdout_binary: BinaryIO | None = None
    stderr_binary: BinaryIO | None = None

    def out(self, text: str = "") -> None:
        self.stdout.write(text + "\n")

    def err(self, text: str) -> None:
        self.stderr.write(text + "\n")


Verb = Callable[[Engine, object, Streams], int]
VERBS: dict[str, Verb] = {}
# Verbs registered by a module imported on first use (default: ``cli_containers``).
LAZY_VERB_MODULES: dict[str, str] = {}
LAZY_VERB_MODULES.update(dict.fromkeys(("push", "pull", "login", "logout", "search"), "cli_registry"))


def verb(name: str) -> Callable[[Verb], Verb]:
    def register(fn: Verb) -> Verb:
        VERBS[name] = fn
        return fn
    return register


# ``layerlab registry …`` and ``layerlab hub …`` (engine/cli_serve.py)
LAZY_VERB_MODULES.update(dict.fromkeys(("registry_serve", "registry_start", "registry_stop", "registry_status",
                                        "hub_adduser", "hub_star", "hub_describe", "hub_seed"), "cli_serve"))


def daemon_error(e: EngineError) -> str:
    """How docker-cli shows an error: not-found errors as ``Error: …``, others from the daemon."""
    if isinstance(e, ImageNotFound):
        return f"Error: {e}"
    return f"Error response from daemon: {e}"


# --- images -------------------------------------------------------------------------------------

@verb("images")
def _images(eng: Engine, a, s: Streams) -> int:
    from .format import ago, human_size, render_table, truncate_id
    from .images import image_rows

    summaries = eng.images(all=a.all, reference=a.repository)
    rows = image_rows(summaries, digests=a.digests)
    ident = (lambda i: i) if a.no_trunc else truncate_id
    if a.quiet:
        for r in rows:
            s.out(ident(r.id))
        return 0
    now = time.time()
    headers = ["REPOSITORY", "TAG"] + (["DIGEST"] if a.digests else []) + ["IMAGE ID", "CREATED", "SIZE"]
    table = [[r.repository, r.tag] + ([r.digest] if a.digests else []) +
             [ident(r.id), ago(r.created, _now(now)), human_size(r.size)] for r in rows]
    s.stdout.write(render_table(headers, table))
    return 0


def _now(ts: float):
    from datetime import datetime, timezone
    return datetime.fromtimestamp(ts, timezone.utc)


@verb("tag")
def _tag(eng: Engine, a, s: Streams) -> int:
    try:
        eng.tag(a.source, a.target)
    except InvalidReference as e:
        s.err(f'Error parsing reference: "{a.target}" is not a valid repository/tag: {e}')
        return 1
    return 0


@verb("rmi")
def _rmi(eng: Engine, a, s: Streams) -> int:
    failed = False
    for name in a.images:
        try:
            for r in eng.remove_image(name, force=a.force, prune=not a.no_prune):
                s.out(f"{r.action}: {r.value}")
        except EngineError as e:
            failed = True
            s.err(daemon_error(e))
    return 1 if failed else 0


@verb("history")
def _history(eng: Engine, a, s: Streams) -> int:
    from .format import ago, history_created_by, human_size, render_table, truncate_id
    from .images import rfc3339

    rows = eng.history(a.image)
    human = a.human == "true"
    ident = (lambda i: i) if a.no_trunc else (lambda i: i if i == "<missing>" else truncate_id(i))
    if a.quiet:
        for r in rows:
            s.out(ident(r.id))
        return 0
    now = _now(time.time())
    table = [[ident(r.id), ago(r.created, now) if human else rfc3339(r.created),
              history_created_by(r.created_by, a.no_trunc), human_size(r.size) if human else str(r.size), r.comment]
             for r in rows]
    s.stdout.write(render_table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], table))
    return 0


@verb("inspect")
def _inspect(eng: Engine, a, s: Streams) -> int:
    from .gotemplate import go_json, render

    found, failed = [], False
    for name in a.names:
        try:
            found.append(eng.inspect_image(name))
        except ImageNotFound:
            failed = True
            s.err(f"Error: No such object: {name}" if a.verb_group == "inspect" else f"Error: No such image: {name}")
    if a.format:
        for item in found:
            s.out(render(a.format, item))
    else:
        s.out(go_json(found, indent=4))
    return 1 if failed else 0


def check_output_path(path: str) -> None:
    """docker-cli's ``ValidateOutputPath``: the directory must exist; an existing path must be a file or dir."""
    import stat

    directory = os.path.dirname(os.path.normpath(path))
    if directory and not os.path.exists(directory):
        raise EngineError(f'invalid output path: directory "{directory}" does not exist')
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise EngineError(f'invalid output path: "{path}" must be a directory or a regular file')


@verb("save")
def _save(eng: Engine, a, s: Streams) -> int:
    if a.output:
        try:
            check_output_path(a.output)
        except EngineError as e:
            raise EngineError(f"failed to save image: {e}") from None
        eng.save(a.images, a.output, format=a.format)
        return 0
    out = s.stdout_binary
    if out is None or (hasattr(out, "isatty") and out.isatty()):
        raise EngineError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    eng.save(a.images, out, format=a.format)
    out.flush()
    return 0


@verb("load")
def _load(eng: Engine, a, s: Streams) -> int:
    src = a.input if a.input else s.stdin
    if src is None or (hasattr(src, "isatty") and src.isatty()):
        raise EngineError("requested load from stdin, but stdin is empty")
    for li in eng.load(src):
        for ref in li.skipped_refs:
            s.err(f"OCI ref name {ref!r} is only a tag: image {li.image_id} left untagged (use `layerlab tag`)")
        if a.quiet:
            continue
        if li.tags:
            for t in li.tags:
                s.out(f"Loaded image: {t}")
        else:
            s.out(f"Loaded image ID: {li.image_id}")
    return 0


@verb("import")
def _import(eng: Engine, a, s: Streams) -> int:
    if "://" in a.source:
        raise EngineError(f"importing from a URL ({a.source}) needs the internet, which LayerLab does not use; "
                          "download the file and import it from disk")
    src = s.stdin if a.source == "-" else a.source
    if src is None:
        raise EngineError("no standard input to import from")
    result = eng.import_image(src, a.repository, changes=tuple(a.change), message=a.message)
    s.out(result.image_id)
    return 0


@verb("image_prune")
def _image_prune(eng: Engine, a, s: Streams) -> int:
    from .format import human_size

    if not a.force:
        warning = ("WARNING! This will remove all images without at least one container associated to them."
                   if a.all else "WARNING! This will remove all dangling images.")
        s.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
        s.stdout.flush()
        answer = (s.stdin.readline() if s.stdin else b"").strip().lower()
        if answer not in (b"y", b"yes"):
            return 0
    result = eng.prune_images(all=a.all)
    if result.records:
        s.out("Deleted Images:")
        for r in result.records:
            s.out(f"{r.action.lower()}: {r.value}")
        s.out()
    s.out(f"Total reclaimed space: {human_size(result.reclaimed)}")
    return 0


@verb("bootstrap")
def _bootstrap(eng: Engine, a, s: Streams) -> int:
    from .format import truncate_id

    r = eng.bootstrap()
    if not a.quiet:
        word = "Created" if r.created else "Up to date"
        s.out(f"{word}: busybox:latest {truncate_id(r.busybox)}")
        s.out(f"{word}: hello-world:latest {truncate_id(r.hello_world)}")
    return 0


@verb("system_check")
def _system_check(eng: Engine, a, s: Streams) -> int:
    report = eng.check()
    for p in report.problems:
        s.out(str(p))
    for n in report.notes:
        s.out(f"note: {n}")
    summary = f"{report.blobs} blobs, {report.images} images, {report.layers} layers, {report.tags} tags checked"
    if report.ok:
        s.out(f"OK: {summary}")
        return 0
    s.out(f"{len(report.problems)} problem(s) found: {summary}")
    return 1


@verb("version")
def _version(eng: Engine, a, s: Streams) -> int:
    s.out(f"LayerLab version {__version__}")
    s.out(f"Home: {eng.home}")
    return 0


# --- entry points ----------------------------------------------------------------------------------

def run(argv: Sequence[str], streams: Streams | None = None, engine: Engine | None = None) -> int:
    """Run one command line; return Docker's exit code. Never raises for engine or usage errors."""
    s = streams or Streams()
    try:
        args = parse_args(argv)
    except UsageError as e:
        s.err(str(e))
        return e.exit_code
    except SystemExit as e:  # --help
        return int(e.code or 0)
    if args.verb not in VERBS:  # the other verbs' modules are loaded only when one is used
        __import__(f"{__package__}.{LAZY_VERB_MODULES.get(args.verb, 'cli_containers')}")

    eng = engine
    try:
        eng = eng or Engine()
        return VERBS[args.verb](eng, args, s)
    except UsageError as e:
        s.err(str(e))
        return e.exit_code
    except ImageNotFound as e:
        s.err(f"Error response from daemon: {e}" if args.verb in ("tag", "history", "save") else f"Error: {e}")
        return 1
    except InvalidReference as e:
        s.err(f"Error response from daemon: {e}")
        return 1
    except Conflict as e:
        s.err(f"Error response from daemon: {e}")
        return 1
    except EngineError as e:
        text = str(e)
        s.err(text if text.startswith(("Error", "layerlab:")) else f"Error: {text}")
        return e.exit_code
    except BrokenPipeError:
        return 0
    except OSError as e:  # a file the verb had to read or write: one line, as docker-cli prints it
        s.err(f"Error: {e.strerror or e}: {e.filename}" if e.filename else f"Error: {e}")
        return 1
    finally:
        if engine is None and eng is not None:
            eng.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    streams = Streams(stdin=sys.stdin.buffer, stdout_binary=sys.stdout.buffer, stderr_binary=sys.stderr.buffer)
    code = run(sys.argv[1:] if argv is None else argv, streams)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # the reader left (`layerlab images | head -1`)
            pass
    # The verb has closed the store and flushed its output; nothing else needs an orderly
    # interpreter shutdown, whose teardown of every module and object costs a command 6–12 ms
    # (`layerlab run --rm`, `layerlab build`). Worker threads a failed transfer left behind end here.
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover - `python -m engine.cli`: use the importable module
    from engine.cli import main as _main

    _main()
