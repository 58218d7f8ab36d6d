# The verbs people type: run, test, lint, bench, bench-full, soak.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
ADDRESS ?= 127.0.0.1:8000
# PostgreSQL for the second test run: DATABASE_URL when it names one, else a local server.
PG_URL := $(or $(filter postgres%,$(DATABASE_URL)),postgres://127.0.0.1:5432/postgres)
# A scratch database of its own for the benchmarks (created when missing; its events are emptied).
BENCH_URL ?= postgres://127.0.0.1:5432/es_bench
PG_PROBE := import psycopg, sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()

.PHONY: run test lint bench bench-full soak

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-runtime: requirements.txt | $(PY)
	$(PIP) -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(PY)
	$(PIP) -r requirements-dev.txt
	touch $@ $(VENV)/.installed-runtime

run: $(VENV)/.installed-runtime
	$(PY) manage.py ledger_keygen --if-missing
	$(PY) manage.py personal_data_keygen --if-missing
	$(PY) manage.py migrate --no-input
	$(PY) manage.py seed_bank
	$(PY) manage.py runserver $(ADDRESS)

test: $(VENV)/.installed-dev
	@echo "== test suite on SQLite =="
	env -u DATABASE_URL $(PY) -m pytest $(PYTEST_ARGS)
	@if $(PY) -c "$(PG_PROBE)" "$(PG_URL)" 2>/dev/null; then \
		echo "== test suite on PostgreSQL =="; \
		DATABASE_URL="$(PG_URL)" $(PY) -m pytest $(PYTEST_ARGS); \
	else \
		echo ""; \
		echo "!!! PostgreSQL run NOT made: no server answered at DATABASE_URL or 127.0.0.1:5432."; \
		echo "!!! The concurrency and log-order tests only ran as skips. Set DATABASE_URL=postgres://..."; \
		echo ""; \
		if [ -n "$$REQUIRE_POSTGRESQL" ]; then exit 1; fi; \
	fi

# The reliability trials (tests marked soak) for longer, on PostgreSQL: load through gunicorn,
# SIGKILLed workers, a database restart. SOAK_SECONDS of load, FAULT_ROUNDS kills per process,
# HYPOTHESIS_EXAMPLES random command sequences (fresh ones each run) for the property tests,
# SCHEMA_EXAMPLES generated requests per API operation and mode (schemathesis).
SOAK_SECONDS ?= 300
FAULT_ROUNDS ?= 50
HYPOTHESIS_EXAMPLES ?= 500
SCHEMA_EXAMPLES ?= 200
soak: $(VENV)/.installed-dev
	DATABASE_URL="$(PG_URL)" SOAK_SECONDS=$(SOAK_SECONDS) FAULT_ROUNDS=$(FAULT_ROUNDS) \
		HYPOTHESIS_EXAMPLES=$(HYPOTHESIS_EXAMPLES) SCHEMA_EXAMPLES=$(SCHEMA_EXAMPLES) \
		$(PY) -m pytest -m soak $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

$(VENV)/.installed-bench: bench/requirements.txt | $(VENV)/.installed-dev
	$(PIP) -r bench/requirements.txt
	touch $@

bench: $(VENV)/.installed-dev $(VENV)/.installed-bench
	DATABASE_URL="$(BENCH_URL)" $(PY) bench/run.py $(BENCH_ARGS)

# Everything `bench` measures, plus the rebuild and admin pages over a 1,000,000-event log.
bench-full: $(VENV)/.installed-dev $(VENV)/.installed-bench
	DATABASE_URL="$(BENCH_URL)" $(PY) bench/run.py --full $(BENCH_ARGS)
