"""Registry storage, hub tokens and the hub's access policy, without HTTP."""
from __future__ import annotations

import hashlib

import pytest

from engine.registry import tokens
from engine.registry.hub import Account, Hub, HubError, denial_message, is_root_repository
from engine.registry.storage import RegistryStorage, StorageError, check_name, paginate


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("name", ["busybox", "library/busybox", "a/b/c", "my-app", "my__app", "a.b", "x0/y-1.z_2"])
def test_valid_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "Busybox", "a/../b", "../a", "a/./b", "a//b", "/a", "a/", "-a", "a-",
                                  "a___b", "_a", "a" * 256, "a b", "a/B", "a:b", "..", "a/.."])
def test_invalid_names(name):
    with pytest.raises(StorageError) as e:
        check_name(name)
    assert (e.value.code, e.value.status) == ("NAME_INVALID", 400)


def test_paginate():
    items = ["a", "b", "c", "d"]
    assert paginate(items, None, None) == (items, False)
    assert paginate(items, 2, None) == (["a", "b"], True)
    assert paginate(items, 2, "b") == (["c", "d"], False)
    assert paginate(items, 0, None) == ([], False)


def test_upload_session_lifecycle(tmp_path):
    storage = RegistryStorage(tmp_path)
    up = storage.start_upload("demo/app")
    with open(storage.upload_data_path(up.uuid), "ab") as f:
        f.write(b"hello")
    assert storage.upload("demo/app", up.uuid).size == 5
    with pytest.raises(StorageError) as e:
        storage.upload("other/app", up.uuid)  # a session belongs to its repository
    assert e.value.code == "BLOB_UPLOAD_UNKNOWN"
    with pytest.raises(StorageError) as e:
        storage.finish_upload("demo/app", up.uuid, digest_of(b"other"))
    assert e.value.code == "DIGEST_INVALID"
    assert not any(storage.blobs.iterdir())
    with pytest.raises(StorageError):
        storage.upload("demo/app", up.uuid)  # a refused upload is gone, nothing half-stored

    up = storage.start_upload("demo/app")
    storage.upload_data_path(up.uuid).write_bytes(b"hello")
    assert storage.finish_upload("demo/app", up.uuid, digest_of(b"hello")) == digest_of(b"hello")
    assert storage.blob_in_repo("demo/app", digest_of(b"hello")).read_bytes() == b"hello"
    assert storage.blob_in_repo("other/app", digest_of(b"hello")) is None
    with pytest.raises(StorageError) as e:
        storage.upload("demo/app", "../../etc")
    assert e.value.code == "BLOB_UPLOAD_UNKNOWN"


def test_stale_upload_sessions_are_purged(tmp_path):
    import os

    storage = RegistryStorage(tmp_path)
    old, new = storage.start_upload("a/b"), storage.start_upload("a/b")
    for path in (storage.uploads / old.uuid, storage.upload_data_path(old.uuid)):
        os.utime(path, (1, 1))
    assert storage.purge_uploads() == 1
    assert [p.name for p in storage.uploads.iterdir()] == [new.uuid]


def test_manifests_tags_and_catalog(tmp_path):
    storage = RegistryStorage(tmp_path)
    data = b'{"schemaVersion": 2}'
    digest = storage.put_manifest("b/app", data, "application/vnd.oci.image.manifest.v1+json", "v1")
    storage.put_manifest("a/app", data, "application/vnd.oci.image.manifest.v1+json", None)
    storage.start_upload("c/only-uploads")
    assert storage.repositories() == ["a/app", "b/app"]
    assert storage.manifest("b/app", "v1").data == data
    assert storage.manifest("a/app", "v1") is None and storage.manifest("a/app", digest).digest == digest
    assert storage.delete_manifest("b/app", digest)
    assert storage.tags("b/app") == [] and storage.manifest("b/app", "v1") is None
    assert storage.repositories() == ["a/app"]


def test_tokens_sign_verify_expire_and_tamper(tmp_path):
    secret = tokens.load_secret(tmp_path)
    assert tokens.load_secret(tmp_path) == secret and (tmp_path / "hub" / "token-secret").stat().st_mode & 0o077 == 0
    grant = tokens.Grant("repository", "alice/web", ("pull", "push"))
    token = tokens.issue(secret, "alice", (grant,), now=1000)
    claims = tokens.verify(secret, token, now=1100)
    assert claims.subject == "alice" and claims.allows("repository", "alice/web", "push")
    assert not claims.allows("repository", "bob/web", "pull")
    with pytest.raises(tokens.InvalidToken, match="expired"):
        tokens.verify(secret, token, now=1000 + tokens.LIFETIME + 1)
    with pytest.raises(tokens.InvalidToken, match="signature"):
        tokens.verify(b"another secret", token, now=1100)
    head, body, sig = token.split(".")
    forged_body = tokens._b64(tokens._unb64(body).replace(b"alice/web", b"bob/web!!"))
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(secret, f"{head}.{forged_body}.{sig}", now=1100)


def test_hub_policy(tmp_path):
    hub = Hub(RegistryStorage(tmp_path))
    alice, admin = Account("alice", False), Account("teacher", True)
    assert hub.granted(None, "repository", "alice/web", ("pull", "push")) == ("pull",)
    assert hub.granted(alice, "repository", "alice/web", ("pull", "push")) == ("pull", "push")
    assert hub.granted(alice, "repository", "bob/web", ("pull", "push")) == ("pull",)
    assert hub.granted(alice, "repository", "library/web", ("push",)) == ()
    assert hub.granted(alice, "repository", "web", ("push",)) == ()
    assert hub.granted(admin, "repository", "library/web", ("pull", "push")) == ("pull", "push")
    assert is_root_repository("web") and is_root_repository("library/web") and not is_root_repository("a/web")
    assert "rename your repository to alice/web" in denial_message("alice", "library/web")


def test_hub_accounts(tmp_path):
    hub = Hub(RegistryStorage(tmp_path))
    hub.add_user("alice", "wonderland")
    assert hub.authenticate("alice", "wonderland") == Account("alice", False)
    assert hub.authenticate("alice", "wonderland") == Account("alice", False)  # remembered success
    assert hub.authenticate("alice", "Wonderland") is None
    assert hub.authenticate("mallory", "x") is None
    hub.add_user("alice", "looking-glass", admin=True)
    assert hub.authenticate("alice", "wonderland") is None  # the remembered success is for the old hash
    assert hub.authenticate("alice", "looking-glass") == Account("alice", True)
    for bad in ("Alice", "library", "a", "x/y", "a..b"):
        with pytest.raises(HubError):
            hub.add_user(bad, "password")
    assert "wonderland" not in (tmp_path / "hub" / "accounts.json").read_text()
