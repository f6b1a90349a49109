# Two entry points (see README): `make serve` runs the service on SQLite, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= ./data
ORIGIN ?= localhost/evidence-ledger

.PHONY: setup serve test lint bench

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/.installed

serve: setup
	@test -f $(DATA_DIR)/ledger.json || $(BIN)/evidence-ledger init --data-dir $(DATA_DIR) --origin $(ORIGIN)
	$(BIN)/evidence-ledger serve --data-dir $(DATA_DIR)

test: setup
	$(BIN)/ruff check domain ledger api tests ops
	$(BIN)/lint-imports
	$(BIN)/pytest -q -n 2 --dist loadgroup

lint: setup
	$(BIN)/ruff check domain ledger api tests ops
	$(BIN)/mypy domain ledger api

bench: setup
	$(BIN)/python -m ops.bench.run_all
