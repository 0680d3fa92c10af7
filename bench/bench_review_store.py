"""Benchmark: the review store at 100,000+ items on SQLite and PostgreSQL. Seeds items through
upsert_day, re-publishes one day, then times queue pages (first, middle, last; each with its
count) for each sort and a few filters, and decisions. Prints figures, not pass/fail.

    python bench/bench_review_store.py [--items 100000] [--days 20] [--backends sqlite postgresql]
        [--explain]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.review.store import SORTS, ItemFilter, ReviewStore
from pipeline.schema import ANOMALIES, FLAGS, RULES

FIRST_DAY = date(2026, 1, 1)
SEVERITY_OF = ("low", "medium", "high", "critical")


def day_flags(day: date, n: int, offset: int) -> pa.Table:
    """n synthetic flags of one day: 40 partners, 120 apps, every rule and severity."""
    ids = range(offset, offset + n)
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    columns = {
        "flag_id": [f"{i:032x}" for i in ids],
        "rule": [RULES[i % len(RULES)] for i in ids],
        "severity": [SEVERITY_OF[(i * 7) % 4] for i in ids],
        "request_id": [f"req-{i}" for i in ids],
        "event_time": [start + timedelta(seconds=(i * 13) % 86_400) for i in ids],
        "app_id": [f"app-{i % 120}" for i in ids],
        "partner_id": [None if i % 97 == 0 else f"partner-{i % 40}" for i in ids],
        "partner_name": [None] * n,
        "user_id": [f"user-{i % 5000}" for i in ids],
        "resource": ["messages"] * n,
        "action": ["read"] * n,
        "scope": ["messages.read"] * n,
        "status": [200] * n,
        "path": ["/v1/me/messages"] * n,
        "explanation": [f"flag {i}: read messages with no sign-in" for i in ids],
        "delivery_date": [day] * n,
        "source_file": ["access/part-0.jsonl"] * n,
        "source_line": list(ids),
    }
    for name in FLAGS.names:
        columns.setdefault(name, [None] * n)
    return pa.Table.from_pydict(columns, schema=FLAGS)


def day_anomalies(day: date, n: int) -> pa.Table:
    rows = [
        {
            "entity_kind": "partner_day",
            "day": day,
            "partner_id": f"partner-{k}",
            "app_id": None,
            "user_id": None,
            "score": 0.5 + k / 100,
            "rank": k + 1,
            "alert": k < n // 2,
            "model_name": "partner_behaviour",
            "model_version": "bench",
            "top_features": ["message_reads"],
            "explanation": "unusual volume",
        }
        for k in range(n)
    ]
    return pa.Table.from_pylist(rows, schema=ANOMALIES)


def timed(call, repeat: int = 3) -> float:
    """Median milliseconds of `repeat` calls."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def seed(store: ReviewStore, items: int, days: int) -> None:
    per_day = items // days
    started = time.perf_counter()
    for n in range(days):
        day = FIRST_DAY + timedelta(days=n)
        store.upsert_day(day, day_flags(day, per_day, n * per_day), day_anomalies(day, 20))
    seconds = time.perf_counter() - started
    print(f"  seed: {days} days x {per_day:,} flags in {seconds:.1f} s ({items / seconds:,.0f}/s)")
    day = FIRST_DAY + timedelta(days=days // 2)
    started = time.perf_counter()
    counts = store.upsert_day(
        day, day_flags(day, per_day, days // 2 * per_day), day_anomalies(day, 20)
    )
    print(f"  re-publish one day ({counts}): {time.perf_counter() - started:.2f} s")


FILTERS = {
    "no filter": ItemFilter(),
    "status=new": ItemFilter(status="new"),
    "partner": ItemFilter(partner_id="partner-7"),
    "week+severity": ItemFilter(
        start=FIRST_DAY + timedelta(days=3), end=FIRST_DAY + timedelta(days=9), severity="high"
    ),
    "app+rule": ItemFilter(app_id="app-33", rule="NO_SIGNIN"),
    "assignee": ItemFilter(assignee="alice"),
}


def measure(store: ReviewStore) -> None:
    per_page = 50
    print(
        f"  {'sort':<12} {'filter':<14} {'total':>7} {'first ms':>9} {'middle ms':>10} "
        f"{'last ms':>8}"
    )
    for sort in SORTS:
        for name, filt in FILTERS.items():
            if sort not in ("-day", "-severity") and name not in ("no filter", "status=new"):
                continue
            total = store.items(filt, sort, 1, per_page).total
            last = max(1, -(-total // per_page))
            figures = [
                timed(lambda f=filt, s=sort, p=page: store.items(f, s, p, per_page))
                for page in (1, max(1, last // 2), last)
            ]
            print(
                f"  {sort:<12} {name:<14} {total:>7,} " + " ".join(f"{ms:>9.1f}" for ms in figures)
            )
    print(f"  page past the end: {timed(lambda: store.items(ItemFilter(), page=10**12)):.1f} ms")
    ids = [i.item_id for i in store.items(ItemFilter(), per_page=100).items]
    print(
        f"  set_status of 100 items in one batch: "
        f"{timed(lambda: store.set_status(ids, 'triaged', 'bench'), repeat=1):.1f} ms"
    )
    print(f"  assign 100 items: {timed(lambda: store.assign(ids, 'alice', 'bench'), 1):.1f} ms")
    print(f"  facets: {timed(store.facets):.1f} ms, partners: {timed(store.partners):.1f} ms")
    print(
        f"  iter_items (CSV export of every item): "
        f"{timed(lambda: sum(1 for _ in store.iter_items(ItemFilter())), 1):.0f} ms"
    )


def explain(store: ReviewStore) -> None:
    """The plans of a queue page's id lookup and of its count."""
    import sqlalchemy as sa

    from pipeline.review.tables import review_items

    engine = store._engine
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    for sort, filt in (
        ("-day", ItemFilter()),
        ("-severity", ItemFilter(status="new")),
        ("-day", ItemFilter(partner_id="partner-7")),
    ):
        conditions = store._conditions(filt)
        query = (
            sa.select(review_items.c.item_id)
            .where(*conditions)
            .order_by(*store._order(sort))
            .limit(50)
            .offset(50_000)
        )
        count = sa.select(sa.func.count()).select_from(review_items).where(*conditions)
        for label, statement in (("page", query), ("count", count)):
            compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
            with engine.connect() as connection:
                plan = connection.exec_driver_sql(prefix + str(compiled)).all()
            print(f"  {label} {sort} {filt}:")
            for row in plan:
                print("    " + " ".join(str(v) for v in row))


def run(url: str, label: str, items: int, days: int, show_plans: bool) -> None:
    print(f"{label}:")
    store = ReviewStore.open(url)
    try:
        seed(store, items, days)
        if store._engine.dialect.name == "postgresql":
            with store._engine.connect() as connection:
                connection.exec_driver_sql("ANALYZE review_items")
                connection.commit()
        measure(store)
        if show_plans:
            explain(store)
    finally:
        store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--explain", action="store_true", help="print query plans")
    args = parser.parse_args()
    if "sqlite" in args.backends:
        with tempfile.TemporaryDirectory() as work:
            run(f"sqlite:///{work}/review.db", "SQLite", args.items, args.days, args.explain)
    if "postgresql" in args.backends:
        from tests.postgres import scratch_schema

        with scratch_schema("review_bench") as url:
            run(url, "PostgreSQL", args.items, args.days, args.explain)


if __name__ == "__main__":
    main()
