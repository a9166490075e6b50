# bbeval — the two commands a new user runs are `make demo` and `make test`; both set up what is missing.
#
# The venv (libtorch) and cargo's target directory live under $(CACHE), outside the clone, so a second
# clone or CI run reuses a ~25-minute release build. The binary's rpath points into that venv (build.rs).
CACHE      ?= $(HOME)/.cache/bbeval
VENV       ?= $(CACHE)/venv
PY         := $(VENV)/bin/python
export CARGO_TARGET_DIR ?= $(CACHE)/target
export VIRTUAL_ENV := $(VENV)
export PATH := $(VENV)/bin:$(PATH)
export LIBTORCH_USE_PYTORCH := 1
# One build profile (release) for the binary, the tests and the benches.
CARGO      := cargo
BIN        := $(CARGO_TARGET_DIR)/release/bbeval

.PHONY: setup venv assets build demo test ci-smoke bench figures clean-cache
setup: venv assets

venv: $(VENV)/.bbeval-ok
$(VENV)/.bbeval-ok: tools/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r tools/requirements.txt
	touch $@

assets: assets/.bbeval-ok
assets/.bbeval-ok: $(VENV)/.bbeval-ok tools/assets.toml tools/setup_assets.py tools/export_efficientnet_lite0.py
	$(PY) tools/setup_assets.py
	touch $@

build: setup
	$(CARGO) build --release --bin bbeval

demo: build
	$(BIN) run eval/demo.toml

test: setup
	$(CARGO) test --release -- --test-threads=1

# The CI gate: re-run eval/ci-smoke.toml (cache hits after `make test`) and hold it to the committed
# baseline; exits 1 with a table of what regressed.
ci-smoke: build
	$(BIN) check --baseline results/ci-smoke/results.json --cpu

bench: setup
	$(CARGO) bench --bench pipeline

# Python side of the figures in the README (same files, same machine).
figures: setup build
	$(PY) tools/bench_python.py

clean-cache:
	rm -rf .bbeval-cache
