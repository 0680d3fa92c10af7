"""The Markdown digest of a report summary: a few lines for chat and for alert bodies."""

from __future__ import annotations

from typing import Any

from pipeline.text_safety import markdown_text, visible_bidi


def period(summary: dict[str, Any]) -> str:
    """'2026-03-05', or '2026-03-01 to 2026-03-14' for a range."""
    if summary["start"] == summary["end"]:
        return str(summary["start"])
    return f"{summary['start']} to {summary['end']}"


LISTED = 3  # coverage alerts named on the digest's line; the queue link has them all


def _partner(row: dict[str, Any]) -> str:
    """A partner's name (or id) for the page: partner-controlled, so never live Markdown."""
    return markdown_text(row["partner_name"] or row["partner_id"])


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{markdown_text(key)} {n:,}" for key, n in counts.items()) or "none"


def _coverage(summary: dict[str, Any]) -> str:
    """One line: accesses judged, the reasons of those not, the incomplete coverage alerts."""
    coverage = summary["coverage"]
    totals = coverage["totals"]
    reasons = {r: totals[r] for r in coverage["reasons"] if totals[r]}
    line = (
        f"- Coverage: {totals['judged']:,} of {totals['accesses']:,} message accesses judged; "
        f"not judged {totals['not_judged']:,} ({totals['not_judged_share']:.2%})"
        + (f": {_counts(reasons)}" if reasons else "")
    )
    if alerts := coverage["alerts"]:
        alerted = ", ".join(
            f"{_partner(a)} {a['day']} "
            f"({a['evidence']['not_judged']:,} of {a['evidence']['accesses']:,})"
            for a in alerts[:LISTED]
        )
        more = f" and {len(alerts) - LISTED:,} more" if len(alerts) > LISTED else ""
        line += f"; incomplete coverage alerts: {alerted}{more}"
    return line


def _measures(measures: dict[str, Any]) -> str | None:
    """One line: the longest lag of each measure, by partner (None when neither happened)."""
    parts = []
    for name, what in (("post_revocation", "a revoke"), ("post_termination", "the end")):
        rows = measures.get(name, [])
        if rows:
            worst = ", ".join(f"{_partner(r)} {r['longest']}" for r in rows)
            parts.append(f"calls after {what}, longest: {worst}")
    if not parts:
        return None
    text = "; ".join(parts)
    return f"- {text[0].upper()}{text[1:]}"


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
            f"{_partner(row)} ({markdown_text(row['app_id'])}) {row['flags']:,}"
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
    # a summary made before coverage (or by hand) has neither figure: their lines are left out
    if "coverage" in summary:
        lines.append(_coverage(summary))
    if measures := _measures(summary.get("measures", {})):
        lines.append(measures)
    lines.extend(f"- Missing: {missing}" for missing in completeness["missing_inputs"])
    lines.append(
        f"- Alerts to review: {totals['alerts']:,} ({totals['rule_alerts']:,} by rule, "
        f"{totals['anomaly_alerts']:,} behaviour, {totals.get('coverage_alerts', 0):,} "
        f"incomplete coverage): {summary['links']['queue']}"
    )
    if report_path:
        lines.append(f"- Report: {report_path}")
    return visible_bidi("\n".join(lines) + "\n")  # partner names may hold direction overrides
