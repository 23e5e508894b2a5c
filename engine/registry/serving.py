"""Running the registry application: in the foreground (``layerlab registry serve``) or on a thread.

The HTTP server streams bodies of any size to disk (:data:`MAX_BODY`) and answers a TLS handshake
at once with a plain 400, as Go's net/http does, so clients that try HTTPS first fall back to HTTP.
"""
from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import IO

import tornado.httpserver
import tornado.netutil
import tornado.web

from .server import make_app

MAX_BODY = 1 << 40          # streamed to disk; the file system is the limit


class _HTTPServer(tornado.httpserver.HTTPServer):
    """Answers a TLS handshake at once with a plain 400, as Go's net/http does.

    Clients that try HTTPS first on an insecure registry (skopeo, containerd) then fall back to HTTP
    at once instead of waiting ten seconds for a handshake that never comes.
    """

    async def handle_stream(self, stream, address) -> None:  # type: ignore[override]
        import socket

        sock = stream.socket
        loop = asyncio.get_running_loop()
        readable = loop.create_future()
        loop.add_reader(sock.fileno(), lambda: readable.done() or readable.set_result(None))
        try:
            await asyncio.wait_for(readable, 30)
        except asyncio.TimeoutError:
            pass
        finally:
            loop.remove_reader(sock.fileno())
        try:
            first = sock.recv(1, socket.MSG_PEEK)
        except OSError:
            first = b""
        if first == b"\x16":  # TLS record type "handshake"
            try:
                await stream.write(b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n"
                                   b"Client sent an HTTPS request to an HTTP server.\n")
            finally:
                stream.close()
            return
        super().handle_stream(stream, address)


def http_server(app: tornado.web.Application) -> tornado.httpserver.HTTPServer:
    return _HTTPServer(app, max_body_size=MAX_BODY, idle_connection_timeout=600, body_timeout=3600)


class ThreadedRegistry:
    """A registry served on a background thread of this process (tests, notebooks)."""

    def __init__(self, app: tornado.web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app, self.host, self.port = app, host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "ThreadedRegistry":
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True,
                                        name="layerlab-registry")
        self._thread.start()
        self._ready.wait(30)
        return self

    async def _main(self) -> None:
        import socket

        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = http_server(self.app)
        sockets = tornado.netutil.bind_sockets(self.port, self.host, family=socket.AF_INET)
        self.port = sockets[0].getsockname()[1]
        server.add_sockets(sockets)
        self._ready.set()
        await self._stopped.wait()
        server.stop()
        await server.close_all_connections()

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(30)


def serve(root: str | Path, *, host: str = "127.0.0.1", port: int = 5000, hub: bool = False,
          auth_file: str | Path | None = None, log: IO[str] | None = sys.stderr,
          ready_file: str | None = None) -> None:
    """Serve in the foreground until SIGTERM or SIGINT; ``ready_file`` is created once listening."""
    import signal

    async def main() -> None:
        app = make_app(root, hub=hub, auth_file=auth_file, log=log)
        server = http_server(app)
        server.listen(port, host)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if ready_file:
            Path(ready_file).touch()
        if log is not None:
            mode = "hub" if hub else "registry"
            log.write(f"layerlab {mode} listening on http://{host}:{port} (root {root})\n")
            log.flush()
        await stop.wait()
        server.stop()
        await server.close_all_connections()

    asyncio.run(main())

