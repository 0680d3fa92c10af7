"""The report of a sample day and of a range: every figure in summary.json and report.html is
checked against independent reads of the warehouse's Parquet files, the page needs no network,
and a headless Chromium screenshot of it is saved under test-artifacts/report/."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipeline import steps
from pipeline.cli import main
from pipeline.config import SEVERITIES, Settings
from pipeline.report.figures import gather
from tests.browser import launch_chromium
from tests.sample_warehouse import FIRST, build_sample_warehouse

DAYS = 5
DAY = FIRST + timedelta(DAYS - 1)
PROJECT = Path(__file__).resolve().parents[1]
ARTIFACTS = PROJECT / "test-artifacts" / "report"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return build_sample_warehouse(tmp_path_factory.mktemp("report"), DAYS, with_model=True)


def partition(
    settings: Settings, table: str, day: date, columns: list[str]
) -> list[dict[str, Any]]:
    """A day's rows read straight from its Parquet files, not through the pipeline."""
    folder = Path(settings.warehouse) / table / f"date={day.isoformat()}"
    if not folder.is_dir():
        return []
    return pq.read_table(folder, columns=columns).to_pylist()


def report_folder(settings: Settings, label: str) -> Path:
    return Path(settings.warehouse) / "reports" / label


def read_summary(settings: Settings, label: str) -> dict[str, Any]:
    return json.loads((report_folder(settings, label) / "summary.json").read_text())


def expected_flag_figures(settings: Settings, days: list[date]) -> dict[str, Any]:
    columns = ["rule", "severity", "partner_id", "app_id"]
    rows = [row for day in days for row in partition(settings, "flags", day, columns)]
    wanted = SEVERITIES[SEVERITIES.index(settings.alert_min_severity) :]
    after_end = Counter(
        (r["partner_id"], r["app_id"]) for r in rows if r["rule"] == "AFTER_PARTNERSHIP_END"
    )
    return {
        "total": len(rows),
        "by_rule": Counter(r["rule"] for r in rows),
        "by_severity": Counter(r["severity"] for r in rows),
        "by_partner": Counter(r["partner_id"] or "(unknown app)" for r in rows),
        "high": sum(1 for r in rows if r["severity"] in wanted),
        "after_end": after_end,
    }


def expected_completeness(settings: Settings, days: list[date]) -> dict[str, dict[str, int]]:
    quarantined = Counter(
        row["kind"] for day in days for row in partition(settings, "quarantine", day, ["kind"])
    )
    figures = {}
    for kind in ("access", "consent"):
        valid = sum(
            pq.ParquetFile(f).metadata.num_rows
            for day in days
            for f in sorted(
                (Path(settings.warehouse) / kind / f"date={day.isoformat()}").glob("*.parquet")
            )
        )
        files = sum(
            1
            for day in days
            for f in (Path(settings.landing) / kind / day.isoformat()).iterdir()
            if f.name != "_SUCCESS"
        )
        figures[kind] = {"files": files, "valid": valid, "quarantined": quarantined[kind]}
    return figures


def test_report_summary_figures_match_the_warehouse(settings: Settings) -> None:
    summary = read_summary(settings, f"date={DAY}")
    expected = expected_flag_figures(settings, [DAY])

    assert (summary["start"], summary["end"]) == (DAY.isoformat(), DAY.isoformat())
    assert summary["totals"]["flags"] == expected["total"] > 0
    assert summary["flags_by_rule"] == dict(expected["by_rule"])
    assert summary["flags_by_severity"] == dict(expected["by_severity"])
    assert summary["flags_by_partner"] == dict(expected["by_partner"])
    assert summary["high_severity"]["flags"] == summary["totals"]["high_severity_flags"]
    assert summary["totals"]["high_severity_flags"] == expected["high"] > 0
    after_end = {(r["partner_id"], r["app_id"]): r["flags"] for r in summary["partners_after_end"]}
    assert after_end == dict(expected["after_end"])
    assert after_end, "the sample day has a partner past its partnership's end"


def test_report_summary_completeness_matches_the_warehouse(settings: Settings) -> None:
    completeness = read_summary(settings, f"date={DAY}")["completeness"]
    expected = expected_completeness(settings, [DAY])

    for kind, figures in expected.items():
        counts = completeness["by_kind"][kind]
        assert {k: counts[k] for k in figures} == figures, kind
        assert (
            counts["read"] == counts["valid"] + counts["quarantined"] + counts["duplicates_dropped"]
        )
    reasons = Counter(
        r["reason"] for r in partition(settings, "quarantine", DAY, ["reason"])
    ).most_common()
    top = completeness["top_quarantine_reasons"]
    assert sum(top.values()) == sum(n for _, n in reasons[: len(top)])
    assert set(top) <= {reason for reason, _ in reasons}
    read = sum(completeness["by_kind"][k]["read"] for k in expected)
    quarantined = sum(figures["quarantined"] for figures in expected.values())
    assert completeness["quarantined_share"] == pytest.approx(quarantined / read, abs=1e-6)
    assert completeness["missing_inputs"] == []


def test_report_top_anomalies_are_the_highest_scored_alerts(settings: Settings) -> None:
    anomalies = read_summary(settings, f"date={DAY}")["anomalies"]
    columns = ["entity_kind", "day", "partner_id", "app_id", "user_id", "score", "alert"]
    rows = partition(settings, "anomalies", DAY, columns)
    alerts = sorted((r for r in rows if r["alert"]), key=lambda r: -r["score"])

    assert anomalies["scored"] == len(rows) > 0
    assert anomalies["alerts"] == len(alerts) > 0
    assert [a["score"] for a in anomalies["top"]] == [
        round(r["score"], 4) for r in alerts[: len(anomalies["top"])]
    ]
    for shown in anomalies["top"]:
        key = "|".join(
            [
                "ANOMALY",
                shown["entity_kind"],
                shown["day"],
                shown["partner_id"] or "",
                shown["app_id"] or "",
                shown["user_id"] or "",
            ]
        )
        assert shown["alert_id"] == hashlib.md5(key.encode()).hexdigest()
        assert shown["link"] == f"{settings.review_url}/alerts/{shown['alert_id']}"
        assert shown["explanation"]


def test_report_lists_the_days_alerts_with_links(settings: Settings) -> None:
    summary = read_summary(settings, f"date={DAY}")
    columns = ["alert_id", "kind", "flags", "severity"]
    stored = partition(settings, "alerts", DAY, columns)
    flags = partition(settings, "flags", DAY, ["alert_id", "severity"])

    assert summary["totals"]["alerts"] == len(stored) == len(summary["alerts"]) > 0
    assert {a["alert_id"]: a["flags"] for a in summary["alerts"]} == {
        a["alert_id"]: a["flags"] for a in stored
    }
    per_alert = Counter(f["alert_id"] for f in flags)
    for shown in summary["alerts"]:
        assert shown["link"] == f"{settings.review_url}/alerts/{shown['alert_id']}"
        assert shown["flags"] == per_alert[shown["alert_id"]]  # 0 for behaviour alerts
        assert shown["explanation"]
    ranks = [-SEVERITIES.index(a["severity"]) for a in summary["alerts"]]
    assert ranks == sorted(ranks), "most severe first"
    # the alerts with flags at or above the alert severity, counted from the flags themselves
    wanted = SEVERITIES[SEVERITIES.index(settings.alert_min_severity) :]
    high = Counter(f["alert_id"] for f in flags if f["severity"] in wanted)
    assert {a["alert_id"]: a["flags_at_or_above"] for a in summary["high_severity"]["alerts"]} == (
        dict(high)
    )
    page = (report_folder(settings, f"date={DAY}") / "report.html").read_text()
    for shown in summary["alerts"]:
        assert f'<a href="{shown["link"]}" data-alert-id="{shown["alert_id"]}">' in page
    assert html_figures(page, "alert-flags") == {a["alert_id"]: a["flags"] for a in stored}
    assert html_figures(page, "figure")["alerts"] == len(stored)


def html_figures(page: str, attribute: str) -> dict[str, int]:
    """Numbers the page tags with data-<attribute>="key", thousands separators removed."""
    found = re.findall(rf'data-{attribute}="([^"]+)">([\d,]+)<', page)
    return {key: int(value.replace(",", "")) for key, value in found}


def test_report_html_shows_the_warehouse_figures(settings: Settings) -> None:
    page = (report_folder(settings, f"date={DAY}") / "report.html").read_text()
    expected = expected_flag_figures(settings, [DAY])
    completeness = expected_completeness(settings, [DAY])

    figures = html_figures(page, "figure")
    assert figures["flags"] == expected["total"]
    assert figures["high-severity-flags"] == expected["high"]
    assert figures["partners-after-end"] == len({p for p, _ in expected["after_end"]})
    assert html_figures(page, "rule") == dict(expected["by_rule"])
    assert html_figures(page, "severity") == dict(expected["by_severity"])
    assert html_figures(page, "partner") == dict(expected["by_partner"])
    assert html_figures(page, "after-end") == {
        f"{p}|{a}": n for (p, a), n in expected["after_end"].items()
    }
    counts = html_figures(page, "count")
    for kind, kind_figures in completeness.items():
        for key, n in kind_figures.items():
            assert counts[f"{kind}-{key}"] == n, (kind, key)
    alerts = [r for r in partition(settings, "anomalies", DAY, ["alert"]) if r["alert"]]
    assert figures["anomaly-alerts"] == len(alerts)
    read = sum(f["valid"] + f["quarantined"] for f in completeness.values()) + sum(
        counts[f"{kind}-duplicates_dropped"] for kind in completeness
    )
    quarantined = sum(f["quarantined"] for f in completeness.values())
    assert f'data-figure="quarantined-share">{quarantined / read:.2%}<' in page
    assert page.count("<svg") == 4  # by partner and severity, two trends, coverage


def test_report_coverage_matches_the_days_coverage_and_alerts(settings: Settings) -> None:
    page = (report_folder(settings, f"date={DAY}") / "report.html").read_text()
    summary = read_summary(settings, f"date={DAY}")
    recorded = json.loads(
        (Path(settings.warehouse) / "runs" / f"date={DAY}" / "coverage.json").read_text()
    )["partners"]
    shown = html_figures(page, "coverage")
    for row in recorded:
        for key in ("accesses", "judged", "not_judged", "user_not_in_consent_sources"):
            assert shown[f"{row['partner_id']}|{key}"] == row[key], (row["partner_id"], key)
    assert html_figures(page, "figure")["coverage-accesses"] == sum(r["accesses"] for r in recorded)
    coverage_alerts = [
        a
        for a in partition(settings, "alerts", DAY, ["alert_id", "kind"])
        if a["kind"] == "coverage"
    ]
    assert html_figures(page, "figure")["coverage-alerts"] == len(coverage_alerts)
    assert summary["totals"]["coverage_alerts"] == len(coverage_alerts)
    for alert in coverage_alerts:
        assert f"{settings.review_url}/alerts/{alert['alert_id']}" in page


def test_report_html_needs_no_network(settings: Settings) -> None:
    page = (report_folder(settings, f"date={DAY}") / "report.html").read_text()
    urls = re.findall(r"(?:https?:)?//[^\s\"'<>)]+", page)
    outside = [u for u in urls if not u.startswith(settings.review_url + "/")]
    assert outside == []
    assert any(u.startswith(settings.review_url + "/queue?") for u in urls)
    for loader in ("<link", "<script", "<img", "<iframe", "@import", "src=", "data:"):
        assert loader not in page, loader
    assert re.findall(r"url\((?!#)", page) == []  # SVG clip paths point inside the page only


def test_report_trend_covers_30_days_with_zeros_where_no_data(settings: Settings) -> None:
    summary, trend = gather(DAY, DAY, settings)
    window = [DAY - timedelta(29 - n) for n in range(30)]
    run = {FIRST + timedelta(n) for n in range(DAYS)}

    assert trend["days"] == [d.isoformat() for d in window]
    assert trend["has_data"] == [d in run for d in window]
    assert summary["trend"]["days_with_data"] == DAYS
    by_partner: dict[str, list[int]] = {}
    for i, day in enumerate(window):
        for row in partition(settings, "flags", day, ["partner_id"]):
            partner = row["partner_id"] or "(unknown app)"
            by_partner.setdefault(partner, [0] * len(window))[i] += 1
    assert trend["by_partner"] == by_partner
    totals = [sum(column) for column in zip(*trend["by_rule"].values(), strict=True)]
    assert totals == [len(partition(settings, "flags", d, ["rule"])) for d in window]


def test_report_range_sums_its_days(settings: Settings) -> None:
    start = FIRST + timedelta(1)
    assert (
        main(
            [
                "report",
                "--start",
                start.isoformat(),
                "--end",
                DAY.isoformat(),
                "--landing",
                settings.landing,
                "--warehouse",
                settings.warehouse,
            ]
        )
        == 0
    )
    summary = read_summary(settings, f"range={start}_{DAY}")
    days = [start + timedelta(n) for n in range((DAY - start).days + 1)]
    expected = expected_flag_figures(settings, days)
    completeness = expected_completeness(settings, days)

    assert summary["days"] == summary["completeness"]["days_published"] == len(days)
    assert summary["totals"]["flags"] == expected["total"]
    assert summary["flags_by_rule"] == dict(expected["by_rule"])
    assert summary["flags_by_partner"] == dict(expected["by_partner"])
    for kind, figures in completeness.items():
        counts = summary["completeness"]["by_kind"][kind]
        assert {k: counts[k] for k in figures} == figures
    assert "start=2026-03-02&end=2026-03-05" in summary["links"]["queue"]
    assert (report_folder(settings, f"range={start}_{DAY}") / "report.html").is_file()


def test_report_of_a_day_never_run_names_the_missing_manifest(settings: Settings) -> None:
    day = DAY + timedelta(days=3)
    summary = steps.report(day, settings)

    assert summary["totals"]["flags"] == 0
    assert summary["completeness"]["days_published"] == 0
    assert summary["completeness"]["missing_inputs"] == [
        f"{day}: no run manifest (the day was not published)"
    ]
    assert [n["kind"] for n in summary["notifications"]] == ["incomplete_input"]
    assert summary["alerts"] == [] and summary["totals"]["alerts"] == 0


def test_report_digest_gives_the_headline_figures(settings: Settings) -> None:
    digest = (report_folder(settings, f"date={DAY}") / "digest.md").read_text()
    expected = expected_flag_figures(settings, [DAY])

    assert digest.startswith(f"**Partner access audit, {DAY}**")
    assert f"Flags: {expected['total']:,} ({expected['high']:,} at or above high)" in digest
    assert f"{settings.review_url}/queue?start={DAY}&end={DAY}" in digest
    assert len(digest.splitlines()) <= 12


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["report"], "report needs --date, or --start and --end"),
        (["report", "--date", "2026-03-01", "--start", "2026-03-01"], "not both"),
        (["report", "--start", "2026-03-05", "--end", "2026-03-01"], "is before --start"),
    ],
)
def test_cli_report_usage_error_exits_2_with_one_line(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main([*args, "--warehouse", str(tmp_path)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert fragment in line


@pytest.mark.slow
def test_report_screenshot_in_headless_chromium_without_network(settings: Settings) -> None:
    from playwright.sync_api import Route, sync_playwright

    page_file = report_folder(settings, f"date={DAY}") / "report.html"
    attempted: list[str] = []

    def block(route: Route) -> None:
        attempted.append(route.request.url)
        route.abort()

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    screenshot.unlink(missing_ok=True)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route(re.compile(r"^(?!file:).*"), block)
            page.goto(page_file.as_uri())
            page.wait_for_load_state("load")
            # by partner and severity, coverage, per day by rule and by partner
            assert page.locator("svg").count() == 4
            heading = page.locator("h1").inner_text()
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    assert attempted == []
    assert heading == f"Partner access audit, {DAY}"
    assert screenshot.stat().st_size > 50_000
