"""The classic builder against LayerLab alone: output, cache rules, instructions, errors, reproducibility.

The same behaviours are compared with a real dockerd in tests/integration/test_build_vs_docker.py;
here each test has its own store (``Engine(tmp_path)``) with the bootstrapped busybox.
"""
from __future__ import annotations

import io
import json
import os
import re
import tarfile
from pathlib import Path

import pytest

from engine import Engine
from engine.builder import (
    BuildFailed, BuildOptions, Built, CacheHit, ContainerRemoved, ContainerRunning, Output, StepDone, StepStarted,
    Tagged, TriggersExecuting, Warning, go_duration, go_quote_rune, render,
)
from engine.buildcontext import BuildContext
from engine.cli import Streams, run as cli_run
from engine.runtime.manager import RunOptions

pytestmark = pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="busybox-static is not installed")

WEB = """\
FROM busybox:latest
LABEL maintainer=whoami
ENV REFRESHED_AT={refreshed}
RUN echo hello > /greeting && mkdir -p /var/www/html
COPY index.html /var/www/html/
CMD ["cat", "/var/www/html/index.html"]
"""


class Build:
    """The events of one build, with what the tests ask about them."""

    def __init__(self, events: list) -> None:
        self.events = events
        self.lines = [line for e in events if not isinstance(e, Output) and (line := render(e)) is not None]
        self.output = b"".join(e.data for e in events if isinstance(e, Output))
        failed = [e for e in events if isinstance(e, BuildFailed)]
        self.error = failed[0].message if failed else None
        self.code = failed[0].exit_code if failed else 0
        built = [e for e in events if isinstance(e, Built)]
        self.image_id = built[0].image_id if built else None
        done = [e for e in events if isinstance(e, StepDone) and e.image_id]
        self.last_image = done[-1].image_id if done else None

    @property
    def actions(self) -> list[str]:
        """Per step: cache, run (a container was shown) or new (an image without a container)."""
        out: list[str] = []
        for e in self.events:
            if isinstance(e, StepStarted):
                out.append("new")
            elif isinstance(e, CacheHit):
                out[-1] = "cache"
            elif isinstance(e, ContainerRunning) and out[-1] != "cache":
                out[-1] = "run"
        if self.error and out:
            out[-1] = "fail"
        return out


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = Engine(tmp_path / "home")
    eng.bootstrap()
    return eng


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    path = tmp_path / "ctx"
    path.mkdir()
    return path


def build(engine: Engine, ctx: Path, dockerfile: str | None = None, **kw) -> Build:
    if dockerfile is not None:
        (ctx / "Dockerfile").write_text(dockerfile)
    return Build(list(engine.build(BuildOptions(context=str(ctx), **kw))))


def created_by(engine: Engine, image: str) -> list[str]:
    return [row.created_by for row in engine.history(image)]


def files(engine: Engine, image: str) -> dict[str, tarfile.TarInfo]:
    c = engine.create_container(RunOptions(image=image, command=("true",)))
    out = io.BytesIO()
    engine.export(c.id, out)
    engine.remove_container(c.id)
    out.seek(0)
    with tarfile.open(fileobj=out) as tf:
        return {ti.name.rstrip("/"): ti for ti in tf}


def read(engine: Engine, image: str, path: str) -> bytes:
    c = engine.create_container(RunOptions(image=image, command=("true",)))
    out = io.BytesIO()
    engine.export(c.id, out)
    engine.remove_container(c.id)
    out.seek(0)
    with tarfile.open(fileobj=out) as tf:
        return tf.extractfile(path).read()


def run_in(engine: Engine, image: str, *argv: str) -> tuple[int, bytes]:
    chunks: list[bytes] = []
    _, code = engine.run(RunOptions(image=image, command=argv, auto_remove=True),
                         output=lambda stream, data: chunks.append(data))
    return code, b"".join(chunks)


# --- output format and the cache rules ------------------------------------------------------------------

def test_seed_cold_build_prints_dockers_lines(engine, ctx):
    (ctx / "index.html").write_text("<h1>Hello from index v1</h1>\n")
    b = build(engine, ctx, WEB.format(refreshed="2014-07-01"), tags=("static_web",))
    assert b.code == 0, b.error
    pattern = [
        r"Sending build context to Docker daemon  \d+(\.\d+)?k?B",
        r"Step 1/6 : FROM busybox:latest", r" ---> [0-9a-f]{12}",
        r"Step 2/6 : LABEL maintainer=whoami", r" ---> Running in [0-9a-f]{12}",
        r"Removing intermediate container [0-9a-f]{12}", r" ---> [0-9a-f]{12}",
        r"Step 3/6 : ENV REFRESHED_AT=2014-07-01", r" ---> Running in [0-9a-f]{12}",
        r"Removing intermediate container [0-9a-f]{12}", r" ---> [0-9a-f]{12}",
        r"Step 4/6 : RUN echo hello > /greeting && mkdir -p /var/www/html", r" ---> Running in [0-9a-f]{12}",
        r"Removing intermediate container [0-9a-f]{12}", r" ---> [0-9a-f]{12}",
        r"Step 5/6 : COPY index.html /var/www/html/", r" ---> [0-9a-f]{12}",
        r"Step 6/6 : CMD \[\"cat\", \"/var/www/html/index.html\"\]", r" ---> Running in [0-9a-f]{12}",
        r"Removing intermediate container [0-9a-f]{12}", r" ---> [0-9a-f]{12}",
        r"Successfully built [0-9a-f]{12}", r"Successfully tagged static_web:latest",
    ]
    assert len(b.lines) == len(pattern)
    for line, regex in zip(b.lines, pattern):
        assert re.fullmatch(regex, line), (line, regex)
    assert engine.image_id("static_web") == b.image_id
    assert run_in(engine, "static_web") == (0, b"<h1>Hello from index v1</h1>\n")
    history = created_by(engine, "static_web")
    assert history[0] == '/bin/sh -c #(nop)  CMD ["cat" "/var/www/html/index.html"]'
    assert re.fullmatch(r"/bin/sh -c #\(nop\) COPY file:[0-9a-f]{64} in /var/www/html/ ", history[1])
    assert history[2:5] == ["/bin/sh -c echo hello > /greeting && mkdir -p /var/www/html",
                            "/bin/sh -c #(nop)  ENV REFRESHED_AT=2014-07-01",
                            "/bin/sh -c #(nop)  LABEL maintainer=whoami"]
    sizes = [row.size for row in engine.history("static_web")][:5]
    assert sizes == [0, 29, 6, 0, 0]


def test_copy_key_equals_dockerd_for_the_transcripts_file(tmp_path):
    # docker-20.10-transcripts.md: COPY file:d6b0e40d… of "<h1>Hello from index v2</h1>\n", mode 0644
    (tmp_path / "index.html").write_text("<h1>Hello from index v2</h1>\n")
    (tmp_path / "index.html").chmod(0o644)
    ctx = BuildContext.open(tmp_path)
    assert ctx.source_hash("index.html") == \
        "file:d6b0e40dd543a62043230a41d8b6dd287d5ebc1b8c3601d7e6645d1e19ec6925"


def test_cache_rules(engine, ctx):
    index = ctx / "index.html"
    index.write_text("<h1>Hello from index v1</h1>\n")
    first = build(engine, ctx, WEB.format(refreshed="2014-07-01"), tags=("static_web",))
    assert first.actions == ["new", "run", "run", "run", "new", "run"]

    again = build(engine, ctx, tags=("static_web",))
    assert again.actions == ["new"] + ["cache"] * 5
    assert again.image_id == first.image_id
    assert " ---> Using cache" in again.lines

    os.utime(index, (12345, 12345))  # touch: mtimes are not in the COPY key
    assert build(engine, ctx).actions == ["new"] + ["cache"] * 5

    index.write_text("<h1>Hello from index v2</h1>\n")  # edit: COPY and everything below
    edited = build(engine, ctx, tags=("static_web",))
    assert edited.actions == ["new", "cache", "cache", "cache", "new", "run"]
    assert run_in(engine, "static_web") == (0, b"<h1>Hello from index v2</h1>\n")
    # the first build's image is still there, untagged
    assert engine.inspect_image(first.image_id)["RepoTags"] == []

    bumped = build(engine, ctx, WEB.format(refreshed="2024-01-01"))  # the ENV REFRESHED_AT template
    assert bumped.actions == ["new", "cache", "run", "run", "new", "run"]

    fresh = build(engine, ctx, no_cache=True)
    assert fresh.actions == ["new", "run", "run", "run", "new", "run"]
    assert fresh.image_id != bumped.image_id


def test_changed_build_arg_misses_at_its_first_run(engine, ctx):
    dockerfile = "FROM busybox:latest\nARG GREETING=hello\nENV X=1\nRUN echo $GREETING > /g\nRUN echo done\n"
    first = build(engine, ctx, dockerfile)
    assert first.actions == ["new", "run", "run", "run", "run"]
    assert created_by(engine, first.image_id)[:2] == ["|1 GREETING=hello /bin/sh -c echo done",
                                                     "|1 GREETING=hello /bin/sh -c echo $GREETING > /g"]
    changed = build(engine, ctx, build_args=("GREETING=bonjour",))
    assert changed.actions == ["new", "cache", "cache", "run", "run"]
    assert read(engine, changed.image_id, "g") == b"bonjour\n"
    assert build(engine, ctx, build_args=("GREETING=bonjour",)).actions == ["new"] + ["cache"] * 4


def test_failing_run_keeps_last_good_image_and_container(engine, ctx):
    tagged = build(engine, ctx, "FROM busybox:latest\nRUN echo ok\n", tags=("failing",)).image_id
    b = build(engine, ctx, "FROM busybox:latest\nRUN echo step2 > /step2.txt\nRUN false\nRUN echo never\n",
              tags=("failing",))
    assert b.code == 1
    assert b.error == "The command '/bin/sh -c false' returned a non-zero code: 1"
    assert b.lines[-1] == b.error
    assert b.image_id is None
    assert engine.image_id("failing") == tagged  # no tag moved
    assert run_in(engine, b.last_image, "cat", "/step2.txt") == (0, b"step2\n")
    failed = [c for c in engine.containers(all=True) if c.argv == ("/bin/sh", "-c", "false")]
    assert len(failed) == 1 and failed[0].exit_code == 1

    forced = build(engine, ctx, force_rm=True)
    assert forced.actions == ["new", "cache", "fail"]
    assert isinstance([e for e in forced.events if not isinstance(e, Output)][-2], ContainerRemoved)
    assert len([c for c in engine.containers(all=True) if c.argv == ("/bin/sh", "-c", "false")]) == 1

    code3 = build(engine, ctx, "FROM busybox:latest\nRUN echo step2 > /step2.txt\nRUN [\"sh\", \"-c\", \"exit 3\"]\n")
    assert (code3.code, code3.error) == (3, "The command 'sh -c exit 3' returned a non-zero code: 3")

    fixed = build(engine, ctx, "FROM busybox:latest\nRUN echo step2 > /step2.txt\nRUN true\n", tags=("failing",))
    assert fixed.actions == ["new", "cache", "run"]
    assert engine.image_id("failing") == fixed.image_id


def test_run_output_is_streamed_and_stderr_kept(engine, ctx):
    b = build(engine, ctx, "FROM busybox:latest\nRUN echo out; echo err >&2\n")
    streams = {e.stream: e.data for e in b.events if isinstance(e, Output)}
    assert streams == {"stdout": b"out\n", "stderr": b"err\n"}


def test_unknown_instruction_moves_no_tag(engine, ctx):
    b = build(engine, ctx, "FROM busybox:latest\nFOO bar\n", tags=("never",))
    assert b.code == 1
    assert b.error.startswith("Error response from daemon: dockerfile parse error line 2: unknown instruction: FOO (")
    assert not any(line.startswith("Step") for line in b.lines)
    with pytest.raises(Exception):
        engine.image_id("never")


def test_bad_tag_is_refused_before_building(engine, ctx):
    b = build(engine, ctx, "FROM busybox:latest\n", tags=("Bad:Tag:x",))
    assert b.code == 125 and "invalid reference format" in b.error


# --- instructions -------------------------------------------------------------------------------------------

def test_metadata_history_texts_and_config(engine, ctx):
    b = build(engine, ctx, """\
FROM busybox:latest
CMD
EXPOSE 80 443/udp 8000-8001
VOLUME /data /logs
VOLUME ["/x"]
USER nobody:nogroup
STOPSIGNAL SIGKILL
SHELL ["/bin/sh", "-xc"]
HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost || exit 1
ONBUILD RUN echo built
WORKDIR /srv/app
WORKDIR sub
MAINTAINER Me <me@x>
ENTRYPOINT ["echo"]
""")
    assert b.code == 0, b.error
    history = created_by(engine, b.image_id)
    assert history[:-1] == [
        '/bin/sh -xc #(nop)  ENTRYPOINT ["echo"]',
        "/bin/sh -xc #(nop)  MAINTAINER Me <me@x>",
        "/bin/sh -xc #(nop) WORKDIR /srv/app/sub",
        "/bin/sh -xc #(nop) WORKDIR /srv/app",
        "/bin/sh -xc #(nop)  ONBUILD RUN echo built",
        '/bin/sh -xc #(nop)  HEALTHCHECK &{["CMD-SHELL" "wget -q localhost || exit 1"] "5s" "0s" "0s" \'\\x03\'}',
        "/bin/sh -xc #(nop)  SHELL [/bin/sh -xc]",
        "/bin/sh -c #(nop)  STOPSIGNAL SIGKILL",
        "/bin/sh -c #(nop)  USER nobody:nogroup",
        "/bin/sh -c #(nop)  VOLUME [/x]",
        "/bin/sh -c #(nop)  VOLUME [/data /logs]",
        "/bin/sh -c #(nop)  EXPOSE 443/udp 80 8000-8001",
        '/bin/sh -c #(nop)  CMD ["/bin/sh" "-c"]',
    ]
    config = engine.inspect_image(b.image_id)["Config"]
    assert config["Cmd"] is None  # ENTRYPOINT dropped the CMD: a CMD with no arguments does not count
    assert config["Entrypoint"] == ["echo"]
    assert config["User"] == "nobody:nogroup" and config["WorkingDir"] == "/srv/app/sub"
    assert set(config["ExposedPorts"]) == {"80/tcp", "443/udp", "8000/tcp", "8001/tcp"}
    assert set(config["Volumes"]) == {"/data", "/logs", "/x"}
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q localhost || exit 1"],
                                     "Interval": 5_000_000_000, "Retries": 3}
    assert config["OnBuild"] == ["RUN echo built"] and config["Shell"] == ["/bin/sh", "-xc"]
    raw = json.loads(engine.store.read_blob(b.image_id))
    assert raw["author"] == "Me <me@x>"
    assert [h.get("empty_layer", False) for h in raw["history"][-4:]] == [False, False, True, True]
    paths = files(engine, b.image_id)
    assert paths["srv/app/sub"].isdir() and paths["srv/app/sub"].mode & 0o7777 == 0o755


def test_entrypoint_keeps_a_cmd_of_the_same_stage(engine, ctx):
    b = build(engine, ctx, 'FROM busybox:latest\nCMD ["hi"]\nENTRYPOINT echo\n')
    config = engine.inspect_image(b.image_id)["Config"]
    assert config["Cmd"] == ["hi"] and config["Entrypoint"] == ["/bin/sh", "-c", "echo"]
    b = build(engine, ctx, "FROM busybox:latest\nENTRYPOINT [\"echo\"]\n")
    assert engine.inspect_image(b.image_id)["Config"]["Cmd"] is None  # busybox's CMD ["sh"] is dropped
    b = build(engine, ctx, "FROM busybox:latest\nCMD []\n")
    assert engine.inspect_image(b.image_id)["Config"]["Cmd"] == []
    assert created_by(engine, b.image_id)[0] == "/bin/sh -c #(nop)  CMD []"


def test_workdir_that_exists_adds_an_empty_layer(engine, ctx):
    b = build(engine, ctx, "FROM busybox:latest\nWORKDIR /bin\nWORKDIR /new/dir\n")
    raw = json.loads(engine.store.read_blob(b.image_id))
    assert [h.get("empty_layer", False) for h in raw["history"][-2:]] == [True, False]
    assert created_by(engine, b.image_id)[:2] == ["/bin/sh -c #(nop) WORKDIR /new/dir",
                                                 "/bin/sh -c #(nop) WORKDIR /bin"]


def test_bare_run_runs_the_shell_without_a_command(engine, ctx):
    b = build(engine, ctx, "FROM busybox:latest\nRUN\n")
    assert (b.code, b.error) == (2, "The command '/bin/sh -c' returned a non-zero code: 2")
    b = build(engine, ctx, 'FROM busybox:latest\nRUN ["/nosuch"]\n')
    assert b.code == 1 and b.error.startswith("failed to create shim task: OCI runtime create failed: ")


def test_onbuild_triggers_run_in_the_child(engine, ctx):
    (ctx / "f.txt").write_text("f\n")
    build(engine, ctx, "FROM busybox:latest\nONBUILD RUN echo trig > /t1\nONBUILD COPY f.txt /onb/\n",
          tags=("onb",))
    child = build(engine, ctx, "FROM onb\nENV CHILD=1\n")
    assert child.lines[1:4] == ["Step 1/2 : FROM onb", "# Executing 2 build triggers", child.lines[3]]
    assert child.lines[3].startswith(" ---> Running in ")
    steps_done = [e for e in child.events if isinstance(e, StepDone)]
    assert len(steps_done) == 2  # the triggers print no image of their own
    assert read(engine, child.image_id, "t1") == b"trig\n" and read(engine, child.image_id, "onb/f.txt") == b"f\n"
    assert engine.inspect_image(child.image_id)["Config"]["OnBuild"] is None
    again = build(engine, ctx)
    assert [line for line in again.lines if "Using cache" in line] == [" ---> Using cache"] * 3
    assert render(TriggersExecuting(1)) == "# Executing 1 build trigger"


def test_args_prefix_meta_args_and_unused_warning(engine, ctx):
    b = build(engine, ctx, """\
ARG BASE=busybox
ARG UNUSEDMETA
FROM ${BASE}:latest AS first
ARG V=1
ARG A=x B
ARG BASE
ENV E=e
RUN echo $V $BASE > /v
ARG E=argE
RUN echo $E > /e
FROM busybox:latest
COPY --from=first /v /e /out/
RUN ["cat", "/out/v"]
""", build_args=("V=2", "NOPE=1", "HTTP_PROXY=p"))
    assert b.code == 0, b.error
    assert b.lines[1:4] == ["Step 1/13 : ARG BASE=busybox", "Step 2/13 : ARG UNUSEDMETA",
                            "Step 3/13 : FROM ${BASE}:latest AS first"]
    assert b.lines[-2:] == ["[Warning] One or more build-args [NOPE] were not consumed",
                            f"Successfully built {b.image_id[7:19]}"]
    assert b"2 busybox\n" in b.output
    history = created_by(engine, b.image_id)
    assert history[0] == "|0 cat /out/v"  # a built-in proxy arg makes the prefix, but is not in it
    first_stage = [e.image_id for e in b.events if isinstance(e, StepDone)][7]
    assert created_by(engine, first_stage)[:4] == [
        "|3 A=x BASE=busybox V=2 /bin/sh -c echo $E > /e",
        "/bin/sh -c #(nop)  ARG E=argE",
        "|3 A=x BASE=busybox V=2 /bin/sh -c echo $V $BASE > /v",
        "/bin/sh -c #(nop)  ENV E=e",
    ]
    assert read(engine, b.image_id, "out/e") == b"e\n"  # ENV wins over ARG


def test_multi_stage_copy_from_and_target(engine, ctx):
    dockerfile = """\
FROM busybox:latest AS builder
RUN mkdir -p /out/sub && echo built > /out/sub/built.txt && ln -s built.txt /out/sub/link
FROM busybox:latest
COPY --from=builder /out /copied
COPY --from=0 /out/sub/link /two/
RUN cat /two/link
"""
    b = build(engine, ctx, dockerfile, tags=("multi",))
    assert b.code == 0, b.error
    paths = files(engine, b.image_id)
    assert paths["copied/sub/link"].issym() and paths["copied/sub/link"].linkname == "built.txt"
    assert paths["two/link"].isfile()  # a source symlink is followed, the name kept
    assert read(engine, b.image_id, "two/link") == b"built\n"
    assert b.output == b"built\n"
    target = build(engine, ctx, target="builder", tags=("multi-builder",))
    assert target.lines[-3:-1][0].startswith(" ---> ")
    assert [line for line in target.lines if line.startswith("Step")][-1].startswith("Step 2/2 : RUN")
    assert target.actions == ["new", "cache"]
    bad = build(engine, ctx, target="nosuch")
    assert bad.error.startswith("Error response from daemon: failed to reach build target nosuch in Dockerfile")


def test_copy_destination_rules_and_dockerignore(engine, ctx):
    (ctx / "dir" / "sub").mkdir(parents=True)
    (ctx / "ign").mkdir()
    (ctx / "a.txt").write_text("a\n")
    (ctx / "b.txt").write_text("b\n")
    (ctx / "b.txt").chmod(0o600)
    (ctx / "dir" / "c.txt").write_text("c\n")
    (ctx / "dir" / "sub" / "d.txt").write_text("d\n")
    (ctx / "dir" / "skip.log").write_text("x\n")
    (ctx / "ign" / "i.txt").write_text("i\n")
    (ctx / "link").symlink_to("a.txt")
    with tarfile.open(ctx / "arch.tgz", "w:gz") as tf:
        tf.add(ctx / "dir" / "c.txt", "t/c.txt")
    (ctx / ".dockerignore").write_text("ign\n**/*.log\n")
    b = build(engine, ctx, """\
FROM busybox:latest
COPY a.txt /single
COPY a.txt b.txt /multi/
COPY dir /copied
COPY *.txt /wild/
COPY . /all/
COPY link /lnk
COPY --chown=www-data:nogroup a.txt /c1
COPY --chown=1000 a.txt /c2
COPY --chmod=700 a.txt /c3
ADD arch.tgz /untgz
ADD a.txt relative
WORKDIR /w
COPY a.txt .
COPY a.txt ./x/
""")
    assert b.code == 0, b.error
    paths = files(engine, b.image_id)
    for name in ("single", "multi/a.txt", "multi/b.txt", "copied/c.txt", "copied/sub/d.txt", "wild/a.txt",
                 "wild/b.txt", "all/Dockerfile", "all/.dockerignore", "all/dir/c.txt", "lnk", "untgz/t/c.txt",
                 "relative", "w/a.txt", "w/x/a.txt"):
        assert paths[name].isfile(), name
    assert paths["all/link"].issym()
    assert "all/ign" not in paths and "copied/skip.log" not in paths and "all/dir/skip.log" not in paths
    assert paths["multi/b.txt"].mode == 0o600
    assert (paths["c1"].uid, paths["c1"].gid) == (33, 65534)  # names from the image's passwd and group
    assert (paths["c2"].uid, paths["c2"].gid) == (1000, 1000)
    assert paths["c3"].mode == 0o700
    history = created_by(engine, b.image_id)
    assert history[6].startswith("/bin/sh -c #(nop) COPY --chown=1000file:")  # Docker's missing space
    assert history[5].startswith("/bin/sh -c #(nop) COPY --chmod=700 file:")
    assert history[0].endswith(" in ./x/ ") and history[1].endswith(" in . ")


def test_dockerignore_can_hide_the_dockerfile(engine, ctx):
    (ctx / "a.txt").write_text("a\n")
    (ctx / ".dockerignore").write_text("Dockerfile\n.dockerignore\n")
    b = build(engine, ctx, "FROM busybox:latest\nCOPY . /all/\n")
    assert b.code == 0, b.error
    assert {p for p in files(engine, b.image_id) if p.startswith("all/")} == {"all/a.txt"}


def test_copy_errors(engine, ctx):
    (ctx / "a.txt").write_text("a\n")
    b = build(engine, ctx, "FROM busybox:latest\nCOPY missing.txt /\n", tags=("x",))
    assert b.error == ("COPY failed: file not found in build context or excluded by .dockerignore: "
                       "stat missing.txt: file does not exist")
    b = build(engine, ctx, "FROM busybox:latest\nCOPY a.txt Dockerfile /notadir\n")
    assert b.error == ("When using COPY with more than one source file, the destination must be a directory "
                       "and end with a /")
    b = build(engine, ctx, "FROM busybox:latest\nADD http://example.com/x /x\n")
    assert b.error.startswith("ADD failed: downloading http://example.com/x needs the internet")
    b = build(engine, ctx, "FROM busybox:latest\nCOPY --chown=nobodyatall a.txt /\n")
    assert b.error == ("unable to convert uid/gid chown string to host mapping: can't find uid for user "
                       "nobodyatall: no such user: nobodyatall")
    with pytest.raises(Exception):
        engine.image_id("x")


def test_from_a_missing_base_with_no_registry_fails_the_step(engine, ctx, monkeypatch):
    import socket

    monkeypatch.delenv("LAYERLAB_HUB_MIRROR", raising=False)
    with socket.socket() as closed:   # bound, not listening: connecting is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        engine.set_registry_settings(hub_mirror=f"127.0.0.1:{port}")
        b = build(engine, ctx, "FROM nosuchbase:latest\n", tags=("x",))
    assert b.lines[1:] == ["Step 1/1 : FROM nosuchbase:latest", b.error]
    assert (b.code, b.error) == (1, f'Get "http://127.0.0.1:{port}/v2/library/nosuchbase/manifests/latest": '
                                    f"dial tcp 127.0.0.1:{port}: connect: connection refused")
    with pytest.raises(Exception):
        engine.image_id("x")


def test_quiet_cli_prints_only_the_id(engine, ctx):
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nRUN echo noisy\n")
    out, err = io.StringIO(), io.StringIO()
    code = cli_run(["build", "-q", "-t", "quiet", str(ctx)], Streams(stdout=out, stderr=err), engine=engine)
    assert code == 0
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", out.getvalue())
    assert engine.image_id("quiet") == out.getvalue().strip()


def test_same_inputs_give_the_same_image_id_in_two_homes(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "index.html").write_text("<h1>Hello</h1>\n")
    (ctx / "Dockerfile").write_text(WEB.format(refreshed="2014-07-01"))
    ids = []
    for home in ("one", "two"):
        eng = Engine(tmp_path / home)
        eng.bootstrap()
        b = Build(list(eng.build(BuildOptions(context=str(ctx)))))
        assert b.code == 0, b.error
        ids.append(b.image_id)
        os.utime(ctx / "index.html", (1_800_000_000, 1_800_000_000))  # later mtimes are clamped
    assert ids[0] == ids[1]


def test_step_event_helpers():
    assert go_duration(5_000_000_000) == "5s" and go_duration(90 * 10**9) == "1m30s"
    assert go_duration(0) == "0s" and go_duration(1_500_000) == "1.5ms" and go_duration(3600 * 10**9) == "1h0m0s"
    assert go_quote_rune(3) == "'\\x03'" and go_quote_rune(65) == "'A'" and go_quote_rune(10) == "'\\n'"
    assert render(StepDone(1, "", False, 0.0)) == " ---> "
    assert render(Warning("w")) == "w" and render(Tagged("a:b")) == "Successfully tagged a:b"


def test_rm_false_keeps_the_intermediate_containers(engine, ctx):
    (ctx / "f.txt").write_text("f\n")
    before = len(engine.containers(all=True))
    b = build(engine, ctx, "FROM busybox:latest\nENV X=1\nCOPY f.txt /f\nRUN true\n", rm=False)
    assert b.code == 0 and not any(line.startswith("Removing") for line in b.lines)
    kept = engine.containers(all=True)[: len(engine.containers(all=True)) - before]
    assert sorted(c.argv[-1] for c in kept) == ["ENV X=1", "true"]  # COPY's container is never kept


def test_kept_metadata_container_gets_its_snapshots_when_first_used(engine, ctx):
    """Containers of steps that run nothing are created without extracting the image's layers."""
    b = build(engine, ctx, "FROM busybox:latest\nRUN echo made > /made.txt\nLABEL step=meta\n", rm=False)
    assert b.code == 0, b.error
    meta = next(c for c in engine.containers(all=True) if c.argv[-1] == "LABEL step=meta")
    assert not all(os.path.isdir(d) for d in meta.lowerdirs)  # the RUN layer was not extracted for it
    out = io.BytesIO()
    engine.export(meta.id, out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tf:
        assert tf.extractfile("made.txt").read() == b"made\n"
    assert all(os.path.isdir(d) for d in meta.lowerdirs)


def test_stopping_a_build_mid_run_kills_its_container(engine, ctx):
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nRUN echo started; sleep 30\n")
    events = engine.build(BuildOptions(context=str(ctx)))
    for event in events:
        if isinstance(event, Output):
            break
    events.close()  # what an interrupt in a notebook cell amounts to
    stopped = [c for c in engine.containers(all=True) if "sleep 30" in c.argv[-1]]
    assert len(stopped) == 1 and not stopped[0].running
