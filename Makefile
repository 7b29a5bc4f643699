# make run  — serve the shop with demo data on an SQLite file at http://127.0.0.1:8000
# make test — every test, on SQLite, and on MariaDB/PostgreSQL when TEST_MYSQL_URL / TEST_POSTGRES_URL are set
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test bench load clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

# Without a .env file or ADMIN_EMAILS in the environment, make run makes admin@shop.test
# an admin, so the dashboard can be opened straight away.
ifeq ($(wildcard .env),)
run: export ADMIN_EMAILS ?= admin@shop.test
endif
run: install
	$(PY) -m app migrate
	$(PY) -m app fx-rates load
	$(PY) -m app demo-data --if-empty
	$(PY) -m app serve

test: install
	$(PY) -m tests.run_all

bench: install
	$(PY) -m bench.run

load: install
	$(PY) -m loadtest

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache
