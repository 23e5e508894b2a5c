"""The suite's loopback-only guard works: outside addresses are refused, loopback is not."""

from __future__ import annotations

import _socket
import errno
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import pytest_socket

OUTSIDE = ("192.0.2.1", 9)  # TEST-NET-1 (RFC 5737), discard port: never routed anywhere real

pytestmark = pytest.mark.filterwarnings("ignore:A test tried to use socket.socket.connect")


@pytest.fixture
def guard_installed() -> None:
    """Refuse to even try an outside connection when the guard is not in place."""
    assert socket.socket.connect is not _socket.socket.connect, "loopback guard is not installed"
    assert socket.socket.connect_ex is not _socket.socket.connect_ex, "connect_ex is not guarded"


@pytest.fixture
def loopback_server():
    """A TCP echo-once server on 127.0.0.1 run by the test itself; yields its port."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                connection.sendall(connection.recv(100).upper())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
    server.close()
    thread.join(timeout=5)


def test_outside_connect_is_blocked_before_sending(guard_installed) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        with pytest.raises(pytest_socket.SocketConnectBlockedError, match="192.0.2.1"):
            sock.connect(OUTSIDE)


def test_outside_create_connection_and_connect_ex_are_blocked(guard_installed) -> None:
    with pytest.raises(pytest_socket.SocketConnectBlockedError):
        socket.create_connection(OUTSIDE, timeout=2)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(pytest_socket.SocketConnectBlockedError):
            sock.connect_ex(OUTSIDE)
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        with pytest.raises(pytest_socket.SocketConnectBlockedError):
            sock.connect(("2001:db8::1", 9))  # IPv6 documentation prefix


def test_outside_connect_from_a_thread_is_blocked(guard_installed) -> None:
    caught: list[BaseException] = []

    def connect() -> None:
        try:
            socket.create_connection(OUTSIDE, timeout=2)
        except BaseException as error:  # noqa: BLE001 - handed to the test
            caught.append(error)

    thread = threading.Thread(target=connect)
    thread.start()
    thread.join(timeout=10)
    assert len(caught) == 1
    assert isinstance(caught[0], pytest_socket.SocketConnectBlockedError)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_connection_works(loopback_server: int, host: str) -> None:
    with socket.create_connection((host, loopback_server), timeout=5) as sock:
        sock.sendall(b"ping")
        assert sock.recv(100) == b"PING"


def test_loopback_connect_ex_works(loopback_server: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        assert sock.connect_ex(("127.0.0.1", loopback_server)) == 0


def test_unix_sockets_are_allowed(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(path)


def _interfaces_of_this_namespace() -> list[str]:
    """Interfaces of our network namespace (/sys/class/net would show the host's)."""
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    return [line.split(":", 1)[0].strip() for line in lines]


def test_outside_unreachable_for_subprocesses() -> None:
    if os.environ.get("LAYERLAB_NET_ISOLATED") != "1":
        pytest.skip("not run through tests/run_isolated.sh as root (LAYERLAB_NET_ISOLATED != 1)")
    assert _interfaces_of_this_namespace() == ["lo"]
    script = (
        "import socket, sys\n"
        "try:\n"
        f"    socket.create_connection({OUTSIDE!r}, timeout=2)\n"
        "except OSError as error:\n"
        "    print(error.errno)\n"
        "    sys.exit(0)\n"
        "sys.exit('connected to the outside')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == errno.ENETUNREACH
