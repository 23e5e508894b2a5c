"""dive's analysis of an image: per-layer file trees with A/M/D marks, wasted bytes and efficiency.

The numbers follow dive (github.com/wagoodman/dive, ``dive/filetree/efficiency.go`` and
``dive/image/analysis.go``) exactly:

* each layer is a tree of its tar's entries (``path.Clean`` names, missing parents added as empty
  nodes, opaque-whiteout markers ``.wh..wh.*`` ignored); a layer's size is the sum of its entries' tar
  sizes;
* every *leaf* of every layer is visited (layers bottom-up, names sorted, children first). Its size is
  its tar size; a whiteout leaf (``.wh.name``) counts the total size of what it removes when that was
  a directory in the layers below, else 0; a whiteout of a path that does not exist below stops
  that layer's visit (dive returns the error from the visitor) and leaves the path with dive's
  initial minimum of -1;
* per path: cumulative size (sum over visits) and minimum size; ``efficiency`` = sum of minimums /
  sum of cumulative sizes (1.0 when nothing was seen); paths seen in two or more layers are the
  *inefficiencies*, and ``wasted_bytes`` is the sum of their cumulative sizes;
* ``user_size_bytes`` is the size of every layer but the first; ``wasted_user_percent`` = wasted / user.

>>> a = analyze(Engine().store, Engine().image_id("busybox"))   # doctest: +SKIP
>>> a.efficiency, a.wasted_bytes                                  # doctest: +SKIP
(1.0, 0)
"""
from __future__ import annotations

import hashlib
import posixpath
import tarfile
from collections.abc import Iterable

from .store import Store
from .values import field, value

WHITEOUT = ".wh."
META_WHITEOUT = ".wh..wh."

Key = tuple[str, ...]          # raw tar names from the root, e.g. ("etc", ".wh.passwd")


@value
class FileInfo:
    """What dive keeps of a tar entry (an implicit parent directory has the empty default)."""

    kind: str = ""             # file | dir | symlink | hardlink | char | block | fifo | "" (implicit)
    size: int = 0
    mode: int = 0
    uid: int = 0
    gid: int = 0
    hash: str = ""
    linkname: str = ""

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"


def display_path(key: Key) -> str:
    """dive's ``node.Path()``: every component without its whiteout prefix."""
    return "/" + "/".join(n[len(WHITEOUT):] if n.startswith(WHITEOUT) else n for n in key)


def is_whiteout(key: Key) -> bool:
    return bool(key) and key[-1].startswith(WHITEOUT)


@value(frozen=False)
class LayerTree:
    """One layer's file tree: raw keys to file infos, plus the sum of its entries' sizes."""

    nodes: dict[Key, FileInfo] = field(default_factory=dict)
    file_size: int = 0

    def add(self, name: str, info: FileInfo) -> None:
        """dive's ``processLayerTar`` step for one entry (``FileSize`` counts even ignored ones)."""
        self.file_size += info.size
        name = posixpath.normpath(name) if name else "."
        if name == ".":
            return
        _add_path(self.nodes, tuple(p for p in name.strip("/").split("/") if p), info)

    @classmethod
    def from_entries(cls, entries: Iterable[tuple[str, FileInfo]]) -> "LayerTree":
        tree = cls()
        for name, info in entries:
            tree.add(name, info)
        return tree

    def leaves(self) -> list[Key]:
        parents = {k[:-1] for k in self.nodes}
        return sorted(k for k in self.nodes if k not in parents)

    def children_first(self) -> list[Key]:
        """Every node in dive's ``VisitDepthChildFirst`` order (names sorted, children before parents)."""
        return _post_order(self.nodes)


def _post_order(nodes: dict[Key, FileInfo]) -> list[Key]:
    children: dict[Key, list[Key]] = {}
    for k in nodes:
        children.setdefault(k[:-1], []).append(k)
    out: list[Key] = []

    def visit(k: Key) -> None:
        for c in sorted(children.get(k, ())):
            visit(c)
        if k:
            out.append(k)

    visit(())
    return out


def _add_path(nodes: dict[Key, FileInfo], names: Key, info: FileInfo) -> None:
    """dive's ``FileTree.AddPath``: create missing parents empty; stop at a ``.wh..wh.`` name."""
    for i in range(1, len(names) + 1):
        key = names[:i]
        if key not in nodes:
            if names[i - 1].startswith(META_WHITEOUT):
                return
            nodes[key] = FileInfo()
        if i == len(names):
            nodes[key] = info


def _lookup(nodes: dict[Key, FileInfo], path: str) -> Key | None:
    key = tuple(p for p in path.strip("/").split("/") if p)
    return key if key in nodes or not key else None


def _stack(lower: dict[Key, FileInfo], upper: LayerTree) -> None:
    """dive's ``FileTree.Stack``: whiteouts remove their path (and below), other nodes are added."""
    for key in _post_order(upper.nodes):
        path = display_path(key)
        if is_whiteout(key):
            target = _lookup(lower, path)
            if target:
                for k in [k for k in lower if k[: len(target)] == target]:
                    del lower[k]
        else:
            _add_path(lower, tuple(p for p in path.strip("/").split("/") if p), upper.nodes[key])


@value
class Inefficiency:
    """A path seen in several layers: how often and its cumulative size."""

    path: str
    count: int
    cumulative_size: int


def efficiency(trees: list[LayerTree]) -> tuple[float, tuple[Inefficiency, ...]]:
    """dive's ``filetree.Efficiency``: the score and the paths that appear in more than one layer."""
    cumulative: dict[str, int] = {}
    minimum: dict[str, int] = {}
    counts: dict[str, int] = {}
    stacked: dict[Key, FileInfo] = dict(trees[0].nodes) if trees else {}
    for index, tree in enumerate(trees):
        if index > 0:  # dive's StackTreeRange(trees, 0, index-1): a copy of layer 0, then layers 0…index-1
            _stack(stacked, trees[index - 1])
        for key in tree.leaves():
            path = display_path(key)
            cumulative.setdefault(path, 0)
            minimum.setdefault(path, -1)
            counts.setdefault(path, 0)
            if is_whiteout(key):
                target = _lookup(stacked, path)
                if target is None:
                    break  # dive: GetNode fails, the visitor's error ends this layer's walk
                size = 0
                if target and stacked[target].is_dir:
                    size = sum(info.size for k, info in stacked.items() if k[: len(target)] == target)
            else:
                size = tree.nodes[key].size
            cumulative[path] += size
            if minimum[path] < 0 or size < minimum[path]:
                minimum[path] = size
            counts[path] += 1
    total = sum(cumulative.values())
    score = 1.0 if total == 0 else sum(minimum.values()) / total
    waste = sorted((Inefficiency(p, counts[p], cumulative[p]) for p in counts if counts[p] >= 2),
                   key=lambda x: (x.cumulative_size, x.path))
    return score, tuple(waste)


# --- layers from the store -------------------------------------------------------------------------

_KINDS = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file", tarfile.DIRTYPE: "dir",
          tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink", tarfile.CHRTYPE: "char",
          tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo"}


def read_layer(stream) -> LayerTree:
    """A layer tree from an (uncompressed) layer tar stream; file contents are hashed, not kept."""
    tree = LayerTree()
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            digest = ""
            if member.isreg():
                h = hashlib.sha256()
                f = tar.extractfile(member)
                if f is not None:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
                digest = h.hexdigest()
            kind = _KINDS.get(member.type, "file")
            tree.add(member.name, FileInfo(kind, member.size, member.mode, member.uid, member.gid, digest,
                                           member.linkname))
    return tree


@value
class LayerInfo:
    """One layer as dive lists it: index, DiffID, size (sum of tar entry sizes) and command."""

    index: int
    diff_id: str
    size: int
    command: str


@value
class ImageAnalysis:
    """dive's ``Analysis`` of an image, with the layer trees for the file views."""

    image_id: str
    layers: tuple[LayerInfo, ...]
    trees: tuple[LayerTree, ...] = field(repr=False, compare=False)
    efficiency: float
    size_bytes: int
    user_size_bytes: int
    wasted_bytes: int
    wasted_user_percent: float
    inefficiencies: tuple[Inefficiency, ...]


def layer_commands(history: Iterable, n_layers: int) -> list[str]:
    """dive's pairing of layers with non-empty history entries (``(missing)`` when there is none)."""
    out = [h.created_by.removeprefix("/bin/sh -c ") for h in history if not h.empty_layer]
    return (out + ["(missing)"] * n_layers)[:n_layers]


def analyze_trees(image_id: str, diff_ids: list[str], trees: list[LayerTree], commands: list[str]) -> ImageAnalysis:
    score, waste = efficiency(trees)
    layers = tuple(LayerInfo(i, d, t.file_size, c) for i, (d, t, c) in enumerate(zip(diff_ids, trees, commands)))
    size = sum(t.file_size for t in trees)
    user = sum(t.file_size for t in trees[1:])
    wasted = sum(w.cumulative_size for w in waste)
    if user:
        percent = wasted / user
    else:
        percent = float("nan") if wasted == 0 else float("inf")   # Go's float division by zero
    return ImageAnalysis(image_id, layers, tuple(trees), score, size, user, wasted, percent, waste)


def analyze(store: Store, image_id: str) -> ImageAnalysis:
    """dive's analysis of a stored image (its layer tars are read from the store)."""
    from .images import load_config

    config = load_config(store, image_id)
    trees = []
    for diff_id in config.diff_ids:
        with store.open_blob(diff_id) as f:
            trees.append(read_layer(f))
    return analyze_trees(image_id, list(config.diff_ids), trees,
                         layer_commands(config.history, len(config.diff_ids)))


# --- the views: file trees with marks ---------------------------------------------------------------

ADDED, MODIFIED, REMOVED, UNMODIFIED = "A", "M", "D", ""


@value
class FileNode:
    """A node of a displayed tree: ``size`` counts its own bytes and everything below it."""

    name: str
    path: str
    kind: str
    size: int
    mark: str
    children: tuple["FileNode", ...] = ()

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()

    def find(self, path: str) -> "FileNode | None":
        return next((n for n in self.walk() if n.path == path), None)


def _same(a: FileInfo, b: FileInfo) -> bool:
    return (a.kind, a.hash, a.mode, a.uid, a.gid, a.linkname) == (b.kind, b.hash, b.mode, b.uid, b.gid, b.linkname)


def layer_marks(lower: dict[Key, FileInfo], layer: LayerTree) -> dict[str, str]:
    """A/M/D (or "") for every path a layer touches, relative to the stacked layers below (dive's rules)."""
    marks: dict[str, str] = {}
    children: dict[str, list[str]] = {}
    for key in _post_order(layer.nodes):  # children first, so directories can merge their children
        path = display_path(key)
        if is_whiteout(key):
            marks[path] = REMOVED
        elif _lookup(lower, path) is None:
            marks[path] = ADDED
        else:
            own = UNMODIFIED if _same(lower[_lookup(lower, path)], layer.nodes[key]) else MODIFIED
            for child in children.get(path, ()):  # dive's deriveDiffType: equal marks stay, mixed ones are M
                own = own if marks[child] == own else MODIFIED
            marks[path] = own
        parent = posixpath.dirname(path)
        children.setdefault(parent, []).append(path)
    return marks


def _build(entries: dict[str, tuple[str, int]], marks: dict[str, str]) -> FileNode:
    """A FileNode tree from display paths to (kind, own size)."""
    kids: dict[str, list[str]] = {}
    for path in entries:
        kids.setdefault(posixpath.dirname(path), []).append(path)

    def node(path: str) -> FileNode:
        children = tuple(node(c) for c in sorted(kids.get(path, ())))
        kind, own = entries.get(path, ("dir", 0))
        return FileNode(posixpath.basename(path) or "/", path, kind, own + sum(c.size for c in children),
                        marks.get(path, UNMODIFIED), children)

    return node("/")


def _stacked_below(analysis: ImageAnalysis, index: int) -> dict[Key, FileInfo]:
    stacked: dict[Key, FileInfo] = {}
    for tree in analysis.trees[:index]:
        _stack(stacked, tree)
    return stacked


def layer_tree(analysis: ImageAnalysis, index: int) -> FileNode:
    """The files of layer ``index`` alone, marked A/M/D against the layers below it."""
    layer = analysis.trees[index]
    marks = layer_marks(_stacked_below(analysis, index), layer)
    entries = {display_path(k): ("whiteout" if is_whiteout(k) else (i.kind or "dir"), i.size)
               for k, i in layer.nodes.items()}
    return _build(entries, marks)


def aggregated_tree(analysis: ImageAnalysis, index: int | None = None) -> FileNode:
    """The file system seen by layer ``index`` (default: the top), marked with that layer's changes;
    files it removes stay in the tree, marked D."""
    if index is None:
        index = len(analysis.trees) - 1
    below = _stacked_below(analysis, index)
    layer = analysis.trees[index]
    marks = layer_marks(below, layer)
    entries = {display_path(k): (i.kind or "dir", i.size) for k, i in below.items()}
    for path in [p for p, m in marks.items() if m == REMOVED]:
        for p in entries:  # what was removed keeps showing (with its size) under the D mark
            if p.startswith(path + "/"):
                marks[p] = REMOVED
    above = dict(below)
    _stack(above, layer)
    for k, i in above.items():
        entries[display_path(k)] = (i.kind or "dir", i.size)
    return _build(entries, marks)


def tree_lines(root: FileNode, *, max_lines: int = 2000) -> list[str]:
    """``A  1.2kB  etc/passwd`` lines (indented two spaces a level), for text views."""
    from .format import human_size

    out: list[str] = []

    def visit(node: FileNode, depth: int) -> None:
        if len(out) >= max_lines:
            return
        if depth >= 0:
            name = node.name + ("/" if node.children or node.kind == "dir" else "")
            out.append(f"{node.mark or ' '} {human_size(node.size):>8}  {'  ' * depth}{name}")
        for c in node.children:
            visit(c, depth + 1)

    visit(root, -1)
    if len(out) >= max_lines:
        out.append(f"… (more than {max_lines} entries)")
    return out
