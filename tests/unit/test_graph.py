"""The layer graph (engine.graph) and its drawing (kernel_ext.graph) after real bootstraps, builds,
containers, commits, tags and repo digests."""
from __future__ import annotations

import html
import os
import re
import threading

import pytest

from engine import Engine
from engine.builder import BuildOptions, Built
from engine.digest import chain_ids, hex_of
from engine.graph import layer_graph, load_last_build
from engine.reference import parse
from engine.registry.transfer import mark_pushed
from engine.runtime.manager import RunOptions
from kernel_ext.graph import LiveGraph, StaticGraph, render_svg, to_dot

pytestmark = pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="busybox-static is not installed")

BASE = "FROM busybox:latest\nRUN echo shared > /shared\n"


def build(engine: Engine, text: str, *tags: str) -> str:
    events = list(engine.build(BuildOptions(dockerfile_text=text, tags=tags)))
    built = [e for e in events if isinstance(e, Built)]
    assert built, events
    return built[0].image_id


def layer_node(chain: str) -> str:
    return "L" + hex_of(chain)[:12]


@pytest.fixture
def engine(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    eng = Engine(tmp_path / "home")
    eng.bootstrap()
    yield eng
    eng.close()


def reaches_bootfs(graph, node_id: str) -> bool:
    seen = set()
    while node_id != "bootfs":
        if node_id in seen:
            return False
        seen.add(node_id)
        below = [e.dst for e in graph.edges_from(node_id) if e.kind in ("on", "top", "tag", "container")]
        if len(below) != 1:
            return False
        node_id = below[0]
    return True


def test_bootstrap_graph(engine: Engine) -> None:
    g = layer_graph(engine.store)
    kinds = sorted((n.kind, n.label[0]) for n in g.nodes if n.kind in ("tag", "bootfs"))
    assert kinds == [("bootfs", "bootfs"), ("tag", "busybox:latest"), ("tag", "hello-world:latest")]
    assert len(g.of_kind("image")) == 2 and len(g.of_kind("layer")) == 2
    assert g.edges_from("bootfs") == []                              # nothing below the kernel
    assert g.nodes[0].id == "bootfs" and g.clusters[0].id == "bootfs"
    for n in g.nodes:
        if n.id != "bootfs":
            assert reaches_bootfs(g, n.id), n
    busybox = engine.image_id("busybox")
    (top,) = g.edges_from("I" + hex_of(busybox)[:12])
    assert top.dst == layer_node(chain_ids(engine.store.image_diff_ids(busybox))[-1])


def test_shared_layers_drawn_once_and_last_build_marked(engine: Engine) -> None:
    one = build(engine, BASE + "RUN echo one > /one\n", "one")
    two = build(engine, BASE + "RUN echo two > /two\n", "two")
    g = layer_graph(engine.store)
    c1 = chain_ids(engine.store.image_diff_ids(one))
    c2 = chain_ids(engine.store.image_diff_ids(two))
    assert c1[:2] == c2[:2] and c1[2] != c2[2]
    shared = layer_node(c1[1])
    assert [n.id for n in g.nodes].count(shared) == 1
    # both top layers sit on the one shared layer
    assert {e.src for e in g.edges if e.dst == shared and e.kind == "on"} == {layer_node(c1[2]), layer_node(c2[2])}
    assert g.node(shared).label[2] == "echo shared > /shared"
    assert g.node(layer_node(c2[2])).label[2] == "echo two > /two"
    # the second build used the cache for the shared step and ran the last one
    assert g.node(shared).mark == "cached"
    assert g.node(layer_node(c2[2])).mark == "ran"
    assert g.node(layer_node(c1[2])).mark == ""                        # first build's layer: not the last build
    assert g.node("I" + hex_of(two)[:12]).mark == "ran"
    steps = load_last_build(engine.store).steps
    assert [s.status for s in steps] == ["from", "cached", "ran"]
    assert steps[-1].image_id == two


def test_containers_commits_tags_and_repo_digests(engine: Engine) -> None:
    image = build(engine, BASE, "base")
    c, code = engine.run(RunOptions(image="base", command=("sh", "-c", "echo x > /made; exit 3"), name="maker"),
                         output=lambda stream, data: None)
    assert code == 3
    committed = engine.commit("maker", "made:v1")
    engine.tag("base", "127.0.0.1:5000/whoami/base:latest")
    engine.tag("base", "other:latest")
    digest = "sha256:" + "ab" * 32
    engine.store.set_repo_digest(f"127.0.0.1:5000/whoami/base@{digest}", "127.0.0.1:5000/whoami/base", image, digest)
    mark_pushed(engine.store, parse("127.0.0.1:5000/whoami/base:latest"), "127.0.0.1:5000", image, digest)
    engine.tag("base", "127.0.0.1:5000/whoami/pulled:latest")  # a repo digest without a push: pulled
    engine.store.set_repo_digest(f"127.0.0.1:5000/whoami/pulled@{digest}", "127.0.0.1:5000/whoami/pulled",
                                 image, digest)
    g = layer_graph(engine.store)

    container = g.node("C" + c.id[:12])
    assert container.label == ("maker", "Exited (3)", c.id[:12])
    assert [(e.dst, e.kind) for e in g.edges_from(container.id)] == [("I" + hex_of(image)[:12], "container")]
    # the commit's layer sits on the image's top layer
    chains = chain_ids(engine.store.image_diff_ids(committed))
    assert [e.dst for e in g.edges_from(layer_node(chains[-1]))] == [layer_node(chains[-2])]
    assert [e.dst for e in g.edges_from("Tmade:v1")] == ["I" + hex_of(committed)[:12]]

    assert g.node("T127.0.0.1:5000/whoami/base:latest").mark == "pushed"
    assert g.node("Tother:latest").mark == ""
    assert g.node("T127.0.0.1:5000/whoami/pulled:latest").mark == ""
    assert g.node(f"R127.0.0.1:5000/whoami/pulled@{digest}").mark == "pulled"
    assert g.node(f"R127.0.0.1:5000/whoami/base@{digest}").mark == "pushed"
    assert g.node("Tbase:latest").mark == ""
    repo = g.node(f"R127.0.0.1:5000/whoami/base@{digest}")
    assert repo.label == ("127.0.0.1:5000/whoami/base", "@" + "ab" * 6)
    assert [e.dst for e in g.edges_from(repo.id)] == ["I" + hex_of(image)[:12]]

    dot = to_dot(g)
    assert "rankdir=BT" in dot
    for cluster in ("bootfs", "layers", "images", "containers", "registry"):
        assert f"subgraph cluster_{cluster} {{" in dot
    assert dot.count(" -> ") == len(g.edges)
    # every edge is drawn with the lower node first, so the graph grows upwards
    assert f'"I{hex_of(image)[:12]}" -> "C{c.id[:12]}" [dir=back]' in dot


def test_svg_is_deterministic_and_well_formed(engine: Engine) -> None:
    build(engine, BASE, "base")
    first = render_svg(engine)
    assert render_svg(engine) == first
    assert first.lstrip().startswith("<?xml") and first.rstrip().endswith("</svg>")
    assert "base:latest" in first and "bootfs" in first
    static = StaticGraph.of(engine)
    assert static._repr_svg_() == first
    assert static._repr_html_().startswith('<div class="layerlab-graph"><svg')


def test_fresh_homes_give_identical_dot(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    dots = []
    for name in ("a", "b"):
        eng = Engine(tmp_path / name)
        eng.bootstrap()
        build(eng, BASE + "RUN echo one > /one\nLABEL x=y\n", "one")
        build(eng, BASE, "two")
        dots.append(to_dot(layer_graph(eng.store)))
        eng.close()
    assert dots[0] == dots[1]
    assert re.search(r"\d{4}-\d\d-\d\dT", dots[0]) is None and "1700000000" not in dots[0]  # no timestamps


def test_live_graph_redraws_after_events(engine: Engine) -> None:
    live = LiveGraph(engine, debounce=3600)               # no timer fires by itself: flush() draws
    try:
        assert live.redraws == 1 and "busybox:latest" in live.svg
        engine.tag("busybox", "first-new-tag")
        engine.tag("busybox", "second-new-tag")
        assert "first-new-tag" not in html.unescape(live.svg)
        live.flush()
        assert live.redraws == 2                           # two events, one redraw
        assert "first-new-tag" in html.unescape(live.svg) and "second-new-tag" in html.unescape(live.svg)
        assert "second-new-tag" in html.unescape(live.children[0].value)
        live.unsubscribe()
        engine.tag("busybox", "after-unsubscribe")
        live.flush()
        assert live.redraws == 2 and "after-unsubscribe" not in html.unescape(live.svg)
    finally:
        live.close()


def test_live_graph_redraws_off_the_event_thread(engine: Engine) -> None:
    drawn = threading.Event()
    live = LiveGraph(engine, debounce=0.01)
    threads = []
    live.observe(lambda change: (threads.append(threading.current_thread()), drawn.set()), names="svg")
    try:
        engine.tag("busybox", "threaded-tag")
        assert drawn.wait(60)
        assert "threaded-tag" in html.unescape(live.svg)
        assert threads[0] is not threading.main_thread()
    finally:
        live.close()


def test_nbval_sanitizer_hides_only_the_graphviz_version(engine: Engine) -> None:
    import configparser
    from pathlib import Path

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[2] / "notebooks" / "nbval_sanitize.cfg")
    section = cfg["graphviz-version"]
    svg = render_svg(engine)
    other = svg.replace("graphviz version ", "graphviz version 99.1.0 (20990101.0000) was ", 1)
    assert other != svg
    clean = [re.sub(section["regex"], section["replace"], text) for text in (svg, other)]
    assert clean[0] == clean[1]
    assert clean[0].count("\n") == svg.count("\n")               # one line changed, nothing else


def test_last_build_of_failed_and_interrupted_builds(engine: Engine) -> None:
    list(engine.build(BuildOptions(dockerfile_text="FROM busybox\nRUN exit 5\n")))
    failed = load_last_build(engine.store)
    assert failed.failed and failed.image_id == "" and [s.status for s in failed.steps] == ["from"]
    events = engine.build(BuildOptions(dockerfile_text=BASE + "RUN echo never > /never\n"))
    for event in events:
        if type(event).__name__ == "StepDone" and event.number == 2:
            break
    events.close()                                   # the student interrupted the build
    partial = load_last_build(engine.store)
    assert partial.failed and [s.number for s in partial.steps] == [1, 2]
