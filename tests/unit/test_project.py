"""The project's set-up promises: two commands, matching dependency lists, CI = make test."""
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# conda-forge names of PyPI distributions where they differ
CONDA_NAME = {"graphviz": "python-graphviz"}


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec.strip(), maxsplit=1)[0].lower()


def conda_dependencies() -> set[str]:
    deps: set[str] = set()
    for line in (ROOT / "environment.yml").read_text().splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.-]+)", line)
        if m and m.group(1) != "pip":
            deps.add(_name(m.group(1)))
    return deps


def test_environment_yml_lists_the_runtime_dependencies_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {CONDA_NAME.get(_name(d), _name(d)) for d in project["dependencies"]}
    conda = conda_dependencies()
    assert runtime <= conda, f"missing from environment.yml: {runtime - conda}"
    assert {"python", "jupyterlab", "ipywidgets", "graphviz", "python-graphviz", "requests", "nbval"} <= conda
    assert "-e ." in (ROOT / "environment.yml").read_text()


def test_pyproject_declares_the_packages_script_and_test_extra():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["name"] == "layerlab"
    assert data["project"]["scripts"]["layerlab"] == "engine.launch:main"
    assert {"engine", "kernel_ext"} <= set(data["tool"]["setuptools"]["packages"])
    assert "pytest>=8" in data["project"]["optional-dependencies"]["test"]


def test_readme_starts_with_exactly_two_commands():
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:sh|bash|console)?\n(.*?)```", text, re.S)
    assert first_block, "README has no command block"
    commands = [l for l in first_block.group(1).splitlines() if l.strip() and not l.strip().startswith("#")]
    assert commands == ["make lab", "make test"]


def test_ci_runs_make_test_and_nothing_else():
    lines = [l.strip() for l in (ROOT / ".ci" / "run").read_text().splitlines()]
    commands = [l for l in lines if l and not l.startswith("#") and not l.startswith("set ") and not l.startswith("cd ")]
    assert commands == ["make test"]


def test_makefile_installs_system_packages_it_needs():
    text = (ROOT / "Makefile").read_text()
    for pkg in ("graphviz", "busybox-static", "skopeo", "umoci", "oci-image-tool", "docker-registry", "docker.io"):
        assert pkg in text
    assert "pip install" in text and ".[test]" in text


def test_kernel_extension_loads(tmp_home):
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython()
    if ip is None:
        pytest.skip("no IPython")
    ip.run_line_magic("load_ext", "kernel_ext")
    assert "layerlab_engine" in ip.user_ns
    ip.run_line_magic("unload_ext", "kernel_ext")


def test_setup_names_missing_packages_for_an_ordinary_user(unprivileged_user):
    import tempfile

    where = Path(tempfile.mkdtemp(prefix="ll-setup-"))  # pytest's tmp_path is private to root
    where.chmod(0o755)
    script = where / "ensure_packages.sh"
    script.write_text((ROOT / "scripts" / "ensure_packages.sh").read_text())
    script.chmod(0o755)
    r = unprivileged_user([str(script), "coreutils", "layerlab-no-such-package-a", "layerlab-no-such-package-b"])
    assert r.returncode == 1
    assert "missing: layerlab-no-such-package-a layerlab-no-such-package-b" in r.stderr
    assert "sudo apt-get install layerlab-no-such-package-a layerlab-no-such-package-b" in r.stderr
    ok = unprivileged_user([str(script), "coreutils"])
    assert ok.returncode == 0 and ok.stderr == ""
