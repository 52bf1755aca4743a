# gridgov: `make run` and `make test` on a machine that has only python3.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: run test lint format bench venv lock i18n clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	UV_PYTHON_DOWNLOADS=never $(UV) pip install --quiet --python $(PY) -r requirements.lock
	UV_PYTHON_DOWNLOADS=never $(UV) pip install --quiet --python $(PY) --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

run: venv
	$(PY) -m gridgov serve

# SQLite tests use a file database (not the in-memory default) so that the concurrency tests
# can run real concurrent transactions on SQLite too.
test: venv
	@mkdir -p var
	GRIDGOV_TEST_SQLITE=$${GRIDGOV_TEST_SQLITE:-$(CURDIR)/var/test.sqlite3} $(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy gridgov
	$(PY) scripts/i18n_check.py

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: venv
	$(PY) bench/run_all.py

# --- crash safety under load (docs/reliability.md): SQLite, then PostgreSQL ---------------------
# `make reliability RELIABILITY_ARGS=--quick` is CI's short form; RELIABILITY_POSTGRES names a
# database on the server where the run creates (and drops) its own, gridgov_reliability.
RELIABILITY_ARGS ?=
RELIABILITY_POSTGRES ?= postgres://gridgov:gridgov@127.0.0.1:5432/gridgov
.PHONY: reliability
reliability: venv
	$(PY) scripts/reliability.py --postgres $(RELIABILITY_POSTGRES) $(RELIABILITY_ARGS)
# --- end of crash safety -------------------------------------------------------------------------

# --- API fuzzing (tests/fuzz/README.md): a long schemathesis campaign with a report ------------
# `make test` runs the same test briefly; this one sends FUZZ_EXAMPLES generated requests per
# operation (each as every persona) plus the coverage phase's boundary values. On PostgreSQL:
# `make fuzz DATABASE_URL=postgres://…`. FUZZ_ARGS go to pytest (e.g. -k registry, -x).
FUZZ_EXAMPLES ?= 200
FUZZ_ARGS ?=
.PHONY: fuzz
fuzz: venv
	@mkdir -p var
	GRIDGOV_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) GRIDGOV_FUZZ_COVERAGE=1 GRIDGOV_FUZZ_REPORT=1 \
	GRIDGOV_TEST_SQLITE=$${GRIDGOV_TEST_SQLITE:-$(CURDIR)/var/fuzz.sqlite3} \
	$(PY) -m pytest tests/fuzz -q -p no:cacheprovider $(FUZZ_ARGS)
# --- end of API fuzzing ------------------------------------------------------------------------

lock: venv
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

i18n: venv
	$(PY) manage.py makemessages -l zh_Hans --ignore=.venv --ignore=var --ignore=tests --ignore=bench
	$(PY) manage.py compilemessages -l zh_Hans --ignore=.venv --ignore=var

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
