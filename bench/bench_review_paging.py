"""Benchmark: queue paging through the real review UI over HTTP, at 100,000 items.

Seeds a review store with synthetic flags (through ReviewStore.upsert_day, as the pipeline
does), serves the standalone app with uvicorn on a free port, logs in through the form and
times GET /queue for the first, middle and last page, with and without filters and sorts.
Prints p50/p95/max milliseconds per case. Figures, not pass/fail.

    python bench/bench_review_paging.py [--items 100000] [--db sqlite:////tmp/x.db]
                                        [--repeat 20]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ITEMS_PER_DAY = 1000
FIRST_DAY = date(2026, 1, 1)
RULES = ("NO_SIGNIN", "SIGNIN_REVOKED", "SIGNIN_EXPIRED", "SCOPE_NOT_GRANTED", "UNKNOWN_APP")
SEVERITIES = ("low", "medium", "high", "critical")
PASSWORD = "bench-password"


def synthetic_flags(day: date, count: int, offset: int) -> Any:
    """`count` flags of `day` in the warehouse's flags schema, spread over partners and rules."""
    import pyarrow as pa

    from pipeline.schema import FLAGS

    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    rows = []
    for i in range(offset, offset + count):
        partner = f"P{i % 40:03d}"
        rows.append(
            {
                "flag_id": hashlib.md5(f"bench|{i}".encode()).hexdigest(),
                "rule": RULES[i % len(RULES)],
                "severity": SEVERITIES[(i * 7) % len(SEVERITIES)],
                "request_id": f"req_{i:09d}",
                "event_time": start + timedelta(seconds=(i * 37) % 86_400),
                "app_id": f"{partner.lower()}-app{i % 3}",
                "partner_id": partner,
                "partner_name": f"Partner {partner}",
                "user_id": f"u{i % 50_000:06d}",
                "resource": "messages",
                "action": "read",
                "scope": "messages.read",
                "status": 200,
                "explanation": f"Partner {partner} read messages of user u{i % 50_000:06d} "
                "without a sign-in",
                "delivery_date": day,
                "source_file": "bench.jsonl",
                "source_line": i,
            }
        )
    return pa.Table.from_pylist(rows, schema=FLAGS)


def seed(url: str, items: int) -> float:
    """Fill the store with `items` flags (unless it already holds them); seconds taken."""
    from pipeline.review.store import ItemFilter, ReviewStore
    from pipeline.schema import ANOMALIES

    store = ReviewStore.open(url)
    try:
        started = time.perf_counter()
        if store.items(ItemFilter(), per_page=1).total >= items:
            items = 0  # seeded by an earlier run
        for n, offset in enumerate(range(0, items, ITEMS_PER_DAY)):
            day = FIRST_DAY + timedelta(days=n)
            count = min(ITEMS_PER_DAY, items - offset)
            store.upsert_day(day, synthetic_flags(day, count, offset), ANOMALIES.empty_table())
        seconds = time.perf_counter() - started
    finally:
        store.dispose()
    if url.startswith("postgresql"):
        # what autovacuum does soon after a bulk load; without it every index scan also reads
        # the table to learn which rows are visible
        import sqlalchemy as sa

        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.exec_driver_sql("VACUUM ANALYZE review_items")
        engine.dispose()
    return seconds


class Server:
    """The standalone app under uvicorn in a background thread."""

    def __init__(self, url: str) -> None:
        import socket

        import uvicorn

        from pipeline.config import ReviewUser, load_settings
        from pipeline.review.web.app import create_app
        from pipeline.review.web.auth import hash_password

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        settings = load_settings(
            env={}, review_db=url, review_users=(ReviewUser("bench", hash_password(PASSWORD)),)
        )
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def logged_in_client(base: str) -> Any:
    import httpx

    client = httpx.Client(base_url=base, timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token, "no login form"
    response = client.post(
        "/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert response.status_code in (200, 303), response.text
    return client


def cases(total: int) -> list[tuple[str, str]]:
    last = -(-total // 50)
    middle = max(1, last // 2)
    return [
        ("first page", "/queue"),
        ("middle page", f"/queue?page={middle}"),
        ("last page", f"/queue?page={last}"),
        ("last page, by severity", f"/queue?sort=-severity&page={last}"),
        ("partner filter", "/queue?partner=P007"),
        ("partner filter, last page", f"/queue?partner=P007&page={-(-total // 40 // 50)}"),
        ("rule+severity+status", "/queue?rule=SIGNIN_REVOKED&severity=high&status=new"),
        ("date range, by access time", "/queue?start=2026-02-01&end=2026-02-28&sort=event_time"),
        ("200 per page, middle", f"/queue?per_page=200&page={max(1, total // 400)}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--db", help="review store URL (default: a SQLite file in a temp folder)")
    parser.add_argument("--repeat", type=int, default=20, help="GETs per case (default 20)")
    args = parser.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp(prefix='review-bench-')}/review.db"
    seconds = seed(url, args.items)
    print(f"store: {url.split('@')[-1]}  items: {args.items:,}  seeded in {seconds:.1f}s")
    with Server(url) as base:
        client = logged_in_client(base)
        client.get("/queue")  # warm-up: facets cache, templates, connection pool
        print(f"{'case':32} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  items shown")
        for name, path in cases(args.items):
            timings = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                response = client.get(path)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            shown = len(re.findall(r"data-item-id=", response.text))
            timings.sort()
            p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
            print(
                f"{name:32} {statistics.median(timings):8.1f} {p95:8.1f} {timings[-1]:8.1f}"
                f"  {shown}"
            )


if __name__ == "__main__":
    main()
