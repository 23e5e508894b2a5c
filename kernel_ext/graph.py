"""The layer graph drawn with Graphviz: DOT text, SVG from Debian's ``dot``, a static result, a live widget.

>>> from engine import Engine
>>> from kernel_ext.graph import LiveGraph, render_svg
>>> svg = render_svg(Engine())          # doctest: +SKIP   (the same store gives the same bytes)
>>> LiveGraph(Engine())                 # doctest: +SKIP   (in a notebook: redraws after every change)

Edges in :mod:`engine.graph` read "src sits on dst"; the DOT file draws bottom to top
(``rankdir=BT``), so each edge is written ``dst -> src`` with the arrow turned back at ``dst``.
Colours are mid-tone fills with dark text and grey lines on a transparent background, readable
in JupyterLab's light and dark themes alike.
"""
from __future__ import annotations

import html
import shutil
import subprocess
import threading
from typing import Any

import ipywidgets as widgets
import traitlets

from engine.graph import LayerGraph, Node, layer_graph

DOT_BINARY = "/usr/bin/dot"
DEBOUNCE_SECONDS = 0.15

GRID = "#8c8c8c"            # cluster borders, edges, cluster titles: grey reads on white and on black
TEXT = "#1b1b1b"            # node text, always on a light fill
FILLS = {"bootfs": "#c9c9c9", "layer": "#b9d3ee", "image": "#f3dc8f", "tag": "#f6ead0",
         "container": "#d5c4ec", "repo": "#bfe3e0"}
MARKS = {"cached": ("#7fc97f", "#2e7d32"), "ran": ("#fdae61", "#c0501a"), "pushed": ("", "#1f6fb2")}
SHAPES = {"bootfs": "box", "layer": "box", "image": "box", "tag": "cds", "container": "box3d", "repo": "folder"}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _node_line(node: Node) -> str:
    fill = FILLS[node.kind]
    border, width, style = GRID, "1", "rounded,filled" if node.kind in ("layer", "image", "bootfs") else "filled"
    if node.mark in MARKS:
        mark_fill, border = MARKS[node.mark]
        fill = mark_fill or fill
        width = "2"
    label = "\n".join(node.label + ((f"[{node.mark}]",) if node.mark else ()))
    return (f"    {_quote(node.id)} [label={_quote(label)}, shape={SHAPES[node.kind]}, style={_quote(style)}, "
            f"fillcolor={_quote(fill)}, color={_quote(border)}, penwidth={width}];")


def to_dot(graph: LayerGraph) -> str:
    """Graphviz DOT text for ``graph``: bottom-to-top, one cluster per part (bootfs, layers, …)."""
    lines = [
        "digraph layers {",
        f'    graph [rankdir=BT, bgcolor="transparent", fontname="Helvetica", fontsize=11, fontcolor="{GRID}", '
        'nodesep=0.2, ranksep=0.3, newrank=true];',
        f'    node [fontname="Helvetica", fontsize=9, fontcolor="{TEXT}", margin="0.08,0.03", height=0.3];',
        f'    edge [color="{GRID}", arrowsize=0.6];',
    ]
    by_id = {n.id: n for n in graph.nodes}
    for cluster in graph.clusters:
        lines.append(f"    subgraph cluster_{cluster.id} {{")
        # labelloc="b" puts the title on top: rankdir=BT turns the drawing upside down
        lines.append(f'        label={_quote(cluster.label)}; labelloc="b"; style="rounded,dashed"; color="{GRID}";')
        for node_id in cluster.nodes:
            lines.append("    " + _node_line(by_id[node_id]))
        lines.append("    }")
    for e in graph.edges:
        style = ', style="dashed"' if e.kind in ("tag", "repo") else ""
        lines.append(f"    {_quote(e.dst)} -> {_quote(e.src)} [dir=back{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_to_svg(dot_text: str) -> str:
    """Run Debian's ``dot -Tsvg``; the SVG document as text."""
    binary = DOT_BINARY if shutil.which(DOT_BINARY) else shutil.which("dot")
    if not binary:
        from engine.errors import EngineError

        raise EngineError("graphviz's dot is not installed (apt-get install graphviz)")
    done = subprocess.run([binary, "-Tsvg"], input=dot_text.encode(), capture_output=True, check=False)
    if done.returncode != 0:
        from engine.errors import EngineError

        raise EngineError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode()


def render_svg(engine: Any) -> str:
    """The live layer graph of ``engine``'s store as SVG text (same store, same bytes)."""
    return dot_to_svg(to_dot(layer_graph(engine.store)))


def inline_svg(svg: str) -> str:
    """The ``<svg>`` element alone, without the XML prologue, for embedding in HTML."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


class StaticGraph:
    """A drawn graph as a notebook result (renders as SVG; ``.dot`` holds its source)."""

    def __init__(self, dot: str, svg: str) -> None:
        self.dot = dot
        self.svg = svg

    @classmethod
    def of(cls, engine: Any) -> "StaticGraph":
        dot = to_dot(layer_graph(engine.store))
        return cls(dot, dot_to_svg(dot))

    def _repr_svg_(self) -> str:
        return self.svg

    def _repr_html_(self) -> str:
        return f'<div class="layerlab-graph">{inline_svg(self.svg)}</div>'

    def __repr__(self) -> str:
        return f"<StaticGraph: {self.dot.count(' -> ')} edges>"


class LiveGraph(widgets.VBox):
    """The layer graph as a widget that redraws itself (debounced, off the event thread) after engine events.

    ``svg`` holds the current drawing; ``redraws`` counts them. ``close()`` (or ``unsubscribe()``) stops it.
    """

    svg = traitlets.Unicode("").tag(sync=False)
    redraws = traitlets.Int(0)
    error = traitlets.Unicode("")

    def __init__(self, engine: Any, *, debounce: float = DEBOUNCE_SECONDS, **kwargs: Any) -> None:
        self._engine = engine
        self._debounce = debounce
        self._view = widgets.HTML(layout=widgets.Layout(overflow="auto"))
        self._view.add_class("layerlab-live-graph")
        super().__init__(children=[self._view], **kwargs)
        self.add_class("layerlab-graph-widget")
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._draw_lock = threading.Lock()
        self._unsubscribe = engine.subscribe(self._on_event)
        self.redraw()

    def _on_event(self, event: Any) -> None:
        """Engine listener: schedule one redraw shortly after a burst of events."""
        with self._lock:
            if self._unsubscribe is None or self._timer is not None:
                return
            self._timer = threading.Timer(self._debounce, self._timer_fired)
            self._timer.daemon = True
            self._timer.start()

    def _timer_fired(self) -> None:
        with self._lock:
            self._timer = None
        self.redraw()

    def redraw(self) -> None:
        """Draw the store as it is now (called for you after events)."""
        with self._draw_lock:
            try:
                svg = render_svg(self._engine)
            except Exception as e:  # a widget shows the problem instead of dying in a thread
                self.error = str(e)
                self._view.value = f"<pre>{html.escape(str(e))}</pre>"
                return
            self.error = ""
            if svg != self.svg:
                self.svg = svg
                self._view.value = inline_svg(svg)
            self.redraws += 1

    def flush(self) -> None:
        """Run a pending redraw now (tests and notebooks that want the drawing before going on)."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            self.redraw()

    def unsubscribe(self) -> None:
        """Stop following the engine's events (the last drawing stays)."""
        with self._lock:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        if unsubscribe is not None:
            unsubscribe()

    def close(self) -> None:
        self.unsubscribe()
        self._view.close()
        super().close()
