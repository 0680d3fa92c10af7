"""`dag.test()` runs of the nightly DAG: one delivery day gives what `access-audit run` gives, and a
day whose delivery is incomplete fails at the sensor without writing anything."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import load_settings
from tests.nightly_runs import (
    SAMPLE_LOGS,
    STATES_WHEN_DELIVERY_MISSING,
    TABLES,
    partition_rows,
    sample_days,
)

PROJECT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = PROJECT / "dags"
DAG_ID = "partner_access_audit"


def flags_asset_events(dag_run: Any) -> list[tuple[str, dict[str, Any]]]:
    """The asset events a run emitted: (asset URI, extra)."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(
            select(AssetEvent).where(
                AssetEvent.source_dag_id == DAG_ID, AssetEvent.source_run_id == dag_run.run_id
            )
        )
        return [(event.asset.uri, event.extra) for event in events]


def run_for_day(dag: Any, day: date, **conf: Any) -> Any:
    """dag.test() of the run whose data interval is [day, day + 1): its logical date is day + 1."""
    return dag.test(
        logical_date=datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC), run_conf=conf
    )


@pytest.fixture(scope="module")
def audit_dag(airflow_db: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=DAGS_FOLDER).dags[DAG_ID]


def test_dag_run_gives_the_flags_of_access_audit_run(audit_dag: Any, tmp_path: Path) -> None:
    from pipeline import steps

    day = sample_days()[1]  # not the first: detection also catches up the earlier consent day
    dag_run = run_for_day(audit_dag, day, landing=str(SAMPLE_LOGS), warehouse=str(tmp_path / "dag"))

    assert dag_run.state == "success"
    assert dag_run.data_interval_start == datetime.combine(day, time(), tzinfo=UTC)
    cli = load_settings(
        landing=str(SAMPLE_LOGS),
        warehouse=str(tmp_path / "cli"),
        review_db=f"sqlite:///{tmp_path / 'cli-review.db'}",
    )
    steps.run_day(day, cli)
    for table in TABLES:
        assert partition_rows(tmp_path / "dag", table, day) == partition_rows(
            tmp_path / "cli", table, day
        ), table
    assert partition_rows(tmp_path / "dag", "flags", day), "the sample day should have flags"
    assert flags_asset_events(dag_run) == [
        (
            "x-partner-access-audit://warehouse/flags",
            {"day": day.isoformat(), "warehouse": str(tmp_path / "dag")},
        )
    ]


def test_dag_run_of_an_incomplete_delivery_fails_and_writes_nothing(
    audit_dag: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    day = sample_days()[2]
    landing = tmp_path / "landing"
    shutil.copytree(SAMPLE_LOGS, landing)
    (landing / "consent" / day.isoformat() / "_SUCCESS").unlink()
    warehouse = tmp_path / "warehouse"

    dag_run = run_for_day(
        audit_dag,
        day,
        landing=str(landing),
        warehouse=str(warehouse),
        delivery_timeout_seconds=2,
        delivery_poke_seconds=1,
    )

    assert dag_run.state == "failed"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states == STATES_WHEN_DELIVERY_MISSING
    assert not warehouse.exists()
    assert flags_asset_events(dag_run) == []
    output = "".join(capfd.readouterr())
    assert f"missing markers in {landing}: consent/{day.isoformat()}/_SUCCESS" in output
