"""What the end-to-end tests share about a real Airflow: its processes in their own process groups,
the `airflow` CLI against its home, run and task states, task logs, and a scheduler-run backfill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import psutil

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


def base_env(home: Path, port: int) -> dict[str, str]:
    """The environment every Airflow process of a test gets: this checkout's DAGs, nothing
    inherited of the caller's Airflow or pipeline settings, the checkout's stores kept out."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "ACCESS_AUDIT_", "PYTHONPATH", "AWS_"))
    }
    return {
        **inherited,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(PROJECT),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "ACCESS_AUDIT_REVIEW_DB": f"sqlite:///{home / 'review.db'}",
        "ACCESS_AUDIT_MODELS_DIR": str(home / "models"),
    }


class Airflow:
    """Airflow processes started by a test, and the CLI against their home."""

    def __init__(self, home: Path, env: dict[str, str], port: int) -> None:
        self.home, self.env, self.port = home, env, port
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        """`airflow <args>` in its own process group, its output in <home>/<name>.log."""
        with self.log_path(name).open("wb") as log:
            self.processes[name] = subprocess.Popen(
                [str(VENV_BIN / "airflow"), *args],
                cwd=self.home,
                env={**self.env, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log_path(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def log_text(self, name: str) -> str:
        return self.log_path(name).read_text(errors="replace")

    def log_tail(self, chars: int = 4000) -> str:
        return "\n".join(f"--- {n}:\n{self.log_text(n)[-chars:]}" for n in self.processes)

    def api_is_up(self) -> bool:
        health = f"http://127.0.0.1:{self.port}/api/v2/monitor/health"
        try:
            with urllib.request.urlopen(health, timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def assert_alive(self) -> None:
        """Fail now, not at a timeout, when a process died or a scheduler gave up."""
        for name, process in self.processes.items():
            assert process.poll() is None, f"airflow {name} exited:\n{self.log_tail()}"
            log = self.log_text(name)
            assert "Exception when executing SchedulerJob" not in log, f"scheduler died:\n{log}"

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

    def wait_for_runs(self, days: list[date], seconds: float = RUNS_SECONDS) -> dict[date, str]:
        def finished() -> dict[date, str] | None:
            self.assert_alive()
            runs = self.runs_by_day()
            states = {d: runs[d]["state"] if d in runs else "absent" for d in days}
            return states if all(s in FINISHED for s in states.values()) else None

        try:
            return wait_until(finished, seconds, f"runs of {days}", pause=3.0)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnose(days)}") from None

    def task_states(self, day: date) -> dict[str, str]:
        run_id = self.runs_by_day()[day]["run_id"]
        rows = self.json_cli("tasks", "states-for-dag-run", DAG_ID, run_id)
        return {r["task_id"]: r["state"] for r in rows}

    def task_log(self, day: date, task_id: str) -> str:
        run_id = self.runs_by_day()[day]["run_id"]
        folder = self.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"
        return "".join(p.read_text(errors="replace") for p in sorted(folder.rglob("*.log")))

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
        """Terminate every process group this test started (and all their children)."""
        for process in self.processes.values():
            stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    try:
        family = [psutil.Process(process.pid)]
        family += family[0].children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        _, alive = psutil.wait_procs(family, timeout=30)
        if not alive:
            break
    for leftover in psutil.wait_procs(family, timeout=0)[1]:
        leftover.kill()
    process.wait(timeout=30)


def backfill(airflow: Airflow, first: date, last: date, *options: str) -> None:
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


def wait_for_dag(airflow: Airflow) -> None:
    """Until the DAG processor has parsed the DAG (it stays paused, as created)."""
    wait_until(
        lambda: airflow.run("dags", "pause", DAG_ID).returncode == 0,
        120,
        f"the DAG processor to parse {DAG_ID}",
    )
