# vsrflow: every install step lives here (CI runs `make test` on a clean clone, as root, no stdin).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON        ?= python3
VENV          ?= .venv
BIN           := $(VENV)/bin
# Pinned first: a CPU wheel here; an unpinned torch would pull a multi-GB CUDA build.
TORCH_VERSION ?= 2.13.0
# The cache (weights, samples, jobs) is the one a plain `vsrflow` uses in your shell: VSRFLOW_CACHE_DIR,
# else $XDG_CACHE_HOME/vsrflow, else ~/.cache/vsrflow (vsrflow.config); never a second, make-only one.
CACHE_DIR     := $(or $(VSRFLOW_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/vsrflow)
export VSRFLOW_TEST_CACHE ?= $(CURDIR)/.cache/test

# `make run`: the demo job on embedded defaults (no AWS account, no GPU).
RUN_MODEL ?= realesr-animevideov3
RUN_SCALE ?= 2
SAMPLE    := $(CACHE_DIR)/samples/bikes_half.mp4
OUT       ?= out

# The 25 slowest tests are listed after every run so a new slow one is seen (and marked `slow`).
# Two workers, whole files each (module fixtures such as the local stack stay in one process):
# most tests wait on Slurm, MMS or moto rather than compute, so two overlap well on two cores.
TEST_WORKERS ?= 2
PYTEST_ARGS ?= -n $(TEST_WORKERS) --dist loadfile --durations=25
# `make bench BENCH_ARGS='--device cuda --precision fp16'`; `make bench-quality QUALITY_ARGS=--render-only`
BENCH_ARGS   ?=
QUALITY_ARGS ?=

.PHONY: help install system-deps browser-deps ui run test test-fast lint typecheck contracts unit bench bench-quality clean distclean
.PHONY: bench-gpu bench-gpu-smoke bench-encode bench-overflow

help: ## show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

system-deps: ## ffmpeg/ffprobe CLI from Debian (apt-get as root, sudo otherwise)
	@if command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	else echo "vsrflow needs ffmpeg: install the Debian package 'ffmpeg' and rerun" >&2; exit 1; fi; \
	$$SUDO apt-get update -qq; \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null

browser-deps: ## Debian's chromium for the browser tests (tests/browser, driven by Playwright; no browser download)
	@if [ -x /usr/bin/chromium ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	else echo "the browser tests need Debian's chromium: install the package 'chromium' and rerun" >&2; exit 1; fi; \
	$$SUDO apt-get update -qq; \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==$(TORCH_VERSION)
	$(BIN)/pip install -q -e '.[dev,ui]'
	touch $@

install: system-deps $(BIN)/.installed ## venv with torch (pinned), vsrflow and the dev tools

$(SAMPLE): | install
	$(BIN)/vsrflow samples bikes --downscale 2 -o $@

run: install $(SAMPLE) ## upscale a sample clip (bikes.mp4 / 2) with a CPU-friendly model (weights imported on first use)
	mkdir -p $(OUT)
	$(BIN)/vsrflow upscale $(SAMPLE) -o $(OUT)/bikes_x$(RUN_SCALE).mp4 \
	  --model $(RUN_MODEL) --scale $(RUN_SCALE) --overwrite

# `make ui UI_ARGS='--local-stack'` or UI_ARGS='--aws' (README "Web page", docs/ui.md).
UI_ARGS ?=
ui: install ## serve the web page on http://127.0.0.1:8765/ (upload, jobs, compare, download)
	$(BIN)/vsrflow models import-ncnn $(RUN_MODEL) SPAN_x2_ch48
	$(BIN)/vsrflow ui $(UI_ARGS)

lint: install ## ruff lint + format check
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install ## mypy on the package
	$(BIN)/mypy

contracts: install ## import-linter layer contracts
	$(BIN)/lint-imports

unit: install slurm-deps serve-deps pcluster-venv browser-deps ## the test suite only (needs the Slurm packages for the emulator tests)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck contracts unit ## everything CI checks

test-fast: lint typecheck contracts install slurm-deps serve-deps pcluster-venv browser-deps ## the tests not marked slow (a few minutes; for the edit-test loop)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: install ## speed benchmark (vsrflow bench) -> bench/results/upscale-<device>-<host>.json
	$(BIN)/vsrflow models import-ncnn realesr-animevideov3 RealESRGAN_x4plus
	$(BIN)/vsrflow bench $(BENCH_ARGS)

bench-gpu: install ## device benchmark on a GPU node (7.5 min budget) -> bench/results/gpu-<device>.json
	$(BIN)/vsrflow models import-ncnn realesr-animevideov3 RealESRGAN_x4plus
	$(BIN)/python bench/gpu.py $(GPU_ARGS)

bench-gpu-smoke: install ## every path of the device benchmark on the CPU, tiny frames (a few minutes on 2 cores)
	$(BIN)/python bench/gpu.py --smoke --out $(or $(TMPDIR),/tmp)/gpu-smoke.json

bench-encode: install ## 4K libx264/libx265 encode fps on this machine's CPU -> bench/results/encode-<host>.json
	$(BIN)/python bench/encode.py

bench-overflow: install ## largest activation per model in fp32 (fp16 overflow check) -> bench/results/fp16-range-<host>.json
	$(BIN)/vsrflow models import-ncnn realesr-animevideov3 RealESRGAN_x4plus SPAN_x2_ch48 SPAN_x4_ch48
	$(BIN)/python bench/fp16_range.py

bench-quality: install ## quality table (~15 min on 2 cores) -> docs/quality.md, bench/results/quality-<host>.json
	$(BIN)/python bench/quality_table.py $(QUALITY_ARGS)

# Local Slurm emulator (slurm/emulator, slurm/README.md): slurmctld + one slurmd per node on this host.
SLURM_STATE_DIR ?= $(CURDIR)/.cache/slurm
SLURM_PACKAGES  := slurmctld slurmd slurm-client shellcheck
.PHONY: slurm-deps slurm-up slurm-down

slurm-deps: ## Slurm 22.05 daemons + clients and shellcheck from Debian (for the emulator and its tests)
	@missing=; for p in slurmctld slurmd sinfo sbatch shellcheck; do \
	  PATH="$$PATH:/usr/sbin:/usr/local/sbin" command -v $$p >/dev/null || missing=1; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	else echo "the Slurm emulator needs the Debian packages: $(SLURM_PACKAGES)" >&2; exit 1; fi; \
	$$SUDO apt-get update -qq; \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(SLURM_PACKAGES) >/dev/null

slurm-up: slurm-deps ## start the local Slurm (cpu + gpu partitions, fake GPUs); prints SLURM_CONF
	SLURM_EMU_STATE_DIR="$(SLURM_STATE_DIR)" bash slurm/emulator/start.sh

slurm-down: ## stop the local Slurm started by slurm-up
	SLURM_EMU_STATE_DIR="$(SLURM_STATE_DIR)" bash slurm/emulator/stop.sh

# Model endpoints (vsrflow serve): Multi Model Server needs a Java runtime; images for deployment.
IMAGE_REPO ?= vsrflow-endpoint
IMAGE_TAG  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# `make images BAKE_MODELS="realesr-animevideov3 RealESRGAN_x4plus"` bakes weights into the image.
BAKE_MODELS ?=
.PHONY: serve-deps images bench-endpoint

serve-deps: ## Java runtime for Multi Model Server (Debian openjdk-17-jre-headless)
	@if command -v java >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	else echo "vsrflow serve needs Java: install the Debian package openjdk-17-jre-headless" >&2; exit 1; fi; \
	$$SUDO apt-get update -qq; \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null

bench-endpoint: install serve-deps ## endpoint overhead per 60 s chunk vs in-process -> bench/results/endpoint-<host>.json
	$(BIN)/vsrflow models import-ncnn realesr-animevideov3
	$(BIN)/python bench/bench_endpoint.py

images: ## build + push the endpoint image: IMAGE_REPO=<registry>/vsrflow-endpoint [IMAGE_TAG=..] [BAKE_MODELS=..]
	docker build -f containers/Dockerfile --build-arg BAKE_MODELS="$(BAKE_MODELS)" \
	  -t $(IMAGE_REPO):$(IMAGE_TAG) .
	docker push $(IMAGE_REPO):$(IMAGE_TAG)

# ParallelCluster pins old attrs/marshmallow/packaging: its own venv, used by `vsrflow cluster validate`.
PCLUSTER_VENV    ?= .venv-pcluster
PCLUSTER_VERSION ?= 3.16.1
export VSRFLOW_PCLUSTER_VENV ?= $(CURDIR)/$(PCLUSTER_VENV)
.PHONY: pcluster-venv

$(PCLUSTER_VENV)/.installed-$(PCLUSTER_VERSION):
	$(PYTHON) -m venv $(PCLUSTER_VENV)
	$(PCLUSTER_VENV)/bin/pip install -q aws-parallelcluster==$(PCLUSTER_VERSION)
	$(PCLUSTER_VENV)/bin/pcluster version >/dev/null
	touch $@

pcluster-venv: $(PCLUSTER_VENV)/.installed-$(PCLUSTER_VERSION) ## venv with aws-parallelcluster (pinned) for `vsrflow cluster validate`

# The S3 trigger's Lambda package (app.py + the pure-Python vsrflow tree; boto3 comes with the runtime).
LAMBDA_ZIP ?= build/lambda/vsrflow-s3-trigger.zip
.PHONY: lambda-package wheel node-lock

lambda-package: ## build $(LAMBDA_ZIP) for infra/cfn/vsrflow.yaml (upload it to LambdaCodeBucket/LambdaCodeKey)
	$(PYTHON) lambda/build_package.py -o $(LAMBDA_ZIP)

# The wheel cluster nodes install (docs/deploy-aws.md): no dependencies bundled (node-lock pins them);
# build/lib is cleared first so a module deleted from src/ cannot linger in the wheel.
WHEEL_DIR ?= dist
wheel: install ## build $(WHEEL_DIR)/vsrflow-<version>-py3-none-any.whl for the cluster nodes (then make node-lock WHEEL=...)
	rm -rf build/lib
	$(BIN)/pip wheel -q --no-deps --no-build-isolation -w $(WHEEL_DIR) .

# The hashed requirements file nodes install with --require-hashes (bootstrap/lib.sh), made by a real
# `pip download` for the node's platform; prints its sha256 (vsrflow.requirements_sha256 in the values).
# e.g. make node-lock WHEEL=dist/vsrflow-0.1.0-py3-none-any.whl
WHEEL          ?=
NODE_LOCK_ARGS ?= --platform manylinux2014_x86_64 --python-version 3.11 --implementation cp --only-binary=:all:
node-lock: ## hashed requirements for the wheel's runtime deps + pinned pip -> <wheel dir>/vsrflow-<version>-requirements.lock
	@test -n "$(WHEEL)" || { echo "usage: make node-lock WHEEL=dist/vsrflow-<version>-py3-none-any.whl" >&2; exit 2; }
	$(BIN)/python -m vsrflow.cluster.lockfile "$(WHEEL)" $(NODE_LOCK_ARGS)
	sha256sum "$(WHEEL)" bootstrap/lib.sh

# The whole event path on this machine (`vsrflow local`, README "Local stack"): moto in server mode
# with infra/cfn/vsrflow.yaml deployed, the Lambda runner, the SSM agent shim and the local Slurm.
LOCAL_STATE_DIR ?= $(CACHE_DIR)/local
# e.g. LOCAL_ARGS='--no-slurm --head-env OMP_NUM_THREADS=1'
LOCAL_ARGS      ?=
.PHONY: local-stack-up local-stack-down

local-stack-up: install slurm-deps lambda-package ## start the local stack (prints its endpoint); then `vsrflow local upload clip.mp4`
	$(BIN)/vsrflow models import-ncnn realesr-animevideov3
	$(BIN)/vsrflow local --state-dir "$(LOCAL_STATE_DIR)" up --lambda-package $(LAMBDA_ZIP) $(LOCAL_ARGS)

local-stack-down: ## stop the local stack and its Slurm
	$(BIN)/vsrflow local --state-dir "$(LOCAL_STATE_DIR)" down

clean: ## remove outputs and tool caches (keeps the venv and weights)
	rm -rf $(OUT) .pytest_cache .mypy_cache .ruff_cache

distclean: clean ## also remove the venv and the repository's caches (not the weights in $(CACHE_DIR))
	rm -rf $(VENV) $(PCLUSTER_VENV) .cache
