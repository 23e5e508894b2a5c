"""``docker cp`` between the host and a container's file system (running or not).

Files travel as a tar written by :mod:`engine.layer` and are unpacked with the safe extractor of
:mod:`engine.extract`, so a container cannot smuggle a link out to the host through ``cp``.
Copying into a container writes its writable layer (``upper``, or the copy-mode root).
"""
from __future__ import annotations

import os
import shutil
import stat
import tempfile

from ..errors import ContainerError
from ..extract import extract_layer
from ..layer import Entry, scan_tree, write_tar
from .commit import container_layers, merged_entries, owner_map
from .containers import ContainerDirs
from .layerview import LayerStack
from ..values import replace


def split_arg(arg: str) -> tuple[str | None, str]:
    """``CONTAINER:PATH`` → (container, path); a local path (absolute, ``.``-relative) → (None, path)."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    container, _, path = arg.partition(":")
    return container, path


def copy(runtime, src: str, dest: str) -> None:
    """Copy ``src`` to ``dest``; exactly one of them names a container."""
    (sc, sp), (dc, dp) = split_arg(src), split_arg(dest)
    if (sc is None) == (dc is None):
        raise ContainerError("copying between containers is not supported" if sc else
                             "must specify at least one container source", exit_code=1)
    if sc is not None:
        _copy_out(runtime, sc, sp, dp)
    else:
        _copy_in(runtime, sp, dc, dp)


def _copy_out(runtime, ref: str, path: str, dest: str) -> None:
    c = runtime.get(ref)
    layers = container_layers(c, runtime.store)
    view = LayerStack(layers)
    parent, _, last = path.strip("/").rpartition("/")
    if last in ("", ".", ".."):
        rel = view.resolve(path)
    else:  # the parents resolve inside the container; the last component is copied as it is
        rel = "/".join(p for p in (view.resolve(parent), last) if p)
    if rel and view.lookup(rel) is None:
        raise ContainerError(f"Could not find the file /{rel} in container {ref}", exit_code=1)
    base = os.path.basename(rel) or "."
    entries = list(merged_entries(layers, owner_map(), root=rel)) if rel else \
        [Entry(".", "dir", 0o755), *(replace(e, path="./" + e.path)
                                     for e in merged_entries(layers, owner_map()))]
    cut = len(os.path.dirname(rel)) + 1 if os.path.dirname(rel) else 0
    entries = [replace(e, path=e.path[cut:]) for e in entries]
    with tempfile.TemporaryDirectory(dir=runtime.store.tmp_dir) as tmp:
        tar_path = os.path.join(tmp, "cp.tar")
        with open(tar_path, "wb") as f:
            write_tar(entries, f)
        unpack = os.path.join(tmp, "out")
        extract_layer(tar_path, unpack, same_owner=False)
        item = os.path.join(unpack, base)
        if os.path.isdir(dest):
            target = os.path.join(dest, base) if base != "." else dest
        else:
            parent_dir = os.path.dirname(os.path.abspath(dest))
            if not os.path.isdir(parent_dir):
                raise ContainerError(f"no such directory: {parent_dir}", exit_code=1)
            target = dest
        if os.path.isdir(item) and not os.path.islink(item) and os.path.isdir(target):
            shutil.copytree(item, target, symlinks=True, dirs_exist_ok=True)
        else:
            if os.path.lexists(target) and not os.path.isdir(target):
                os.unlink(target)
            shutil.move(item, target)


def _copy_in(runtime, src: str, ref: str, path: str) -> None:
    """Write ``src`` into the container's writable layer under ``path`` resolved *in* the container.

    The entries are unpacked by the safe extractor with the container path as their prefix, so a
    symbolic link in the writable layer is refused, never followed on the host.
    """
    c = runtime.get(ref)
    if not os.path.lexists(src):
        raise ContainerError(f"lstat {os.path.abspath(src)}: no such file or directory", exit_code=1)
    if not path.startswith("/"):
        path = "/" + (c.cwd.strip("/") + "/" if c.cwd.strip("/") else "") + path
    view = LayerStack(container_layers(c, runtime.store))
    rel = view.resolve(path, follow_last=True)
    st = view.lookup(rel) if rel else None
    if not rel or (st is not None and stat.S_ISDIR(st.st_mode)):
        into, name = rel, os.path.basename(os.path.abspath(src))
    else:
        if path.endswith("/"):
            raise ContainerError(f"no such directory: {path}", exit_code=1)
        into, name = os.path.dirname(rel), os.path.basename(rel)
    parents: list[Entry] = []
    prefix = ""
    for part in [p for p in into.split("/") if p]:
        prefix = f"{prefix}/{part}" if prefix else part
        pst = view.lookup(prefix)
        if pst is not None and not stat.S_ISDIR(pst.st_mode):
            raise ContainerError(f"cannot copy into /{prefix}: not a directory", exit_code=1)
        mode = stat.S_IMODE(pst.st_mode) if pst is not None else 0o755
        parents.append(Entry(prefix, "dir", mode, 0, 0, int(pst.st_mtime) if pst is not None else 0))
    top = f"{into}/{name}" if into else name
    root_owner = lambda uid, gid: (0, 0)  # noqa: E731  (docker cp makes copied files root's)
    upper = ContainerDirs(runtime.store, c.id).upper
    upper.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=runtime.store.tmp_dir) as tmp:
        tar_path = os.path.join(tmp, "cp.tar")
        with open(tar_path, "wb") as f:
            src_st = os.lstat(src)
            if os.path.isdir(src) and not os.path.islink(src):
                entries = [Entry(top, "dir", src_st.st_mode & 0o7777, 0, 0, int(src_st.st_mtime)),
                           *scan_tree(src, owner=root_owner, prefix=top + "/")]
            else:
                stage = tempfile.mkdtemp(dir=tmp)
                link = os.path.join(stage, "item")
                if os.path.islink(src):
                    os.symlink(os.readlink(src), link)
                else:
                    shutil.copy2(src, link)
                entries = [replace(e, path=top) for e in scan_tree(stage, owner=root_owner)]
            write_tar([*parents, *entries], f)
        extract_layer(tar_path, str(upper))
