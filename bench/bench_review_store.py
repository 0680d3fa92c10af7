"""Benchmark: the review store on alerts (SPEC §5), on SQLite and PostgreSQL. Publishes N days of
synthetic alerts through publish_day (alerts/date=D/ Parquet → store, as the pipeline does),
then re-publishes one day, and prints per day: publish seconds and the store's growth; then the
queue (first, middle, last page for each sort), a series decision and a CSV export of every
alert. Figures, not pass/fail.

    python bench/bench_review_store.py [--days 30] [--apps 120] [--behaviour 100]
        [--backends sqlite postgresql]

A day here is --apps x 8 rules rule alerts (every app breaking every rule: far more than a
real day's few hundred) plus --behaviour behaviour alerts; every app and rule recurs daily, so
every rule alert belongs to a series as long as the run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.config import load_settings
from pipeline.detect.alert_ids import behaviour_alert_id, rule_alert_id
from pipeline.review.publish import publish_day
from pipeline.review.store import SORTS, AlertFilter, ReviewStore
from pipeline.schema import ALERTS, RULES
from pipeline.warehouse import Warehouse

FIRST_DAY = date(2026, 1, 1)
SEVERITY_OF = ("low", "medium", "high", "critical")


def day_alerts(day: date, apps: int, behaviour: int) -> pa.Table:
    """The day's alerts: every app breaking every rule, and `behaviour` partner-day alerts."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    for a in range(apps):
        for r, rule in enumerate(RULES):
            flags = 1000 + (a * 37 + r * 11) % 50_000
            rows.append(
                {
                    "alert_id": rule_alert_id(day, f"app-{a}", rule),
                    "kind": "rule",
                    "day": day,
                    "partner_id": f"partner-{a % 40}",
                    "partner_name": f"Partner {a % 40}",
                    "app_id": f"app-{a}",
                    "user_id": None,
                    "rule": rule,
                    "severity": SEVERITY_OF[(a + r) % 4],
                    "flags": flags,
                    "users": flags // 3,
                    "first_event_time": start,
                    "last_event_time": start + timedelta(hours=23),
                    "reads": flags - flags // 10,
                    "writes": flags // 20,
                    "deletes": flags // 10 - flags // 20,
                    "flags_by_hour": [flags // 24] * 23 + [flags - 23 * (flags // 24)],
                    "evidence": json.dumps(
                        {
                            "partnership_end": "2025-12-31T12:00:00+00:00",
                            "users_by_consent": {"no_grant": flags // 6, "revoked": flags // 6},
                            "scopes_granted": ["messages.read", "profile"],
                        }
                    ),
                    "sample_request_ids": [f"req-{day}-{a}-{r}-{k}" for k in range(5)],
                    "score": None,
                    "model_version": None,
                    "explanation": f"Partner {a % 40} (app app-{a}) made {flags:,} message "
                    f"accesses ({flags - flags // 10:,} reads) for {flags // 3:,} users on {day}: "
                    f"{rule}",
                }
            )
    for p in range(behaviour):
        rows.append(
            {
                "alert_id": behaviour_alert_id("partner_day", day, f"partner-{p}", None, None),
                "kind": "behaviour",
                "day": day,
                "partner_id": f"partner-{p}",
                "partner_name": None,
                "app_id": None,
                "user_id": None,
                "rule": "partner_day",
                "severity": "high",
                "flags": 0,
                "users": 0,
                "first_event_time": None,
                "last_event_time": None,
                "reads": 0,
                "writes": 0,
                "deletes": 0,
                "flags_by_hour": None,
                "evidence": json.dumps({"top_features": ["message_reads", "night_share"]}),
                "sample_request_ids": [],
                "score": 0.9,
                "model_version": "bench",
                "explanation": f"partner-{p} read 40x its usual messages",
            }
        )
    return pa.Table.from_pylist(rows, schema=ALERTS)


def timed(call: Any, repeat: int = 3) -> float:
    """Median milliseconds of `repeat` calls."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def store_bytes(store: ReviewStore, sqlite_path: Path | None) -> int:
    """The store's size on disk: SQLite's file and WAL, or PostgreSQL's tables and indexes."""
    if sqlite_path is not None:
        store.dispose()  # checkpoints the WAL into the file
        wal = sqlite_path.with_name(sqlite_path.name + "-wal")
        return sqlite_path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    with store._engine.connect() as connection:
        return int(
            connection.exec_driver_sql(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'r' AND n.nspname = current_schema()"
            ).scalar_one()
        )


def run(url: str, label: str, args: argparse.Namespace, sqlite_path: Path | None) -> None:
    print(f"{label}:")
    warehouse_dir = tempfile.mkdtemp(prefix="bench-review-wh-")
    settings = load_settings(env={}, warehouse=warehouse_dir, review_db=url)
    warehouse = Warehouse(warehouse_dir)
    store = ReviewStore.open(url)
    base = store_bytes(store, sqlite_path)
    seconds = []
    for n in range(args.days):
        day = FIRST_DAY + timedelta(days=n)
        warehouse.write_table("alerts", day, day_alerts(day, args.apps, args.behaviour))
        started = time.perf_counter()
        publish_day(day, settings)
        seconds.append(time.perf_counter() - started)
    size = store_bytes(store, sqlite_path)
    per_day = args.apps * len(RULES) + args.behaviour
    print(
        f"  publish: {args.days} days x {per_day:,} alerts; seconds a day median "
        f"{statistics.median(seconds):.2f}, max {max(seconds):.2f}"
    )
    print(
        f"  store growth: {(size - base) / args.days / 1e6:.2f} MB a day "
        f"({size / 1e6:.1f} MB after {args.days} days)"
    )
    day = FIRST_DAY + timedelta(days=args.days // 2)
    started = time.perf_counter()
    counts = publish_day(day, settings)
    print(f"  re-publish one day ({counts}): {time.perf_counter() - started:.2f} s")
    store = ReviewStore.open(url)
    try:
        if store._engine.dialect.name == "postgresql":
            with store._engine.connect() as connection:
                connection.exec_driver_sql("ANALYZE review_alerts")
                connection.commit()
        measure(store)
    finally:
        store.dispose()


def measure(store: ReviewStore) -> None:
    per_page = 50
    print(f"  {'sort':<12} {'rows':>7} {'first ms':>9} {'middle ms':>10} {'last ms':>8}")
    for sort in SORTS:
        total = store.queue(AlertFilter(), sort, 1, per_page).total
        last = max(1, -(-total // per_page))
        figures = [
            timed(lambda s=sort, p=page: store.queue(AlertFilter(), s, p, per_page))
            for page in (1, max(1, last // 2), last)
        ]
        print(f"  {sort:<12} {total:>7,} " + " ".join(f"{ms:>9.1f}" for ms in figures))
    filt = AlertFilter(status="new", partner_id="partner-7")
    print(f"  queue, status=new + partner: {timed(lambda: store.queue(filt)):.1f} ms")
    row = store.queue(AlertFilter(kind="rule"), per_page=1).rows[0]
    assert row.series_id is not None
    decide = timed(
        lambda: store.set_status([], "triaged", "bench", series_ids=[row.series_id]), repeat=1
    )
    print(f"  set_status of a series of {row.series_days} days: {decide:.1f} ms")
    print(f"  series page data: {timed(lambda: store.series(row.series_id)):.1f} ms")
    ids = [a.alert_id for a in store.alerts(AlertFilter(status="new"), per_page=100).alerts]
    print(
        f"  assign a selection of 100 alerts: "
        f"{timed(lambda: store.assign(ids, 'alice', 'bench'), 1):.1f} ms"
    )
    print(f"  facets: {timed(store.facets):.1f} ms, partners: {timed(store.partners):.1f} ms")
    print(
        f"  iter_alerts (CSV export of every alert): "
        f"{timed(lambda: sum(1 for _ in store.iter_alerts(AlertFilter())), 1):.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--apps", type=int, default=120)
    parser.add_argument("--behaviour", type=int, default=100)
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    for backend in args.backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "review.db"
                run(f"sqlite:///{path}", "SQLite", args, path)
        else:
            from tests.postgres import scratch_schema

            with scratch_schema("bench_review") as url:
                run(url, "PostgreSQL", args, None)


if __name__ == "__main__":
    main()
