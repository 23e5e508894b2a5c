"""``-u user[:group]`` resolved through the container's own ``/etc/passwd`` and ``/etc/group``.

Rules follow runc's ``user.GetExecUser``: names are looked up in the files; a numeric id that is not
listed is used as it is; the group defaults to the user's primary group (0 for an unlisted uid);
supplementary groups are the groups that list the user as a member.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import ContainerError
from ..values import value
from .layerview import LayerStack, is_whiteout


@value
class ExecUser:
    """Who a container process runs as: ids, supplementary groups and home directory."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def read_merged(layers: Sequence[str], rel: str, limit: int = 1 << 20) -> bytes | None:
    """Contents of a regular file in the merged view of ``layers`` (top first), or None."""
    rel = rel.strip("/")
    if LayerStack(layers).lookup(rel) is None:
        return None
    for layer in layers:
        path = os.path.join(layer, rel)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if is_whiteout(path, st) or not os.path.isfile(path) or os.path.islink(path):
            return None
        with open(path, "rb") as f:
            return f.read(limit)
    return None


def _entries(data: bytes | None) -> list[list[str]]:
    if not data:
        return []
    rows = []
    for line in data.decode("utf-8", "replace").splitlines():
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def resolve_user(spec: str, layers: Sequence[str]) -> ExecUser:
    """Resolve ``user[:group]`` (names or numbers) for a container whose layers are ``layers``."""
    user, _, group = (spec or "").partition(":")
    passwd = [r for r in _entries(read_merged(layers, "etc/passwd")) if len(r) >= 7]
    groups = [r for r in _entries(read_merged(layers, "etc/group")) if len(r) >= 4]
    uid, gid, home, name = 0, 0, "/", "root"
    if user:
        match = next((r for r in passwd if r[0] == user or (user.isdigit() and r[2] == user)), None)
        if match:
            uid, gid, home, name = int(match[2]), int(match[3]), match[5] or "/", match[0]
        elif user.isdigit():
            uid, gid, name = int(user), 0, ""
        else:
            raise ContainerError(f"unable to find user {user}: no matching entries in passwd file")
    else:
        match = next((r for r in passwd if r[2] == "0"), None)
        if match:
            gid, home, name = int(match[3]), match[5] or "/", match[0]
    if group:
        gmatch = next((r for r in groups if r[0] == group or (group.isdigit() and r[2] == group)), None)
        if gmatch:
            gid = int(gmatch[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise ContainerError(f"unable to find group {group}: no matching entries in group file")
    extra = tuple(sorted({int(r[2]) for r in groups if name and name in r[3].split(",") and r[2].isdigit()}
                         - {gid})) if not group else ()
    return ExecUser(uid, gid, extra, home)
