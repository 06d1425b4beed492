# vtforge: two commands do all the set-up on a fresh machine.
#   make demo   installs what is missing, then runs the main job on the embedded default
#   make test   installs what is missing, then runs every test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
EXTRAS ?= dev,kafka,sandbox,pipelines,train,selfplay,model,corpus
STAMP := $(VENV)/.installed-$(shell (cat pyproject.toml; echo "$(EXTRAS)") 2>/dev/null | cksum | cut -d' ' -f1)
# the Rust decoder (native/): rebuilt when its sources change; cargo's build cache outlives the clone
NATIVE_STAMP := $(VENV)/.native-$(shell cat native/Cargo.toml native/Cargo.lock native/pyproject.toml native/src/*.rs 2>/dev/null | cksum | cut -d' ' -f1)
export PATH := $(HOME)/.cargo/bin:$(PATH)
export CARGO_TARGET_DIR ?= $(HOME)/.cache/vtforge/native-target
# the oldest DuckDB pyproject.toml allows, installed aside (never imported by vtforge): a test opens
# the warehouse with it, proving forge.warehouse.storage_version keeps the file readable by 1.x
OLDEST_DUCKDB := 1.3.2
export OLDEST_DUCKDB_DIR := $(HOME)/.cache/vtforge/duckdb-$(OLDEST_DUCKDB)

.PHONY: demo test lint typecheck bench setup system venv native oldest-duckdb clean-data vtcode record-vtcode

demo: setup
	$(VENV)/bin/vtforge demo

test: setup lint typecheck
	$(PY) -m pytest $(PYTEST_ARGS)

# style, formatting and the one direction of imports (pyproject.toml [tool.importlinter])
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

# basedpyright over the package (~40 s on 2 cores); errors that predate it live in
# .basedpyright/baseline.json, so only a new one fails (`$(VENV)/bin/basedpyright --writebaseline`
# records fixes)
typecheck: venv
	$(VENV)/bin/basedpyright --pythonpath $(PY)

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

setup: venv native system oldest-duckdb

venv: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(UV): | $(PY)
	$(PY) -m pip install -q --upgrade uv

# llama-cpp-python ships only an sdist (a C++ build, ~5 min on 2 cores): build its wheel once per
# machine into WHEELS and install from there, since uv rebuilds that sdist in every fresh clone
WHEELS := $(HOME)/.cache/vtforge/wheels
LLAMA_CPP := llama-cpp-python>=0.3.16,<0.4

# --compile-bytecode, as pip does by default: sandboxed runs never write bytecode
# (PYTHONDONTWRITEBYTECODE), so without it every cold run and warm worker compiled pytest,
# hypothesis and the plugins from source (0.6 s of a warm worker's 0.9 s start)
$(STAMP): pyproject.toml | $(UV)
	@mkdir -p $(WHEELS)
	@if [[ ",$(EXTRAS)," == *",model,"* ]] && ! ls $(WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1; then \
		echo "building the llama-cpp-python wheel once into $(WHEELS)"; \
		$(PY) -m pip wheel -q --no-deps -w $(WHEELS) "$(LLAMA_CPP)"; \
	fi
	$(UV) pip install --python $(PY) -q --compile-bytecode --find-links $(WHEELS) -e ".[$(EXTRAS)]"
	rm -f $(VENV)/.installed-*
	touch $@

native: $(NATIVE_STAMP)

oldest-duckdb: $(OLDEST_DUCKDB_DIR)/duckdb

$(OLDEST_DUCKDB_DIR)/duckdb: | $(UV)
	$(UV) pip install --python $(PY) -q --target $(OLDEST_DUCKDB_DIR) "duckdb==$(OLDEST_DUCKDB)"

$(NATIVE_STAMP): $(STAMP)
	@if command -v cargo >/dev/null; then \
		$(UV) pip install --python $(PY) -q --reinstall ./native && rm -f $(VENV)/.native-* && touch $@; \
	else \
		echo "cargo not found: vtforge_native not built; ingestion decodes with fastavro (slower)" >&2; \
	fi

system:
	bash scripts/setup.sh

clean-data:
	rm -rf .forge

# The real VT Code binary, pinned (docs/VTCODE.md): not part of `make test`, a cold build takes over an
# hour on 2 cores (the final LTO link alone is long). The target folder is cached per machine, so a
# rerun resumes; the binary lands in $(VTCODE_ROOT)/bin/vtcode (what VTFORGE_VTCODE_BIN can name).
# forge.vtcode.version in vtcode.toml (make vtcode VTCODE_VERSION=x.y.z overrides it)
VTCODE_VERSION ?= $(shell sed -n '/^\[forge.vtcode\]/,/^\[/s/^version *= *"\([0-9.]*\)".*/\1/p' vtcode.toml)
VTCODE_ROOT := $(HOME)/.cache/vtforge/vtcode/$(VTCODE_VERSION)

vtcode: $(VTCODE_ROOT)/bin/vtcode

$(VTCODE_ROOT)/bin/vtcode:
	CARGO_TARGET_DIR=$(HOME)/.cache/vtforge/vtcode/target cargo install vtcode --version $(VTCODE_VERSION) --locked --root $(VTCODE_ROOT)

# re-record tests/vtcode/recordings with the pinned binary (offline, a scripted model server)
record-vtcode: vtcode venv
	$(PY) scripts/record_vtcode.py --binary $(VTCODE_ROOT)/bin/vtcode
