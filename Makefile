# loraflow — the two commands are `make demo` and `make test`; each sets up what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# torch 2.13.0: on machines with a local CPU wheel pip takes it; elsewhere set TORCH_SPEC
# (e.g. TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu").
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test static-checks lint format dev venv bench clean histories typecheck frontend frontend-test chromium

# The frontend (frontend/): npm ci when node_modules is missing or older than package-lock.json.
FRONTEND := frontend
NODE_STAMP := $(FRONTEND)/node_modules/.ci-stamp
CHROMIUM ?= /usr/bin/chromium
# pytest processes (pytest-xdist), each with its own PostgreSQL, Temporal, API and worker: a
# training uses one core, so two keep two cores busy (three were slower on average: README "Tests").
TEST_PROCESSES ?= 2

# uv installs the pinned set (constraints.txt) in about a third of pip's time; torch comes first
# through pip, which honours the machine's pip configuration (a local CPU wheel, an index).
# --compile-bytecode as pip does: where PYTHONDONTWRITEBYTECODE is set, a venv without .pyc files
# recompiles diffusers, transformers... in every process it starts (the suite took 20 % longer).
UV_SPEC ?= uv==0.13.9

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC) $(UV_SPEC)
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -c constraints.txt -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP) frontend
	$(BIN)/loraflow demo

dev: $(STAMP) frontend
	$(BIN)/loraflow dev

# The static checks and the frontend's run side by side (two cores), then pytest, whose browser
# tests (tests/e2e/) need the pages built and chromium.
test: $(STAMP) chromium
	$(MAKE) --no-print-directory -j2 --output-sync=target static-checks frontend-test
	LORAFLOW_E2E=required LORAFLOW_CHROMIUM=$(CHROMIUM) $(BIN)/pytest -n $(TEST_PROCESSES) --dist worksteal

static-checks: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

$(NODE_STAMP): $(FRONTEND)/package-lock.json
	@command -v npm >/dev/null || { echo "The frontend needs Node.js >= 20.19 and npm (e.g. apt-get install nodejs npm)"; exit 1; }
	cd $(FRONTEND) && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# The pages the API serves at / (demo, dev): built when npm is there; without it the API runs without them.
frontend:
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory $(NODE_STAMP) && cd $(FRONTEND) && npm run --silent build; \
	else echo "npm not found: the pages are not built (the API works without them)"; fi

# The frontend's checks, then the build the browser tests use (tests/e2e/, run by pytest).
frontend-test: $(STAMP) $(NODE_STAMP)
	cd $(FRONTEND) && LORAFLOW_PYTHON=$(abspath $(BIN))/python npm run --silent api:check
	cd $(FRONTEND) && npm run --silent test
	cd $(FRONTEND) && npm run --silent build

# The browser tests drive Debian's chromium: installed here when running as root.
chromium:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The browser tests need Chromium: install Debian's package ('sudo apt-get install chromium'),"; \
	    echo "or run 'make test CHROMIUM=/path/to/chromium' (LORAFLOW_CHROMIUM is the same for pytest)."; \
	    exit 1; \
	  fi; \
	fi

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
	rm -rf $(VENV) .pytest_cache .ruff_cache $(FRONTEND)/node_modules $(FRONTEND)/dist test-artifacts
