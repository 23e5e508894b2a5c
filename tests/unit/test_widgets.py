"""Widget state (kernel_ext.widgets), read from traitlets without a browser."""
from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass

import pytest

from engine import Engine
from engine.builder import BuildOptions
from kernel_ext.widgets import BuildLog, ImageBrowser, LayerExplorer, TransferProgress

needs_busybox = pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="busybox-static is not installed")


@pytest.fixture
def engine(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    eng = Engine(tmp_path / "home")
    eng.bootstrap()
    yield eng
    eng.close()


def fed_log(engine: Engine, text: str, *tags: str) -> BuildLog:
    log = BuildLog()
    for event in engine.build(BuildOptions(dockerfile_text=text, tags=tags)):
        log.feed(event)
    return log


# --- BuildLog -------------------------------------------------------------------------------------------

@needs_busybox
def test_build_log_steps_progress_and_output(engine: Engine) -> None:
    text = "FROM busybox\nRUN echo from-the-step\nLABEL a=b\n"
    first = fed_log(engine, text, "logged")
    assert first.status == "done" and first.tags == ["logged:latest"]
    assert (first.current, first.total) == (3, 3)
    assert [s["status"] for s in first.steps] == ["from", "ran", "ran"]
    assert [s["text"] for s in first.steps] == ["FROM busybox", "RUN echo from-the-step", "LABEL a=b"]
    bar = first.children[0].children[0]
    assert (bar.value, bar.max, bar.description, bar.bar_style) == (3, 3, "Step 3/3", "success")
    assert "from-the-step" in first.log and "Successfully tagged logged:latest" in first.log
    accordion = first.children[2]
    assert accordion.selected_index is None                      # output collapsed by default
    assert "from-the-step" in accordion.children[0].value
    assert first.image_id == engine.image_id("logged")

    again = fed_log(engine, text, "logged")
    assert [s["status"] for s in again.steps] == ["from", "cached", "cached"]
    assert "layerlab-step-cached" in again.children[1].value


@needs_busybox
def test_build_log_failure(engine: Engine) -> None:
    log = fed_log(engine, "FROM busybox\nRUN exit 7\n")
    assert log.status == "failed"
    assert log.steps[-1]["status"] == "failed"
    assert "returned a non-zero code: 7" in log.error
    assert log.children[0].children[0].bar_style == "danger"


# --- TransferProgress with stand-ins shaped like engine/registry/events.py ---------------------------

@dataclass(frozen=True)
class Header:
    text: str


@dataclass(frozen=True)
class LayerProgress:
    id: str
    status: str
    current: int = 0
    total: int = 0


@dataclass(frozen=True)
class Pushed:
    tag: str
    digest: str
    size: int


@dataclass(frozen=True)
class Pulled:
    reference: str
    digest: str
    image_id: str
    status: str


def test_transfer_progress_push() -> None:
    t = TransferProgress()
    digest = "sha256:" + "c" * 64
    for event in [Header("The push refers to repository [127.0.0.1:5000/whoami/static_web]"),
                  LayerProgress("aaaaaaaaaaaa", "Preparing"), LayerProgress("bbbbbbbbbbbb", "Preparing"),
                  LayerProgress("aaaaaaaaaaaa", "Pushing", 512, 2048),
                  LayerProgress("bbbbbbbbbbbb", "Layer already exists")]:
        t.feed(event)
    assert t.layers["aaaaaaaaaaaa"] == {"status": "Pushing", "current": 512, "total": 2048}
    assert t.fraction("aaaaaaaaaaaa") == 0.25
    assert t.fraction("bbbbbbbbbbbb") == 1.0 and not t.done
    rows = t.children[1].children
    assert len(rows) == 2
    bar, label = rows[0].children
    assert (bar.description, bar.value, bar.max) == ("aaaaaaaaaaaa", 512, 2048)
    assert label.value.startswith("Pushing")
    t.feed(LayerProgress("aaaaaaaaaaaa", "Pushed"))
    assert t.fraction("aaaaaaaaaaaa") == 1.0 and rows[0].children[0].bar_style == "success"
    t.feed(Pushed("latest", digest, 942))
    assert t.done and t.result == f"latest: digest: {digest} size: 942"
    assert "static_web" in t.children[0].value


def test_transfer_progress_pull() -> None:
    t = TransferProgress()
    t.feed(Header("latest: Pulling from whoami/static_web"))
    t.feed(LayerProgress("dddddddddddd", "Pulling fs layer"))
    t.feed(LayerProgress("dddddddddddd", "Downloading", 100, 400))
    assert t.fraction("dddddddddddd") == 0.25
    t.feed(LayerProgress("dddddddddddd", "Extracting", 300, 400))
    t.feed(LayerProgress("dddddddddddd", "Pull complete"))
    assert t.fraction("dddddddddddd") == 1.0
    t.feed(Pulled("127.0.0.1:5000/whoami/static_web:latest", "sha256:" + "e" * 64, "sha256:" + "f" * 64,
                  "Downloaded newer image for 127.0.0.1:5000/whoami/static_web:latest"))
    assert t.done and t.result.splitlines()[1].startswith("Status: Downloaded newer image")


# --- LayerExplorer and ImageBrowser -----------------------------------------------------------------------

def _base_content_size(engine: Engine) -> int:
    diff_id = engine.store.image_diff_ids(engine.image_id("busybox"))[0]
    with tarfile.open(fileobj=io.BytesIO(engine.store.read_blob(diff_id))) as tar:
        return sum(m.size for m in tar.getmembers())


@needs_busybox
def test_layer_explorer(engine: Engine) -> None:
    fed_log(engine, "FROM busybox\nRUN head -c 1000 /dev/zero > /big\nRUN rm /big && echo hi > /small\n", "waste")
    x = LayerExplorer(engine, "waste")
    base = _base_content_size(engine)
    # /big: 1000 bytes in layer 1, removed in layer 2 -> 1000 wasted; /small (3 bytes) is seen once
    assert x.wasted_bytes == 1000
    assert x.efficiency == pytest.approx((base + 3) / (base + 1000 + 3))
    assert x.image_id == engine.image_id("waste")
    layers = x.children[1]
    assert len(layers.options) == 3 and "head -c 1000" in layers.options[1][0]
    x.selected = 1
    assert any(line.startswith("A") and line.endswith("big") for line in x.tree_text.splitlines())
    layers.value = 2                                               # the view drives the trait too
    assert x.selected == 2
    marks = {line.split()[-1]: line[0] for line in x.tree_text.splitlines()}
    assert marks["big"] == "D" and marks["small"] == "A"
    assert "busybox" not in x.tree_text
    x.aggregated = True
    assert "busybox" in x.tree_text and x.children[2].value is True
    assert "color:#d0342c" in x.children[3].value                   # the D line is drawn red
    assert "1000 bytes" in x.children[0].value


@needs_busybox
def test_image_browser(engine: Engine) -> None:
    fed_log(engine, "FROM busybox\nRUN echo browsed > /b\n", "browsed")
    b = ImageBrowser(engine)
    assert sorted(r["id"] for r in b.images) == sorted(s.id for s in engine.images())
    b.children[0].value = engine.image_id("browsed")
    assert b.selected == engine.image_id("browsed")
    assert "/bin/sh -c echo browsed > /b" in b.history_text
    assert "Imported from -" in b.history_text
    explorer = b.explore()
    assert explorer.image_id == b.selected and b.explorer_box.children == (explorer,)
    b.children[2].children[1].value = "cat /b"                     # the command box
    assert b.command == "cat /b"
    assert b.run() == 0 and b.run_output == "browsed\n"
    b.command = "sh -c 'echo bad >&2; exit 4'"
    assert b.run() == 4 and "bad" in b.run_output and "[exit code 4]" in b.children[3].value
    assert not engine.containers(all=True)                           # runs are --rm


@needs_busybox
def test_layer_explorer_of_an_image_without_layers(engine: Engine) -> None:
    fed_log(engine, "FROM scratch\nCMD [\"true\"]\n", "empty")
    x = LayerExplorer(engine, "empty")
    assert x.analysis.layers == () and x.efficiency == 1.0 and x.wasted_bytes == 0
    assert x.tree_text == "" and "no layers" in x.children[3].value
