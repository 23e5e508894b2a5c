"""Live layer graph benchmark: one redraw (graph from the store, DOT text, ``dot -Tsvg``).

The store holds 50 images and 200 distinct layers (ChainIDs): 10 base images of 4 layers each and,
on every base, 4 images that add 4 layers of their own; each image has a tag, and the last build's
record marks one image's steps. A redraw is what :class:`kernel_ext.graph.LiveGraph` does after an
engine event, so its median must stay well under the time a student notices (< 200 ms).
"""
from __future__ import annotations

import json
from pathlib import Path

from .common import Context, Result, Target, Timing, benchmark, log, measure

BASES = 10
CHILDREN_PER_BASE = 4
LAYERS_PER_IMAGE = 4


def populate(home: Path) -> tuple[int, int]:
    """Fill a store at ``home``; return (images, distinct layers)."""
    from engine.digest import chain_ids
    from engine.graph import LAST_BUILD_KEY, LastBuild, StepResult
    from engine.images import add_layer_from_entries, register_config, rfc3339, tag_image
    from engine.layer import Entry
    from engine.spec import ContainerConfig, History, ImageConfig, host_platform
    from engine.store import Store

    store = Store(home)
    plat = host_platform()
    chains: set[str] = set()
    images = 0

    def layers(prefix: str) -> list[tuple[str, str]]:
        out = []
        for j in range(LAYERS_PER_IMAGE):
            data = f"{prefix}-{j}\n".encode()
            d = add_layer_from_entries(store, [Entry(f"{prefix}-{j}", "file", 0o644, size=len(data), data=data)])
            out.append((d.diff_id, f"/bin/sh -c echo {prefix}-{j} > /{prefix}-{j}"))
        return out

    def image(parts: list[tuple[str, str]], parent: str | None, tag: str) -> str:
        nonlocal images
        diff_ids = tuple(d for d, _ in parts)
        history = tuple(History(created=rfc3339(0), created_by=c) for _, c in parts)
        cfg = ImageConfig(plat.architecture, plat.os, rfc3339(0), ContainerConfig(cmd=("sh",)), diff_ids, history)
        image_id, _ = register_config(store, cfg.to_json(), parent=parent, built_locally=parent is not None)
        tag_image(store, image_id, tag)
        chains.update(chain_ids(diff_ids))
        images += 1
        return image_id

    last = ""
    for b in range(BASES):
        base_layers = layers(f"base{b}")
        base = image(base_layers, None, f"base{b}:latest")
        for c in range(CHILDREN_PER_BASE):
            last = image(base_layers + layers(f"app{b}-{c}"), base, f"app{b}-{c}:latest")
    store.set_kv(LAST_BUILD_KEY, LastBuild((StepResult(1, "FROM base9", "from", base),
                                            StepResult(2, "RUN …", "ran", last)), last).to_json())
    store.close()
    return images, len(chains)


@benchmark("graph-redraw")
def graph_redraw(ctx: Context) -> list[Result]:
    """Live graph redraw: graph from the store + DOT + `dot -Tsvg`, 50 images / 200 layers."""
    from engine import Engine
    from engine.graph import layer_graph
    from kernel_ext.graph import dot_to_svg, render_svg, to_dot

    home = ctx.new_home("graph")
    n_images, n_layers = populate(home)
    engine = Engine(home)
    try:
        g = layer_graph(engine.store)
        dot = to_dot(g)
        log(f"  graph: {n_images} images, {n_layers} layers, {len(g.nodes)} nodes, {len(g.edges)} edges")
        reps = max(ctx.sizes.reps, 9)
        redraw = measure(lambda: render_svg(engine), reps=reps)
        model = measure(lambda: layer_graph(engine.store), reps=reps)
        drawing = measure(lambda: dot_to_svg(dot), reps=reps)
    finally:
        engine.close()
    notes = (f"{n_images} images, {n_layers} layers (ChainIDs), one tag each; Debian graphviz `dot -Tsvg`",
             f"of which: graph from the store {model.median * 1000:.1f} ms, to_dot + dot {drawing.median * 1000:.1f} ms "
             "(medians)",
             "no reference tool draws this graph: the target is the time a student would notice")
    return [Result("graph-redraw", f"live graph redraw, {n_images} images / {n_layers} layers", redraw,
                   "—", Timing.na("n/a"), Target("time_max", 0.200), notes=notes, show_p90=True)]


if __name__ == "__main__":  # python -m bench.graph: one quick look
    import sys
    import tempfile

    from .common import Sizes

    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context(sizes=Sizes(), tmp=Path(tmp), docker=False)
        for r in graph_redraw(ctx):
            print(json.dumps(r.to_json(), indent=1), file=sys.stdout)
