"""Docker's implicit pull: ``run``/``create`` of an image the store lacks (``--pull missing|always|never``);
the classic builder's (``FROM``, ``COPY --from``, ``build --pull``) is ``Builder._image`` in engine/builder/steps.py.

Imported only when an image must be pulled: ``layerlab run`` of a stored image never loads the
registry client. A failed pull leaves nothing behind (the pull stores nothing until everything is
verified; the container is created only after it).
"""
from __future__ import annotations

from collections.abc import Iterator

from . import reference as refmod
from .errors import ContainerError, EngineError
from .registry.events import NotFoundLocally, TransferEvent


def pull_for_run(engine, image: str, *, missing: bool) -> Iterator[TransferEvent]:
    """The pull ``docker run``/``create`` makes before creating the container.

    ``missing``: the image is not stored (``Unable to find image '…' locally`` comes first). A failed
    pull raises :class:`~engine.errors.ContainerError` with the pull's error and exit code 125; a
    full image ID is never pulled (the create then reports ``No such image``).
    """
    if refmod.is_full_id(image):
        return
    try:
        ref = refmod.parse(image)
    except EngineError:
        return
    if missing:
        yield NotFoundLocally(ref.familiar)
    try:
        yield from engine.pull(image)
    except EngineError as e:
        raise ContainerError(str(e), exit_code=125) from None

