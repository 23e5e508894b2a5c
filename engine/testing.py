"""Test helpers shipped with the engine (as go-containerregistry ships ``random`` and ``validate``).

``child_image`` makes images the way a classic build step or a commit does (parent link,
history line, optional layer) without running anything; ``validate_image`` checks that an image's
config, layers and blobs agree.
"""
from __future__ import annotations

import random

from .digest import sha256_bytes
from .errors import EngineError
from .images import add_layer_from_entries, load_config, register_config, rfc3339
from .layer import Entry
from .spec import ContainerConfig, History, ImageConfig, host_platform
from .store import Store
from .values import replace

#: the seed's web Dockerfile (the book's ``static_web``), as the transcripts build it
SEED_WEB_DOCKERFILE = """\
FROM busybox:latest
LABEL maintainer=whoami
ENV REFRESHED_AT=2014-07-01
RUN echo hello > /greeting && mkdir -p /var/www/html
COPY index.html /var/www/html/
CMD ["cat", "/var/www/html/index.html"]
"""


def layer_entries(files: dict[str, bytes], *, mtime: int = 0) -> list[Entry]:
    """Entries for ``{path: content}``, with the parent directories they need, sorted."""
    out: dict[str, Entry] = {}
    for path, data in files.items():
        parts = path.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            out.setdefault(d, Entry(d, "dir", 0o755, mtime=mtime))
        out[path] = Entry(path, "file", 0o644, mtime=mtime, size=len(data), data=data)
    return [out[k] for k in sorted(out, key=lambda p: p.split("/"))]


def random_files(seed: int, count: int = 3, size: int = 64) -> dict[str, bytes]:
    """``count`` files of random bytes, deterministic for ``seed``."""
    rng = random.Random(seed)
    return {f"data/{seed}/f{i}": rng.randbytes(size) for i in range(count)}


def scratch_image(store: Store, files: dict[str, bytes], *, created: float = 0, cmd: tuple[str, ...] | None = None,
                  comment: str = "Imported from -") -> str:
    """A one-layer image with no parent."""
    layer = add_layer_from_entries(store, layer_entries(files))
    plat = host_platform()
    cfg = ImageConfig(plat.architecture, plat.os, rfc3339(created), ContainerConfig(cmd=cmd), (layer.diff_id,),
                      (History(created=rfc3339(created), comment=comment),))
    image_id, _ = register_config(store, cfg.to_json())
    return image_id


def child_image(store: Store, parent: str, created_by: str, *, files: dict[str, bytes] | None = None,
                created: float | None = None, config: ContainerConfig | None = None, comment: str = "",
                built_locally: bool = True) -> str:
    """An image on top of ``parent``: one history line, a layer when ``files`` is given."""
    base = load_config(store, parent)
    ts = rfc3339(created if created is not None else _next_time(base))
    diff_ids = base.diff_ids
    if files is not None:
        layer = add_layer_from_entries(store, layer_entries(files))
        diff_ids = diff_ids + (layer.diff_id,)
    cfg = replace(base, created=ts, diff_ids=diff_ids, config=config or base.config,
                  history=base.history + (History(created=ts, created_by=created_by, comment=comment,
                                                  empty_layer=files is None),))
    image_id, _ = register_config(store, cfg.to_json(), parent=parent, built_locally=built_locally)
    return image_id


def _next_time(config: ImageConfig) -> float:
    from .images import parse_time

    dt = parse_time(config.created)
    return (dt.timestamp() if dt else 0) + 1


def validate_image(store: Store, image_id: str) -> None:
    """Raise :class:`EngineError` unless config digest, layers and blobs of an image agree."""
    data = store.read_blob(image_id)
    if sha256_bytes(data) != image_id:
        raise EngineError(f"config of {image_id} does not match its digest")
    config = ImageConfig.from_json(data)
    non_empty = [h for h in config.history if not h.empty_layer]
    if config.history and len(non_empty) != len(config.diff_ids):
        raise EngineError(f"{image_id}: {len(non_empty)} non-empty history entries for {len(config.diff_ids)} layers")
    for d in config.diff_ids:
        blobs = store.layer_blobs(d)
        if not blobs or not any(store.has_blob(b.digest) for b in blobs):
            raise EngineError(f"{image_id}: layer {d} has no blob")
