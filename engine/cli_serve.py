"""The ``layerlab registry …`` and ``layerlab hub …`` verbs: LayerLab's own registry and classroom hub.

``registry serve`` runs in the foreground (Ctrl-C stops it); ``registry start|stop|status`` manage it
in the background through :meth:`engine.Engine.registry_start` and friends. The ``hub`` verbs work on
the registry root's files directly, so they work whether or not the hub is running.
"""
from __future__ import annotations

import os
from pathlib import Path

from .api import Engine
from .cli import Streams, verb
from .errors import EngineError


def _root(eng: Engine, a) -> Path:
    from .registry.service import default_root

    return Path(a.root).resolve() if getattr(a, "root", None) else default_root(eng.home)


@verb("registry_serve")
def _serve(eng: Engine, a, s: Streams) -> int:
    import sys

    from .registry.serving import serve

    if a.auth and a.hub:
        raise EngineError("--auth and --hub exclude each other (the hub has its own accounts)")
    if a.auth and not os.path.isfile(a.auth):
        raise EngineError(f"htpasswd file {a.auth} not found")
    root = _root(eng, a)
    try:
        serve(root, host=a.host, port=a.port, hub=a.hub, auth_file=a.auth, log=sys.stderr,
              ready_file=a.ready_file)
    except OSError as e:
        raise EngineError(f"listen tcp {a.host}:{a.port}: {e.strerror or e}") from None
    return 0


def _describe(st) -> str:
    mode = "hub" if st.hub else "registry"
    return f"{mode} running at {st.url} (pid {st.pid}, root {st.root})"


@verb("registry_start")
def _start(eng: Engine, a, s: Streams) -> int:
    st = eng.registry_start(port=a.port, host=a.host, hub=a.hub, auth=a.auth, root=a.root)
    s.out(_describe(st))
    return 0


@verb("registry_stop")
def _stop(eng: Engine, a, s: Streams) -> int:
    before = eng.registry_status()
    eng.registry_stop()
    s.out(f"stopped the registry at {before.url} (pid {before.pid})" if before.running else "no registry running")
    return 0


@verb("registry_status")
def _status(eng: Engine, a, s: Streams) -> int:
    st = eng.registry_status()
    s.out(_describe(st) if st.running else "no registry running")
    return 0 if st.running else 1


def _hub(eng: Engine, a):
    from .registry.hub import Hub
    from .registry.storage import RegistryStorage

    return Hub(RegistryStorage(_root(eng, a)))


@verb("hub_adduser")
def _adduser(eng: Engine, a, s: Streams) -> int:
    if a.password_stdin:
        if s.stdin is None:
            raise EngineError("--password-stdin: no standard input")
        password = s.stdin.read().decode().rstrip("\r\n")
    else:
        import getpass

        try:
            password = getpass.getpass(f"Password for {a.name}: ")
            repeated = getpass.getpass("Repeat password: ")
        except (EOFError, NotImplementedError):  # no terminal; a kernel whose frontend cannot ask
            raise EngineError("cannot ask for a password here: use --password-stdin") from None
        if repeated != password:
            raise EngineError("the passwords do not match")
    if not password:
        raise EngineError("Must provide a non-empty password")
    account = _hub(eng, a).add_user(a.name, password, admin=a.admin)
    s.out(f"Account {account.name} ready{' (administrator)' if account.admin else ''}")
    return 0


@verb("hub_star")
def _star(eng: Engine, a, s: Streams) -> int:
    import getpass

    user = a.user or getpass.getuser()
    count = _hub(eng, a).star(a.repository, user, on=not a.remove)
    s.out(f"{a.repository}: {count} star{'s' if count != 1 else ''}")
    return 0


@verb("hub_describe")
def _describe_repo(eng: Engine, a, s: Streams) -> int:
    _hub(eng, a).describe(a.repository, a.text)
    return 0


@verb("hub_seed")
def _seed(eng: Engine, a, s: Streams) -> int:
    for line in eng.hub_seed(root=a.root):
        s.out(line)
    return 0
