"""require_tool and the unprivileged user."""

from __future__ import annotations

import pytest

from tests.fixtures.tools import require_tool


def test_require_tool_finds_an_installed_tool() -> None:
    assert require_tool("sh").endswith("/sh")


def test_require_tool_skips_for_a_missing_tool() -> None:
    with pytest.raises(pytest.skip.Exception, match="no-such-tool-here"):
        require_tool("no-such-tool-here")


def test_unprivileged_user_runs_commands(unprivileged_user) -> None:
    result = unprivileged_user(["id", "-u"], check=True)
    assert int(result.stdout) == unprivileged_user.uid != 0
    home = unprivileged_user(["sh", "-c", 'echo "$HOME"; touch "$HOME/written"'], check=True)
    assert home.stdout.strip() == str(unprivileged_user.home)
    assert (unprivileged_user.home / "written").exists()
