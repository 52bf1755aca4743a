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

lock: venv
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

i18n: venv
	$(PY) manage.py makemessages -l zh_Hans --ignore=.venv --ignore=var --ignore=tests --ignore=bench
	$(PY) manage.py compilemessages -l zh_Hans --ignore=.venv --ignore=var

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
