"""
# Partner access audit — weekly model retraining

Trains the behaviour model (scikit-learn; see `pipeline/anomaly.py`) on the trailing window of
delivery days that ends with the run's week, and stores it as a new version under
`models/partner_behaviour/<version>/` with its metadata (window, features, scikit-learn version,
random state, data fingerprint, parameters, metrics). The nightly DAG's `score` task uses the
newest version from its next run on; earlier versions stay for comparison and rollback.

One run covers the data interval of one week `[Monday 00:00 UTC, next Monday)`; the window ends on
its last day. Param `window_days` (default: the `anomaly_window_days` setting, 28) sets its length.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

from pipeline.config import load_settings
from pipeline.errors import ConfigError


@dag(
    dag_id="partner_access_audit_retrain",
    schedule=CronDataIntervalTimetable("0 6 * * 1", timezone="UTC"),
    start_date=datetime(2020, 1, 6, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["partner-access-audit", "security", "model"],
    doc_md=__doc__,
    default_args={
        "owner": "partner-access-audit",
        "retries": 1,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": 2.0,
    },
    params={
        "window_days": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            description="Days of behaviour to train on; empty: the setting.",
        ),
        "warehouse": Param(
            None,
            type=["null", "string"],
            description="Warehouse (path or s3://…); empty: from config.",
        ),
    },
)
def partner_access_audit_retrain() -> None:
    @task
    def train(**context: Any) -> dict[str, Any]:
        from pipeline import steps

        params = context["params"]
        try:
            settings = load_settings(warehouse=params.get("warehouse") or None)
        except ConfigError as exc:
            raise AirflowFailException(str(exc)) from None
        end = (context["data_interval_end"] - timedelta(days=1)).astimezone(UTC).date()
        window = params.get("window_days") or settings.anomaly_window_days
        return steps.train(end, window, settings)

    train()


partner_access_audit_retrain()
