"""Alerts through the DAG's notifier adapter (dags/_alerting.py) to a local SMTP server started
here: a sample day's high-severity flags arrive with the warehouse's numbers; with no channel
configured nothing is sent, even with a server running and a connection defined."""

from __future__ import annotations

import email
import importlib.util
import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from email.message import Message
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipeline.config import SEVERITIES, Settings, load_settings
from pipeline.report.notifications import alerts_for
from tests.nightly_runs import free_port
from tests.sample_warehouse import FIRST, build_sample_warehouse

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
DAY = FIRST + timedelta(1)
CONN_ID = "access_audit_test_smtp"
RECIPIENTS = ("security@example.test", "oncall@example.test")


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """A plain SMTP server on a free local port and an Airflow connection to it (no TLS, no
    login), defined the way deployments do: an AIRFLOW_CONN_<ID> variable."""
    from aiosmtpd.controller import Controller

    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    connection = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "extra": {
            "disable_tls": True,
            "disable_ssl": True,
            "from_email": "access-audit@example.test",
            "timeout": 10,
            "retry_limit": 0,
        },
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection))
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def warehouse_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return build_sample_warehouse(tmp_path_factory.mktemp("alerts"), 2, with_model=False)


@pytest.fixture(scope="module")
def alerting(airflow_home: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "alerting_under_test", DAGS_FOLDER / "_alerting.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def day_summary(settings: Settings) -> dict[str, Any]:
    path = Path(settings.warehouse) / "reports" / f"date={DAY}" / "summary.json"
    return json.loads(path.read_text())


def high_severity_flags(settings: Settings) -> Counter[str]:
    """Flags at or above the alert severity by alert id, read straight from the day's Parquet
    files."""
    folder = Path(settings.warehouse) / "flags" / f"date={DAY}"
    flags = pq.read_table(folder, columns=["alert_id", "severity"]).to_pylist()
    wanted = SEVERITIES[SEVERITIES.index(settings.alert_min_severity) :]
    return Counter(f["alert_id"] for f in flags if f["severity"] in wanted)


def body_text(message: Message) -> str:
    parts = [p for p in message.walk() if p.get_content_type() == "text/html"]
    assert len(parts) == 1
    payload = parts[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode("utf-8")


@pytest.fixture
def smtp_settings(warehouse_settings: Settings) -> Settings:
    """The sample warehouse's settings with alerts going by e-mail through the test server."""
    return load_settings(
        env={},
        landing=warehouse_settings.landing,
        warehouse=warehouse_settings.warehouse,
        alert_smtp_conn_id=CONN_ID,
        alert_email_to=list(RECIPIENTS),
    )


@pytest.mark.slow
def test_high_severity_alert_arrives_by_smtp_with_the_warehouse_numbers(
    alerting: ModuleType, smtp_settings: Settings, inbox: Inbox
) -> None:
    settings = smtp_settings
    summary = day_summary(settings)
    by_alert = high_severity_flags(settings)
    crossed = {a: n for a, n in by_alert.items() if n >= settings.alert_flag_threshold}
    assert crossed, "the sample day should call for an alert"
    high = sum(crossed.values())

    sent = alerting.send_alerts(alerts_for(summary, settings), settings)

    assert sent == len(inbox.messages) == 1
    recipients, message = inbox.messages[0]
    assert recipients == list(RECIPIENTS)
    assert message["From"] == "access-audit@example.test"
    assert message["Subject"] == (
        f"[partner-access-audit] {DAY}: {len(crossed):,} alerts with {high:,} flags at or above "
        f"severity high (alert threshold {settings.alert_flag_threshold} per alert)"
    )
    body = body_text(message)
    flags = pq.read_table(Path(settings.warehouse) / "flags" / f"date={DAY}", columns=["rule"])
    assert f"- Flags: {flags.num_rows:,} ({sum(by_alert.values()):,} at or above high)" in body
    for alert_id in sorted(crossed, key=lambda a: (-crossed[a], a))[:10]:  # the body names ten
        assert f"{settings.review_url}/alerts/{alert_id}" in body
    assert f"{settings.review_url}/queue?start={DAY}&amp;end={DAY}" in body


@pytest.mark.slow
def test_a_retried_alert_task_does_not_send_the_day_s_alerts_again(
    alerting: ModuleType, smtp_settings: Settings, inbox: Inbox
) -> None:
    settings = smtp_settings
    alerts = alerts_for(day_summary(settings), settings)

    first = alerting.send_alerts(alerts, settings, day=DAY)
    again = alerting.send_alerts(alerts, settings, day=DAY)
    other_day = alerting.send_alerts(alerts, settings, day=DAY + timedelta(1))

    assert (first, again, other_day) == (len(alerts), 0, len(alerts))
    assert len(inbox.messages) == 2 * len(alerts)


@pytest.mark.slow
def test_run_failure_alert_arrives_by_smtp(alerting: ModuleType, inbox: Inbox) -> None:
    settings = load_settings(env={}, alert_smtp_conn_id=CONN_ID, alert_email_to=RECIPIENTS[0])
    context = {"run_id": "scheduled__2026-03-03", "exception": RuntimeError("registry invalid")}

    assert alerting.notify_run_failure(context, settings, "2026-03-02") == 1

    ((_, message),) = inbox.messages
    assert message["Subject"] == "[partner-access-audit] 2026-03-02: run failed in ?"
    assert "- Reason: registry invalid" in body_text(message)


@pytest.mark.slow
def test_missing_delivery_arrives_as_an_incomplete_input_alert(
    alerting: ModuleType, inbox: Inbox
) -> None:
    settings = load_settings(env={}, alert_smtp_conn_id=CONN_ID, alert_email_to=RECIPIENTS[0])
    sensor = SimpleNamespace(task_id="wait_for_delivery", log_url=None)
    reason = "delivery incomplete after 600 s; missing markers: access/2026-03-02/_SUCCESS"
    context = {"run_id": "scheduled__2026-03-03", "ti": sensor, "exception": reason}

    assert alerting.notify_run_failure(context, settings, "2026-03-02") == 1

    ((_, message),) = inbox.messages
    assert message["Subject"] == (
        "[partner-access-audit] 2026-03-02: input missing, nothing audited in wait_for_delivery"
    )
    assert "missing markers: access/2026-03-02/_SUCCESS" in body_text(message)


@pytest.mark.slow
@pytest.mark.parametrize(
    "channel",
    [{}, {"alert_smtp_conn_id": CONN_ID}, {"alert_email_to": list(RECIPIENTS)}],
    ids=["nothing", "connection-without-recipients", "recipients-without-connection"],
)
def test_nothing_is_sent_without_a_configured_channel(
    alerting: ModuleType,
    warehouse_settings: Settings,
    inbox: Inbox,
    channel: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = load_settings(env={}, warehouse=warehouse_settings.warehouse, **channel)
    alerts = alerts_for(day_summary(settings), settings)
    assert alerts, "the sample day calls for an alert"

    with caplog.at_level("INFO"):
        assert alerting.send_alerts(alerts, settings) == 0

    assert inbox.messages == []
    assert "no alert channel configured" in caplog.text
