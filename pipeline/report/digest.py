"""The Markdown digest of a report summary: a few lines for chat and for alert bodies."""

from __future__ import annotations

from typing import Any


def period(summary: dict[str, Any]) -> str:
    """'2026-03-05', or '2026-03-01 to 2026-03-14' for a range."""
    if summary["start"] == summary["end"]:
        return str(summary["start"])
    return f"{summary['start']} to {summary['end']}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {n:,}" for key, n in counts.items()) or "none"


def digest_markdown(summary: dict[str, Any], report_path: str | None = None) -> str:
    """The headline numbers of a report summary as Markdown, with a link to its alerts in the
    review UI."""
    totals, completeness = summary["totals"], summary["completeness"]
    severity = summary["high_severity"]
    lines = [
        f"**Partner access audit, {period(summary)}**",
        f"- Flags: {totals['flags']:,} ({severity['flags']:,} at or above "
        f"{severity['min_severity']}); anomaly alerts: {totals['anomaly_alerts']:,}",
        f"- By rule: {_counts(summary['flags_by_rule'])}",
        f"- By partner: {_counts(summary['flags_by_partner'])}",
    ]
    if summary["partners_after_end"]:
        after = ", ".join(
            f"{row['partner_name'] or row['partner_id']} ({row['app_id']}) {row['flags']:,}"
            for row in summary["partners_after_end"]
        )
        lines.append(f"- Still accessing after their partnership ended: {after}")
    for kind, counts in completeness["by_kind"].items():
        lines.append(
            f"- Input {kind}: {counts['files']:,} files, {counts['read']:,} records read, "
            f"{counts['valid']:,} valid, {counts['quarantined']:,} quarantined, "
            f"{counts['duplicates_dropped']:,} duplicates dropped"
        )
    lines.append(f"- Quarantined share: {completeness['quarantined_share']:.2%}")
    lines.extend(f"- Missing: {missing}" for missing in completeness["missing_inputs"])
    lines.append(
        f"- Alerts to review: {totals['alerts']:,} ({totals['rule_alerts']:,} by rule, "
        f"{totals['anomaly_alerts']:,} behaviour): {summary['links']['queue']}"
    )
    if report_path:
        lines.append(f"- Report: {report_path}")
    return "\n".join(lines) + "\n"
