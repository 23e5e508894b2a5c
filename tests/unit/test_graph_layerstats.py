"""dive's efficiency and wasted bytes (engine.layerstats) on hand-built layers.

Every expected number is worked out by hand in the test from dive's rules (efficiency.go): per path
the cumulative size over the layers that show it as a leaf, and the smallest size seen; efficiency =
sum(min) / sum(cumulative); wasted bytes = cumulative size of the paths seen in two or more layers.
"""
from __future__ import annotations

import math

import pytest

from engine.images import add_layer_from_entries, register_config, rfc3339
from engine.layer import Entry
from engine.layerstats import FileInfo, LayerTree, aggregated_tree, analyze, analyze_trees, efficiency, layer_tree
from engine.spec import ContainerConfig, History, ImageConfig, host_platform
from engine.store import Store


def f(size: int, content: str = "") -> FileInfo:
    return FileInfo("file", size, 0o644, 0, 0, content or f"h{size}")


D = FileInfo("dir", 0, 0o755)
WH = FileInfo("file", 0, 0o644)   # a whiteout entry is an empty regular file


def tree(*entries: tuple[str, FileInfo]) -> LayerTree:
    return LayerTree.from_entries(entries)


def test_one_layer_is_fully_efficient() -> None:
    score, waste = efficiency([tree(("bin", D), ("bin/sh", f(100)), ("etc", D), ("etc/passwd", f(20)))])
    assert score == 1.0
    assert waste == ()


def test_overwritten_file_is_waste() -> None:
    # /a: 100 then 30 -> cumulative 130, min 30; /b: 50 once
    trees = [tree(("a", f(100)), ("b", f(50))), tree(("a", f(30, "new")))]
    score, waste = efficiency(trees)
    assert score == pytest.approx((30 + 50) / (130 + 50))
    assert [(w.path, w.count, w.cumulative_size) for w in waste] == [("/a", 2, 130)]
    a = analyze_trees("img", ["l0", "l1"], trees, ["base", "overwrite"])
    assert (a.size_bytes, a.user_size_bytes, a.wasted_bytes) == (180, 30, 130)
    assert a.wasted_user_percent == pytest.approx(130 / 30)


def test_deleted_file_counts_its_whole_size() -> None:
    # /a: 100, then a whiteout (size 0) -> cumulative 100, min 0
    score, waste = efficiency([tree(("a", f(100)), ("keep", f(300))), tree((".wh.a", WH))])
    assert score == pytest.approx(300 / 400)
    assert [(w.path, w.cumulative_size) for w in waste] == [("/a", 100)]


def test_deleted_directory_counts_once_so_no_waste() -> None:
    # dive sizes the whiteout of a directory with everything below it (0 + 10 + 20), but /d itself was
    # never a leaf before, so it is seen once: cumulative 30 = min 30, and nothing is wasted
    trees = [tree(("d", D), ("d/x", f(10)), ("d/y", f(20)), ("k", f(5))), tree((".wh.d", WH))]
    score, waste = efficiency(trees)
    assert score == 1.0
    assert waste == ()


def test_empty_directory_twice_is_an_inefficiency_of_zero_bytes() -> None:
    score, waste = efficiency([tree(("e", D), ("f", f(4))), tree(("e", D))])
    assert score == 1.0
    assert [(w.path, w.count, w.cumulative_size) for w in waste] == [("/e", 2, 0)]


def test_whiteout_of_missing_path_ends_the_layer_walk() -> None:
    # ".wh.nothere" sorts before "b": dive's GetNode fails there, so "b" (7 bytes) is never counted and
    # /nothere keeps dive's initial minimum of -1: (10 - 1) / 10
    trees = [tree(("a", f(10))), tree((".wh.nothere", WH), ("b", f(7)))]
    score, waste = efficiency(trees)
    assert score == pytest.approx(9 / 10)
    assert waste == ()
    assert trees[1].file_size == 7        # the layer's size still counts every entry


def test_opaque_marker_is_ignored() -> None:
    # the opaque marker adds nothing; "d" becomes a leaf of the second layer, size 0, seen once
    trees = [tree(("d", D), ("d/x", f(10))), tree(("d", D), ("d/.wh..wh..opq", WH))]
    score, waste = efficiency(trees)
    assert score == 1.0
    assert waste == ()


def test_no_user_layers_gives_nan_percent() -> None:
    a = analyze_trees("img", ["l0"], [tree(("a", f(1)))], ["x"])
    assert a.user_size_bytes == 0 and math.isnan(a.wasted_user_percent)


# --- through real layer tars in a store ----------------------------------------------------------------

def _image(store: Store, layers: list[list[Entry]], commands: list[str]) -> str:
    diff_ids, history = [], []
    for entries, cmd in zip(layers, commands):
        diff_ids.append(add_layer_from_entries(store, entries).diff_id)
        history.append(History(created=rfc3339(0), created_by=cmd))
    plat = host_platform()
    cfg = ImageConfig(plat.architecture, plat.os, rfc3339(0), ContainerConfig(), tuple(diff_ids), tuple(history))
    return register_config(store, cfg.to_json())[0]


def _file(path: str, data: bytes, mode: int = 0o644) -> Entry:
    return Entry(path, "file", mode, size=len(data), data=data)


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(tmp_path / "home")
    yield s
    s.close()


def test_analysis_of_stored_layers(store: Store) -> None:
    base = [Entry("etc", "dir", 0o755), _file("etc/motd", b"m" * 1000), _file("etc/hosts", b"h" * 200),
            Entry("tmp", "dir", 0o755), _file("tmp/junk", b"j" * 5000)]
    change = [Entry("etc", "dir", 0o755), _file("etc/motd", b"n" * 400), _file("etc/new", b"x" * 7),
              Entry("tmp/junk", "whiteout")]
    image_id = _image(store, [base, change], ["/bin/sh -c make base", "/bin/sh -c change"])
    a = analyze(store, image_id)
    # /etc/motd: 1000 + 400 (min 400); /tmp/junk: 5000 + 0 (min 0); /etc/hosts 200; /etc/new 7
    assert a.efficiency == pytest.approx((400 + 0 + 200 + 7) / (1400 + 5000 + 200 + 7))
    assert a.wasted_bytes == 1400 + 5000
    assert [(w.path, w.cumulative_size) for w in a.inefficiencies] == [("/etc/motd", 1400), ("/tmp/junk", 5000)]
    assert [(layer.size, layer.command) for layer in a.layers] == [(6200, "make base"), (407, "change")]

    top = layer_tree(a, 1)
    marks = {n.path: n.mark for n in top.walk()}
    assert marks["/etc/motd"] == "M"
    assert marks["/etc/new"] == "A"
    assert marks["/tmp/junk"] == "D"
    assert marks["/etc"] == "M"                      # a mix of changes below it
    assert {n.path: n.mark for n in layer_tree(a, 0).walk()}["/etc/hosts"] == "A"

    agg = aggregated_tree(a, 1)
    agg_marks = {n.path: n.mark for n in agg.walk()}
    assert agg_marks["/etc/hosts"] == ""             # untouched by the top layer, but present
    assert agg_marks["/tmp/junk"] == "D"             # removed files stay visible, marked
    assert agg.find("/etc/motd").size == 400         # the file as the top layer left it
    assert agg.find("/etc").size == 200 + 400 + 7


def test_same_content_rewritten_is_unmodified_but_still_waste(store: Store) -> None:
    one = [_file("a", b"same")]
    image_id = _image(store, [one, [_file("a", b"same")]], ["x", "y"])
    a = analyze(store, image_id)
    assert {n.path: n.mark for n in layer_tree(a, 1).walk()}["/a"] == ""
    assert a.wasted_bytes == 8 and a.efficiency == pytest.approx(4 / 8)
