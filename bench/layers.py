"""Layer benchmarks: creating a layer from a tree, importing a tar stream, extracting a layer.

The workload is one deterministic tree: ``tree_dirs`` × ``tree_files_per_dir`` files (100 × 100 =
10,000 by default) whose sizes are drawn from a seeded log-normal distribution and scaled to sum to
exactly ``tree_bytes`` (200 MB), filled with ``random.Random(42).randbytes``; modes and mtimes
are fixed, so the layer's DiffID is the same on every run and every machine.
"""
from __future__ import annotations

import os
import random
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import (
    MB, Context, Result, Side, Target, Timing, benchmark, command, log, measure, measure_command,
    measure_interleaved, remove, run_command, settle,
)

SEED = 42
TREE_MTIME = 1_700_000_000   # 2023-11-14, fixed so the layer digest is reproducible
TAR_TO_SHA = "`tar -cf - . | sha256sum`"
TAR_TO_OPENSSL = "`tar -cf - . | openssl dgst -sha256`"
TMPFS = Path("/dev/shm")


@dataclass(frozen=True)
class Tree:
    root: Path
    dirs: int
    files: int
    bytes: int

    @property
    def label(self) -> str:
        return f"{self.files:,} files / {self.bytes / MB:,.0f} MB"


@dataclass(frozen=True)
class StoredLayer:
    blob: Path
    diff_id: str
    tar_size: int


def file_sizes(count: int, total: int, rng: random.Random) -> list[int]:
    """``count`` log-normally distributed sizes that sum to exactly ``total``."""
    weights = [rng.lognormvariate(0.0, 1.5) for _ in range(count)]
    scale = total / sum(weights)
    sizes = [int(w * scale) for w in weights]
    for i in range(total - sum(sizes)):
        sizes[i % count] += 1
    return sizes


def make_tree(root: Path, dirs: int, files_per_dir: int, total: int, seed: int = SEED) -> Tree:
    """Write the deterministic benchmark tree under ``root`` (which must not exist)."""
    rng = random.Random(seed)
    sizes = iter(file_sizes(dirs * files_per_dir, total, rng))
    root.mkdir()
    for d in range(dirs):
        directory = root / f"d{d:03d}"
        directory.mkdir()
        for f in range(files_per_dir):
            path = directory / f"f{f:03d}.bin"
            with open(path, "wb") as out:
                out.write(rng.randbytes(next(sizes)))
            os.chmod(path, 0o644)
            os.utime(path, (TREE_MTIME, TREE_MTIME))
        os.chmod(directory, 0o755)
        os.utime(directory, (TREE_MTIME, TREE_MTIME))
    os.chmod(root, 0o755)
    os.utime(root, (TREE_MTIME, TREE_MTIME))
    settle()
    return Tree(root, dirs, dirs * files_per_dir, total)


def shared_tree(ctx: Context) -> Tree:
    def build() -> Tree:
        s = ctx.sizes
        log(f"writing the tree: {s.tree_dirs} dirs × {s.tree_files_per_dir} files, {s.tree_bytes / MB:g} MB")
        return make_tree(ctx.path("tree"), s.tree_dirs, s.tree_files_per_dir, s.tree_bytes)
    return ctx.shared("tree", build)


def shared_layer(ctx: Context) -> StoredLayer:
    """The tree stored once as a LayerLab layer (the input of the extraction benchmark)."""
    def build() -> StoredLayer:
        from engine.images import add_layer_from_dir
        from engine.store import Store

        store = Store(ctx.new_home("layer-src"))
        try:
            layer = add_layer_from_dir(store, shared_tree(ctx).root)
            return StoredLayer(store.blob_path(layer.diff_id), layer.diff_id, layer.tar_size)
        finally:
            store.close()
    return ctx.shared("layer", build)


def tar_cmd(root: Path) -> str:
    return f"tar -C {shlex.quote(str(root))} -cf - ."


# --- layer creation ----------------------------------------------------------------------------

_CREATE_SCRIPT = """\
import sys
from engine.images import add_layer_from_dir
from engine.store import Store
add_layer_from_dir(Store(sys.argv[1]), sys.argv[2])
"""


@benchmark("layer-create")
def layer_create(ctx: Context) -> list[Result]:
    """Layer creation from the tree: add_layer_from_dir (in-process and whole process) vs tar | sha256sum."""
    from engine.images import add_layer_from_dir
    from engine.store import Store

    tree = shared_tree(ctx)
    s = ctx.sizes

    state: dict[str, Any] = {}

    def fresh_store() -> None:
        state["home"] = ctx.new_home("create")
        state["store"] = Store(state["home"])
        settle()

    def drop_store() -> None:
        state["store"].close()
        remove(state["home"])

    def create() -> None:
        state["layer"] = add_layer_from_dir(state["store"], tree.root)

    homes: list[Path] = []

    def fresh_home() -> None:
        homes.append(ctx.new_home("create-proc"))
        settle()

    def create_process() -> None:
        run_command([ctx.python, "-c", _CREATE_SCRIPT, str(homes[-1]), str(tree.root)], env=ctx.env(homes[-1]))

    sides = {
        "tar | sha256sum": Side(command(f"{tar_cmd(tree.root)} | sha256sum >/dev/null"), settle),
        "add_layer_from_dir (in-process)": Side(create, fresh_store, drop_store),
        "add_layer_from_dir (whole process)": Side(create_process, fresh_home, lambda: remove(homes[-1])),
    }
    if shutil.which("openssl"):
        sides["tar | openssl dgst -sha256"] = Side(command(f"{tar_cmd(tree.root)} | openssl dgst -sha256 >/dev/null"),
                                                   settle)
    timings = measure_interleaved(sides, reps=s.reps)
    reference = timings["tar | sha256sum"]
    in_process = timings["add_layer_from_dir (in-process)"]
    whole = timings["add_layer_from_dir (whole process)"]
    fast_hash = timings.get("tar | openssl dgst -sha256") or Timing.na("n/a (no openssl)")
    layer = state["layer"]

    notes = (f"tree: {tree.dirs} dirs × {tree.files // tree.dirs} files, {tree.bytes:,} content bytes; "
             f"layer {layer.diff_id}, tar {layer.tar_size:,} bytes",
             "MB/s = content bytes / median time; LayerLab also writes (and fsyncs) the blob, tar | sha256sum "
             "writes nothing")
    target = Target("ratio_max", 2.0)
    return [
        Result("layer-create", f"layer create, {tree.label} (in-process)", in_process, TAR_TO_SHA, reference,
               target, bytes=tree.bytes, notes=notes),
        Result("layer-create-process", f"layer create, {tree.label} (whole process)", whole, TAR_TO_SHA,
               reference, target, bytes=tree.bytes, notes=notes),
        Result("layer-create-openssl", f"layer create, {tree.label} (in-process)", in_process, TAR_TO_OPENSSL,
               fast_hash, bytes=tree.bytes,
               notes=notes + ("OpenSSL's SHA-256 uses the CPU's SHA extensions when present; coreutils' "
                              "sha256sum does not, so this is the stricter floor",)),
    ]


@benchmark("layer-import")
def layer_import(ctx: Context) -> list[Result]:
    """The tree as an image from a tar stream: tar | layerlab import vs tar | docker import."""
    tree = shared_tree(ctx)
    s = ctx.sizes
    pipe = tar_cmd(tree.root)

    homes: list[Path] = []

    def fresh_home() -> None:
        homes.append(ctx.new_home("import"))
        settle()

    layerlab = measure(
        lambda: run_command(f"{pipe} | {shlex.quote(ctx.layerlab_bin)} import - bench:tree", env=ctx.env(homes[-1])),
        reps=s.reps_big, setup=fresh_home, teardown=lambda: remove(homes[-1]), label="tar | layerlab import",
    )

    with ctx.dockerd() as daemon:
        if daemon is None:
            reference = ctx.no_docker_timing()
        else:
            from tests.fixtures.dockerd import DOCKER_CLIENT

            reference = measure_command(
                f"{pipe} | {DOCKER_CLIENT} -H {shlex.quote(daemon.host)} import - bench:tree", env=daemon.env,
                reps=s.reps_big, setup=settle, teardown=lambda: daemon.run("rmi", "bench:tree", check=False),
                label="tar | docker import",
            )
    return [Result(
        "layer-import", f"import {tree.label} as an image (whole process)", layerlab,
        "`tar -cf - . | docker import - bench:tree`", reference, bytes=tree.bytes,
        notes=("same pipeline on both sides; docker import also unpacks the layer into overlay2, "
               "LayerLab stores the tar and unpacks on first use",),
    )]


# --- layer extraction --------------------------------------------------------------------------

def _extract_timings(ctx: Context, layer: StoredLayer, tree: Tree, base: Path,
                     where: str) -> tuple[Timing, Timing, list[str]]:
    """extract_layer and tar -xf of ``layer`` into fresh empty directories under ``base``."""
    s = ctx.sizes
    dests: list[Path] = []

    def fresh_dest() -> None:
        dests.append(base / f"extract-{len(dests)}")
        dests[-1].mkdir()
        settle()

    def drop_dest() -> None:
        remove(dests[-1])

    notes: list[str] = []
    sides = {f"tar -xf ({where})": Side(lambda: run_command(["tar", "-xf", str(layer.blob), "-C", str(dests[-1])]),
                                        fresh_dest, drop_dest)}
    stats: list[Any] = []
    try:
        from engine.extract import extract_layer
    except ImportError as e:
        log(f"engine.extract.extract_layer is not available: {e}")
    else:
        sides[f"extract_layer (in-process, {where})"] = Side(
            lambda: stats.append(extract_layer(layer.blob, dests[-1])), fresh_dest, drop_dest)
    timings = measure_interleaved(sides, reps=s.reps)
    reference = timings[f"tar -xf ({where})"]
    layerlab = timings.get(f"extract_layer (in-process, {where})")
    if layerlab is None:
        return Timing.na("n/a (engine.extract.extract_layer missing)"), reference, notes
    got = stats[-1]
    if getattr(got, "files", tree.files) != tree.files or getattr(got, "bytes", tree.bytes) != tree.bytes:
        notes.append(f"WARNING: extract_layer reported {got}, expected {tree.files} files / {tree.bytes} bytes")
        log(notes[-1])
    return layerlab, reference, notes


@benchmark("layer-extract")
def layer_extract(ctx: Context) -> list[Result]:
    """Extraction of the tree's layer: engine.extract.extract_layer vs tar -xf (on disk, and into tmpfs)."""
    tree = shared_tree(ctx)
    layer = shared_layer(ctx)
    common = f"layer {layer.diff_id}, tar {layer.tar_size:,} bytes; a fresh empty directory per run"

    disk = ctx.path("extract-disk")
    disk.mkdir()
    layerlab, reference, notes = _extract_timings(ctx, layer, tree, disk, "on disk")
    results = [Result("layer-extract", f"layer extract, {tree.label} (in-process)", layerlab,
                      "`tar -xf layer.tar -C dest`", reference, bytes=tree.bytes,
                      notes=(common, f"destination on the filesystem of {ctx.tmp}", *notes))]

    # The same into tmpfs: no filesystem/disk cost, so what remains is each tool's own work.
    tmpfs_ok = TMPFS.is_dir() and shutil.disk_usage(TMPFS).free > 3 * layer.tar_size
    if tmpfs_ok:
        base = Path(tempfile.mkdtemp(prefix="layerlab-bench-", dir=TMPFS))
        try:
            layerlab, reference, notes = _extract_timings(ctx, layer, tree, base, "into tmpfs")
        finally:
            remove(base)
    else:
        layerlab = reference = Timing.na(f"n/a (no room in {TMPFS})")
        notes = []
    results.append(Result("layer-extract-tmpfs", f"layer extract, {tree.label} (in-process, into tmpfs)", layerlab,
                          "`tar -xf layer.tar -C dest`", reference, bytes=tree.bytes,
                          notes=(common, f"destination in {TMPFS} (tmpfs)", *notes)))
    return results
