"""Stage references: ``COPY --from``, ``FROM <earlier stage>``, ``--target``.

Docker's classic builder resolves ``COPY --from=X`` while building: X is a previous stage's name
(case-insensitive), else a number is a stage index, else X is an image reference to pull.  Doing
that check up front turns a late pull failure into an early error with a line number.
"""
from __future__ import annotations

import re

from .. import reference
from ..errors import InvalidReference
from .errors import DockerfileError
from .instructions import Copy, Dockerfile, Stage

_INDEX_RE = re.compile(r"[+-]?[0-9]+")


def resolve_from(dockerfile: Dockerfile, stage_index: int, value: str) -> int | str:
    """What ``COPY --from=value`` in stage ``stage_index`` copies from: a stage index or an image.

    Raises :class:`DockerfileError` when ``value`` names the current or a later stage, is an index
    out of range, or is neither a stage nor a valid image reference.
    """
    earlier = dockerfile.stages[:stage_index]
    for stage in earlier:
        if stage.name is not None and stage.name == value.lower():
            return stage.index
    if _INDEX_RE.fullmatch(value):
        index = int(value)
        if index == stage_index:
            raise DockerfileError(f"invalid from flag value {value}: refers to current build stage",
                                  hint=f"stage {index} is the stage being built; copy from an earlier one")
        if index < 0 or index > stage_index:
            raise DockerfileError(f"invalid from flag value {value}: index out of bounds",
                                  hint=f"only stages 0..{stage_index - 1} are built before this one"
                                  if stage_index else "this is the first stage; there is no stage to copy from")
        return index
    for stage in dockerfile.stages[stage_index:]:
        if stage.name is not None and stage.name == value.lower():
            where = "this stage" if stage.index == stage_index else f"the stage at line {stage.line}"
            raise DockerfileError(f"invalid from flag value {value}: stage {stage.name} is not built yet",
                                  line=stage.line,
                                  hint=f"{value} is {where}; COPY --from can only use stages defined above it")
    try:
        if not reference.looks_like_id(value):
            reference.parse(value)
    except InvalidReference as err:
        names = [stage.name for stage in earlier if stage.name]
        import difflib  # only for the hint of an error

        close = difflib.get_close_matches(value.lower(), names, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else (
            f"earlier stages: {', '.join(names)}" if names else "no earlier stage has a name (FROM image AS name)")
        raise DockerfileError(f"invalid from flag value {value}: {err}", hint=hint) from None
    return value


def check_stages(dockerfile: Dockerfile) -> None:
    """Check stage names and every ``COPY --from`` before building.

    Raises :class:`DockerfileError` (with the line of the offending instruction) for a stage name
    used twice (Docker: ``<name> stage name already used``) and for a ``COPY --from`` that
    :func:`resolve_from` rejects.  A ``--from`` that is a valid image reference but no stage is
    accepted, as Docker accepts it: the builder looks the image up when it gets there.
    """
    seen: dict[str, Stage] = {}
    for stage in dockerfile.stages:
        if stage.name is not None:
            if stage.name in seen:
                raise DockerfileError(f"{stage.name} stage name already used", line=stage.line,
                                      hint=f"line {stage.line}: the stage at line {seen[stage.name].line} "
                                           "has the same name; stage names must be unique")
            seen[stage.name] = stage
        for instruction in stage.instructions:
            if isinstance(instruction, Copy) and instruction.from_stage is not None:
                try:
                    resolve_from(dockerfile, stage.index, instruction.from_stage)
                except DockerfileError as err:
                    raise DockerfileError(err.message, line=instruction.line, end_line=instruction.end_line,
                                          hint=f"line {instruction.line}: {err.hint}") from None


def target_stages(dockerfile: Dockerfile, target: str) -> tuple[Stage, ...]:
    """The stages ``docker build --target`` builds: everything up to the named stage."""
    for stage in dockerfile.stages:
        if stage.name is not None and stage.name == target.lower():
            return dockerfile.stages[: stage.index + 1]
    names = [stage.name for stage in dockerfile.stages if stage.name]
    import difflib  # only for the hint of an error

    close = difflib.get_close_matches(target.lower(), names, n=1, cutoff=0.6)
    raise DockerfileError(f"failed to reach build target {target} in Dockerfile",
                          hint=f"did you mean {close[0]}?" if close else
                          (f"stages are named {', '.join(names)}" if names else "no stage has a name (FROM image AS name)"))
