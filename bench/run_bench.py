"""Benchmark: events/s, CPU seconds and peak RSS for ingest and detection, beside plain
baselines, at several day sizes. Each phase runs in its own process so its peak RSS is its own.
Prints figures; it does not pass or fail.

    python bench/run_bench.py [--events 1000000 10000000] [--work /tmp/access-audit-bench]
                              [--phases ingest detect run] [--stores sqlite postgresql]
                              [--keep] [--repeat N]

CPU seconds (user + system, all threads) count only the timed part of a phase, so they stay
comparable on a busy machine where wall-clock time does not. With --keep the generated day and
the warehouse stay for the next run (a phase reads what the phases before it wrote).

The `run` phase is a whole `access-audit run` of the day, once per review store (SQLite, and
PostgreSQL at $ACCESS_AUDIT_TEST_POSTGRES_URL in a scratch schema): each step (ingest, detect,
score, alerts, publish, report) in its own process, with its seconds, CPU seconds and peak RSS,
and the review store's growth in bytes by the day (the steps' modules are imported before the
clock starts; peak RSS includes them). It runs into a warehouse of its own; the day
before (consent only) is run first, untimed, so the store's growth is the day's alone. Score
uses the models of the `train` phase if it ran before it (with --keep), else it is skipped.
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

PHASES = ("ingest", "detect", "train", "score", "baseline_ingest", "baseline_detect", "run")
RUN_STEPS = ("ingest", "detect", "score", "alerts", "publish", "report")
STORES = ("sqlite", "postgresql")
STEP_MODULES = (
    "pipeline.ingest.day",
    "pipeline.detect.shards",
    "pipeline.behaviour.scoring",
    "pipeline.behaviour.model",
    "pipeline.detect.alerts",
    "pipeline.review.publish",
    "pipeline.report.charts",
    "pipeline.report.figures",
    "pipeline.report.render",
)
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


def _run_settings(work: Path, run_dir: Path, review_db: str):
    """The whole-run phase's settings: its own warehouse and store, the bench's models."""
    from pipeline.config import load_settings

    return load_settings(
        env={},
        landing=str(work / "landing"),
        warehouse=str(run_dir / "warehouse"),
        models_dir=str(work / "models"),
        review_db=review_db,
    )


def phase_step(work: Path, day: date, step: str, run_dir: Path, review_db: str) -> dict:
    """One step of `access-audit run` (as steps.run_day calls it), timed."""
    import importlib

    from pipeline import steps

    # the modules the steps import lazily, loaded before the clock starts: one process pays
    # for them once in a real run, and they would swamp the small days' figures here
    for module in STEP_MODULES:
        importlib.import_module(module)
    settings = _run_settings(work, run_dir, review_db)
    watch = _Stopwatch()
    if step == "ingest":  # as run_day: the day's deliveries, then any earlier consent missing
        steps.ingest_access(day, settings)
        steps.ingest_consent(day, settings)
        steps.catch_up_consent(day, settings)
    else:
        getattr(steps, step)(day, settings)
    return watch.figures()


def phase_prepare_run(work: Path, day: date, run_dir: Path, review_db: str) -> dict:
    """The day before the measured one, whole: the store exists before the day is published."""
    from pipeline import steps

    steps.run_day(day - timedelta(days=1), _run_settings(work, run_dir, review_db))
    return {}


def store_bytes(review_db: str, run_dir: Path) -> int:
    """The review store's size: its SQLite files, or its PostgreSQL schema's tables with their
    indexes and TOAST."""
    if review_db.startswith("sqlite"):
        path = Path(review_db.removeprefix("sqlite:///"))
        files = [path, path.with_name(path.name + "-wal")]
        return sum(f.stat().st_size for f in files if f.exists())
    import sqlalchemy as sa

    engine = sa.create_engine(review_db)
    try:
        with engine.connect() as connection:
            size = connection.exec_driver_sql(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')"
            ).scalar_one()
    finally:
        engine.dispose()
    return int(size)


def _child(args: list[str], label: str) -> dict:
    """Run this file with `args` in a child process; its own peak RSS comes from wait4."""
    child = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE)
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"bench {label} failed with exit code {child.returncode}")
    result: dict = json.loads(output.decode().strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def _whole_run(work: Path, day: date, events: int, store: str, review_db: str) -> None:
    """Every step of a run of the day on one review store, then the store's growth."""
    run_dir = work / f"run-{store}"
    subprocess.run(["rm", "-rf", str(run_dir)], check=True)
    run_dir.mkdir(parents=True)
    common = ["--work", str(work), "--day", day.isoformat(), "--run-dir", str(run_dir)]
    common += ["--review-db", review_db]
    _child(["--phase", "prepare_run", *common], "run: the day before")
    before = store_bytes(review_db, run_dir)
    total = {"seconds": 0.0, "cpu_seconds": 0.0, "peak_rss_mb": 0.0}
    tail = 0.0
    for step in RUN_STEPS:
        result = _child(["--phase", "step", "--step", step, *common], f"run step {step}")
        for key in ("seconds", "cpu_seconds"):
            total[key] += result[key]
        total["peak_rss_mb"] = max(total["peak_rss_mb"], result["peak_rss_mb"])
        if step in ("publish", "report"):
            tail += result["seconds"]
        print(
            f"{events:>11,} {'run/' + store + '/' + step:<26} {result['seconds']:>8.1f} "
            f"{result['cpu_seconds']:>7.1f} {'':>11} {result['peak_rss_mb']:>12,.0f}",
            flush=True,
        )
    grown = store_bytes(review_db, run_dir) - before
    print(
        f"{events:>11,} {'run/' + store + '/total':<26} {total['seconds']:>8.1f} "
        f"{total['cpu_seconds']:>7.1f} {events / total['seconds']:>11,.0f} "
        f"{total['peak_rss_mb']:>12,.0f}   publish+report {tail / total['seconds']:.1%} "
        f"of the time; review store +{grown:,} bytes",
        flush=True,
    )


def _whole_runs(work: Path, day: date, events: int, stores: list[str]) -> None:
    if "sqlite" in stores:
        _whole_run(work, day, events, "sqlite", f"sqlite:///{work / 'run-review.db'}")
        for leftover in work.glob("run-review.db*"):
            leftover.unlink()
    if "postgresql" in stores:
        from tests.postgres import scratch_schema

        with scratch_schema("run_bench") as url:
            _whole_run(work, day, events, "postgresql", url)


def _run_phase(phase: str, work: Path, day: date) -> dict:
    """Run one phase in a child process; its own peak RSS comes from wait4."""
    return _child(["--phase", phase, "--work", str(work), "--day", day.isoformat()], phase)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/access-audit-bench"))
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    parser.add_argument("--keep", action="store_true", help="reuse and keep the generated day")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each phase")
    parser.add_argument(
        "--stores", nargs="+", choices=STORES, default=list(STORES), help="run phase's stores"
    )
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--day", type=date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--step", choices=RUN_STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--review-db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        phase = globals()[f"phase_{args.phase}"]
        if args.phase == "step":
            figures = phase(args.work, args.day, args.step, args.run_dir, args.review_db)
        elif args.phase == "prepare_run":
            figures = phase(args.work, args.day, args.run_dir, args.review_db)
        else:
            figures = phase(args.work, args.day)
        print(json.dumps(figures))
        return

    from bench.generate_day import generate

    print(
        f"{'events':>11} {'phase':<26} {'seconds':>8} {'CPU s':>7} {'events/s':>11} "
        f"{'peak RSS MB':>12}"
    )
    for events in args.events:
        work = args.work / f"n{events}"
        day = DAY
        if not (args.keep and (work / "landing").is_dir()):
            subprocess.run(["rm", "-rf", str(work)], check=True)
            day = generate(work / "landing", events, DAY)
        for phase in args.phases:
            if phase == "run":
                for _ in range(args.repeat):
                    _whole_runs(work, day, events, args.stores)
                continue
            for _ in range(args.repeat):
                result = _run_phase(phase, work, day)
                rate = events / result["seconds"]
                print(
                    f"{events:>11,} {phase:<26} {result['seconds']:>8.1f} "
                    f"{result['cpu_seconds']:>7.1f} {rate:>11,.0f} "
                    f"{result['peak_rss_mb']:>12,.0f}",
                    flush=True,
                )
        if not args.keep:
            subprocess.run(["rm", "-rf", str(work)], check=True)


if __name__ == "__main__":
    main()
