# Two commands: `make run` and `make test`. Everything else is a detail.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test chaos lint typecheck check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Start the platform on the embedded PostgreSQL (or ENTREPOT_DATABASE_URL).
run: $(STAMP)
	$(BIN)/entrepot serve

## Run the whole test suite (real PostgreSQL: local service, else embedded).
test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

## Kill PostgreSQL's primary under load on the local HA stack (deploy/local-ha/setup.sh first),
## and kill, roll and cut off API replicas behind HAProxy for CHAOS_SECONDS each (docs/ha.md).
CHAOS_SECONDS ?= 120
chaos: $(STAMP)
	ENTREPOT_CHAOS_SECONDS=$(CHAOS_SECONDS) $(BIN)/pytest -m 'chaos or replicas' tests/chaos \
		-p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard bench deploy)
	$(BIN)/ruff format --check src tests $(wildcard bench deploy)
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
