# calendar-connections: `make run` serves the API on :18080, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 18080
WORKERS ?= 2
PYTEST_ARGS ?=

export FLASK_APP := calendar_connections

.PHONY: install run migrate test lint typecheck pytest bench clean constraints

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the declared dependencies or their tested versions change. The provider
# sandbox (`flask sandbox run`) is a development tool of its own: installed here, never in the
# service's wheel.
$(VENV)/.installed: setup.cfg pyproject.toml provider-sandbox/pyproject.toml constraints.txt | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		--constraint constraints.txt -e '.[dev]' -e ./provider-sandbox
	touch $@

install: $(VENV)/.installed

# Pin what is installed now as the tested versions: run after changing setup.cfg, then test.
constraints: | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade \
		-e '.[dev]' -e ./provider-sandbox
	printf '# Tested versions, written by `make constraints`; `make install` installs these.\n' > constraints.txt
	$(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check >> constraints.txt
	touch $(VENV)/.installed

# A checkout that `make run` serves is a developer's: development mode unless told otherwise.
instance/config.py:
	mkdir -p instance
	printf '# Local settings (git-ignored). Environment variables override them.\nAPP_ENV = "development"\n' > $@

migrate: install instance/config.py
	$(BIN)/flask db upgrade

run: migrate
	SCHEDULER_ENABLED=$${SCHEDULER_ENABLED:-true} PORT=$(PORT) WEB_CONCURRENCY=$(WORKERS) \
	$(BIN)/gunicorn --config gunicorn.conf.py wsgi:app

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# The engine's cost as ratios to the provider I/O floor (see bench/__main__.py); not part of test.
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)


clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info provider-sandbox/*.egg-info build
