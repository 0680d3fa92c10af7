"""Sends the pipeline's alerts through Airflow's notifiers: e-mail (SMTP provider) when
`alert_smtp_conn_id` and `alert_email_to` are set, Slack (incoming webhook) when
`alert_slack_conn_id` is set, nothing otherwise. Not a DAG: the nightly DAG loads it by path."""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from pipeline.config import Settings
from pipeline.report.notifications import Alert, run_failure_alert

log = logging.getLogger(__name__)
DELIVERY_SENSOR = "wait_for_delivery"  # the nightly DAG's task that fails when input is missing


def _email_html(alert: Alert) -> str:
    return (
        '<pre style="font-family: monospace; white-space: pre-wrap">'
        f"{html.escape(alert.body)}</pre>"
    )


def notifiers_for(alert: Alert, settings: Settings) -> list[Any]:
    """The configured channels' notifiers for one alert (empty when none is configured)."""
    notifiers: list[Any] = []
    if settings.alert_smtp_conn_id and settings.alert_email_to:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        notifiers.append(
            SmtpNotifier(
                to=list(settings.alert_email_to),
                subject=alert.subject,
                html_content=_email_html(alert),
                smtp_conn_id=settings.alert_smtp_conn_id,
            )
        )
    if settings.alert_slack_conn_id:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        notifiers.append(
            SlackWebhookNotifier(
                slack_webhook_conn_id=settings.alert_slack_conn_id,
                text=alert.slack_text(),
            )
        )
    return notifiers


def send_alerts(
    alerts: Sequence[Alert],
    settings: Settings,
    context: Mapping[str, Any] | None = None,
    day: date | None = None,
) -> int:
    """Send each alert through every configured channel; returns the messages sent. With a
    `day`, an alert already delivered for it (an earlier try of the task) is not sent again."""
    from pipeline.steps import alerts_sent, record_alert_sent

    if day is not None:
        delivered = alerts_sent(day, settings)
        alerts = [alert for alert in alerts if alert.subject not in delivered]
    if not alerts:
        log.info("no alert to send")
        return 0
    if not (settings.alert_smtp_conn_id and settings.alert_email_to) and not (
        settings.alert_slack_conn_id
    ):
        log.info(
            "no alert channel configured; %d alert(s) not sent: %s",
            len(alerts),
            "; ".join(a.subject for a in alerts),
        )
        return 0
    sent = 0
    for alert in alerts:
        notifiers = notifiers_for(alert, settings)
        for notifier in notifiers:
            # notify(), not __call__: our text is sent as is, never rendered as a Jinja template
            notifier.notify(dict(context or {}))
            sent += 1
        if day is not None:
            record_alert_sent(day, settings, alert.subject)
        log.info("alert sent through %d channel(s): %s", len(notifiers), alert.subject)
    return sent


def notify_run_failure(context: Mapping[str, Any], settings: Settings, day: str) -> int:
    """The failure callback's work: one run-failure alert through the configured channels."""
    ti = context.get("ti")
    run = context.get("run_id") or getattr(context.get("dag_run"), "run_id", "?")
    task = getattr(ti, "task_id", "?")
    reason = context.get("exception") or "see the task log"
    log_url = getattr(ti, "log_url", None)
    input_missing = task == DELIVERY_SENSOR
    alert = run_failure_alert(str(run), str(task), day, str(reason), log_url, input_missing)
    return send_alerts([alert], settings, context)
