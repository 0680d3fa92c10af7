"""Which alerts a report summary calls for. Pure: summary and settings in, alerts out; sending
them is the Airflow adapter's job (dags/_alerting.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipeline.config import Settings
from pipeline.report.digest import digest_markdown, period

SUBJECT_PREFIX = "[partner-access-audit]"


@dataclass(frozen=True)
class Alert:
    """One message to the security team: its kind, a subject line and a Markdown body."""

    kind: str  # high_severity_flags | incomplete_input | run_failure
    subject: str
    body: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


LISTED = 10  # alerts named in a notification's body; the subject counts them all


def _high_severity(summary: dict[str, Any], settings: Settings) -> Alert | None:
    """Names the rule alerts with at least the threshold's flags at or above the severity."""
    threshold = settings.alert_flag_threshold
    level = summary["high_severity"]["min_severity"]
    crossed = [a for a in summary["high_severity"]["alerts"] if a["flags_at_or_above"] >= threshold]
    if not crossed:
        return None
    flags = sum(a["flags_at_or_above"] for a in crossed)
    reason = (
        f"{len(crossed):,} alert{'s' if len(crossed) != 1 else ''} with {flags:,} flags at or "
        f"above severity {level} (alert threshold {threshold:,} per alert)"
    )
    lines = [
        f"- **{a['severity']}** {a['rule']}: {a['explanation']}"
        + (
            f" ({a['flags_at_or_above']:,} at or above {level})"
            if a["flags_at_or_above"] != a["flags"]
            else ""
        )
        + f" {a['link']}"
        for a in crossed[:LISTED]
    ]
    if len(crossed) > LISTED:
        lines.append(f"- and {len(crossed) - LISTED:,} more: {summary['links']['queue']}")
    return Alert(
        "high_severity_flags",
        f"{SUBJECT_PREFIX} {period(summary)}: {reason}",
        f"{reason}:\n" + "\n".join(lines) + f"\n\n{digest_markdown(summary)}",
    )


def _incomplete_input(summary: dict[str, Any], settings: Settings) -> Alert | None:
    completeness = summary["completeness"]
    share = completeness["quarantined_share"]
    reasons = list(completeness["missing_inputs"])
    if share > settings.alert_max_quarantine_share:
        reasons.insert(
            0,
            f"{share:.2%} of the records read were quarantined "
            f"(more than {settings.alert_max_quarantine_share:.2%})",
        )
    if not reasons:
        return None
    return Alert(
        "incomplete_input",
        f"{SUBJECT_PREFIX} {period(summary)}: incomplete input ({reasons[0]})",
        "Incomplete input:\n"
        + "".join(f"- {r}\n" for r in reasons)
        + "\n"
        + digest_markdown(summary),
    )


def alerts_for(summary: dict[str, Any], settings: Settings) -> list[Alert]:
    """The alerts a report summary calls for under the settings' thresholds."""
    candidates = (_high_severity(summary, settings), _incomplete_input(summary, settings))
    return [alert for alert in candidates if alert is not None]


def run_failure_alert(
    run: str, task: str, day: str, reason: str, log_url: str | None, input_missing: bool = False
) -> Alert:
    """The alert for a failed run: which run and task, and why. A run that failed because its
    delivery never arrived is an incomplete-input alert: nothing of that day was audited."""
    what = "input missing, nothing audited" if input_missing else "run failed"
    lines = [f"**Partner access audit {what}**: {run}", f"- Delivery day: {day}"]
    lines += [f"- Task: {task}", f"- Reason: {reason}"]
    if log_url:
        lines.append(f"- Log: {log_url}")
    return Alert(
        "incomplete_input" if input_missing else "run_failure",
        f"{SUBJECT_PREFIX} {day}: {what} in {task}",
        "\n".join(lines) + "\n",
    )
