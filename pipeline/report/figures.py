"""The report's figures: a day's (or a range's) alerts, anomalies and input completeness, and the
30-day trend, gathered from the warehouse into a JSON-able summary.

Everything about flags comes from the alerts partitions (SPEC §5: a row per day, app and rule with
its flag counts), never from the flags one by one: a day of millions of flags costs the report
what a day of a few costs. Anomaly scores are counted by DuckDB over their Parquet files; the
completeness figures come from the runs' manifests.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from pipeline import duck
from pipeline.config import SEVERITIES, Settings
from pipeline.detect.alert_ids import COVERAGE_ALERT, behaviour_alert_id
from pipeline.links import alert_path, partner_path
from pipeline.report.coverage import coverage_rows, coverage_summary, measure_figures
from pipeline.schema import REPORT_ALERT_COLUMNS, RULES, UNKNOWN_PARTNER
from pipeline.warehouse import MANIFEST, Warehouse, report_label

TREND_DAYS = 30
TOP_ANOMALIES = 10
TOP_ALERTS = 50  # alerts listed in a report; the queue link has them all
TOP_REASONS = 5
KINDS = ("access", "consent")


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(n) for n in range((end - start).days + 1)]


class ReviewLinks:
    """URLs into the review UI (settings.review_url)."""

    def __init__(self, base_url: str, start: date, end: date) -> None:
        self.base = base_url.rstrip("/")
        self.window = {"start": start.isoformat(), "end": end.isoformat()}

    def queue(self, **filters: str) -> str:
        return f"{self.base}/queue?{urlencode({**self.window, **filters})}"

    def alert(self, alert_id: str) -> str:
        return f"{self.base}{alert_path(alert_id)}"

    def partner(self, partner_id: str) -> str:
        return f"{self.base}{partner_path(partner_id)}"  # one segment; `.` and `..` by query


ALERT_COLUMNS = REPORT_ALERT_COLUMNS


def _alert_rows(warehouse: Warehouse, days: list[date]) -> list[dict[str, Any]]:
    """The days' alerts (a few hundred a day at most, whatever the flags), oldest day first."""
    rows = []
    for day in days:
        rows.extend(
            warehouse.read_partition("alerts", day, columns=list(ALERT_COLUMNS)).to_pylist()
        )
    for row in rows:
        row["partner"] = row["partner_id"] or UNKNOWN_PARTNER
        row["by_severity"] = dict(zip(SEVERITIES, row["flags_by_severity"] or [], strict=False))
    return rows


def _at_or_above(alert: dict[str, Any], level: str) -> int:
    """The alert's flags of severity `level` or higher."""
    wanted = SEVERITIES[SEVERITIES.index(level) :]
    return sum(n for severity, n in alert["by_severity"].items() if severity in wanted)


def _alert_entry(alert: dict[str, Any], links: ReviewLinks) -> dict[str, Any]:
    """An alert as the report, digest and notifications list it."""
    keys = ("alert_id", "kind", "rule", "severity", "partner_id", "partner_name", "app_id")
    return {
        **{key: alert[key] for key in keys},
        "day": alert["day"].isoformat(),
        "user_id": alert["user_id"],
        "flags": alert["flags"],
        "users": alert["users"],
        "explanation": alert["explanation"],
        "link": links.alert(alert["alert_id"]),
    }


def _most_severe_first(alert: dict[str, Any]) -> tuple[Any, ...]:
    return (
        -SEVERITIES.index(alert["severity"]),
        -alert["flags"],
        -(alert["score"] or 0.0),
        alert["day"],
        alert["alert_id"],
    )


def _partners_after_end(alerts: list[dict[str, Any]], links: ReviewLinks) -> list[dict[str, Any]]:
    """Apps still reaching message content after their partnership ended, most flags first."""
    apps: dict[tuple[str, str], dict[str, Any]] = {}
    for alert in alerts:
        if alert["rule"] != "AFTER_PARTNERSHIP_END":
            continue
        ends = [p["end"] for p in json.loads(alert["evidence"])["partnerships"] if p["end"]]
        row = apps.setdefault(
            (alert["partner"], alert["app_id"]),
            {
                "partner_id": alert["partner_id"],
                "partner_name": alert["partner_name"],
                "app_id": alert["app_id"],
                "flags": 0,
                "first": alert["first_event_time"],
                "last": alert["last_event_time"],
                "ends": set(),
                "alerts": [],
            },
        )
        row["flags"] += alert["flags"]
        row["first"] = min(row["first"], alert["first_event_time"])
        row["last"] = max(row["last"], alert["last_event_time"])
        row["ends"].update(datetime.fromisoformat(end) for end in ends)
        row["alerts"].append(
            {"day": alert["day"].isoformat(), "link": links.alert(alert["alert_id"])}
        )
    rows = sorted(apps.values(), key=lambda r: (-r["flags"], r["partner_id"] or "", r["app_id"]))
    return [
        {
            "partner_id": r["partner_id"],
            "partner_name": r["partner_name"],
            "app_id": r["app_id"],
            "flags": r["flags"],
            "first_access": r["first"].isoformat(),
            "last_access": r["last"].isoformat(),
            "partnership_end": max(r["ends"]).isoformat() if r["ends"] else None,
            "link": links.queue(rule="AFTER_PARTNERSHIP_END", partner=r["partner_id"] or ""),
            "alerts": r["alerts"],
        }
        for r in rows
    ]


def _anomalies(con: Any, files: list[str], links: ReviewLinks) -> dict[str, Any]:
    """How many entities were scored and raised an alert, and the top alerts by score."""
    if not files:
        return {"days_scored": 0, "scored": 0, "alerts": 0, "top": []}
    days, scored, alerts = con.execute(
        "SELECT count(DISTINCT day), count(*), count(*) FILTER (WHERE alert) FROM read_parquet(?)",
        [files],
    ).fetchone()
    rows = con.execute(
        """
        SELECT entity_kind, day, partner_id, app_id, user_id, score, rank, top_features,
               explanation
        FROM read_parquet(?)
        WHERE alert
        ORDER BY score DESC, day, entity_kind, partner_id, app_id, user_id
        LIMIT ?
        """,
        [files, TOP_ANOMALIES],
    ).fetchall()
    top = []
    for kind, day, partner, app, user, score, rank, features, explanation in rows:
        alert_id = behaviour_alert_id(kind, day, partner, app, user)
        top.append(
            {
                "alert_id": alert_id,
                "entity_kind": kind,
                "day": day.isoformat(),
                "partner_id": partner,
                "app_id": app,
                "user_id": user,
                "score": round(score, 4),
                "rank": rank,
                "top_features": list(features),
                "explanation": explanation,
                "link": links.alert(alert_id),
            }
        )
    return {"days_scored": days, "scored": scored, "alerts": alerts, "top": top}


def _completeness(warehouse: Warehouse, days: list[date]) -> dict[str, Any]:
    """Files and records per kind, quarantine reasons and missing inputs, from the manifests."""
    counts = {kind: Counter[str]() for kind in KINDS}
    reasons: Counter[str] = Counter()
    missing: list[str] = []
    published = 0
    for day in days:
        manifest = warehouse.read_json("runs", day, MANIFEST)
        if manifest is None:
            missing.append(f"{day.isoformat()}: no run manifest (the day was not published)")
            continue
        published += 1
        for kind in KINDS:
            counts[kind].update(manifest["counts"][kind])
            reasons.update(manifest["quarantine_reasons"][kind])
            if not manifest["inputs"][kind]:
                missing.append(f"{day.isoformat()}: no {kind} files delivered")
    read = sum(counts[kind]["read"] for kind in KINDS)
    quarantined = sum(counts[kind]["quarantined"] for kind in KINDS)
    return {
        "days_published": published,
        "by_kind": {
            kind: {
                key: counts[kind][key]
                for key in ("files", "read", "valid", "quarantined", "duplicates_dropped")
            }
            for kind in KINDS
        },
        "quarantined_share": round(quarantined / read, 6) if read else 0.0,
        "top_quarantine_reasons": dict(
            sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]
        ),
        "missing_inputs": missing,
    }


def _trend(
    alerts: list[dict[str, Any]], window: list[date], with_data: set[date]
) -> dict[str, Any]:
    """Flags per day of the window, per partner and per rule (zeros on days without data)."""
    position = {day: i for i, day in enumerate(window)}
    by_partner: dict[str, list[int]] = {}
    by_rule: dict[str, list[int]] = {}
    for alert in alerts:
        if alert["day"] in position and alert["flags"]:
            at = position[alert["day"]]
            by_partner.setdefault(alert["partner"], [0] * len(window))[at] += alert["flags"]
            by_rule.setdefault(alert["rule"], [0] * len(window))[at] += alert["flags"]
    return {
        "days": [d.isoformat() for d in window],
        "has_data": [d in with_data for d in window],
        "by_partner": dict(sorted(by_partner.items())),
        "by_rule": {rule: by_rule[rule] for rule in RULES if rule in by_rule},
    }


def _coverage(
    warehouse: Warehouse, days: list[date], alerts: list[dict[str, Any]], links: ReviewLinks
) -> dict[str, Any]:
    """Accesses judged and not judged per partner and day, and the incomplete coverage alerts
    (each with the share that raised it)."""
    coverage = coverage_summary(coverage_rows(warehouse, days))
    for row in coverage["by_partner"]:
        known = row["partner_id"] != UNKNOWN_PARTNER
        row["link"] = links.partner(row["partner_id"]) if known else None
    coverage["alerts"] = [
        {**_alert_entry(a, links), "evidence": json.loads(a["evidence"])}
        for a in sorted(alerts, key=lambda a: (a["day"], a["partner"]))
        if a["kind"] == COVERAGE_ALERT
    ]
    return coverage


def gather(start: date, end: date, settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The summary of [start, end] and the trend of the 30 days ending at `end` (or the range,
    if longer)."""
    warehouse = Warehouse(settings.warehouse, settings)
    days = days_between(start, end)
    window = days_between(min(start, end - timedelta(TREND_DAYS - 1)), end)
    alerted_days = set(warehouse.partition_days("alerts"))
    links = ReviewLinks(settings.review_url, start, end)
    window_alerts = _alert_rows(warehouse, [d for d in window if d in alerted_days])
    alerts = [a for a in window_alerts if start <= a["day"] <= end]
    rule_alerts = [a for a in alerts if a["flags"]]
    with warehouse.scratch_dir() as scratch:
        con = duck.connect(settings, spill_dir=scratch)
        try:
            anomalies = _anomalies(con, warehouse.duckdb_files(con, "anomalies", days), links)
        finally:
            con.close()
    by_rule: Counter[str] = Counter()
    by_severity: Counter[str] = Counter()
    by_partner: Counter[str] = Counter()
    by_partner_severity: dict[str, Counter[str]] = {}
    names: dict[str, str] = {}
    for alert in rule_alerts:
        by_rule[alert["rule"]] += alert["flags"]
        by_partner[alert["partner"]] += alert["flags"]
        by_severity.update(alert["by_severity"])
        by_partner_severity.setdefault(alert["partner"], Counter()).update(alert["by_severity"])
        if alert["partner_name"]:
            names[alert["partner"]] = alert["partner_name"]
    level = settings.alert_min_severity
    # the rule alerts with flags at or above the alert severity, most of those flags first
    high_alerts = sorted(
        (
            {**_alert_entry(a, links), "flags_at_or_above": _at_or_above(a, level)}
            for a in rule_alerts
            if _at_or_above(a, level)
        ),
        key=lambda a: (-a["flags_at_or_above"], a["day"], a["alert_id"]),
    )
    high = sum(a["flags_at_or_above"] for a in high_alerts)
    after_end = _partners_after_end(rule_alerts, links)
    listed = sorted(alerts, key=_most_severe_first)
    trend = _trend(window_alerts, window, alerted_days)
    coverage = _coverage(warehouse, days, alerts, links)
    summary = {
        "report": report_label(start, end),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "days": len(days),
        "totals": {
            "flags": sum(by_rule.values()),
            "high_severity_flags": high,
            "alerts": len(alerts),
            "rule_alerts": sum(1 for a in alerts if a["kind"] == "rule"),
            "partners_flagged": sum(1 for p in by_partner if p != UNKNOWN_PARTNER),
            "partners_after_end": len({row["partner_id"] for row in after_end}),
            "anomaly_alerts": sum(1 for a in alerts if a["kind"] == "behaviour"),
            "coverage_alerts": len(coverage["alerts"]),
        },
        "high_severity": {"min_severity": level, "flags": high, "alerts": high_alerts},
        "alerts": [_alert_entry(a, links) for a in listed[:TOP_ALERTS]],
        "alerts_by_severity": {
            s: n
            for s in reversed(SEVERITIES)
            if (n := sum(1 for a in alerts if a["severity"] == s))
        },
        "flags_by_rule": {rule: by_rule[rule] for rule in RULES if by_rule[rule]},
        "flags_by_severity": {s: by_severity[s] for s in reversed(SEVERITIES) if by_severity[s]},
        "flags_by_partner": dict(sorted(by_partner.items(), key=lambda kv: (-kv[1], kv[0]))),
        "flags_by_partner_severity": {
            p: {
                s: by_partner_severity[p][s]
                for s in reversed(SEVERITIES)
                if by_partner_severity[p][s]
            }
            for p in sorted(by_partner_severity)
        },
        "partner_names": dict(sorted(names.items())),
        "partners_after_end": after_end,
        "anomalies": anomalies,
        "completeness": _completeness(warehouse, days),
        "coverage": coverage,
        "measures": measure_figures(warehouse, days, settings, links.alert),
        "trend": {
            "start": window[0].isoformat(),
            "end": window[-1].isoformat(),
            "days": len(window),
            "days_with_data": sum(trend["has_data"]),
        },
        "links": {
            "queue": links.queue(),
            "most_severe_first": links.queue(sort="-severity"),
            "by_rule": {rule: links.queue(rule=rule) for rule in by_rule},
            "by_partner": {p: links.partner(p) for p in sorted(by_partner) if p != UNKNOWN_PARTNER},
            "partners": f"{links.base}/partners",
        },
    }
    return summary, trend
