"""Container benchmarks (issue "Containers"): run, start on a deep image, commit.

``run``: ``layerlab run --rm busybox echo hi`` as a whole process against ``docker run --rm
--network none busybox echo hi`` on the private dockerd (its busybox made by ``load_busybox``:
``docker import`` of the host's static busybox), timed interleaved; before that, the same container
through ``Engine.run`` in a warm process (the overlayfs probe, and the shim's fork server, which a
process starts with its second container, are paid by untimed runs).

``run-deep``: ``Engine.run(... true)`` on an image of busybox + 50 one-file layers (made with
``engine.testing.child_image``) against busybox alone. Every layer's snapshot is extracted in an
untimed first run, so what is timed is what a container start costs once the snapshots exist: the
overlay mount of 52 lower directories (the container's init layer + 51 layers), building the init
layer and the user lookup through 51 layers.

``commit``: one stopped container per tool that wrote 10,000 small files into ``/d`` with the same
shell loop (busybox ``sh``; the container is the same in both engines, the images differ only in
how their busybox layer was made). Every repetition commits that container again and removes the
new image afterwards (untimed), so both tools write the whole layer every time.
"""
from __future__ import annotations

import time
from typing import Any

from .common import (
    Context, Result, Side, Target, Timing, benchmark, command, format_seconds, log, measure_interleaved,
    run_command, settle,
)

ECHO = ("echo", "hi")
DEEP_LAYERS = 50
COMMIT_FILES = 10_000
#: writes COMMIT_FILES files /d/f0 … /d/f9999 (content "i\n"); only sh builtins and `busybox mkdir`, so it runs
#: on the docker busybox (applets sh, echo, cat, ls, true, false, env, httpd) and on LayerLab's (all applets)
COMMIT_SCRIPT = (f"busybox mkdir /d && cd /d && i=0; while [ $i -lt {COMMIT_FILES} ]; "
                 "do echo $i > f$i; i=$((i+1)); done")
CONTAINER = "bench-commit"


def _discard(stream: str, data: bytes) -> None:
    pass


def _engine(ctx: Context, stem: str) -> Any:
    """An Engine over a fresh temp home holding busybox:latest (``layerlab bootstrap``)."""
    from engine import Engine

    eng = Engine(ctx.new_home(stem))
    eng.bootstrap()
    return eng


def _rootfs_mode(eng: Any) -> str:
    from engine.runtime.rootfs import overlay_supported

    return "overlayfs" if overlay_supported(str(eng.home / "containers")) else "copy (no overlayfs here)"


def _api_run(eng: Any, opts: Any, expect: bytes | None = None) -> None:
    out: list[bytes] = []
    _, code = eng.run(opts, output=lambda stream, data: out.append(data))
    if code != 0:
        raise RuntimeError(f"{opts.image} {' '.join(opts.command)} exited with {code}")
    if expect is not None and b"".join(out) != expect:
        raise RuntimeError(f"{opts.image} {' '.join(opts.command)} printed {b''.join(out)!r}, expected {expect!r}")


def _p90_note(t: Timing) -> str:
    return (f"{len(t.samples)} runs: median {format_seconds(t.median)}, p90 {format_seconds(t.p90)}, "
            f"min {format_seconds(min(t.samples))}, max {format_seconds(max(t.samples))}")


# --- run --------------------------------------------------------------------------------------------

@benchmark("run")
def run(ctx: Context) -> list[Result]:
    """`layerlab run --rm busybox echo hi` (whole process, and Engine.run in-process) vs `docker run --rm`."""
    from engine.runtime.manager import RunOptions

    s = ctx.sizes
    eng = _engine(ctx, "run")
    try:
        env = ctx.env(eng.home)
        cli = [ctx.layerlab_bin, "run", "--rm", "busybox", *ECHO]
        printed = run_command(cli, env=env, capture=True)
        if printed != "hi\n":
            raise RuntimeError(f"layerlab run printed {printed!r}")
        opts = RunOptions("busybox", ECHO, auto_remove=True)
        started = time.perf_counter()
        _api_run(eng, opts, b"hi\n")  # the process's first container: overlayfs probe, shim forked directly
        first = time.perf_counter() - started
        mode = _rootfs_mode(eng)

        # Row 2 first, on its own: a warm process (the run above paid the probe, the warm-up run the fork server),
        # no daemon beside it; more runs than elsewhere, for a p90.
        api_reps = max(50, s.reps_fast) if not ctx.quick else 20
        api = measure_interleaved({"Engine.run (in-process)": Side(lambda: eng.run(opts, output=_discard))},
                                  reps=api_reps)["Engine.run (in-process)"]

        reps = max(10, s.reps_fast)
        sides = {"layerlab run --rm (whole process)": Side(command(cli, env=env))}
        docker_cmd = "`docker run --rm --network none busybox echo hi`"
        with ctx.dockerd() as daemon:
            if daemon is not None:
                from tests.fixtures.dockerd import DOCKER_CLIENT

                daemon.load_busybox()
                docker = [DOCKER_CLIENT, "-H", daemon.host, "run", "--rm", "--network", "none", "busybox", *ECHO]
                printed = run_command(docker, env=daemon.env, capture=True)
                if printed != "hi\n":
                    raise RuntimeError(f"docker run printed {printed!r}")
                sides["docker run --rm"] = Side(command(docker, env=daemon.env))
            timings = measure_interleaved(sides, reps=reps)
            if daemon is not None and daemon.run("ps", "-aq").stdout.strip():
                raise RuntimeError("docker run --rm left containers behind")
        left = eng.containers(all=True)
        if left:
            raise RuntimeError(f"layerlab run --rm left {len(left)} container(s) behind")
    finally:
        eng.close()
    whole = timings["layerlab run --rm (whole process)"]
    reference = timings.get("docker run --rm") or ctx.no_docker_timing()
    notes = (f"LayerLab rootfs: {mode}; LayerLab's default network is a private namespace with only lo, "
             "as docker's --network none (the private dockerd has no bridge)",
             "docker: /usr/bin/docker client → dockerd → containerd → runc; busybox:latest from docker import "
             "of the host's static busybox (tests/fixtures/dockerd.py load_busybox)")
    return [
        Result("run", "`run --rm busybox echo hi` (whole process)", whole, docker_cmd, reference,
               Target("ratio_max", 0.33),
               notes=(*notes, f"median of {len(whole.samples)} interleaved runs after one warm-up; "
                              "LayerLab subprocesses may cache bytecode (.pyc)")),
        Result("run-api", "`Engine.run(busybox echo hi, auto_remove)` (in-process, warm)", api,
               f"{docker_cmd} (whole process, row above)", reference, Target("time_max", 0.025),
               notes=(*notes, _p90_note(api),
                      f"the process's first Engine.run (untimed: overlayfs probe; its shim is forked directly, "
                      f"the second one starts the fork server): "
                      f"{format_seconds(first)}",
                      "measured alone, before the dockerd starts; the reference is the whole-process docker "
                      "time of the row above (a notebook user's alternative), so the ratio is only indicative"),
               show_p90=True),
    ]


# --- container start on a deep image -------------------------------------------------------------------

@benchmark("run-deep")
def run_deep(ctx: Context) -> list[Result]:
    """Container start (Engine.run ... true) on busybox + 50 layers vs busybox alone, snapshots cached."""
    from engine.runtime.manager import RunOptions
    from engine.runtime.snapshots import snapshot_names
    from engine.testing import child_image

    eng = _engine(ctx, "deep")
    try:
        image = eng.image_id("busybox")
        for i in range(DEEP_LAYERS):
            image = child_image(eng.store, image, f"/bin/sh -c echo {i} > /layer{i:02d}.txt",
                                files={f"layer{i:02d}.txt": f"{i}\n".encode()})
        eng.tag(image, "bench/deep:latest")
        layers = len(eng.inspect_image("bench/deep")["RootFS"]["Layers"])
        if layers != DEEP_LAYERS + 1:
            raise RuntimeError(f"bench/deep has {layers} layers, expected {DEEP_LAYERS + 1}")

        # untimed first runs: extract every layer's snapshot, start the fork server, check the layers show
        shallow = RunOptions("busybox", ("true",), auto_remove=True)
        deep = RunOptions("bench/deep", ("true",), auto_remove=True)
        _api_run(eng, RunOptions("bench/deep", ("cat", "/layer00.txt", f"/layer{DEEP_LAYERS - 1:02d}.txt"),
                                 auto_remove=True), f"0\n{DEEP_LAYERS - 1}\n".encode())
        _api_run(eng, shallow)
        snapshots = len(snapshot_names(eng.store))
        if snapshots != layers:
            raise RuntimeError(f"{snapshots} snapshots after the first runs, expected {layers}")
        mode = _rootfs_mode(eng)

        reps = max(50, ctx.sizes.reps_fast) if not ctx.quick else 20
        timings = measure_interleaved({
            "busybox (1 layer)": Side(lambda: eng.run(shallow, output=_discard)),
            f"bench/deep ({layers} layers)": Side(lambda: eng.run(deep, output=_discard)),
        }, reps=reps)
        if len(snapshot_names(eng.store)) != snapshots:
            raise RuntimeError("the timed runs extracted snapshots")
    finally:
        eng.close()
    deep_t, shallow_t = timings[f"bench/deep ({layers} layers)"], timings["busybox (1 layer)"]
    return [Result(
        "run-deep", f"`Engine.run(... true)`, {layers}-layer image (in-process, warm)", deep_t,
        "same, 1-layer image (busybox)", shallow_t, Target("ratio_max", 2.0), show_p90=True,
        notes=(f"busybox + {DEEP_LAYERS} layers of one small file each (engine.testing.child_image); "
               f"LayerLab rootfs: {mode}",
               f"all {snapshots} snapshots extracted before timing (first run untimed) and none during it",
               f"{layers} layers: {_p90_note(deep_t)}", f"1 layer: {_p90_note(shallow_t)}"),
    )]


# --- commit ---------------------------------------------------------------------------------------------

@benchmark("commit")
def commit(ctx: Context) -> list[Result]:
    """Commit of a stopped container that wrote 10,000 files: Engine.commit, layerlab commit vs docker commit."""
    from engine.runtime.manager import RunOptions

    reps = ctx.sizes.reps
    eng = _engine(ctx, "commit")
    ids: dict[str, list[str]] = {"api": [], "cli": [], "docker": []}
    new_layers: dict[str, list[str]] = {"api": [], "cli": [], "docker": []}  # DiffID of each commit's layer
    notes: list[str] = []
    try:
        _api_run(eng, RunOptions("busybox", ("sh", "-c", COMMIT_SCRIPT), name=CONTAINER))
        changes = len(eng.diff(CONTAINER))
        if changes != COMMIT_FILES + 1:
            raise RuntimeError(f"layerlab diff lists {changes} changes, expected {COMMIT_FILES + 1}")
        env = ctx.env(eng.home)
        base_layers = len(eng.inspect_image("busybox")["RootFS"]["Layers"])

        def api_commit() -> None:
            ids["api"].append(eng.commit(CONTAINER))

        def cli_commit() -> None:
            ids["cli"].append(run_command([ctx.layerlab_bin, "commit", CONTAINER], env=env, capture=True).strip())

        def layerlab_rmi(side: str) -> Any:
            def rmi() -> None:
                new_layers[side].append(eng.inspect_image(ids[side][-1])["RootFS"]["Layers"][-1])
                eng.remove_image(ids[side][-1])
            return rmi

        sides = {
            "Engine.commit (in-process)": Side(api_commit, settle, layerlab_rmi("api")),
            "layerlab commit (whole process)": Side(cli_commit, settle, layerlab_rmi("cli")),
        }
        with ctx.dockerd() as daemon:
            if daemon is not None:
                from tests.fixtures.dockerd import DOCKER_CLIENT

                daemon.load_busybox()
                daemon.run("run", "--name", CONTAINER, "--network", "none", "busybox", "sh", "-c", COMMIT_SCRIPT,
                           timeout=600)
                state = daemon.run("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", CONTAINER)
                if state.stdout.split() != ["exited", "0"]:
                    raise RuntimeError(f"docker container {CONTAINER}: {state.stdout.strip()}")
                docker_changes = len(daemon.run("diff", CONTAINER).stdout.splitlines())
                if docker_changes != changes:
                    raise RuntimeError(f"docker diff lists {docker_changes} changes, layerlab diff {changes}")
                driver = daemon.run("info", "--format", "{{.Driver}} {{json .DriverStatus}}").stdout.strip()
                notes.append(f"docker storage driver: {driver}")
                docker = [DOCKER_CLIENT, "-H", daemon.host, "commit", CONTAINER]

                def docker_commit() -> None:
                    ids["docker"].append(run_command(docker, env=daemon.env, capture=True).strip())

                def docker_rmi() -> None:
                    layer = daemon.run("image", "inspect", "--format", "{{index .RootFS.Layers 1}}", ids["docker"][-1])
                    new_layers["docker"].append(layer.stdout.strip())
                    daemon.run("rmi", ids["docker"][-1])

                sides["docker commit"] = Side(docker_commit, settle, docker_rmi)
            timings = measure_interleaved(sides, reps=reps)
            if daemon is not None:
                # one more, kept a moment, to check what docker made (the timed ones are gone)
                docker_commit()
                layers = daemon.run("image", "inspect", "--format", "{{len .RootFS.Layers}}", ids["docker"][-1])
                notes.append(f"docker image: {layers.stdout.strip()} layers (busybox + the container's)")
                docker_rmi()
        # the same check on LayerLab's side
        api_commit()
        ll_layers = eng.inspect_image(ids["api"][-1])["RootFS"]["Layers"]
        if len(ll_layers) != base_layers + 1:
            raise RuntimeError(f"layerlab commit made {len(ll_layers)} layers, expected {base_layers + 1}")
        notes.append(f"LayerLab image: {len(ll_layers)} layers (busybox + the container's)")
        layerlab_rmi("api")()
    finally:
        eng.close()

    for side, made in ids.items():
        if made:
            notes.append(f"{side}: {len(set(made))} distinct image IDs and {len(set(new_layers[side]))} distinct "
                         f"new-layer DiffIDs in {len(made)} commits")
    log("  " + "; ".join(notes[-3:]))
    reference = timings.get("docker commit") or ctx.no_docker_timing()
    common = (f"one stopped container per tool with {COMMIT_FILES:,} files written by `sh -c '{COMMIT_SCRIPT}'` "
              f"({changes:,} changes in `diff`); committed again every repetition, the new image removed "
              "afterwards (untimed), `sync` before each commit",
              "docker commit stores the layer as a tar and unpacks it into overlay2; LayerLab stores the tar "
              "(fsynced) and extracts on first use",
              *notes)
    label = f"commit of a container with {COMMIT_FILES:,} new files"
    return [
        Result("commit-api", f"{label} (in-process)", timings["Engine.commit (in-process)"], "`docker commit NAME`",
               reference, Target("ratio_max", 1.0), notes=common),
        Result("commit", f"{label} (whole process)", timings["layerlab commit (whole process)"],
               "`docker commit NAME`", reference, Target("ratio_max", 1.0), notes=common),
    ]
