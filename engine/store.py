"""The local content store: immutable blobs by digest plus SQLite metadata.

Layout of ``$LAYERLAB_HOME`` (default ``~/.local/share/layerlab``)::

    blobs/sha256/<hex>   immutable blobs (layer tars, configs, manifests), written to tmp/ + rename
    tmp/                 files being written; anything here after a crash is garbage
    meta.db              SQLite (WAL): images, tags, repo digests, layers, containers
    lock                 flock()ed by writers, so two kernels on one store never interleave

Blobs are written without the lock (content addressing makes that safe); every metadata change
happens inside ``with store.transaction():`` which holds the file lock and an IMMEDIATE
SQLite transaction.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .digest import CHUNK, check_digest, hex_of, sha256_bytes
from .errors import DigestMismatch, NotFound
from .values import value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing, which costs every command 3 ms
if TYPE_CHECKING:
    from typing import BinaryIO

SCHEMA = """
CREATE TABLE IF NOT EXISTS images(
    id TEXT PRIMARY KEY,
    parent TEXT,
    built_locally INTEGER NOT NULL DEFAULT 0,
    created TEXT,
    size INTEGER NOT NULL,
    added REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS images_parent ON images(parent);
CREATE TABLE IF NOT EXISTS image_layers(
    image_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    diff_id TEXT NOT NULL,
    PRIMARY KEY(image_id, idx)
);
CREATE INDEX IF NOT EXISTS image_layers_diff ON image_layers(diff_id);
CREATE TABLE IF NOT EXISTS layers(
    diff_id TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    tar_size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS layer_blobs(
    digest TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS layer_blobs_diff ON layer_blobs(diff_id);
CREATE TABLE IF NOT EXISTS tags(
    ref TEXT PRIMARY KEY,
    repo TEXT NOT NULL,
    image_id TEXT NOT NULL,
    added REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tags_image ON tags(image_id);
CREATE TABLE IF NOT EXISTS repo_digests(
    ref TEXT PRIMARY KEY,
    repo TEXT NOT NULL,
    image_id TEXT NOT NULL,
    manifest_digest TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS repo_digests_image ON repo_digests(image_id);
CREATE TABLE IF NOT EXISTS manifests(
    image_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    PRIMARY KEY(image_id, digest)
);
CREATE TABLE IF NOT EXISTS containers(
    id TEXT PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    image_id TEXT NOT NULL,
    created REAL NOT NULL,
    state TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS containers_image ON containers(image_id);
CREATE TABLE IF NOT EXISTS kv(
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def default_home() -> Path:
    """``$LAYERLAB_HOME`` or ``~/.local/share/layerlab``."""
    env = os.environ.get("LAYERLAB_HOME")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "layerlab"


@value
class ImageRow:
    """One row of ``images``: an image whose config blob is stored (``created`` as in its config)."""

    id: str
    parent: str | None
    built_locally: bool
    created: str | None
    size: int
    added: float


@value
class LayerRow:
    """One row of ``layers``: a layer by DiffID, with its file size total and its tar's size."""

    diff_id: str
    size: int
    tar_size: int


@value
class BlobRow:
    """One row of ``layer_blobs``: a stored blob holding a layer (uncompressed or compressed)."""

    digest: str
    diff_id: str
    media_type: str
    size: int


@value
class TagRow:
    """One row of ``tags``: a ``repo:tag`` reference and the image it names."""

    ref: str
    repo: str
    image_id: str


@value
class DigestRow:
    """One row of ``repo_digests``: a ``repo@digest`` reference, its image and manifest digest."""

    ref: str
    repo: str
    image_id: str
    manifest_digest: str


class BlobWriter:
    """Streams bytes into a temp file, hashing them; ``commit`` renames it to its digest."""

    def __init__(self, store: "Store", *, verify: bool = True) -> None:
        import hashlib  # here, not at the top: see engine.digest

        self._store = store
        # a fresh name, opened exclusively (what tempfile.mkstemp does; importing it costs 4 ms)
        self._tmp = os.path.join(store.tmp_dir, f"blob-{os.urandom(8).hex()}")
        fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._f = os.fdopen(fd, "wb", buffering=CHUNK)
        # verify=False: the caller hashes what it writes (a tar writer does) and passes the digest
        self._h = hashlib.sha256() if verify else None
        self.size = 0
        self.digest: str | None = None

    def free_bytes(self) -> int:
        """Space left for ordinary users on the file system the blob is written to."""
        st = os.fstatvfs(self._f.fileno())
        return st.f_bavail * st.f_frsize

    def write(self, data: bytes | memoryview) -> int:
        if self._h is not None:
            self._h.update(data)
        self._f.write(data)
        self.size += len(data)
        return len(data)

    def commit(self, expected: str | None = None) -> str:
        """Make the blob visible; verify it against ``expected`` first when given."""
        if self._h is None:
            if expected is None:
                self.abort()
                raise ValueError("an unverified BlobWriter needs the expected digest")
            digest = expected
        else:
            digest = "sha256:" + self._h.hexdigest()
        if expected is not None and expected != digest:
            self.abort()
            raise DigestMismatch(expected, digest, "blob")
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        self._store._install(self._tmp, digest)
        self.digest = digest
        return digest

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._f.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)

    def __enter__(self) -> "BlobWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.digest is None:
            self.abort()


class Store:
    """Blobs plus metadata under one home directory. Safe for several processes and threads."""

    def __init__(self, home: str | os.PathLike[str] | None = None) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.blob_dir = self.home / "blobs" / "sha256"
        self.tmp_dir = self.home / "tmp"
        for d in (self.blob_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.home / "lock"
        self._tlock = threading.RLock()
        self._depth = 0
        self._lock_fd: int | None = None
        self._db = sqlite3.connect(self.home / "meta.db", timeout=60, isolation_level=None,
                                   check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        with self._tlock:
            self._db.execute("PRAGMA busy_timeout=60000")
            self._db.execute("PRAGMA synchronous=NORMAL")
            ready = self._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal" and \
                self._db.execute("SELECT 1 FROM sqlite_master WHERE name='kv'").fetchone()
            if not ready:
                self._initialize()

    def _initialize(self) -> None:
        """Switch to WAL and create the schema, serialized across processes by the file lock."""
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        finally:
            os.close(fd)

    def close(self) -> None:
        with self._tlock:
            self._db.close()

    # --- locking -------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the writer lock and an IMMEDIATE transaction; nested calls join the outer one."""
        with self._tlock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                return
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._db.execute("BEGIN IMMEDIATE")
                self._depth = 1
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                else:
                    self._db.execute("COMMIT")
                finally:
                    self._depth = 0
            finally:
                os.close(fd)  # closing releases the flock

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._tlock:
            return self._db.execute(sql, args).fetchall()

    # --- blobs ---------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blob_dir / hex_of(check_digest(digest))

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def blob_writer(self, *, verify: bool = True) -> BlobWriter:
        """A writer for one blob; ``verify=False`` only for callers that hash what they write."""
        return BlobWriter(self, verify=verify)

    def put_blob(self, data: bytes, expected: str | None = None) -> str:
        """Store bytes; return their digest (verified against ``expected`` when given)."""
        digest = sha256_bytes(data)
        if expected is not None and expected != digest:
            raise DigestMismatch(expected, digest, "blob")
        if not self.blob_path(digest).exists():
            with self.blob_writer() as w:
                w.write(data)
                w.commit(digest)
        return digest

    def put_blob_stream(self, stream: BinaryIO, expected: str | None = None) -> tuple[str, int]:
        """Store a stream; return digest and size."""
        with self.blob_writer() as w:
            while chunk := stream.read(CHUNK):
                w.write(chunk)
            digest = w.commit(expected)
            return digest, w.size

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def open_blob(self, digest: str) -> BinaryIO:
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def _install(self, tmp: str, digest: str) -> None:
        final = self.blob_path(digest)
        if final.exists():
            os.unlink(tmp)
            return
        os.chmod(tmp, 0o444)
        os.replace(tmp, final)
        dfd = os.open(self.blob_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def delete_blob(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.blob_path(digest))

    def blob_digests(self) -> list[str]:
        return sorted("sha256:" + p.name for p in self.blob_dir.iterdir())

    # --- layers --------------------------------------------------------------------------

    def add_layer(self, diff_id: str, size: int, tar_size: int) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO layers(diff_id, size, tar_size) VALUES (?,?,?)",
                       (diff_id, size, tar_size))

    def add_layer_blob(self, digest: str, diff_id: str, media_type: str, size: int) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO layer_blobs(digest, diff_id, media_type, size) VALUES (?,?,?,?)",
                       (digest, diff_id, media_type, size))

    def layer(self, diff_id: str) -> LayerRow:
        rows = self._query("SELECT diff_id, size, tar_size FROM layers WHERE diff_id=?", (diff_id,))
        if not rows:
            raise NotFound(f"layer {diff_id} not found")
        return LayerRow(*rows[0])

    def has_layer(self, diff_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM layers WHERE diff_id=?", (diff_id,)))

    def layer_blobs(self, diff_id: str) -> list[BlobRow]:
        rows = self._query("SELECT digest, diff_id, media_type, size FROM layer_blobs WHERE diff_id=? "
                           "ORDER BY media_type LIKE '%gzip' DESC", (diff_id,))
        return [BlobRow(*r) for r in rows]

    def blob_row(self, digest: str) -> BlobRow | None:
        rows = self._query("SELECT digest, diff_id, media_type, size FROM layer_blobs WHERE digest=?", (digest,))
        return BlobRow(*rows[0]) if rows else None

    def layers(self) -> list[LayerRow]:
        return [LayerRow(*r) for r in self._query("SELECT diff_id, size, tar_size FROM layers")]

    def all_layer_blobs(self) -> list[BlobRow]:
        return [BlobRow(*r) for r in self._query("SELECT digest, diff_id, media_type, size FROM layer_blobs")]

    # --- images --------------------------------------------------------------------------

    def add_image(self, image_id: str, diff_ids: list[str] | tuple[str, ...], *, parent: str | None,
                  built_locally: bool, created: str | None, size: int) -> bool:
        """Record an image whose config blob is stored; return False if it was already known."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM images WHERE id=?", (image_id,)).fetchone():
                if parent or built_locally:
                    db.execute("UPDATE images SET parent=COALESCE(parent, ?), built_locally=MAX(built_locally, ?) "
                               "WHERE id=?", (parent, int(built_locally), image_id))
                return False
            db.execute("INSERT INTO images(id, parent, built_locally, created, size, added) VALUES (?,?,?,?,?,?)",
                       (image_id, parent, int(built_locally), created, size, time.time()))
            db.executemany("INSERT INTO image_layers(image_id, idx, diff_id) VALUES (?,?,?)",
                           [(image_id, i, d) for i, d in enumerate(diff_ids)])
            return True

    def image(self, image_id: str) -> ImageRow:
        rows = self._query("SELECT id, parent, built_locally, created, size, added FROM images WHERE id=?",
                           (image_id,))
        if not rows:
            raise NotFound(f"image {image_id} not found")
        r = rows[0]
        return ImageRow(r[0], r[1], bool(r[2]), r[3], r[4], r[5])

    def has_image(self, image_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM images WHERE id=?", (image_id,)))

    def images(self) -> list[ImageRow]:
        rows = self._query("SELECT id, parent, built_locally, created, size, added FROM images")
        return [ImageRow(r[0], r[1], bool(r[2]), r[3], r[4], r[5]) for r in rows]

    def image_ids_with_prefix(self, prefix: str) -> list[str]:
        return [r[0] for r in self._query("SELECT id FROM images WHERE id >= ? AND id < ?",
                                          (prefix, prefix + "\uffff"))]

    def children(self, image_id: str) -> list[str]:
        return [r[0] for r in self._query("SELECT id FROM images WHERE parent=?", (image_id,))]

    def image_diff_ids(self, image_id: str) -> list[str]:
        return [r[0] for r in self._query("SELECT diff_id FROM image_layers WHERE image_id=? ORDER BY idx",
                                          (image_id,))]

    def images_using_layer(self, diff_id: str) -> list[str]:
        return [r[0] for r in self._query("SELECT DISTINCT image_id FROM image_layers WHERE diff_id=?", (diff_id,))]

    def delete_image_row(self, image_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM images WHERE id=?", (image_id,))
            db.execute("DELETE FROM image_layers WHERE image_id=?", (image_id,))
            db.execute("DELETE FROM manifests WHERE image_id=?", (image_id,))
            db.execute("UPDATE images SET parent=NULL WHERE parent=?", (image_id,))

    def delete_layer(self, diff_id: str) -> list[str]:
        """Forget a layer and delete its blobs; return the blob digests removed."""
        with self.transaction() as db:
            blobs = [r[0] for r in db.execute("SELECT digest FROM layer_blobs WHERE diff_id=?", (diff_id,))]
            db.execute("DELETE FROM layer_blobs WHERE diff_id=?", (diff_id,))
            db.execute("DELETE FROM layers WHERE diff_id=?", (diff_id,))
        for b in blobs:
            self.delete_blob(b)
        return blobs

    def add_manifest(self, image_id: str, digest: str, media_type: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO manifests(image_id, digest, media_type) VALUES (?,?,?)",
                       (image_id, digest, media_type))

    def manifests(self, image_id: str) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self._query("SELECT digest, media_type FROM manifests WHERE image_id=?",
                                                  (image_id,))]

    def all_manifests(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self._query("SELECT image_id, digest FROM manifests")]

    # --- tags and digests ------------------------------------------------------------------

    def set_tag(self, ref: str, repo: str, image_id: str) -> str | None:
        """Point ``ref`` at ``image_id``; return the image it pointed at before (or None)."""
        with self.transaction() as db:
            old = db.execute("SELECT image_id FROM tags WHERE ref=?", (ref,)).fetchone()
            db.execute("INSERT OR REPLACE INTO tags(ref, repo, image_id, added) VALUES (?,?,?,?)",
                       (ref, repo, image_id, time.time()))
            return old[0] if old else None

    def remove_tag(self, ref: str) -> bool:
        with self.transaction() as db:
            return db.execute("DELETE FROM tags WHERE ref=?", (ref,)).rowcount > 0

    def tag(self, ref: str) -> TagRow | None:
        rows = self._query("SELECT ref, repo, image_id FROM tags WHERE ref=?", (ref,))
        return TagRow(*rows[0]) if rows else None

    def tags(self) -> list[TagRow]:
        return [TagRow(*r) for r in self._query("SELECT ref, repo, image_id FROM tags ORDER BY added, ref")]

    def tags_for(self, image_id: str) -> list[TagRow]:
        return [TagRow(*r) for r in self._query("SELECT ref, repo, image_id FROM tags WHERE image_id=? "
                                                "ORDER BY added, ref", (image_id,))]

    def set_repo_digest(self, ref: str, repo: str, image_id: str, manifest_digest: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO repo_digests(ref, repo, image_id, manifest_digest) VALUES (?,?,?,?)",
                       (ref, repo, image_id, manifest_digest))

    def remove_repo_digest(self, ref: str) -> bool:
        with self.transaction() as db:
            return db.execute("DELETE FROM repo_digests WHERE ref=?", (ref,)).rowcount > 0

    def repo_digest(self, ref: str) -> DigestRow | None:
        rows = self._query("SELECT ref, repo, image_id, manifest_digest FROM repo_digests WHERE ref=?", (ref,))
        return DigestRow(*rows[0]) if rows else None

    def repo_digests(self) -> list[DigestRow]:
        return [DigestRow(*r) for r in self._query("SELECT ref, repo, image_id, manifest_digest FROM repo_digests "
                                                   "ORDER BY ref")]

    def repo_digests_for(self, image_id: str) -> list[DigestRow]:
        return [DigestRow(*r) for r in self._query("SELECT ref, repo, image_id, manifest_digest FROM repo_digests "
                                                   "WHERE image_id=? ORDER BY ref", (image_id,))]

    # --- containers (rows only; the runtime owns their meaning) -------------------------------

    def container_rows(self) -> list[sqlite3.Row]:
        return self._query("SELECT id, name, image_id, created, state, data FROM containers ORDER BY created DESC")

    def containers_using(self, image_id: str) -> list[sqlite3.Row]:
        return self._query("SELECT id, name, image_id, created, state, data FROM containers WHERE image_id=? "
                           "ORDER BY created DESC", (image_id,))

    # --- key/value -------------------------------------------------------------------------

    def get_kv(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM kv WHERE key=?", (key,))
        return rows[0][0] if rows else None

    def set_kv(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO kv(key, value) VALUES (?,?)", (key, value))
