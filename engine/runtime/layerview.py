"""Read-only view of a stack of overlay-format layer directories (whiteouts, opaque directories).

Layer snapshot directories use overlayfs' own on-disk format, because they are handed to the kernel
as ``lowerdir``\\ s: a deleted path is a character device 0/0 (or, kernel >= 6.7, an empty file
with the ``user.overlay.whiteout`` xattr), a directory whose lower contents are hidden carries
``user.overlay.opaque="y"`` (``trusted.overlay.*`` when the layer was written by real root without
``userxattr``).  :class:`LayerStack` answers "what does the merged tree hold at this path" without
mounting anything; the copy fallback and ``diff`` use it.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Sequence

WHITEOUT_XATTRS = ("user.overlay.whiteout", "trusted.overlay.whiteout")
OPAQUE_XATTRS = ("user.overlay.opaque", "trusted.overlay.opaque")


def _xattr(path: str, names: Sequence[str]) -> bytes | None:
    for name in names:
        try:
            return os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return None


def is_whiteout(path: str, st: os.stat_result) -> bool:
    """Whether ``path`` (with ``st`` = its lstat) is an overlayfs whiteout."""
    if stat.S_ISCHR(st.st_mode):
        return st.st_rdev == 0
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        return _xattr(path, WHITEOUT_XATTRS) is not None
    return False


def is_opaque(path: str) -> bool:
    """Whether the directory ``path`` hides the contents of the layers below it."""
    return _xattr(path, OPAQUE_XATTRS) == b"y"


def is_overlay_xattr(name: str) -> bool:
    """Whether an xattr name belongs to overlayfs' bookkeeping (never copied or compared)."""
    return name.startswith(("user.overlay.", "trusted.overlay."))


# states of one path inside one layer
_MISSING, _HIDDEN, _DIR, _OPAQUE = range(4)


class LayerStack:
    """The merged view of layer directories given top first, as overlayfs would present it."""

    def __init__(self, layers: Sequence[str]) -> None:
        self.layers = tuple(os.fspath(layer) for layer in layers)
        self._dir_states: dict[tuple[int, str], int] = {}

    def _dir_state(self, index: int, rel: str) -> int:
        key = (index, rel)
        state = self._dir_states.get(key)
        if state is None:
            path = os.path.join(self.layers[index], rel)
            try:
                st = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                state = _MISSING
            else:
                if not stat.S_ISDIR(st.st_mode):
                    state = _HIDDEN
                else:
                    state = _OPAQUE if is_opaque(path) else _DIR
            self._dir_states[key] = state
        return state

    def lookup(self, rel: str) -> os.stat_result | None:
        """lstat of ``rel`` (relative, no leading slash) in the merged view, or None if absent."""
        path = self.locate(rel)
        return os.lstat(path) if path is not None else None

    def locate(self, rel: str) -> str | None:
        """The host path that holds ``rel`` in the merged view, or None when it is absent.

        Like :meth:`lookup`, every parent component is checked with ``lstat`` in each layer, so a
        symbolic link in any layer is never followed on the host.
        """
        rel = rel.strip("/")
        if not rel:
            return self.layers[0] if self.layers else None
        parts = rel.split("/")
        for index, layer in enumerate(self.layers):
            stop_below = False
            present = True
            prefix = ""
            for part in parts[:-1]:
                prefix = f"{prefix}/{part}" if prefix else part
                state = self._dir_state(index, prefix)
                if state == _MISSING:
                    present = False
                    break
                if state == _HIDDEN:
                    return None
                if state == _OPAQUE:
                    stop_below = True
            if present:
                path = os.path.join(layer, rel)
                try:
                    st = os.lstat(path)
                except (FileNotFoundError, NotADirectoryError):
                    pass
                else:
                    return None if is_whiteout(path, st) else path
            if stop_below:
                return None
        return None

    def resolve(self, path: str, *, follow_last: bool = False) -> str:
        """``path`` with every symbolic link resolved *inside* the merged tree (Docker's
        ``FollowSymlinkInScope``): ``..`` stops at the root and absolute link targets start from
        it, so the result never leaves the tree.  Returns a relative path (``""`` is the root).
        """
        todo = [p for p in path.split("/") if p]
        done: list[str] = []
        hops = 0
        while todo:
            part = todo.pop(0)
            if part == ".":
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = "/".join(done + [part])
            st = self.lookup(candidate)
            if st is not None and stat.S_ISLNK(st.st_mode) and (todo or follow_last):
                hops += 1
                if hops > 40:
                    raise OSError(40, "too many levels of symbolic links", "/" + candidate)
                host = self.locate(candidate)
                target = os.readlink(host) if host else ""
                if target.startswith("/"):
                    done = []
                todo = [p for p in target.split("/") if p] + todo
                continue
            done.append(part)
        return "/".join(done)

    def listdir(self, rel: str) -> list[str]:
        """Names visible in the merged directory ``rel``."""
        rel = rel.strip("/")
        names: set[str] = set()
        for layer in self.layers:
            try:
                names.update(os.listdir(os.path.join(layer, rel)))
            except (FileNotFoundError, NotADirectoryError):
                continue
        return sorted(n for n in names if self.lookup(f"{rel}/{n}" if rel else n) is not None)
