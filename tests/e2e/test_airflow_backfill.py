"""A real Airflow 3 runs the nightly DAG: `airflow standalone` (scheduler, DAG processor, API
server, triggerer; SQLite) in a throwaway AIRFLOW_HOME. A scheduler-driven backfill of three sample
days writes what `pipeline.steps.run_day` writes, and a day whose delivery is incomplete fails at
the sensor, says why in the task log and writes nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psutil
import pytest

from pipeline.config import load_settings
from tests.nightly_runs import (
    SAMPLE_LOGS,
    STATES_WHEN_DELIVERY_MISSING,
    TABLES,
    free_port,
    partition_rows,
    sample_days,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

PROJECT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = PROJECT / "dags"
VENV_BIN = Path(sys.executable).parent
DAG_ID = "partner_access_audit"
STARTUP_SECONDS = 180
RUNS_SECONDS = 480
FINISHED = ("success", "failed")


def wait_until(condition: Callable[[], Any], seconds: float, what: str, pause: float = 2.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(pause)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


class LocalAirflow:
    """One `airflow standalone` in its own process group, and the CLI against its home."""

    def __init__(self, home: Path, landing: Path, warehouse: Path) -> None:
        self.home, self.landing, self.warehouse = home, landing, warehouse
        self.port = port = free_port()
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "ACCESS_AUDIT_", "PYTHONPATH"))
        }
        self.env = {
            **inherited,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(PROJECT),
            "AIRFLOW_HOME": str(home),
            # SQLite lets one writer in at a time; wait for the lock instead of failing after 5 s.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}?timeout=60",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "ACCESS_AUDIT_LANDING": str(landing),
            "ACCESS_AUDIT_WAREHOUSE": str(warehouse),
            # the checkout's review store and models stay out of it
            "ACCESS_AUDIT_REVIEW_DB": f"sqlite:///{home / 'review.db'}",
            "ACCESS_AUDIT_MODELS_DIR": str(home / "models"),
        }
        self.log_path = home / "standalone.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "airflow"), "standalone"],
                cwd=home,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_until_ready(self) -> None:
        """Until standalone says so and the API server (which tasks report to) answers."""

        def ready() -> bool:
            self.assert_alive()
            if "Airflow is ready" not in self.log_path.read_text(errors="replace"):
                return False
            health = f"http://127.0.0.1:{self.port}/api/v2/monitor/health"
            try:
                with urllib.request.urlopen(health, timeout=5) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        try:
            wait_until(ready, STARTUP_SECONDS, "airflow standalone to be ready", pause=1.0)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from exc

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VENV_BIN / "airflow"), *args],
            cwd=self.home,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def cli(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def json_cli(self, *args: str) -> Any:
        out = self.cli(*args, "-o", "json")
        # The JSON is the last line; warnings (e.g. about graphviz) may come before it.
        lines = [line for line in out.splitlines() if line.startswith(("[{", "[]"))]
        assert lines, f"airflow {' '.join(args)} printed no JSON:\n{out}"
        return json.loads(lines[-1])

    def runs_by_day(self) -> dict[date, dict[str, Any]]:
        """The DAG's runs by delivery day (= logical date = data interval start)."""
        runs = self.json_cli("dags", "list-runs", DAG_ID)
        return {date.fromisoformat(r["logical_date"][:10]): r for r in runs if r["logical_date"]}

    def assert_alive(self) -> None:
        """Standalone runs on when its scheduler dies: fail now rather than at the timeout."""
        assert self.process.poll() is None, f"airflow standalone exited:\n{self.log_tail()}"
        log = self.log_path.read_text(errors="replace")
        assert "Exception when executing SchedulerJob" not in log, f"scheduler died:\n{log[-8000:]}"

    def wait_for_runs(self, days: list[date]) -> dict[date, str]:
        def finished() -> dict[date, str] | None:
            self.assert_alive()
            runs = self.runs_by_day()
            states = {d: runs[d]["state"] if d in runs else "absent" for d in days}
            return states if all(s in FINISHED for s in states.values()) else None

        try:
            return wait_until(finished, RUNS_SECONDS, f"runs of {days}", pause=3.0)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnose(days)}") from None

    def task_states(self, day: date) -> dict[str, str]:
        run_id = self.runs_by_day()[day]["run_id"]
        rows = self.json_cli("tasks", "states-for-dag-run", DAG_ID, run_id)
        return {r["task_id"]: r["state"] for r in rows}

    def task_log(self, day: date, task_id: str) -> str:
        run_id = self.runs_by_day()[day]["run_id"]
        folder = self.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"
        return "".join(p.read_text(errors="replace") for p in sorted(folder.glob("*.log")))

    def diagnose(self, days: list[date]) -> str:
        """Run and task states, and the end of every unsuccessful task's log."""
        lines = []
        runs = self.runs_by_day()
        for day in days:
            if day not in runs:
                lines.append(f"{day}: no run")
                continue
            states = self.task_states(day)
            lines.append(f"{day}: run {runs[day]['state']}, tasks {states}")
            for task_id, state in states.items():
                if state not in ("success", None):
                    lines.append(f"--- {task_id} log:\n{self.task_log(day, task_id)[-3000:]}")
        return "\n".join(lines)

    def stop(self) -> None:
        """Terminate the whole process group (standalone and every process it started)."""
        try:
            family = [psutil.Process(self.process.pid)]
            family += family[0].children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            _, alive = psutil.wait_procs(family, timeout=30)
            if not alive:
                break
        for leftover in psutil.wait_procs(family, timeout=0)[1]:
            leftover.kill()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAirflow]:
    home = tmp_path_factory.mktemp("airflow_home")
    data = tmp_path_factory.mktemp("data")
    (data / "landing").symlink_to(SAMPLE_LOGS, target_is_directory=True)
    local = LocalAirflow(home, landing=data / "landing", warehouse=data / "warehouse")
    try:
        local.wait_until_ready()
        wait_until(  # the DAG stays paused (as created) until a test backfills it
            lambda: local.run("dags", "pause", DAG_ID).returncode == 0,
            120,
            f"the DAG processor to parse {DAG_ID}",
        )
        yield local
    finally:
        local.stop()


def backfill(airflow: LocalAirflow, first: date, last: date, *options: str) -> None:
    """`airflow backfill create` on the paused DAG, then unpause it to run.

    On SQLite a create that overlaps task writes can fail on the lock; Airflow then deletes the
    runs it made while the scheduler holds them, which kills the scheduler. A paused DAG runs no
    tasks. A new backfill is refused until the scheduler has marked the earlier one complete (it
    looks every 30 s)."""
    args = ("backfill", "create", "--dag-id", DAG_ID, "--from-date", first.isoformat())
    args += ("--to-date", last.isoformat(), "--reprocess-behavior", "completed", *options)
    airflow.cli("dags", "pause", DAG_ID)

    def created() -> bool:
        done = airflow.run(*args)
        output = done.stdout + done.stderr
        # Refused while the earlier backfill is not marked complete, or beaten to SQLite's
        # write lock by another Airflow process (Airflow then removes the partial backfill so
        # that it can be retried): both pass, so it is tried again.
        again = "AlreadyRunningBackfill" in output or "database is locked" in output
        assert done.returncode == 0 or again, output
        return done.returncode == 0

    wait_until(created, 120, "the earlier backfill to be marked complete", pause=5.0)
    airflow.cli("dags", "unpause", DAG_ID)


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
    assert review_alert_ids(f"sqlite:///{airflow.home / 'review.db'}") == review_alert_ids(
        settings.review_db
    )


def review_alert_ids(url: str) -> set[str]:
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
    assert f"missing markers: consent/{day.isoformat()}/_SUCCESS" in log
    assert not warehouse.exists()
