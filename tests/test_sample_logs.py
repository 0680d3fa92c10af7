"""The committed demo landing zone is what the generator makes; its anomaly ground truth holds."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

PROJECT = Path(__file__).resolve().parent.parent
SAMPLE_LOGS = PROJECT / "sample_logs"
GENERATOR = PROJECT / "tools" / "make_sample_logs.py"
MAX_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sample_logs", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def lines_of(name: str, data: bytes) -> list[str]:
    return (gzip.decompress(data) if name.endswith(".gz") else data).decode().splitlines()


def test_default_seed_rebuilds_the_committed_files_byte_for_byte(
    generator: ModuleType, tmp_path: Path
):
    assert generator.main(["--out", str(tmp_path), "--seed", "7"]) == 0
    committed, rebuilt = files_of(SAMPLE_LOGS), files_of(tmp_path)
    assert sorted(rebuilt) == sorted(committed)
    differing = [name for name in committed if committed[name] != rebuilt[name]]
    assert not differing, f"sample_logs/ is stale; run `make sample-logs`: {differing[:5]}"


def test_anomalies_only_add_lines(generator: ModuleType, tmp_path: Path, monkeypatch):
    """Without the injected anomalies every file holds the same lines minus theirs, in order."""
    monkeypatch.setattr(generator, "ANOMALY_BEHAVIOURS", ())
    monkeypatch.setattr(generator, "ANOMALY_CONSENT_BEHAVIOURS", ())
    generator.write_landing(generator.build(7), tmp_path)
    plain, committed = files_of(tmp_path), files_of(SAMPLE_LOGS)
    assert set(plain) == set(committed)
    changed = 0
    for name, data in plain.items():
        if name.startswith(("access/", "consent/")) and data != committed[name]:
            changed += 1
            remaining = iter(lines_of(name, committed[name]))
            assert all(any(line == other for other in remaining) for line in lines_of(name, data))
    assert 0 < changed < 20


def test_ground_truth_lists_four_kinds_on_existing_days_and_partners():
    with (SAMPLE_LOGS / "anomalies.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["day", "partner_id", "app_id", "kind", "description"]
        rows = list(reader)
    with (SAMPLE_LOGS / "partners.csv").open(newline="") as f:
        registry = {(r["partner_id"], r["app_id"]) for r in csv.DictReader(f)}
    access_days = {p.name for p in (SAMPLE_LOGS / "access").iterdir() if p.is_dir()}
    assert len({r["kind"] for r in rows}) >= 4
    for row in rows:
        assert row["day"] in access_days
        assert "2026-03-09" <= row["day"] <= "2026-03-14"  # the second week: the first is normal
        assert (row["partner_id"], row["app_id"]) in registry
        assert row["description"]
    assert len({(r["day"], r["partner_id"], r["kind"]) for r in rows}) == len(rows)


def test_sample_logs_stay_small():
    assert sum(len(data) for data in files_of(SAMPLE_LOGS).values()) < MAX_BYTES
