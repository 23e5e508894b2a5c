"""The layer graph as plain data: nodes, edges and clusters, derived from a :class:`~engine.store.Store`.

From the bottom up: the host kernel (``bootfs``), the layers (one node per ChainID, so a layer shared by
several images is drawn once), the images pointing at their top layer, their tags, the containers
whose writable layer sits on their image, and the registry repositories that hold an image (from
the store's repo digests: ``pushed`` when this store pushed them, else ``pulled``). The last build's
steps (``last_build`` in the store's kv table, recorded by :func:`record_last_build`) mark layers and
images as ``cached`` or ``ran``.

Every edge reads "``src`` sits on / points at ``dst``"; renderers draw ``dst`` below ``src``.
Nothing here depends on time: the same store gives the same graph, in the same order.

>>> from engine import Engine
>>> g = layer_graph(Engine("/tmp/ll-doc-home").store)     # doctest: +SKIP
>>> [n.id for n in g.nodes if n.kind == "bootfs"]         # doctest: +SKIP
['bootfs']
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from .digest import chain_ids, hex_of
from .errors import EngineError
from .format import human_size
from .store import Store
from .values import field, replace, value

LAST_BUILD_KEY = "last_build"
PUSHED_KEY = "registry.pushed"  # written by engine.registry.transfer.mark_pushed

#: cluster ids, bottom to top, with their titles
CLUSTERS: tuple[tuple[str, str], ...] = (
    ("bootfs", "host kernel (bootfs)"),
    ("layers", "image layers (read-only)"),
    ("images", "images and tags"),
    ("containers", "containers (writable layers)"),
    ("registry", "registry repositories"),
)
COMMAND_WIDTH = 40


@value
class Node:
    """One box of the graph. ``label`` holds its text lines; ``mark`` is ``cached``/``ran``/``pushed``/``""``."""

    id: str
    kind: str                     # bootfs | layer | image | tag | container | repo
    label: tuple[str, ...]
    cluster: str
    mark: str = ""
    ref: str = ""                 # the full ChainID / image ID / container ID / reference it stands for
    size: int = 0


@value
class Edge:
    """``src`` sits on (or points at) ``dst``: layer→parent layer, image→top layer, tag→image, …"""

    src: str
    dst: str
    kind: str                     # on | top | tag | container | repo


@value
class Cluster:
    id: str
    label: str
    nodes: tuple[str, ...]


@value
class LayerGraph:
    """The whole graph; ``node(id)`` and ``edges_from(id)`` for lookups."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    clusters: tuple[Cluster, ...]
    _index: dict = field(default_factory=dict, compare=False, repr=False)

    def node(self, node_id: str) -> Node:
        if not self._index:
            self._index.update({n.id: n for n in self.nodes})
        return self._index[node_id]

    def has_node(self, node_id: str) -> bool:
        return any(n.id == node_id for n in self.nodes)

    def edges_from(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.src == node_id]

    def of_kind(self, kind: str) -> list[Node]:
        return [n for n in self.nodes if n.kind == kind]


# --- the last build ---------------------------------------------------------------------------------

@value
class StepResult:
    """One step of the last build: ``status`` is ``from``, ``cached`` or ``ran``."""

    number: int
    text: str
    status: str
    image_id: str
    seconds: float = 0.0


@value
class LastBuild:
    steps: tuple[StepResult, ...]
    image_id: str = ""
    failed: bool = False

    def to_json(self) -> str:
        return json.dumps({"steps": [s.__dict__ for s in self.steps], "image_id": self.image_id,
                           "failed": self.failed}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "LastBuild":
        d = json.loads(text)
        steps = tuple(StepResult(int(s["number"]), str(s["text"]), str(s["status"]), str(s["image_id"]),
                                 float(s.get("seconds", 0.0))) for s in d.get("steps", ()))
        return cls(steps, str(d.get("image_id", "")), bool(d.get("failed", False)))


def load_last_build(store: Store) -> LastBuild | None:
    text = store.get_kv(LAST_BUILD_KEY)
    if not text:
        return None
    try:
        return LastBuild.from_json(text)
    except (ValueError, KeyError, TypeError):
        return None


def record_last_build(store: Store, events: Iterable) -> Iterator:
    """Pass builder events through, remembering each step's result in ``store`` kv ``last_build``."""
    steps: list[StepResult] = []
    text, cached, saved = "", False, False
    try:
        for event in events:
            name = type(event).__name__
            if name == "StepStarted":
                text, cached = event.text, False
            elif name == "CacheHit":
                cached = True
            elif name == "StepDone":
                is_from = text.split(None, 1)[0].upper() == "FROM" if text.strip() else False
                status = "cached" if cached else ("from" if is_from else "ran")
                steps.append(StepResult(event.number, text, status, event.image_id, round(event.seconds, 3)))
            elif name in ("Built", "BuildFailed"):
                # saved before the tag events, so a live graph redrawing after them sees the marks
                image_id, failed = getattr(event, "image_id", ""), name == "BuildFailed"
                store.set_kv(LAST_BUILD_KEY, LastBuild(tuple(steps), image_id, failed).to_json())
                saved = True
            yield event
    finally:
        if steps and not saved:  # an interrupted build: what it did so far
            store.set_kv(LAST_BUILD_KEY, LastBuild(tuple(steps), "", True).to_json())


# --- building the graph -----------------------------------------------------------------------------

def short(digest: str) -> str:
    return hex_of(digest)[:12]


def command_of(created_by: str, width: int = COMMAND_WIDTH) -> str:
    """A history ``created_by`` shortened the way ``docker history`` shows it, without the shell prefix."""
    text = " ".join(created_by.split())
    for prefix in ("/bin/sh -c #(nop) ", "/bin/sh -c "):
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    return text if len(text) <= width else text[: width - 1] + "…"


def _layer_commands(store: Store, image_id: str, n_layers: int) -> list[str]:
    """The command that created each non-empty layer of an image (from its config's history)."""
    from .images import load_config

    try:
        config = load_config(store, image_id)
    except (EngineError, OSError):  # a config that cannot be read still gets its layers drawn
        return [""] * n_layers
    out = [h.created_by or h.comment for h, d in config.layer_history() if d is not None]
    return (out + [""] * n_layers)[:n_layers]


def _container_status(row) -> str:
    state = row["state"]
    if state == "exited":
        try:
            code = json.loads(row["data"]).get("exit_code")
        except ValueError:
            code = None
        return f"Exited ({code})" if code is not None else "Exited"
    return {"running": "Up", "created": "Created", "paused": "Paused"}.get(state, state.capitalize())


def layer_graph(store: Store, *, last_build: LastBuild | None = None) -> LayerGraph:
    """The layer graph of everything in ``store`` (``last_build`` defaults to the one it recorded)."""
    from .reference import parse

    if last_build is None:
        last_build = load_last_build(store)
    nodes: dict[str, Node] = {"bootfs": Node("bootfs", "bootfs", ("bootfs", "host kernel"), "bootfs")}
    edges: set[Edge] = set()

    images = sorted(store.images(), key=lambda r: r.id)
    sizes = {row.diff_id: row.size for row in store.layers()}
    image_chains: dict[str, list[str]] = {}
    for row in images:
        diff_ids = store.image_diff_ids(row.id)
        chains = chain_ids(diff_ids)
        image_chains[row.id] = chains
        commands: list[str] | None = None
        below = "bootfs"
        for i, (diff_id, chain) in enumerate(zip(diff_ids, chains)):
            node_id = "L" + short(chain)
            if node_id not in nodes:
                if commands is None:
                    commands = _layer_commands(store, row.id, len(diff_ids))
                size = sizes.get(diff_id, 0)
                cmd = command_of(commands[i])
                nodes[node_id] = Node(node_id, "layer", (short(diff_id), human_size(size), cmd), "layers",
                                      ref=chain, size=size)
            edges.add(Edge(node_id, below, "on"))
            below = node_id
        image_node = "I" + short(row.id)
        nodes[image_node] = Node(image_node, "image", (f"image {short(row.id)}", human_size(row.size)),
                                 "images", ref=row.id, size=row.size)
        edges.add(Edge(image_node, below, "top"))

    tag_images: dict[str, str] = {}
    for t in sorted(store.tags(), key=lambda t: t.ref):
        if ("I" + short(t.image_id)) not in nodes:
            continue
        familiar = parse(t.ref).familiar
        node_id = "T" + familiar
        nodes[node_id] = Node(node_id, "tag", (familiar,), "images", ref=t.ref)
        tag_images[node_id] = t.image_id
        edges.add(Edge(node_id, "I" + short(t.image_id), "tag"))

    # what this store pushed (engine.registry.transfer records it); other repo digests were pulled
    try:
        pushed = json.loads(store.get_kv(PUSHED_KEY) or "{}")
    except ValueError:
        pushed = {}
    pushed_images: dict[str, set[str]] = {}
    for key, info in pushed.items():
        if isinstance(info, dict):
            pushed_images.setdefault(str(info.get("image_id", "")), set()).add(key.rpartition(":")[0])
    for d in store.repo_digests():
        if ("I" + short(d.image_id)) not in nodes:
            continue
        ref = parse(d.ref)
        node_id = "R" + ref.familiar
        mark = "pushed" if ref.repository in pushed_images.get(d.image_id, ()) else "pulled"
        nodes[node_id] = Node(node_id, "repo", (ref.familiar_repository, "@" + short(d.manifest_digest)),
                              "registry", mark=mark, ref=d.ref)
        edges.add(Edge(node_id, "I" + short(d.image_id), "repo"))
    # a tag this store pushed (and whose image is still the one pushed) is marked pushed
    for node_id, image_id in tag_images.items():
        ref = parse(nodes[node_id].ref)
        info = pushed.get(f"{ref.repository}:{ref.tag}")
        if isinstance(info, dict) and info.get("image_id") == image_id:
            nodes[node_id] = _marked(nodes[node_id], "pushed")

    for row in sorted(store.container_rows(), key=lambda r: r["id"]):
        image_node = "I" + short(row["image_id"])
        node_id = "C" + row["id"][:12]
        nodes[node_id] = Node(node_id, "container", (row["name"], _container_status(row), row["id"][:12]),
                              "containers", ref=row["id"])
        edges.add(Edge(node_id, image_node if image_node in nodes else "bootfs", "container"))

    if last_build is not None:
        _mark_build(nodes, last_build, image_chains)

    order = {c: i for i, (c, _) in enumerate(CLUSTERS)}
    ordered = tuple(sorted(nodes.values(), key=lambda n: (order[n.cluster], n.id)))
    clusters = tuple(Cluster(cid, title, tuple(n.id for n in ordered if n.cluster == cid))
                     for cid, title in CLUSTERS if any(n.cluster == cid for n in ordered))
    return LayerGraph(ordered, tuple(sorted(edges, key=lambda e: (e.src, e.dst, e.kind))), clusters)


def _marked(node: Node, mark: str) -> Node:
    return replace(node, mark=mark)


def _mark_build(nodes: dict[str, Node], build: LastBuild, image_chains: dict[str, list[str]]) -> None:
    """Mark the images of the last build's steps, and the layers those steps created, cached or ran."""
    previous: list[str] | None = None
    for step in build.steps:
        chains = image_chains.get(step.image_id) if step.image_id else []
        if chains is None:  # the image was deleted since
            previous = None
            continue
        if step.status in ("cached", "ran"):
            image_node = "I" + short(step.image_id)
            if image_node in nodes:
                nodes[image_node] = _marked(nodes[image_node], step.status)
            if previous is not None and len(chains) > len(previous) and chains[: len(previous)] == previous:
                for chain in chains[len(previous):]:
                    layer_node = "L" + short(chain)
                    if layer_node in nodes:
                        nodes[layer_node] = _marked(nodes[layer_node], step.status)
        previous = chains
