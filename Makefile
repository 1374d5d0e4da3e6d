# loraflow — the two commands are `make demo` and `make test`; each sets up what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# torch 2.13.0: on machines with a local CPU wheel pip takes it; elsewhere set TORCH_SPEC
# (e.g. TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu").
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test lint format dev venv bench clean histories typecheck

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/loraflow demo

dev: $(STAMP)
	$(BIN)/loraflow dev

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest

# Re-record the workflow histories the replay tests replay (tests/workflows/histories/): run after
# a workflow change that is meant to change its commands, and commit the new files beside the old.
histories: $(STAMP)
	LORAFLOW_RECORD_HISTORIES=tests/workflows/histories $(BIN)/pytest -q -m records_history

typecheck: $(STAMP)
	$(BIN)/mypy

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python benchmarks/api_list.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
