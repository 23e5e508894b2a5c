"""The magics in a real IPython shell, end to end on the real engine (containers, builds, the store).

One shell (``InteractiveShell.instance()``) with ``%load_ext kernel_ext`` over a private store per
module; each test uses its own image and container names.
"""
from __future__ import annotations

import contextlib
import html.parser
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from engine import Engine
from engine.cli import Streams
from engine.testing import SEED_WEB_DOCKERFILE
from kernel_ext import backend as backend_mod
from kernel_ext.display import BuildResult, InspectResult, Result, RunResult, TableResult

pytestmark = pytest.mark.integration

WEB = SEED_WEB_DOCKERFILE


class Probe:
    """A stdout/stderr that records what is written and calls ``on_write`` with each piece as it comes."""

    def __init__(self, on_write: Callable[[str], None] | None = None) -> None:
        self.parts: list[str] = []
        self.on_write = on_write

    def write(self, text: str) -> int:
        self.parts.append(text)
        if self.on_write is not None:
            self.on_write(text)
        return len(text)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        return "".join(self.parts)


@contextlib.contextmanager
def the_shell() -> Iterator[InteractiveShell]:
    """``InteractiveShell.instance()``; the singleton is cleared afterwards if we made it (another test may
    want IPython's terminal shell, which cannot coexist with a plain one)."""
    created = not InteractiveShell.initialized()
    shell = InteractiveShell.instance()
    try:
        yield shell
    finally:
        if created:
            InteractiveShell.clear_instance()


@pytest.fixture(scope="module")
def ip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InteractiveShell]:
    home = tmp_path_factory.mktemp("magics") / "store"
    import kernel_ext

    with the_shell() as shell:
        kernel_ext.load_ipython_extension(shell)
        shell.run_line_magic("config", f"LayerLab.home = {str(home)!r}")
        assert shell.user_ns["layerlab_engine"].home == home
        assert shell.run_line_magic("docker", "bootstrap -q").exit_code == 0
        yield shell
        kernel_ext.unload_ipython_extension(shell)
        shell.config.pop("LayerLab", None)  # what %config set here stays in the shell's config


@pytest.fixture
def web(tmp_path: Path) -> Path:
    ctx = tmp_path / "web"
    ctx.mkdir()
    (ctx / "index.html").write_text("<h1>Hello from index v1</h1>\n")
    return ctx


def run(ip: InteractiveShell, magic: str, line: str, cell: str | None = None,
        monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[Any, str, str]:
    """Call a magic with stdout/stderr probed; (result, stdout, stderr)."""
    import sys

    out, err = Probe(), Probe()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        result = ip.run_cell_magic(magic, line, cell) if cell is not None else ip.run_line_magic(magic, line)
    finally:
        sys.stdout, sys.stderr = saved
    return result, out.text, err.text


class _Table(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.rows: list[list[str]] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.stack.append(tag)
        if tag == "tr":
            self.rows.append([])

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] in ("td", "th"):
            self.rows[-1].append(data)


def html_rows(markup: str) -> list[list[str]]:
    parser = _Table()
    parser.feed(markup)
    assert not parser.errors and not parser.stack, markup
    assert markup.startswith("<table") and "<thead>" in markup
    return parser.rows


# --- builds ----------------------------------------------------------------------------------------

def test_dbuild_cell_streams_live_and_uses_the_cache(ip: InteractiveShell, web: Path) -> None:
    import sys

    eng: Engine = ip.user_ns["layerlab_engine"]
    seen_while_running: list[bool] = []

    def on_write(text: str) -> None:
        if text.startswith("Step 2/"):  # the tag is set at the end: still untagged while steps stream
            seen_while_running.append(eng.images(reference="magic_web") == [])

    probe = Probe(on_write)
    saved = sys.stdout
    sys.stdout = probe
    try:
        result = ip.run_cell_magic("dbuild", f"--context {web} -t magic_web", WEB)
    finally:
        sys.stdout = saved
    assert seen_while_running == [True]
    assert isinstance(result, BuildResult) and result.exit_code == 0
    assert result.text == probe.text  # the result keeps exactly what streamed
    assert "Step 5/6 : COPY index.html /var/www/html/" in result.text
    assert result.tags == ["magic_web:latest"]
    assert eng.image_id("magic_web")[7:19] == result.image_id
    again, out, _ = run(ip, "dbuild", f"-t magic_web --context={web}", WEB)
    assert out.count(" ---> Using cache") == 5 and again.image_id == result.image_id
    (web / "index.html").write_text("<h1>v2</h1>\n")  # edit: COPY and everything after it run again
    edited, out, _ = run(ip, "dbuild", f"--context {web} -t magic_web", WEB)
    assert out.count(" ---> Using cache") == 3 and edited.image_id != result.image_id


def test_dbuild_line_and_docker_build_are_the_same_command(ip: InteractiveShell, web: Path) -> None:
    (web / "Dockerfile").write_text(WEB)
    first, out1, _ = run(ip, "dbuild", f"-t magic_line {web}")
    second, out2, _ = run(ip, "docker", f"build -t magic_line {web}")
    assert first.exit_code == second.exit_code == 0
    assert first.image_id == second.image_id and out2.count("Using cache") == 5


def test_failed_build_leaves_the_last_good_image(ip: InteractiveShell) -> None:
    result, out, err = run(ip, "dbuild", "-t magic_fail", "FROM busybox\nRUN echo ok > /ok\nRUN false\n")
    assert result.exit_code == 1 and result.image_id is None
    assert err == "The command '/bin/sh -c false' returned a non-zero code: 1\n"
    assert "Traceback" not in out + err
    assert result.last_image is not None
    ok, out, _ = run(ip, "drun", f"--rm {result.last_image} cat /ok")
    assert (ok.exit_code, out) == (0, "ok\n")


def test_reproducible_builds_give_the_same_id_in_another_store(ip: InteractiveShell, tmp_path: Path) -> None:
    dockerfile = "FROM busybox\nRUN echo same > /same\n"
    first, _, _ = run(ip, "dbuild", "-t magic_repro", dockerfile)
    eng: Engine = ip.user_ns["layerlab_engine"]
    assert eng.inspect_image("magic_repro")["Created"].startswith("2024-01-01T00:00:00")
    assert "SOURCE_DATE_EPOCH" not in os.environ  # set only while the build runs
    home = ip.run_line_magic("config", "LayerLab.home")
    try:
        ip.run_line_magic("config", f"LayerLab.home = {str(tmp_path / 'other')!r}")
        assert ip.user_ns["layerlab_engine"].home == tmp_path / "other"
        assert run(ip, "dimages", "-q")[1] == ""  # a new, empty store
        run(ip, "docker", "bootstrap -q")
        second, _, _ = run(ip, "dbuild", "-t magic_repro", dockerfile)
        assert second.image_id == first.image_id
        ip.run_line_magic("config", "LayerLab.reproducible = False")
        run(ip, "dbuild", "--no-cache -t magic_clock", dockerfile)
        created = ip.user_ns["layerlab_engine"].inspect_image("magic_clock")["Created"]
        assert not created.startswith("2024-01-01T00:00:00")
    finally:
        ip.run_line_magic("config", "LayerLab.reproducible = True")
        ip.run_line_magic("config", f"LayerLab.home = {home!r}")


# --- containers ------------------------------------------------------------------------------------------

def test_drun_streams_and_returns_the_container(ip: InteractiveShell) -> None:
    result, out, err = run(ip, "drun", "--name magic_r1 busybox sh -c 'echo out; echo err >&2; exit 3'")
    assert isinstance(result, RunResult)
    assert (result.exit_code, out, err) == (3, "out\n", "err\n")
    assert result.name == "magic_r1"
    assert ip.user_ns["layerlab_engine"].container("magic_r1").id == result.container_id
    removed, out, _ = run(ip, "drm", "magic_r1")
    assert (removed.exit_code, out) == (0, "magic_r1\n")


def test_drun_output_arrives_while_the_container_runs(ip: InteractiveShell) -> None:
    import sys

    eng: Engine = ip.user_ns["layerlab_engine"]
    states: list[str] = []
    probe = Probe(lambda text: states.append(eng.container("magic_live").state) if "first" in text else None)
    saved = sys.stdout
    sys.stdout = probe
    try:
        result = ip.run_line_magic("drun", "--name magic_live busybox sh -c 'echo first; sleep 0.2; echo second'")
    finally:
        sys.stdout = saved
    assert states == ["running"] and probe.text == "first\nsecond\n" and result.exit_code == 0
    assert eng.container("magic_live").state == "exited"


def test_drun_cell_is_the_shell_script_then_diff_commit_history(ip: InteractiveShell) -> None:
    script = "echo from the script\necho committed > /committed.txt\nrm /bin/arch\n"
    result, out, _ = run(ip, "drun", "--name magic_c1 busybox", script)
    assert (result.exit_code, out) == (0, "from the script\n")
    changes, out, _ = run(ip, "ddiff", "magic_c1")
    assert out == "" and isinstance(changes, TableResult)
    assert {(r["CHANGE"], r["PATH"]) for r in changes.rows} >= {("A", "/committed.txt"), ("D", "/bin/arch")}
    commit, out, _ = run(ip, "dcommit", "-m 'add committed.txt' magic_c1 magic_commit:v1")
    assert commit.exit_code == 0 and out.startswith("sha256:") and out == commit.text
    hist, _, _ = run(ip, "dhistory", "magic_commit:v1")
    assert hist.headers == ("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT")
    assert hist.rows[0]["COMMENT"] == "add committed.txt" and hist.rows[0]["IMAGE"] == out[7:19]
    shown, out, _ = run(ip, "drun", "--rm magic_commit:v1 cat /committed.txt")
    assert out == "committed\n"


def test_drun_rm_leaves_nothing(ip: InteractiveShell) -> None:
    eng: Engine = ip.user_ns["layerlab_engine"]
    before = {c.id for c in eng.containers(all=True)}
    result, out, _ = run(ip, "drun", "--rm busybox", "echo $((6 * 7))\n")
    assert (result.exit_code, out) == (0, "42\n")
    assert {c.id for c in eng.containers(all=True)} == before


def test_detached_container_logs_stop_ps_rm(ip: InteractiveShell) -> None:
    started, out, _ = run(ip, "drun", "-d --name magic_web busybox sh -c 'echo up; exec sleep 60'")
    assert started.exit_code == 0 and len(out.strip()) == 64
    ps, out, _ = run(ip, "dps", "")
    assert out == "" and "magic_web" in ps.column("NAMES")
    row = ps.rows[ps.column("NAMES").index("magic_web")]
    assert row["STATUS"].startswith("Up") and row["IMAGE"] == "busybox"
    assert len(html_rows(ps._repr_html_())) == len(ps.rows) + 1
    eng: Engine = ip.user_ns["layerlab_engine"]
    for _ in range(200):  # the shell's echo may not have reached the log yet
        if run(ip, "dlogs", "magic_web")[1]:
            break
        threading.Event().wait(0.02)
    assert run(ip, "dlogs", "magic_web")[1] == "up\n"
    stopped, out, _ = run(ip, "dstop", "-t 0 magic_web")
    assert (stopped.exit_code, out) == (0, "magic_web\n")
    assert eng.container("magic_web").state == "exited"
    ps_all, _, _ = run(ip, "docker", "container ls -a")
    assert "magic_web" in ps_all.column("NAMES")
    assert run(ip, "drm", "magic_web")[0].exit_code == 0


def test_interrupt_kills_the_foreground_container(ip: InteractiveShell) -> None:
    import sys

    eng: Engine = ip.user_ns["layerlab_engine"]
    ready = threading.Event()

    def interrupt() -> None:
        if ready.wait(30):
            os.kill(os.getpid(), signal.SIGINT)

    helper = threading.Thread(target=interrupt)
    probe = Probe(lambda text: ready.set() if "ready" in text else None)
    saved = sys.stdout
    sys.stdout = probe
    helper.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            ip.run_line_magic("drun", "--name magic_intr busybox sh -c 'echo ready; exec sleep 60'")
    finally:
        sys.stdout = saved
        ready.set()
        helper.join()
    c = eng.container("magic_intr")
    assert c.state == "exited"  # killed, not left running
    eng.remove_container("magic_intr")


# --- images ------------------------------------------------------------------------------------------------

def test_dimages_prints_exactly_what_the_cli_prints(ip: InteractiveShell) -> None:
    from engine.cli import run as cli_run
    import io

    result, out, err = run(ip, "dimages", "")
    assert out == err == ""  # a table verb: the result is the output
    buf = io.StringIO()
    assert cli_run(["images"], Streams(stdout=buf, stderr=io.StringIO()), ip.user_ns["layerlab_engine"]) == 0
    assert result.text == buf.getvalue()
    formatted, _ = ip.display_formatter.format(result)
    assert formatted["text/plain"] == buf.getvalue().rstrip("\n")
    rows = html_rows(result._repr_html_())  # (a terminal shell's formatter asks for text only)
    assert rows[0] == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    assert ["busybox", "latest"] == rows[1 + result.column("REPOSITORY").index("busybox")][:2]
    assert len(rows) == len(result.rows) + 1


def test_tag_inspect_rmi_and_docker_verbs(ip: InteractiveShell) -> None:
    tagged, out, _ = run(ip, "dtag", "busybox magic_tag:1")
    assert (tagged.exit_code, out) == (0, "")
    ls, _, _ = run(ip, "docker", "image ls magic_tag")
    assert ls.column("TAG") == ["1"]
    listed, _, _ = run(ip, "docker", "-o imgs images -q")
    assert ip.user_ns["imgs"] is listed and listed.rows == () and listed.text.strip()
    insp, _, _ = run(ip, "dinspect", "magic_tag:1")
    assert isinstance(insp, InspectResult) and insp.data[0]["RepoTags"][0] == "busybox:latest"
    import html

    assert json.loads(html.unescape(insp._repr_html_().split(">", 1)[1].rsplit("<", 1)[0])) == insp.data
    ip.user_ns["which"] = "magic_tag:1"
    fmt, _, _ = run(ip, "dinspect", "-f '{{json .RootFS.Type}}' $which")  # $var expanded, {{ }} kept
    assert fmt.text == '"layers"\n' and fmt.data is None
    fmt2, _, _ = run(ip, "dinspect", "-f '{{.Architecture}}' {which.split(':')[0]}:1")
    assert fmt2.exit_code == 0 and fmt2.text.strip()
    removed, out, _ = run(ip, "drmi", "magic_tag:1")
    assert (removed.exit_code, out) == (0, "Untagged: magic_tag:1\n"), _


def test_save_and_load(ip: InteractiveShell, tmp_path: Path) -> None:
    archive = tmp_path / "bb.tar"
    saved, _, _ = run(ip, "dsave", f"-o {archive} busybox --as s")
    assert saved.exit_code == 0 and archive.stat().st_size > 0 and ip.user_ns["s"] is saved
    run(ip, "drmi", "hello-world")
    loaded, out, _ = run(ip, "dload", f"-i {archive} -o l")
    assert (loaded.exit_code, out) == (0, "Loaded image: busybox:latest\n") and ip.user_ns["l"] is loaded
    run(ip, "docker", "bootstrap -q")


# --- errors ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("magic,line,code,message", [
    ("dhistory", "magic_nosuch", 1, "Error response from daemon: No such image: magic_nosuch\n"),
    ("dimages", "--bogus", 125, "unknown flag: --bogus\nSee 'layerlab images --help'.\n"),
    ("drun", "--rm magic_nosuch true", 125, None),
    ("dimages", "-o 1x", 125, "%dimages: -o needs a Python variable name, not '1x'\n"),
    ("dexplore", "a b", 125, None),
    ("dsave", "-o /proc/nosuch/dir/x.tar busybox", 1, None),
    ("dload", "-i /proc/nosuch.tar", 1, None),
])
def test_errors_are_a_message_and_an_exit_code(ip: InteractiveShell, magic: str, line: str, code: int,
                                               message: str | None) -> None:
    result, out, err = run(ip, magic, line)
    assert isinstance(result, Result) and result.exit_code == code and not result.ok
    assert "Traceback" not in err and err.count("\n") <= 2 and err
    if message is not None:
        assert err == message
    assert out == ""


# --- display -------------------------------------------------------------------------------------------------

def test_streamed_results_show_once(ip: InteractiveShell) -> None:
    ip.run_cell("r = %drun --rm busybox echo once", store_history=True)
    r = ip.user_ns["r"]
    assert r.streamed and r.text == "once\n"
    ip.execution_count = r.cell  # as if the magic ended this very cell: already shown, nothing more
    assert ip.display_formatter.format(r) == ({}, {})
    ip.execution_count = r.cell + 1  # asked for in a later cell: rendered
    assert ip.display_formatter.format(r)[0]["text/plain"] == "once"
    assert str(r) == "once\n" and "exit code 0" in repr(r)


# --- configuration and backends ---------------------------------------------------------------------------

class EchoBackend(backend_mod.Backend):
    """A backend that only reports the command line it was given (tests the hook, not an engine)."""

    name = "echo"
    calls: list[tuple[str, ...]] = []

    def __init__(self, home: str | None = None) -> None:
        self.home = home

    def run_verb(self, argv: Any, streams: Streams) -> int:
        EchoBackend.calls.append(tuple(argv))
        streams.out("echo: " + " ".join(argv))
        return 7


def test_a_registered_backend_gets_the_commands(ip: InteractiveShell) -> None:
    backend_mod.register_backend("echo", EchoBackend)
    try:
        ip.run_line_magic("config", "LayerLab.backend = 'echo'")
        assert ip.user_ns["layerlab_engine"] is None
        result, out, _ = run(ip, "dps", "-a")
        assert EchoBackend.calls[-1] == ("ps", "-a") and result.exit_code == 7 and result.text == "echo: ps -a\n"
        graph, _, err = run(ip, "dgraph", "")
        assert graph.exit_code == 1 and err.startswith("Error: ")
    finally:
        ip.run_line_magic("config", "LayerLab.backend = 'layerlab'")
        backend_mod.BACKENDS.pop("echo", None)
    assert isinstance(ip.user_ns["layerlab_engine"], Engine)
    assert run(ip, "dimages", "-q")[0].exit_code == 0


def test_a_store_that_cannot_be_opened_is_refused(ip: InteractiveShell, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    eng = ip.user_ns["layerlab_engine"]
    (tmp_path / "file").write_text("not a directory")
    ip.run_line_magic("config", f"LayerLab.home = {str(tmp_path / 'file' / 'store')!r}")
    assert "refused" in capsys.readouterr().err
    assert ip.user_ns["layerlab_engine"] is eng and ip.run_line_magic("config", "LayerLab.home") == str(eng.home)
    assert ip.run_line_magic("dimages", "-q").exit_code == 0


def test_unknown_backend_is_refused(ip: InteractiveShell, caplog: pytest.LogCaptureFixture) -> None:
    ip.run_line_magic("config", "LayerLab.backend = 'nosuch'")  # %config reports the TraitError
    assert "unknown backend 'nosuch'; choose from layerlab" in caplog.text
    assert ip.run_line_magic("config", "LayerLab.backend") == "layerlab"


def test_registry_settings_go_to_the_store(ip: InteractiveShell) -> None:
    settings = pytest.importorskip("engine.registry.settings")
    home = ip.user_ns["layerlab_engine"].home
    try:
        ip.run_line_magic("config", "LayerLab.registry_mirror = '127.0.0.1:5999'")
        ip.run_line_magic("config", "LayerLab.allow_internet = True")
        ip.run_line_magic("config", "LayerLab.insecure_registries = ['registry.lan:5000']")
        stored = settings.load(home)
        assert (stored.hub_mirror, stored.allow_internet, stored.insecure_registries) == \
            ("127.0.0.1:5999", True, ("registry.lan:5000",))
    finally:
        ip.run_line_magic("config", "LayerLab.registry_mirror = '127.0.0.1:5000'")
        ip.run_line_magic("config", "LayerLab.allow_internet = False")
        ip.run_line_magic("config", "LayerLab.insecure_registries = []")


# --- verbs that arrive with other branches --------------------------------------------------------------------

def _require_verb(*argv: str) -> None:
    from engine.cli_parser import UsageError, parse_args

    try:
        parse_args(list(argv))
    except UsageError:
        pytest.skip(f"verb not available on this branch: layerlab {argv[0]}")


def test_dpush_dpull_dsearch_on_a_real_registry(ip: InteractiveShell, docker_registry: Any) -> None:
    _require_verb("push", "x")
    registry = docker_registry()
    ref = f"{registry.host}/whoami/magic_web"
    run(ip, "dtag", f"busybox {ref}")
    pushed, out, err = run(ip, "dpush", ref)
    assert pushed.exit_code == 0, err
    assert f"The push refers to repository [{ref}]" in out and "latest: digest: sha256:" in out
    run(ip, "drmi", ref)
    pulled, out, err = run(ip, "dpull", ref)
    assert pulled.exit_code == 0, err
    assert "Status: " in out and ref in out


def test_dlogin_dlogout(ip: InteractiveShell, docker_registry: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _require_verb("login", "--password-stdin", "-u", "x", "x")
    registry = docker_registry(auth=True)
    # what a student types at the prompts (the kernel's input() and getpass())
    monkeypatch.setattr("builtins.input", lambda prompt: registry.user)
    monkeypatch.setattr("getpass.getpass", lambda prompt: registry.password)
    asked, out, err = run(ip, "dlogin", registry.host)
    assert asked.exit_code == 0 and "Login Succeeded" in out, err
    assert registry.password not in " ".join(asked.argv)
    bad, _, err = run(ip, "dlogin", f"-u {registry.user} -p wrong {registry.host}")
    assert bad.exit_code != 0 and err
    good, out, err = run(ip, "dlogin", f"-u {registry.user} -p {registry.password} {registry.host}")
    assert good.exit_code == 0 and "Login Succeeded" in out
    logout, out, _ = run(ip, "dlogout", registry.host)
    assert logout.exit_code == 0 and f"Removing login credentials for {registry.host}" in out


def _no_input_requests(prompt: str = "") -> str:
    """What ipykernel's input()/getpass() do when the frontend cannot ask (nbclient, nbval)."""
    from IPython.core.error import StdinNotImplementedError

    raise StdinNotImplementedError("getpass was called, but this frontend does not support input requests.")


@pytest.mark.parametrize("line", ["127.0.0.1:5999", "-u student 127.0.0.1:5999"])
def test_dlogin_without_input_requests_is_docker_s_non_tty_error(ip: InteractiveShell, line: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("builtins.input", _no_input_requests)
    monkeypatch.setattr("getpass.getpass", _no_input_requests)
    result, out, err = run(ip, "dlogin", line)
    assert (result.exit_code, out, err) == (1, "", "Error: Cannot perform an interactive login from a non TTY device\n")


def test_hub_adduser_without_input_requests_says_to_use_password_stdin(ip: InteractiveShell, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _require_verb("hub", "adduser", "x")
    monkeypatch.setattr("getpass.getpass", _no_input_requests)
    result, out, err = run(ip, "docker", f"hub adduser --root {tmp_path / 'hub'} carol")
    assert result.exit_code == 1 and out == ""
    assert err.count("\n") == 1 and "use --password-stdin" in err, err
    assert not (tmp_path / "hub" / "hub" / "accounts.json").exists()


def test_dregistry_status(ip: InteractiveShell) -> None:
    _require_verb("registry", "status")
    result, out, err = run(ip, "dregistry", "status")
    assert result.exit_code in (0, 1) and (out or err)


def test_dgraph_draws_the_store(ip: InteractiveShell) -> None:
    pytest.importorskip("kernel_ext.graph")
    result, _, err = run(ip, "dgraph", "")
    assert result.exit_code == 0, err
    assert result._repr_svg_().lstrip().startswith(("<svg", "<?xml"))


def test_dexplore_opens_the_explorer(ip: InteractiveShell) -> None:
    widgets = pytest.importorskip("kernel_ext.widgets")
    explorer, _, _ = run(ip, "dexplore", "busybox")
    assert isinstance(explorer, widgets.LayerExplorer)
    missing, _, err = run(ip, "dexplore", "magic_nosuch")
    assert missing.exit_code == 1 and "No such image" in err


def test_unload_and_load_again(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    import kernel_ext

    home = ip.user_ns["layerlab_engine"].home
    kernel_ext.unload_ipython_extension(ip)
    assert ip.find_line_magic("dimages") is None and ip.find_cell_magic("dbuild") is None
    assert not any(type(c).__name__ == "LayerLab" for c in ip.configurables)
    ip.config.LayerLab.backend = "nosuch"  # a bad setting is reported, not fatal
    try:
        kernel_ext.load_ipython_extension(ip)
    finally:
        del ip.config.LayerLab["backend"]
    assert "LayerLab.backend ignored: unknown backend 'nosuch'" in capsys.readouterr().err
    ip.run_line_magic("config", f"LayerLab.home = {str(home)!r}")
    assert ip.user_ns["layerlab_engine"].home == home
    assert ip.run_line_magic("dimages", "-q").text
    kernel_ext.unload_ipython_extension(ip)
    ip.config.LayerLab.home = "/proc/version/store"  # cannot be a store: the default one is used
    try:
        kernel_ext.load_ipython_extension(ip)
        assert "cannot use the configured store" in capsys.readouterr().err
        assert ip.user_ns["layerlab_engine"].home == Path(os.environ["LAYERLAB_HOME"])
    finally:
        ip.run_line_magic("config", f"LayerLab.home = {str(home)!r}")
    assert ip.user_ns["layerlab_engine"].home == home


def test_a_table_magic_ends_a_cell_with_its_table_and_a_semicolon_silences_it(ip: InteractiveShell) -> None:
    import sys

    shown = []
    for source in ("%dimages", "%dimages;"):
        probe = Probe()
        saved = sys.stdout
        sys.stdout = probe
        try:
            ip.run_cell(source, store_history=True)
        finally:
            sys.stdout = saved
        shown.append(probe.text)
    assert "REPOSITORY" in shown[0] and "busybox" in shown[0]
    assert shown[1] == ""


def test_classroom_hub_search_and_pull_through_the_configured_mirror(ip: InteractiveShell) -> None:
    _require_verb("search", "x")
    _require_verb("registry", "start", "--hub")
    from tests.fixtures.registry import free_loopback_port

    port = free_loopback_port()
    started, out, err = run(ip, "dregistry", f"start --hub --port {port}")
    assert started.exit_code == 0, err
    try:
        ip.run_line_magic("config", f"LayerLab.registry_mirror = '127.0.0.1:{port}'")  # docker.io → the hub
        found, out, _ = run(ip, "dsearch", "busybox")
        assert out == "" and found.headers == ("NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED")
        assert found.rows[0]["NAME"] == "busybox" and found.rows[0]["OFFICIAL"] == "[OK]"
        assert len(html_rows(found._repr_html_())) == len(found.rows) + 1
        run(ip, "drmi", "hello-world")
        pulled, out, err = run(ip, "dpull", "hello-world")
        assert pulled.exit_code == 0, err
        assert "Status: Downloaded newer image for hello-world:latest" in out
        assert "hello-world" in run(ip, "dimages", "")[0].column("REPOSITORY")
    finally:
        run(ip, "dregistry", "stop")
        ip.run_line_magic("config", "LayerLab.registry_mirror = '127.0.0.1:5000'")
