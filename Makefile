# LayerLab — `make lab` opens the course, `make test` runs the whole suite, `make bench` measures.
SHELL := /bin/sh
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LAB_PORT ?= 8888
LAB_ARGS ?=
PYTEST_ARGS ?=
# notebooks and the tests call `layerlab`: put the project's venv first on PATH
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

RUNTIME_PACKAGES := graphviz busybox-static
TEST_PACKAGES := skopeo umoci oci-image-tool docker-registry docker.io chromium

.PHONY: lab test bench setup setup-test bootstrap clean

# The main job: set up if needed, create the base images, open JupyterLab on notebooks/.
lab: setup bootstrap
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) \
		$$( [ "$$(id -u)" -eq 0 ] && echo --allow-root ) $(LAB_ARGS)

# Set up if needed (with the real tools the tests compare against) and run the whole suite, with
# the network cut to loopback when the platform allows it.
test: setup-test
	tests/run_isolated.sh $(PY) -m pytest $(PYTEST_ARGS)

bench: setup-test
	tests/run_isolated.sh $(PY) -m bench

setup: $(VENV)/.installed
	@scripts/ensure_packages.sh $(RUNTIME_PACKAGES)
	@# byte-compile once (imports read .pyc even where PYTHONDONTWRITEBYTECODE is set)
	@$(PY) -m compileall -q engine kernel_ext bench

setup-test: setup
	@scripts/ensure_packages.sh $(TEST_PACKAGES)

bootstrap: setup
	$(VENV)/bin/layerlab bootstrap

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || scripts/ensure_packages.sh python3-venv
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	@touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
