"""Benchmark: queue paging through the real review UI over HTTP, on a store of alerts.

Seeds a review store with synthetic alerts (through ReviewStore.upsert_day, as publish does;
60 days x 120 apps x 8 rules by default, with gaps so that series have many lengths), serves
the standalone app with uvicorn on a free port, logs in through the form and times GET /queue
for the first, middle and last page, with and without filters and sorts.
Prints p50/p95/max milliseconds per case. Figures, not pass/fail.

    python bench/bench_review_paging.py [--days 60] [--apps 120] [--db sqlite:////tmp/x.db]
                                        [--repeat 20]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FIRST_DAY = date(2026, 1, 1)
PASSWORD = "bench-password"


def seed(url: str, days: int, apps: int) -> tuple[float, int]:
    """Fill the store with `days` of alerts of `apps` apps x 8 rules (unless it holds them);
    seconds taken, and the queue's rows (series and lone alerts)."""
    from bench.bench_review_store import day_alerts
    from pipeline.review.store import AlertFilter, ReviewStore

    store = ReviewStore.open(url)
    try:
        started = time.perf_counter()
        if store.alerts(AlertFilter(), per_page=1).total == 0:
            for n in range(days):
                day = FIRST_DAY + timedelta(days=n)
                # every other day an app skips a rule: series of many lengths, not one per key
                table = day_alerts(day, apps, 20)
                keep = [i % (2 + n % 3) != 0 or n % 2 == 0 for i in range(table.num_rows)]
                store.upsert_day(day, table.filter(keep))
        seconds = time.perf_counter() - started
        rows = store.queue(AlertFilter(), per_page=1).total
    finally:
        store.dispose()
    if url.startswith("postgresql"):
        # what autovacuum does soon after a bulk load
        import sqlalchemy as sa

        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.exec_driver_sql("VACUUM ANALYZE review_alerts")
        engine.dispose()
    return seconds, rows


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

    client = httpx.Client(base_url=base, timeout=30, headers={"origin": base})  # as a browser
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
        ("partner filter", "/queue?partner=partner-7"),
        ("rule+severity+status", "/queue?rule=SIGNIN_REVOKED&severity=high&status=new"),
        ("date range, most flags", "/queue?start=2026-01-10&end=2026-01-20&sort=-flags"),
        ("200 per page, middle", f"/queue?per_page=200&page={max(1, total // 400)}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--apps", type=int, default=120)
    parser.add_argument("--db", help="review store URL (default: a SQLite file in a temp folder)")
    parser.add_argument("--repeat", type=int, default=20, help="GETs per case (default 20)")
    args = parser.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp(prefix='review-bench-')}/review.db"
    seconds, rows = seed(url, args.days, args.apps)
    print(f"store: {url.split('@')[-1]}  queue rows: {rows:,}  seeded in {seconds:.1f}s")
    with Server(url) as base:
        client = logged_in_client(base)
        client.get("/queue")  # warm-up: facets cache, templates, connection pool
        print(f"{'case':32} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  rows shown")
        for name, path in cases(rows):
            timings = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                response = client.get(path)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            shown = len(re.findall(r"data-row-key=", response.text))
            timings.sort()
            p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
            print(
                f"{name:32} {statistics.median(timings):8.1f} {p95:8.1f} {timings[-1]:8.1f}"
                f"  {shown}"
            )


if __name__ == "__main__":
    main()
