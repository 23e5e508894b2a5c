"""Which images a save writes, as ``docker save`` resolves its arguments, and how ``manifest.json``
lists them (``Config``, ``RepoTags``, ``Layers``, ``Parent``)."""
from __future__ import annotations

from typing import Any, Iterable

from .. import reference as refmod
from ..errors import ArchiveError, InvalidReference
from ..images import resolve
from ..store import Store
from ..values import value


@value
class Selected:
    """An image to save and the references it is saved under (none when named by ID)."""

    image_id: str
    refs: tuple[refmod.Reference, ...]


def _expand_name(store: Store, name: str) -> list[tuple[str, refmod.Reference | None]]:
    """Images (and the tag naming them) for one argument, as ``docker save`` resolves it."""
    if refmod.is_full_id(name):
        return [(resolve(store, name), None)]
    try:
        ref = refmod.parse(name, default_tag=False)
    except InvalidReference:
        ref = None
    if ref is not None and not ref.tag and not ref.digest:
        tags = [t for t in store.tags() if t.repo == ref.repository]
        if tags:  # a bare repository name saves every tag of it
            return [(t.image_id, refmod.parse(t.ref)) for t in tags]
    image_id = resolve(store, name)
    if ref is not None and ref.tag and not ref.digest:
        row = store.tag(ref.string)
        if row is not None and row.image_id == image_id:
            return [(image_id, ref)]
    return [(image_id, None)]


def select(store: Store, names: Iterable[str]) -> list[Selected]:
    """The images ``names`` ask for, each once, in the order first named, with their references."""
    order: list[str] = []
    refs: dict[str, list[refmod.Reference]] = {}
    for name in names:
        for image_id, ref in _expand_name(store, name):
            if image_id not in refs:
                order.append(image_id)
                refs[image_id] = []
            if ref is not None and ref not in refs[image_id]:
                refs[image_id].append(ref)
    if not order:
        raise ArchiveError("no images to save")
    return [Selected(i, tuple(refs[i])) for i in order]


def parents(store: Store, selected: list[Selected]) -> dict[str, str]:
    """Parent links between saved images (moby's validatedParentLinks)."""
    ids = {s.image_id for s in selected}
    out: dict[str, str] = {}
    for s in selected:
        parent = store.image(s.image_id).parent
        if parent and parent in ids and parent != s.image_id:
            out[s.image_id] = parent
    return out


def manifest_item(sel: Selected, parent_links: dict[str, str], config: str, layers: list[str]) -> dict[str, Any]:
    """One image of Docker's ``manifest.json``: its config and layer paths, tags, saved parent."""
    item: dict[str, Any] = {"Config": config, "RepoTags": [r.familiar for r in sel.refs] or None,
                            "Layers": layers}
    if sel.image_id in parent_links:
        item["Parent"] = parent_links[sel.image_id]
    return item
