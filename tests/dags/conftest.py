"""Airflow for the DAG tests: a throwaway AIRFLOW_HOME with a migrated SQLite metadata database.

Airflow reads its configuration when it is first imported, so the environment is set here, when
pytest collects this folder and before any test module imports Airflow.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = PROJECT / "dags"
SAMPLE_LOGS = PROJECT / "sample_logs"

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="access-audit-airflow-"))
# removed when this process ends, not by a fixture: a pytest-xdist worker that runs none of the
# DAG tests never starts the session fixture, and left its folder behind
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
)


@pytest.fixture(scope="session", autouse=True)
def airflow_home() -> Path:
    """The session's AIRFLOW_HOME (removed when the process ends)."""
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """AIRFLOW_HOME with its SQLite metadata database migrated, as `airflow db migrate` does."""
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    return airflow_home
