"""
# Partner access audit — nightly

Flags partner-API accesses to users' message content that no partnership or user consent covered
(the rules are in the project's `SPEC.md` §3). **One run processes one delivery day `D`**: the run's
data interval `[D 00:00 UTC, D+1 00:00 UTC)`. The run for `D` starts at midnight after `D` and waits
for the day's delivery.

| task | does |
|---|---|
| `wait_for_delivery` | waits for the `_SUCCESS` markers of `access/D/` and `consent/D/` |
| `ingest_access` | landing `access/D/` → warehouse `access/date=D/`, `quarantine/` |
| `ingest_consent` | `consent/D/` (and earlier days missing) → `consent/date=D/`, `quarantine/` |
| `plan_detect` | checks detection's inputs; names its `detect_shards` units |
| `detect_shard` | mapped, one task per user shard: that shard's flags, staged (not yet visible) |
| `detect` | the shards' flags → warehouse `flags/date=D/` (one atomic commit) |
| `score` | behaviour of `D` → `anomalies/date=D/` with the newest model (skipped without one) |
| `alerts` | flags of `D` + its alerted anomalies → `alerts/date=D/` (SPEC §5) |
| `publish` | checks counts, alerts → review store, `runs/date=D/`; emits the flags asset |
| `report` | writes `reports/date=D/`: `report.html`, `summary.json`, `digest.md` |
| `alert` | sends the summary's notifications (alerts over the threshold, incomplete input) |

**Alerts** go through Airflow notifiers: e-mail when the settings `alert_smtp_conn_id` and
`alert_email_to` name an SMTP connection and recipients, Slack when `alert_slack_conn_id` names a
Slack incoming-webhook connection; nothing is sent otherwise. A task that fails for good (after
its retries) sends a run-failure alert through the same channels.

**Ordering.** Flags for `D` depend on the consent of every day `<= D`. `ingest_consent` ingests
the day's consent and then catches up earlier delivered days the warehouse lacks; one runs at a
time in the DAG (`max_active_tis_per_dag=1`), so overlapping runs (backfills with
`--max-active-runs` > 1) never write one consent partition twice at once, and no run waits on
another's success. `plan_detect` fails naming a delivered consent day that is still not ingested;
a day whose consent delivery never came is listed in `detect.json`
(`consent_days_not_delivered`) and later days still run. A day's detection is `detect_shards`
mapped tasks (dynamic task mapping), on whatever workers the executor has.

The sensor runs in reschedule mode (it frees its worker slot between looks) and fails after
`delivery_timeout_seconds`, naming the missing markers: nothing is written for an incomplete day.
`publish` emits the asset `partner_access_audit_flags` with `extra.day` = `D`.

**Settings** come from the project config (`access-audit.toml`, `ACCESS_AUDIT_*` variables); with
none, the landing zone is `sample_logs/`. Params `landing` and `warehouse` override them per run.

**Backfill** (runs the same steps as `access-audit backfill`, same flags):
`airflow backfill create --dag-id partner_access_audit --from-date 2026-03-01 --to-date 2026-03-14
--max-active-runs 2 --reprocess-behavior completed`.
A manual trigger with logical date `L` processes the last whole day before `L`.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from airflow.sdk import (
    Asset,
    BaseSensorOperator,
    CronDataIntervalTimetable,
    Param,
    dag,
    task,
)
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from pipeline.config import Settings, load_settings
from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from airflow.sdk import Context

FLAGS_ASSET = Asset(
    name="partner_access_audit_flags", uri="x-partner-access-audit://warehouse/flags"
)


def _alerting() -> ModuleType:
    """The alert adapter beside this file (dags/_alerting.py), loaded by path: the DAG folder
    need not be on sys.path."""
    name = "partner_access_audit_alerting"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("_alerting.py")
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def _on_failure(context: Mapping[str, Any]) -> None:
    """A task failed for good: tell the security team through the configured channels."""
    try:
        day, settings = _day_and_settings(context)
    except AirflowFailException:
        day, settings = None, load_settings()
    _alerting().notify_run_failure(context, settings, day.isoformat() if day else "unknown")


def _day_and_settings(context: Mapping[str, Any]) -> tuple[date, Settings]:
    """The run's delivery day (its data interval start) and its settings (config + run params)."""
    start = context.get("data_interval_start")
    if start is None:
        raise AirflowFailException(
            "this run has no data interval: give it a logical date (it processes the day before)"
        )
    params = context["params"]
    try:
        settings = load_settings(
            landing=params.get("landing") or None, warehouse=params.get("warehouse") or None
        )
    except ConfigError as exc:
        raise AirflowFailException(str(exc)) from None
    return start.astimezone(UTC).date(), _with_review_url(settings)


def _with_review_url(settings: Settings) -> Settings:
    """Inside Airflow the review UI is the plugin's app on the API server: report and digest
    links point there unless the settings name another `review_url`."""
    import dataclasses

    if settings.review_url != Settings().review_url:
        return settings
    from airflow.sdk import conf

    from pipeline.review.airflow_plugin import URL_PREFIX

    host = conf.get("api", "host", fallback="") or "localhost"
    host = "localhost" if host in ("0.0.0.0", "::") else host  # bound to all: not a link
    base = conf.get("api", "base_url", fallback=None) or (
        f"http://{host}:{conf.get('api', 'port', fallback='8080')}"
    )
    return dataclasses.replace(settings, review_url=base.rstrip("/") + URL_PREFIX)


# Waits up to this long hold a worker slot (poke mode): no reschedule round trips through the
# scheduler, so a short timeout fails on time, not after a re-queue race and a retry.
POKE_MODE_UP_TO_SECONDS = 300


class DeliverySensor(BaseSensorOperator):
    """Waits for a day's delivery markers; on timeout, fails naming the landing zone it looked
    in and the markers still missing."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(mode="reschedule", **kwargs)
        self._missing: list[str] = []
        self._landing = ""

    def poke(self, context: Context) -> bool:
        from pipeline.steps import missing_markers

        day, settings = _day_and_settings(context)
        self._landing = settings.landing
        self._missing = missing_markers(day, settings)
        if self._missing:
            self.log.info(
                "delivery of %s incomplete in %s; missing: %s",
                day,
                settings.landing,
                ", ".join(self._missing),
            )
        return not self._missing

    def execute(self, context: Context) -> Any:
        # Timing comes from run params so a run (or a test) can wait less than the nightly default.
        self.timeout = float(context["params"]["delivery_timeout_seconds"])
        # never sleep past the deadline: the timeout is looked at on each poke
        self.poke_interval = max(
            1.0, min(float(context["params"]["delivery_poke_seconds"]), self.timeout / 3 or 1.0)
        )
        if self.timeout <= POKE_MODE_UP_TO_SECONDS:
            self.mode = "poke"
        try:
            return super().execute(context)
        except AirflowSensorTimeout:
            raise AirflowSensorTimeout(
                f"delivery incomplete after {self.timeout:.0f} s; missing markers in "
                f"{self._landing}: " + ", ".join(self._missing)
            ) from None


@dag(
    dag_id="partner_access_audit",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2020, 1, 1, tzinfo=UTC),
    catchup=False,
    # runs of different days share nothing but consent (see Ordering): a run waiting for its
    # delivery (e.g. the latest interval, scheduled on unpausing) never holds up a manual run
    max_active_runs=2,
    tags=["partner-access-audit", "security", "nightly"],
    doc_md=__doc__,
    default_args={
        "owner": "partner-access-audit",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "on_failure_callback": _on_failure,
    },
    params={
        "landing": Param(
            None,
            type=["null", "string"],
            description="Landing zone (path or s3://…); empty: from config, default sample_logs/.",
        ),
        "warehouse": Param(
            None,
            type=["null", "string"],
            description="Warehouse (path or s3://…); empty: from config.",
        ),
        "delivery_timeout_seconds": Param(
            12 * 3600,
            type="integer",
            minimum=0,
            description="How long to wait for the day's markers.",
        ),
        "delivery_poke_seconds": Param(
            300, type="integer", minimum=1, description="How often to look for the markers."
        ),
    },
)
def partner_access_audit() -> None:
    wait_for_delivery = DeliverySensor(task_id="wait_for_delivery")

    @task
    def ingest_access(**context: Any) -> dict[str, Any]:
        from pipeline import steps

        return steps.ingest_access(*_day_and_settings(context))

    @task(max_active_tis_per_dag=1)  # the catch-up may write an earlier day's consent
    def ingest_consent(**context: Any) -> dict[str, Any]:
        from pipeline import steps

        day, settings = _day_and_settings(context)
        summary = steps.ingest_consent(day, settings)
        summary["catch_up"] = steps.catch_up_consent(day, settings)
        return summary

    @task
    def plan_detect(**context: Any) -> list[dict[str, Any]]:
        from pipeline import steps

        plan = steps.detect_plan(*_day_and_settings(context), run=context["run_id"])
        return [
            {"shard": k, "shards": plan["shards"], "run": plan["run"]}
            for k in range(plan["shards"])
        ]

    @task(map_index_template="{{ task.op_kwargs['unit']['shard'] }}")
    def detect_shard(unit: dict[str, Any], **context: Any) -> dict[str, Any]:
        from pipeline import steps

        day, settings = _day_and_settings(context)
        return steps.detect_shard(day, settings, unit["shard"], unit["shards"], unit["run"])

    @task
    def detect(units: list[dict[str, Any]], **context: Any) -> dict[str, Any]:
        from pipeline import steps

        day, settings = _day_and_settings(context)
        return steps.detect_commit(day, settings, units[0]["run"], units[0]["shards"])

    @task(max_active_tis_per_dag=1)
    def score(**context: Any) -> dict[str, Any]:
        from pipeline import steps

        return steps.score(*_day_and_settings(context))

    @task
    def alerts(**context: Any) -> dict[str, Any]:
        from pipeline import steps

        return steps.alerts(*_day_and_settings(context))

    @task(outlets=[FLAGS_ASSET])
    def publish(**context: Any) -> dict[str, Any]:
        from pipeline import steps

        day, settings = _day_and_settings(context)
        summary = steps.publish(day, settings)
        context["outlet_events"][FLAGS_ASSET].extra = {
            "day": day.isoformat(),
            "warehouse": settings.warehouse,
        }
        return summary

    @task
    def report(**context: Any) -> dict[str, Any]:
        from pipeline import steps

        return steps.report(*_day_and_settings(context))

    @task
    def alert(summary: dict[str, Any], **context: Any) -> int:
        from pipeline.report.notifications import alerts_for

        day, settings = _day_and_settings(context)
        alerts = alerts_for(summary, settings)
        return int(_alerting().send_alerts(alerts, settings, context, day))

    ingested = [ingest_access(), ingest_consent()]
    wait_for_delivery >> ingested
    summary = report()
    units = plan_detect()
    ingested >> units
    detect_shard.expand(unit=units) >> (detected := detect(units))
    detected >> score() >> alerts() >> publish() >> summary
    alert(summary)


partner_access_audit()
