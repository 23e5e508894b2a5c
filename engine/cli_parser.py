"""The Docker-compatible argument parser shared by the ``layerlab`` CLI and the notebook magics.

``parse_args(argv)`` turns a command line into an :class:`argparse.Namespace` whose ``verb``
names the command (``images``, ``image_prune``, ``system_check`` …). Errors raise
:class:`UsageError` with Docker's wording instead of exiting.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .errors import EngineError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing, which costs every command 3 ms
if TYPE_CHECKING:
    from typing import NoReturn

PROG = "layerlab"


class UsageError(EngineError):
    """Bad flags or arguments (``unknown flag``, ``requires at least 1 argument`` …); exit 125."""

    exit_code = 125

    def __init__(self, message: str, command: str = "") -> None:
        hint = f"\nSee '{PROG} {command} --help'." if command else f"\nSee '{PROG} --help'."
        super().__init__(message + hint)
        self.command = command


def _terminal_columns() -> int:
    """What ``shutil.get_terminal_size`` answers, without importing shutil (2 ms of every command)."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _terminal_columns() - 2 if width is None else width)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *a, command: str = "", **kw) -> None:
        kw.setdefault("add_help", True)
        kw.setdefault("formatter_class", _Formatter)
        super().__init__(*a, **kw)
        self.command = command

    def error(self, message: str) -> NoReturn:
        if message.startswith("argument COMMAND: invalid choice:"):
            word = message.split("'")[1]
            where = f"{PROG} {self.command}".strip()
            raise UsageError(f"{PROG}: '{word}' is not a {where} command.", self.command)
        if message.startswith("unrecognized arguments:"):
            extra = message.split(":", 1)[1].split()
            flag = next((x for x in extra if x.startswith("-")), None)
            if flag:
                raise UsageError(f"unknown flag: {flag.split('=')[0]}", self.command)
            raise UsageError(f'"{PROG} {self.command}" accepts no more arguments: {" ".join(extra)}', self.command)
        if "the following arguments are required" in message:
            raise UsageError(f'"{PROG} {self.command}" requires at least 1 argument.', self.command)
        if message.startswith("argument") and "expected one argument" in message:
            flag = message.split()[1].split("/")[-1].rstrip(":")
            raise UsageError(f"flag needs an argument: {flag}", self.command)
        raise UsageError(message, self.command)


class _Skipped:
    """Stands in for the parser of a verb that this command line does not use (building all is slow)."""

    def add_argument(self, *a, **kw) -> None:
        pass

    def set_defaults(self, **kw) -> None:
        pass

    def add_subparsers(self, **kw) -> "_Skipped":
        return self

    def add_parser(self, *a, **kw) -> "_Skipped":
        return self


_ONLY: tuple[str, str | None] | None = None   # (group, name) wanted by the command line being parsed


def _wanted(name: str, aliases: Sequence[str], command: str) -> bool:
    if _ONLY is None:
        return True
    names = {name, *aliases}
    group, _, sub = command.partition(" ")
    if not sub:
        return _ONLY[0] in names
    return _ONLY[0] == group and (_ONLY[1] is None or _ONLY[1] in names)


def _add(sub: argparse._SubParsersAction, name: str, verb: str, help_: str, command: str | None = None,
         aliases: Sequence[str] = (), long_help_only: bool = False) -> argparse.ArgumentParser:
    if isinstance(sub, _Skipped) or not _wanted(name, aliases, command or name):
        return _Skipped()  # type: ignore[return-value]
    p = sub.add_parser(name, help=help_, description=help_, aliases=list(aliases), command=command or name,
                       add_help=not long_help_only)
    if long_help_only:  # Docker's -h means --hostname for run/create
        p.add_argument("--help", action="help", help="Print usage")
    p.set_defaults(verb=verb)
    return p


def _images_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="Show all images (default hides intermediate images)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("--digests", action="store_true", help="Show digests")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")


def _rmi_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="Force removal of the image")
    p.add_argument("--no-prune", action="store_true", help="Do not delete untagged parents")
    p.add_argument("images", nargs="+", metavar="IMAGE")


def _history_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-H", "--human", default="true", choices=["true", "false"], help="Print sizes and dates in human readable format")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("image", metavar="IMAGE")


def _inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", help="Format the output using the given Go template")
    p.add_argument("names", nargs="+", metavar="IMAGE")


def _save_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", help="Write to a file, instead of STDOUT")
    p.add_argument("--format", choices=["docker", "oci"], default="docker",
                   help="Archive format: docker-archive (default) or an OCI image layout")
    p.add_argument("images", nargs="+", metavar="IMAGE")


def _load_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", help="Read from tar archive file (or OCI layout directory), instead of STDIN")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the load output")


def _import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--change", action="append", default=[], help="Apply Dockerfile instruction to the created image")
    p.add_argument("-m", "--message", default="", help="Set commit message for imported image")
    p.add_argument("--platform", help="Set platform if server is multi-platform capable")
    p.add_argument("source", metavar="file|URL|-")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")


def _tag_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")


def _prune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused images, not just dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")


def _run_args(p: argparse.ArgumentParser, *, run: bool = True) -> None:
    if run:
        p.add_argument("-d", "--detach", action="store_true", help="Run container in background and print container ID")
    p.add_argument("-i", "--interactive", action="store_true", help="Keep STDIN open even if not attached")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.add_argument("--rm", action="store_true", help="Automatically remove the container when it exits")
    p.add_argument("--name", help="Assign a name to the container")
    p.add_argument("-e", "--env", action="append", default=[], help="Set environment variables")
    p.add_argument("--env-file", action="append", default=[], help="Read in a file of environment variables")
    p.add_argument("-w", "--workdir", help="Working directory inside the container")
    p.add_argument("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])")
    p.add_argument("--entrypoint", help="Overwrite the default ENTRYPOINT of the image")
    p.add_argument("-p", "--publish", action="append", default=[], help="Publish a container's port(s) to the host")
    p.add_argument("-P", "--publish-all", action="store_true", help="Publish all exposed ports to random ports")
    p.add_argument("--expose", action="append", default=[], help="Expose a port or a range of ports")
    p.add_argument("--network", "--net", default="default", help="Connect a container to a network (default, host, none)")
    p.add_argument("-v", "--volume", action="append", default=[], help="Bind mount a volume (host-path:container-path[:ro])")
    p.add_argument("-h", "--hostname", help="Container host name")
    p.add_argument("--pull", default="missing",
                   help=f'Pull image before {"running" if run else "creating"} ("always"|"missing"|"never")')
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the pull output")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")


def _build_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--tag", action="append", default=[], help="Name and optionally a tag in the 'name:tag' format")
    p.add_argument("-f", "--file", help="Name of the Dockerfile (Default is 'PATH/Dockerfile')")
    p.add_argument("--build-arg", action="append", default=[], help="Set build-time variables")
    p.add_argument("--no-cache", action="store_true", help="Do not use cache when building the image")
    p.add_argument("--rm", default="true", choices=["true", "false"], nargs="?", const="true",
                   help="Remove intermediate containers after a successful build")
    p.add_argument("--force-rm", action="store_true", help="Always remove intermediate containers")
    p.add_argument("--target", help="Set the target build stage to build")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the build output and print image ID on success")
    p.add_argument("--pull", action="store_true", help="Always attempt to pull a newer version of the image")
    p.add_argument("context", metavar="PATH | -")


def _container_verbs(sub: argparse._SubParsersAction, prefix: str = "") -> None:
    def add(name: str, verb: str, help_: str, aliases: Sequence[str] = (),
            long_help_only: bool = False) -> argparse.ArgumentParser:
        return _add(sub, name, verb, help_, command=f"{prefix}{name}", aliases=aliases, long_help_only=long_help_only)

    _run_args(add("run", "run", "Run a command in a new container", long_help_only=True))
    _run_args(add("create", "create", "Create a new container", long_help_only=True), run=False)
    p = add("start", "start", "Start one or more stopped containers")
    p.add_argument("-a", "--attach", action="store_true", help="Attach STDOUT/STDERR and forward signals")
    p.add_argument("-i", "--interactive", action="store_true", help="Attach container's STDIN")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = add("ps", "ps", "List containers", aliases=("ls", "list") if prefix else ())
    p.add_argument("-a", "--all", action="store_true", help="Show all containers (default shows just running)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display container IDs")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-l", "--latest", action="store_true", help="Show the latest created container")
    p.add_argument("-n", "--last", type=int, default=-1, help="Show n last created containers")
    p = add("logs", "logs", "Fetch the logs of a container")
    p.add_argument("-f", "--follow", action="store_true", help="Follow log output")
    p.add_argument("--tail", default="all", help="Number of lines to show from the end of the logs")
    p.add_argument("-t", "--timestamps", action="store_true", help="Show timestamps")
    p.add_argument("container", metavar="CONTAINER")
    p = add("stop", "stop", "Stop one or more running containers")
    p.add_argument("-t", "--time", type=int, default=10, help="Seconds to wait for stop before killing it")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = add("kill", "kill", "Kill one or more running containers")
    p.add_argument("-s", "--signal", default="KILL", help="Signal to send to the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = add("rm", "rm", "Remove one or more containers", aliases=("remove",) if prefix else ())
    p.add_argument("-f", "--force", action="store_true", help="Force the removal of a running container")
    p.add_argument("-v", "--volumes", action="store_true", help="Accepted for compatibility (no named volumes)")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = add("wait", "wait", "Block until one or more containers stop, then print their exit codes")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p = add("diff", "diff", "Inspect changes to files or directories on a container's filesystem")
    p.add_argument("container", metavar="CONTAINER")
    p = add("commit", "commit", "Create a new image from a container's changes")
    p.add_argument("-a", "--author", default="", help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    p.add_argument("-m", "--message", default="", help="Commit message")
    p.add_argument("-c", "--change", action="append", default=[], help="Apply Dockerfile instruction to the created image")
    p.add_argument("-p", "--pause", default="true", help="Accepted for compatibility")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p = add("export", "export", "Export a container's filesystem as a tar archive")
    p.add_argument("-o", "--output", help="Write to a file, instead of STDOUT")
    p.add_argument("container", metavar="CONTAINER")
    p = add("cp", "cp", "Copy files/folders between a container and the local filesystem")
    p.add_argument("source", metavar="SRC_PATH")
    p.add_argument("dest", metavar="DEST_PATH")
    p = add("exec", "exec", "Run a command in a running container")
    p.add_argument("-d", "--detach", action="store_true", help="Detached mode: run command in the background")
    p.add_argument("-i", "--interactive", action="store_true", help="Keep STDIN open even if not attached")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.add_argument("-e", "--env", action="append", default=[], help="Set environment variables")
    p.add_argument("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])")
    p.add_argument("-w", "--workdir", help="Working directory inside the container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")
    p = add("port", "port", "List port mappings or a specific mapping for the container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("private_port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")


# --- registry verbs (engine/cli_registry.py) -------------------------------------------------------

def _push_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all-tags", action="store_true", help="Push all tagged images in the repository")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("--disable-content-trust", action="store_true", help="Skip image signing (default true)")
    p.add_argument("name", metavar="NAME[:TAG]")


def _pull_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all-tags", action="store_true", help="Download all tagged images in the repository")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("--platform", help="Set platform if server is multi-platform capable")
    p.add_argument("--disable-content-trust", action="store_true", help="Skip image verification (default true)")
    p.add_argument("name", metavar="NAME[:TAG|@DIGEST]")


def _login_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-u", "--username", help="Username")
    p.add_argument("-p", "--password", help="Password")
    p.add_argument("--password-stdin", action="store_true", help="Take the password from stdin")
    p.add_argument("server", nargs="?", metavar="SERVER")


def _logout_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("server", nargs="?", metavar="SERVER")


def _search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--filter", action="append", default=[], help="Filter output based on conditions provided")
    p.add_argument("--format", help="Pretty-print search using a Go template")
    p.add_argument("--limit", default="25", help="Max number of search results (default 25)")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("term", metavar="TERM")


def _registry_verbs(sub: argparse._SubParsersAction, image_sub: argparse._SubParsersAction) -> None:
    for name, fn, help_ in (("push", _push_args, "Push an image or a repository to a registry"),
                            ("pull", _pull_args, "Pull an image or a repository from a registry")):
        fn(_add(sub, name, name, help_))
        fn(_add(image_sub, name, name, help_, command=f"image {name}"))
    _login_args(_add(sub, "login", "login", "Log in to a Docker registry"))
    _logout_args(_add(sub, "logout", "logout", "Log out from a Docker registry"))
    _search_args(_add(sub, "search", "search", "Search the Docker Hub for images"))


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    root = _Parser(prog=PROG, description="LayerLab: Docker's image verbs, daemonless and rootless.")
    sub = root.add_subparsers(dest="verb_group", metavar="COMMAND", parser_class=_Parser)

    for name, verb, fn, help_ in (
        ("images", "images", _images_args, "List images"),
        ("rmi", "rmi", _rmi_args, "Remove one or more images"),
        ("history", "history", _history_args, "Show the history of an image"),
        ("inspect", "inspect", _inspect_args, "Return low-level information on images"),
        ("save", "save", _save_args, "Save one or more images to a tar archive (streamed to STDOUT by default)"),
        ("load", "load", _load_args, "Load an image from a tar archive or STDIN"),
        ("import", "import", _import_args, "Import the contents from a tarball to create a filesystem image"),
        ("tag", "tag", _tag_args, "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    ):
        fn(_add(sub, name, verb, help_))

    image = _add(sub, "image", "image", "Manage images")
    isub = image.add_subparsers(dest="verb_name", metavar="COMMAND", parser_class=_Parser)
    for name, verb, fn, help_, aliases in (
        ("ls", "images", _images_args, "List images", ("list",)),
        ("rm", "rmi", _rmi_args, "Remove one or more images", ("remove",)),
        ("history", "history", _history_args, "Show the history of an image", ()),
        ("inspect", "inspect", _inspect_args, "Display detailed information on one or more images", ()),
        ("save", "save", _save_args, "Save one or more images to a tar archive", ()),
        ("load", "load", _load_args, "Load an image from a tar archive or STDIN", ()),
        ("import", "import", _import_args, "Import the contents from a tarball to create a filesystem image", ()),
        ("tag", "tag", _tag_args, "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", ()),
        ("prune", "image_prune", _prune_args, "Remove unused images", ()),
    ):
        fn(_add(isub, name, verb, help_, command=f"image {name}", aliases=aliases))
    _registry_verbs(sub, isub)

    _build_args(_add(sub, "build", "build", "Build an image from a Dockerfile"))
    _container_verbs(sub)
    container = _add(sub, "container", "container", "Manage containers")
    csub = container.add_subparsers(dest="verb_name", metavar="COMMAND", parser_class=_Parser)
    _container_verbs(csub, prefix="container ")
    p = _add(csub, "prune", "container_prune", "Remove all stopped containers", command="container prune")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")

    boot = _add(sub, "bootstrap", "bootstrap", "Create busybox:latest and hello-world:latest from the host's busybox")
    boot.add_argument("-q", "--quiet", action="store_true", help="Print nothing")

    system = _add(sub, "system", "system", "Manage LayerLab")
    ssub = system.add_subparsers(dest="verb_name", metavar="COMMAND", parser_class=_Parser)
    _add(ssub, "check", "system_check", "Verify every blob digest and every reference in the store",
         command="system check")
    _add(sub, "version", "version", "Show the LayerLab version information")
    _registry_server_verbs(sub)
    return root


_PARSERS: dict[tuple[str, str | None] | None, argparse.ArgumentParser] = {}


def _parser_for(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser with only the verb ``argv`` names (the full tree for help and unknown verbs)."""
    global _ONLY
    words = [w for w in argv if not w.startswith("-")]
    key: tuple[str, str | None] | None = None
    if words:
        key = (words[0], None)
    if key not in _PARSERS:
        _ONLY = key
        try:
            parser = build_parser()
        finally:
            _ONLY = None
        if key is not None and len(parser._subparsers._group_actions[0].choices) == 0:  # type: ignore[union-attr]
            key, parser = None, _PARSERS.get(None) or build_parser()
        _PARSERS[key] = parser
    return _PARSERS[key]


_GROUPS = ("image", "container", "system")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse a command line (without the program name); raise :class:`UsageError` on bad input."""
    args, extra = _parser_for(argv).parse_known_args(list(argv))
    command = " ".join(x for x in (getattr(args, "verb_group", None), getattr(args, "verb_name", None)) if x)
    if extra:
        flag = next((x for x in extra if x.startswith("-") and x != "-"), None)
        if flag:
            raise UsageError(f"unknown flag: {flag.split('=')[0]}", command)
        raise UsageError(f'"{PROG} {command}" accepts no more arguments: {" ".join(extra)}', command)
    if not getattr(args, "verb", None) or args.verb in ("image", "system", "container"):
        raise UsageError(f"{PROG}: '{' '.join(argv) or ''}' needs a command", "")
    return args


# --- registry server and classroom hub (engine/cli_serve.py) ---------------------------------------

def _registry_server_args(p: argparse.ArgumentParser, *, serve: bool = False) -> None:
    p.add_argument("--port", type=int, default=5000, help="TCP port to listen on (default 5000)")
    p.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1)")
    p.add_argument("--hub", action="store_true", help="Classroom hub: accounts, tokens, namespaces, search")
    p.add_argument("--auth", help="htpasswd file (bcrypt) for HTTP Basic authentication")
    p.add_argument("--root", help="Storage directory (default $LAYERLAB_HOME/registry)")
    if serve:
        p.add_argument("--ready-file", help=argparse.SUPPRESS)


def _registry_server_verbs(sub: argparse._SubParsersAction) -> None:
    reg = _add(sub, "registry", "", "Run LayerLab's own registry (the OCI distribution API)")
    rsub = reg.add_subparsers(dest="verb_name", metavar="COMMAND", parser_class=_Parser)
    _registry_server_args(_add(rsub, "serve", "registry_serve", "Serve the registry in the foreground",
                               command="registry serve"), serve=True)
    _registry_server_args(_add(rsub, "start", "registry_start", "Start the registry in the background",
                               command="registry start"))
    _add(rsub, "stop", "registry_stop", "Stop the background registry", command="registry stop")
    _add(rsub, "status", "registry_status", "Show whether the background registry runs", command="registry status")

    hub = _add(sub, "hub", "", "Manage the classroom hub's accounts and repositories")
    hsub = hub.add_subparsers(dest="verb_name", metavar="COMMAND", parser_class=_Parser)
    p = _add(hsub, "adduser", "hub_adduser", "Create a hub account (or change its password)", command="hub adduser")
    p.add_argument("--admin", action="store_true", help="May push root repositories (library/...)")
    p.add_argument("--password-stdin", action="store_true", help="Take the password from stdin")
    p.add_argument("--root", help="Registry storage directory (default $LAYERLAB_HOME/registry)")
    p.add_argument("name", metavar="NAME")
    p = _add(hsub, "star", "hub_star", "Star a repository", command="hub star")
    p.add_argument("--user", help="Who stars it (default: you)")
    p.add_argument("--remove", action="store_true", help="Remove the star")
    p.add_argument("--root", help="Registry storage directory (default $LAYERLAB_HOME/registry)")
    p.add_argument("repository", metavar="REPOSITORY")
    p = _add(hsub, "describe", "hub_describe", "Set a repository's short description", command="hub describe")
    p.add_argument("--root", help="Registry storage directory (default $LAYERLAB_HOME/registry)")
    p.add_argument("repository", metavar="REPOSITORY")
    p.add_argument("text", metavar="TEXT")
    p = _add(hsub, "seed", "hub_seed", "Publish busybox and hello-world as official images (library/...)",
             command="hub seed")
    p.add_argument("--root", help="Registry storage directory (default $LAYERLAB_HOME/registry)")
