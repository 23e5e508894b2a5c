"""nbval set-up for the course notebooks: each notebook runs against a fresh, private store."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# `!layerlab …` cells need the console script of the Python running the tests
_bin = os.path.dirname(sys.executable)
if _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")

_current: dict[str, str] = {}


def _forget(home: str) -> None:
    """Stop a registry the notebook left running (nbval kills its kernel: no atexit), then delete its home."""
    try:
        from engine.registry.service import stop
    except ImportError:
        pass
    else:
        stop(Path(home) / "store")
    shutil.rmtree(home, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # nbval starts a notebook's kernel when its first cell is set up; give that kernel a new home
    notebook = str(item.fspath)
    if _current.get("notebook") != notebook:
        if _current.get("home"):
            _forget(_current["home"])
        _current["notebook"] = notebook
        _current["home"] = tempfile.mkdtemp(prefix="layerlab-nb-")
        os.environ["LAYERLAB_HOME"] = os.path.join(_current["home"], "store")


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _current.get("home"):
        _forget(_current["home"])
