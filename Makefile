# Two entry points that work on a fresh machine: `make demo` and `make test`.
# Both create .venv when missing and install the project with its dev extra first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup test test-fast lint demo bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .

# Two pytest workers, one test file each at a time (module-scoped Ray heads stay in one process): the end-to-end
# tests spend much of their time waiting on drivers and Ray, so two files in flight fill the two cores.
TEST_WORKERS ?= 2

test: setup lint
	$(PY) -m pytest -q --durations=15 -n $(TEST_WORKERS) --dist loadfile

test-fast: setup
	$(PY) -m pytest -q -m "not slow" -n $(TEST_WORKERS) --dist loadfile

# A real small search on the embedded default task (MNIST-1D generated offline, 1-D ResNet-8 proxy).
DEMO_BUDGET ?= 300
DEMO_STEPS ?= 150
demo: setup
	rm -rf results/runs/demo
	$(PY) -m controller.run --budget $(DEMO_BUDGET) --strategy rl --units 1 --ops paper --steps $(DEMO_STEPS) --name demo
	$(PY) -m controller.leaderboard demo --top 10

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
