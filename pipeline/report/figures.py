"""The report's figures: a day's (or a range's) flags, anomalies and input completeness, and the
30-day trend, gathered from the warehouse into a JSON-able summary.

Flags and anomalies are aggregated by DuckDB over the partitions' Parquet files (only the columns
a query names are read); the completeness figures come from the runs' manifests.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from pipeline import duck
from pipeline.config import SEVERITIES, Settings
from pipeline.detect.alert_ids import behaviour_alert_id
from pipeline.schema import RULES, UNKNOWN_PARTNER
from pipeline.warehouse import MANIFEST, Warehouse, report_label

TREND_DAYS = 30
TOP_ANOMALIES = 10
TOP_FLAGS = 10
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

    def item(self, item_id: str) -> str:
        return f"{self.base}/items/{quote(item_id, safe='')}"

    def partner(self, partner_id: str) -> str:
        return f"{self.base}/partners/{quote(partner_id, safe='')}"


def _flag_counts(con: Any, files: list[str]) -> list[tuple[date, str, str, str, str | None, int]]:
    """(delivery day, rule, severity, partner, partner name, flags) over the given parts."""
    if not files:
        return []
    return con.execute(
        """
        SELECT delivery_date, rule, severity, coalesce(partner_id, ?), any_value(partner_name),
               count(*)
        FROM read_parquet(?)
        GROUP BY ALL
        """,
        [UNKNOWN_PARTNER, files],
    ).fetchall()


def _partners_after_end(con: Any, files: list[str], links: ReviewLinks) -> list[dict[str, Any]]:
    """Apps still reaching message content after their partnership ended, most flags first."""
    if not files:
        return []
    rows = con.execute(
        """
        SELECT partner_id, any_value(partner_name), app_id, count(*), min(event_time),
               max(event_time), max(partnership_end)
        FROM read_parquet(?)
        WHERE rule = 'AFTER_PARTNERSHIP_END'
        GROUP BY partner_id, app_id
        ORDER BY count(*) DESC, partner_id, app_id
        """,
        [files],
    ).fetchall()
    return [
        {
            "partner_id": partner,
            "partner_name": name,
            "app_id": app,
            "flags": n,
            "first_access": first.isoformat(),
            "last_access": last.isoformat(),
            "partnership_end": ended.isoformat() if ended else None,
            "link": links.queue(rule="AFTER_PARTNERSHIP_END", partner=partner),
        }
        for partner, name, app, n, first, last, ended in rows
    ]


def _top_flags(con: Any, files: list[str], links: ReviewLinks) -> list[dict[str, Any]]:
    """The most severe flags (then the earliest), with their explanations."""
    if not files:
        return []
    rows = con.execute(
        """
        SELECT flag_id, rule, severity, partner_id, app_id, event_time, explanation
        FROM read_parquet(?)
        ORDER BY list_position(?, severity) DESC, event_time, flag_id
        LIMIT ?
        """,
        [files, list(SEVERITIES), TOP_FLAGS],
    ).fetchall()
    return [
        {
            "flag_id": flag_id,
            "rule": rule,
            "severity": severity,
            "partner_id": partner,
            "app_id": app,
            "event_time": when.isoformat(),
            "explanation": explanation,
            "link": links.item(flag_id),
        }
        for flag_id, rule, severity, partner, app, when, explanation in rows
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
        item_id = behaviour_alert_id(kind, day, partner, app, user)
        top.append(
            {
                "item_id": item_id,
                "entity_kind": kind,
                "day": day.isoformat(),
                "partner_id": partner,
                "app_id": app,
                "user_id": user,
                "score": round(score, 4),
                "rank": rank,
                "top_features": list(features),
                "explanation": explanation,
                "link": links.item(item_id),
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
    counts: list[tuple[date, str, str, str, str | None, int]],
    window: list[date],
    with_data: set[date],
) -> dict[str, Any]:
    """Flags per day of the window, per partner and per rule (zeros on days without data)."""
    position = {day: i for i, day in enumerate(window)}
    by_partner: dict[str, list[int]] = {}
    by_rule: dict[str, list[int]] = {}
    for day, rule, _, partner, _, n in counts:
        if day in position:
            by_partner.setdefault(partner, [0] * len(window))[position[day]] += n
            by_rule.setdefault(rule, [0] * len(window))[position[day]] += n
    return {
        "days": [d.isoformat() for d in window],
        "has_data": [d in with_data for d in window],
        "by_partner": dict(sorted(by_partner.items())),
        "by_rule": {rule: by_rule[rule] for rule in RULES if rule in by_rule},
    }


def gather(start: date, end: date, settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The summary of [start, end] and the trend of the 30 days ending at `end` (or the range,
    if longer)."""
    warehouse = Warehouse(settings.warehouse, settings)
    days = days_between(start, end)
    window = days_between(min(start, end - timedelta(TREND_DAYS - 1)), end)
    flagged_days = set(warehouse.partition_days("flags"))
    links = ReviewLinks(settings.review_url, start, end)
    with warehouse.scratch_dir() as scratch:
        con = duck.connect(settings, spill_dir=scratch)
        try:
            range_files = warehouse.duckdb_files(con, "flags", days)
            counts = _flag_counts(con, warehouse.duckdb_files(con, "flags", window))
            after_end = _partners_after_end(con, range_files, links)
            top_flags = _top_flags(con, range_files, links)
            anomalies = _anomalies(con, warehouse.duckdb_files(con, "anomalies", days), links)
        finally:
            con.close()
    in_range = [row for row in counts if start <= row[0] <= end]
    by_rule: Counter[str] = Counter()
    by_severity: Counter[str] = Counter()
    by_partner: Counter[str] = Counter()
    by_partner_severity: dict[str, Counter[str]] = {}
    names: dict[str, str] = {}
    for _, rule, severity, partner, name, n in in_range:
        by_rule[rule] += n
        by_severity[severity] += n
        by_partner[partner] += n
        by_partner_severity.setdefault(partner, Counter())[severity] += n
        if name:
            names[partner] = name
    at_or_above = SEVERITIES[SEVERITIES.index(settings.alert_min_severity) :]
    high = sum(by_severity[s] for s in at_or_above)
    trend = _trend(counts, window, flagged_days)
    summary = {
        "report": report_label(start, end),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "days": len(days),
        "totals": {
            "flags": sum(by_rule.values()),
            "high_severity_flags": high,
            "partners_flagged": sum(1 for p in by_partner if p != UNKNOWN_PARTNER),
            "partners_after_end": len({row["partner_id"] for row in after_end}),
            "anomaly_alerts": anomalies["alerts"],
        },
        "high_severity": {"min_severity": settings.alert_min_severity, "flags": high},
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
        "top_flags": top_flags,
        "anomalies": anomalies,
        "completeness": _completeness(warehouse, days),
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
