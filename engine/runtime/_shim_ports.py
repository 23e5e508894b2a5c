"""The shim's userspace proxy for published ports (stdlib only; see ``_shim`` and ``_shim_io``).

:class:`Forwarder` accepts on listening sockets the *caller* bound in the host's network namespace
and connects, for each client, to ``127.0.0.1:<container port>`` from a socket S creates itself,
which lives in the container's network namespace (S unshared it).  Bytes are copied both ways with
bounded buffers (back-pressure); a half-close is passed on with ``shutdown(SHUT_WR)``; a client is
closed when nothing listens in the container.  It runs on the shim's ``_shim_io.Loop``; every socket
is non-blocking, so one slow peer never stalls another.
"""
import errno
import select

import _socket

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
CHUNK = 65536
#: bytes buffered per direction of a forwarded connection before reading from the sender stops
CONN_BUFFER = 1 << 18


class Forwarder:
    """The userspace proxy of every published port of one container."""

    def __init__(self, loop, listeners):
        """``listeners``: (listening socket fd, container port) pairs, bound by the caller."""
        self.loop = loop
        self.listeners = []
        self.conns = set()
        for fd, port in listeners:
            sock = _socket.socket(fileno=fd)
            sock.setblocking(False)
            self.listeners.append((sock, port))
            self._listen(sock, port)

    def _listen(self, sock, port):
        self.loop.set(sock.fileno(), EPOLLIN, lambda events: self._accept(sock, port))

    def _accept(self, sock, port):
        for _ in range(64):
            try:
                fd, _ = sock._accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # out of descriptors (or a transient error): pause this listener for a moment
                self.loop.set(sock.fileno(), 0)
                self.loop.later(0.1, lambda: sock.fileno() >= 0 and self._listen(sock, port))
                return
            client = _socket.socket(fileno=fd)
            Connection(self, client, port)

    def close(self):
        """Close every connection and listener (the container has ended)."""
        for conn in list(self.conns):
            conn.close()
        for sock, _ in self.listeners:
            self.loop.forget(sock.fileno())
            sock.close()
        self.listeners = []


class _Half:
    """One direction of a connection: bytes read from ``src`` waiting to be sent to ``dst``."""

    __slots__ = ("src", "dst", "buf", "eof", "shut")

    def __init__(self, src, dst):
        self.src = src
        self.dst = dst
        self.buf = bytearray()
        self.eof = False
        self.shut = False


class Connection:
    """One client of a published port, relayed to the container's port."""

    def __init__(self, forwarder, client, port):
        self.forwarder = forwarder
        self.loop = forwarder.loop
        self.client = client
        client.setblocking(False)
        upstream = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        upstream.setblocking(False)
        self.upstream = upstream
        self.closed = False
        err = upstream.connect_ex(("127.0.0.1", port))
        self.connecting = err != 0
        self.halves = (_Half(client, upstream), _Half(upstream, client))
        forwarder.conns.add(self)
        for sock in (client, upstream):
            self.loop.set(sock.fileno(), 0, self._event)
        if err not in (0, errno.EINPROGRESS):
            self.close()
            return
        self._update()

    def _event(self, events):
        if self.closed:
            return
        if self.connecting:
            err = self.upstream.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
            if err:
                self.close()  # nothing listens in the container: the client sees its connection closed
                return
            self.connecting = False
        self._pump()

    def _pump(self):
        for half in self.halves:
            if not half.eof and len(half.buf) < CONN_BUFFER:
                try:
                    data = half.src.recv(CHUNK)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError:
                    self.close()
                    return
                if data == b"":
                    half.eof = True
                elif data:
                    half.buf += data
            if half.buf:
                try:
                    sent = half.dst.send(half.buf)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    self.close()
                    return
                del half.buf[:sent]
            if half.eof and not half.buf and not half.shut:
                half.shut = True
                try:
                    half.dst.shutdown(_socket.SHUT_WR)
                except OSError:
                    pass
        if all(half.shut for half in self.halves):
            self.close()
            return
        self._update()

    def _update(self):
        masks = {self.client.fileno(): 0, self.upstream.fileno(): 0}
        if self.connecting:
            masks[self.upstream.fileno()] = EPOLLOUT
        else:
            for half in self.halves:
                if not half.eof and len(half.buf) < CONN_BUFFER:
                    masks[half.src.fileno()] |= EPOLLIN
                if half.buf:
                    masks[half.dst.fileno()] |= EPOLLOUT
        for fd, mask in masks.items():
            self.loop.set(fd, mask)

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.forwarder.conns.discard(self)
        for sock in (self.client, self.upstream):
            self.loop.forget(sock.fileno())
            sock.close()
