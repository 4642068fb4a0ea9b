# Set-up and the two everyday commands: `make up` (the main job) and `make test`.
# Every install comes from uv.lock (as in CI and the Dockerfile): `uv lock` after editing the
# dependencies in pyproject.toml.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := UV_PROJECT_ENVIRONMENT=$(VENV) $(VENV)/bin/uv

.PHONY: up test lint accuracy

$(VENV)/.installed: pyproject.toml uv.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)
	$(UV) sync --locked --quiet --extra test --extra server --extra bench
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
	$(PY) -m experiments.accuracy.run
