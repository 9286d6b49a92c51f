# One-command set-up: every target creates .venv on first use (Python 3.11, CPU torch).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= 2

.PHONY: demo test test-fast venv clean lint

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: the CPU wheel on this disk, never a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

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

clean:
	rm -rf results .snakemake
