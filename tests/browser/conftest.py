"""Real-browser tests: JupyterLab on loopback, driven by Debian's chromium through playwright.

``pytest -m browser`` selects them. The demo notebook here is opened by the test, not compared by
nbval (its widget outputs only exist in a browser), so it is kept out of collection.
"""
from __future__ import annotations

import pytest

collect_ignore_glob = ["*.ipynb", "artifacts/*"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real browser (chromium) against JupyterLab on loopback")
