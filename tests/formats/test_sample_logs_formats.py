"""sample_logs_formats/ is what the tool's --formats option makes, and a day of it runs through
every step: the manifest carries the coverage per partner, and the real formats give the flags
the canonical sample gives (less the accesses they cannot judge)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from pipeline import steps
from pipeline.config import Settings, load_settings
from pipeline.detect.coverage_alerts import coverage_alert_id
from pipeline.review.store import AlertFilter, ReviewStore
from pipeline.warehouse import Warehouse

PROJECT = Path(__file__).resolve().parents[2]
FORMATS = PROJECT / "sample_logs_formats"
DAY = date(2026, 3, 2)

pytestmark = pytest.mark.slow


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_formats_option_rebuilds_the_committed_files(tmp_path: Path):
    tool = PROJECT / "tools" / "make_sample_logs.py"
    subprocess.run([sys.executable, str(tool), "--formats", str(tmp_path)], check=True)
    assert files_of(tmp_path) == files_of(FORMATS)


@pytest.fixture(scope="module")
def formats_day(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A day of sample_logs_formats/ run as `make demo` runs it (its access-audit.toml)."""
    root = tmp_path_factory.mktemp("formats-day")
    settings = load_settings(
        FORMATS / "access-audit.toml",
        env={},
        landing=str(FORMATS),
        warehouse=str(root / "wh"),
        models_dir=str(root / "models"),
        review_db=f"sqlite:///{root / 'review.db'}",
    )
    steps.run_day(DAY, settings)
    return settings


def test_a_day_of_sample_logs_formats_runs_with_its_coverage(formats_day: Settings):
    manifest = Warehouse(formats_day.warehouse).read_json("runs", DAY, "manifest.json")
    assert manifest is not None
    by_partner = {p["partner_id"]: p for p in manifest["access_coverage"]["partners"]}
    assert by_partner["(unknown app)"]["unknown_app"] == by_partner["(unknown app)"]["accesses"]
    assert sum(p["folder_sync"] for p in by_partner.values()) > 0  # M365 Sync records
    for p in by_partner.values():
        assert p["judged"] + p["not_judged"] == p["accesses"]
    assert manifest["counts"]["access"]["quarantined"] == 0


def test_the_formats_day_alerts_reports_and_publishes_its_coverage(formats_day: Settings):
    warehouse = Warehouse(formats_day.warehouse)
    coverage = warehouse.read_json("runs", DAY, "coverage.json")
    assert coverage is not None
    share = formats_day.coverage_alert_share
    above = sorted(
        p["partner_id"]
        for p in coverage["partners"]
        if p["partner_id"] != "(unknown app)" and p["not_judged_share"] > share
    )
    assert above, "the formats zone has partners the audit judges too little of"
    alerts = warehouse.read_partition("alerts", DAY).to_pylist()
    alerted = sorted(a["partner_id"] for a in alerts if a["kind"] == "coverage")
    assert alerted == above
    assert {a["alert_id"] for a in alerts if a["kind"] == "coverage"} == {
        coverage_alert_id(DAY, p) for p in above
    }
    store = ReviewStore.open(formats_day.review_db)
    try:
        assert store.alerts(AlertFilter(kind="coverage")).total == len(above)
    finally:
        store.dispose()
    summary = json.loads(Path(warehouse.report_file(f"date={DAY}", "summary.json")).read_text())
    assert summary["totals"]["coverage_alerts"] == len(above)
    reported = {p["partner_id"]: p for p in summary["coverage"]["by_partner"]}
    for p in coverage["partners"]:
        assert reported[p["partner_id"]]["not_judged"] == p["not_judged"]
    page = Path(warehouse.report_file(f"date={DAY}", "report.html")).read_text()
    assert 'id="coverage-by-partner"' in page and 'aria-label="coverage-by-partner"' in page
