"""Coverage and the two measures end to end, on a tiny canonical landing whose figures are worked
out by hand below: the alerts step writes the INCOMPLETE_COVERAGE alert into alerts/date=D/, the
review store (SQLite and PostgreSQL) takes it, the report, digest and summary show coverage per
partner and day and both measures with their worst cases linked to their alerts.

The day D = 2026-03-10 (registry: Tunely P1 ongoing; Streamflix P2 ended on 2026-03-09, i.e. at
2026-03-10 00:00Z):
- tunely/alice granted 08:00, revoked 09:00; calls at 08:30 (judged, clean), 09:30 and 11:00
  (SIGNIN_REVOKED: the last 2 h after the revoke);
- tunely/dave and tunely/erin: no consent source mentions them (NO_SIGNIN, not judged);
- stream/bob (granted the day before) at 01:00 and 03:30 (AFTER_PARTNERSHIP_END: the last 3 h
  30 min after the end);
- ghost/carol: an app the registry lacks (UNKNOWN_APP, not judged).
So P1: 5 accesses, 3 judged, 2 not judged (40% > 20%: an alert); P2: 2 of 2 judged; the unknown
app 1 of 1 not judged (no coverage alert: its UNKNOWN_APP alert says it)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.config import Settings
from pipeline.detect.coverage_alerts import coverage_alert_id
from pipeline.review.store import AlertFilter, ReviewStore
from tests.formats.coverage_landing import EXPLANATION, D, run
from tests.postgres import scratch_schema


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("coverage-e2e")
    return run(root, f"sqlite:///{root / 'review.db'}")


def alerts_of(settings: Settings) -> list[dict]:
    folder = Path(settings.warehouse) / "alerts" / f"date={D}"
    return pq.read_table(folder).to_pylist()


def test_the_alerts_step_writes_the_incomplete_coverage_alert(audited: Settings) -> None:
    alerts = alerts_of(audited)
    (coverage,) = [a for a in alerts if a["kind"] == "coverage"]
    assert coverage["alert_id"] == coverage_alert_id(D, "P1")
    assert (coverage["partner_id"], coverage["rule"], coverage["flags"]) == (
        "P1",
        "INCOMPLETE_COVERAGE",
        0,
    )
    assert coverage["explanation"] == EXPLANATION
    assert json.loads(coverage["evidence"]) == {
        "accesses": 5,
        "judged": 3,
        "not_judged": 2,
        "unknown_app": 0,
        "folder_sync": 0,
        "throttled": 0,
        "aggregated_window": 0,
        "user_not_in_consent_sources": 2,
    }
    # flags still reconcile: the 4 rule alerts count all 7 flags (2 revoked, 2 without a
    # sign-in, 2 after the end, 1 unknown app), the coverage alert none
    assert sum(a["flags"] for a in alerts) == 7
    summary = json.loads(
        (Path(audited.warehouse) / "runs" / f"date={D}" / "alerts.json").read_text()
    )
    assert summary["alerts_by_kind"] == {"coverage": 1, "rule": 4}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_review_store_takes_the_coverage_alert(
    backend: str, audited: Settings, tmp_path: Path
) -> None:
    if backend == "sqlite":
        settings = run(tmp_path, f"sqlite:///{tmp_path / 'review.db'}")
        check_store(settings.review_db)
    else:
        with scratch_schema("coverage_e2e") as url:
            run(tmp_path, url)
            check_store(url)


def check_store(url: str) -> None:
    store = ReviewStore.open(url)
    try:
        page = store.alerts(AlertFilter(kind="coverage"))
        assert page.total == 1
        (alert,) = page.alerts
        assert (alert.alert_id, alert.rule, alert.partner_id) == (
            coverage_alert_id(D, "P1"),
            "INCOMPLETE_COVERAGE",
            "P1",
        )
        assert alert.explanation == EXPLANATION and alert.status == "new"
        assert alert.series_id is None  # series are of rule alerts
        assert alert.evidence["user_not_in_consent_sources"] == 2
        assert store.queue(AlertFilter(rule="INCOMPLETE_COVERAGE")).total == 1
        assert store.alerts(AlertFilter()).total == 5
    finally:
        store.dispose()


def report_of(settings: Settings) -> tuple[dict, str, str]:
    folder = Path(settings.warehouse) / "reports" / f"date={D}"
    summary = json.loads((folder / "summary.json").read_text())
    return summary, (folder / "report.html").read_text(), (folder / "digest.md").read_text()


def cell(page: str, attribute: str, key: str) -> str:
    match = re.search(rf'{attribute}="{re.escape(key)}">([^<]*)<', page)
    assert match, key
    return match.group(1)


def test_the_report_shows_coverage_per_partner_and_day(audited: Settings) -> None:
    summary, page, _digest = report_of(audited)
    totals = summary["coverage"]["totals"]
    assert (totals["accesses"], totals["judged"], totals["not_judged"]) == (8, 5, 3)
    assert (totals["unknown_app"], totals["user_not_in_consent_sources"]) == (1, 2)
    assert summary["totals"]["coverage_alerts"] == 1
    expected = {
        "P1": ("5", "3", "2", "40.00%"),
        "P2": ("2", "2", "0", "0.00%"),
        "(unknown app)": ("1", "0", "1", "100.00%"),
    }
    for partner, (accesses, judged, not_judged, share) in expected.items():
        assert cell(page, "data-coverage", f"{partner}|accesses") == accesses
        assert cell(page, "data-coverage", f"{partner}|judged") == judged
        assert cell(page, "data-coverage", f"{partner}|not_judged") == not_judged
        assert cell(page, "data-coverage", f"{partner}|share") == share
    assert cell(page, "data-coverage-day", f"{D}|P1|user_not_in_consent_sources") == "2"
    assert cell(page, "data-coverage-day", f"{D}|(unknown app)|unknown_app") == "1"
    assert '<svg role="img" aria-label="coverage-by-partner"' in page
    link = f"http://review.example/alerts/{coverage_alert_id(D, 'P1')}"
    assert f'<a href="{link}"' in page and EXPLANATION in page


def test_the_report_shows_both_measures_with_their_worst_cases(audited: Settings) -> None:
    summary, page, _digest = report_of(audited)
    (revocation,) = summary["measures"]["post_revocation"]
    (termination,) = summary["measures"]["post_termination"]
    assert (revocation["partner_id"], revocation["cases"], revocation["calls"]) == ("P1", 1, 2)
    assert revocation["max_seconds"] == 2 * 3600 and revocation["longest"] == "2 h 00 min"
    assert (termination["partner_id"], termination["cases"], termination["calls"]) == ("P2", 1, 2)
    assert termination["max_seconds"] == 3.5 * 3600 and termination["longest"] == "3 h 30 min"
    alerts = {(a["app_id"], a["rule"]): a["alert_id"] for a in alerts_of(audited)}
    (worst,) = revocation["worst"]
    assert (worst["user_id"], worst["since"]) == ("alice", "2026-03-10T09:00:00+00:00")
    assert worst["link"] == f"http://review.example/alerts/{alerts[('tunely', 'SIGNIN_REVOKED')]}"
    (ended,) = termination["worst"]
    assert ended["alert_id"] == alerts[("stream", "AFTER_PARTNERSHIP_END")]
    assert cell(page, "data-measure", "post_revocation|P1|longest") == "2 h 00 min"
    assert cell(page, "data-measure", "post_termination|P2|longest") == "3 h 30 min"
    assert cell(page, "data-measure", "post_termination|P2|calls") == "2"
    assert f'href="{ended["link"]}"' in page


def test_the_digest_counts_coverage_and_the_measures(audited: Settings) -> None:
    _summary, _page, digest = report_of(audited)
    assert (
        "- Coverage: 5 of 8 message accesses judged; not judged 3 (37.50%): unknown_app 1, "
        "user_not_in_consent_sources 2; incomplete coverage alerts: Tunely 2026-03-10 (2 of 5)"
    ) in digest
    assert (
        "- Calls after a revoke, longest: Tunely 2 h 00 min; "
        "calls after the end, longest: Streamflix 3 h 30 min"
    ) in digest
    assert "(4 by rule, 0 behaviour, 1 incomplete coverage)" in digest
