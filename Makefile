# partner-access-audit — the two commands that matter: `make demo` and `make test`.
SHELL := /bin/bash
# uv from PATH, else the one pip installs as a module (no PATH changes needed)
UV ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run --frozen
WAREHOUSE ?= warehouse

.PHONY: demo test test-fast lint bench sample-logs airflow install clean

.venv/.synced: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen
	@touch $@

install: .venv/.synced

demo: install  ## audit every day in sample_logs/ and print a summary
	$(RUN) access-audit backfill --all --landing sample_logs --warehouse $(WAREHOUSE)

lint: install
	$(RUN) ruff check pipeline tests dags bench tools
	$(RUN) ruff format --check pipeline tests dags bench tools
	$(RUN) mypy

test: lint  ## lint, then every test (the slow end-to-end ones included)
	$(RUN) pytest -q

test-fast: install  ## the tests without the slow end-to-end ones
	$(RUN) pytest -q -m "not slow"

bench: install  ## figures, not pass/fail: events/s and peak RSS for ingest and detection
	$(RUN) python bench/run_bench.py

sample-logs: install  ## rebuild sample_logs/ deterministically
	$(RUN) python tools/make_sample_logs.py --out sample_logs

clean:
	rm -rf $(WAREHOUSE) .pytest_cache .mypy_cache .ruff_cache
