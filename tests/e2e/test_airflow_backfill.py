"""A real Airflow 3 runs the nightly DAG: `airflow standalone` (scheduler, DAG processor, API
server, triggerer; SQLite) in a throwaway AIRFLOW_HOME. A scheduler-driven backfill of three sample
days writes what `pipeline.steps.run_day` writes, and a day whose delivery is incomplete fails at
the sensor, says why in the task log and writes nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import load_settings
from tests.e2e.airflow_cli import (
    STARTUP_SECONDS,
    Airflow,
    backfill,
    base_env,
    wait_for_dag,
    wait_until,
)
from tests.nightly_runs import (
    SAMPLE_LOGS,
    STATES_WHEN_DELIVERY_MISSING,
    TABLES,
    free_port,
    partition_rows,
    sample_days,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


class LocalAirflow(Airflow):
    """One `airflow standalone` (SQLite) in a throwaway home."""

    def __init__(self, home: Path, landing: Path, warehouse: Path) -> None:
        port = free_port()
        env = {
            **base_env(home, port),
            # SQLite lets one writer in at a time; wait for the lock instead of failing after 5 s.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}?timeout=60",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "ACCESS_AUDIT_LANDING": str(landing),
            "ACCESS_AUDIT_WAREHOUSE": str(warehouse),
        }
        super().__init__(home, env, port)
        self.landing, self.warehouse = landing, warehouse
        self.start("standalone", "standalone")

    def wait_until_ready(self) -> None:
        """Until standalone says so and the API server (which tasks report to) answers."""

        def ready() -> bool:
            self.assert_alive()
            return "Airflow is ready" in self.log_text("standalone") and self.api_is_up()

        try:
            wait_until(ready, STARTUP_SECONDS, "airflow standalone to be ready", pause=1.0)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from exc


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAirflow]:
    home = tmp_path_factory.mktemp("airflow_home")
    data = tmp_path_factory.mktemp("data")
    (data / "landing").symlink_to(SAMPLE_LOGS, target_is_directory=True)
    local = LocalAirflow(home, landing=data / "landing", warehouse=data / "warehouse")
    try:
        local.wait_until_ready()
        wait_for_dag(local)
        yield local
    finally:
        local.stop()


def test_backfill_of_three_days_writes_what_run_day_writes(
    airflow: LocalAirflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline import steps

    days = sample_days()[:3]
    backfill(airflow, days[0], days[-1], "--max-active-runs", "2")

    states = airflow.wait_for_runs(days)
    assert states == dict.fromkeys(days, "success"), airflow.diagnose(days)

    monkeypatch.chdir(tmp_path)  # the same settings as Airflow's: no config file, no environment
    reference = tmp_path / "reference"
    settings = load_settings(
        env={},
        landing=str(airflow.landing),
        warehouse=str(reference),
        review_db=f"sqlite:///{tmp_path / 'reference-review.db'}",
        models_dir=str(tmp_path / "no-models"),
    )
    for day in days:
        steps.run_day(day, settings)
    for day in days:
        for table in TABLES:
            assert partition_rows(airflow.warehouse, table, day) == partition_rows(
                reference, table, day
            ), f"{table} of {day}"
        assert partition_rows(airflow.warehouse, "flags", day), f"no flags on {day}"
    assert review_item_ids(f"sqlite:///{airflow.home / 'review.db'}") == review_item_ids(
        settings.review_db
    )


def review_item_ids(url: str) -> set[str]:
    """The ids of every alert in a review store."""
    from pipeline.review.store import AlertFilter, ReviewStore

    store = ReviewStore.open(url)
    try:
        return {a.alert_id for a in store.iter_alerts(AlertFilter(include_suppressed=True))}
    finally:
        store.dispose()


def test_backfill_of_an_incomplete_day_fails_at_the_sensor_and_writes_nothing(
    airflow: LocalAirflow, tmp_path: Path
) -> None:
    day = sample_days()[-1]  # later than the other test's days: this failure holds none of them
    landing = tmp_path / "landing"
    shutil.copytree(SAMPLE_LOGS, landing)
    (landing / "consent" / day.isoformat() / "_SUCCESS").unlink()
    warehouse = tmp_path / "warehouse"
    conf = {
        "landing": str(landing),
        "warehouse": str(warehouse),
        # Pokes well apart: a re-queue that beats the executor's report of the previous poke gets
        # the sensor failed as "killed externally" (apache/airflow#71172); seen here at 5 s.
        "delivery_timeout_seconds": 25,
        "delivery_poke_seconds": 10,
    }
    backfill(airflow, day, day, "--dag-run-conf", json.dumps(conf))

    assert airflow.wait_for_runs([day]) == {day: "failed"}
    assert airflow.task_states(day) == STATES_WHEN_DELIVERY_MISSING
    log = airflow.task_log(day, "wait_for_delivery")
    assert f"missing markers in {landing}: consent/{day.isoformat()}/_SUCCESS" in log
    assert not warehouse.exists()
