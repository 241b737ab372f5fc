# The two commands of the README: `make demo` and `make test`.
# Both create .venv when missing and install xtalgen into it (editable, with dev tools).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.xtalgen-installed
PYTEST_WORKERS ?= 2

.PHONY: demo test lint install clean-cache

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt "torch==2.13.0"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/xtalgen demo

test: $(STAMP)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --durations=15

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
