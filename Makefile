# One command per chore. `make demo` and `make test` work on a fresh machine with Python >= 3.11.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Strict editable mode links files into build/, so mypy can follow the package-dir mapping.
EDITABLE := --config-settings editable_mode=strict
# Azure Blob emulator for the store tests, installed into the project (never globally) by npm.
AZURITE  := .cache/azurite/node_modules/.bin/azurite-blob

.PHONY: demo install install-test system-deps lint fmt test bench teams-package clean

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
	$(BIN)/mypy -p hitl_chatops.bot -p hitl_chatops.plugin -p hitl_chatops.adapters

fmt: install-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install-test lint  ## everything CI runs
	$(BIN)/pytest

bench: install-test
	for script in bench/*.py; do case $$script in */_*) ;; *) $(BIN)/python $$script ;; esac; done

teams-package: install
	$(BIN)/python manifests/teams/package.py

clean:
	rm -rf $(VENV) build dist *.egg-info test-artifacts .cache
