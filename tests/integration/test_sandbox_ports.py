"""Published ports: the shim proxies host ports into the container's own network namespace."""
from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import ContainerError
from engine.runtime import sandbox
from engine.runtime.leftovers import leftovers
from engine.runtime.ports import PortBinding, PortInUse, bind_ports
from tests.integration.test_sandbox_support import (  # noqa: F401 - fixtures
    Containers,
    busybox_layer,
    containers,
    wait_for,
)

pytestmark = pytest.mark.integration

HTTPD = "mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www"


def http_get(port: int, path: str = "/", timeout: float = 10.0) -> tuple[int, bytes]:
    """GET through the published port, retrying while the server in the container is not up yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
            if data:
                head, _, body = data.partition(b"\r\n\r\n")
                return int(head.split()[1]), body
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"no HTTP answer on port {port}")
        time.sleep(0.05)


@pytest.fixture
def published(containers: Containers, tmp_path: Path) -> Iterator[list[sandbox.Sandbox]]:
    """Started boxes, killed at the end."""
    boxes: list[sandbox.Sandbox] = []
    yield boxes
    for box in boxes:
        with box:
            pass


def test_published_port_serves_a_file_from_the_container(containers: Containers,
                                                          published: list[sandbox.Sandbox]) -> None:
    spec = containers.spec("sh", "-c", HTTPD.format(text="hello-from-the-container"),
                           ports=(PortBinding("127.0.0.1", 0, 80),))
    box = sandbox.start(spec)
    published.append(box)
    (bound,) = box.ports
    assert bound.host_ip == "127.0.0.1" and bound.container_port == 80 and bound.host_port > 0
    assert str(bound) == f"127.0.0.1:{bound.host_port}->80/tcp"
    assert http_get(bound.host_port) == (200, b"hello-from-the-container\n")
    assert http_get(bound.host_port, "/nosuch")[0] == 404


def test_two_containers_publish_port_80_at_once(containers: Containers, published: list[sandbox.Sandbox]) -> None:
    for name in ("one", "two"):
        spec = containers.spec("sh", "-c", HTTPD.format(text=name), ports=(PortBinding("", 0, 80),))
        published.append(sandbox.start(spec))
    first, second = (box.ports[0] for box in published)
    assert first.host_ip == second.host_ip == "0.0.0.0"
    assert first.host_port != second.host_port
    assert http_get(first.host_port) == (200, b"one\n")
    assert http_get(second.host_port) == (200, b"two\n")


def test_port_in_use_is_refused_before_anything_exists(containers: Containers, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        spec = containers.spec("sleep", "1000", ports=(PortBinding("127.0.0.1", 0, 81),
                                                       PortBinding("127.0.0.1", port, 80)))
        state = tmp_path / "state"
        shims_before = _shim_pids()
        with pytest.raises(PortInUse) as info:
            sandbox.start(spec, state_dir=str(state), endpoint="web")
    assert str(info.value) == (f"driver failed programming external connectivity on endpoint web: "
                               f"Bind for 127.0.0.1:{port} failed: port is already allocated")
    assert info.value.exit_code == 125 and isinstance(info.value, ContainerError)
    assert not os.path.exists(spec.upperdir) and not state.exists()
    assert _shim_pids() <= shims_before  # no shim was started (earlier ones may be ending)
    assert leftovers(set(), str(tmp_path)) == []


def test_all_addresses_conflict_with_a_specific_one(containers: Containers) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse, match=f"Bind for 0.0.0.0:{port} failed"):
            sandbox.start(containers.spec("true", ports=(PortBinding("", port, 80),)))


def test_host_port_is_free_again_after_the_container_exits(containers: Containers) -> None:
    spec = containers.spec("sh", "-c", HTTPD.format(text="x"), ports=(PortBinding("127.0.0.1", 0, 80),))
    box = sandbox.start(spec)
    port = box.ports[0].host_port
    assert http_get(port)[0] == 200
    idle = socket.create_connection(("127.0.0.1", port))  # a client still connected at the end
    with pytest.raises(OSError):
        socket.socket().bind(("127.0.0.1", port))
    box.kill()
    assert box.wait(10) == 137
    idle.settimeout(5)
    assert idle.recv(10) == b""  # the forwarder closed it
    idle.close()
    with socket.socket() as again:  # as any server (and Docker) binds: TIME_WAIT does not count
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
        again.listen()
    box.close()


def test_port_is_free_at_once_when_the_start_fails(containers: Containers) -> None:
    spec = containers.spec("nosuch", ports=(PortBinding("127.0.0.1", 0, 80),))
    with bind_ports(spec.ports) as probe:
        port = probe.bindings[0].host_port
    spec = containers.spec("nosuch", ports=(PortBinding("127.0.0.1", port, 80),))
    with pytest.raises(ContainerError) as info:
        sandbox.start(spec)
    assert info.value.exit_code == 127
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))


def test_half_close_and_many_concurrent_connections(containers: Containers,
                                                     published: list[sandbox.Sandbox]) -> None:
    """An echo server (nc -ll -e cat): each client half-closes and must get all its bytes back.

    busybox nc listens with a backlog of one per ``-l``: with the default 2, a burst of 20 connects
    overflows it and the kernel answers with SYN cookies and resets (as it would without a proxy).
    """
    backlog = "-" + "l" * 32
    box = sandbox.start(containers.spec("nc", backlog, "-p", "80", "-e", "cat",
                                        ports=(PortBinding("127.0.0.1", 0, 80),)))
    published.append(box)
    port = box.ports[0].host_port
    assert wait_for(lambda: _echo(port, b"ping") == b"ping")
    results: dict[int, bytes] = {}

    def client(index: int) -> None:
        payload = bytes([65 + index % 26]) * (100_000 + index)
        results[index] = _echo(port, payload)
        assert results[index] == payload

    threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == list(range(20))
    assert all(len(results[i]) == 100_000 + i for i in results)


def test_nothing_listening_in_the_container_closes_the_client(containers: Containers,
                                                             published: list[sandbox.Sandbox]) -> None:
    box = sandbox.start(containers.spec("sleep", "1000", ports=(PortBinding("127.0.0.1", 0, 80),)))
    published.append(box)
    with socket.create_connection(("127.0.0.1", box.ports[0].host_port), timeout=5) as conn:
        try:
            assert conn.recv(10) == b""
        except ConnectionResetError:
            pass


@pytest.mark.parametrize(("network", "message"), [
    ("host", "conflicting options: port publishing and the container type network mode"),
    ("none", "conflicting options: port publishing and the container type network mode"),
])
def test_ports_need_a_private_network(containers: Containers, network: str, message: str) -> None:
    with pytest.raises(ContainerError, match=message):
        sandbox.start(containers.spec("true", network=network, ports=(PortBinding("", 0, 80),)))


def _echo(port: int, payload: bytes) -> bytes:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
            return data
    except OSError:
        return b""


def _shim_pids() -> set[int]:
    pids = set()
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and Path(f"/proc/{entry}/comm").read_text().strip() == "layerlab-shim":
                pids.add(int(entry))
        except OSError:
            pass
    return pids
