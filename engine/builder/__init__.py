"""Dockerfile builds with the classic builder's steps, intermediate images and cache.

:func:`build` is a generator of :class:`BuildEvent` values (what ``docker build`` prints, one
event per line); the CLI prints them with :func:`render`, widgets show them. Each instruction is one
step, as in Docker 20.10 with ``DOCKER_BUILDKIT=0``:

* metadata instructions (ENV, LABEL, CMD, ARG …) create a container that never runs and commit an
  empty layer (history ``/bin/sh -c #(nop)  <INSTR …>``, ``empty_layer``);
* RUN runs a container and commits its writable layer (history: the command, prefixed with
  ``|N K=V …`` when build args are in scope);
* COPY/ADD write their files straight into a new layer (Docker's container for them is never shown);
* WORKDIR creates its directory (a layer when something was created, else an empty one).

Every step's image is kept (untagged, with its parent) so the next build can find it in the cache:
a child of the current image, built here, whose container config equals the one this step would
produce. After the first miss every later step runs. On any error no tag moves; the image of the
last good step stays for debugging and a failed RUN's container stays in ``ps -a`` (unless
``force_rm``).

>>> for event in build(engine, BuildOptions(context="web", tags=("static_web",))):  # doctest: +SKIP
...     print(render(event))
Sending build context to Docker daemon  3.072kB
Step 1/6 : FROM busybox:latest
 ---> fa21a25a0cd0
...

Deliberate differences from Docker are listed in :data:`DIFFERENCES`.
"""
from __future__ import annotations

from .events import (BuildEvent, BuildFailed, Built, CacheHit, ContainerRemoved, ContainerRunning, ContextSent,
                     Output, PullProgress, StepDone, StepStarted, Tagged, TriggersExecuting, Warning, render)
from .gotext import go_duration, go_list, go_quote_list, go_quote_rune
from .options import BuildArgs, BuildOptions
from .steps import DIFFERENCES, Builder, build

__all__ = [
    "BuildArgs", "BuildEvent", "BuildFailed", "BuildOptions", "Builder", "Built", "CacheHit", "ContainerRemoved",
    "ContainerRunning", "ContextSent", "DIFFERENCES", "Output", "PullProgress", "StepDone", "StepStarted", "Tagged",
    "TriggersExecuting", "Warning", "build", "go_duration", "go_list", "go_quote_list", "go_quote_rune", "render",
]
