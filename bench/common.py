"""Shared pieces of the benchmarks: results, targets, timing, the run context, the table.

A benchmark is a function ``fn(ctx) -> list[Result]`` registered with :func:`benchmark` in an
area module (``bench/layers.py``, ``bench/cli.py`` …); ``bench/__main__.py`` imports the
area modules listed in ``AREAS`` and runs what was registered, in order.

Timing rules (the project's: "speed is measured, not asserted"):

* every measurement does one warm-up run, then ``reps`` timed runs, and reports the median;
* in-process timings wrap only the call being measured (``time.perf_counter``);
* whole-process timings wrap ``subprocess.run`` of the command, output to ``/dev/null``;
* per-repetition setup and teardown (fresh stores, empty directories, ``sync``) are not timed;
* LayerLab and its reference are measured in the same run, on the same data, on the same machine.
"""
from __future__ import annotations

import contextlib
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # tests.fixtures.dockerd is imported from the source tree
    sys.path.insert(0, str(REPO_ROOT))

MB = 1_000_000  # decimal megabytes, as throughput is usually quoted


# --- results ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Timing:
    """The samples of one side of a comparison (seconds), or why there are none."""

    samples: tuple[float, ...] = ()
    warmup: float | None = None
    note: str = ""              # "n/a (no dockerd)", "error: …"; shown instead of a number

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    def percentile(self, p: float) -> float | None:
        """The nearest-rank ``p``-th percentile of the samples (the p90 of 20 samples is the 18th)."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[max(math.ceil(p / 100 * len(ordered)), 1) - 1]

    @property
    def p90(self) -> float | None:
        return self.percentile(90)

    @classmethod
    def na(cls, reason: str) -> Timing:
        return cls(note=reason)


@dataclass(frozen=True)
class Target:
    """What a row must achieve: a time ratio bound, an absolute time bound, or just a report."""

    kind: Literal["ratio_max", "time_max", "report"]
    value: float | None = None

    def describe(self) -> str:
        if self.kind == "ratio_max":
            value = self.value or 0.0
            return f"ratio ≤ {value:.1f}" if round(value, 1) == value else f"ratio ≤ {value:.2f}"
        if self.kind == "time_max":
            return f"< {format_seconds(self.value)}"
        return "report"

    def met(self, layerlab: float | None, ratio: float | None) -> bool | None:
        """True/False when the target applies and could be checked, None otherwise."""
        if self.kind == "ratio_max":
            return None if ratio is None else ratio <= (self.value or 0)
        if self.kind == "time_max":
            return None if layerlab is None else layerlab < (self.value or 0)
        return None


REPORT = Target("report")


@dataclass(frozen=True)
class Result:
    """One row of the table: LayerLab against one reference tool."""

    key: str                    # stable id, e.g. "layer-create"; also the JSON key
    name: str                   # row label
    layerlab: Timing
    reference_tool: str
    reference: Timing
    target: Target = REPORT
    bytes: int | None = None    # data processed per run, for a throughput figure
    notes: tuple[str, ...] = () # what a reader needs to interpret the row
    show_p90: bool = False      # the LayerLab cell also shows the 90th percentile

    @property
    def ratio(self) -> float | None:
        """LayerLab time / reference time (lower is better)."""
        a, b = self.layerlab.median, self.reference.median
        return a / b if a is not None and b else None

    @property
    def met(self) -> bool | None:
        return self.target.met(self.layerlab.median, self.ratio)

    def to_json(self) -> dict[str, Any]:
        def side(t: Timing) -> dict[str, Any]:
            return {"median_s": t.median, "p90_s": t.p90, "samples_s": list(t.samples), "warmup_s": t.warmup,
                    "note": t.note or None,
                    "mb_per_s": (self.bytes / MB / t.median) if self.bytes and t.median else None}

        return {"key": self.key, "name": self.name, "layerlab": side(self.layerlab),
                "reference_tool": self.reference_tool, "reference": side(self.reference),
                "ratio": self.ratio, "target": {**asdict(self.target), "text": self.target.describe()},
                "met": self.met, "bytes": self.bytes, "notes": list(self.notes)}


# --- registry ---------------------------------------------------------------------------------

BenchmarkFn = Callable[["Context"], list[Result]]


@dataclass(frozen=True)
class Benchmark:
    name: str        # what --only selects (the area's module name selects all of its benchmarks)
    area: str        # module name: "layers", "cli" …
    fn: BenchmarkFn
    doc: str


BENCHMARKS: list[Benchmark] = []


def benchmark(name: str) -> Callable[[BenchmarkFn], BenchmarkFn]:
    """Register ``fn`` as benchmark ``name`` (run in registration order)."""
    def register(fn: BenchmarkFn) -> BenchmarkFn:
        if any(b.name == name for b in BENCHMARKS):
            raise ValueError(f"benchmark {name!r} registered twice")
        area = fn.__module__.rpartition(".")[2]
        BENCHMARKS.append(Benchmark(name, area, fn, (fn.__doc__ or "").strip().splitlines()[0]
                                    if fn.__doc__ else ""))
        return fn
    return register


# --- sizes and the run context -------------------------------------------------------------------

@dataclass(frozen=True)
class Sizes:
    """Workload sizes and repetition counts; ``--quick`` uses the small ones."""

    tree_dirs: int = 100
    tree_files_per_dir: int = 100
    tree_bytes: int = 200 * MB
    images: int = 200
    reps: int = 5            # ordinary measurements (>= 5)
    reps_big: int = 3        # measurements of many seconds each (docker import …)
    reps_fast: int = 20      # sub-second whole-process measurements (layerlab images …)

    @classmethod
    def quick(cls) -> Sizes:
        return cls(tree_dirs=10, tree_files_per_dir=20, tree_bytes=4 * MB, images=20,
                   reps=3, reps_big=2, reps_fast=5)


@dataclass
class Context:
    """What benchmarks share in one run: sizes, a temp dir, cached fixtures, the docker switch."""

    sizes: Sizes
    tmp: Path
    quick: bool = False
    docker: bool = True
    python: str = sys.executable
    docker_reason: str = ""   # why :meth:`dockerd` yielded None
    _cache: dict[str, Any] = field(default_factory=dict)
    _counter: int = 0

    @property
    def layerlab_bin(self) -> str:
        """The ``layerlab`` console script next to this interpreter (the venv's)."""
        candidate = Path(self.python).parent / "layerlab"
        return str(candidate) if candidate.exists() else (shutil.which("layerlab") or "layerlab")

    def path(self, stem: str) -> Path:
        """A fresh, not yet existing path under the run's temp dir."""
        self._counter += 1
        return self.tmp / f"{stem}-{self._counter}"

    def new_home(self, stem: str = "home") -> Path:
        """A fresh, empty ``LAYERLAB_HOME``."""
        home = self.path(stem)
        home.mkdir()
        return home

    def env(self, home: Path | None = None, *, bytecode_cache: bool = True, **extra: str) -> dict[str, str]:
        """Environment for LayerLab subprocesses: a temp ``LAYERLAB_HOME`` and ``HOME``.

        With ``bytecode_cache`` (the steady state of an installed engine) Python may write and reuse
        ``.pyc`` files, in a cache under the run's temp dir (``PYTHONPYCACHEPREFIX``) so that the
        source tree is not touched; the warm-up run fills it. Without it, ``PYTHONDONTWRITEBYTECODE=1``
        and the engine is compiled from source in every process (unless ``engine/__pycache__`` exists).
        """
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env["LAYERLAB_HOME"] = str(home or self.tmp / "default-home")
        env["HOME"] = str(self.tmp / "user-home")
        (self.tmp / "user-home").mkdir(exist_ok=True)
        if bytecode_cache:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(self.tmp / "pycache")
        else:
            env.pop("PYTHONPYCACHEPREFIX", None)
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update(extra)
        return env

    def shared(self, key: str, factory: Callable[[], Any]) -> Any:
        """A fixture built once per run (the 200 MB tree, its layer …)."""
        if key not in self._cache:
            self._cache[key] = factory()
        return self._cache[key]

    @contextlib.contextmanager
    def dockerd(self) -> Iterator[Any]:
        """A private dockerd for the duration of the block, or ``None`` (see :attr:`docker_reason`).

        Started per benchmark rather than per run, so no idle daemon sits beside other measurements.
        """
        reason = self._cache.get("dockerd-unavailable")
        if not self.docker:
            reason = "disabled (--no-docker)"
        if reason:
            self.docker_reason = reason
            yield None
            return
        from tests.fixtures.dockerd import Dockerd, DockerdUnavailable

        daemon = Dockerd()
        try:
            daemon.start()
        except (DockerdUnavailable, OSError, subprocess.SubprocessError) as e:
            daemon.stop()
            self._cache["dockerd-unavailable"] = self.docker_reason = str(e).strip().splitlines()[0]
            log(f"no dockerd: {e}")
            yield None
            return
        except BaseException:
            daemon.stop()
            raise
        try:
            yield daemon
        finally:
            daemon.stop()

    def no_docker_timing(self) -> Timing:
        why = "--no-docker" if not self.docker else "no dockerd"
        return Timing.na(f"n/a ({why})")


# --- timing --------------------------------------------------------------------------------------

def log(message: str) -> None:
    """Progress goes to stderr; stdout carries only the table."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Side:
    """One thing to time: ``fn``, with untimed ``setup``/``teardown`` around every run."""

    fn: Callable[[], Any]
    setup: Callable[[], Any] | None = None
    teardown: Callable[[], Any] | None = None


def _run_once(side: Side) -> float:
    if side.setup is not None:
        side.setup()
    try:
        start = time.perf_counter()
        side.fn()
        elapsed = time.perf_counter() - start
    except BaseException:
        if side.teardown is not None:
            with contextlib.suppress(Exception):  # the original error is the one to report
                side.teardown()
        raise
    if side.teardown is not None:
        side.teardown()
    return elapsed


def measure_interleaved(sides: dict[str, Side], *, reps: int, warmup: int = 1) -> dict[str, Timing]:
    """Time several sides round-robin: ``warmup`` rounds, then ``reps`` timed rounds.

    Interleaving (with the order rotated every round) spreads background load on a shared machine
    evenly over LayerLab and its reference instead of landing on whichever ran during it.
    """
    names = list(sides)
    samples: dict[str, list[float]] = {n: [] for n in names}
    first: dict[str, float] = {}
    for i in range(warmup + reps):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed = _run_once(sides[name])
            if i < warmup:
                first.setdefault(name, elapsed)
            else:
                samples[name].append(elapsed)
    timings = {n: Timing(tuple(samples[n]), first.get(n)) for n in names}
    for n, t in timings.items():
        log(f"  {n}: median {format_seconds(t.median)} over {reps} "
            f"(min {format_seconds(min(t.samples))}, max {format_seconds(max(t.samples))})")
    return timings


def measure(fn: Callable[[], Any], *, reps: int, warmup: int = 1,
            setup: Callable[[], Any] | None = None, teardown: Callable[[], Any] | None = None,
            label: str = "run") -> Timing:
    """Time ``fn()`` with ``perf_counter``: ``warmup`` runs, then ``reps`` timed runs.

    ``setup`` runs before and ``teardown`` after every run, outside the timed region.
    """
    return measure_interleaved({label: Side(fn, setup, teardown)}, reps=reps, warmup=warmup)[label]


def command(cmd: Sequence[str] | str, *, env: dict[str, str] | None = None) -> Callable[[], str]:
    """A function running ``cmd`` (see :func:`run_command`), for :class:`Side`."""
    return lambda: run_command(cmd, env=env)


class CommandFailed(RuntimeError):
    pass


def run_command(cmd: Sequence[str] | str, *, env: dict[str, str] | None = None,
                stdin: Any = subprocess.DEVNULL, capture: bool = False) -> str:
    """Run a command (a string runs under ``bash -o pipefail -c``); raise with its stderr on failure."""
    argv = ["bash", "-o", "pipefail", "-c", cmd] if isinstance(cmd, str) else list(cmd)
    proc = subprocess.run(argv, env=env, stdin=stdin, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise CommandFailed(f"{cmd!r} exited with {proc.returncode}: "
                            f"{proc.stderr.decode(errors='replace').strip()[-2000:]}")
    return proc.stdout.decode(errors="replace") if capture else ""


def measure_command(cmd: Sequence[str] | str, *, env: dict[str, str] | None = None, reps: int,
                    warmup: int = 1, setup: Callable[[], Any] | None = None,
                    teardown: Callable[[], Any] | None = None, label: str = "run") -> Timing:
    """Whole-process wall time of ``cmd`` (stdout to /dev/null), as :func:`measure` does it."""
    return measure(command(cmd, env=env), reps=reps, warmup=warmup, setup=setup, teardown=teardown, label=label)


def settle() -> None:
    """Flush dirty pages so one run's writeback does not land in the next run's time."""
    os.sync()


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# --- rendering -----------------------------------------------------------------------------------

COLUMNS = ("benchmark", "LayerLab", "reference tool", "reference", "ratio", "target", "met?")


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.01:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds * 1000:.2f} ms"


def _cell(t: Timing, nbytes: int | None, p90: bool = False) -> str:
    if t.median is None:
        return t.note or "n/a"
    text = format_seconds(t.median)
    if nbytes:
        text += f" ({nbytes / MB / t.median:,.0f} MB/s)"
    if p90:
        text += f" (p90 {format_seconds(t.p90)})"
    return text


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def result_cells(r: Result) -> list[str]:
    met = r.met
    return [r.name, _cell(r.layerlab, r.bytes, r.show_p90), r.reference_tool, _cell(r.reference, r.bytes),
            "n/a" if r.ratio is None else f"{r.ratio:.2f}×", r.target.describe(),
            "—" if r.target.kind == "report" else ("n/a" if met is None else ("yes" if met else "**NO**"))]


def render_table(results: Sequence[Result]) -> str:
    """The results as one markdown table (columns :data:`COLUMNS`), padded for reading raw."""
    rows = [list(COLUMNS)] + [[_escape(c) for c in result_cells(r)] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(rows[0], widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in rows[1:]]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def temp_root() -> Iterator[Path]:
    """The run's temp dir, removed at the end whatever happens."""
    root = Path(tempfile.mkdtemp(prefix="layerlab-bench-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
