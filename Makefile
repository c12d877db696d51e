# The two set-up commands: `make demo` and `make test`. Both create .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-cluster lint typecheck unit bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tecmon demo

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Test files run in parallel, one file per process at a time (module fixtures such as a NATS
# cluster stay whole); most of the suite waits on real brokers, databases and processes.
unit: $(STAMP)
	$(BIN)/pytest -q -n auto --dist loadfile

# Only the tests with two gateway instances on a three-node NATS cluster (failover, fencing,
# commands, snapshots); `make test` runs them too.
test-cluster: $(STAMP)
	$(BIN)/pytest -q -m cluster_pair tests/integration

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks.run
	$(BIN)/python -m tests.benchmarks.table

# The soak test with ground truth (README "Soak test"): `make soak`, or `make soak MINUTES=3`.
MINUTES ?= 30
HOMES   ?= 1000
soak: $(STAMP)
	$(BIN)/python -m tests.soak --minutes $(MINUTES) --homes $(HOMES) $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
