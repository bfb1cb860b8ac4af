PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## start the service on 127.0.0.1:8000 with the embedded PostgreSQL under ./var
	$(BIN)/afterhours serve --host 127.0.0.1 --port 8000

test: $(STAMP)  ## the whole test suite, against a real embedded PostgreSQL
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src
	$(BIN)/lint-imports

bench: $(STAMP)  ## benchmarks: prints one table, writes bench/results/
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var
