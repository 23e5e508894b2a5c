"""What the magics print while they run, and the result objects they return.

Two kinds of verbs, so that nothing is shown twice in a cell:

* **Streamed verbs** (``build``, ``run``, ``logs``, ``commit``, ``rm``, ``push`` … everything that
  is not below) write Docker's text into the cell *while they run*, as ``docker`` would in a
  terminal: a build shows each step as it happens, a container's output appears as it prints.
  Their result object is returned too (``r = %drun …``, ``-o r``), but it does not display itself
  in the cell that already streamed its text: the cell shows the stream, once. Shown later (``r``
  alone in another cell, ``display(r)``, ``print(r)``) it renders like any other result.
* **Table verbs** (``images``, ``ps``, ``history``, ``inspect``, ``search``, ``diff``) print nothing
  while they run; their result *is* the output: ``text/plain`` is Docker's exact text (what
  ``layerlab images`` prints), ``text/html`` a tidy table (``inspect``: the JSON, indented). Like
  any IPython value, it displays when the magic ends the cell.

Errors always go to stderr at once, one Docker line (``Error: No such image: nosuch``), never
a Python traceback; ``result.exit_code`` tells what happened. For nbval this means streamed verbs
give ``stream`` outputs and table verbs an ``execute_result`` with both representations, all of
them deterministic in reproducible mode (see ``notebooks/nbval_sanitize.cfg`` for the rest).
"""
from __future__ import annotations

import html
import io
import json
import re
from dataclasses import dataclass
from typing import Any, TextIO

#: verbs whose result is their display (everything else streams)
TABLE_VERBS = frozenset({"images", "ps", "history", "inspect", "search", "diff"})
_CLASS = "layerlab-table"


class LiveText(io.TextIOBase):
    """A text stream that keeps everything written and, when ``live`` is given, passes it on at once.

    ``before`` is flushed before each write: the stderr of a command flushes its stdout first, so
    that the cell shows Docker's lines in the order they were written (a kernel's two streams are
    sent separately). Writes to ``live`` are not flushed here: the kernel sends its buffer a moment
    later (IPython's flush interval), and container output is flushed chunk by chunk by the verb.
    """

    def __init__(self, live: TextIO | None = None, *, before: TextIO | None = None) -> None:
        super().__init__()
        self._parts: list[str] = []
        self._live = live
        self._before = before

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._parts.append(text)
        if self._live is not None:
            if self._before is not None:
                self._before.flush()
            self._live.write(text)
        return len(text)

    def flush(self) -> None:
        if self._live is not None:
            self._live.flush()

    def getvalue(self) -> str:
        return "".join(self._parts)


def _current_cell() -> int | None:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - the extension runs inside IPython
        return None
    shell = get_ipython()
    return getattr(shell, "execution_count", None) if shell is not None else None


def _show_nothing() -> None:
    """Displays nothing: the text is already in the cell."""


@dataclass(frozen=True, repr=False)
class Result:
    """What a magic did: ``exit_code``, Docker's ``text`` (stdout) and ``error`` (stderr).

    >>> r = %dtag busybox mybox           # doctest: +SKIP
    >>> r.exit_code, r.ok                 # doctest: +SKIP
    (0, True)
    """

    argv: tuple[str, ...]
    exit_code: int
    text: str = ""
    error: str = ""
    streamed: bool = False            # the text went into the cell as it came
    cell: int | None = None           # the execution count of that cell
    events: tuple[Any, ...] = ()      # engine events (engine.events.Event) during the command

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def command(self) -> str:
        return " ".join(self.argv)

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.command!r}: exit code {self.exit_code}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self) if cycle else self.text.rstrip("\n"))

    @property
    def _ipython_display_(self) -> Any:
        """Nothing when the text is already in this cell (or there is none); else IPython's usual display."""
        if not self.text or (self.streamed and self.cell is not None and self.cell == _current_cell()):
            return _show_nothing
        return None


@dataclass(frozen=True, repr=False)
class TableResult(Result):
    """A table verb's result: ``headers`` and ``rows`` (dicts of the cells as printed)."""

    headers: tuple[str, ...] = ()
    rows: tuple[dict[str, str], ...] = ()

    def column(self, name: str) -> list[str]:
        """One column's cells, e.g. ``imgs.column("IMAGE ID")``."""
        return [r[name] for r in self.rows]

    def _repr_html_(self) -> str:
        if not self.headers:
            return f"<pre>{html.escape(self.text)}</pre>"
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(row.get(h, ''))}</td>" for h in self.headers) + "</tr>"
                       for row in self.rows)
        return (f'<table class="{_CLASS}"><thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>")


@dataclass(frozen=True, repr=False)
class InspectResult(Result):
    """``inspect``: ``data`` is the parsed JSON (a list, one object per name), None with ``-f``."""

    data: Any = None

    def _repr_html_(self) -> str | None:
        if self.data is None:
            return f"<pre>{html.escape(self.text)}</pre>"
        return f'<pre class="{_CLASS}">{html.escape(json.dumps(self.data, indent=2))}</pre>'


@dataclass(frozen=True, repr=False)
class BuildResult(Result):
    """``build``: ``image_id`` (short, ``Successfully built``) or None, and the last good step's image."""

    @property
    def image_id(self) -> str | None:
        m = re.search(r"^Successfully built ([0-9a-f]{12})$", self.text, re.M)
        return m.group(1) if m else None

    @property
    def last_image(self) -> str | None:
        """The image of the last step that worked: what to ``%drun`` to debug a failed build."""
        found = re.findall(r"^ ---> ([0-9a-f]{12})$", self.text, re.M)
        return found[-1] if found else None

    @property
    def last_container(self) -> str | None:
        """The last intermediate container (a failed ``RUN`` leaves it for ``%dlogs``/``%ddiff``)."""
        found = re.findall(r"^ ---> Running in ([0-9a-f]{12})$", self.text, re.M)
        return found[-1] if found else None

    @property
    def tags(self) -> list[str]:
        return re.findall(r"^Successfully tagged (\S+)$", self.text, re.M)


@dataclass(frozen=True, repr=False)
class RunResult(Result):
    """``run``: the container that ran (ID and name, from the engine's events)."""

    @property
    def container_id(self) -> str | None:
        ids = [e.id for e in self.events if getattr(e, "type", "") == "container"]
        return ids[-1] if ids else None

    @property
    def name(self) -> str | None:
        names = [e.ref for e in self.events if getattr(e, "type", "") == "container" and e.ref]
        return names[-1] if names else None


@dataclass(frozen=True, repr=False)
class GraphResult(Result):
    """``%dgraph``: the layer graph as SVG."""

    svg: str = ""

    def _repr_svg_(self) -> str:
        return self.svg

    @property
    def _ipython_display_(self) -> Any:
        return None


# --- tables -----------------------------------------------------------------------------------------

def _column_starts(header: str) -> list[int]:
    """Where each column of a docker-cli table starts: a word after two spaces or more (padding is 3)."""
    starts = [0]
    for m in re.finditer(r" {2,}(?=\S)", header):
        starts.append(m.end())
    return starts


def parse_table(text: str, expect_first: str) -> tuple[tuple[str, ...], tuple[dict[str, str], ...]]:
    """Headers and rows of a table printed by ``render_table``; empty when ``text`` is no such table."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith(expect_first):
        return (), ()
    starts = _column_starts(lines[0])
    bounds = list(zip(starts, starts[1:] + [None]))
    headers = tuple(lines[0][a:b].strip() for a, b in bounds)
    rows = tuple({h: line[a:b].strip() for h, (a, b) in zip(headers, bounds)} for line in lines[1:] if line)
    return headers, rows


_FIRST_HEADER = {"images": "REPOSITORY", "ps": "CONTAINER ID", "history": "IMAGE", "search": "NAME"}


def make_result(verb: str, argv: tuple[str, ...], exit_code: int, text: str, error: str, *,
                streamed: bool, cell: int | None, events: tuple[Any, ...] = ()) -> Result:
    """The result object for ``verb``."""
    common: dict[str, Any] = dict(argv=argv, exit_code=exit_code, text=text, error=error, streamed=streamed,
                                  cell=cell, events=events)
    if verb in _FIRST_HEADER:
        headers, rows = parse_table(text, _FIRST_HEADER[verb])
        return TableResult(**common, headers=headers, rows=rows)
    if verb == "diff":
        rows = tuple({"CHANGE": line[:1], "PATH": line[2:]} for line in text.splitlines() if line)
        return TableResult(**common, headers=("CHANGE", "PATH") if rows else (), rows=rows)
    if verb == "inspect":
        try:
            data = json.loads(text) if text.lstrip().startswith("[") else None
        except ValueError:
            data = None
        return InspectResult(**common, data=data)
    if verb == "build":
        return BuildResult(**common)
    if verb == "run":
        return RunResult(**common)
    return Result(**common)

