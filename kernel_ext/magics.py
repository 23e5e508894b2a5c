"""The magics: glue between IPython, :mod:`kernel_ext.parsing`, a backend and :mod:`kernel_ext.display`.

``%dimages``, ``%docker image ls`` and ``layerlab images`` run the same code (the CLI verb over
one :class:`engine.Engine` shared by the kernel, ``layerlab_engine`` in the notebook). A magic
call is: expand ``$var``/``{expr}`` in the line (Go templates ``{{…}}`` are left alone), parse it
into a :class:`~kernel_ext.parsing.Request`, run it with its text streaming into the cell (or
captured, for table verbs), return a :mod:`~kernel_ext.display` result. A Jupyter interrupt ends
the command (a foreground container is killed) and then stops the cell, as Ctrl-C would.
"""
from __future__ import annotations

import contextlib
import io
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from IPython.core import magic as ipymagic
from IPython.core.magic import Magics, magics_class

from engine.errors import EngineError

from .backend import Backend, BackendUnsupported, make_backend
from .config import LayerLab
from .display import TABLE_VERBS, GraphResult, LiveText, Result, make_result
from .parsing import CELL_MAGICS, DOCKER_MAGIC, OWN_MAGICS, VERB_MAGICS, MagicUsageError, Request, parse_magic

ENGINE_VARIABLE = "layerlab_engine"


@contextlib.contextmanager
def noticing_interrupts() -> Iterator[list[bool]]:
    """Record whether SIGINT arrived (verbs turn it into exit code 130; the cell must still stop)."""
    seen = [False]
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        seen[0] = True
        if previous is signal.SIG_IGN:
            return
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


def expand(shell: Any, line: str, local_ns: dict[str, Any] | None) -> str:
    """IPython's ``$var``/``{expr}`` expansion of ``line`` in the caller's scope, with ``{{…}}`` kept as is."""
    if "$" not in line and "{" not in line:
        return line
    protected = line.replace("{{", "{{{{").replace("}}", "}}}}")
    scope = dict(local_ns or {})
    # var_expand(depth=1) reads the locals of the frame calling our lambda: the eval frame, whose locals are `scope`
    scope["__layerlab_expand__"] = lambda: shell.var_expand(protected, depth=1)
    return eval("__layerlab_expand__()", {}, scope)


def ask_credentials(request: Request) -> Request:
    """Ask for what ``%dlogin`` lacks, as ``docker login`` does at a terminal (a kernel asks in the notebook,
    the password field hidden); the password goes on stdin, never into the cell or the history."""
    import getpass
    from dataclasses import replace

    argv = request.argv
    if request.ask_username:
        argv = (argv[0], "-u", input("Username: "), *argv[1:])
    stdin = request.stdin
    if request.ask_password:
        stdin = getpass.getpass("Password: ").encode()
    return replace(request, argv=argv, stdin=stdin, ask_username=False, ask_password=False)


_DOCS = {
    ("line", "docker"): "%docker [-o NAME] COMMAND [ARG...]: any docker command line, e.g. `%docker image ls`, "
                        "`%docker build -t x .`.",
    ("line", "dgraph"): "%dgraph [--live] [-o NAME]: the store's layer graph (SVG); --live: a widget that redraws "
                        "after every change.",
    ("line", "dexplore"): "%dexplore [IMAGE]: the layer explorer of IMAGE, or the image browser.",
    ("cell", "dbuild"): "%%dbuild [--context DIR] [-o NAME] FLAGS: build the Dockerfile in the cell "
                        "(`docker build -f- DIR`, or `docker build -` without a context).",
    ("cell", "drun"): "%%drun [-o NAME] FLAGS IMAGE [COMMAND]: run a container with the cell on its stdin "
                      "(`docker run -i`); `%%drun busybox` runs the cell as a shell script.",
}


@magics_class
class LayerLabMagics(Magics):
    """Docker's verbs as magics (see the package docstring for the list)."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self._reverting = False
        self.config_obj, problems = LayerLab.for_shell(shell)
        for problem in problems:  # e.g. a bad value left in the shell's config by an earlier %config
            print(problem, file=sys.stderr)
        shell.configurables.append(self.config_obj)
        try:
            self.backend: Backend = make_backend(self.config_obj.backend, home=self.config_obj.home or None)
        except (OSError, EngineError, BackendUnsupported) as e:
            print(f"LayerLab: cannot use the configured store ({e}); using the default one", file=sys.stderr)
            self.config_obj.home, self.config_obj.backend = "", "layerlab"
            self.backend = make_backend("layerlab")
        self._publish_engine()
        self.config_obj.observe(self._switch_backend, names=["home", "backend"])
        self._sync_registry_settings()
        for name in (*VERB_MAGICS, *OWN_MAGICS, DOCKER_MAGIC):
            self.magics["line"][name] = self._line_magic(name)
        for name in CELL_MAGICS:
            self.magics["cell"][name] = self._cell_magic(name)

    # --- registration -----------------------------------------------------------------------------

    def _line_magic(self, name: str) -> Callable[..., Any]:
        def line_magic(line: str, local_ns: dict[str, Any] | None = None) -> Any:
            return self.call(name, expand(self.shell, line, local_ns))
        return self._mark(line_magic, name, "line")

    def _cell_magic(self, name: str) -> Callable[..., Any]:
        def cell_magic(line: str, cell: str, local_ns: dict[str, Any] | None = None) -> Any:
            return self.call(name, expand(self.shell, line, local_ns), cell)
        return self._mark(cell_magic, name, "cell")

    @staticmethod
    def _mark(fn: Callable[..., Any], name: str, kind: str) -> Callable[..., Any]:
        fn.__name__ = name
        fn.__doc__ = _DOCS.get((kind, name)) or (
            f"%{name} [{'--as' if name == 'dsave' else '-o'} NAME] ARGS: `docker {VERB_MAGICS[name]} ARGS` "
            f"(flags: `%{name} --help`); "
            "the result object is returned (and kept in NAME).")
        setattr(fn, ipymagic.MAGIC_NO_VAR_EXPAND_ATTR, True)      # we expand, keeping {{ Go templates }}
        setattr(fn, ipymagic.MAGIC_OUTPUT_CAN_BE_SILENCED, True)  # `%dimages;` shows nothing
        fn.needs_local_scope = True  # type: ignore[attr-defined]
        return fn

    # --- the engine -----------------------------------------------------------------------------------

    def _publish_engine(self) -> None:
        try:
            engine = self.backend.engine
        except BackendUnsupported:
            engine = None
        self.shell.push({ENGINE_VARIABLE: engine}, interactive=False)

    def _switch_backend(self, change: dict[str, Any]) -> None:
        if self._reverting:
            return
        try:
            new = make_backend(self.config_obj.backend, home=self.config_obj.home or None)
        except (OSError, EngineError, BackendUnsupported) as e:  # keep what works; say why
            print(f"LayerLab.{change['name']} = {change['new']!r} refused: {e}", file=sys.stderr)
            self._reverting = True
            try:
                setattr(self.config_obj, change["name"], change["old"])
            finally:
                self._reverting = False
            if "LayerLab" in self.shell.config:  # %config keeps what it set in the shell's config too
                self.shell.config.LayerLab[change["name"]] = change["old"]
            return
        old, self.backend = self.backend, new
        old.close()
        self._publish_engine()
        self._sync_registry_settings()

    def _sync_registry_settings(self) -> None:
        try:
            home = self.backend.engine.home
        except BackendUnsupported:
            return
        self.config_obj.load_registry_settings(home)

    def close(self) -> None:
        """Unregister the magics and the configurable; close the backend (``%unload_ext``)."""
        registered = self.shell.magics_manager.magics
        for kind, table in self.magics.items():
            for name, fn in table.items():
                if registered[kind].get(name) is fn:
                    del registered[kind][name]
        if self.config_obj in self.shell.configurables:
            self.shell.configurables.remove(self.config_obj)
        self.backend.close()

    # --- running -----------------------------------------------------------------------------------------

    def call(self, magic: str, line: str, cell: str | None = None) -> Any:
        """Run one magic call; store the result in ``-o NAME`` if asked; return it."""
        try:
            request = parse_magic(magic, line, cell)
        except MagicUsageError as e:
            print(f"%{magic}: {e}", file=sys.stderr)
            return Result(argv=(magic,), exit_code=e.exit_code, error=str(e))
        if request.ask_username or request.ask_password:
            try:
                request = ask_credentials(request)
            except (EOFError, NotImplementedError):  # a frontend without input requests (nbclient, voila)
                return self._failed(request, "Error: Cannot perform an interactive login from a non TTY device")
        result = self.execute(request)
        if request.output_var:
            self.shell.user_ns[request.output_var] = result
        return result

    def execute(self, request: Request) -> Any:
        """Run a parsed request on the backend."""
        if request.verb == "graph":
            return self._graph(request)
        if request.verb == "explore":
            return self._explore(request)
        live = request.verb not in TABLE_VERBS
        out = LiveText(sys.stdout if live else None)
        err = LiveText(sys.stderr, before=sys.stdout)
        from engine.cli import Streams

        streams = Streams(stdout=out, stderr=err,
                          stdin=io.BytesIO(request.stdin) if request.stdin is not None else None)
        events: list[Any] = []
        unsubscribe = self.backend.subscribe(events.append)
        try:
            with self.config_obj.clock_for(request.verb), noticing_interrupts() as interrupted:
                code = self.backend.run_verb(request.argv, streams)
        finally:
            unsubscribe()
        if interrupted[0]:
            raise KeyboardInterrupt
        return make_result(request.verb, request.argv, code, out.getvalue(), err.getvalue(), streamed=live,
                           cell=self.shell.execution_count, events=tuple(events))

    def _failed(self, request: Request, message: str, code: int = 1) -> Result:
        print(message, file=sys.stderr)
        return Result(argv=request.argv, exit_code=code, error=message + "\n")

    def _graph(self, request: Request) -> Any:
        from . import graph

        try:
            engine = self.backend.engine
        except BackendUnsupported as e:
            return self._failed(request, f"Error: {e}")
        if request.live:
            return graph.LiveGraph(engine)
        try:
            svg = graph.render_svg(engine)
        except Exception as e:  # noqa: BLE001 - Graphviz missing or failing: one line, not a traceback
            return self._failed(request, f"Error: cannot draw the layer graph: {e}")
        return GraphResult(argv=request.argv, exit_code=0, svg=svg)

    def _explore(self, request: Request) -> Any:
        from engine.errors import EngineError

        from . import widgets

        try:
            engine = self.backend.engine
        except BackendUnsupported as e:
            return self._failed(request, f"Error: {e}")

        try:
            if request.image is None:
                return widgets.ImageBrowser(engine)
            engine.image_id(request.image)  # Docker's error for an unknown image, before any widget
            return widgets.LayerExplorer(engine, request.image)
        except EngineError as e:
            return self._failed(request, f"Error: {e}")
