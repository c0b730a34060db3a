# Everything runs from a local virtualenv, so a fresh machine needs only python3 >= 3.11.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# One pytest worker per core (pytest-xdist); PYTEST_WORKERS=0 runs in this process.
PYTEST_WORKERS ?= auto

.PHONY: test demo docs lint bench dist mutate clean

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip "setuptools<82" wheel
	$(PY) -m pip install --quiet -e ".[all,test]"
	touch $@

test: $(VENV)/.installed
	$(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

demo: $(VENV)/.installed
	$(PY) demo/two_regions.py

docs: $(VENV)/.installed
	$(PY) -m sphinx -W -n -q -b html docs docs/_build/html

# Speed is measured here, never in the tests: each prints ours, pypicloud's own code and
# the floor side by side from one run.
bench: $(VENV)/.installed
	$(PY) benchmarks/handler_throughput.py
	$(PY) benchmarks/reconcile.py
	$(PY) benchmarks/bundle.py

# The wheel and sdist to install next to pypicloud (docs/installation.rst), in dist/.
dist: $(VENV)/.installed
	rm -rf dist
	$(PY) -m build --outdir dist .

# Mutation testing of the modules where a wrong answer loses or leaks data; long, so not
# part of test. MODULES=events (or sync, handler, ...) runs some of them.
mutate: $(VENV)/.installed
	$(PY) -m tests.mutation $(MODULES)

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) build dist docs/_build *.egg-info .pytest_cache
