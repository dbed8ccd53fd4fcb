# Two commands matter: `make demo` (try it) and `make test` (the whole suite + lint + types).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PACKAGES := bot handlers cards storage
LINT_PATHS := $(PACKAGES) tests $(wildcard bench)

.PHONY: demo test lint typecheck pytest install bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# `make demo PORT=8081 DB=/tmp/try.db` picks another port / database file.
demo: $(STAMP)
	$(BIN)/salesbot demo --config config.example.toml $(if $(PORT),--port $(PORT)) $(if $(DB),--db $(DB))

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: $(STAMP)
	$(BIN)/mypy

# The fast part on every core (pytest-xdist; each worker has its own databases), then the acceptance tests that
# run real processes and time them (crash restarts, replicas, the browser) one at a time on a quiet machine.
pytest: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -m "not slow"
	$(BIN)/python -m pytest -q -m slow

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/console_visits.py

clean:
	rm -rf $(VENV) salesbot-demo.db*
