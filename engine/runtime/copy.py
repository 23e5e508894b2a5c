"""``docker cp`` between the host and a container's file system (running or not).

Files travel as a tar written by :mod:`engine.layer` and are unpacked with the safe extractor of
:mod:`engine.extract`, so a container cannot smuggle a link out to the host through ``cp``.
Copying into a container writes its writable layer (``upper``, or the copy-mode root).
"""
from __future__ import annotations

import os
import shutil
import tempfile

from ..errors import ContainerError
from ..layer import scan_tree, write_tar
from .commit import copy_out_entries, container_layers
from .containers import ContainerDirs
from .layerview import LayerStack


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
    from ..extract import extract_layer

    c = runtime.get(ref)
    if not path.startswith("/"):
        path = "/" + path
    entries = copy_out_entries(c, runtime.store, path)
    base = os.path.basename(path.rstrip("/")) or "."
    with tempfile.TemporaryDirectory(dir=runtime.store.tmp_dir) as tmp:
        tar_path = os.path.join(tmp, "cp.tar")
        with open(tar_path, "wb") as f:
            write_tar(entries, f)
        unpack = os.path.join(tmp, "out")
        extract_layer(tar_path, unpack, same_owner=False)
        item = os.path.join(unpack, base)
        if os.path.isdir(dest):
            target = os.path.join(dest, base)
        else:
            parent = os.path.dirname(os.path.abspath(dest))
            if not os.path.isdir(parent):
                raise ContainerError(f"no such directory: {parent}", exit_code=1)
            target = dest
        if os.path.isdir(item) and os.path.isdir(target):
            shutil.copytree(item, target, symlinks=True, dirs_exist_ok=True)
        else:
            if os.path.lexists(target) and not os.path.isdir(target):
                os.unlink(target)
            shutil.move(item, target)


def _copy_in(runtime, src: str, ref: str, path: str) -> None:
    from ..extract import extract_layer

    c = runtime.get(ref)
    if not os.path.lexists(src):
        raise ContainerError(f"lstat {os.path.abspath(src)}: no such file or directory", exit_code=1)
    if not path.startswith("/"):
        path = "/" + (c.cwd.strip("/") + "/" if c.cwd.strip("/") else "") + path
    rel = os.path.normpath(path).lstrip("/")
    view = LayerStack(container_layers(c, runtime.store))
    st = view.lookup(rel) if rel else None
    import stat as _stat

    if not rel or (st is not None and _stat.S_ISDIR(st.st_mode)):
        into, name = rel, os.path.basename(os.path.abspath(src))
    else:
        into, name = os.path.dirname(rel), os.path.basename(rel)
    upper = ContainerDirs(runtime.store, c.id).upper
    target_dir = os.path.join(upper, into) if into else str(upper)
    os.makedirs(target_dir, exist_ok=True)
    root_owner = lambda uid, gid: (0, 0)  # noqa: E731  (docker cp makes copied files root's)
    with tempfile.TemporaryDirectory(dir=runtime.store.tmp_dir) as tmp:
        tar_path = os.path.join(tmp, "cp.tar")
        with open(tar_path, "wb") as f:
            if os.path.isdir(src) and not os.path.islink(src):
                from ..layer import Entry

                st_src = os.lstat(src)
                top = Entry(name, "dir", st_src.st_mode & 0o7777, 0, 0, int(st_src.st_mtime))
                write_tar([top, *scan_tree(src, owner=root_owner, prefix=name + "/")], f)
            else:
                parent = tempfile.mkdtemp(dir=tmp)
                link = os.path.join(parent, name)
                if os.path.islink(src):
                    os.symlink(os.readlink(src), link)
                else:
                    shutil.copy2(src, link)
                write_tar(scan_tree(parent, owner=root_owner), f)
        extract_layer(tar_path, target_dir)
