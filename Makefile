# TextNLP — `make run` generates a dataset with the embedded model; `make test` runs every test.
# Both create or update .venv by themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# llama-cpp-python has no wheel on the registry: it is compiled once and kept in a wheelhouse.
# Its x86 kernels are picked for this CPU as Linux reports it: AVX-512 (with VNNI, VBMI and BF16
# where present) or else AVX2 (`make venv LLAMA_KERNELS=avx2` forces it). Never AMX, nor a
# native build that picks it: AMX kernels stop with "Illegal instruction" in VMs that advertise
# it (a Sapphire Rapids VM, where AVX-512 runs the engine's batched steps 1.10-1.20x as fast as
# AVX2: bench/kernels.py).
LLAMA_VERSION := 0.3.36
CPU_FLAGS := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
cpu_has = $(if $(filter $(1),$(CPU_FLAGS)),$(2),$(3))
LLAMA_KERNELS ?= $(if $(filter-out $(CPU_FLAGS),avx512f avx512cd avx512vl avx512dq avx512bw),avx2,avx512)
ifeq ($(LLAMA_KERNELS),avx512)
LLAMA_TAG := avx512$(call cpu_has,avx512_vnni,-vnni)$(call cpu_has,avx512vbmi,-vbmi)$(call cpu_has,avx512_bf16,-bf16)
LLAMA_AVX512 := -DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VNNI=$(call cpu_has,avx512_vnni,ON,OFF) \
	-DGGML_AVX512_VBMI=$(call cpu_has,avx512vbmi,ON,OFF) -DGGML_AVX512_BF16=$(call cpu_has,avx512_bf16,ON,OFF)
else
LLAMA_TAG := avx2
LLAMA_AVX512 := -DGGML_AVX512=OFF
endif
# The kernels' flags alone: bench/llama_tools.py builds llama.cpp's own tools with them.
LLAMA_KERNEL_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	$(LLAMA_AVX512) -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_BF16=OFF
LLAMA_CMAKE_ARGS := $(LLAMA_KERNEL_ARGS) -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF \
	-DLLAMA_BUILD_EXAMPLES=OFF
WHEELHOUSE := $(HOME)/.cache/textnlp/wheels/llama-cpp-$(LLAMA_VERSION)-$(LLAMA_TAG)
# One stamp per kernel build: another LLAMA_KERNELS installs its own wheel.
STAMP := $(VENV)/.installed-$(LLAMA_TAG)

.PHONY: venv run test test-unit test-console serve bench bench-load lint rehearse clean llama-kernels llama-wheel

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	# torch 2.13.0 is a CPU build on this machine's disk; an unpinned torch pulls a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(MAKE) --no-print-directory llama-wheel
	$(BIN)/pip install --quiet --force-reinstall --no-deps $(WHEELHOUSE)/llama_cpp_python-*.whl
	$(BIN)/pip install --quiet -e '.[all,dev,infra]'
	$(BIN)/python -c "$$LLAMA_SMOKE" || { echo "llama.cpp's $(LLAMA_TAG) kernels do not run on \
	this CPU: make venv LLAMA_KERNELS=avx2" >&2; exit 1; }
	touch $(STAMP)

# A few tokens through the installed kernels: a CPU that cannot run them fails here, with advice.
define LLAMA_SMOKE
import llama_cpp
from textnlp.backends.llamacpp import resolve_model_path
llm = llama_cpp.Llama(str(resolve_model_path("embedded:smollm2")), n_ctx=64, verbose=False)
llm.eval(llm.tokenize(b"Hello, world"))
endef
export LLAMA_SMOKE

# `<tag> <cmake flags>` of the kernels this machine gets (bench/llama_tools.py reads it).
llama-kernels:
	@echo $(LLAMA_TAG) $(LLAMA_KERNEL_ARGS)

# The wheel for LLAMA_KERNELS, compiled once into its wheelhouse (bench/kernels.py builds both).
llama-wheel:
	@ls $(WHEELHOUSE)/llama_cpp_python-*.whl >/dev/null 2>&1 || \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel --no-cache-dir --no-deps \
		llama-cpp-python==$(LLAMA_VERSION) -w $(WHEELHOUSE)
	@echo $(WHEELHOUSE)

# The main job: a labelled dataset of 20 product reviews from the embedded SmolLM2-135M.
RUN_OUT ?= .textnlp/datasets/product-reviews.jsonl
run: venv
	$(BIN)/textnlp generate --recipe product-reviews --count 20 --out $(RUN_OUT) --validate

# Lint and types first (they fail fast), then every tier, then the deployment (its tests, the
# lints and the rehearsal).
test: venv lint
	$(BIN)/python -m pytest -q -p no:cacheprovider tests
	$(MAKE) --no-print-directory test-infra

test-unit: venv
	$(BIN)/python -m pytest -q tests/unit

# The web console's tests: unit, integration and the browser (Debian's chromium, installed with
# apt-get when missing and root); screenshots of each page go to artifacts/console/.
test-console: venv
	$(BIN)/python -m pytest -q tests/unit/console tests/integration/console tests/e2e/console

serve: venv
	$(BIN)/textnlp db upgrade
	$(BIN)/textnlp serve

# Each benchmark prints JSON with its baseline measured in the same run; see bench/RESULTS.md.
# bench/engine.py builds llama.cpp's llama-server and llama-batched-bench once (bench/llama_tools.py,
# the flags above; tens of minutes on 2 cores) and skips them, saying why in its JSON, if it cannot.
# Not here: bench/load.py (bench-load), bench/hf_batching.py (the GPU check runs it) and
# bench/files_listing.py (moto's server); each says how to run it in bench/RESULTS.md.
BENCHES := $(wildcard bench/engine.py bench/validation.py bench/validation_measures.py bench/leakage_containment.py bench/backends.py bench/api.py bench/jobs.py bench/recipes.py bench/openai_compat.py bench/console.py bench/prefix_reuse.py bench/recipe_shelf.py bench/engine_steps.py bench/kernels.py bench/structured_output.py bench/dataset_memory.py bench/validate_memory.py)
bench: venv
	@for script in $(BENCHES); do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# The API under load against llama.cpp's own server (about 15 minutes; builds llama-server once).
bench-load: venv
	$(BIN)/python bench/load.py

lint: venv
	$(BIN)/ruff check src tests bench infra
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	# tests and benchmarks: a lighter mypy (pyproject.toml's overrides for tests.*, bench.*)
	$(BIN)/mypy --explicit-package-bases tests bench
	cd infra && $(abspath $(BIN))/mypy --config-file mypy.ini textnlp_infra rehearsal app.py tests

clean:
	rm -rf $(VENV) .textnlp infra/cdk.out artifacts

# The AWS deployment (infra/): `make infra` synthesises it offline; `make test-infra` tests it.
include infra/infra.mk
infra test-infra rehearse: venv
