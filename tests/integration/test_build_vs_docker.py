"""LayerLab's classic builder against the real one: the same builds on a private dockerd 20.10.

Both start from the same base (the host's busybox, ``docker import -c 'CMD ["sh"]'`` on one side and
``Engine.import_image`` of the same tar on the other) and go through the same sequence of builds.
After each build they must agree step by step:

* the ``Step N/M : …`` lines;
* what each step did: ``cache`` (Using cache), ``run`` (a container was shown) or ``new`` (a new
  image without a container: FROM, COPY, ADD); and failures, with Docker's message and exit code;
* the history ``created_by`` texts, exactly (COPY ``file:``/``dir:``/``multi:`` keys included);
* the files of the resulting image (``docker create`` + ``docker export`` against LayerLab's
  ``Engine.export`` of a created container): paths, types, modes, owners, link targets, contents.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine import Engine
from engine.builder import BuildFailed, BuildOptions, Output, render
from engine.runtime.manager import RunOptions
from tests.fixtures.dockerd import DOCKER_CLIENT, busybox_rootfs_tar

pytestmark = pytest.mark.integration

#: paths Docker's container init layer (or LayerLab's) adds to every container
_RUNTIME_NOISE = re.compile(r"^(\.dockerenv|dev(/.*)?|proc|sys|etc|etc/(hostname|hosts|mtab|resolv\.conf))$")


@dataclass(frozen=True)
class Result:
    steps: list[str]            # "Step N/M : …" lines
    actions: list[str]          # per step: cache / run / new / fail
    image: str | None           # short ID of the result (or the last good step)
    error: str | None
    code: int


def _parse(text: str, code: int, error: str | None) -> Result:
    steps: list[str] = []
    actions: list[str] = []
    image = None
    for line in text.splitlines():
        if re.match(r"^Step \d+/\d+ : ", line):
            steps.append(line)
            actions.append("new")
        elif line == " ---> Using cache":
            actions[-1] = "cache"
        elif line.startswith(" ---> Running in "):
            if actions[-1] != "cache":
                actions[-1] = "run"
        elif m := re.match(r"^ ---> ([0-9a-f]{12})$", line):
            image = m.group(1)
    if code != 0 and actions:
        actions[-1] = "fail"
    return Result(steps, actions, image, error, code)


class Pair:
    """The same builds on dockerd and on LayerLab."""

    def __init__(self, dockerd, home: Path) -> None:
        self.dockerd = dockerd
        # the same base on both sides, whatever other tests left tagged busybox:latest in dockerd
        dockerd.run("import", "-c", 'CMD ["sh"]', "-", "busybox:latest", input=busybox_rootfs_tar())
        self.engine = Engine(home)
        self.engine.import_image(io.BytesIO(busybox_rootfs_tar()), "busybox:latest", changes=('CMD ["sh"]',))

    def docker(self, context: Path, *args: str) -> Result:
        env = dict(self.dockerd.env, DOCKER_BUILDKIT="0")
        proc = subprocess.run([DOCKER_CLIENT, "-H", self.dockerd.host, "build", *args, str(context)],
                              capture_output=True, text=True, env=env, timeout=120)
        error = proc.stderr.strip().splitlines()[-1] if proc.returncode else None
        return _parse(proc.stdout, proc.returncode, error)

    def layerlab(self, context: Path, *args: str) -> Result:
        opts = _options(context, args)
        lines: list[str] = []
        error, code = None, 0
        for event in self.engine.build(opts):
            if isinstance(event, BuildFailed):
                error, code = event.message, event.exit_code
            elif not isinstance(event, Output):
                lines.append(render(event) or "")
        return _parse("\n".join(lines), code, error)

    def both(self, context: Path, *args: str, compare_files: bool = True) -> tuple[Result, Result]:
        theirs = self.docker(context, *args)
        ours = self.layerlab(context, *args)
        assert ours.steps == theirs.steps
        assert ours.actions == theirs.actions, f"\nours:   {ours.actions}\ntheirs: {theirs.actions}"
        assert ours.code == theirs.code
        assert ours.error == theirs.error
        if theirs.image and ours.image:
            assert self.history_ours(ours.image) == self.history_theirs(theirs.image)
            if compare_files:
                assert self.files_ours(ours.image) == self.files_theirs(theirs.image)
        return ours, theirs

    # history ------------------------------------------------------------------------------------
    def history_theirs(self, image: str) -> list[str]:
        out = self.dockerd.run("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
        return out.splitlines()

    def history_ours(self, image: str) -> list[str]:
        return [row.created_by for row in self.engine.history(image)]

    # files --------------------------------------------------------------------------------------
    def files_theirs(self, image: str) -> dict:
        cid = self.dockerd.run("create", image).stdout.strip()
        try:
            data = self.dockerd.run("export", cid, text=False).stdout
        finally:
            self.dockerd.run("rm", cid)
        tree = _tree(data)
        # `docker create` makes the mount points of the image's volumes; they are not in the image
        volumes = json.loads(self.dockerd.run("inspect", "--format", "{{json .Config.Volumes}}", image).stdout)
        for path in volumes or {}:
            tree.pop(path.strip("/"), None)
        return tree

    def files_ours(self, image: str) -> dict:
        c = self.engine.create_container(RunOptions(image=image, command=("true",)))
        try:
            out = io.BytesIO()
            self.engine.export(c.id, out)
        finally:
            self.engine.remove_container(c.id)
        return _tree(out.getvalue())


def _options(context: Path, args: tuple[str, ...]) -> BuildOptions:
    tags, build_args, kw = [], [], {}
    it = iter(args)
    for a in it:
        if a == "-t":
            tags.append(next(it))
        elif a == "--build-arg":
            build_args.append(next(it))
        elif a == "--no-cache":
            kw["no_cache"] = True
        elif a == "--force-rm":
            kw["force_rm"] = True
        elif a == "--target":
            kw["target"] = next(it)
        elif a == "-f":
            kw["dockerfile"] = next(it)
        else:  # pragma: no cover - test helper
            raise ValueError(a)
    return BuildOptions(context=str(context), tags=tuple(tags), build_args=tuple(build_args), **kw)


def _tree(tar_bytes: bytes) -> dict:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tf:
        for ti in tf:
            name = ti.name.rstrip("/").removeprefix("./")
            if not name or _RUNTIME_NOISE.match(name):
                continue
            content = hashlib.sha256(tf.extractfile(ti).read()).hexdigest()[:16] if ti.isreg() else ""
            kind = "f" if ti.isreg() else "d" if ti.isdir() else "l" if ti.issym() else "h" if ti.islnk() else "?"
            out[name] = (kind, oct(ti.mode & 0o7777), ti.uid, ti.gid, ti.linkname, content)
    return out


@pytest.fixture(scope="module")
def pair(dockerd, tmp_path_factory) -> Pair:
    return Pair(dockerd, tmp_path_factory.mktemp("layerlab-home"))


WEB = """\
FROM busybox:latest
LABEL maintainer=whoami
ENV REFRESHED_AT={refreshed}
ARG GREETING=hello
RUN echo {marker} > /marker
RUN echo $GREETING > /greeting && mkdir -p /var/www/html
COPY index.html /var/www/html/
CMD ["cat", "/var/www/html/index.html"]
"""


def test_cache_rules_step_by_step(pair: Pair, tmp_path: Path) -> None:
    marker = f"web-{time.time_ns()}"  # a cold build on the session's dockerd too
    ctx = tmp_path / "web"
    ctx.mkdir()
    (ctx / "index.html").write_text("<h1>Hello from index v1</h1>\n")
    (ctx / "Dockerfile").write_text(WEB.format(refreshed="2014-07-01", marker=marker))

    ours, _ = pair.both(ctx, "-t", "static_web")
    assert ours.actions == ["new", "run", "run", "run", "run", "run", "new", "run"]
    ours, _ = pair.both(ctx, "-t", "static_web")  # rebuild: everything cached
    assert ours.actions == ["new"] + ["cache"] * 7
    os.utime(ctx / "index.html", (1, 1))  # touch: the COPY key ignores mtimes
    ours, _ = pair.both(ctx, "-t", "static_web")
    assert ours.actions == ["new"] + ["cache"] * 7
    (ctx / "index.html").write_text("<h1>Hello from index v2</h1>\n")  # edit: COPY and below
    ours, _ = pair.both(ctx, "-t", "static_web")
    assert ours.actions == ["new"] + ["cache"] * 5 + ["new", "run"]
    (ctx / "Dockerfile").write_text(WEB.format(refreshed="2024-01-01", marker=marker))  # ENV template
    ours, _ = pair.both(ctx, "-t", "static_web")
    assert ours.actions == ["new", "cache", "run", "run", "run", "run", "new", "run"]
    ours, _ = pair.both(ctx, "-t", "static_web", "--build-arg", "GREETING=bonjour")  # misses at its first RUN
    assert ours.actions == ["new", "cache", "cache", "cache", "run", "run", "new", "run"]
    ours, _ = pair.both(ctx, "-t", "static_web", "--no-cache")
    assert ours.actions == ["new", "run", "run", "run", "run", "run", "new", "run"]


def test_failing_run_then_fixed(pair: Pair, tmp_path: Path) -> None:
    marker = f"fail-{time.time_ns()}"
    ctx = tmp_path / "fail"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {marker} > /step2.txt\nRUN false\nENV X=1\n")
    ours, theirs = pair.both(ctx, "-t", "failing")
    assert ours.code == 1 and ours.error == "The command '/bin/sh -c false' returned a non-zero code: 1"
    assert ours.actions == ["new", "run", "fail"]
    ours, _ = pair.both(ctx, "-t", "failing", "--force-rm")
    assert ours.actions == ["new", "cache", "fail"]
    (ctx / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {marker} > /step2.txt\nRUN sh -c 'exit 3'\n")
    ours, _ = pair.both(ctx)
    assert ours.code == 3
    (ctx / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {marker} > /step2.txt\nRUN true\nENV X=1\n")
    ours, _ = pair.both(ctx, "-t", "failing")
    assert ours.actions == ["new", "cache", "run", "run"]


def test_multi_stage_and_target(pair: Pair, tmp_path: Path) -> None:
    marker = f"ms-{time.time_ns()}"
    ctx = tmp_path / "ms"
    ctx.mkdir()
    (ctx / "app.txt").write_text("app\n")
    (ctx / "Dockerfile").write_text(f"""\
ARG BASE=busybox
FROM ${{BASE}}:latest AS builder
ARG V=1
ARG BASE
RUN mkdir -p /out/sub && echo {marker} $V $BASE > /out/sub/built.txt && ln -s built.txt /out/sub/link
COPY app.txt /out/
FROM busybox:latest AS second
COPY --from=builder /out /copied
COPY --from=builder /out/sub/link /out/app.txt /two/
RUN ["cat", "/copied/sub/built.txt"]
FROM second
COPY --from=0 /out/sub/built.txt /final.txt
""")
    ours, _ = pair.both(ctx, "-t", "multi", "--build-arg", "V=2")
    assert ours.actions[-1] == "new"
    ours, _ = pair.both(ctx, "-t", "multi", "--build-arg", "V=2")
    steps = [a for step, a in zip(ours.steps, ours.actions) if " : FROM " not in step and " : ARG BASE=" not in step]
    assert set(steps) == {"cache"}, list(zip(ours.steps, ours.actions))
    pair.both(ctx, "-t", "multi-builder", "--target", "builder")


def test_metadata_instructions_history(pair: Pair, tmp_path: Path) -> None:
    marker = f"meta-{time.time_ns()}"
    ctx = tmp_path / "meta"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"""\
FROM busybox:latest
LABEL marker={marker} "two words"="a b"
CMD
EXPOSE 80 443/udp
VOLUME /data /logs
VOLUME ["/x"]
STOPSIGNAL SIGKILL
MAINTAINER Me <me@example.com>
HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost || exit 1
ONBUILD RUN echo built > /onbuilt
ENTRYPOINT ["echo"]
SHELL ["/bin/sh", "-xc"]
WORKDIR /srv/app
WORKDIR sub
WORKDIR /bin
ENV A=1 B="x y"
USER 1000:1000
RUN echo $A
CMD echo hi
""")
    pair.both(ctx, "-t", "meta")
    pair.both(ctx, "-t", "meta")
    child = tmp_path / "child"
    child.mkdir()
    (child / "Dockerfile").write_text("FROM meta\nENTRYPOINT echo\n")
    pair.both(child)


def test_copy_and_add_rules(pair: Pair, tmp_path: Path) -> None:
    ctx = tmp_path / "copy"
    (ctx / "dir" / "sub").mkdir(parents=True)
    (ctx / "ign").mkdir()
    (ctx / "a.txt").write_text(f"a {time.time_ns()}\n")
    (ctx / "b.txt").write_text("b\n")
    (ctx / "b.txt").chmod(0o600)
    (ctx / "dir" / "c.txt").write_text("c\n")
    (ctx / "dir" / "sub" / "d.txt").write_text("d\n")
    (ctx / "dir" / "skip.log").write_text("x\n")
    (ctx / "ign" / "i.txt").write_text("i\n")
    (ctx / "link").symlink_to("a.txt")
    (ctx / "dir" / "inner").symlink_to("c.txt")
    with tarfile.open(ctx / "arch.tar", "w") as tf:
        tf.add(ctx / "b.txt", "t/b.txt")
    with tarfile.open(ctx / "arch.tgz", "w:gz") as tf:
        tf.add(ctx / "dir" / "c.txt", "c.txt")
    (ctx / ".dockerignore").write_text("ign\n**/*.log\n")
    (ctx / "Dockerfile").write_text("""\
FROM busybox:latest
RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd; echo 'app:x:1000:' >> /etc/group; echo 'grp:x:2000:' >> /etc/group
COPY a.txt /single
COPY a.txt b.txt /multi/
COPY dir /copied
COPY dir/ /copied2/
COPY *.txt /wild/
COPY . /all/
COPY link /lnk
COPY link /lnkdir/
COPY --chown=app a.txt /c1
COPY --chown=app:grp dir /c2/
COPY --chown=1000:2000 a.txt /c3
ADD arch.tar /untar/
ADD arch.tgz /untgz
ADD a.txt relative
WORKDIR /w
COPY a.txt .
COPY a.txt ./x/
COPY a.txt /bin
""")
    pair.both(ctx, "-t", "copies")
    pair.both(ctx, "-t", "copies")
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nCOPY missing.txt /\n")
    ours, _ = pair.both(ctx)
    assert ours.error == ("COPY failed: file not found in build context or excluded by .dockerignore: "
                          "stat missing.txt: file does not exist")
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nCOPY ign/i.txt /\n")
    pair.both(ctx)
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nCOPY a.txt b.txt /notadir\n")
    pair.both(ctx)


def test_onbuild_triggers(pair: Pair, tmp_path: Path) -> None:
    ctx = tmp_path / "onbuild"
    ctx.mkdir()
    (ctx / "f.txt").write_text(f"{time.time_ns()}\n")
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nONBUILD RUN echo trig > /t1\nONBUILD COPY f.txt /onb/\n")
    pair.both(ctx, "-t", "onb")
    (ctx / "Child.Dockerfile").write_text("FROM onb\nENV CHILD=1\n")
    child = str(ctx / "Child.Dockerfile")  # docker's -f is relative to the current directory
    ours, _ = pair.both(ctx, "-f", child)
    assert ours.actions == ["run", "run"]
    ours, _ = pair.both(ctx, "-f", child)
    assert ours.actions == ["cache", "cache"]


def test_errors(pair: Pair, tmp_path: Path) -> None:
    ctx = tmp_path / "errors"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox:latest\nENV M={time.time_ns()}\nRUN\n")
    ours, _ = pair.both(ctx)
    assert (ours.code, ours.error) == (2, "The command '/bin/sh -c' returned a non-zero code: 2")
    (ctx / "Dockerfile").write_text('FROM busybox:latest\nRUN ["/nosuch"]\n')
    ours, _ = pair.both(ctx)
    assert ours.code == 1 and ours.error.startswith("failed to create shim task: OCI runtime create failed")
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nFOO bar\n")
    ours = pair.layerlab(ctx, "-t", "never")
    theirs = pair.docker(ctx, "-t", "never")
    assert (ours.steps, ours.code) == (theirs.steps, theirs.code) == ([], 1)
    assert theirs.error == "Error response from daemon: dockerfile parse error line 2: unknown instruction: FOO"
    assert ours.error.startswith(theirs.error + " (")  # plus LayerLab's hint
    with pytest.raises(Exception):
        pair.engine.image_id("never")
