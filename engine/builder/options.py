"""``docker build``'s flags, build args with moby's rules, and reading the Dockerfile."""
from __future__ import annotations

import os

from ..errors import BuildError
from ..values import value

#: build args Docker accepts without an ARG (and leaves out of the cache key unless declared)
BUILTIN_ARGS = frozenset({"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                          "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"})


@value
class BuildOptions:
    """``docker build`` flags. ``dockerfile_text`` replaces the file (a notebook cell)."""

    context: str | None = None
    dockerfile: str | None = None
    dockerfile_text: str | None = None
    tags: tuple[str, ...] = ()
    build_args: tuple[str, ...] = ()
    no_cache: bool = False
    rm: bool = True
    force_rm: bool = False
    target: str | None = None
    pull: bool = False          # --pull: pull every base image, even a stored one


class BuildArgs:
    """moby's ``BuildArgs``: --build-arg values, meta ARGs, and the ARGs a stage declared."""

    def __init__(self, options: dict[str, str | None]) -> None:
        self.options = options
        self.meta: dict[str, str | None] = {}
        self.referenced: set[str] = set()

    def value(self, key: str, allowed: dict[str, str | None]) -> str | None:
        """``getBuildArg``: the --build-arg, else the ARG's default, else the meta ARG's."""
        if self.options.get(key) is not None:
            return self.options[key]
        default = allowed.get(key)
        if default is None:
            return self.meta.get(key)
        return default

    def all_allowed(self, allowed: dict[str, str | None]) -> dict[str, str]:
        """``GetAllAllowed``: every declared (or built-in) arg that has a value."""
        out: dict[str, str] = {}
        for key in list(allowed) + sorted(BUILTIN_ARGS - set(allowed)):
            value = self.value(key, allowed)
            if value is not None:
                out[key] = value
        return out

    def filter_allowed(self, allowed: dict[str, str | None], env: dict[str, str]) -> list[str]:
        """``FilterAllowed``: ``K=V`` for each arg with a value that ENV does not override."""
        return [f"{k}={v}" for k, v in self.all_allowed(allowed).items() if k not in env]

    def in_cache_key(self, key: str) -> bool:
        return key in self.referenced or key not in BUILTIN_ARGS

    def unused(self) -> list[str]:
        return sorted(k for k in self.options if k not in self.referenced and k not in BUILTIN_ARGS)


def _parse_build_args(values: tuple[str, ...]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for v in values:
        k, eq, val = v.partition("=")
        out[k] = val if eq else os.environ.get(k)
    return out


def _read_dockerfile(opts: BuildOptions) -> tuple[str, str]:
    if opts.dockerfile_text is not None:
        return opts.dockerfile_text, opts.dockerfile or "Dockerfile"
    name = opts.dockerfile or "Dockerfile"
    path = name if os.path.isabs(name) or opts.context is None else os.path.join(opts.context, name)
    if name == "-":
        raise BuildError("reading the Dockerfile from stdin: pass dockerfile_text")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), os.path.basename(name)
    except FileNotFoundError:
        raise BuildError(f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                         f"lstat {os.path.abspath(path)}: no such file or directory") from None
