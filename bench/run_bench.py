"""Benchmark: events/s, CPU seconds and peak RSS for ingest and detection, beside plain
baselines, at several day sizes. Each phase runs in its own process so its peak RSS is its own.
Prints figures; it does not pass or fail.

    python bench/run_bench.py [--events 1000000 10000000] [--work /tmp/access-audit-bench]
                              [--phases ingest detect] [--keep] [--repeat N]

CPU seconds (user + system, all threads) count only the timed part of a phase, so they stay
comparable on a busy machine where wall-clock time does not. With --keep the generated day and
the warehouse stay for the next run (a phase reads what the phases before it wrote).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PHASES = ("ingest", "detect", "train", "score", "baseline_ingest", "baseline_detect")
DAY = date(2026, 3, 2)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


class _Stopwatch:
    """Wall and CPU seconds from its creation: the timed part of a phase, setup excluded."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), _cpu_seconds()

    def figures(self, **counts: int) -> dict:
        return {
            "seconds": time.perf_counter() - self.wall,
            "cpu_seconds": _cpu_seconds() - self.cpu,
            **counts,
        }


def _settings(work: Path):
    from pipeline.config import load_settings

    return load_settings(
        env={},
        landing=str(work / "landing"),
        warehouse=str(work / "warehouse"),
        models_dir=str(work / "models"),
    )


def phase_ingest(work: Path, day: date) -> dict:
    from pipeline.steps import ingest_access, ingest_consent

    settings = _settings(work)
    ingest_consent(day - timedelta(days=1), settings)
    ingest_consent(day, settings)
    watch = _Stopwatch()
    summary = ingest_access(day, settings)
    return watch.figures(events=summary["totals"]["read"])


def phase_detect(work: Path, day: date) -> dict:
    from pipeline.steps import detect

    watch = _Stopwatch()
    summary = detect(day, _settings(work))
    return watch.figures(flags=summary["flags"])


def phase_train(work: Path, day: date) -> dict:
    """Behaviour features of the day (every entity) and the model trained on them."""
    from pipeline.steps import train

    watch = _Stopwatch()
    summary = train(day, 1, _settings(work))
    return watch.figures(rows=summary["rows"])


def phase_score(work: Path, day: date) -> dict:
    from pipeline.steps import score

    watch = _Stopwatch()
    summary = score(day, _settings(work))
    return watch.figures(rows=summary["scored"])


def phase_baseline_ingest(work: Path, day: date) -> dict:
    """DuckDB's own JSON reader straight to Parquet: no validation, quarantine or redaction."""
    import duckdb

    folder = work / "landing" / "access" / day.isoformat()
    out = work / "baseline.parquet"
    watch = _Stopwatch()
    con = duckdb.connect()
    con.execute("SET memory_limit = '1GB'")
    con.execute(
        f"COPY (SELECT * FROM read_json('{folder}/*.jsonl', format='newline_delimited')) "
        f"TO '{out}' (FORMAT parquet)"
    )
    events = con.sql(f"SELECT count(*) FROM '{out}'").fetchall()[0][0]
    return watch.figures(events=events)


def phase_baseline_detect(work: Path, day: date) -> dict:
    """pandas merge_asof of message reads against the last grant/revoke: the consent rules only."""
    import pandas as pd

    from pipeline.warehouse import Warehouse

    warehouse = Warehouse(str(work / "warehouse"))
    watch = _Stopwatch()
    columns = ["request_id", "event_time", "app_id", "user_id", "resource", "status"]
    access = pd.read_parquet(warehouse.part_file("access", day), columns=columns)
    access = access[(access["resource"] == "messages") & (access["status"] < 400)]
    consent = pd.concat(
        pd.read_parquet(p)
        for p in warehouse.files_for_days("consent", [day - timedelta(days=1), day])
    )
    consent = consent[["event_time", "user_id", "app_id", "event_type"]].sort_values("event_time")
    joined = pd.merge_asof(
        access.sort_values("event_time"),
        consent,
        on="event_time",
        by=["user_id", "app_id"],
        direction="backward",
    )
    flagged = int((joined["event_type"].isna() | (joined["event_type"] == "revoke")).sum())
    return watch.figures(flags=flagged)


def _run_phase(phase: str, work: Path, day: date) -> dict:
    """Run one phase in a child process; its own peak RSS comes from wait4."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--phase", phase, "--work", str(work), "--day", day.isoformat()],
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"bench phase {phase} failed with exit code {child.returncode}")
    result: dict = json.loads(output.decode().strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/access-audit-bench"))
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    parser.add_argument("--keep", action="store_true", help="reuse and keep the generated day")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each phase")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--day", type=date.fromisoformat, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(globals()[f"phase_{args.phase}"](args.work, args.day)))
        return

    from bench.generate_day import generate

    print(
        f"{'events':>11} {'phase':<16} {'seconds':>8} {'CPU s':>7} {'events/s':>11} "
        f"{'peak RSS MB':>12}"
    )
    for events in args.events:
        work = args.work / f"n{events}"
        day = DAY
        if not (args.keep and (work / "landing").is_dir()):
            subprocess.run(["rm", "-rf", str(work)], check=True)
            day = generate(work / "landing", events, DAY)
        for phase in args.phases:
            for _ in range(args.repeat):
                result = _run_phase(phase, work, day)
                rate = events / result["seconds"]
                print(
                    f"{events:>11,} {phase:<16} {result['seconds']:>8.1f} "
                    f"{result['cpu_seconds']:>7.1f} {rate:>11,.0f} "
                    f"{result['peak_rss_mb']:>12,.0f}",
                    flush=True,
                )
        if not args.keep:
            subprocess.run(["rm", "-rf", str(work)], check=True)


if __name__ == "__main__":
    main()
