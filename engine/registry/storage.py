"""On-disk storage of the embedded registry: blobs, upload sessions, repositories, manifests, tags.

Layout under ``root`` (``$LAYERLAB_HOME/registry`` by default)::

    blobs/sha256/<hex>                                  immutable content, named by its digest
    uploads/<uuid>/data, uploads/<uuid>/repo            an upload session: the bytes so far, its repository
    repositories/<name>/_layers/sha256/<hex>            the blob is visible in <name> (pushed or mounted)
    repositories/<name>/_manifests/revisions/sha256/<hex>   the manifest is in <name>; holds its media type
    repositories/<name>/_manifests/tags/<tag>           holds the digest the tag points to

Every file appears by an atomic rename of a complete, fsynced temp file, so a push killed midway
never leaves a servable partial blob and concurrent pushes (threads or processes) never see half a
file. A blob is verified against its digest before it is installed, and again (once per change of
the file) before it is served: bytes tampered with on disk are never served as valid.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import threading
import uuid as uuidlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import EngineError
from ..values import value

#: Repository names (distribution-spec): path components of lower-case alphanumerics and separators.
NAME_RE = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_NAME = 255
CHUNK = 1 << 20


class StorageError(EngineError):
    """A distribution-spec error: ``code`` (``NAME_INVALID`` …), HTTP ``status`` and ``detail``."""

    def __init__(self, code: str, message: str, status: int, detail: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.detail = detail


def name_invalid(name: str) -> StorageError:
    return StorageError("NAME_INVALID", "invalid repository name", 400, {"name": name})


def check_name(name: str) -> str:
    """``name`` if it is a valid repository name, else NAME_INVALID (``..``, upper case, too long …)."""
    if len(name) > MAX_NAME or not NAME_RE.match(name):
        raise name_invalid(name)
    return name


def check_digest(digest: str) -> str:
    if not DIGEST_RE.match(digest or ""):
        raise StorageError("DIGEST_INVALID", "provided digest did not match uploaded content", 400,
                           {"digest": digest, "reason": "not a sha256 digest"})
    return digest


def check_tag(tag: str) -> str:
    if not TAG_RE.match(tag):
        raise StorageError("MANIFEST_INVALID", "manifest invalid", 400, {"tag": tag, "reason": "invalid tag"})
    return tag


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1]


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` by rename of a fsynced temp file next to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{uuidlib.uuid4().hex}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def file_digest(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            n += len(chunk)
    return f"sha256:{h.hexdigest()}", n


@value
class Upload:
    """An upload session: its id, repository and the number of bytes received so far."""

    uuid: str
    repo: str
    size: int


@value
class StoredManifest:
    """A manifest as pushed: exact bytes, media type and digest."""

    digest: str
    media_type: str
    data: bytes


class RegistryStorage:
    """The registry's files under ``root``; safe for concurrent use by threads and processes."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.uploads = self.root / "uploads"
        self.repos = self.root / "repositories"
        self.corrupt = self.root / "corrupt"
        for d in (self.blobs, self.uploads, self.repos):
            d.mkdir(parents=True, exist_ok=True)
        self._verified: dict[str, tuple[int, int, int, int]] = {}
        self._verified_lock = threading.Lock()

    # --- locking -------------------------------------------------------------------------------

    @contextmanager
    def locked(self, name: str) -> Iterator[None]:
        """An exclusive flock on ``root/locks/<name>`` (between threads and processes)."""
        path = self.root / "locks" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # --- blobs -----------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blobs / _hex(check_digest(digest))

    def _repo(self, name: str) -> Path:
        return self.repos / check_name(name)

    def _layer_link(self, name: str, digest: str) -> Path:
        return self._repo(name) / "_layers" / "sha256" / _hex(check_digest(digest))

    def verified_blob(self, digest: str) -> Path | None:
        """The path of a blob whose bytes still match its digest; None when absent or corrupt.

        A blob that fails verification is moved to ``root/corrupt`` (it can be pushed again).
        """
        path = self.blob_path(digest)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)  # ctime: utime() cannot hide a change
        with self._verified_lock:
            if self._verified.get(digest) == key:
                return path
        actual, _ = file_digest(path)
        if actual != digest:
            self.corrupt.mkdir(exist_ok=True)
            try:
                os.replace(path, self.corrupt / f"{_hex(digest)}.{uuidlib.uuid4().hex[:8]}")
            except FileNotFoundError:
                pass
            return None
        with self._verified_lock:
            self._verified[digest] = key
        return path

    def blob_in_repo(self, name: str, digest: str) -> Path | None:
        """The verified blob if it is linked into repository ``name``."""
        if not self._layer_link(name, digest).exists():
            return None
        return self.verified_blob(digest)

    def link_blob(self, name: str, digest: str) -> None:
        link = self._layer_link(name, digest)
        if not link.exists():
            atomic_write(link, digest.encode())

    def unlink_blob(self, name: str, digest: str) -> bool:
        """Remove the blob from repository ``name`` (the data stays until no repository needs it)."""
        try:
            self._layer_link(name, digest).unlink()
            return True
        except FileNotFoundError:
            return False

    def mount_blob(self, name: str, digest: str, source: str) -> bool:
        """Cross-repository mount: link ``digest`` from ``source`` into ``name`` if ``source`` has it."""
        check_name(name)
        try:
            check_name(source)
        except StorageError:
            return False
        if self.blob_in_repo(source, digest) is None:
            return False
        self.link_blob(name, digest)
        return True

    def put_blob(self, name: str, data: bytes) -> str:
        """Store ``data`` as a blob of ``name`` (manifests, seeding); returns its digest."""
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        path = self.blob_path(digest)
        if self.verified_blob(digest) is None:
            atomic_write(path, data)
        self.link_blob(name, digest)
        return digest

    def put_blob_file(self, name: str, src: Path, digest: str) -> None:
        """Install the file ``src`` (already verified to hash to ``digest``) as a blob of ``name``."""
        with open(src, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(src, self.blob_path(digest))
        fsync_dir(self.blobs)
        self.link_blob(name, digest)

    # --- uploads ---------------------------------------------------------------------------------

    def _upload_dir(self, uuid: str) -> Path:
        if not UUID_RE.match(uuid):
            raise StorageError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404, {"uuid": uuid})
        return self.uploads / uuid

    def start_upload(self, name: str) -> Upload:
        check_name(name)
        uuid = str(uuidlib.uuid4())
        tmp = self.uploads / f".new-{uuid}"
        tmp.mkdir()
        (tmp / "data").touch()
        (tmp / "repo").write_text(name)
        os.rename(tmp, self.uploads / uuid)
        return Upload(uuid, name, 0)

    def upload(self, name: str, uuid: str) -> Upload:
        """The session ``uuid`` of repository ``name``; BLOB_UPLOAD_UNKNOWN otherwise."""
        d = self._upload_dir(uuid)
        try:
            repo = (d / "repo").read_text()
            size = (d / "data").stat().st_size
        except FileNotFoundError:
            raise StorageError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404, {"uuid": uuid}) from None
        if repo != name:
            raise StorageError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404, {"uuid": uuid})
        return Upload(uuid, repo, size)

    def upload_data_path(self, uuid: str) -> Path:
        return self._upload_dir(uuid) / "data"

    def cancel_upload(self, uuid: str) -> None:
        d = self._upload_dir(uuid)
        doomed = self.uploads / f".gone-{uuid}"
        try:
            os.rename(d, doomed)
        except FileNotFoundError:
            raise StorageError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404, {"uuid": uuid}) from None
        shutil.rmtree(doomed, ignore_errors=True)
        (self.root / "locks" / f"upload-{uuid}").unlink(missing_ok=True)

    def purge_uploads(self, max_age: float = 7 * 86400) -> int:
        """Remove upload sessions untouched for ``max_age`` seconds (pushes that never finished)."""
        import time

        purged = 0
        for entry in self.uploads.iterdir():
            try:
                idle = time.time() - max(entry.stat().st_mtime, (entry / "data").stat().st_mtime)
            except FileNotFoundError:
                idle = time.time() - entry.stat().st_mtime if entry.exists() else 0
            if idle > max_age:
                shutil.rmtree(entry, ignore_errors=True)
                purged += 1
        return purged

    def finish_upload(self, name: str, uuid: str, digest: str) -> str:
        """Verify the session's bytes against ``digest`` and install them; the session ends either way.

        DIGEST_INVALID (nothing stored) when the bytes hash to something else.
        """
        self.upload(name, uuid)
        data = self.upload_data_path(uuid)
        actual, size = file_digest(data)
        if actual != digest:
            self.cancel_upload(uuid)
            raise StorageError("DIGEST_INVALID", "provided digest did not match uploaded content", 400,
                               {"expected": digest, "actual": actual, "size": size})
        if self.verified_blob(digest) is None:
            self.put_blob_file(name, data, digest)
        else:
            self.link_blob(name, digest)
        self.cancel_upload(uuid)
        return digest

    # --- manifests and tags ------------------------------------------------------------------------

    def _revision(self, name: str, digest: str) -> Path:
        return self._repo(name) / "_manifests" / "revisions" / "sha256" / _hex(check_digest(digest))

    def _tag_path(self, name: str, tag: str) -> Path:
        return self._repo(name) / "_manifests" / "tags" / check_tag(tag)

    def put_manifest(self, name: str, data: bytes, media_type: str, tag: str | None) -> str:
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        if self.verified_blob(digest) is None:
            atomic_write(self.blob_path(digest), data)
        atomic_write(self._revision(name, digest), media_type.encode())
        if tag is not None:
            atomic_write(self._tag_path(name, tag), digest.encode())
        return digest

    def resolve(self, name: str, reference: str) -> str | None:
        """The manifest digest ``reference`` (tag or digest) names in ``name``, or None."""
        if DIGEST_RE.match(reference):
            return reference if self._revision(name, reference).exists() else None
        try:
            return self._tag_path(name, reference).read_text().strip()
        except (FileNotFoundError, StorageError):
            return None

    def manifest(self, name: str, reference: str) -> StoredManifest | None:
        digest = self.resolve(name, reference)
        if digest is None:
            return None
        try:
            media_type = self._revision(name, digest).read_text()
        except FileNotFoundError:
            return None
        path = self.verified_blob(digest)
        if path is None:
            return None
        return StoredManifest(digest, media_type, path.read_bytes())

    def has_manifest(self, name: str, digest: str) -> bool:
        return self._revision(name, digest).exists() and self.verified_blob(digest) is not None

    def delete_manifest(self, name: str, digest: str) -> bool:
        """Remove the manifest from ``name`` and every tag of ``name`` pointing to it."""
        try:
            self._revision(name, digest).unlink()
        except FileNotFoundError:
            return False
        for tag in self.tags(name):
            if self.resolve(name, tag) == digest:
                self._tag_path(name, tag).unlink(missing_ok=True)
        return True

    def delete_tag(self, name: str, tag: str) -> bool:
        try:
            self._tag_path(name, tag).unlink()
            return True
        except FileNotFoundError:
            return False

    def repo_exists(self, name: str) -> bool:
        return self._repo(name).is_dir()

    def tags(self, name: str) -> list[str]:
        d = self._repo(name) / "_manifests" / "tags"
        try:
            return sorted(t for t in os.listdir(d) if not t.startswith("."))
        except FileNotFoundError:
            return []

    def repositories(self) -> list[str]:
        """Names of repositories holding at least one manifest, sorted."""
        found = []
        for dirpath, dirnames, _ in os.walk(self.repos):
            if "_manifests" in dirnames:
                rel = os.path.relpath(dirpath, self.repos)
                if any(os.scandir(os.path.join(dirpath, "_manifests", "revisions", "sha256"))
                       if os.path.isdir(os.path.join(dirpath, "_manifests", "revisions", "sha256")) else ()):
                    found.append(rel.replace(os.sep, "/"))
            dirnames[:] = [d for d in dirnames if not d.startswith("_")]
        return sorted(found)


def paginate(items: list[str], n: int | None, last: str | None) -> tuple[list[str], bool]:
    """Items after ``last`` (lexically), at most ``n``; and whether more follow."""
    if last:
        items = [i for i in items if i > last]
    if n is None:
        return items, False
    return items[:n], n > 0 and len(items) > n
