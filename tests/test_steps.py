"""pipeline.steps: a whole day's run on a tiny landing zone, its manifest, missing inputs, and the
nightly run versus a backfill (SPEC §3 last paragraph, §4)."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from pipeline.config import Settings, load_settings
from pipeline.errors import MissingInput
from pipeline.steps import (
    alerts,
    catch_up_consent,
    detect,
    ingest_access,
    ingest_consent,
    pipeline_version,
    run_day,
)
from pipeline.warehouse import MANIFEST, Warehouse
from tests.landing import access, consent, write_day, write_registry

D = dt.date(2024, 3, 10)
D1 = D - dt.timedelta(days=1)
D2 = D - dt.timedelta(days=2)
SECRET = "tok_SECRET123"
REGISTRY = [
    "p1,Partner One,app1,2024-01-01,,messages.read messages.write messages.delete,30",
    "p1,Partner One,app2,2024-01-01,2024-02-29,messages.read,30",
    "p2,Partner Two,app3,2024-01-01T00:00:00Z,,messages.read,",
]
FLAGS_ON_D = [
    ("r2", "SIGNIN_REVOKED", "p1"),
    ("r4", "NO_SIGNIN", "p1"),
    ("r5", "AFTER_PARTNERSHIP_END", "p1"),
    ("r5", "NO_SIGNIN", "p1"),
    ("r6", "SCOPE_NOT_IN_PARTNERSHIP", "p2"),
    ("r7", "UNKNOWN_APP", None),
]


def build_landing(root: Path) -> None:
    """Three delivery days; consent of D-2 and D-1 decides flags of D."""
    write_registry(root, REGISTRY)
    write_day(
        root,
        "consent",
        D2,
        {
            "part-0.jsonl": [
                consent("g1", "2024-03-08T09:00:00Z", user="u1"),
                consent("g2", "2024-03-08T09:00:00Z", user="u2", scopes=["messages.read"]),
                consent("g3", "2024-03-08T09:00:00Z", user="u3", app="app3"),
            ]
        },
    )
    write_day(
        root,
        "consent",
        D1,
        {"part-0.jsonl": [consent("v2", "2024-03-09T10:00:00Z", "revoke", user="u2")]},
    )
    write_day(
        root,
        "consent",
        D,
        {"part-0.jsonl.gz": [consent("g4", "2024-03-10T08:00:00+01:00", user="u4"), "{oops"]},
    )
    write_day(
        root,
        "access",
        D2,
        {
            "part-0.jsonl": [
                access("q1", "2024-03-08T10:00:00Z", user="u1"),
                access("q2", "2024-03-08T08:00:00Z", user="u1"),
            ]
        },
    )
    write_day(
        root, "access", D1, {"part-0.jsonl": [access("s1", "2024-03-09T11:00:00Z", user="u2")]}
    )
    delete = access(
        "r3",
        "2024-03-10T12:00:00Z",
        user="u4",
        method="DELETE",
        path=f"/v2/me/messages/1?access_token={SECRET}",
    )
    del delete["resource"], delete["action"]
    write_day(
        root,
        "access",
        D,
        {
            "a.jsonl": [
                access("r1", "2024-03-10T12:00:00Z", user="u1"),
                access("r2", "2024-03-10T12:00:00Z", user="u2"),
                delete,
                access("r4", "2024-03-10T12:00:00Z", user="u5"),
                "",
                access("r5", "2024-03-10T12:00:00Z", user="u1", app="app2"),
            ],
            "b.jsonl.gz": [
                access("r6", "2024-03-10T12:00:00Z", user="u3", app="app3", action="write"),
                access("r7", "2024-03-10T12:00:00Z", user="u1", app="app9"),
                access("r1", "2024-03-10T12:00:00Z", user="u1"),  # identical duplicate
                access("r8", "2024-03-10T12:00:00Z", user="u1", status="ok"),
                access("r9", "2024-03-10T12:00:00Z", user="u5", status=403),
            ],
        },
    )


@pytest.fixture
def landing(landing_root: Path) -> Path:
    build_landing(landing_root)
    return landing_root


@dataclass(frozen=True)
class Ran:
    landing: Path
    warehouse_root: Path
    settings: Settings
    summary: dict[str, Any]

    def manifest(self) -> dict[str, Any]:
        return json.loads((self.warehouse_root / "runs" / f"date={D}" / MANIFEST).read_text())


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    """One run of D on a fresh warehouse, shared by the tests that only read its outputs."""
    root = tmp_path_factory.mktemp("ran")
    build_landing(root / "landing")
    settings = load_settings(
        env={},
        landing=str(root / "landing"),
        warehouse=str(root / "warehouse"),
        review_db=f"sqlite:///{root / 'review.db'}",
    )
    return Ran(root / "landing", root / "warehouse", settings, run_day(D, settings))


def flag_keys(table: pa.Table) -> list[tuple]:
    return sorted((r["request_id"], r["rule"], r["partner_id"]) for r in table.to_pylist())


def test_steps_run_day_writes_every_partition(ran: Ran):
    summary = ran.summary
    warehouse = Warehouse(ran.settings.warehouse)
    for table in ("access", "consent", "quarantine", "flags", "alerts"):
        assert warehouse.has_partition(table, D), table
    assert (ran.warehouse_root / "runs" / f"date={D}" / MANIFEST).is_file()
    assert flag_keys(warehouse.read_partition("flags", D)) == FLAGS_ON_D
    assert summary["counts"] == {
        "access": {"files": 2, "read": 10, "valid": 8, "quarantined": 1, "duplicates_dropped": 1},
        "consent": {"files": 1, "read": 2, "valid": 1, "quarantined": 1, "duplicates_dropped": 0},
    }
    assert summary["quarantine_reasons"] == {
        "access": {"wrong_type": 1},
        "consent": {"invalid_json": 1},
    }
    assert summary["flags"] == {
        "total": 6,
        "by_rule": {
            "AFTER_PARTNERSHIP_END": 1,
            "NO_SIGNIN": 2,
            "SCOPE_NOT_IN_PARTNERSHIP": 1,
            "SIGNIN_REVOKED": 1,
            "UNKNOWN_APP": 1,
        },
        "by_partner": {"(unknown app)": 1, "p1": 4, "p2": 1},
    }


def test_steps_run_day_catches_up_earlier_consent(ran: Ran):
    warehouse = Warehouse(ran.settings.warehouse)
    assert warehouse.partition_days("consent") == [D2, D1, D]
    assert warehouse.partition_days("access") == [D]
    caught_up = warehouse.read_json("runs", D, "consent-catch-up.json")
    assert caught_up is not None
    assert caught_up["ingested"] == [D2.isoformat(), D1.isoformat()]
    detected = warehouse.read_json("runs", D, "detect.json")
    assert detected is not None
    assert detected["consent_days_read"] == 3


def test_steps_manifest_lists_inputs_with_size_and_sha256(ran: Ran):
    manifest, landing = ran.manifest(), ran.landing
    for kind, names in (("access", ["a.jsonl", "b.jsonl.gz"]), ("consent", ["part-0.jsonl.gz"])):
        expected = []
        for name in names:
            data = (landing / kind / D.isoformat() / name).read_bytes()
            expected.append(
                {"file": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            )
        assert manifest["inputs"][kind] == expected
    registry = (landing / "partners.csv").read_bytes()
    assert manifest["registry_sha256"] == hashlib.sha256(registry).hexdigest()


def test_steps_manifest_counts_reconcile_and_record_config_and_version(ran: Ran):
    manifest, settings = ran.manifest(), ran.settings
    warehouse = Warehouse(settings.warehouse)
    quarantine = warehouse.read_partition("quarantine", D)["kind"].to_pylist()
    for kind in ("access", "consent"):
        counts = manifest["counts"][kind]
        assert (
            counts["read"] == counts["valid"] + counts["quarantined"] + counts["duplicates_dropped"]
        )
        assert counts["valid"] == warehouse.read_partition(kind, D).num_rows
        assert counts["quarantined"] == quarantine.count(kind)
        for f in manifest["files"][kind]:
            assert (
                f["read"] == f["valid"] + sum(f["quarantined"].values()) + f["duplicates_dropped"]
            )
    assert manifest["files"]["access"][0]["blank_lines"] == 1
    assert manifest["flags"]["total"] == warehouse.read_partition("flags", D).num_rows
    assert manifest["version"] == pipeline_version() != ""
    assert manifest["config"]["landing"] == settings.landing
    assert manifest["config"]["clock_skew_seconds"] == 0.0
    assert manifest["config"]["message_resources"] == ["messages"]
    assert manifest["day"] == D.isoformat()


def test_steps_manifest_hashes_an_unreadable_input_file(
    landing: Path, settings: Settings, tmp_path: Path
):
    payload = "".join(json.dumps(access(f"t{i}", "2024-03-10T12:00:00Z")) + "\n" for i in range(9))
    whole = gzip.compress(payload.encode(), mtime=0)
    broken = whole[: len(whole) // 2]
    (landing / "access" / D.isoformat() / "c.jsonl.gz").write_bytes(broken)
    summary = run_day(D, settings)
    assert summary["quarantine_reasons"]["access"]["unreadable_file"] == 1
    manifest = json.loads((tmp_path / "warehouse" / "runs" / f"date={D}" / MANIFEST).read_text())
    assert manifest["inputs"]["access"][2] == {
        "file": "c.jsonl.gz",
        "size": len(broken),
        "sha256": hashlib.sha256(broken).hexdigest(),
    }


def test_steps_no_secret_reaches_flags_or_manifest(ran: Ran):
    warehouse = Warehouse(ran.settings.warehouse)
    flags = warehouse.read_partition("flags", D)
    assert SECRET not in repr(flags.to_pylist())
    for path in (ran.warehouse_root / "runs").rglob("*.json"):
        assert SECRET not in path.read_text()
    stored = warehouse.read_partition("access", D)
    paths = [p for p in stored["path"].to_pylist() if p]
    assert paths == ["/v2/me/messages/1?access_token=REDACTED"]


def test_steps_missing_success_marker_fails_without_flags(landing: Path, settings: Settings):
    (landing / "consent" / D.isoformat() / "_SUCCESS").unlink()
    with pytest.raises(MissingInput, match=f"consent/{D}/_SUCCESS"):
        run_day(D, settings)
    warehouse = Warehouse(settings.warehouse)
    assert not warehouse.has_partition("flags", D)
    assert warehouse.read_json("runs", D, MANIFEST) is None


def test_steps_missing_day_folder_fails(landing_root: Path, settings: Settings):
    write_registry(landing_root, REGISTRY)
    with pytest.raises(MissingInput, match=f"access/{D}/_SUCCESS"):
        run_day(D, settings)


def test_steps_detect_before_ingest_fails(landing: Path, settings: Settings):
    with pytest.raises(MissingInput, match="ingest_access"):
        detect(D, settings)
    ingest_access(D, settings)
    with pytest.raises(MissingInput, match="ingest_consent"):
        detect(D, settings)
    ingest_consent(D, settings)
    # consent of the earlier days is delivered but not ingested: detect says so, writes nothing
    with pytest.raises(MissingInput, match=f"consent of {D2}, {D1} is delivered but not ingested"):
        detect(D, settings)
    assert not Warehouse(settings.warehouse).has_partition("flags", D)
    assert catch_up_consent(D, settings)["ingested"] == [D2.isoformat(), D1.isoformat()]
    assert detect(D, settings)["flags"] == 6


def test_steps_detect_reports_consent_days_never_delivered(landing: Path, settings: Settings):
    shutil.rmtree(landing / "consent" / D1.isoformat())
    ingest_access(D, settings)
    ingest_consent(D, settings)
    assert catch_up_consent(D, settings)["ingested"] == [D2.isoformat()]
    detected = detect(D, settings)
    assert detected["consent_days_not_delivered"] == [D1.isoformat()]
    assert detected["consent_days_read"] == 2


def test_steps_rerun_gives_identical_rows(landing: Path, settings: Settings):
    run_day(D, settings)
    warehouse = Warehouse(settings.warehouse)
    tables = ("access", "consent", "quarantine", "flags", "alerts")
    first = {t: warehouse.read_partition(t, D) for t in tables}
    run_day(D, settings)
    for table in tables:
        assert warehouse.read_partition(table, D).equals(first[table]), table


def test_steps_nightly_run_equals_backfill(landing: Path, tmp_path: Path):
    nightly, backfill = (
        load_settings(
            env={},
            landing=str(landing),
            warehouse=str(tmp_path / name),
            review_db=f"sqlite:///{tmp_path / name}.db",
        )
        for name in ("nightly", "backfill")
    )
    run_day(D, nightly)
    for day in (D2, D1, D):
        run_day(day, backfill)
    alone = Warehouse(nightly.warehouse).read_partition("flags", D)
    filled = Warehouse(backfill.warehouse).read_partition("flags", D)
    assert flag_keys(alone) == FLAGS_ON_D
    assert alone.equals(filled)
    alerted = [Warehouse(s.warehouse).read_partition("alerts", D) for s in (nightly, backfill)]
    assert alerted[0].num_rows and alerted[0].equals(alerted[1])


def test_steps_earlier_day_flags_ignore_later_consent(landing: Path, settings: Settings):
    run_day(D, settings)
    run_day(D2, settings)  # after D: consent of D-1 and D is in the warehouse already
    flags = Warehouse(settings.warehouse).read_partition("flags", D2)
    # q2 (08:00) precedes u1's grant (09:00); q1 (10:00) follows it
    assert flag_keys(flags) == [("q2", "NO_SIGNIN", "p1")]


def test_steps_rerun_sees_redelivered_earlier_consent(landing: Path, settings: Settings):
    run_day(D, settings)
    write_day(
        landing,
        "consent",
        D1,
        {"part-1.jsonl": [consent("g5", "2024-03-09T23:00:00Z", user="u5")]},
    )
    run_day(D, settings)
    flags = Warehouse(settings.warehouse).read_partition("flags", D)
    assert ("r4", "NO_SIGNIN", "p1") not in flag_keys(flags)


def test_steps_rerun_sees_earlier_consent_rewritten_with_same_size(
    landing: Path, settings: Settings
):
    run_day(D, settings)
    revoked = landing / "consent" / D1.isoformat() / "part-0.jsonl"
    text = revoked.read_text()
    revoked.write_text(text.replace('"u2"', '"u6"'))  # same size, another user's revoke
    assert len(revoked.read_text()) == len(text)
    run_day(D, settings)
    flags = Warehouse(settings.warehouse).read_partition("flags", D)
    assert ("r2", "SIGNIN_REVOKED", "p1") not in flag_keys(flags)


def test_steps_alerts_group_the_days_flags_and_reconcile(ran: Ran):
    warehouse = Warehouse(ran.settings.warehouse)
    table = warehouse.read_partition("alerts", D)
    flags = warehouse.read_partition("flags", D)
    keys = sorted({(r["app_id"], r["rule"]) for r in flags.to_pylist()})
    assert sorted((r["app_id"], r["rule"]) for r in table.to_pylist()) == keys
    assert set(table["alert_id"].to_pylist()) == set(flags["alert_id"].to_pylist())
    assert set(table["kind"].to_pylist()) == {"rule"}  # no model: rule alerts only
    recorded = warehouse.read_json("runs", D, "alerts.json")
    assert recorded is not None
    assert (recorded["alerts"], recorded["flags"], recorded["scored"]) == (len(keys), 6, False)
    assert ran.manifest()["alerts"]["alerts"] == len(keys)
    assert ran.summary["alerts"] == recorded


def test_steps_alerts_before_detect_fails(landing: Path, settings: Settings):
    with pytest.raises(MissingInput, match="run detect first"):
        alerts(D, settings)


def test_steps_alerts_take_anomalies_only_from_this_runs_scores(landing: Path, settings: Settings):
    run_day(D, settings)
    warehouse = Warehouse(settings.warehouse)
    anomaly = {
        "entity_kind": "partner_day",
        "day": D,
        "partner_id": "p1",
        "app_id": None,
        "user_id": None,
        "score": 7.0,
        "rank": 1,
        "alert": True,
        "model_name": "partner_behaviour",
        "model_version": "v1",
        "top_features": ["night_share"],
        "explanation": "odd",
    }
    warehouse.write_table("anomalies", D, pa.Table.from_pylist([anomaly]))
    # this run's score was skipped (no model): the partition is an earlier run's, left alone
    assert alerts(D, settings)["alerts_by_kind"] == {"rule": 6}
    warehouse.write_json("runs", D, "score.json", {"day": D.isoformat(), "scored": 1})
    assert alerts(D, settings)["alerts_by_kind"] == {"behaviour": 1, "rule": 6}
    kinds = warehouse.read_partition("alerts", D)["kind"].to_pylist()
    assert kinds == ["rule"] * 6 + ["behaviour"]
