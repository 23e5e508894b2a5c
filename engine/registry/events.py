"""What ``push`` and ``pull`` report, as frozen values, and the lines ``docker`` prints for them.

A transfer is a generator of these events; the CLI prints :func:`render` of each, the notebook's
progress widget draws them. Layer IDs are Docker's 12 hex characters: of the DiffID when pushing,
of the (compressed) blob digest when pulling, as ``docker push``/``docker pull`` show them.
"""
from __future__ import annotations

from ..values import value



@value
class TransferEvent:
    """Base of everything a push or pull reports."""


@value
class Header(TransferEvent):
    """``The push refers to repository [...]`` / ``latest: Pulling from whoami/static_web``."""

    text: str


@value
class LayerProgress(TransferEvent):
    """One layer's state: ``Preparing``, ``Pushing``, ``Pushed``, ``Layer already exists``,
    ``Mounted from <repo>``, ``Pulling fs layer``, ``Downloading``, ``Verifying Checksum``,
    ``Download complete``, ``Extracting``, ``Pull complete``, ``Already exists`` (Docker's words)."""

    id: str
    status: str
    current: int = 0
    total: int = 0


@value
class Pushed(TransferEvent):
    """The manifest was accepted: ``<tag>: digest: sha256:… size: N``."""

    tag: str
    digest: str
    size: int


@value
class TagDigest(TransferEvent):
    """``Digest: sha256:…`` of one tag of ``pull --all-tags`` (the last tag's is in :class:`Pulled`)."""

    digest: str


@value
class Pulled(TransferEvent):
    """The end of a pull: ``reference`` is the fully qualified reference Docker prints last;
    ``status`` is ``Downloaded newer image for <familiar>`` or ``Image is up to date for <familiar>``."""

    reference: str
    digest: str
    image_id: str
    status: str


@value
class NotFoundLocally(TransferEvent):
    """``Unable to find image 'busybox:latest' locally``: ``docker run``/``create`` pulls it next."""

    reference: str


#: statuses that are progress ticks (a terminal redraws them in place; plain output skips them)
PROGRESS_STATUSES = ("Pushing", "Downloading", "Extracting")


def render(event: TransferEvent) -> str | None:
    """Docker's line(s) for non-tty output; None for pure progress ticks."""
    if isinstance(event, Header):
        return event.text
    if isinstance(event, LayerProgress):
        if event.status in PROGRESS_STATUSES:
            return None
        return f"{event.id}: {event.status}"
    if isinstance(event, Pushed):
        return f"{event.tag}: digest: {event.digest} size: {event.size}"
    if isinstance(event, TagDigest):
        return f"Digest: {event.digest}"
    if isinstance(event, Pulled):
        lines = [f"Digest: {event.digest}"] if event.digest else []
        return "\n".join([*lines, f"Status: {event.status}", event.reference])
    if isinstance(event, NotFoundLocally):
        return f"Unable to find image '{event.reference}' locally"
    return None


def render_daemon(event: TransferEvent) -> str | None:
    """What the daemon's progress stream shows of a pull (``docker run``, the classic ``docker build``):
    :func:`render` without the reference line that only ``docker pull`` prints after the stream."""
    if isinstance(event, Pulled):
        return "\n".join(([f"Digest: {event.digest}"] if event.digest else []) + [f"Status: {event.status}"])
    return render(event)
