# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP_QUIET := --quiet --disable-pip-version-check

.PHONY: demo test test-quality lint install install-dev install-quality bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_QUIET) --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(PIP_QUIET) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(PIP_QUIET) -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# MiniLM embeddings ([miner].embeddings = "minilm"): torch is pinned to the CPU build, never
# part of install/install-dev/test (an unpinned torch pulls gigabytes of CUDA).
install-quality: | $(BIN)/python
	$(BIN)/python -m pip install $(PIP_QUIET) -e '.[quality]' torch==2.13.0

# The MiniLM tests with MiniLM really installed, in a venv of their own so that `make test`
# keeps exercising the default (torch-free) install. .ci/run runs this before `make test`.
QVENV ?= .venv-quality
test-quality:
	test -x $(QVENV)/bin/python || $(PYTHON) -m venv $(QVENV)
	$(QVENV)/bin/python -m pip install $(PIP_QUIET) -e '.[dev,quality]' torch==2.13.0
	CJM_REQUIRE_MINILM=1 $(QVENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_quality_embeddings.py

demo: $(VENV)/.installed
	$(BIN)/cjm demo

# Type-checked: every package and the CLI, no exemptions (docs/CONTRACTS-internal.md,
# "Type checking").
MYPY_PATHS ?= connectors miner simulator journey cli.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(MYPY_PATHS)

test: lint
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-dev
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(QVENV) cjm-demo .pytest_cache .ruff_cache *.egg-info
