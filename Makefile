# make run   — serve the shop with demo data on an SQLite file at http://127.0.0.1:8000
#              (installs the runtime dependencies only: pip install -e .)
# make test  — every test, on SQLite, and on MariaDB/MySQL and PostgreSQL when TEST_MYSQL_URL /
#              TEST_POSTGRES_URL are set (adds the test extras)
# make bench — the benchmarks (adds the bench extras); make install — everything, for development
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# One stamp per set of dependencies, so each is installed once and again only when pyproject.toml changes.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: install run test bench load clean

install: $(RUN_STAMP) $(TEST_STAMP) $(BENCH_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): $(RUN_STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(BENCH_STAMP): $(RUN_STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $@

# Without a .env file, make run makes admin@shop.test an admin (unless ADMIN_EMAILS is set)
# and lets sandbox payments succeed at once (unless PAYMENT_SANDBOX_AUTO_CONFIRM is set),
# so a customer can buy and activate an eSIM and the dashboard can be opened straight away.
ifeq ($(wildcard .env),)
run: export ADMIN_EMAILS ?= admin@shop.test
run: export PAYMENT_SANDBOX_AUTO_CONFIRM ?= true
endif
run: $(RUN_STAMP)
	$(PY) -m app migrate
	$(PY) -m app fx-rates load
	$(PY) -m app demo-data --if-empty
	$(PY) -m app serve

test: $(TEST_STAMP)
	$(PY) -m tests.run_all

bench: $(BENCH_STAMP)
	$(PY) -m bench.run

# The load test drives the server with httpx, one of the test extras.
load: $(TEST_STAMP)
	$(PY) -m loadtest

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache
