# bbeval — the two commands a new user runs are `make demo` and `make test`; both set up what is missing.
#
# The venv (libtorch) and cargo's target directory live under $(CACHE), outside the clone, so a second
# clone or CI run reuses a ~25-minute release build. The binary's rpath points into that venv (build.rs).
# Demo, tests, benches and the CI gate share one build profile (release) and one feature resolution
# (Cargo.toml unifies the dev-dependencies' features), so no dependency is compiled twice.
CACHE      ?= $(HOME)/.cache/bbeval
VENV       ?= $(CACHE)/venv
PY         := $(VENV)/bin/python
export CARGO_TARGET_DIR ?= $(CACHE)/target
export VIRTUAL_ENV := $(VENV)
export PATH := $(VENV)/bin:$(PATH)
export LIBTORCH_USE_PYTORCH := 1
CARGO      := cargo
BIN        := $(CARGO_TARGET_DIR)/release/bbeval

.PHONY: setup venv assets build demo test ci-smoke bench figures clean-cache import-tfhub tfhub-env slurm-test gpu-bundle gpu-recipe-bundle gpu-check-cpu gpu-recipe-cpu
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

# The shipped mini BigBiGAN's generator weights (1.7 MB) are not committed: they are re-created from the
# committed checkpoint (two threads: the bits of BN calibration depend on the thread count; the committed
# manifest's sha256 shows whether this machine gave the same bits).
G_EXPORT   := results/bigbigan-fmnist/export/bigbigan-fmnist-g
build: setup
	$(CARGO) build --release --bin bbeval
	@test -f $(G_EXPORT).pt || $(BIN) train-bigbigan --config eval/bigbigan-fmnist.toml --export-generator --threads 2 -q

# The demo's results are the project's own reference: each run replaces them.
demo: build
	$(BIN) run eval/demo.toml --overwrite

# The TF Hub import's tools (their own venvs, ~2 min once) are part of the test setup: the import is tested
# end to end on synthetic modules.
test: setup tfhub-env
	$(CARGO) test --release -- --test-threads=1

tfhub-env:
	bash tools/tfhub/setup_env.sh > /dev/null

# The CI gate: re-run eval/ci-smoke.toml (cache hits after `make test`) and hold it to the committed
# baseline; exits 1 with a table of what regressed.
ci-smoke: build
	$(BIN) check --baseline results/ci-smoke/results.json --device cpu

bench: setup
	$(CARGO) bench --bench pipeline

# Python side of the figures in the README (same files, same machine).
figures: setup build
	$(PY) tools/bench_python.py

# Import a TF Hub module (folder or .tar.gz) as a verified encoder (+ generator) into assets/encoders/:
#   make import-tfhub MODULE=bigbigan-resnet50.tar.gz NAME=bigbigan-resnet50 [ARCH=ResNet-50]
import-tfhub: build
	@test -n "$(MODULE)" -a -n "$(NAME)" || { echo "usage: make import-tfhub MODULE=<dir or .tar.gz> NAME=<name> [ARCH=<architecture>]"; exit 2; }
	$(BIN) import-tfhub --module "$(MODULE)" --name "$(NAME)" $(if $(ARCH),--architecture "$(ARCH)")

# A one-node Slurm on this machine (Debian slurm-wlm + munge): an array of extraction shards, the dependent
# merge and probe jobs, checked against a single-process run; cleans up after itself.
slurm-test: build
	tools/slurm/slurm_test.sh

# Everything the lent GPU machine needs (its image has torch but no Rust), ≤ 50 MiB.
gpu-bundle: build
	tools/make_gpu_bundle.sh gpu-bundle

# The GPU recipe's bundle alone (binary, libraries, a font, tools/gpu_recipe.sh, configs: 7.9 MiB), so that one device
# call can carry it beside assets/fashion-mnist.
gpu-recipe-bundle: build
	tools/make_gpu_bundle.sh --recipe gpu-bundle

# The GPU check in its CPU mode (tiny sizes), to keep the script working where there is no GPU.
gpu-check-cpu: build
	BBEVAL=$(BIN) PYTHON=$(PY) tools/gpu_check.sh --cpu-mode gpu-check-cpu.md

# The GPU recipe's one-call script in its CPU mode (4 steps, scratch run folder), to keep it working where
# there is no GPU.
gpu-recipe-cpu: build
	BBEVAL=$(BIN) PYTHON=$(PY) tools/gpu_recipe.sh --cpu-mode gpu-recipe-cpu

clean-cache:
	rm -rf .bbeval-cache
