"""Suite-wide test setup: the loopback-only network guard and the common fixtures.

Nothing in this test suite may talk to anything but loopback.  Two layers make sure of it:

* in-process: pytest-socket's ``socket_allow_hosts`` is installed for the whole session (collection,
  fixtures, every test and every thread it starts), so an ``AF_INET``/``AF_INET6`` ``connect`` or
  ``connect_ex`` to a non-loopback address raises ``pytest_socket.SocketConnectBlockedError`` before
  any packet is sent;
* subprocesses (dockerd, skopeo, the ``layerlab`` CLI…): ``tests/run_isolated.sh`` runs pytest in a
  network namespace that has only ``lo`` (``LAYERLAB_NET_ISOLATED=1`` tells the tests it did).

Fixtures shared by the whole suite live in ``tests/fixtures/`` and are registered below.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import pytest_socket

pytest_plugins = [
    "tests.fixtures.dockerd",
    "tests.fixtures.registry",
    "tests.fixtures.tools",
]

#: Where in-process sockets may connect.  CIDR entries are understood by pytest-socket >= 0.7.
LOOPBACK_HOSTS: list[str] = ["127.0.0.0/8", "127.0.0.1", "::1", "localhost"]

#: Proxy variables would send loopback traffic of tools (docker, skopeo, requests…) elsewhere.
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy")

_resolution_cache: dict[str, set[str]] = {}
_original_remove_restrictions = pytest_socket._remove_restrictions
_true_connect_ex = socket.socket.connect_ex


def _is_inet(sock: socket.socket) -> bool:
    return sock.family in (socket.AF_INET, socket.AF_INET6)


def install_loopback_guard() -> None:
    """Allow INET connections to loopback only; leave unix, netlink… sockets alone."""
    pytest_socket.socket_allow_hosts(
        LOOPBACK_HOSTS, allow_unix_socket=True, resolution_cache=_resolution_cache
    )
    inet_guarded_connect = socket.socket.connect

    def connect(sock: socket.socket, *args: Any) -> None:
        if _is_inet(sock):
            return inet_guarded_connect(sock, *args)
        return pytest_socket._true_connect(sock, *args)

    def connect_ex(sock: socket.socket, *args: Any) -> int:
        if not _is_inet(sock):
            return _true_connect_ex(sock, *args)
        try:
            inet_guarded_connect(sock, *args)
        except OSError as error:  # the real connect failed: report it the connect_ex way
            return error.errno or 0
        return 0

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]


def remove_loopback_guard() -> None:
    """Restore the real socket functions (end of session)."""
    _original_remove_restrictions()
    socket.socket.connect_ex = _true_connect_ex  # type: ignore[method-assign]


def _remove_restrictions_keeping_guard() -> None:
    # pytest-socket lifts its restrictions after every test; ours must outlive that so that
    # session-fixture teardown and threads left running between tests stay guarded too.
    _original_remove_restrictions()
    install_loopback_guard()


def pytest_configure(config: pytest.Config) -> None:
    for name in _PROXY_VARIABLES:
        os.environ.pop(name, None)
        os.environ.pop(name.upper(), None)
    pytest_socket._remove_restrictions = _remove_restrictions_keeping_guard
    install_loopback_guard()
    # never touch the user's real store or Docker credentials: a private home for the session
    import tempfile

    session_home = tempfile.mkdtemp(prefix="layerlab-test-home-")
    os.environ["LAYERLAB_HOME"] = os.path.join(session_home, "layerlab")
    os.environ["DOCKER_CONFIG"] = os.path.join(session_home, "docker-config")
    config._layerlab_session_home = session_home  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    home = getattr(config, "_layerlab_session_home", None)
    if home:
        shutil.rmtree(home, ignore_errors=True)
    pytest_socket._remove_restrictions = _original_remove_restrictions
    remove_loopback_guard()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    install_loopback_guard()


@pytest.fixture
def tmp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty ``LAYERLAB_HOME`` for one test."""
    home = tmp_path / "layerlab-home"
    home.mkdir()
    monkeypatch.setenv("LAYERLAB_HOME", str(home))
    return home
