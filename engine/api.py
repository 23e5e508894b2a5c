"""The engine facade: every verb the CLI and the notebook magics offer, as one method each.

>>> from engine import Engine
>>> eng = Engine("/tmp/ll-doc-home")            # or Engine() for $LAYERLAB_HOME
>>> eng.bootstrap().busybox.startswith("sha256:")
True
>>> [s.repo_tags for s in eng.images()]        # doctest: +SKIP
[('busybox:latest',), ('hello-world:latest',)]

Methods return values (frozen dataclasses); long operations will be generators of events.
Subscribers registered with :meth:`Engine.subscribe` see an :class:`~engine.events.Event` for
every change (images tagged, untagged, deleted, imported, loaded).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from . import images as img
from .errors import EngineError, ImageNotFound
from .events import Event, EventBus
from .images import ContainerUse, DeleteRecord, HistoryRow, ImageSummary
from .reference import parse
from .store import Store
from .values import value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing, which costs every command 3 ms
if TYPE_CHECKING:  # the modules imported where used, to keep `layerlab images` quick to start
    from collections.abc import Callable
    from typing import BinaryIO, Literal

    from .bootstrap import BootstrapResult
    from .check import CheckReport
    from .importer import ImportResult


@value
class PruneResult:
    """What ``docker image prune`` removed, and the layer bytes it freed."""

    records: tuple[DeleteRecord, ...]
    reclaimed: int


class Engine:
    """A LayerLab engine over one store (``$LAYERLAB_HOME`` by default)."""

    def __init__(self, home: str | os.PathLike[str] | None = None) -> None:
        self.store = Store(home)
        self.events = EventBus()
        self._runtime = None

    @property
    def home(self) -> Path:
        return self.store.home

    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``listener`` for every engine event; returns an unsubscribe function."""
        return self.events.subscribe(listener)

    def _emit(self, type_: str, action: str, id_: str, ref: str | None = None) -> None:
        self.events.emit(Event(type_, action, id_, ref))

    def close(self) -> None:
        self.store.close()

    # --- images ----------------------------------------------------------------------------

    def bootstrap(self) -> BootstrapResult:
        """Create ``busybox:latest`` and ``hello-world:latest`` from the host's busybox (idempotent)."""
        from .bootstrap import bootstrap

        result = bootstrap(self.store)
        if result.created:
            self._emit("image", "import", result.busybox, "busybox:latest")
            self._emit("image", "tag", result.busybox, "busybox:latest")
            self._emit("image", "import", result.hello_world, "hello-world:latest")
            self._emit("image", "tag", result.hello_world, "hello-world:latest")
        return result

    def import_image(self, src: str | os.PathLike[str] | BinaryIO, repo_tag: str | None = None, *,
                     changes: tuple[str, ...] = (), message: str = "") -> ImportResult:
        """``docker import``: ``src`` is a tarball path, ``-`` for stdin, or a binary stream."""
        from .importer import import_tarball

        if repo_tag:
            parse(repo_tag)
        if src == "-":
            result = import_tarball(self.store, sys.stdin.buffer, repo_tag, changes=changes, message=message)
        elif isinstance(src, (str, os.PathLike)):
            try:
                f = open(src, "rb")
            except FileNotFoundError:
                raise EngineError(f"open {os.fspath(src)}: no such file or directory") from None
            with f:
                result = import_tarball(self.store, f, repo_tag, changes=changes, message=message)
        else:
            result = import_tarball(self.store, src, repo_tag, changes=changes, message=message)
        self._emit("image", "import", result.image_id, result.tag)
        if result.tag:
            self._emit("image", "tag", result.image_id, result.tag)
        return result

    def image_id(self, name: str) -> str:
        """Resolve a name or (short) ID to a full image ID (``No such image`` otherwise)."""
        return img.resolve(self.store, name)

    def images(self, *, all: bool = False, reference: str | None = None) -> list[ImageSummary]:
        """``docker images`` as data."""
        return img.list_images(self.store, all=all, reference=reference)

    def tag(self, source: str, target: str) -> str:
        """``docker tag SOURCE TARGET``; returns the familiar target reference."""
        image_id = img.resolve(self.store, source)
        ref = img.tag_image(self.store, image_id, target)
        self._emit("image", "tag", image_id, ref.familiar)
        return ref.familiar

    def _container_uses(self) -> list[ContainerUse]:
        uses = []
        for row in self.store.container_rows():
            uses.append(ContainerUse(row["id"], row["image_id"], row["state"] in ("running", "paused", "restarting")))
        return uses

    def remove_image(self, name: str, *, force: bool = False, prune: bool = True) -> list[DeleteRecord]:
        """``docker rmi`` of one name or ID; returns Untagged/Deleted records in Docker's order."""
        records = img.delete_image(self.store, name, force=force, prune=prune, uses=self._container_uses())
        if any(r.action == "Deleted" for r in records):
            self._collect_snapshots()
        for r in records:
            self._emit("image", "untag" if r.action == "Untagged" else "delete", r.value, None)
        return records

    def _collect_snapshots(self) -> None:
        """Delete layer snapshots that no image and no container needs any more."""
        import json

        from .digest import hex_of
        from .runtime.snapshots import prune_snapshots

        keep = {hex_of(c) for c in img.image_used_chain_ids(self.store)}
        for row in self.store.container_rows():
            keep.update(os.path.basename(d) for d in json.loads(row["data"]).get("lowerdirs") or ())
        prune_snapshots(self.store, keep)

    def history(self, name: str) -> list[HistoryRow]:
        """``docker history`` as data, newest first."""
        return img.history(self.store, img.resolve(self.store, name))

    def inspect_image(self, name: str) -> dict:
        """``docker image inspect`` of one image."""
        return img.inspect_image(self.store, img.resolve(self.store, name))

    def prune_images(self, *, all: bool = False) -> PruneResult:
        """``docker image prune [-a]``: dangling (or all unused) images, then orphan blobs."""
        uses = self._container_uses()  # pruning deletes images only, so these stay true
        used = {u.image_id for u in uses}
        records: list[DeleteRecord] = []
        sizes_before = {row.diff_id: row.size for row in self.store.layers()}
        for summary in img.list_images(self.store, all=True):
            if not self.store.has_image(summary.id) or summary.id in used or self.store.children(summary.id):
                continue
            if not all and (summary.repo_tags or summary.repo_digests):
                continue
            try:
                records += img.delete_image(self.store, summary.id, force=all, prune=True, uses=uses)
            except EngineError:
                continue
        from .check import orphan_blobs

        after = {row.diff_id for row in self.store.layers()}
        reclaimed = sum(size for d, size in sizes_before.items() if d not in after)
        for digest in orphan_blobs(self.store):
            self.store.delete_blob(digest)
        self._collect_snapshots()
        for r in records:
            self._emit("image", "untag" if r.action == "Untagged" else "delete", r.value, None)
        return PruneResult(tuple(records), reclaimed)

    # --- builds -----------------------------------------------------------------------------------

    def build(self, opts):
        """``docker build`` (classic builder): a generator of :mod:`engine.builder` events.

        >>> for event in eng.build(BuildOptions(context="web", tags=("static_web",))):  # doctest: +SKIP
        ...     print(render(event))
        """
        from .builder import build

        yield from build(self, opts)

    # --- containers -----------------------------------------------------------------------------

    @property
    def runtime(self):
        """The container runtime over this engine's store (created on first use)."""
        if self._runtime is None:
            from .runtime.manager import Runtime

            self._runtime = Runtime(self.store)
        return self._runtime

    def pull_for_run(self, opts, progress=None) -> None:
        """``--pull``: pull ``opts.image`` first when the store lacks it (``missing``) or always; each
        transfer event goes to ``progress`` (``NotFoundLocally`` first when missing). The registry
        client is imported only when there is something to pull."""
        policy = getattr(opts, "pull", "missing")
        if policy == "never":
            return
        if policy == "missing":
            try:
                img.resolve(self.store, opts.image)
                return
            except ImageNotFound:
                pass
            except EngineError:
                return  # an invalid or ambiguous name: the create reports it
        from .autopull import pull_for_run

        for event in pull_for_run(self, opts.image, missing=policy == "missing"):
            if progress is not None:
                progress(event)

    def create_container(self, opts, *, progress=None):
        """``docker create``: returns the new :class:`~engine.runtime.containers.Container`.

        As ``docker create``, a missing image is pulled first (``opts.pull``: missing, always, never);
        ``progress(event)`` sees the pull's transfer events.
        """
        self.pull_for_run(opts, progress)
        c = self.runtime.create(opts)
        self._emit("container", "create", c.id, c.name)
        return c

    def run(self, opts, *, output, stdin=None, progress=None):
        """``docker run`` in the foreground; streams to ``output(stream, bytes)``; returns (container, code).

        A missing image is pulled first (``opts.pull``); without ``progress`` the pull's lines go to
        ``output("stderr", …)``, where ``docker run`` prints them.
        """
        self.pull_for_run(opts, progress or _progress_lines(output))
        c, code = self.runtime.run(opts, output=output, stdin=stdin)
        self._emit("container", "die", c.id, c.name)
        if opts.auto_remove:
            self._emit("container", "destroy", c.id, c.name)
        return c, code

    def run_detached(self, opts, *, progress=None):
        """``docker run -d``: returns the running container's record (a missing image is pulled first)."""
        self.pull_for_run(opts, progress)
        c = self.runtime.run_detached(opts)
        self._emit("container", "start", c.id, c.name)
        return c

    def start(self, ref: str):
        """``docker start`` (in the background)."""
        c = self.runtime.start_detached(ref)
        self._emit("container", "start", c.id, c.name)
        return c

    def start_attached(self, ref: str, *, output) -> int:
        """``docker start -a``: streams to ``output(stream, bytes)``; returns the exit code."""
        code = self.runtime.start_attached(ref, output=output)
        self._emit("container", "die", self.runtime.get(ref).id, ref)
        return code

    def exec(self, ref: str, argv, *, output, env=(), user=None, workdir=None, stdin=None, tty=False,
             detach=False) -> int:
        """``docker exec``: a command in a running container's namespaces; returns its exit code."""
        return self.runtime.exec(ref, tuple(argv), env=tuple(env), user=user, workdir=workdir, output=output,
                                 stdin=stdin, tty=tty, detach=detach)

    def logs(self, ref: str, *, tail: int | None = None, follow: bool = False):
        """``docker logs``: an iterator of log lines (``stream``, ``text``, ``time``)."""
        return self.runtime.logs(ref, tail=tail, follow=follow)

    def containers(self, *, all: bool = False):
        """``docker ps [-a]`` as records, newest first."""
        return self.runtime.list(all=all)

    def container(self, ref: str):
        """One container by ID, name or ID prefix (``No such container`` otherwise)."""
        return self.runtime.get(ref)

    def remove_container(self, ref: str, *, force: bool = False):
        c = self.runtime.remove(ref, force=force)
        self._emit("container", "destroy", c.id, c.name)
        return c

    def stop(self, ref: str, *, timeout: float = 10):
        c = self.runtime.stop(ref, timeout=timeout)
        self._emit("container", "stop", c.id, c.name)
        return c

    def kill(self, ref: str, sig: int = 9):
        c = self.runtime.kill(ref, sig)
        self._emit("container", "kill", c.id, c.name)
        return c

    def wait(self, ref: str, *, timeout: float | None = None) -> int:
        return self.runtime.wait(ref, timeout=timeout)

    def diff(self, ref: str):
        """``docker diff``: list of changes (kind A/C/D, path)."""
        return self.runtime.diff(ref)

    def commit(self, ref: str, repo_tag: str | None = None, *, message: str = "", author: str = "",
               changes: tuple[str, ...] = ()) -> str:
        """``docker commit``: freeze a container's writable layer into a new image; returns its ID."""
        from .runtime.manager import commit_container

        if repo_tag:
            parse(repo_tag)
        c = self.runtime.get(ref)
        image_id = commit_container(self.store, c, message=message, author=author, changes=changes)
        self._emit("container", "commit", c.id, c.name)
        if repo_tag:
            self.tag(image_id, repo_tag)
        return image_id

    def export(self, ref: str, out: BinaryIO | str | os.PathLike[str]) -> None:
        """``docker export``: the container's whole file system as a tar stream (or a file at a path)."""
        from .runtime.commit import export

        container = self.runtime.get(ref)
        if isinstance(out, (str, os.PathLike)):
            _write_file(out, lambda f: export(container, self.store, f))
        else:
            export(container, self.store, out)

    def copy(self, src: str, dest: str) -> None:
        """``docker cp``: one of ``src``/``dest`` is ``CONTAINER:PATH``."""
        from .runtime.copy import copy

        copy(self.runtime, src, dest)

    # --- archives ----------------------------------------------------------------------------

    def save(self, names: list[str], out: BinaryIO | str | os.PathLike[str], *,
             format: Literal["docker", "oci"] = "docker") -> None:
        """``docker save``: a docker-archive (default) or OCI layout of ``names``."""
        from . import archive

        for n in names:
            img.resolve(self.store, n)
        if isinstance(out, (str, os.PathLike)):
            if format == "oci" and (os.path.isdir(out) or os.fspath(out).endswith("/")):
                archive.save_oci_dir(self.store, names, out)
                return
            _write_file(out, lambda f: archive.save(self.store, names, f, format=format))
        else:
            archive.save(self.store, names, out, format=format)
        for n in names:
            self._emit("image", "save", img.resolve(self.store, n), n)

    def load(self, src: BinaryIO | str | os.PathLike[str]):
        """``docker load``: returns the loaded images with their tags."""
        from . import archive

        loaded = archive.load(self.store, src)
        for li in loaded:
            self._emit("image", "load", li.image_id, None)
            for t in li.tags:
                self._emit("image", "tag", li.image_id, t)
        return loaded

    # --- registries (engine.registry; imported on first use) ------------------------------------

    def registry_settings(self):
        """The hub mirror, insecure registries and Internet switch of this home (engine.registry.settings)."""
        from .registry.settings import load

        return load(self.home)

    def set_registry_settings(self, **changes):
        """Change and persist ``hub_mirror``, ``insecure_registries`` or ``allow_internet``; returns the settings."""
        from .registry.settings import update

        return update(self.home, **changes)

    def pull(self, name: str, *, all_tags: bool = False):
        """``docker pull [-a]``: a generator of transfer events; the last is ``Pulled``."""
        from .registry.events import Pulled, TagDigest
        from .registry.pull import pull

        for event in pull(self.store, name, self.registry_settings(), all_tags=all_tags):
            if isinstance(event, (Pulled, TagDigest)):
                self._emit("image", "pull", getattr(event, "image_id", ""), getattr(event, "reference", name))
            yield event

    def push(self, name: str):
        """``docker push``: a generator of transfer events; the last is ``Pushed``."""
        from .registry.events import Pushed
        from .registry.push import push

        for event in push(self.store, name, self.registry_settings()):
            if isinstance(event, Pushed):
                self._emit("image", "push", img.resolve(self.store, name), name)
            yield event

    def login(self, server: str | None, username: str, password: str) -> str:
        """``docker login``: verify against the registry, store in Docker's config.json; "Login Succeeded"."""
        from .registry.account import login

        return login(self.registry_settings(), server, username, password)[0]

    def logout(self, server: str | None) -> str:
        """``docker logout``: "Removing login credentials for …" (or "Not logged in to …")."""
        from .registry.account import logout

        return logout(server)

    def search(self, term: str, *, limit: int = 25):
        """``docker search`` on Docker Hub's index (the classroom mirror unless the Internet is allowed)."""
        from .registry.account import search

        return search(self.registry_settings(), term, limit)

    # --- maintenance --------------------------------------------------------------------------

    def check(self) -> CheckReport:
        """``layerlab system check``: verify every blob digest and every reference."""
        from .check import check_store

        return check_store(self.store, extra_checks=(runtime_problems,))

    # --- registry server and classroom hub (engine/registry/server.py, hub.py, service.py) ---------

    def registry_start(self, *, port: int = 5000, hub: bool = False, auth: str | None = None,
                       root: str | None = None, host: str = "127.0.0.1"):
        """``layerlab registry start``: serve a registry (``hub``: a classroom hub) in the background.

        Returns a :class:`~engine.registry.service.RegistryStatus` once ``/v2/`` answers. A new hub
        is seeded with ``library/busybox`` and ``library/hello-world`` when the host has busybox.
        """
        from .registry import service

        if hub:
            self._seed_if_empty(root)
        return service.start(self.home, port=port, host=host, hub=hub, auth=auth, root=root)

    def registry_stop(self):
        """``layerlab registry stop``: stop the background registry (no-op when none runs)."""
        from .registry import service

        return service.stop(self.home)

    def registry_status(self):
        """``layerlab registry status`` as a :class:`~engine.registry.service.RegistryStatus`."""
        from .registry import service

        return service.status(self.home)

    def hub_seed(self, *, root: str | None = None) -> list[str]:
        """``layerlab hub seed``: publish busybox and hello-world (bootstrapped if needed) as library/…."""
        from .registry.seed import seed
        from .registry.service import default_root
        from .registry.storage import RegistryStorage

        self.bootstrap()
        return seed(self.store, RegistryStorage(root or default_root(self.home)))

    def _seed_if_empty(self, root: str | None) -> None:
        from .bootstrap import busybox_available
        from .registry.service import default_root
        from .registry.storage import RegistryStorage

        storage = RegistryStorage(root or default_root(self.home))
        if not storage.tags("library/busybox") and busybox_available():
            self.hub_seed(root=root)


def _progress_lines(output):
    """A ``progress`` callback writing a pull's lines as ``docker run`` shows them, to ``output("stderr", …)``."""
    def progress(event) -> None:
        from .registry.events import render_daemon

        line = render_daemon(event)
        if line is not None:
            output("stderr", (line + "\n").encode())
    return progress


def _write_file(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through a temp file beside it, renamed when complete (never half a file)."""
    tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def runtime_problems(store: Store):
    """``system check`` for containers: leftover processes, directories without records and back."""
    from .check import Problem
    from .runtime.containers import ContainerDirs, ContainerRecords, container_dirs_on_disk
    from .runtime.leftovers import leftovers

    records = ContainerRecords(store).all()
    known = {c.id for c in records}
    problems = []
    for name in container_dirs_on_disk(store):
        if name not in known:
            problems.append(Problem("leftover-container-dir", name, "directory of a container that has no record"))
    for c in records:
        if not ContainerDirs(store, c.id).root.exists():
            problems.append(Problem("missing-container-dir", c.id, f"container {c.name} has no directory"))
    state_dirs = {str(ContainerDirs(store, c.id).state) for c in records}
    base = str(store.home / "containers")
    for item in leftovers(state_dirs, base):
        if not item.state_dir.startswith(base + os.sep):
            continue  # another store's container
        problems.append(Problem(f"leftover-{item.kind}", str(item.pid), str(item)))
    return problems

