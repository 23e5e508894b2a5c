"""Published ports: ``-p [ip:][hostPort:]containerPort[/tcp]`` and ``-P``.

The *caller's* process binds the listening sockets in the host's network namespace (:func:`bind_ports`)
before anything of the container exists, so that a port already in use fails first, with Docker's
message and nothing to clean up.  The sockets are then handed to the container's shim, which accepts
on them and connects to ``127.0.0.1:<containerPort>`` from inside the container's network namespace
(see ``_shim_io.Forwarder``): a userspace proxy like Docker's ``docker-proxy``.  The caller closes
its copies right away, so the shim holds the only ones and the port is free again when it ends.

Example::

    >>> with bind_ports([PortBinding("127.0.0.1", 0, 80)], endpoint="web") as bound:  # doctest: +SKIP
    ...     bound.bindings
    (PortBinding(host_ip='127.0.0.1', host_port=41234, container_port=80, proto='tcp'),)
"""
from __future__ import annotations

import errno
import ipaddress
from collections.abc import Iterable

from ..errors import ContainerError
from ..values import value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing, which costs every command 3 ms
if TYPE_CHECKING:
    import socket  # imported by bind_ports: most containers publish nothing (about 2 ms to import)
    from typing import Literal

__all__ = ["PortBinding", "PortInUse", "Listeners", "bind_ports", "parse_publish"]

#: Docker's ``0.0.0.0`` for a binding without an address
ALL_IPV4 = "0.0.0.0"


@value
class PortBinding:
    """One published port: ``host_ip:host_port`` on the host → ``container_port`` in the container.

    ``host_ip`` ``""`` means every IPv4 address (Docker's ``0.0.0.0``); ``host_port`` 0 means a free
    port picked by the kernel (``-P``, ``-p 80``); only ``tcp`` is supported.  ``str()`` gives the
    ``docker ps`` form, ``127.0.0.1:8080->80/tcp``.
    """

    host_ip: str
    host_port: int
    container_port: int
    proto: Literal["tcp"] = "tcp"

    def __str__(self) -> str:
        host = self.host_ip or ALL_IPV4
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{self.host_port}->{self.container_port}/{self.proto}"


class PortInUse(ContainerError):
    """A host port is already taken: Docker's ``Bind for 0.0.0.0:8080 failed: port is already allocated``.

    ``str()`` is ``driver failed programming external connectivity on endpoint <endpoint>: Bind for
    <ip>:<port> failed: port is already allocated`` when an endpoint name was given (Docker writes
    ``<name> (<full id>)`` there), just the ``Bind for …`` part otherwise.
    """

    def __init__(self, host_ip: str, host_port: int, endpoint: str = "") -> None:
        super().__init__(_with_endpoint(endpoint, f"Bind for {host_ip or ALL_IPV4}:{host_port} failed: "
                                                  "port is already allocated"))
        self.host_ip = host_ip
        self.host_port = host_port
        self.endpoint = endpoint


def _with_endpoint(endpoint: str, message: str) -> str:
    if not endpoint:
        return message
    return f"driver failed programming external connectivity on endpoint {endpoint}: {message}"


class Listeners:
    """Listening sockets bound for a container, with the bindings they really got (ports picked)."""

    def __init__(self, pairs: list[tuple[PortBinding, socket.socket]]) -> None:
        self.bindings: tuple[PortBinding, ...] = tuple(b for b, _ in pairs)
        self.sockets: tuple[socket.socket, ...] = tuple(s for _, s in pairs)

    def fds(self) -> list[int]:
        return [s.fileno() for s in self.sockets]

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()

    def __enter__(self) -> Listeners:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def validate(bindings: Iterable[PortBinding]) -> None:
    """Raise :class:`ContainerError` for a binding that cannot be published."""
    for b in bindings:
        if b.proto != "tcp":
            raise ContainerError(f"publishing {b.proto} ports is not supported (only tcp)")
        if not 0 < b.container_port < 65536:
            raise ContainerError(f"invalid containerPort: {b.container_port}")
        if not 0 <= b.host_port < 65536:
            raise ContainerError(f"invalid hostPort: {b.host_port}")
        if b.host_ip:
            try:
                ipaddress.ip_address(b.host_ip)
            except ValueError:
                raise ContainerError(f"invalid IP address: {b.host_ip}") from None


def bind_ports(bindings: Iterable[PortBinding], *, endpoint: str = "") -> Listeners:
    """Bind and listen on every binding's host address, all or nothing.

    Raises :class:`PortInUse` for a port that is taken (``endpoint`` goes into Docker's message) and
    :class:`ContainerError` for other failures (a privileged port for an ordinary user, an address
    the host does not have); sockets already bound are closed then.
    """
    bindings = tuple(bindings)
    validate(bindings)
    if not bindings:
        return Listeners([])
    import socket

    pairs: list[tuple[PortBinding, socket.socket]] = []
    try:
        for b in bindings:
            host = b.host_ip or ALL_IPV4
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind((host, b.host_port))
                sock.listen(socket.SOMAXCONN)
            except OSError as e:
                sock.close()
                if e.errno == errno.EADDRINUSE:
                    raise PortInUse(b.host_ip or ALL_IPV4, b.host_port, endpoint) from None
                tcp = "tcp6" if family == socket.AF_INET6 else "tcp4"
                reason = (e.strerror or str(e)).lower()
                raise ContainerError(_with_endpoint(
                    endpoint, f"Error starting userland proxy: listen {tcp} {host}:{b.host_port}: "
                              f"bind: {reason}")) from None
            port = sock.getsockname()[1]
            pairs.append((PortBinding(host, port, b.container_port, b.proto), sock))
    except BaseException:
        for _, sock in pairs:
            sock.close()
        raise
    return Listeners(pairs)


def parse_publish(value: str) -> list[PortBinding]:
    """Parse one ``-p`` value: ``[ip:][hostPort:]containerPort[/proto]``, ports or ranges.

    ``80`` and ``127.0.0.1::80`` get a free host port; ``8000-8001:80-81`` publishes two ports.
    Raises :class:`ContainerError` with Docker's wording for a malformed value.

    >>> parse_publish("127.0.0.1:8080:80")
    [PortBinding(host_ip='127.0.0.1', host_port=8080, container_port=80, proto='tcp')]
    """
    rest, _, proto = value.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp", "sctp"):
        raise ContainerError(f"invalid proto: {proto}")
    ip = ""
    if rest.startswith("["):
        end = rest.find("]:")
        if end < 0:
            raise ContainerError(f"invalid IP address: {rest}")
        ip, rest = rest[1:end], rest[end + 2:]
        host_part, _, container_part = rest.rpartition(":")
    else:
        parts = rest.split(":")
        if len(parts) > 3:
            raise ContainerError(f"invalid port format: {value}")
        if len(parts) == 3:
            ip = parts.pop(0)
        container_part = parts[-1]
        host_part = parts[0] if len(parts) == 2 else ""
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ContainerError(f"invalid IP address: {ip}") from None
    if not container_part:
        raise ContainerError(f"no port specified: {value}<empty>")
    container_ports = _port_range(container_part, "containerPort")
    host_ports = _port_range(host_part, "hostPort") if host_part else [0] * len(container_ports)
    if len(host_ports) != len(container_ports):
        raise ContainerError(f"invalid ranges specified for container and host Ports: "
                             f"{container_part} and {host_part}")
    return [PortBinding(ip, h, c, proto) for h, c in zip(host_ports, container_ports)]  # type: ignore[arg-type]


def _port_range(text: str, what: str) -> list[int]:
    low, dash, high = text.partition("-")
    try:
        first = int(low)
        last = int(high) if dash else first
    except ValueError:
        raise ContainerError(f"invalid {what}: {text}") from None
    if not (0 < first <= last < 65536) and not (what == "hostPort" and first == last == 0):
        raise ContainerError(f"invalid {what}: {text}")
    return list(range(first, last + 1))
