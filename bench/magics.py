"""Notebook magic benchmarks: what a magic costs on top of the engine call it wraps.

``magic-images``: ``%dimages`` through ``InteractiveShell.run_line_magic`` *and* the display a
notebook then asks for (``display_formatter.format``: Docker's text and the HTML table) against the
bare engine call with Docker's formatting (``Engine.images`` + the CLI's ``images`` verb on
pre-parsed arguments, into a string), on a store of 20 images.

``magic-run``: ``%drun --rm busybox true`` against ``Engine.run(RunOptions("busybox", ("true",),
auto_remove=True))``.

Both run in one warm process, interleaved; the LayerLab column is the median of the per-round
differences (magic − bare call), the reference column the bare call itself. Target: under 10 ms.
"""
from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable
from typing import Any

from .common import Context, Result, Target, Timing, benchmark, format_seconds, log

IMAGES = 20


def _shell(home: Any) -> Any:
    """The process's IPython shell with the extension loaded over ``home``."""
    from IPython.core.interactiveshell import InteractiveShell

    import kernel_ext

    shell = InteractiveShell.instance()
    kernel_ext.load_ipython_extension(shell)
    shell.run_line_magic("config", f"LayerLab.home = {str(home)!r}")
    return shell


def _difference(magic: Callable[[], Any], bare: Callable[[], Any], reps: int) -> tuple[Timing, Timing]:
    """``reps`` rounds of both calls (order alternating); the per-round differences magic − bare, and bare."""
    diffs: list[float] = []
    bares: list[float] = []
    for i in range(reps):
        took: dict[str, float] = {}
        for name, fn in (("magic", magic), ("bare", bare)) if i % 2 == 0 else (("bare", bare), ("magic", magic)):
            start = time.perf_counter()
            fn()
            took[name] = time.perf_counter() - start
        diffs.append(took["magic"] - took["bare"])
        bares.append(took["bare"])
    diff, reference = Timing(tuple(diffs)), Timing(tuple(bares))
    log(f"  overhead: median {format_seconds(diff.median)} over {reps} rounds (bare call: median "
        f"{format_seconds(reference.median)})")
    return diff, reference


@benchmark("magic-images")
def magic_images(ctx: Context) -> list[Result]:
    """`%dimages` (magic + display) vs Engine.images + Docker's formatting, in-process."""
    from engine.cli import Streams, VERBS
    from engine.cli_parser import parse_args
    from engine.testing import child_image

    shell = _shell(ctx.new_home("magics-images"))
    eng = shell.user_ns["layerlab_engine"]
    eng.bootstrap()
    base = eng.image_id("busybox")
    for i in range(IMAGES - 2):
        eng.tag(child_image(eng.store, base, f"RUN touch /f{i}", files={f"f{i}": b"x"}), f"bench/img{i}:latest")
    args = parse_args(["images"])

    def bare() -> None:
        VERBS["images"](eng, args, Streams(stdout=io.StringIO(), stderr=io.StringIO()))

    def magic() -> None:
        result = shell.run_line_magic("dimages", "")
        shell.display_formatter.format(result)
        if result.exit_code != 0 or len(result.rows) != IMAGES:
            raise RuntimeError(f"%dimages gave {result.exit_code} with {len(result.rows)} rows")

    reps = max(20, ctx.sizes.reps_fast)
    with contextlib.redirect_stdout(io.StringIO()):
        magic(), bare()  # warm: imports, parser, caches
        diff, reference = _difference(magic, bare, reps)
    return [Result("magic-images", f"`%dimages` + display, {IMAGES} images: overhead over the bare call (in-process)",
                   diff, "`Engine.images` + the `images` verb's formatting", reference, Target("time_max", 0.010),
                   notes=(f"median of {reps} interleaved rounds of (magic − bare call)",))]


@benchmark("magic-run")
def magic_run(ctx: Context) -> list[Result]:
    """`%drun --rm busybox true` vs Engine.run(busybox true, auto_remove), in-process."""
    from engine.runtime.manager import RunOptions

    shell = _shell(ctx.new_home("magics-run"))
    eng = shell.user_ns["layerlab_engine"]
    eng.bootstrap()
    opts = RunOptions("busybox", ("true",), auto_remove=True)

    def bare() -> None:
        _, code = eng.run(opts, output=lambda stream, data: None)
        if code != 0:
            raise RuntimeError(f"busybox true exited with {code}")

    def magic() -> None:
        result = shell.run_line_magic("drun", "--rm busybox true")
        if result.exit_code != 0:
            raise RuntimeError(f"%drun exited with {result.exit_code}: {result.error}")

    reps = max(20, ctx.sizes.reps_fast)
    with contextlib.redirect_stdout(io.StringIO()):
        for _ in range(2):  # the first runs pay the overlayfs probe and start the fork server
            bare(), magic()
        diff, reference = _difference(magic, bare, reps)
    if eng.containers(all=True):
        raise RuntimeError("%drun --rm left containers behind")
    return [Result("magic-run", "`%drun --rm busybox true`: overhead over `Engine.run` (in-process, warm)", diff,
                   "`Engine.run(busybox true, auto_remove)`", reference, Target("time_max", 0.010),
                   notes=(f"median of {reps} interleaved rounds of (magic − bare call)",))]
