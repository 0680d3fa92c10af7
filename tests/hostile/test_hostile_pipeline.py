"""The pipeline on the hostile landing zone (tests/hostile/corpus.py): every step finishes,
counts reconcile per file and in both review stores, and no secret value is stored in any
warehouse file, report or store row. The run itself (tests/hostile/conftest.py: STEPS) is shared
with test_hostile_ui.py, which opens every page and export on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipeline.review.store import ReviewStore
from pipeline.review.tables import review_alerts
from pipeline.warehouse import Warehouse
from tests.hostile import corpus
from tests.hostile.conftest import STEPS, Run


def _stored_text(root: Path) -> str:
    """Every file under root as text: Parquet rows and metadata, and every other file's bytes."""
    pieces = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            parquet = pq.ParquetFile(path)
            pieces.append(str(parquet.metadata.schema))
            pieces.append(repr(parquet.read().to_pylist()))
        pieces.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(pieces)


def test_every_step_finishes(run: Run):
    assert list(run.results) == [*(name for name, _ in STEPS), "publish_postgresql"]


def _store_rows(url: str) -> dict[str, list[tuple]]:
    """Every row of every table of a review store (sessions, audit trail, ... included)."""
    store = ReviewStore.open(url)
    try:
        engine = store._engine
        meta = sa.MetaData()
        meta.reflect(engine)
        with engine.connect() as connection:
            return {
                name: [tuple(row) for row in connection.execute(sa.select(table))]
                for name, table in meta.tables.items()
            }
    finally:
        store.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_both_stores_hold_every_alert_and_no_secret(run: Run, backend: str):
    rows = _store_rows(run.store_urls()[backend])
    alerts = Warehouse(run.settings.warehouse).read_partition("alerts", corpus.DAY)
    stored = rows[review_alerts.name]
    assert len(stored) == alerts.num_rows == run.results["alerts"]["alerts"] > 0
    published = (
        run.results["publish"]["review"]
        if backend == "sqlite"
        else run.results["publish_postgresql"]
    )
    assert published["inserted"] == alerts.num_rows, published
    text = repr(rows)  # every column of every table, text or JSON
    assert corpus.LONG_APP in text and "p/../../audit" in text  # the scan sees the ids
    assert corpus.SECRET not in text
    values = [v for table in rows.values() for row in table for v in row]
    assert not [v for v in values if isinstance(v, str) and "\x00" in v]  # PostgreSQL refuses


def test_counts_reconcile_per_file(run: Run):
    for kind in ("access", "consent"):
        ingest = run.results[f"ingest_{kind}"]
        for f in ingest["files"]:
            quarantined = sum(f["quarantined"].values())
            assert f["read"] == f["valid"] + quarantined + f["duplicates_dropped"], f
        table = pq.read_table(run.root / "warehouse" / kind / f"date={corpus.DAY}")
        assert table.num_rows == ingest["totals"]["valid"]


def test_each_hostile_class_is_quarantined_with_its_reason(run: Run):
    files = {f["file"]: f for f in run.results["ingest_access"]["files"]}
    reasons = run.results["ingest_access"]["quarantine_reasons"]
    assert reasons["control_character"] == 4  # NUL in app_id, US, TAB, DEL
    assert reasons["invalid_encoding"] == 1
    assert files["b.jsonl"]["valid"] == 2  # a BOM opening a file, CRLF line ends
    assert files["d.jsonl.gz"]["quarantined"].get("unreadable_file") == 1  # truncated
    assert 0 < files["d.jsonl.gz"]["valid"] < 2000  # what came before the damage is kept
    assert files["e.jsonl.gz"]["quarantined"] == {"unreadable_file": 1}  # the bomb
    assert "longer than" in files["e.jsonl.gz"]["error"]
    assert files["c.jsonl"]["valid"] == 1  # the 3 MB line
    consent = run.results["ingest_consent"]["quarantine_reasons"]
    assert consent == {"control_character": 1}


def test_no_secret_value_in_any_warehouse_file_or_report(run: Run):
    text = _stored_text(run.root / "warehouse")
    assert "path-0" in text and "rej-1" in text  # the scan sees rows and quarantine
    assert corpus.SECRET not in text


def test_the_report_shows_hostile_names_inert(run: Run):
    report = run.results["report"]
    html = Path(report["files"]["html"]).read_text()
    digest = Path(report["files"]["digest"]).read_text()
    assert "Stream&lt;U+202E&gt;flix" in html  # the name is shown, its override visible
    assert "Evil Corp" in html  # the $…$ name went through the charts and the page
    for page in (html, digest):
        assert "\u202e" not in page
    assert "<!channel>" not in html and "<script>" not in html


def test_the_command_line_run_exits_0(tmp_path: Path):
    """`access-audit run` (every step, the SQLite review store included) on the corpus."""
    corpus.build(tmp_path / "landing")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "run",
            "--date",
            corpus.DAY.isoformat(),
            "--landing",
            str(tmp_path / "landing"),
            "--warehouse",
            str(tmp_path / "warehouse"),
        ],
        capture_output=True,
        text=True,
        env={"ACCESS_AUDIT_REVIEW_DB": f"sqlite:///{tmp_path / 'review.db'}", "PATH": ""},
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert corpus.SECRET not in _stored_text(tmp_path / "warehouse")
