"""The registry verbs: ``push``, ``pull``, ``login``, ``logout``, ``search`` (imported on first use).

Texts and exit codes are docker-cli 20.10's: errors raised before a transfer printed anything are
the daemon's (``Error response from daemon: …``), errors in the middle of one print as they are
(``no basic auth credentials``); both exit 1.
"""
from __future__ import annotations

from collections.abc import Iterator

from .api import Engine
from .cli import Streams, verb
from .cli_parser import UsageError
from .errors import EngineError, InvalidReference

UNENCRYPTED_WARNING = ("WARNING! Your password will be stored unencrypted in {}.\n"
                       "Configure a credential helper to remove this warning. See\n"
                       "https://docs.docker.com/engine/reference/commandline/login/#credentials-store\n")


def _stream(events: Iterator, s: Streams, *, quiet: bool, skip_headers: bool = False) -> int:
    """Print a transfer's events as docker does; return the exit code."""
    from .registry.events import Header, Pulled, Pushed, render

    started = False
    try:
        for event in events:
            started = True
            if quiet:
                if isinstance(event, Pulled):
                    s.out(event.reference)
                continue
            if skip_headers and isinstance(event, Header):
                continue
            line = render(event)
            if line is not None:
                s.out(line)
            if isinstance(event, Pushed):
                pass
    except InvalidReference:
        raise
    except EngineError as e:
        s.err(str(e) if started else f"Error response from daemon: {e}")
        return 1
    return 0


@verb("push")
def _push(eng: Engine, a, s: Streams) -> int:
    from .reference import parse

    ref = parse(a.name, default_tag=not a.all_tags)
    if not a.all_tags:
        code = _stream(eng.push(a.name), s, quiet=a.quiet)
        if code == 0 and a.quiet:
            s.out(ref.string)
        return code
    if ref.tag or ref.digest:
        s.err("tag can't be used with --all-tags/-a")
        return 1
    tags = [t.ref for t in eng.store.tags() if t.repo == ref.repository]
    if not tags:
        s.err(f"The push refers to repository [{ref.repository}]")
        s.err(f"An image does not exist locally with the tag: {ref.familiar_repository}")
        return 1
    for i, tag in enumerate(sorted(tags)):
        code = _stream(eng.push(tag), s, quiet=a.quiet, skip_headers=i > 0)
        if code:
            return code
    if a.quiet:
        s.out(ref.repository)
    return 0


@verb("pull")
def _pull(eng: Engine, a, s: Streams) -> int:
    from .reference import parse

    if a.platform:
        from .spec import host_platform

        want = host_platform()
        if a.platform.split("/")[:2] != [want.os, want.architecture]:
            s.err(f'Error response from daemon: image platform {a.platform} is not the host\'s '
                  f'({want.os}/{want.architecture}); LayerLab pulls the host platform only')
            return 1
    ref = parse(a.name, default_tag=False)
    if a.all_tags and (ref.tag or ref.digest):
        s.err("tag can't be used with --all-tags/-a")
        return 1
    if not a.all_tags and not ref.tag and not ref.digest and not a.quiet:
        s.out("Using default tag: latest")
    return _stream(eng.pull(a.name, all_tags=a.all_tags), s, quiet=a.quiet)


def _read_password_stdin(s: Streams) -> str:
    import sys

    stream = s.stdin if s.stdin is not None else getattr(sys.stdin, "buffer", sys.stdin)
    data = stream.read() if stream is not None else b""
    text = data.decode() if isinstance(data, bytes) else data
    return text.removesuffix("\n").removesuffix("\r")


@verb("login")
def _login(eng: Engine, a, s: Streams) -> int:
    from .registry.credentials import config_path

    if a.password:
        s.err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
        if a.password_stdin:
            s.err("--password and --password-stdin are mutually exclusive")
            return 1
    username, password = a.username, a.password
    if a.password_stdin:
        if not username:
            s.err("Must provide --username with --password-stdin")
            return 1
        password = _read_password_stdin(s)
    message = None
    if not username and not password:
        message = _login_with_stored(eng, a.server, s)
    if message is None:
        if not username or not password:
            s.err("Error: Cannot perform an interactive login from a non TTY device")
            return 1
        try:
            message = eng.login(a.server, username, password)
        except EngineError as e:
            s.err(f"Error response from daemon: {e}")
            return 1
    s.err(UNENCRYPTED_WARNING.format(config_path()))
    s.out(message)
    return 0


def _login_with_stored(eng: Engine, server: str | None, s: Streams) -> str | None:
    """docker-cli's ``login SERVER`` without flags: try the credentials already stored."""
    from .registry import credentials

    key = credentials.server_key(server)
    stored = credentials.get(key, hub=key == credentials.HUB_SERVER)
    if stored is None:
        return None
    s.out("Authenticating with existing credentials...")
    try:
        return eng.login(server, stored.username, stored.password)
    except EngineError as e:
        s.err("Stored credentials invalid or expired" if getattr(e, "status", 0) == 401 else
              f"Login did not succeed, error: Error response from daemon: {e}")
        return None


@verb("logout")
def _logout(eng: Engine, a, s: Streams) -> int:
    s.out(eng.logout(a.server))
    return 0


_BOOL_FILTERS = ("is-official", "is-automated")


def _filters(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError("bad format of filter (expected name=value)", "search")
        key = key.strip().lower()
        if key not in ("stars", *_BOOL_FILTERS):
            raise EngineError(f"Error response from daemon: Invalid filter '{key}'")
        if key == "stars" and not value.strip().isdigit():
            raise EngineError(f"Error response from daemon: Invalid filter 'stars={value}'")
        if key in _BOOL_FILTERS and value.lower() not in ("true", "false", "1", "0"):
            raise EngineError(f"Error response from daemon: Invalid filter '{key}={value}'")
        out[key] = value.strip().lower()
    return out


def _keep(r, filters: dict[str, str]) -> bool:
    if "stars" in filters and r.star_count < int(filters["stars"]):
        return False
    for key, attr in (("is-official", "is_official"), ("is-automated", "is_automated")):
        if key in filters and getattr(r, attr) != (filters[key] in ("true", "1")):
            return False
    return True


@verb("search")
def _search(eng: Engine, a, s: Streams) -> int:
    from .format import ellipsis, render_table

    try:
        limit = int(a.limit)
    except ValueError:
        raise UsageError(f'invalid argument "{a.limit}" for "--limit" flag: strconv.ParseInt: parsing '
                         f'"{a.limit}": invalid syntax', "search") from None
    filters = _filters(a.filter)
    try:
        results = [r for r in eng.search(a.term, limit=limit) if _keep(r, filters)]
    except EngineError as e:
        s.err(f"Error response from daemon: {e}")
        return 1

    def desc(text: str) -> str:
        text = text.replace("\n", " ").replace("\r", " ")
        return text if a.no_trunc else ellipsis(text, 45)

    if a.format and a.format != "table":
        from .gotemplate import render

        for r in results:
            s.out(render(a.format, {"Name": r.name, "Description": desc(r.description),
                                    "StarCount": str(r.star_count),
                                    "IsOfficial": "[OK]" if r.is_official else "",
                                    "IsAutomated": "[OK]" if r.is_automated else ""}))
        return 0
    rows = [[r.name, desc(r.description), str(r.star_count), "[OK]" if r.is_official else "",
             "[OK]" if r.is_automated else ""] for r in results]
    s.stdout.write(render_table(["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"], rows))
    return 0
