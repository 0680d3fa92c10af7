# partner-access-audit — the two commands that matter: `make demo` and `make test`.
SHELL := /bin/bash
# uv from PATH, else the one pip installs as a module (no PATH changes needed)
UV ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run --frozen
WAREHOUSE ?= warehouse

.PHONY: demo test test-fast lint bench sample-logs airflow airflow-celery install clean

.venv/.synced: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen
	@touch $@

install: .venv/.synced

DEMO := --landing sample_logs --warehouse $(WAREHOUSE)
# The second landing zone: the same world in the formats platforms export, its [[sources]] in its
# own access-audit.toml. Its own warehouse, models and review store, so the two never mix.
WAREHOUSE_FORMATS ?= $(WAREHOUSE)_formats
FORMATS_HOME = $(abspath $(WAREHOUSE_FORMATS))
DEMO_FORMATS = --landing sample_logs_formats --warehouse $(FORMATS_HOME)/warehouse \
	--config sample_logs_formats/access-audit.toml
FORMATS_ENV = ACCESS_AUDIT_MODELS_DIR=$(FORMATS_HOME)/models \
	ACCESS_AUDIT_REVIEW_DB=sqlite:///$(FORMATS_HOME)/review.db
demo: install  ## as the nightly runs would, on both landing zones: nine days, train, five scored days, evaluate, report
	$(RUN) access-audit backfill --start 2026-03-01 --end 2026-03-09 $(DEMO)
	$(RUN) access-audit train --end 2026-03-09 --window-days 9 $(DEMO)
	$(RUN) access-audit backfill --start 2026-03-10 --end 2026-03-14 $(DEMO)
	$(RUN) access-audit evaluate --start 2026-03-10 --end 2026-03-14 $(DEMO)
	$(RUN) access-audit report --start 2026-03-01 --end 2026-03-14 $(DEMO)
	$(FORMATS_ENV) $(RUN) access-audit backfill --start 2026-03-01 --end 2026-03-09 $(DEMO_FORMATS)
	$(FORMATS_ENV) $(RUN) access-audit train --end 2026-03-09 --window-days 9 $(DEMO_FORMATS)
	$(FORMATS_ENV) $(RUN) access-audit backfill --start 2026-03-10 --end 2026-03-14 $(DEMO_FORMATS)
	$(FORMATS_ENV) $(RUN) access-audit evaluate --start 2026-03-10 --end 2026-03-14 \
		--truth sample_logs/anomalies.csv $(DEMO_FORMATS)
	$(FORMATS_ENV) $(RUN) access-audit report --start 2026-03-01 --end 2026-03-14 $(DEMO_FORMATS)

lint: install
	$(RUN) ruff check pipeline tests dags bench tools
	$(RUN) ruff format --check pipeline tests dags bench tools
	$(RUN) mypy

# The tests not marked slow run in parallel, one pytest-xdist worker per core (at most
# TEST_WORKERS_MAX: each worker builds its own sample warehouses, Airflow home and S3 server), a
# module's tests on one worker so its fixtures are built once. The slow end-to-end ones (real
# Airflow schedulers and Celery workers, process kills, timeouts) then run alone, one at a time.
TEST_WORKERS ?= auto
TEST_WORKERS_MAX ?= 4
PARALLEL := -n $(TEST_WORKERS) --maxprocesses $(TEST_WORKERS_MAX) --dist loadscope

test: lint  ## lint, then every test: the fast ones in parallel, then the slow end-to-end ones
	status=0; \
	$(RUN) pytest -q $(PARALLEL) -m "not slow" || status=1; \
	$(RUN) pytest -q -m slow || status=1; \
	exit $$status

test-fast: install  ## the tests without the slow end-to-end ones (in parallel)
	$(RUN) pytest -q $(PARALLEL) -m "not slow"

bench: install  ## figures, not pass/fail: events/s and peak RSS for ingest and detection
	$(RUN) python bench/run_bench.py

sample-logs: install  ## rebuild sample_logs/ deterministically
	$(RUN) python tools/make_sample_logs.py --out sample_logs

AIRFLOW_HOME ?= $(CURDIR)/airflow_home
AIRFLOW_PORT ?= 8080
# Called directly, not through `uv run`, so that one Ctrl-C stops it cleanly.
airflow: install  ## local Airflow 3 (standalone, SQLite) on http://localhost:$(AIRFLOW_PORT)
	mkdir -p $(AIRFLOW_HOME)
	PATH="$(CURDIR)/.venv/bin:$$PATH" AIRFLOW_HOME=$(AIRFLOW_HOME) \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__CORE__PARALLELISM=2 AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES=1 \
	AIRFLOW__API__WORKERS=1 AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=$(AIRFLOW_PORT) \
	AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$(AIRFLOW_PORT)/execution/ \
	AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$(AIRFLOW_HOME)/airflow.db?timeout=60" \
	airflow standalone

# Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432) must be up; landing and warehouse come
# from the usual settings (ACCESS_AUDIT_LANDING=s3://… and the AWS variables for S3).
airflow-celery: install  ## Airflow 3, CeleryExecutor: scheduler, DAG processor, API server, 2 workers
	AIRFLOW_HOME=$(CURDIR)/airflow_celery_home AIRFLOW_PORT=$(AIRFLOW_PORT) tools/airflow_celery.sh

clean:
	rm -rf $(WAREHOUSE) $(WAREHOUSE_FORMATS) $(AIRFLOW_HOME) airflow_celery_home .pytest_cache .mypy_cache .ruff_cache
