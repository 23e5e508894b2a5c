"""What a build reports, one event per line of ``docker build`` (classic) output, and :func:`render`."""
from __future__ import annotations

from ..format import human_size
from ..values import value


# --- events -----------------------------------------------------------------------------------

@value
class BuildEvent:
    """Base of everything a build reports."""


@value
class ContextSent(BuildEvent):
    size: int


@value
class StepStarted(BuildEvent):
    number: int
    total: int
    text: str
    line: int


@value
class TriggersExecuting(BuildEvent):
    count: int


@value
class CacheHit(BuildEvent):
    image_id: str


@value
class ContainerRunning(BuildEvent):
    container_id: str


@value
class Output(BuildEvent):
    stream: str
    data: bytes


@value
class PullProgress(BuildEvent):
    """A line of a base image's pull inside FROM or COPY --from (``latest: Pulling from library/busybox`` …):
    ``text`` as dockerd streams it (None for a progress tick), ``event`` the registry's transfer event."""

    text: str | None
    event: object = None


@value
class ContainerRemoved(BuildEvent):
    container_id: str


@value
class StepDone(BuildEvent):
    """The image after a step (``image_id`` is empty after ``FROM scratch``)."""

    number: int
    image_id: str
    cached: bool
    seconds: float


@value
class Warning(BuildEvent):  # noqa: A001 - Docker's word
    text: str


@value
class BuildFailed(BuildEvent):
    message: str
    exit_code: int


@value
class Built(BuildEvent):
    image_id: str


@value
class Tagged(BuildEvent):
    ref: str


def render(event: BuildEvent) -> str | None:
    """The line ``docker build`` (classic) prints for an event; None for raw output."""
    if isinstance(event, ContextSent):
        return f"Sending build context to Docker daemon  {human_size(event.size, 4)}"
    if isinstance(event, StepStarted):
        return f"Step {event.number}/{event.total} : {event.text}"
    if isinstance(event, TriggersExecuting):
        return f"# Executing {event.count} build trigger{'s' if event.count > 1 else ''}"
    if isinstance(event, CacheHit):
        return " ---> Using cache"
    if isinstance(event, ContainerRunning):
        return f" ---> Running in {event.container_id[:12]}"
    if isinstance(event, ContainerRemoved):
        return f"Removing intermediate container {event.container_id[:12]}"
    if isinstance(event, StepDone):
        return f" ---> {event.image_id[7:19]}"
    if isinstance(event, (Warning, PullProgress)):
        return event.text
    if isinstance(event, BuildFailed):
        return event.message
    if isinstance(event, Built):
        return f"Successfully built {event.image_id[7:19]}"
    if isinstance(event, Tagged):
        return f"Successfully tagged {event.ref}"
    return None
