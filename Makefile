# Everything a fresh machine with only python3 needs: `make demo`, `make test`, `make bench`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck bench clean

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[cli,postgres,dev,bench]'
	touch $(BIN)/activate

demo: $(BIN)/activate
	$(BIN)/plait run examples/pipeline.py:wf --concurrency 4

lint: $(BIN)/activate
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(BIN)/activate
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

bench: $(BIN)/activate
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
