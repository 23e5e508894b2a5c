"""The shim's event loop: published ports, json-file logs and output relays (stdlib only).

Imported by ``_shim`` at the top, i.e. once in the zygote (or in the caller, see ``_shim``), so a
container start pays nothing for it (and nothing may be imported after ``pivot_root``, see ``_shim``).
Everything runs in the shim S, single-threaded, on one ``epoll``; every descriptor it touches is
non-blocking or only written after ``epoll`` said it is writable, so one slow reader never stalls the
rest.

* ``_shim_ports.Forwarder`` proxies the published ports (a module of its own, same rules);
* :class:`JsonLog` writes Docker's ``json-file`` format, one object per line:
  ``{"log":"hi\\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}``, lines cut at
  16 KiB as Docker cuts them.
* :class:`Pump` reads a container's output pipe (or pty master) and feeds the log and a :class:`Sink`
  (the caller's descriptor, written without ever blocking the loop).
"""
import os
import select
import stat
import time

try:
    import _shim_ports
except ImportError:  # imported as engine.runtime._shim_io (tests, tools)
    from . import _shim_ports

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT

CHUNK = 65536
#: bytes buffered for a caller's descriptor before the container's output is held back (or dropped,
#: for a detached container whose caller may be long gone)
SINK_BUFFER = 1 << 20
#: Docker's log copier buffer: a longer line becomes several partial messages
LOG_LINE_MAX = 16 * 1024
#: at most this much is written to a blocking descriptor per wake-up, so the write cannot block
SINK_WRITE = 4096

_ESCAPES = {i: "\\u%04x" % i for i in range(32)}
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t",
                 ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
                 0x2028: "\\u2028", 0x2029: "\\u2029"})


def json_str(text):
    """A JSON string literal, escaped the way Docker's json-file writer does (HTML-safe)."""
    return '"' + text.translate(_ESCAPES) + '"'


def json_value(value):
    """Tiny JSON encoder for the state file: None, bool, int, str, list/tuple, dict."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json_str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(json_value(v) for v in value) + "]"
    return "{" + ",".join(json_str(k) + ":" + json_value(v) for k, v in value.items()) + "}"


def rfc3339nano(ns):
    """Go's ``time.RFC3339Nano`` in UTC (trailing zeros of the fraction dropped), as Docker writes it."""
    secs, frac = divmod(ns, 1_000_000_000)
    text = "%04d-%02d-%02dT%02d:%02d:%02d" % time.gmtime(secs)[:6]
    if frac:
        text += ("." + "%09d" % frac).rstrip("0")
    return text + "Z"


class Loop:
    """A level-triggered epoll loop: one handler per descriptor, mask 0 means unregistered."""

    def __init__(self):
        self.poller = select.epoll()
        self.handlers = {}
        self.masks = {}
        self.timers = []

    def set(self, fd, mask, handler=None):
        """Watch ``fd`` for ``mask`` with ``handler(events)``; raises PermissionError if unpollable."""
        if handler is not None:
            self.handlers[fd] = handler
        old = self.masks.get(fd, 0)
        if mask == old:
            return
        if not mask:
            self.poller.unregister(fd)
            del self.masks[fd]
        elif old:
            self.poller.modify(fd, mask)
            self.masks[fd] = mask
        else:
            self.poller.register(fd, mask)
            self.masks[fd] = mask

    def forget(self, fd):
        """Stop watching ``fd`` (before it is closed)."""
        if self.masks.pop(fd, 0):
            try:
                self.poller.unregister(fd)
            except OSError:
                pass
        self.handlers.pop(fd, None)

    def later(self, delay, callback):
        self.timers.append((time.monotonic() + delay, callback))

    def run_once(self, timeout=-1):
        if self.timers:
            due = min(t for t, _ in self.timers) - time.monotonic()
            timeout = max(0.0, due) if timeout < 0 else min(timeout, max(0.0, due))
        try:
            events = self.poller.poll(timeout)
        except InterruptedError:
            events = []
        for fd, mask in events:
            handler = self.handlers.get(fd)
            if handler is not None and fd in self.masks:
                handler(mask)
        if self.timers:
            now = time.monotonic()
            due = [cb for t, cb in self.timers if t <= now]
            self.timers = [(t, cb) for t, cb in self.timers if t > now]
            for callback in due:
                callback()

    def close(self):
        self.poller.close()


# ---------------------------------------------------------------------------------------------
# logs and output relays


class JsonLog:
    """Appends Docker json-file records to ``fd`` (opened ``O_APPEND`` by the caller)."""

    def __init__(self, fd):
        self.fd = fd
        self.partial = {}

    def feed(self, stream, data):
        buf = self.partial.setdefault(stream, bytearray())
        buf += data
        messages = []
        while buf:
            end = buf.find(b"\n", 0, LOG_LINE_MAX)
            if end < 0:
                if len(buf) < LOG_LINE_MAX:
                    break
                end = LOG_LINE_MAX - 1
            messages.append(bytes(buf[:end + 1]))
            del buf[:end + 1]
        self._write(stream, messages)

    def finish(self, stream):
        """The stream ended: a last line without a newline is logged as it is."""
        buf = self.partial.pop(stream, None)
        if buf:
            self._write(stream, [bytes(buf)])

    def _write(self, stream, messages):
        if not messages or self.fd < 0:
            return
        stamp = json_str(rfc3339nano(time.time_ns()))
        tail = ',"stream":"' + stream + '","time":' + stamp + "}\n"
        data = "".join('{"log":' + json_str(m.decode("utf-8", "replace")) + tail for m in messages).encode()
        try:
            while data:
                data = data[os.write(self.fd, data):]
        except OSError:
            pass  # a full disk must not stop the container; the rest of the log is lost

    def close(self):
        for stream in list(self.partial):
            self.finish(stream)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _is_devnull(fd):
    st = os.fstat(fd)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


class Sink:
    """A descriptor we write to without blocking the loop (the caller's stdout, a relay socket).

    Pollable descriptors (pipes, sockets, ttys) are written only when epoll says they are writable,
    at most :data:`SINK_WRITE` bytes at a time; others (regular files) are written directly.  When
    more than :data:`SINK_BUFFER` bytes are pending, :meth:`full` asks the producer to hold back, or,
    with ``drop=True``, the oldest bytes are dropped.  A reader that went away (EPIPE) ends the sink.
    """

    def __init__(self, loop, fd, drop=False):
        self.loop = loop
        self.fd = fd
        self.drop = drop
        self.buf = bytearray()
        self.dead = _is_devnull(fd)
        self.on_drain = None
        self.pollable = False
        if not self.dead:
            try:
                loop.set(fd, 0, self._writable)
                loop.set(fd, EPOLLOUT)
                loop.set(fd, 0)
                self.pollable = True
            except PermissionError:
                pass

    def write(self, data):
        if self.dead:
            return
        if not self.pollable:
            try:
                while data:
                    data = data[os.write(self.fd, data):]
            except OSError:
                self.dead = True
            return
        self.buf += data
        if self.drop and len(self.buf) > SINK_BUFFER:
            del self.buf[:len(self.buf) - SINK_BUFFER]
        self.loop.set(self.fd, EPOLLOUT)

    def full(self):
        """Whether the producer should hold back (never for a sink that drops)."""
        return not self.drop and not self.dead and len(self.buf) >= SINK_BUFFER

    def _writable(self, events):
        try:
            sent = os.write(self.fd, self.buf[:SINK_WRITE])
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._die()
            return
        del self.buf[:sent]
        if not self.buf:
            self.loop.set(self.fd, 0)
        if len(self.buf) < SINK_BUFFER // 2 and self.on_drain is not None:
            callback, self.on_drain = self.on_drain, None
            callback()

    def _die(self):
        self.dead = True
        self.buf = bytearray()
        self.loop.set(self.fd, 0)
        if self.on_drain is not None:
            callback, self.on_drain = self.on_drain, None
            callback()

    def flush(self, deadline=None):
        """Write what is pending, waiting for the reader until ``deadline`` (monotonic; None: no limit)."""
        while self.buf and not self.dead:
            left = -1 if deadline is None else deadline - time.monotonic()
            if deadline is not None and left <= 0:
                return
            self.loop.run_once(left)

    def close(self):
        self.loop.forget(self.fd)
        os.close(self.fd)


class Pump:
    """Reads ``fd`` until EOF (or EIO: a pty whose last slave closed), handing data to ``consumers``.

    ``consumers`` are ``(log, stream)`` pairs and :class:`Sink` objects; reading pauses while a sink is
    full (back-pressure on the container, as a full pipe would give).
    """

    def __init__(self, loop, fd, log=None, stream="stdout", sinks=()):
        self.loop = loop
        self.fd = fd
        self.log = log
        self.stream = stream
        self.sinks = [s for s in sinks if s is not None]
        self.done = False
        os.set_blocking(fd, False)
        loop.set(fd, EPOLLIN, self._readable)

    def _readable(self, events=0):
        try:
            data = os.read(self.fd, CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._eof()
            return
        if self.log is not None:
            self.log.feed(self.stream, data)
        for sink in self.sinks:
            sink.write(data)
        for sink in self.sinks:
            if sink.full():
                self.loop.set(self.fd, 0)
                sink.on_drain = self._resume
                return

    def _resume(self):
        if not self.done:
            self.loop.set(self.fd, EPOLLIN)

    def _eof(self):
        self.done = True
        self.loop.forget(self.fd)
        os.close(self.fd)
        if self.log is not None:
            self.log.finish(self.stream)

    def drain(self, deadline=None):
        """The writers are gone: read to EOF, serving full sinks meanwhile (until ``deadline``)."""
        while not self.done:
            left = -1 if deadline is None else deadline - time.monotonic()
            if deadline is not None and left <= 0:
                return
            self.loop.run_once(left)


# ---------------------------------------------------------------------------------------------
# S's side of one container


class Supervisor:
    """Forwards the caller's signals (bytes on ``ctl``) to ``pid`` until it ends.

    EOF on ``ctl`` means the caller is gone: the process is then killed unless ``detach``.
    """

    def __init__(self, loop, pid, ctl_fd, detach):
        self.loop = loop
        self.pid = pid
        self.ctl_fd = ctl_fd
        self.detach = detach
        self.pidfd = os.pidfd_open(pid)
        self.exited = False
        loop.set(ctl_fd, EPOLLIN, self._ctl)
        loop.set(self.pidfd, EPOLLIN, self._ended)

    def _ctl(self, events):
        try:
            data = os.read(self.ctl_fd, 64)
        except OSError:
            data = b""
        if not data:
            self.loop.forget(self.ctl_fd)
            if not self.detach:
                data = bytes([9])  # SIGKILL
        for sig in data:
            try:
                os.kill(self.pid, sig)  # not reaped yet, so the pid is still ours
            except OSError:
                pass

    def _ended(self, events):
        self.exited = True
        self.loop.forget(self.pidfd)

    def run(self):
        """Serve the loop until the process ends; reap it; Docker's exit code (128+n for signal n)."""
        while not self.exited:
            self.loop.run_once()
        self.loop.forget(self.ctl_fd)
        _, status = os.waitpid(self.pid, 0)
        os.close(self.pidfd)
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.WEXITSTATUS(status)


class ContainerIO:
    """What S does with the container's descriptors: G's stdio, the forwarder, logs, the pty relay.

    Built before G is forked (:meth:`place_stdio` runs in G), started after (:meth:`start`),
    finished once G has been reaped (:meth:`finish`).  Without ports, a log or an owned pty it does
    nothing at all: G then writes straight to the caller's descriptors.
    """

    def __init__(self, req, extra):
        named = {}
        listen = []
        for name, fd in zip(req["extra"], extra):
            if name == "listen":
                listen.append(fd)
            else:
                named[name] = fd
        # the i-th listening socket publishes the i-th port of the state: [host ip, host port, port, proto]
        self.listen = [(fd, port[2]) for fd, port in zip(listen, req["state"]["ports"])]
        self.log_fd = named.get("log", -1)
        self.master = named.get("master", -1)
        self.relay = named.get("relay", -1)
        self.child_stdio = (0, 1, 2)
        self.child_ends = []
        self.outputs = []  # (read end in S, stream name)
        if self.master < 0 and self.log_fd >= 0:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            self.child_stdio = (0, out_w, err_w)
            self.child_ends = [out_w, err_w]
            self.outputs = [(out_r, "stdout"), (err_r, "stderr")]
        self.forwarder = None
        self.log = None
        self.pumps = []
        self.sinks = []
        self.input = None

    def place_stdio(self):
        """In G: the container's stdin, stdout and stderr on 0, 1 and 2."""
        for target, fd in enumerate(self.child_stdio):
            if fd != target:
                os.dup2(fd, target)

    def start(self, loop, detach):
        """In S, once G is forked."""
        for fd in self.child_ends:
            os.close(fd)
        if self.listen:
            self.forwarder = _shim_ports.Forwarder(loop, self.listen)
        if self.log_fd >= 0:
            self.log = JsonLog(self.log_fd)
        for fd, stream in self.outputs:
            sink = Sink(loop, stream == "stdout" and 1 or 2, drop=detach)
            self.sinks.append(sink)
            self.pumps.append(Pump(loop, fd, self.log, stream, [sink]))
        if self.master >= 0:
            # S owns the pty: drop S's copies of the slave, so that the master reads EIO at the end
            null = os.open("/dev/null", os.O_RDWR)
            for target in (0, 1, 2):
                os.dup2(null, target)
            os.close(null)
            os.set_blocking(self.master, False)
            relay_sink = None
            if self.relay >= 0:
                relay_sink = Sink(loop, os.dup(self.relay), drop=detach)
                self.sinks.append(relay_sink)
                to_master = Sink(loop, os.dup(self.master))
                self.sinks.append(to_master)
                self.input = Pump(loop, self.relay, None, "stdin", [to_master])
            self.pumps.append(Pump(loop, self.master, self.log, "stdout", [relay_sink]))

    def finish(self):
        """G has been reaped: free the ports, log and deliver what is left, close everything."""
        if self.forwarder is not None:
            self.forwarder.close()
        if self.input is not None and not self.input.done:
            self.input.loop.forget(self.input.fd)
            os.close(self.input.fd)
        for pump in self.pumps:
            pump.drain(None)
        for sink in self.sinks:
            sink.flush(None)
        if self.log is not None:
            self.log.close()
        for sink in self.sinks:
            if sink.fd > 2:
                sink.close()
