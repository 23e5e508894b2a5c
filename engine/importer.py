"""``docker import``: a tarball becomes a one-layer image."""
from __future__ import annotations

from typing import BinaryIO

from .changes import apply_changes
from .images import add_layer_from_stream, now_or_epoch, register_config, rfc3339, tag_image
from .reference import parse
from .spec import ContainerConfig, History, ImageConfig, host_platform
from .store import Store
from .values import value


@value
class ImportResult:
    image_id: str
    diff_id: str
    tag: str | None


def import_tarball(store: Store, stream: BinaryIO, repo_tag: str | None = None, *,
                   changes: tuple[str, ...] = (), message: str = "", source: str = "-",
                   created: float | None = None) -> ImportResult:
    """Import a (possibly compressed) tarball as a single-layer image, like ``docker import``.

    The history comment is ``message`` or ``Imported from <source>`` as Docker writes it.
    """
    if repo_tag:
        parse(repo_tag)  # fail before writing anything
    config = apply_changes(ContainerConfig(), changes)
    layer = add_layer_from_stream(store, stream)
    ts = rfc3339(created if created is not None else now_or_epoch())
    plat = host_platform()
    image = ImageConfig(
        architecture=plat.architecture, os=plat.os, variant=plat.variant, created=ts, config=config,
        diff_ids=(layer.diff_id,),
        history=(History(created=ts, comment=message or f"Imported from {source}"),),
    )
    image_id, _ = register_config(store, image.to_json())
    tagged = tag_image(store, image_id, repo_tag).familiar if repo_tag else None
    return ImportResult(image_id, layer.diff_id, tagged)
