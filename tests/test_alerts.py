"""pipeline.report.notifications: which alerts a report summary calls for
under the settings' thresholds."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.config import load_settings
from pipeline.report.notifications import alerts_for, run_failure_alert


def high_alert(n: int, name: str, flags: int | None = None) -> dict[str, Any]:
    """A rule alert of the summary with `n` flags at or above the alert severity."""
    return {
        "alert_id": f"id-{name}",
        "rule": "NO_SIGNIN",
        "severity": "high",
        "flags": n if flags is None else flags,
        "flags_at_or_above": n,
        "explanation": f"{name} made {n} message accesses.",
        "link": f"http://review.example/alerts/id-{name}",
    }


def summary(
    high: int = 0, quarantined: int = 0, read: int = 1000, missing: Any = (), alerts: Any = None
) -> dict:
    """A report summary with the figures the alerts look at: by default one rule alert with
    `high` flags at or above severity high."""
    counts = {"files": 2, "read": read, "valid": read - quarantined, "quarantined": quarantined}
    if alerts is None:
        alerts = [high_alert(high, "Streamflix", high + 7)] if high else []
    return {
        "start": "2026-03-05",
        "end": "2026-03-05",
        "totals": {"flags": high + 7, "anomaly_alerts": 0, "alerts": 2, "rule_alerts": 2},
        "high_severity": {
            "min_severity": "high",
            "flags": sum(a["flags_at_or_above"] for a in alerts),
            "alerts": alerts,
        },
        "flags_by_rule": {"NO_SIGNIN": high + 7},
        "flags_by_partner": {"P005": high + 7},
        "partners_after_end": [],
        "completeness": {
            "by_kind": {"access": {**counts, "duplicates_dropped": 0}},
            "quarantined_share": quarantined / read if read else 0.0,
            "missing_inputs": list(missing),
        },
        "links": {"queue": "http://review.example/queue?start=2026-03-05&end=2026-03-05"},
    }


@pytest.mark.parametrize(("high", "threshold", "alerted"), [(4, 5, False), (5, 5, True)])
def test_alerts_for_an_alert_with_high_severity_flags_at_the_threshold(high, threshold, alerted):
    settings = load_settings(env={}, alert_flag_threshold=threshold)
    alerts = alerts_for(summary(high=high), settings)
    assert [a.kind for a in alerts] == (["high_severity_flags"] if alerted else [])
    if alerted:
        (alert,) = alerts
        assert alert.subject == (
            "[partner-access-audit] 2026-03-05: 1 alert with 5 flags at or above severity high "
            "(alert threshold 5 per alert)"
        )
        assert (
            "- **high** NO_SIGNIN: Streamflix made 5 message accesses. (5 at or above high) "
            "http://review.example/alerts/id-Streamflix"
        ) in alert.body
        assert "- Flags: 12 (5 at or above high)" in alert.body
        assert "http://review.example/queue?start=2026-03-05&end=2026-03-05" in alert.body


def test_alerts_for_names_only_the_alerts_that_crossed_the_threshold():
    """The threshold is per alert: flags spread over alerts below it call for nothing."""
    settings = load_settings(env={}, alert_flag_threshold=4)
    below = summary(alerts=[high_alert(3, "A"), high_alert(3, "B")])
    assert alerts_for(below, settings) == []
    (alert,) = alerts_for(summary(alerts=[high_alert(3, "A"), high_alert(4, "B")]), settings)
    assert "1 alert with 4 flags" in alert.subject
    assert "/alerts/id-B" in alert.body and "/alerts/id-A" not in alert.body


def test_alerts_for_lists_ten_alerts_and_links_the_rest():
    crossed = [high_alert(20 - n, f"P{n:02d}") for n in range(12)]
    (alert,) = alerts_for(summary(alerts=crossed), load_settings(env={}))
    assert "12 alerts with" in alert.subject
    assert alert.body.count("/alerts/id-P") == 10
    assert "- and 2 more: http://review.example/queue?start=2026-03-05&end=2026-03-05" in alert.body


@pytest.mark.parametrize(("quarantined", "alerted"), [(50, False), (51, True)])
def test_alerts_for_a_quarantined_share_above_the_maximum(quarantined, alerted):
    settings = load_settings(env={}, alert_max_quarantine_share=0.05)
    alerts = alerts_for(summary(quarantined=quarantined), settings)
    assert [a.kind for a in alerts] == (["incomplete_input"] if alerted else [])
    if alerted:
        assert "5.10% of the records read were quarantined (more than 5.00%)" in alerts[0].subject


def test_alerts_for_missing_inputs_names_them():
    missing = ["2026-03-05: no run manifest (the day was not published)"]
    (alert,) = alerts_for(summary(read=0, missing=missing), load_settings(env={}))
    assert alert.kind == "incomplete_input"
    assert "- 2026-03-05: no run manifest (the day was not published)" in alert.body


def test_alerts_for_both_kinds_at_once():
    settings = load_settings(env={}, alert_flag_threshold=1, alert_max_quarantine_share=0)
    kinds = [a.kind for a in alerts_for(summary(high=1, quarantined=1), settings)]
    assert kinds == ["high_severity_flags", "incomplete_input"]


def test_run_failure_alert_names_run_task_and_reason():
    alert = run_failure_alert(
        "scheduled__2026-03-06", "detect", "2026-03-05", "registry invalid", "http://af/log"
    )
    assert alert.kind == "run_failure"
    assert alert.subject == "[partner-access-audit] 2026-03-05: run failed in detect"
    assert "- Reason: registry invalid" in alert.body
    assert "- Log: http://af/log" in alert.body


def test_run_failure_alert_of_a_missing_delivery_is_an_incomplete_input_alert():
    alert = run_failure_alert(
        "scheduled__2026-03-06",
        "wait_for_delivery",
        "2026-03-05",
        "delivery incomplete after 600 s; missing markers: consent/2026-03-05/_SUCCESS",
        None,
        input_missing=True,
    )
    assert alert.kind == "incomplete_input"
    assert alert.subject == (
        "[partner-access-audit] 2026-03-05: input missing, nothing audited in wait_for_delivery"
    )
    assert "missing markers: consent/2026-03-05/_SUCCESS" in alert.body
