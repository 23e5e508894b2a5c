"""Command-line benchmarks: whole ``layerlab`` processes, as a user at a terminal runs them.

``images``: ``layerlab images`` with a store of ``sizes.images`` (200) distinct images, each its own
config (distinct ``created`` time and label) over one shared one-file layer, tagged into ten
repositories. Docker gets the very same images (same config bytes, same layer, same tags) through one
``docker load`` of a docker-archive, so both list identical data.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass

from .common import REPO_ROOT, Context, Result, Side, Target, benchmark, command, log, measure_interleaved, run_command

CREATED_BASE = 1_700_000_000


@dataclass(frozen=True)
class ImageSet:
    layer_tar: bytes
    diff_id: str
    configs: tuple[tuple[bytes, str], ...]   # (config bytes, "repo:tag")


def _tar(members: dict[str, bytes], mtime: int = CREATED_BASE) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, mtime
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def image_set(count: int) -> ImageSet:
    """``count`` distinct image configs over one tiny layer, with their tags."""
    from engine.images import rfc3339
    from engine.spec import canonical_json, host_platform

    layer = _tar({"etc/bench.txt": b"LayerLab bench image\n"})
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    platform = host_platform()
    configs = []
    for i in range(count):
        created = rfc3339(CREATED_BASE + 3600 * i)
        config = {
            "architecture": platform.architecture, "os": platform.os, "created": created,
            "config": {"Cmd": ["sh"], "Labels": {"bench.index": str(i)}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created, "created_by": f'/bin/sh -c #(nop)  LABEL bench.index={i}'}],
        }
        configs.append((canonical_json(config), f"bench/app{i % 10}:v{i:03d}"))
    return ImageSet(layer, diff_id, tuple(configs))


def populate_store(home: object, images: ImageSet) -> None:
    """Put the image set into a LayerLab store through the engine API."""
    from engine.images import add_layer_from_stream, register_config, tag_image
    from engine.store import Store

    store = Store(home)  # type: ignore[arg-type]
    try:
        add_layer_from_stream(store, io.BytesIO(images.layer_tar))
        with store.transaction():
            for config, tag in images.configs:
                image_id, _ = register_config(store, config)
                tag_image(store, image_id, tag)
    finally:
        store.close()


def docker_archive(images: ImageSet) -> bytes:
    """The image set as one ``docker save``-format tar, for a single ``docker load``."""
    layer_dir = images.diff_id.removeprefix("sha256:")
    members = {f"{layer_dir}/layer.tar": images.layer_tar, f"{layer_dir}/VERSION": b"1.0"}
    manifest = []
    for config, tag in images.configs:
        name = hashlib.sha256(config).hexdigest() + ".json"
        members[name] = config
        manifest.append({"Config": name, "RepoTags": [tag], "Layers": [f"{layer_dir}/layer.tar"]})
    members["manifest.json"] = json.dumps(manifest).encode()
    return _tar(members)


def _rows(output: str) -> int:
    return max(len(output.splitlines()) - 1, 0)


@benchmark("images")
def images(ctx: Context) -> list[Result]:
    """`layerlab images` with N images in the store (whole process) vs `docker images`."""
    n = ctx.sizes.images
    reps = ctx.sizes.reps_fast
    image_data = ctx.shared("image-set", lambda: image_set(n))
    home = ctx.new_home("images")
    populate_store(home, image_data)
    env = ctx.env(home)
    notes = [f"{n} distinct images (one shared {len(image_data.layer_tar)}-byte layer), one tag each, 10 repositories"]

    listed = _rows(run_command([ctx.layerlab_bin, "images"], env=env, capture=True))
    if listed != n:
        raise RuntimeError(f"layerlab images listed {listed} rows, expected {n}")
    cold_env = ctx.env(home, bytecode_cache=False)
    compiled = (REPO_ROOT / "engine" / "__pycache__").is_dir()
    sides = {
        "layerlab images (.pyc cache)": Side(command([ctx.layerlab_bin, "images"], env=env)),
        "layerlab images (PYTHONDONTWRITEBYTECODE=1)": Side(command([ctx.layerlab_bin, "images"], env=cold_env)),
    }
    with ctx.dockerd() as daemon:
        if daemon is not None:
            from tests.fixtures.dockerd import DOCKER_CLIENT

            daemon.run("load", "-q", input=docker_archive(image_data), timeout=600)
            docker_listed = _rows(daemon.run("images").stdout)
            if docker_listed != n:
                raise RuntimeError(f"docker images listed {docker_listed} rows, expected {n}")
            sides["docker images"] = Side(command([DOCKER_CLIENT, "-H", daemon.host, "images"], env=daemon.env))
            notes.append("docker images: Go client + the daemon's API over a unix socket")
        timings = measure_interleaved(sides, reps=reps)
    layerlab = timings["layerlab images (.pyc cache)"]
    no_pyc = timings["layerlab images (PYTHONDONTWRITEBYTECODE=1)"]
    reference = timings.get("docker images") or ctx.no_docker_timing()
    log(f"  images: {n} rows listed by each tool")
    return [
        Result("images", f"`layerlab images`, {n} images (whole process)", layerlab, "`docker images`", reference,
               Target("time_max", 0.150),
               notes=(*notes, "Python may cache bytecode (.pyc), as an installed engine does after its first run")),
        Result("images-no-pyc", f"`layerlab images`, {n} images (whole process, no .pyc cache)", no_pyc,
               "`docker images`", reference, Target("time_max", 0.150),
               notes=(*notes, "PYTHONDONTWRITEBYTECODE=1: " + (
                   "engine/__pycache__ exists and is used" if compiled else
                   "the engine's modules are compiled from source in every process"))),
    ]
