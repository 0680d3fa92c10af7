"""Benchmark: one day's detection as K independent units (detect_shards = K) and their assembly.

Each unit, and the assembly, runs in its own process, one after another, as a worker would run it:
its CPU seconds (user + system, all threads) and peak RSS are its own (os.wait4). Printed per K:
per-unit CPU seconds and peak RSS, the assembly's, the wall time of the units run one by one
here, the wall time to expect on K workers (the slowest unit, then the assembly), the same path
in CPU seconds and the speed-up over the first K it gives. The flags are checked to be the same
for every K. Prints figures; it does not pass or fail.

    python bench/bench_shards.py [--events 1000000] [--shards 1 2 4 8] [--work DIR] [--keep]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DAY = date(2026, 3, 2)


def _settings(work: Path, shards: int = 1) -> Any:
    from pipeline.config import load_settings

    settings = load_settings(
        env={}, landing=str(work / "landing"), warehouse=str(work / "warehouse")
    )
    return dataclasses.replace(settings, detect_shards=shards)


def _prepare(work: Path, events: int) -> None:
    """The generated day, ingested (kept with --keep: ingest is not what is measured here)."""
    from bench.generate_day import generate
    from pipeline import steps

    marker = work / f"ingested-{events}"
    if marker.exists():
        return
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    day = generate(work / "landing", events, DAY)
    settings = _settings(work)
    steps.ingest_consent(day - timedelta(days=1), settings)
    steps.ingest_consent(day, settings)
    steps.ingest_access(day, settings)
    marker.touch()


def _child(work: Path, job: dict[str, Any]) -> None:
    """In the child process: one unit (`shard`) or the assembly (`commit`)."""
    from pipeline import steps

    settings = _settings(work, job["shards"])
    if job.get("idle"):  # imports and settings only: what every unit pays before any work
        from pipeline.detect import registry, shards  # noqa: F401
    elif "shard" in job:
        steps.detect_shard(DAY, settings, job["shard"], job["shards"], job["run"])
    else:
        steps.detect_commit(DAY, settings, job["run"], job["shards"])
    # this process image's own high-water mark: wait4's ru_maxrss would also count the parent's
    # memory at fork, which Linux carries across exec
    status = Path("/proc/self/status").read_text()
    peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
    print(json.dumps({"peak_rss_mb": peak_kb / 1024}))


def _measured(work: Path, job: dict[str, Any]) -> dict[str, float]:
    """Runs one job in a new process; its wall and CPU seconds and peak RSS (MB)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, __file__, "--work", str(work), "--child", json.dumps(job)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{job} failed with exit code {process.returncode}")
    return {
        "wall_s": time.perf_counter() - started,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": json.loads(output.strip().splitlines()[-1])["peak_rss_mb"],
    }


def _flag_ids(work: Path) -> Any:
    from pipeline.warehouse import Warehouse

    return Warehouse(str(work / "warehouse")).read_partition("flags", DAY, ["flag_id"])


def bench(work: Path, events: int, shard_counts: list[int]) -> list[dict[str, Any]]:
    from pipeline import steps

    _prepare(work, events)
    idle = _measured(work, {"idle": True, "shards": 1})
    print(
        json.dumps(
            {
                "process_start_cpu_s": round(idle["cpu_s"], 2),
                "process_start_rss_mb": round(idle["peak_rss_mb"]),
            }
        ),
        flush=True,
    )
    results, reference = [], None
    for k in shard_counts:
        plan = steps.detect_plan(DAY, _settings(work, k))
        units = [_measured(work, {"shard": i, "shards": k, "run": plan["run"]}) for i in range(k)]
        commit = _measured(work, {"shards": k, "run": plan["run"]})
        flags = _flag_ids(work)
        same = reference is None or flags.equals(reference)
        reference = flags if reference is None else reference
        results.append(
            {
                "shards": k,
                "unit_cpu_s": [round(u["cpu_s"], 2) for u in units],
                "unit_peak_rss_mb": [round(u["peak_rss_mb"]) for u in units],
                "assembly_cpu_s": round(commit["cpu_s"], 2),
                "assembly_peak_rss_mb": round(commit["peak_rss_mb"]),
                "wall_here_s": round(sum(u["wall_s"] for u in units) + commit["wall_s"], 1),
                "wall_on_k_workers_s": round(max(u["wall_s"] for u in units) + commit["wall_s"], 1),
                "flags": flags.num_rows,
                "flags_same_as_k1": same,
            }
        )
        print(json.dumps(results[-1]), flush=True)
    return results


def _critical_cpu_s(result: dict[str, Any]) -> float:
    """CPU seconds on the path of a day on K workers: the slowest unit, then the assembly
    (robust to this machine's load, unlike its walls)."""
    return float(max(result["unit_cpu_s"]) + result["assembly_cpu_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--work", type=Path, default=Path("/tmp/access-audit-bench-shards"))
    parser.add_argument("--keep", action="store_true", help="keep the ingested day")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.work, json.loads(args.child))
        return
    try:
        results = bench(args.work, args.events, args.shards)
    finally:
        if not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)
    base = results[0]
    print(f"\n{args.events:,} events; units run one after another on this machine:")
    print(
        f"{'K':>3} {'unit CPU s (max)':>17} {'unit RSS MB (max)':>18} {'assembly CPU s':>15} "
        f"{'wall here s':>12} {'wall on K workers s':>20} {'CPU s on K workers':>19} "
        f"{'speed-up':>9}"
    )
    for r in results:
        print(
            f"{r['shards']:>3} {max(r['unit_cpu_s']):>17.2f} {max(r['unit_peak_rss_mb']):>18} "
            f"{r['assembly_cpu_s']:>15.2f} {r['wall_here_s']:>12.1f} "
            f"{r['wall_on_k_workers_s']:>20.1f} {_critical_cpu_s(r):>19.2f} "
            f"{_critical_cpu_s(base) / _critical_cpu_s(r):>8.1f}x"
        )
    print(
        f"(K = {base['shards']} is the baseline; flags identical for every K: "
        f"{all(r['flags_same_as_k1'] for r in results)})"
    )


if __name__ == "__main__":
    main()
