# One command per chore. `make demo` and `make test` work on a fresh machine with Python >= 3.11.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Strict editable mode links files into build/, so mypy can follow the package-dir mapping.
EDITABLE := --config-settings editable_mode=strict
# Azure Blob emulator for the store tests, installed into the project (never globally) by npm.
AZURITE  := .cache/azurite/node_modules/.bin/azurite-blob
# A clean venv that gets the built wheel, as a user's pip install would (never the editable install).
SMOKE    := .cache/smoke-venv

.PHONY: demo install install-test system-deps lint fmt dist smoke test bench teams-package clean

demo: install  ## run the example workflow locally and answer it in a browser
	$(BIN)/hitl-chatops demo

install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(EDITABLE) -e '.[all]'
	touch $@

install-test: $(VENV)/.installed-test system-deps $(AZURITE)
$(VENV)/.installed-test: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(EDITABLE) -e '.[test]'
	touch $@ $(VENV)/.installed

system-deps:  ## Debian's chromium for the browser tests (Playwright drives it; no browser download)
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

$(AZURITE):  ## Azurite (Microsoft's Azure Blob emulator) for the store tests; node and npm from Debian if missing
	@command -v npm >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq nodejs npm >/dev/null; }
	npm install --prefix .cache/azurite --no-audit --no-fund --loglevel=error azurite@3
	touch $@

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p hitl_chatops
	$(BIN)/lint-imports --no-cache --no-logo

fmt: install-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

dist: install-test  ## the sdist and the wheel (built from the sdist), as a release makes them; twine checks both
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

# pip's own cache serves the dependencies; no bytecode compiling and no pip inside the venv keep it quick.
smoke: dist  ## install the wheel with [all] into a clean venv and run the example from that install
	rm -rf $(SMOKE)
	$(PYTHON) -m venv --without-pip $(SMOKE)
	$(BIN)/pip --python $(SMOKE)/bin/python install -q --no-compile "$$(echo dist/hitl_chatops-*.whl)[all]"
	$(SMOKE)/bin/python tests/smoke_installed.py "$$($(BIN)/python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"

test: install-test lint smoke  ## everything CI runs (the suite on four workers: it mostly waits on loopback servers)
	$(BIN)/pytest -n 4

bench: install-test
	for script in bench/*.py; do case $$script in */_*) ;; *) $(BIN)/python $$script ;; esac; done

teams-package: install
	$(BIN)/python manifests/teams/package.py

clean:
	rm -rf $(VENV) build dist *.egg-info test-artifacts .cache
