"""Unit tests of the runtime's I/O parts without namespaces: ports, the forwarder, json-file logs, signals."""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import ContainerError
from engine.runtime import _shim_io, _shim_ports, control
from engine.runtime.logs import LogLine, read_logs
from engine.runtime.ports import PortBinding, PortInUse, bind_ports, parse_publish

# --- -p parsing and binding -----------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("80", [PortBinding("", 0, 80)]),
    ("8080:80", [PortBinding("", 8080, 80)]),
    ("127.0.0.1:8080:80", [PortBinding("127.0.0.1", 8080, 80)]),
    ("127.0.0.1::80/tcp", [PortBinding("127.0.0.1", 0, 80)]),
    ("[::1]:8080:80", [PortBinding("::1", 8080, 80)]),
    ("8000-8001:80-81", [PortBinding("", 8000, 80), PortBinding("", 8001, 81)]),
])
def test_parse_publish(value: str, expected: list[PortBinding]) -> None:
    assert parse_publish(value) == expected


@pytest.mark.parametrize(("value", "message"), [
    ("x:80", "invalid hostPort: x"),
    ("8080:http", "invalid containerPort: http"),
    ("1.2.3:8080:80", "invalid IP address: 1.2.3"),
    ("80/icmp", "invalid proto: icmp"),
    ("8000-8002:80-81", "invalid ranges specified"),
    ("8080:", "no port specified"),
    ("70000", "invalid containerPort: 70000"),
])
def test_parse_publish_errors(value: str, message: str) -> None:
    with pytest.raises(ContainerError, match=message):
        parse_publish(value)


def test_port_binding_text_is_dockers() -> None:
    assert str(PortBinding("127.0.0.1", 8080, 80)) == "127.0.0.1:8080->80/tcp"
    assert str(PortBinding("", 32768, 80)) == "0.0.0.0:32768->80/tcp"
    assert str(PortBinding("::", 32768, 80)) == "[::]:32768->80/tcp"


def test_port_in_use_message_with_and_without_endpoint() -> None:
    assert str(PortInUse("0.0.0.0", 8080, "web (abc)")) == (
        "driver failed programming external connectivity on endpoint web (abc): "
        "Bind for 0.0.0.0:8080 failed: port is already allocated")
    assert str(PortInUse("", 8080)) == "Bind for 0.0.0.0:8080 failed: port is already allocated"


def test_bind_ports_is_all_or_nothing() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with bind_ports([PortBinding("127.0.0.1", 0, 80)]) as first:
            free = first.bindings[0].host_port
        with pytest.raises(PortInUse):
            bind_ports([PortBinding("127.0.0.1", free, 80), PortBinding("127.0.0.1", port, 81)])
    with socket.socket() as again:  # the first binding was released when the second failed
        again.bind(("127.0.0.1", free))


def test_bind_ports_refuses_udp_and_bad_addresses() -> None:
    with pytest.raises(ContainerError, match="udp"):
        bind_ports([PortBinding("", 0, 53, "udp")])  # type: ignore[arg-type]
    with pytest.raises(ContainerError, match="invalid IP address"):
        bind_ports([PortBinding("999.1.1.1", 0, 80)])
    with pytest.raises(ContainerError, match="cannot assign requested address"):
        bind_ports([PortBinding("192.0.2.1", 0, 80)], endpoint="web")


# --- the forwarder, in this process ----------------------------------------------------------------


class EchoServer:
    """A threaded echo server on loopback that half-closes after the client did."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)


@pytest.fixture
def forwarder() -> Iterator[tuple[_shim_ports.Forwarder, int, EchoServer]]:
    server = EchoServer()
    listeners = bind_ports([PortBinding("127.0.0.1", 0, server.port)])
    port = listeners.bindings[0].host_port
    loop = _shim_io.Loop()
    fwd = _shim_ports.Forwarder(loop, [(listeners.sockets[0].detach(), server.port)])
    stop = threading.Event()
    commands: list[object] = []

    def run() -> None:
        while not stop.is_set():
            loop.run_once(0.02)
            while commands:
                commands.pop()()  # type: ignore[operator]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    fwd.call = commands.append  # type: ignore[attr-defined]
    yield fwd, port, server
    stop.set()
    thread.join(5)
    fwd.close()
    loop.close()
    server.sock.close()


def _echo(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
        return data


def test_forwarder_relays_both_ways_with_half_close(forwarder: tuple[_shim_ports.Forwarder, int, EchoServer]) -> None:
    _, port, _ = forwarder
    assert _echo(port, b"hello") == b"hello"
    big = os.urandom(3 * _shim_ports.CONN_BUFFER + 123)  # more than every buffer on the way
    assert _echo(port, big) == big


def test_forwarder_handles_many_connections_at_once(forwarder: tuple[_shim_ports.Forwarder, int, EchoServer]) -> None:
    _, port, _ = forwarder
    results: dict[int, bool] = {}

    def client(i: int) -> None:
        payload = os.urandom(50_000 + i)
        results[i] = _echo(port, payload) == payload

    threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {i: True for i in range(50)}


def test_forwarder_close_ends_connections_and_frees_the_port(
        forwarder: tuple[_shim_ports.Forwarder, int, EchoServer]) -> None:
    fwd, port, _ = forwarder
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn.sendall(b"x")
    assert conn.recv(1) == b"x"
    assert len(fwd.conns) == 1
    closed = threading.Event()
    fwd.call(lambda: (fwd.close(), closed.set()))  # type: ignore[attr-defined]
    assert closed.wait(5)
    assert conn.recv(1) == b""
    conn.close()
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


def test_forwarder_closes_the_client_when_nothing_listens() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    listeners = bind_ports([PortBinding("127.0.0.1", 0, dead_port)])
    loop = _shim_io.Loop()
    fwd = _shim_ports.Forwarder(loop, [(listeners.sockets[0].detach(), dead_port)])
    conn = socket.create_connection(("127.0.0.1", listeners.bindings[0].host_port), timeout=5)
    conn.setblocking(False)
    ended = False
    for _ in range(500):  # accept, connect (refused), close the client
        loop.run_once(0.01)
        try:
            ended = conn.recv(10) == b""
        except BlockingIOError:
            continue
        except ConnectionResetError:
            ended = True
        break
    assert ended and not fwd.conns
    conn.close()
    fwd.close()
    loop.close()


# --- json-file logs ----------------------------------------------------------------------------------


@given(st.text())
def test_json_str_is_valid_json(text: str) -> None:
    assert json.loads(_shim_io.json_str(text)) == text


def test_json_str_escapes_like_docker() -> None:
    assert _shim_io.json_str('<a href="x">&\t\x01\u2028') == \
        '"\\u003ca href=\\"x\\"\\u003e\\u0026\\t\\u0001\\u2028"'


def test_json_value() -> None:
    value = {"a": [1, "x", None, True], "b": {"c": False}}
    assert json.loads(_shim_io.json_value(value)) == value


@pytest.mark.parametrize(("ns", "text"), [
    (0, "1970-01-01T00:00:00Z"),
    (1_700_000_000_123_456_789, "2023-11-14T22:13:20.123456789Z"),
    (1_700_000_000_500_000_000, "2023-11-14T22:13:20.5Z"),  # Go's RFC3339Nano drops trailing zeros
])
def test_rfc3339nano(ns: int, text: str) -> None:
    assert _shim_io.rfc3339nano(ns) == text


def _log_records(path: Path) -> list[tuple[str, str]]:
    return [(r["stream"], r["log"]) for r in map(json.loads, path.read_text().splitlines())]


def test_json_log_lines_partials_and_encoding(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = _shim_io.JsonLog(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND))
    log.feed("stdout", b"one\ntw")
    log.feed("stderr", b"err\n")
    log.feed("stdout", b"o\n" + b"y" * 20000)
    log.feed("stdout", b"\xff\n")
    log.feed("stderr", b"unterminated")
    log.close()
    assert _log_records(path) == [
        ("stdout", "one\n"), ("stderr", "err\n"), ("stdout", "two\n"), ("stdout", "y" * 16384),
        ("stdout", "y" * 3616 + "\ufffd\n"), ("stderr", "unterminated")]


def test_read_logs_tail_and_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "log"
    records = [json.dumps({"log": f"{i}\n", "stream": "stdout", "time": "t"}) for i in range(5)]
    path.write_text("\n".join(records) + "\n" + records[0][:10])
    assert [line.text for line in read_logs(str(path))] == ["0\n", "1\n", "2\n", "3\n", "4\n"]
    assert [line.text for line in read_logs(str(path), tail=2)] == ["3\n", "4\n"]
    assert list(read_logs(str(path), tail=0)) == []
    assert list(read_logs(str(tmp_path / "missing"))) == []
    assert next(read_logs(str(path))) == LogLine("stdout", "0\n", "t")


def test_follow_until_stopped(tmp_path: Path) -> None:
    path = tmp_path / "log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    log = _shim_io.JsonLog(fd)
    done = threading.Event()

    def writer() -> None:
        for i in range(5):
            log.feed("stdout", f"line {i}\n".encode())
            time.sleep(0.05)
        log.feed("stdout", b"last")
        log.close()
        done.set()

    threading.Thread(target=writer).start()
    lines = [line.text for line in read_logs(str(path), follow=True, stop=done.is_set, poll_interval=0.01)]
    assert lines == [f"line {i}\n" for i in range(5)] + ["last"]


# --- signals and state ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "number"), [(9, 9), ("9", 9), ("KILL", 9), ("sigterm", 15), ("SIGINT", 2)])
def test_parse_signal(value: int | str, number: int) -> None:
    assert control.parse_signal(value) == number


@pytest.mark.parametrize("value", ["NOPE", "0", 99, "SIG"])
def test_parse_signal_refuses(value: int | str) -> None:
    with pytest.raises(ContainerError, match="Invalid signal"):
        control.parse_signal(value)


def test_process_start_time_of_this_process() -> None:
    start = control.process_start_time(os.getpid())
    assert start is not None and start > 0
    assert control.alive(os.getpid(), start)
    assert not control.alive(os.getpid(), start + 1)
    assert control.process_start_time(2**22 + 1) is None


def test_sink_drops_the_oldest_bytes_for_a_detached_reader() -> None:
    r, w = os.pipe()
    loop = _shim_io.Loop()
    sink = _shim_io.Sink(loop, w, drop=True)
    sink.write(b"a" * (_shim_io.SINK_BUFFER + 10))
    assert len(sink.buf) == _shim_io.SINK_BUFFER and not sink.full()
    held = _shim_io.Sink(loop, os.dup(w))
    held.write(b"b" * (_shim_io.SINK_BUFFER + 10))
    assert held.full()
    os.close(r)
    loop.run_once(0)
    assert sink.dead or held.dead  # the reader went away: EPIPE ends a sink instead of raising
    loop.close()
    os.close(w)
