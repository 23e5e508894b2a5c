"""``python -m bench``: run the benchmarks, print one markdown table, write results JSON."""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from .common import (
    BENCHMARKS, REPO_ROOT, Benchmark, Context, Result, Sizes, Timing, format_seconds, log, render_table, temp_root,
)

#: Area modules, in run order; each registers its benchmarks on import.
AREAS = ("layers", "cli", "runtime", "build", "registry", "graph", "magics")
RESULTS_DIR = REPO_ROOT / "bench" / "results"


def load_benchmarks() -> list[Benchmark]:
    for area in AREAS:
        importlib.import_module(f"bench.{area}")
    return list(BENCHMARKS)


def select(benchmarks: list[Benchmark], only: Sequence[str]) -> list[Benchmark]:
    """The benchmarks named (or whose area is named) in ``only``; all when empty."""
    wanted = [w.strip() for item in only for w in item.split(",") if w.strip()]
    if not wanted:
        return benchmarks
    known = {b.name for b in benchmarks} | {b.area for b in benchmarks}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
    return [b for b in benchmarks if b.name in wanted or b.area in wanted]


def _first_line(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


def machine_info() -> dict[str, object]:
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(), "python": sys.version.split()[0],
        "tar": _first_line(["tar", "--version"]), "sha256sum": _first_line(["sha256sum", "--version"]),
        "dockerd": _first_line(["dockerd", "--version"]) if shutil.which("dockerd") else None,
        "net_isolated": os.environ.get("LAYERLAB_NET_ISOLATED"),
    }


def _failed(b: Benchmark, error: BaseException) -> Result:
    return Result(b.name, f"{b.name} (failed)", Timing.na(f"error: {type(error).__name__}: {error}"[:120]), "—",
                  Timing.na("n/a"))


def _warn_if_busy(load: tuple[float, float, float], when: str) -> None:
    """Other work on the machine inflates every time here; say so rather than hide it."""
    cpus = os.cpu_count() or 1
    if load[0] > 0.5 * cpus:
        log(f"WARNING: load average {load[0]:.2f} on {cpus} CPUs {when}: other processes compete for the CPUs, "
            "absolute times are inflated (ratios of interleaved runs suffer less)")


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: dockerd stopped, temp dir removed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this benchmark or area (repeat, or separate with commas)")
    parser.add_argument("--quick", action="store_true", help="small sizes and few repetitions (smoke test)")
    parser.add_argument("--no-docker", action="store_true", help="do not start a private dockerd")
    parser.add_argument("--reps", type=int, metavar="N", help="override every repetition count")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "latest.json", metavar="PATH",
                        help="where to write the results (default: bench/results/latest.json)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)

    benchmarks = load_benchmarks()
    if args.list:
        for b in benchmarks:
            print(f"{b.name:16} [{b.area}] {b.doc}")
        return 0
    selected = select(benchmarks, args.only)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.reps:
        sizes = replace(sizes, reps=args.reps, reps_big=args.reps, reps_fast=args.reps)

    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()
    results: list[Result] = []
    failures = 0
    info = machine_info()
    log(f"machine: {info['cpus']} CPUs ({info['cpu']}), {info['platform']}, Python {info['python']}")
    load_before = os.getloadavg()
    _warn_if_busy(load_before, "before the run")
    with temp_root() as tmp:
        previous_home = os.environ.get("LAYERLAB_HOME")
        os.environ["LAYERLAB_HOME"] = str(tmp / "default-home")  # nothing in-process may reach the real store
        try:
            ctx = Context(sizes=sizes, tmp=tmp, quick=args.quick, docker=not args.no_docker)
            for b in selected:
                log(f"{b.name}: {b.doc}")
                t0 = time.perf_counter()
                try:
                    results.extend(b.fn(ctx))
                except Exception as error:  # noqa: BLE001 - one broken benchmark must not hide the others
                    failures += 1
                    traceback.print_exc(file=sys.stderr)
                    results.append(_failed(b, error))
                log(f"{b.name}: {time.perf_counter() - t0:.1f} s")
        finally:
            if previous_home is None:
                os.environ.pop("LAYERLAB_HOME", None)
            else:
                os.environ["LAYERLAB_HOME"] = previous_home
    duration = time.perf_counter() - started
    load_after = os.getloadavg()
    _warn_if_busy(load_after, "at the end of the run")
    info["loadavg_before"] = [round(x, 2) for x in load_before]
    info["loadavg_after"] = [round(x, 2) for x in load_after]

    sys.stdout.write(render_table(results))
    sys.stdout.flush()
    report = {
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick, "duration_s": round(duration, 2), "machine": info,
        "sizes": sizes.__dict__, "ratio": "LayerLab median time / reference median time (lower is better)",
        "results": [r.to_json() for r in results],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    log(f"ratio = LayerLab time / reference time (lower is better); medians of {sizes.reps} runs "
        f"({sizes.reps_big} for docker import, {sizes.reps_fast} for sub-second commands) after a warm-up")
    log(f"whole run: {format_seconds(duration)}; results in {args.json}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
