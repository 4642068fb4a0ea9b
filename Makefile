# Set-up and the two everyday commands: `make up` (the main job) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: up test lint accuracy

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

up: $(VENV)/.installed
	$(VENV)/bin/encounters up

test: $(VENV)/.installed
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Benchmarks (minutes to hours on 2 cores; not part of the tests).
accuracy: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[test,bench]"
	$(PY) -m experiments.accuracy.run
