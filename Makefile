# vtforge: two commands do all the set-up on a fresh machine.
#   make demo   installs what is missing, then runs the main job on the embedded default
#   make test   installs what is missing, then runs every test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
EXTRAS ?= dev,kafka,sandbox,pipelines,train,selfplay
STAMP := $(VENV)/.installed-$(shell (cat pyproject.toml; echo "$(EXTRAS)") 2>/dev/null | cksum | cut -d' ' -f1)

.PHONY: demo test lint bench setup system venv clean-data

demo: setup
	$(VENV)/bin/vtforge demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

setup: venv system

venv: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(UV): | $(PY)
	$(PY) -m pip install -q --upgrade uv

$(STAMP): pyproject.toml | $(UV)
	$(UV) pip install --python $(PY) -q -e ".[$(EXTRAS)]"
	rm -f $(VENV)/.installed-*
	touch $@

system:
	bash scripts/setup.sh

clean-data:
	rm -rf .forge
