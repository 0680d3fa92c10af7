#!/usr/bin/env bash
# Airflow 3 with the CeleryExecutor on this machine: Redis as the broker, PostgreSQL for the
# metadata (database AIRFLOW_DB, made if absent), a scheduler, a DAG processor, an API server and
# two `airflow celery worker` processes. One Ctrl-C stops them all. `make airflow-celery` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${AIRFLOW_HOME:=$PWD/airflow_celery_home}" "${AIRFLOW_PORT:=8080}" "${AIRFLOW_DB:=airflow_celery}"
: "${PG:=postgresql+psycopg://postgres@127.0.0.1:5432}" "${REDIS:=redis://127.0.0.1:6379/0}"
mkdir -p "$AIRFLOW_HOME"
export PATH="$PWD/.venv/bin:$PATH" AIRFLOW_HOME
export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags" AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="$PG/$AIRFLOW_DB"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC="$PG/$AIRFLOW_DB"  # psycopg 3, no asyncpg
export AIRFLOW__CELERY__BROKER_URL="$REDIS" AIRFLOW__CELERY__RESULT_BACKEND="db+$PG/$AIRFLOW_DB"
export AIRFLOW__CELERY__WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-2}"
export AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT="$AIRFLOW_PORT" AIRFLOW__API__WORKERS=1
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$AIRFLOW_PORT/execution/"
export AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES=1
# every process must sign and check the workers' tokens with one key: kept in the home, not here
[ -f "$AIRFLOW_HOME/jwt_secret" ] || python3 -c 'import secrets; print(secrets.token_hex(32))' >"$AIRFLOW_HOME/jwt_secret"
AIRFLOW__API_AUTH__JWT_SECRET="$(cat "$AIRFLOW_HOME/jwt_secret")"
export AIRFLOW__API_AUTH__JWT_SECRET

python3 - "$PG" "$AIRFLOW_DB" <<'PY'
import sys

import sqlalchemy as sa

admin = sa.create_engine(sys.argv[1] + "/postgres", isolation_level="AUTOCOMMIT")
with admin.connect() as c:
    if not c.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": sys.argv[2]}).first():
        c.execute(sa.text(f'CREATE DATABASE "{sys.argv[2]}"'))
PY
airflow db migrate >"$AIRFLOW_HOME/migrate.log"

pids=()
start() { local name=$1; shift; airflow "$@" >"$AIRFLOW_HOME/$name.log" 2>&1 & pids+=($!); }
stop() { trap - INT TERM EXIT; kill "${pids[@]}" 2>/dev/null || true; wait; }
trap stop INT TERM EXIT
start api-server api-server
start scheduler scheduler
start dag-processor dag-processor
start worker-1 celery worker --celery-hostname "worker-1@%h"
start worker-2 celery worker --celery-hostname "worker-2@%h"
echo "Airflow (CeleryExecutor, 2 workers) on http://127.0.0.1:$AIRFLOW_PORT; logs in $AIRFLOW_HOME/*.log; Ctrl-C stops"
wait -n "${pids[@]}"
echo "a process exited; stopping the others (see $AIRFLOW_HOME/*.log)" >&2
