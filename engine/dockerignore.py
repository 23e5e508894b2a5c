"""``.dockerignore`` parsing and matching with the rules of moby/patternmatcher and Docker's
context walk.

Patterns are matched against slash-separated paths relative to the build context.  The last
matching pattern wins, ``!pattern`` re-includes, a pattern matching a directory excludes all that
is inside it, ``*`` and ``?`` do not cross ``/``, ``**`` matches any number of directories, and
``[...]`` is a character class.  Lines starting with ``#`` are comments; patterns are cleaned like
``filepath.Clean`` and a leading ``/`` is dropped.

>>> ignore = DockerIgnore.from_text("# build output\\n*.log\\n!keep.log\\nbuild/\\n")
>>> [ignore.excluded(p) for p in ("a.log", "keep.log", "build/x/y.o", "src/main.c")]
[True, False, True, False]
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator

from .errors import EngineError
from .values import field, value

_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_ESCAPED = set(".+()|{}$")  # regexp metacharacters without a meaning in filepath.Match
_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ", "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9", "graph": "!-~", "lower": "a-z", "print": " -~", "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z", "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}


class DockerIgnoreError(EngineError):
    """A ``.dockerignore`` pattern is malformed (Docker: ``syntax error in pattern``)."""


def clean_path(path: str) -> str:
    """Go's ``filepath.Clean`` for slash-separated paths."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def read_patterns(text: str) -> list[str]:
    """The patterns of a ``.dockerignore`` file, normalised like ``ignorefile.ReadAll``."""
    patterns: list[str] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines):
        line = line.removesuffix("\r")
        if number == 0:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        pattern = line.strip(_GO_SPACE)
        if pattern == "":
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip(_GO_SPACE)
        if pattern:
            pattern = clean_path(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


def _check_glob(pattern: str) -> None:
    """Raise for what ``filepath.Match`` calls ``ErrBadPattern``."""
    bad = DockerIgnoreError(f"syntax error in pattern: {pattern}")
    i, n = 0, len(pattern)

    def get_esc(i: int) -> int:
        if i >= n or pattern[i] in "-]":
            raise bad
        if pattern[i] == "\\":
            i += 1
            if i >= n:
                raise bad
        i += 1
        if i >= n:
            raise bad
        return i

    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise bad
            i += 2
        elif ch == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            ranges = 0
            while True:
                if i < n and pattern[i] == "]" and ranges > 0:
                    i += 1
                    break
                i = get_esc(i)
                if pattern[i] == "-":
                    i = get_esc(i + 1)
                ranges += 1
        else:
            i += 1


@value
class Pattern:
    """One cleaned pattern; ``exclusion`` is True for a ``!`` pattern (an exception)."""

    text: str
    exclusion: bool = False
    _kind: str = field(default="exact", repr=False, compare=False)
    _regex: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def compile(cls, text: str, exclusion: bool = False) -> Pattern:
        """Translate a pattern like patternmatcher's ``compile`` (exact, prefix, suffix or regexp)."""
        regex = "^"
        kind = "exact"
        i = 0
        pos = 0
        n = len(text)
        while pos < n:
            ch = text[pos]
            pos += 1
            if ch == "*":
                if pos < n and text[pos] == "*":
                    pos += 1
                    if pos < n and text[pos] == "/":
                        pos += 1
                    if pos >= n:
                        if kind == "exact":
                            kind = "prefix"
                        else:
                            regex += ".*"
                            kind = "regexp"
                    else:
                        regex += "(.*/)?"
                        kind = "regexp"
                    if i == 0:
                        kind = "suffix"
                else:
                    regex += "[^/]*"
                    kind = "regexp"
            elif ch == "?":
                regex += "[^/]"
                kind = "regexp"
            elif ch in _ESCAPED:
                regex += "\\" + ch
            elif ch == "\\":
                if pos < n:
                    regex += "\\" + text[pos]
                    pos += 1
                    kind = "regexp"
                else:
                    regex += "\\\\"
            elif ch in "[]":
                regex += ch
                kind = "regexp"
            else:
                regex += ch
            i += 1
        compiled = None
        if kind == "regexp":
            try:
                compiled = re.compile(_posix_classes(regex) + "$", re.ASCII)
            except re.error as err:
                raise DockerIgnoreError(f"syntax error in pattern: {text} ({err})") from None
        return cls(text, exclusion, kind, compiled)

    def match(self, path: str) -> bool:
        """Whether the (cleaned, slash-separated) path matches this pattern alone."""
        if self._kind == "exact":
            return path == self.text
        if self._kind == "prefix":
            return path.startswith(self.text[:-2])
        if self._kind == "suffix":
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]
        assert self._regex is not None
        return self._regex.match(path) is not None


def _posix_classes(regex: str) -> str:
    """Rewrite Go's POSIX classes inside brackets (``[[:alpha:]_]``) for Python's ``re``."""
    out: list[str] = []
    i, n = 0, len(regex)
    in_class = False
    class_start = False
    while i < n:
        ch = regex[i]
        if ch == "\\":
            out.append(regex[i:i + 2])
            i += 2
            continue
        if in_class:
            posix = re.match(r"\[:([a-z]+):\]", regex[i:])
            if posix and posix.group(1) in _POSIX_CLASSES:
                out.append(_POSIX_CLASSES[posix.group(1)])
                i += posix.end()
                continue
            if ch == "]" and not class_start:
                in_class = False
        elif ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            if i < n and regex[i] == "^":
                out.append("^")
                i += 1
            class_start = True
            continue
        class_start = False
        out.append(ch)
        i += 1
    return "".join(out)


def _parent_dirs(path: str) -> list[str]:
    """``filepath.Dir(path)`` split at ``/``; empty when the parent is the context root."""
    parent = clean_path(path.rsplit("/", 1)[0]) if "/" in path else "."
    return [] if parent == "." else parent.split("/")


@value
class DockerIgnore:
    """The patterns of a ``.dockerignore``; an empty one excludes nothing."""

    patterns: tuple[Pattern, ...] = ()

    @classmethod
    def from_text(cls, text: str) -> DockerIgnore:
        """Parse ``.dockerignore`` text; raises :class:`DockerIgnoreError` for a bad pattern."""
        return cls.from_patterns(read_patterns(text))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> DockerIgnore:
        """Read a ``.dockerignore`` file; a missing file excludes nothing (as in Docker)."""
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                return cls.from_text(handle.read())
        except FileNotFoundError:
            return cls()

    @classmethod
    def from_patterns(cls, patterns: Iterable[str]) -> DockerIgnore:
        """Build from pattern strings (``patternmatcher.New``): trims, cleans and checks each."""
        compiled: list[Pattern] = []
        for pattern in patterns:
            pattern = pattern.strip(_GO_SPACE)
            if pattern == "":
                continue
            pattern = clean_path(pattern)
            exclusion = pattern.startswith("!")
            if exclusion:
                if len(pattern) == 1:
                    raise DockerIgnoreError('illegal exclusion pattern: "!"')
                pattern = pattern[1:]
            _check_glob(pattern)
            compiled.append(Pattern.compile(pattern, exclusion))
        return cls(tuple(compiled))

    @property
    def has_exclusions(self) -> bool:
        """Whether any ``!`` pattern exists (then excluded directories may still be entered)."""
        return any(p.exclusion for p in self.patterns)

    def excluded(self, path: str) -> bool:
        """Whether ``path`` (relative to the context, ``/``-separated) is left out of the context.

        The path is cleaned first (a leading ``/`` is dropped); the context root is never excluded.
        """
        path = clean_path(path.lstrip("/") or ".")
        if path == ".":
            return False
        return self.matches(path)

    def matches(self, path: str) -> bool:
        """``MatchesOrParentMatches`` on ``path`` as given: a pattern matching the path or any of
        its parent directories counts, and the last pattern that matches decides."""
        parents = _parent_dirs(path)
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path) or any(pattern.match("/".join(parents[: i + 1])) for i in range(len(parents)))
            if hit:
                matched = not pattern.exclusion
        return matched

    def match_with_parents(self, path: str, parent: tuple[bool, ...] = ()) -> tuple[bool, tuple[bool, ...]]:
        """``MatchesUsingParentResults``: exclusion of ``path`` given its directory's result info.

        Returns (excluded, info to pass for the children of ``path``).
        """
        matched = False
        info = [False] * len(self.patterns)
        for index, pattern in enumerate(self.patterns):
            hit = parent[index] if parent else False
            if not hit:
                if pattern.exclusion != matched:
                    continue
                hit = pattern.match(path)
                if not hit and not parent:
                    parents = _parent_dirs(path)
                    hit = any(pattern.match("/".join(parents[: i + 1])) for i in range(len(parents)))
            info[index] = hit
            if hit:
                matched = not pattern.exclusion
        return matched, tuple(info)

    def may_reinclude_inside(self, directory: str) -> bool:
        """Docker's test for entering an excluded directory: some ``!`` pattern starts with it."""
        prefix = directory + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)


def walk_context(root: str | os.PathLike[str], ignore: DockerIgnore | None = None) -> Iterator[str]:
    """The paths Docker sends as build context: relative, ``/``-separated, in ``filepath.Walk`` order.

    Directories are yielded too (before their contents).  An excluded file is skipped; an excluded
    directory is skipped with everything in it unless a ``!`` pattern starts with the directory's
    path (Docker's rule: then the directory is entered, not sent itself, and its entries are matched
    one by one).  Symbolic links are yielded, never followed; unreadable directories are not entered.
    """
    for path, _ in walk_context_entries(root, ignore):
        yield path


def walk_context_entries(root: str | os.PathLike[str],
                         ignore: DockerIgnore | None = None) -> Iterator[tuple[str, os.DirEntry]]:
    """:func:`walk_context` with each path's ``os.DirEntry`` (its cached lstat spares a system call)."""
    ignore = ignore or DockerIgnore()

    def walk(directory: str, relative: str, parent: tuple[bool, ...]) -> Iterator[tuple[str, os.DirEntry]]:
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError:
            return
        for entry in entries:
            path = f"{relative}/{entry.name}" if relative else entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            skip, info = ignore.match_with_parents(path, parent) if ignore.patterns else (False, ())
            if skip:
                if not is_dir or not ignore.has_exclusions or not ignore.may_reinclude_inside(path):
                    continue
            else:
                yield path, entry
            if is_dir:
                yield from walk(entry.path, path, info)

    yield from walk(os.fspath(root), "", ())
