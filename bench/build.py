"""Build benchmarks (issue "Dockerfile builds"): cold builds, cached rebuilds, a large context.

Every tool starts from the same base: ``busybox:latest`` made from ``busybox_rootfs_tar()`` of
``tests/fixtures/dockerd.py`` (the host's static busybox and a few applet links), with ``docker
import -c 'CMD ["sh"]'`` in the private dockerd and ``Engine.import_image(..., changes=('CMD
["sh"]',))`` in a temp LayerLab home, as ``tests/integration/test_build_vs_docker.py`` does.

``build-cold``: the seed's web Dockerfile built from nothing, as a whole process: ``layerlab build
-t static_web CTX`` against ``DOCKER_BUILDKIT=1 docker build --network none`` and
``DOCKER_BUILDKIT=0 docker build``, interleaved. Every build gets its own number in the RUN line
(``RUN echo hello N > /greeting ...``), so BuildKit, which keys RUN by its command and the ENV in
force but not by LABEL, must run it; after every build (untimed) its image is removed with its
parents (``rmi``, which prunes the untagged intermediate images of the classic builders) and
BuildKit's cache is emptied (``docker builder prune -af``), so the classic builders also run the
LABEL and ENV steps again. Each build's output is checked: no ``Using cache`` (classic, LayerLab),
the RUN and COPY vertices ``DONE``, not ``CACHED`` (BuildKit).

``build-cached``: the same Dockerfile, built once, then rebuilt with every step from the cache:
``Engine.build`` in-process (measured alone, before the dockerd starts; the context's file hashes
are remembered by the process, as in a notebook), then ``layerlab build`` and both docker builders
as whole processes, interleaved.

``build-context``: a context of 10,000 files (10 directories of 1,000 small files) plus a directory
of 500 larger ones that ``.dockerignore`` excludes; the Dockerfile COPYs one 1,000-file directory.
Cached rebuild, whole process: ``layerlab build`` against ``DOCKER_BUILDKIT=0 docker build``
(whose CLI tars the 10,000 files and sends them to the daemon on every build).
"""
from __future__ import annotations

import io
import itertools
import random
import re
import subprocess
from pathlib import Path
from typing import Any, Callable

from .common import (
    CommandFailed, Context, Result, Side, Target, benchmark, format_seconds, log, measure_interleaved,
    settle,
)

TAG = "static_web"
BUILDKIT_TAG = "static_web:buildkit"   # the cached row's BuildKit image, so the two docker builders do not
                                       # move one tag back and forth on every rebuild
INDEX_HTML = "<h1>Hello from index v1</h1>\n"
#: the seed's web Dockerfile; {n} makes every cold build's RUN line new
WEB = """\
FROM busybox:latest
LABEL maintainer=whoami
ENV REFRESHED_AT=2014-07-01
RUN echo hello{n} > /greeting && mkdir -p /var/www/html
COPY index.html /var/www/html/
CMD ["cat", "/var/www/html/index.html"]
"""
WEB_COLD = ["new", "run", "run", "run", "new", "run"]       # per step: what the classic builders did
WEB_CACHED = ["new"] + ["cache"] * 5

CONTEXT_DIRS = 10
CONTEXT_FILES_PER_DIR = 1_000
IGNORED_FILES = 500
IGNORED_FILE_BYTES = 100_000
COPIED_DIR = "src/d03"
BIG_DOCKERFILE = f"FROM busybox:latest\nCOPY {COPIED_DIR} /data/\n"


def _base_tar() -> bytes:
    from tests.fixtures.dockerd import busybox_rootfs_tar

    return busybox_rootfs_tar()


def _engine(ctx: Context, stem: str) -> Any:
    """An Engine over a fresh temp home holding busybox:latest imported from the shared rootfs tar."""
    from engine import Engine

    eng = Engine(ctx.new_home(stem))
    eng.import_image(io.BytesIO(_base_tar()), "busybox:latest", changes=('CMD ["sh"]',))
    return eng


def _docker_base(daemon: Any) -> None:
    daemon.run("import", "-c", 'CMD ["sh"]', "-", "busybox:latest", input=_base_tar())


def _web_context(ctx: Context, stem: str, n: int | str = "") -> Path:
    root = ctx.path(stem)
    root.mkdir()
    (root / "index.html").write_text(INDEX_HTML)
    _write_web(root, n)
    return root


def _write_web(root: Path, n: int | str) -> None:
    (root / "Dockerfile").write_text(WEB.format(n=f" {n}" if n != "" else ""))


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a build, keeping stdout and stderr (checked afterwards, untimed); raise on failure."""
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CommandFailed(f"{argv!r} exited with {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc


# --- output checks ----------------------------------------------------------------------------

def classic_actions(text: str) -> list[str]:
    """Per step of a classic build's output (docker's or LayerLab's): new, cache or run."""
    actions: list[str] = []
    for line in text.splitlines():
        if re.match(r"^Step \d+/\d+ : ", line):
            actions.append("new")
        elif line == " ---> Using cache":
            actions[-1] = "cache"
        elif line.startswith(" ---> Running in ") and actions[-1] != "cache":
            actions[-1] = "run"
    return actions


def buildkit_status(text: str, instruction: str) -> set[str]:
    """What BuildKit's plain progress says of the vertex ``[i/n] <instruction>``: {"DONE"}, {"CACHED"} …"""
    vertex = None
    for line in text.splitlines():
        m = re.match(r"^#(\d+) \[\d+/\d+\] (.*)$", line)
        if m and m.group(2).startswith(instruction):
            vertex = m.group(1)
    if vertex is None:
        return set()
    return {line.split()[1] for line in text.splitlines()
            if line.startswith(f"#{vertex} ") and line.split()[1] in ("DONE", "CACHED", "ERROR")}


def _check_classic(tool: str, proc: subprocess.CompletedProcess, expected: list[str]) -> None:
    got = classic_actions(proc.stdout)
    if got != expected:
        raise RuntimeError(f"{tool}: steps did {got}, expected {expected}\n{proc.stdout[-2000:]}")


def _check_buildkit(proc: subprocess.CompletedProcess, steps: dict[str, str]) -> None:
    for instruction, want in steps.items():
        got = buildkit_status(proc.stderr, instruction)
        if got != {want}:
            raise RuntimeError(f"BuildKit: {instruction!r} is {sorted(got)}, expected {want}\n{proc.stderr[-3000:]}")


def _context_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.startswith("Sending build context")), "")


class _Build:
    """One tool's build command as a :class:`Side`: ``fn`` runs it (timed), ``check`` looks at its output after."""

    def __init__(self, argv: list[str], env: dict[str, str], check: Callable[[subprocess.CompletedProcess], None],
                 setup: Callable[[], Any] | None = None, cleanup: Callable[[], Any] | None = None) -> None:
        self.argv, self.env, self.check, self.setup, self.cleanup = argv, env, check, setup, cleanup
        self.last: subprocess.CompletedProcess | None = None

    def run(self) -> None:
        self.last = _run(self.argv, self.env)

    def after(self) -> None:
        proc, self.last = self.last, None
        if proc is None:  # the build failed: its error is the one reported
            return
        self.check(proc)
        if self.cleanup is not None:
            self.cleanup()

    def side(self) -> Side:
        def setup() -> None:
            if self.setup is not None:
                self.setup()
            settle()
        return Side(self.run, setup, self.after)


def _docker_argv(daemon: Any, *args: str) -> list[str]:
    from tests.fixtures.dockerd import DOCKER_CLIENT

    return [DOCKER_CLIENT, "-H", daemon.host, "build", *args]


def _classic_env(daemon: Any) -> dict[str, str]:
    return dict(daemon.env, DOCKER_BUILDKIT="0")


def _buildkit_env(daemon: Any) -> dict[str, str]:
    return dict(daemon.env, DOCKER_BUILDKIT="1")


BUILDKIT_ARGS = ("--network", "none", "--progress=plain")


def _histories_agree(eng: Any, image: str, daemon: Any, docker_image: str) -> None:
    """LayerLab's and the classic builder's `history` CREATED BY column are the same (same steps, same COPY key)."""
    ours = [row.created_by for row in eng.history(image)]
    theirs = daemon.run("history", "--no-trunc", "--format", "{{.CreatedBy}}", docker_image).stdout.splitlines()
    if ours != theirs:
        raise RuntimeError(f"history differs:\nLayerLab: {ours}\ndocker:   {theirs}")


def _docker_left(daemon: Any) -> int:
    """Images in the dockerd besides busybox (-a: intermediate ones too)."""
    return len(daemon.run("images", "-aq").stdout.split()) - 1


def _layerlab_left(eng: Any) -> int:
    return len(eng.images(all=True)) - 1


# --- cold build ---------------------------------------------------------------------------------

@benchmark("build-cold")
def build_cold(ctx: Context) -> list[Result]:
    """Cold build of the web Dockerfile: `layerlab build` vs BuildKit and classic `docker build` (whole process)."""
    from engine.runtime.manager import RunOptions

    reps = ctx.sizes.reps_fast
    counter = itertools.count(1)
    used: list[int] = []
    eng = _engine(ctx, "cold")
    notes: list[str] = []
    try:
        env = ctx.env(eng.home)

        def numbered(root: Path) -> Callable[[], None]:
            def setup() -> None:
                used.append(next(counter))
                _write_web(root, used[-1])
            return setup

        ll_root = _web_context(ctx, "web-layerlab")
        builds = {"layerlab build": _Build([ctx.layerlab_bin, "build", "-t", TAG, str(ll_root)], env,
                                           lambda p: _check_classic("layerlab build", p, WEB_COLD),
                                           numbered(ll_root), lambda: eng.remove_image(TAG))}
        greetings: dict[str, Callable[[], str]] = {}

        def layerlab_greeting() -> str:
            out: list[bytes] = []
            eng.run(RunOptions(TAG, ("cat", "/greeting"), auto_remove=True), output=lambda s, data: out.append(data))
            return b"".join(out).decode()

        greetings["layerlab build"] = layerlab_greeting
        with ctx.dockerd() as daemon:
            if daemon is not None:
                _docker_base(daemon)
                bk_root, cl_root = _web_context(ctx, "web-buildkit"), _web_context(ctx, "web-classic")

                def docker_cleanup(buildkit: bool) -> Callable[[], None]:
                    def cleanup() -> None:
                        daemon.run("rmi", TAG)
                        if buildkit:
                            daemon.run("builder", "prune", "-af")
                    return cleanup

                def docker_greeting() -> str:
                    return daemon.run("run", "--rm", "--network", "none", TAG, "cat", "/greeting").stdout

                builds["BuildKit docker build"] = _Build(
                    _docker_argv(daemon, *BUILDKIT_ARGS, "-t", TAG, str(bk_root)), _buildkit_env(daemon),
                    lambda p: _check_buildkit(p, {"RUN echo hello": "DONE", "COPY index.html": "DONE"}),
                    numbered(bk_root), docker_cleanup(True))
                builds["classic docker build"] = _Build(
                    _docker_argv(daemon, "-t", TAG, str(cl_root)), _classic_env(daemon),
                    lambda p: _check_classic("classic docker build", p, WEB_COLD),
                    numbered(cl_root), docker_cleanup(False))
                greetings["BuildKit docker build"] = greetings["classic docker build"] = docker_greeting
                notes.append("docker " + daemon.run("version", "--format", "{{.Server.Version}}").stdout.strip() +
                             ", storage driver " + daemon.run("info", "--format", "{{.Driver}}").stdout.strip())

            # untimed, per tool: one cold build, its output and its /greeting checked; LayerLab's history
            # compared with the classic builder's (same Dockerfile: number 0 for all)
            for name, b in builds.items():
                _write_web(Path(b.argv[-1]), 0)
                b.run()
                greeting = greetings[name]()
                if greeting != "hello 0\n":
                    raise RuntimeError(f"{name}: /greeting is {greeting!r}, expected 'hello 0'")
                if name == "classic docker build":
                    _histories_agree(eng, TAG, daemon, TAG)
                if name != "layerlab build":
                    b.after()  # before the next docker build tags static_web
            builds["layerlab build"].after()
            timings = measure_interleaved({name: b.side() for name, b in builds.items()}, reps=reps)
            if daemon is not None and _docker_left(daemon):
                raise RuntimeError(f"{_docker_left(daemon)} images left in the dockerd after the cold builds")
        if _layerlab_left(eng):
            raise RuntimeError(f"{_layerlab_left(eng)} images left in the LayerLab store after the cold builds")
        if eng.containers(all=True):
            raise RuntimeError("layerlab build left containers behind")
    finally:
        eng.close()
    if len(set(used)) != len(used):
        raise RuntimeError("a RUN number was used twice")
    whole = timings["layerlab build"]
    common = (f"the RUN line numbered per build ({len(used)} distinct numbers); after every build (untimed) its image "
              "is removed with its parents (rmi) and BuildKit's cache emptied (builder prune -af): every step of "
              "every build runs; every output checked (no `Using cache`; BuildKit's RUN and COPY vertices DONE, "
              "not CACHED); /greeting checked once per tool",
              "busybox:latest on both sides from busybox_rootfs_tar() (docker import / Engine.import_image)",
              *notes)
    label = "cold build, web Dockerfile (whole process)"
    return [
        Result("build-cold", label, whole, "`DOCKER_BUILDKIT=1 docker build --network none`",
               timings.get("BuildKit docker build") or ctx.no_docker_timing(), Target("ratio_max", 0.5), notes=common),
        Result("build-cold-classic", label, whole, "`DOCKER_BUILDKIT=0 docker build`",
               timings.get("classic docker build") or ctx.no_docker_timing(), notes=common),
    ]


# --- cached rebuild -------------------------------------------------------------------------------

def _api_build(eng: Any, opts: Any) -> list[Any]:
    return list(eng.build(opts))


@benchmark("build-cached")
def build_cached(ctx: Context) -> list[Result]:
    """Fully cached rebuild of the web Dockerfile: Engine.build in-process, `layerlab build` vs `docker build`."""
    from engine.builder import BuildFailed, BuildOptions, Built, CacheHit

    eng = _engine(ctx, "cached")
    try:
        root = _web_context(ctx, "web-cached")
        opts = BuildOptions(context=str(root), tags=(TAG,))
        first = _api_build(eng, opts)
        failed = [e for e in first if isinstance(e, BuildFailed)]
        if failed:
            raise RuntimeError(f"Engine.build failed: {failed[0].message}")
        image = next(e.image_id for e in first if isinstance(e, Built))
        last: list[list[Any]] = []

        def api() -> None:
            last.append(_api_build(eng, opts))

        def api_check() -> None:
            events = last.pop()
            hits = sum(isinstance(e, CacheHit) for e in events)
            built = [e.image_id for e in events if isinstance(e, Built)]
            if hits != 5 or built != [image]:
                raise RuntimeError(f"Engine.build rebuild: {hits} cache hits, built {built}, expected 5 and {image}")

        # in-process first, alone, no daemon beside it; more runs, for a p90
        api_reps = 50 if not ctx.quick else 20
        api_t = measure_interleaved({"Engine.build (in-process)": Side(api, None, api_check)},
                                    reps=api_reps)["Engine.build (in-process)"]

        env = ctx.env(eng.home)
        builds = {"layerlab build": _Build([ctx.layerlab_bin, "build", "-t", TAG, str(root)], env,
                                           lambda p: _check_classic("layerlab build", p, WEB_CACHED))}
        notes: list[str] = []
        with ctx.dockerd() as daemon:
            if daemon is not None:
                _docker_base(daemon)
                builds["classic docker build"] = _Build(
                    _docker_argv(daemon, "-t", TAG, str(root)), _classic_env(daemon),
                    lambda p: _check_classic("classic docker build", p, WEB_CACHED))
                builds["BuildKit docker build"] = _Build(
                    _docker_argv(daemon, *BUILDKIT_ARGS, "-t", BUILDKIT_TAG, str(root)), _buildkit_env(daemon),
                    lambda p: _check_buildkit(p, {"RUN echo hello": "CACHED", "COPY index.html": "CACHED"}))
                # untimed: the first (cold) docker builds, then the histories compared
                _run(builds["classic docker build"].argv, builds["classic docker build"].env)
                _run(builds["BuildKit docker build"].argv, builds["BuildKit docker build"].env)
                _histories_agree(eng, TAG, daemon, TAG)
                notes.append("docker " + daemon.run("version", "--format", "{{.Server.Version}}").stdout.strip())
            timings = measure_interleaved({name: b.side() for name, b in builds.items()}, reps=ctx.sizes.reps_fast)
    finally:
        eng.close()
    whole = timings["layerlab build"]
    classic = timings.get("classic docker build") or ctx.no_docker_timing()
    common = ("the web Dockerfile built once (untimed), then rebuilt: every step from the cache (outputs checked: "
              "5 × `Using cache`; BuildKit's RUN and COPY vertices CACHED)", *notes)
    return [
        Result("build-cached", "fully cached rebuild, web Dockerfile (whole process)", whole,
               "`DOCKER_BUILDKIT=0 docker build`", classic, Target("ratio_max", 1.0), notes=common),
        Result("build-cached-buildkit", "fully cached rebuild, web Dockerfile (whole process)", whole,
               "`DOCKER_BUILDKIT=1 docker build --network none`",
               timings.get("BuildKit docker build") or ctx.no_docker_timing(),
               notes=(*common, f"BuildKit tags {BUILDKIT_TAG} so that the two docker builders do not move one tag "
                               "between their images on every rebuild")),
        Result("build-cached-api", "fully cached rebuild, `Engine.build` (in-process, warm)", api_t,
               "`DOCKER_BUILDKIT=0 docker build` (whole process, row above)", classic, Target("time_max", 0.015),
               show_p90=True,
               notes=(*common, f"{len(api_t.samples)} runs: median {format_seconds(api_t.median)}, p90 "
                               f"{format_seconds(api_t.p90)}, min {format_seconds(min(api_t.samples))}, max "
                               f"{format_seconds(max(api_t.samples))}",
                      "list(engine.build(BuildOptions(context=..., tags=('static_web',)))) in the benchmark's "
                      "process, measured alone before the dockerd starts; the reference is the whole-process time "
                      "of the row above, for context only")),
    ]


# --- a large context -------------------------------------------------------------------------------

def _big_context(ctx: Context) -> tuple[Path, int, int]:
    """The context tree: CONTEXT_DIRS × files under src/, IGNORED_FILES bigger ones under big/ (ignored)."""
    scale = 10 if ctx.quick else 1
    dirs, per_dir, ignored = CONTEXT_DIRS, CONTEXT_FILES_PER_DIR // scale, IGNORED_FILES // scale
    root = ctx.path("big-context")
    rng = random.Random(42)
    for d in range(dirs):
        sub = root / "src" / f"d{d:02d}"
        sub.mkdir(parents=True)
        for i in range(per_dir):
            (sub / f"f{i:04d}.txt").write_bytes(rng.randbytes(int(rng.lognormvariate(7.0, 1.0)) % 65_536))
    big = root / "big"
    big.mkdir()
    for i in range(ignored):
        (big / f"blob{i:03d}.bin").write_bytes(rng.randbytes(IGNORED_FILE_BYTES))
    (root / ".dockerignore").write_text("big\n")
    (root / "Dockerfile").write_text(BIG_DOCKERFILE)
    return root, dirs * per_dir, ignored


@benchmark("build-context")
def build_context(ctx: Context) -> list[Result]:
    """Cached rebuild with a 10,000-file context (COPY of 1,000 files): `layerlab build` vs classic `docker build`."""
    root, files, ignored = ctx.shared("build-context", lambda: _big_context(ctx))
    per_dir = files // CONTEXT_DIRS
    expected_cold, expected_cached = ["new", "new"], ["new", "cache"]
    eng = _engine(ctx, "context")
    notes: list[str] = []
    try:
        env = ctx.env(eng.home)
        argv = [ctx.layerlab_bin, "build", "-t", "bigctx", str(root)]
        first = _run(argv, env)
        _check_classic("layerlab build", first, expected_cold)
        layers = len(eng.inspect_image("bigctx")["RootFS"]["Layers"])
        builds = {"layerlab build": _Build(argv, env, lambda p: _check_classic("layerlab build", p, expected_cached))}
        with ctx.dockerd() as daemon:
            if daemon is not None:
                _docker_base(daemon)
                docker = _docker_argv(daemon, "-t", "bigctx", str(root))
                cold = _run(docker, _classic_env(daemon))
                _check_classic("classic docker build", cold, expected_cold)
                _histories_agree(eng, "bigctx", daemon, "bigctx")
                ours, theirs = _context_line(first.stdout), _context_line(cold.stdout)
                notes.append(f"context sent: LayerLab says {ours.rsplit(' ', 1)[-1]!r}, docker "
                             f"{theirs.rsplit(' ', 1)[-1]!r}")
                if ours != theirs:
                    log(f"  WARNING: context size lines differ: {ours!r} vs {theirs!r}")
                builds["classic docker build"] = _Build(
                    docker, _classic_env(daemon), lambda p: _check_classic("classic docker build", p, expected_cached))
            reps = max(10, ctx.sizes.reps) if not ctx.quick else ctx.sizes.reps
            timings = measure_interleaved({name: b.side() for name, b in builds.items()}, reps=reps)
    finally:
        eng.close()
    return [Result(
        "build-context", f"cached rebuild, {files:,}-file context, COPY of {per_dir:,} files (whole process)",
        timings["layerlab build"], "`DOCKER_BUILDKIT=0 docker build`",
        timings.get("classic docker build") or ctx.no_docker_timing(), Target("time_max", 0.5),
        notes=(f"context: {CONTEXT_DIRS} dirs × {per_dir:,} files (log-normal sizes, random.Random(42)) + "
               f"`.dockerignore`d big/ of {ignored} × {IGNORED_FILE_BYTES // 1000} kB; Dockerfile "
               f"{BIG_DOCKERFILE.strip()!r}; image of {layers} layers",
               "built once per tool (untimed, histories compared: the same COPY dir:<hash> key), then rebuilt "
               "with both steps from the cache (outputs checked)", *notes),
    )]
