"""sample_logs_formats/ is what the tool's --formats option makes, and a day of it runs through
every step: the manifest carries the coverage per partner, and the real formats give the flags
the canonical sample gives (less the accesses they cannot judge)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from pipeline import steps
from pipeline.config import load_settings
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


def test_a_day_of_sample_logs_formats_runs_with_its_coverage(tmp_path: Path):
    settings = load_settings(
        FORMATS / "access-audit.toml",
        env={},
        landing=str(FORMATS),
        warehouse=str(tmp_path / "wh"),
        models_dir=str(tmp_path / "models"),
        review_db=f"sqlite:///{tmp_path / 'review.db'}",
    )
    steps.run_day(DAY, settings)
    manifest = Warehouse(settings.warehouse).read_json("runs", DAY, "manifest.json")
    assert manifest is not None
    by_partner = {p["partner_id"]: p for p in manifest["access_coverage"]["partners"]}
    assert by_partner["(unknown app)"]["unknown_app"] == by_partner["(unknown app)"]["accesses"]
    assert sum(p["folder_sync"] for p in by_partner.values()) > 0  # M365 Sync records
    for p in by_partner.values():
        assert p["judged"] + p["not_judged"] == p["accesses"]
    assert manifest["counts"]["access"]["quarantined"] == 0
