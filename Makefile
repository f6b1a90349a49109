# Two entry points (see README): `make serve` runs the service on SQLite, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= ./data
ORIGIN ?= localhost/evidence-ledger
# A new seed each run, printed so a failure can be replayed: make test HYPOTHESIS_SEED=<the printed seed>
HYPOTHESIS_SEED ?= $(shell od -An -N4 -tu4 /dev/urandom | tr -d ' ')
# ?= alone would run the shell again at each use: the seed printed would not be the seed used.
override HYPOTHESIS_SEED := $(HYPOTHESIS_SEED)

.PHONY: setup serve test lint mutation bench

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[server,dev]'
	touch $@

setup: $(BIN)/.installed

serve: setup
	@test -f $(DATA_DIR)/ledger.json || $(BIN)/evidence-ledger init --data-dir $(DATA_DIR) --origin $(ORIGIN)
	$(BIN)/evidence-ledger serve --data-dir $(DATA_DIR)

test: setup
	$(BIN)/ruff check domain ledger api tests ops
	$(BIN)/lint-imports
	$(BIN)/mypy
	@echo "Hypothesis seed: $(HYPOTHESIS_SEED)"
	$(BIN)/pytest -q -n 2 --dist loadgroup --hypothesis-seed=$(HYPOTHESIS_SEED)

lint: setup
	$(BIN)/ruff check domain ledger api tests ops
	$(BIN)/lint-imports
	$(BIN)/mypy

# Mutation testing of the case rules (docs/testing.md): mutmut mutates domain/, runs the domain tests per mutant.
mutation: setup
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2
	$(BIN)/python -m ops.mutation.report

# Every benchmark of docs/benchmarks.md, each printing its figures beside a baseline measured in the same
# run (about 20 minutes; needs PostgreSQL on 127.0.0.1 and wrk: apt-get install wrk; nginx is used if present).
bench: setup
	$(BIN)/python -m ops.bench.bench_http --backend postgres
	$(BIN)/python -m ops.bench.bench_http --backend sqlite
	$(BIN)/python -m ops.bench.bench_append --events 5000
	$(BIN)/python -m ops.bench.bench_case_read --reads 2000
	$(BIN)/python -m ops.bench.bench_case_growth
	$(BIN)/python -m ops.bench.bench_access --backend postgres
	$(BIN)/python -m ops.bench.bench_access --backend sqlite
	$(BIN)/python -m ops.bench.bench_free_text
	$(BIN)/python -m ops.bench.bench_verify
	$(BIN)/python -m ops.bench.bench_verify_page
	$(BIN)/python -m ops.bench.bench_audit --backend both --events 100000
	$(BIN)/python -m ops.bench.bench_follow --events 5000
	$(BIN)/python -m ops.bench.bench_log --backend sqlite --size 1000000 --proofs 1000
	$(BIN)/python -m ops.bench.bench_log --backend postgres --size 1000000 --proofs 1000
	$(BIN)/python -m ops.bench.bench_tiles --backend sqlite --size 100000 --proofs 2000
	$(BIN)/python -m ops.bench.bench_tokens
	$(BIN)/python -m ops.bench.bench_replica_reads
	$(BIN)/python -m ops.sim --backend postgres
