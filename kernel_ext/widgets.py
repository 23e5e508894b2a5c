"""Notebook widgets over the engine: build log, layer explorer (dive's view), image browser, transfer progress.

State lives in traitlets (tests set and read them without a browser); logic lives in the engine
(:mod:`engine.layerstats`, :mod:`engine.builder`); each widget is a ``VBox`` of stock ipywidgets,
so nothing is loaded from a CDN.

>>> log = BuildLog()                                   # doctest: +SKIP
>>> for event in engine.build(opts): log.feed(event)   # doctest: +SKIP
>>> LayerExplorer(engine, "web")                       # doctest: +SKIP
"""
from __future__ import annotations

import html
import shlex
from typing import Any

import ipywidgets as widgets
import traitlets

from engine.format import human_size

MARK_COLOURS = {"A": "#2e9d3a", "M": "#c98a00", "D": "#d0342c"}
STATUS_TEXT = {"running": "running", "cached": "cached", "ran": "ran", "from": "base", "failed": "failed"}


def _pre(text: str) -> str:
    return f'<pre style="margin:0;font-size:12px;line-height:1.3">{html.escape(text)}</pre>'


# --- build log ---------------------------------------------------------------------------------------

class BuildLog(widgets.VBox):
    """``docker build`` as a widget: progress bar (step N/M), per-step status and timing, collapsible output.

    ``feed(event)`` takes the events of :meth:`engine.Engine.build` (matched by class name).
    """

    total = traitlets.Int(0)
    current = traitlets.Int(0)
    steps = traitlets.List()          # dicts: number, text, status (running/cached/ran/from/failed), seconds
    status = traitlets.Unicode("idle")    # idle | running | done | failed
    image_id = traitlets.Unicode("")
    tags = traitlets.List()
    error = traitlets.Unicode("")
    log = traitlets.Unicode("")       # the text docker build prints, output included

    def __init__(self, **kwargs: Any) -> None:
        self._bar = widgets.IntProgress(value=0, min=0, max=1, description="Step 0/0",
                                        layout=widgets.Layout(width="60%"))
        self._summary = widgets.HTML()
        self._table = widgets.HTML()
        self._output = widgets.HTML()
        self._details = widgets.Accordion(children=[self._output])
        self._details.set_title(0, "Output")
        self._details.selected_index = None
        super().__init__(children=[widgets.HBox([self._bar, self._summary]), self._table, self._details], **kwargs)
        self.add_class("layerlab-buildlog")
        self.observe(self._redraw, names=["total", "current", "steps", "status", "image_id", "error", "log",
                                          "tags"])
        self._redraw()

    def feed(self, event: Any) -> None:
        """Consume one builder event."""
        from engine.builder import render

        name = type(event).__name__
        line = None if name == "Output" else render(event)
        if name == "ContextSent":
            self.set_trait("status", "running")
        elif name == "StepStarted":
            self.total, self.current = event.total, event.number
            self.steps = self.steps + [{"number": event.number, "text": event.text, "status": "running",
                                        "seconds": 0.0}]
        elif name == "CacheHit":
            self._update_step(status="cached")
        elif name == "ContainerRunning":
            self._update_step(status="ran")
        elif name == "StepDone":
            step = self.steps[-1] if self.steps else {}
            first = step.get("text", "").split(None, 1)[:1]
            if step.get("status") == "cached" or event.cached:
                status = "cached"
            elif first and first[0].upper() == "FROM":
                status = "from"
            else:
                status = "ran"
            self._update_step(status=status, seconds=round(float(event.seconds), 3), image_id=event.image_id)
        elif name == "Output":
            line = event.data.decode(errors="replace").rstrip("\n")
        elif name == "BuildFailed":
            self._update_step(status="failed")
            self.error = event.message
            self.status = "failed"
        elif name == "Built":
            self.image_id = event.image_id
            self.status = "done"
        elif name == "Tagged":
            self.tags = self.tags + [event.ref]
        if line is not None:
            self.log = self.log + line + "\n"

    def _update_step(self, **changes: Any) -> None:
        if not self.steps:
            return
        steps = [dict(s) for s in self.steps]
        steps[-1].update(changes)
        self.steps = steps

    def _redraw(self, change: Any = None) -> None:
        self._bar.max = max(self.total, 1)
        self._bar.value = self.current if self.status != "done" else self.total
        self._bar.description = f"Step {self.current}/{self.total}"
        self._bar.bar_style = {"done": "success", "failed": "danger"}.get(self.status, "info")
        summary = {"idle": "waiting for a build", "running": "building…",
                   "done": f"built {self.image_id[7:19]}" + (f" ({', '.join(self.tags)})" if self.tags else ""),
                   "failed": f"failed: {self.error}"}[self.status]
        self._summary.value = f"<span class='layerlab-build-status'>{html.escape(summary)}</span>"
        rows = "".join(
            f"<tr><td>{s['number']}</td><td><code>{html.escape(s['text'])}</code></td>"
            f"<td class='layerlab-step-{s['status']}'>{STATUS_TEXT.get(s['status'], s['status'])}</td>"
            f"<td style='text-align:right'>{s['seconds']:.2f}s</td></tr>" for s in self.steps)
        self._table.value = (f"<table class='layerlab-build-steps'><tr><th>#</th><th>instruction</th><th>step</th>"
                             f"<th>time</th></tr>{rows}</table>") if self.steps else ""
        self._output.value = _pre(self.log)


# --- transfer progress ----------------------------------------------------------------------------------

DONE_STATUSES = ("Pushed", "Layer already exists", "Pull complete", "Already exists", "Download complete")


class TransferProgress(widgets.VBox):
    """``docker push``/``pull`` progress: one bar per layer. ``feed(event)`` takes engine.registry.events events."""

    header = traitlets.Unicode("")
    layers = traitlets.Dict()         # short id -> {"status", "current", "total"}
    result = traitlets.Unicode("")
    done = traitlets.Bool(False)

    def __init__(self, **kwargs: Any) -> None:
        self._title = widgets.HTML()
        self._rows = widgets.VBox()
        self._result = widgets.HTML()
        self._bars: dict[str, tuple[widgets.IntProgress, widgets.Label]] = {}
        super().__init__(children=[self._title, self._rows, self._result], **kwargs)
        self.add_class("layerlab-transfer")
        self.observe(self._redraw, names=["header", "layers", "result"])

    def feed(self, event: Any) -> None:
        """Consume one transfer event (Header, LayerProgress, Pushed, Pulled — matched by class name)."""
        name = type(event).__name__
        if name == "Header":
            self.header = (self.header + "\n" if self.header else "") + event.text
        elif name == "LayerProgress":
            layers = dict(self.layers)
            old = layers.get(event.id, {})
            total = event.total or old.get("total", 0)
            current = event.current if event.total or event.current else old.get("current", 0)
            if event.status in DONE_STATUSES or event.status.startswith("Mounted from"):
                current = total = max(total, current, 1)
            layers[event.id] = {"status": event.status, "current": current, "total": total}
            self.layers = layers
        elif name == "Pushed":
            self.result = f"{event.tag}: digest: {event.digest} size: {event.size}"
            self.done = True
        elif name == "Pulled":
            self.result = f"Digest: {event.digest}\nStatus: {event.status}\n{event.reference}"
            self.done = True

    def fraction(self, layer_id: str) -> float:
        entry = self.layers[layer_id]
        return entry["current"] / entry["total"] if entry["total"] else 0.0

    def _redraw(self, change: Any = None) -> None:
        self._title.value = _pre(self.header) if self.header else ""
        for layer_id, entry in self.layers.items():
            if layer_id not in self._bars:
                bar = widgets.IntProgress(min=0, max=1, description=layer_id,
                                          style={"description_width": "initial"})
                label = widgets.Label()
                self._bars[layer_id] = (bar, label)
                self._rows.children = self._rows.children + (widgets.HBox([bar, label]),)
            bar, label = self._bars[layer_id]
            bar.max = max(entry["total"], 1)
            bar.value = min(entry["current"], bar.max)
            finished = entry["status"] in DONE_STATUSES or entry["status"].startswith("Mounted from")
            bar.bar_style = "success" if finished else "info"
            amount = f" {human_size(entry['current'])}/{human_size(entry['total'])}" if entry["total"] and \
                not finished else ""
            label.value = entry["status"] + amount
        self._result.value = _pre(self.result) if self.result else ""


# --- layer explorer ---------------------------------------------------------------------------------------

def _tree_html(lines: list[str]) -> str:
    out = []
    for line in lines:
        mark = line[:1]
        colour = MARK_COLOURS.get(mark)
        text = html.escape(line)
        out.append(f'<span style="color:{colour}">{text}</span>' if colour else text)
    return ('<pre class="layerlab-tree" style="margin:0;font-size:12px;line-height:1.25;max-height:24em;'
            'overflow:auto">' + "\n".join(out) + "</pre>")


class LayerExplorer(widgets.VBox):
    """dive in a notebook: an image's layers; the selected one's files marked A/M/D; wasted bytes, efficiency.

    ``selected`` is the layer index, ``aggregated`` shows the whole file system up to that layer.
    """

    image_id = traitlets.Unicode("")
    selected = traitlets.Int(0)
    aggregated = traitlets.Bool(False)
    efficiency = traitlets.Float(1.0)
    wasted_bytes = traitlets.Int(0)
    tree_text = traitlets.Unicode("")

    def __init__(self, engine: Any, image: str, **kwargs: Any) -> None:
        from engine.layerstats import analyze

        self._engine = engine
        image_id = engine.image_id(image)
        self.analysis = analyze(engine.store, image_id)
        a = self.analysis
        self._layers = widgets.Select(
            options=[(f"{i.index:>2}  {human_size(i.size):>8}  {i.command or '(no command)'}"[:110], i.index)
                     for i in a.layers],
            value=0 if a.layers else None, rows=min(max(len(a.layers), 2), 10),
            layout=widgets.Layout(width="100%"))
        self._toggle = widgets.ToggleButton(value=False, description="aggregated tree",
                                            tooltip="show every file up to the selected layer")
        self._summary = widgets.HTML()
        self._tree = widgets.HTML()
        super().__init__(children=[self._summary, self._layers, self._toggle, self._tree], **kwargs)
        self.add_class("layerlab-explorer")
        self.image_id = image_id
        self.efficiency = a.efficiency
        self.wasted_bytes = a.wasted_bytes
        if a.layers:  # an image without layers (FROM scratch + metadata) has nothing to select
            widgets.link((self._layers, "value"), (self, "selected"))
        widgets.link((self._toggle, "value"), (self, "aggregated"))
        self.observe(self._show_tree, names=["selected", "aggregated"])
        self._summary.value = self._summary_html()
        self._show_tree()

    def _summary_html(self) -> str:
        a = self.analysis
        rows = "".join(f"<tr><td>{w.count}</td><td style='text-align:right'>{human_size(w.cumulative_size)}</td>"
                       f"<td><code>{html.escape(w.path)}</code></td></tr>"
                       for w in sorted(a.inefficiencies, key=lambda w: (-w.cumulative_size, w.path))[:10])
        table = (f"<table><tr><th>count</th><th>total space</th><th>path</th></tr>{rows}</table>" if rows else "")
        return (f"<div class='layerlab-explorer-summary'><b>image {self.image_id[7:19]}</b> — "
                f"{len(a.layers)} layers, {human_size(a.size_bytes)}; "
                f"efficiency <b>{a.efficiency * 100:.4f} %</b>, wasted <b>{human_size(a.wasted_bytes)}</b> "
                f"({a.wasted_bytes} bytes)</div>{table}")

    def _show_tree(self, change: Any = None) -> None:
        from engine.layerstats import aggregated_tree, layer_tree, tree_lines

        if not self.analysis.layers:
            self.tree_text = ""
            self._tree.value = "<i>no layers</i>"
            return
        index = min(max(self.selected, 0), len(self.analysis.layers) - 1)
        root = aggregated_tree(self.analysis, index) if self.aggregated else layer_tree(self.analysis, index)
        lines = tree_lines(root)
        self.tree_text = "\n".join(lines)
        self._tree.value = _tree_html(lines)


# --- image browser -----------------------------------------------------------------------------------------

class ImageBrowser(widgets.VBox):
    """The local images: pick one to see its history, open its layers, or run a command in it."""

    images = traitlets.List()         # dicts: id, tags, size
    selected = traitlets.Unicode("")  # image ID
    history_text = traitlets.Unicode("")
    command = traitlets.Unicode("")
    run_output = traitlets.Unicode("")
    exit_code = traitlets.Int(0)

    def __init__(self, engine: Any, **kwargs: Any) -> None:
        self._engine = engine
        self._list = widgets.Select(rows=6, layout=widgets.Layout(width="100%"))
        self._history = widgets.HTML()
        self._explore = widgets.Button(description="Explore layers", icon="search")
        self._command = widgets.Text(placeholder="command, e.g. ls /", layout=widgets.Layout(width="50%"))
        self._run = widgets.Button(description="Run", icon="play")
        self._output = widgets.HTML()
        self.explorer_box = widgets.VBox()
        super().__init__(children=[self._list, self._history, widgets.HBox([self._explore, self._command, self._run]),
                                   self._output, self.explorer_box], **kwargs)
        self.add_class("layerlab-imagebrowser")
        widgets.link((self._command, "value"), (self, "command"))
        self._list.observe(self._picked, names="value")
        self.observe(self._show_history, names="selected")
        self._explore.on_click(lambda _: self.explore() if self.selected else None)
        self._run.on_click(lambda _: self.run())
        self.refresh()

    def refresh(self) -> None:
        """Re-read the image list from the store."""
        rows = []
        for s in self._engine.images(all=False):
            rows.append({"id": s.id, "tags": list(s.repo_tags), "size": s.size})
        self.images = rows
        options = [(f"{', '.join(r['tags']) or '<none>'}   {r['id'][7:19]}   {human_size(r['size'])}", r["id"])
                   for r in rows]
        self._list.options = options
        if rows and self.selected not in {r["id"] for r in rows}:
            self._list.value = rows[0]["id"]

    def _picked(self, change: Any) -> None:
        if change["new"]:
            self.selected = change["new"]

    def _show_history(self, change: Any = None) -> None:
        from engine.images import history

        rows = history(self._engine.store, self.selected) if self.selected else []
        lines = [f"{'IMAGE':<14}{'SIZE':>10}  CREATED BY"]
        for r in rows:
            ident = r.id[7:19] if r.id.startswith("sha256:") else r.id
            lines.append(f"{ident:<14}{human_size(r.size):>10}  {r.created_by or r.comment}")
        self.history_text = "\n".join(lines)
        self._history.value = _pre(self.history_text)

    def explore(self) -> "LayerExplorer":
        """Open the layer explorer for the selected image (below the buttons)."""
        if not self.selected:
            raise ValueError("no image selected")
        explorer = LayerExplorer(self._engine, self.selected)
        self.explorer_box.children = (explorer,)
        return explorer

    def run(self) -> int:
        """``docker run --rm IMAGE COMMAND`` for the selected image; shows and returns its exit code."""
        from engine.runtime.manager import RunOptions

        chunks: list[bytes] = []
        try:
            argv = tuple(shlex.split(self.command))
            _, code = self._engine.run(RunOptions(image=self.selected, command=argv, auto_remove=True),
                                       output=lambda stream, data: chunks.append(bytes(data)))
        except Exception as e:  # the student sees the message, as the CLI would print it
            chunks.append(f"{e}\n".encode())
            code = 125
        self.exit_code = code
        self.run_output = b"".join(chunks).decode(errors="replace")
        self._output.value = _pre(self.run_output + (f"\n[exit code {code}]" if code else ""))
        return code
