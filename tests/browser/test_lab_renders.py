"""JupyterLab renders the layer graph and every widget: one real browser (Debian's chromium via playwright).

The test starts JupyterLab on 127.0.0.1 (free port, token, private LAYERLAB_HOME and Jupyter dirs),
opens ``demo_widgets.ipynb``, runs all cells with Lab's "Run All Cells" command, waits for the kernel
to be idle and checks what the page shows: the SVG graph, the live graph, the build log, the layer
explorer, the image browser and the transfer progress — no "Loading widget", no "Error displaying
widget", no error output. A screenshot is saved under ``tests/browser/artifacts/``.

Chromium may only talk to loopback: every request a page makes is checked (others are aborted and
fail the test), host names other than loopback do not resolve, and the whole run happens inside
``tests/run_isolated.sh``'s network namespace.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHROMIUM = "/usr/bin/chromium"
NOTEBOOK = "demo_widgets.ipynb"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
#: selectors of what each cell must show
RENDERED = {
    "live graph": ".layerlab-graph-widget svg",
    "static graph": ".jp-RenderedSVG img",          # %dgraph: image/svg+xml, drawn by Lab as an image
    "build log": ".layerlab-buildlog .widget-hprogress .progress-bar",
    "layer explorer": ".layerlab-explorer pre.layerlab-tree",
    "image browser": ".layerlab-imagebrowser select",
    "transfer progress": ".layerlab-transfer .widget-hprogress .progress-bar",
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"jupyter lab did not answer {url}:\n{log.read_text()[-3000:]}")


@pytest.fixture
def lab(tmp_path: Path):
    """JupyterLab on loopback serving a copy of the demo notebook; yields (base URL, token)."""
    pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make setup-test installs it)")
    root = tmp_path / "nb"
    root.mkdir()
    shutil.copy(HERE / NOTEBOOK, root / NOTEBOOK)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env.update({
        "LAYERLAB_HOME": str(tmp_path / "layerlab-home"),
        "SOURCE_DATE_EPOCH": "1700000000",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
    })
    argv = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    log = tmp_path / "jupyter.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{base}/api/status?token={token}", proc, log, time.monotonic() + 120)
        yield base, token
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        try:  # the kernels it started live in its session (process group)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


def test_lab_renders_graph_and_widgets(lab) -> None:
    from playwright.sync_api import sync_playwright

    base, token = lab
    foreign: list[str] = []

    def guard(route) -> None:
        host = urlparse(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    artifacts = HERE / "artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "lab_renders.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
                  "--disable-background-networking", "--disable-component-update", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.route("**/*", guard)
            page.set_default_timeout(120_000)
            page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'")
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            # every code cell got an execution count, and the kernel is idle again
            page.wait_for_function(
                """() => {
                    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
                    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
                    return prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p.textContent.trim()))
                        && kernel.status === 'idle';
                }""")
            try:
                for what, selector in RENDERED.items():
                    page.wait_for_selector(selector, state="attached", timeout=60_000)
                page.wait_for_function("() => !document.body.innerText.includes('Loading widget')")
            finally:
                page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot: {shot}")
                (artifacts / "lab_renders.html").write_text(page.content())
            text = page.inner_text(".jp-NotebookPanel")
            errors = page.eval_on_selector_all(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']", "els => els.map(e => e.innerText)")
            graph_text = page.text_content(".layerlab-graph-widget svg") or ""
            explorer = page.inner_text(".layerlab-explorer")
            transfer = page.inner_text(".layerlab-transfer")
            counts = page.eval_on_selector_all(".jp-CodeCell .jp-InputPrompt", "els => els.length")
        finally:
            browser.close()
    assert foreign == [], f"chromium tried to leave loopback: {foreign}"
    assert "Loading widget" not in text
    assert "Error displaying widget" not in text
    assert errors == [], json.dumps(errors)[:2000]
    assert counts == 7
    assert "bootfs" in graph_text and "demo:latest" in graph_text      # the live graph redrew after the build
    assert "whoami/demo" in graph_text                                  # ... and after the push
    assert "The push refers to repository" in transfer and "Pushed" in transfer
    assert "wasted" in explorer and "efficiency" in explorer
    assert "Successfully tagged demo:latest" in text or "built" in text
