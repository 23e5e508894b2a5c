"""Containers: records in the store, directories on disk, and their lifecycle on the sandbox.

A container is a row in the store's ``containers`` table (its JSON record) plus
``$LAYERLAB_HOME/containers/<id>/`` holding ``upper/`` (the writable layer), ``work/`` (overlayfs'
work directory), ``state/`` (the sandbox's pid and exit code) and ``<id>-json.log`` (its output in
Docker's json-file format). The image's layers come from shared snapshots (:mod:`.snapshots`).

Records are values (:class:`Container`); :class:`Runtime` turns options into records and records
into running sandboxes. State that changes while nobody watches (a detached container exits) is
refreshed from ``state/`` whenever records are read.
"""
from __future__ import annotations

import json
import os
import time

from ..errors import ContainerError, NotFound
from ..store import Store
from ..values import asdict, field, fields, replace, value
from .options import PortSpec, VolumeSpec

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing, which costs every command 3 ms
if TYPE_CHECKING:
    from typing import Any

STATES = ("created", "running", "exited")


class NoSuchContainer(NotFound):
    """``Error: No such container: <name>``."""

    def __init__(self, name: str) -> None:
        super().__init__(f"No such container: {name}")
        self.name = name


@value
class Container:
    """Everything LayerLab knows about one container (its JSON record)."""

    id: str
    name: str
    image_id: str
    image: str                              # the image as the user named it (ps IMAGE column)
    argv: tuple[str, ...]                   # Entrypoint + Cmd as run
    env: tuple[str, ...]
    cwd: str
    user: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    hostname: str
    network: str
    tty: bool
    interactive: bool
    auto_remove: bool
    rootfs_mode: str
    lowerdirs: tuple[str, ...]
    ports: tuple[PortSpec, ...] = ()
    bound_ports: tuple[PortSpec, ...] = ()  # what was actually bound (host_port filled in)
    volumes: tuple[VolumeSpec, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)   # Cmd/Entrypoint/Env/... as Docker records
    created: float = 0.0
    state: str = "created"
    pid: int | None = None
    exit_code: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    error: str = ""

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def running(self) -> bool:
        return self.state == "running"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Container":
        d = json.loads(text)
        for key in ("argv", "env", "groups", "lowerdirs"):
            d[key] = tuple(d.get(key) or ())
        d["ports"] = tuple(PortSpec(**p) for p in d.get("ports") or ())
        d["bound_ports"] = tuple(PortSpec(**p) for p in d.get("bound_ports") or ())
        d["volumes"] = tuple(VolumeSpec(**v) for v in d.get("volumes") or ())
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def new_id() -> str:
    """64 random hex digits, as Docker's container IDs (``secrets.token_hex(32)``, whose import costs 3 ms)."""
    return os.urandom(32).hex()


class ContainerDirs:
    """The directories of one container."""

    def __init__(self, store: Store, container_id: str) -> None:
        self.root = store.home / "containers" / container_id
        self.upper = self.root / "upper"
        self.work = self.root / "work"
        self.state = self.root / "state"
        self.log = self.root / f"{container_id}-json.log"

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=False)
        self.state.mkdir()

    def remove(self) -> None:
        from .rootfs import remove, remove_tree

        if self.root.exists():
            remove(str(self.upper), str(self.work))
            remove_tree(str(self.root))


class ContainerRecords:
    """Reads and writes container records in the store, with Docker's name/ID lookup."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def put(self, c: Container) -> None:
        with self.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO containers(id, name, image_id, created, state, data) "
                       "VALUES (?,?,?,?,?,?)", (c.id, c.name, c.image_id, c.created, c.state, c.to_json()))

    def insert_new(self, c: Container) -> None:
        """Insert a record whose name must be free (Docker's conflict message otherwise)."""
        with self.store.transaction() as db:
            row = db.execute("SELECT id FROM containers WHERE name=?", (c.name,)).fetchone()
            if row:
                raise ContainerError(f'Conflict. The container name "/{c.name}" is already in use by container '
                                     f'"{row[0]}". You have to remove (or rename) that container to be able to '
                                     "reuse that name.")
            db.execute("INSERT INTO containers(id, name, image_id, created, state, data) VALUES (?,?,?,?,?,?)",
                       (c.id, c.name, c.image_id, c.created, c.state, c.to_json()))

    def delete(self, container_id: str) -> None:
        with self.store.transaction() as db:
            db.execute("DELETE FROM containers WHERE id=?", (container_id,))

    def all(self) -> list[Container]:
        return [self.refresh(Container.from_json(r["data"])) for r in self.store.container_rows()]

    def name_taken(self, name: str) -> bool:
        return bool(self.store._query("SELECT 1 FROM containers WHERE name=?", (name,)))

    def get(self, ref: str) -> Container:
        """By full ID, then exact name, then unique ID prefix (Docker's order)."""
        rows = self.store._query("SELECT data FROM containers WHERE id=?", (ref,))
        if not rows:
            rows = self.store._query("SELECT data FROM containers WHERE name=?", (ref.lstrip("/"),))
        if not rows and ref and all(c in "0123456789abcdef" for c in ref):
            rows = self.store._query("SELECT data FROM containers WHERE id >= ? AND id < ?", (ref, ref + "g"))
            if len(rows) > 1:
                raise ContainerError(f"Multiple IDs found with provided prefix: {ref}", exit_code=1)
        if not rows:
            raise NoSuchContainer(ref)
        return self.refresh(Container.from_json(rows[0]["data"]))

    def refresh(self, c: Container) -> Container:
        """Bring a running record up to date with what its sandbox left in ``state/``."""
        if c.state != "running":
            return c
        from .control import read_state

        dirs = ContainerDirs(self.store, c.id)
        try:
            st = read_state(str(dirs.state))
        except (ContainerError, ValueError):
            return c
        if st.running or (st.exit_code is None and not st.shim_lost):
            return c  # pid 1 has ended, its shim is still finishing (log, ports) and will record the code
        code_file = dirs.state / "exit_code"
        finished = code_file.stat().st_mtime if code_file.exists() else time.time()
        done = replace(c, state="exited", exit_code=st.exit_code if st.exit_code is not None else 137,
                                   finished_at=finished, pid=None,
                                   error="the container's supervisor disappeared" if st.shim_lost else "")
        self.put(done)
        return done


def container_dirs_on_disk(store: Store) -> list[str]:
    root = store.home / "containers"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


__all__ = ["Container", "ContainerDirs", "ContainerRecords", "NoSuchContainer", "new_id", "STATES",
           "container_dirs_on_disk"]
