# robustlens: `make quickstart` runs the main job, `make test` the tests; both set up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.robustlens-setup-done

.PHONY: setup quickstart test test-repeat lint format bench device-check mutate mutate-sample clean

setup: $(STAMP)

# Re-run when the dependencies or the set-up script change; skipped when already done.
$(STAMP): pyproject.toml scripts/setup.sh
	PYTHON=$(PYTHON) VENV=$(VENV) scripts/setup.sh
	touch $@

quickstart: setup
	$(PY) -m robustlens study run studies/quickstart.toml --out runs/quickstart

# lint-imports: the import contracts of pyproject.toml ([tool.importlinter]; docs/ARCHITECTURE.md).
test: setup
	$(VENV)/bin/ruff check robustlens tests benchmarks
	$(VENV)/bin/ruff format --check robustlens tests benchmarks
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest

# Timing-sensitive tests (marker `timing`: kill -9 and resume, interrupted writers), each run
# REPEAT times (pytest-repeat); pytest's closing line is the pass count. docs/TESTING.md.
REPEAT ?= 30
test-repeat: setup
	$(PY) -m pytest -m timing --count $(REPEAT) -q -rf -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check robustlens tests benchmarks
	$(VENV)/bin/ruff format --check robustlens tests benchmarks
	$(VENV)/bin/lint-imports --no-cache

format: setup
	$(VENV)/bin/ruff format robustlens tests benchmarks
	$(VENV)/bin/ruff check --fix robustlens tests benchmarks

bench: setup
	$(PY) -m benchmarks.bench_attacks
	$(PY) -m benchmarks.bench_training
	$(PY) -m benchmarks.bench_lenses
	$(PY) -m benchmarks.bench_constructed

# The GPU check of issue 18 (scripts/device-check.sh): gpu tests and GPU benchmarks on CUDA, a
# quick CPU run without it. Results in OUT (default benchmarks/out/device-check).
device-check: setup
	PYTHON=$(PY) scripts/device-check.sh

# Mutation testing with mutmut ([tool.mutmut] in pyproject.toml; docs/TESTING.md has the score).
# Hours on 2 cores: MUTATE='robustlens.attacks.*' runs one package (named mutants are always
# re-run; without names, cached verdicts in mutants/ stand). MUTATE_CHILDREN sets the workers.
MUTATE ?=
MUTATE_CHILDREN ?= 1
mutate: setup
	env -u PYTHONPATH OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children $(MUTATE_CHILDREN) $(MUTATE)
	$(VENV)/bin/mutmut results

# The score of a seeded uniform random sample of the mutants, with its 95 % interval: minutes,
# not days (scripts/mutate_sample.py; MUTATE_SAMPLE mutants, MUTATE_SEED picks them).
MUTATE_SAMPLE ?= 300
MUTATE_SEED ?= 0
mutate-sample: setup
	env -u PYTHONPATH OMP_NUM_THREADS=1 $(PY) scripts/mutate_sample.py --n $(MUTATE_SAMPLE) --seed $(MUTATE_SEED) --children $(MUTATE_CHILDREN)

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .hypothesis mutants
