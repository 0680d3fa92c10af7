"""Every DAG file parses under Airflow 3.3, quickly and without heavy imports, and follows the house
policy; the nightly audit DAG has the documented shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pendulum
import pytest

from tests.dags import parse_clock

PROJECT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = PROJECT / "dags"
DAG_ID = "partner_access_audit"
DAG_FILES = sorted(p for p in DAGS_FOLDER.glob("*.py") if not p.name.startswith("_"))
HEAVY_MODULES = ("pandas", "pyarrow", "sklearn", "duckdb")
MAX_ACTIVE_RUNS_LIMIT = 2

PARSE_SECONDS = 1.0  # per file, on tests.dags.parse_clock (a busy machine does not move it)

# Imports one DAG file in a fresh interpreter the way the DAG processor does (Airflow already
# loaded) and reports the seconds it took (and its CPU and wall seconds, to read a failure by)
# and the heavy modules it pulled in.
_IMPORT_PROBE = """
import importlib.util, json, sys, time
import airflow
from tests.dags.parse_clock import now
started, cpu, wall = now(), time.process_time(), time.perf_counter()
spec = importlib.util.spec_from_file_location("dag_file_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
seconds, cpu, wall = now() - started, time.process_time() - cpu, time.perf_counter() - wall
heavy = sorted(m for m in sys.argv[2:] if m in sys.modules)
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "wall_seconds": wall, "heavy": heavy}))
"""


@pytest.fixture(scope="module")
def dagbag(airflow_db: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=DAGS_FOLDER)


@pytest.fixture(scope="module")
def audit_dag(dagbag: Any) -> Any:
    return dagbag.dags[DAG_ID]


def test_dagbag_every_file_imports_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    parsed = sorted(Path(stat.file).name for stat in dagbag.dagbag_stats if stat.dag_num > 0)
    assert parsed == [p.name for p in DAG_FILES]


def test_dagbag_every_file_parses_in_under_a_second(dagbag: Any) -> None:
    # not dagbag_stats' durations: those are wall time, which a loaded machine stretches
    from airflow.dag_processing.dagbag import DagBag

    for dag_file in DAG_FILES:
        started = parse_clock.now()
        parsed = DagBag(dag_folder=dag_file)
        seconds = parse_clock.now() - started
        assert parsed.import_errors == {} and parsed.dags, dag_file.name
        assert seconds < PARSE_SECONDS, (dag_file.name, seconds)


def test_dagbag_every_dag_serializes(dagbag: Any) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    for dag in dagbag.dags.values():
        restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
        assert set(restored.task_dict) == set(dag.task_dict)


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_no_heavy_modules_in_a_fresh_interpreter(dag_file: Path) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, str(dag_file), *HEAVY_MODULES],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT,
        env=os.environ,
    )
    assert probe.returncode == 0, probe.stderr
    report = json.loads(probe.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert report["seconds"] < PARSE_SECONDS, report


def test_policy_every_dag_is_tagged_documented_and_retried(dagbag: Any) -> None:
    from airflow.sdk import CronDataIntervalTimetable

    for dag in dagbag.dags.values():
        assert dag.tags, dag.dag_id
        assert dag.doc_md and dag.doc_md.strip(), dag.dag_id
        assert dag.catchup is False, dag.dag_id
        assert 1 <= dag.max_active_runs <= MAX_ACTIVE_RUNS_LIMIT, dag.dag_id
        assert isinstance(dag.timetable, CronDataIntervalTimetable), dag.dag_id
        for task in dag.tasks:
            assert task.retries >= 1, task.task_id
            assert task.retry_exponential_backoff > 1, task.task_id


def test_audit_dag_tasks_and_dependencies(audit_dag: Any) -> None:
    downstream = {t.task_id: sorted(t.downstream_task_ids) for t in audit_dag.tasks}
    assert downstream == {
        "wait_for_delivery": ["ingest_access", "ingest_consent"],
        "ingest_access": ["plan_detect"],
        "ingest_consent": ["plan_detect"],
        "plan_detect": ["detect", "detect_shard"],
        "detect_shard": ["detect"],
        "detect": ["score"],
        "score": ["alerts"],
        "alerts": ["publish"],
        "publish": ["report"],
        "report": ["alert"],
        "alert": [],
    }


def test_retrain_dag_trains_weekly(dagbag: Any) -> None:
    retrain = dagbag.dags["partner_access_audit_retrain"]
    assert [t.task_id for t in retrain.tasks] == ["train"]
    assert retrain.timetable.expression == "0 6 * * 1"


def test_audit_dag_waits_in_reschedule_mode(audit_dag: Any) -> None:
    from airflow.sdk import BaseSensorOperator

    sensor = audit_dag.get_task("wait_for_delivery")
    assert isinstance(sensor, BaseSensorOperator)
    assert sensor.mode == "reschedule"


def test_audit_dag_orders_consent_across_runs(audit_dag: Any) -> None:
    # detect(D) reads consent of days <= D: one consent writer (ingest and catch-up) at a time,
    # and no task waits on an earlier run's success; detection units run side by side.
    assert not any(task.depends_on_past for task in audit_dag.tasks)
    assert audit_dag.get_task("ingest_consent").max_active_tis_per_dag == 1
    assert audit_dag.get_task("detect_shard").max_active_tis_per_dag is None
    assert audit_dag.get_task("score").max_active_tis_per_dag == 1


def test_audit_dag_data_interval_is_one_utc_day(dagbag: Any, audit_dag: Any) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    timetable = DagSerialization.deserialize_dag(
        DagSerialization.serialize_dag(audit_dag)
    ).timetable
    interval = timetable.infer_manual_data_interval(run_after=pendulum.datetime(2026, 3, 2))
    assert (interval.start, interval.end) == (
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 3, 2, tzinfo=UTC),
    )


def test_audit_dag_publish_emits_the_flags_asset(audit_dag: Any) -> None:
    from airflow.sdk import Asset

    outlets = audit_dag.get_task("publish").outlets
    assert [a.uri for a in outlets if isinstance(a, Asset)] == [
        "x-partner-access-audit://warehouse/flags"
    ]


def test_audit_dag_params_default_to_the_project_config(audit_dag: Any) -> None:
    params = audit_dag.params.dump()
    assert params["landing"] is None
    assert params["warehouse"] is None
    assert params["delivery_timeout_seconds"] >= 3600


def test_audit_dag_settings_default_to_sample_logs(
    audit_dag: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib.util

    for name in list(os.environ):
        if name.startswith("ACCESS_AUDIT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no access-audit.toml here
    spec = importlib.util.spec_from_file_location("audit_dag_module", audit_dag.fileloc)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    context = {
        "data_interval_start": datetime(2026, 3, 1, tzinfo=UTC),
        "params": audit_dag.params.dump(),
    }

    day, settings = module._day_and_settings(context)
    assert day == date(2026, 3, 1)
    assert Path(settings.landing) == PROJECT / "sample_logs"

    context["params"] = {**context["params"], "landing": str(tmp_path), "warehouse": "w"}
    _, settings = module._day_and_settings(context)
    assert (settings.landing, settings.warehouse) == (str(tmp_path), "w")
