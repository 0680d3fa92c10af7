"""Airflow on real parts, the way a platform runs it: the CeleryExecutor with Redis (127.0.0.1:6379)
as the broker and PostgreSQL (127.0.0.1:5432) as the metadata database, a scheduler, a DAG
processor, an API server and two `airflow celery worker` processes; the landing zone and the
warehouse on S3 (SeaweedFS). A scheduler-run backfill of three sample days with `detect_shards = 4`
spreads days and shards over both workers and writes the flags (and alerts) that
`access-audit backfill` writes on local disk."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.schema import TABLES as SCHEMA_TABLES
from pipeline.warehouse import Warehouse
from tests.e2e.airflow_cli import (
    STARTUP_SECONDS,
    Airflow,
    backfill,
    base_env,
    wait_for_dag,
    wait_until,
)
from tests.nightly_runs import SAMPLE_LOGS, free_port, sample_days
from tests.postgres import POSTGRES_URL
from tests.s3 import SeaweedFS, s3_env, seaweedfs  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

REDIS_URL = "redis://127.0.0.1:6379/11"  # a database of its own: flushed before the test
SHARDS = 4
COMPARED = [t for t in ("access", "consent", "quarantine", "flags", "alerts") if t in SCHEMA_TABLES]


@pytest.fixture(scope="module")
def metadata_db() -> Iterator[str]:
    """A new PostgreSQL database for Airflow's metadata, dropped afterwards."""
    import sqlalchemy as sa

    name = f"airflow_e2e_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class CeleryAirflow(Airflow):
    """Scheduler, DAG processor, API server and two Celery workers, one process group each."""

    WORKERS = ("worker-1", "worker-2")

    def __init__(self, home: Path, metadata: str, s3: SeaweedFS, bucket: str) -> None:
        port = free_port()
        env = {
            **base_env(home, port),
            **s3.env,  # credentials reach boto the usual way, never through the settings
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
            # psycopg 3 serves Airflow's async engine too (no asyncpg needed)
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata,
            "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__CORE__PARALLELISM": "8",
            # every process signs and checks the workers' tokens with the same key
            "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
            "AIRFLOW__API__SECRET_KEY": uuid.uuid4().hex,
            "ACCESS_AUDIT_LANDING": f"{bucket}/landing",
            "ACCESS_AUDIT_WAREHOUSE": f"{bucket}/warehouse",
            "ACCESS_AUDIT_DETECT_SHARDS": str(SHARDS),
        }
        super().__init__(home, env, port)
        self.landing, self.warehouse = env["ACCESS_AUDIT_LANDING"], env["ACCESS_AUDIT_WAREHOUSE"]

    def start_all(self) -> None:
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        migrated = self.run("db", "migrate")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        self.start("api-server", "api-server")
        self.start("scheduler", "scheduler")
        self.start("dag-processor", "dag-processor")
        for name in self.WORKERS:
            # each worker serves its task logs on a port of its own
            log_port = {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
            self.start(name, "celery", "worker", "--celery-hostname", f"{name}@%h", env=log_port)

    def wait_until_ready(self) -> None:
        def ready() -> bool:
            self.assert_alive()
            workers = all(" ready." in self.log_text(name) for name in self.WORKERS)
            return workers and self.api_is_up()

        try:
            wait_until(ready, STARTUP_SECONDS, "the API server and both workers", pause=1.0)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from exc

    def tasks_received(self, worker: str) -> int:
        """Tasks the worker took from the broker (Celery logs each one it receives)."""
        return len(re.findall(r"Task \S+\[[0-9a-f-]+\] received", self.log_text(worker)))


@pytest.fixture(scope="module")
def celery_airflow(
    tmp_path_factory: pytest.TempPathFactory,
    metadata_db: str,
    seaweedfs: SeaweedFS,  # noqa: F811 (the fixture)
) -> Iterator[CeleryAirflow]:
    bucket = seaweedfs.bucket()
    seaweedfs.filesystem().put(
        str(SAMPLE_LOGS), f"{bucket.removeprefix('s3://')}/landing", recursive=True
    )
    airflow = CeleryAirflow(tmp_path_factory.mktemp("celery_home"), metadata_db, seaweedfs, bucket)
    try:
        airflow.start_all()
        airflow.wait_until_ready()
        wait_for_dag(airflow)
        yield airflow
    finally:
        airflow.stop()


def test_celery_backfill_on_s3_with_four_shards_matches_a_local_backfill(
    celery_airflow: CeleryAirflow,
    s3_env: SeaweedFS,  # noqa: F811 (the fixture: this process reads S3 too)
    tmp_path: Path,
) -> None:
    days = sample_days()[:3]
    backfill(celery_airflow, days[0], days[-1], "--max-active-runs", "2")
    states = celery_airflow.wait_for_runs(days, seconds=900)
    assert states == dict.fromkeys(days, "success"), celery_airflow.diagnose(days)
    for worker in CeleryAirflow.WORKERS:  # days and shards ran on both workers
        assert celery_airflow.tasks_received(worker) > 0, celery_airflow.log_tail()

    reference = tmp_path / "reference"
    local = subprocess.run(
        [
            *(sys.executable, "-m", "pipeline.cli", "backfill"),
            *("--start", days[0].isoformat(), "--end", days[-1].isoformat()),
            *("--landing", str(SAMPLE_LOGS), "--warehouse", str(reference)),
        ],
        cwd=tmp_path,  # no config file
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("ACCESS_AUDIT_", "AWS_"))},
            "ACCESS_AUDIT_REVIEW_DB": f"sqlite:///{tmp_path / 'review.db'}",
            "ACCESS_AUDIT_MODELS_DIR": str(tmp_path / "no-models"),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert local.returncode == 0, local.stderr

    settings = dataclasses.replace(
        load_settings(env={}), s3_endpoint_url=s3_env.endpoint, warehouse="unused"
    )
    on_s3 = Warehouse(celery_airflow.warehouse, settings)
    on_disk = Warehouse(str(reference))
    for day in days:
        for table in COMPARED:
            assert on_s3.read_partition(table, day).equals(on_disk.read_partition(table, day)), (
                f"{table} of {day}"
            )
        assert on_s3.read_partition("flags", day).num_rows > 0, f"no flags on {day}"
        detected = on_s3.read_json("runs", day, "detect.json")
        assert detected is not None and detected["shards"] == SHARDS
