"""The Docker-compatible argument parser shared by the ``layerlab`` CLI and the notebook magics.

``parse_args(argv)`` turns a command line into an :class:`argparse.Namespace` whose ``verb``
names the command (``images``, ``image_prune``, ``system_check`` …). Errors raise
:class:`UsageError` with Docker's wording instead of exiting.
"""
from __future__ import annotations

import argparse
from typing import NoReturn, Sequence

from .errors import EngineError

PROG = "layerlab"


class UsageError(EngineError):
    """Bad flags or arguments (``unknown flag``, ``requires at least 1 argument`` …); exit 125."""

    exit_code = 125

    def __init__(self, message: str, command: str = "") -> None:
        hint = f"\nSee '{PROG} {command} --help'." if command else f"\nSee '{PROG} --help'."
        super().__init__(message + hint)
        self.command = command


class _Parser(argparse.ArgumentParser):
    def __init__(self, *a, command: str = "", **kw) -> None:
        kw.setdefault("add_help", True)
        super().__init__(*a, **kw)
        self.command = command

    def error(self, message: str) -> NoReturn:
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


def _add(sub: argparse._SubParsersAction, name: str, verb: str, help_: str, command: str | None = None,
         aliases: Sequence[str] = ()) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_, description=help_, aliases=list(aliases), command=command or name)
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


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    root = _Parser(prog=PROG, description="LayerLab: Docker's image verbs, daemonless and rootless.")
    sub = root.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

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
    isub = image.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=_Parser)
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

    boot = _add(sub, "bootstrap", "bootstrap", "Create busybox:latest and hello-world:latest from the host's busybox")
    boot.add_argument("-q", "--quiet", action="store_true", help="Print nothing")

    system = _add(sub, "system", "system", "Manage LayerLab")
    ssub = system.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=_Parser)
    _add(ssub, "check", "system_check", "Verify every blob digest and every reference in the store",
         command="system check")
    _add(sub, "version", "version", "Show the LayerLab version information")
    return root


_PARSER: argparse.ArgumentParser | None = None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse a command line (without the program name); raise :class:`UsageError` on bad input."""
    global _PARSER
    if _PARSER is None:
        _PARSER = build_parser()
    args, extra = _PARSER.parse_known_args(list(argv))
    command = " ".join(x for x in (getattr(args, "command", None), getattr(args, "subcommand", None)) if x)
    if extra:
        flag = next((x for x in extra if x.startswith("-") and x != "-"), None)
        if flag:
            raise UsageError(f"unknown flag: {flag.split('=')[0]}", command)
        raise UsageError(f'"{PROG} {command}" accepts no more arguments: {" ".join(extra)}', command)
    if not getattr(args, "verb", None) or args.verb in ("image", "system"):
        raise UsageError(f"{PROG}: '{' '.join(argv) or ''}' needs a command", "")
    return args
