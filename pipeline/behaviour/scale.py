"""A scale check of the behaviour model: generated traffic of many partners (and, optionally,
one app of millions of calls a day) through the real features, fit and scoring, timed.

    python -m pipeline.behaviour.scale --partners 2000 --days 12 [--big-app-calls 5000000]

Prints per step the seconds and the process's peak memory (ru_maxrss) so far. The big app's
days are generated at the volume asked for (its users' calls grow with it), so a 5M-call day
is a day of 5M access events through the same feature SQL.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.behaviour import synthetic
from pipeline.behaviour.evaluation import _EMPTY_FLAGS, HISTORY_DAYS
from pipeline.behaviour.features import DORMANT_DAYS, daily_features, relative_features
from pipeline.behaviour.model import BehaviourModel, score
from pipeline.config import Settings


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.behaviour.scale", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--partners", type=int, default=2000)
    parser.add_argument("--days", type=int, default=12, help="days generated (the last scored)")
    parser.add_argument("--big-app-calls", type=float, default=0, help="one app this busy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    world = synthetic.make_world(args.seed, args.partners)
    if args.big_app_calls:
        world.volume[0] = args.big_app_calls
    registry = synthetic.registry(world)
    settings = Settings(duckdb_threads=1)
    history: list[pa.Table] = []
    frames = []
    daily_seconds = []
    for sim in synthetic.simulate(world, DORMANT_DAYS):
        if sim.index >= args.days:
            break
        started = time.perf_counter()
        recent = sim.recent_users if sim.dormancy_known else None
        today = daily_features(
            sim.access, _EMPTY_FLAGS, sim.consent, registry, sim.day, settings, recent
        )
        daily_seconds.append(time.perf_counter() - started)
        print(f"day {sim.index}: {sim.access.num_rows:,} events, {today.num_rows:,} rows, "
              f"daily features {daily_seconds[-1]:.1f}s, peak {_peak_mb():,.0f} MB",
              flush=True)  # fmt: skip
        if sim.index >= args.days - 3 and history:
            started = time.perf_counter()
            frames.append(relative_features(today, pa.concat_tables(history[-HISTORY_DAYS:])))
            print(f"  relative features {time.perf_counter() - started:.1f}s, "
                  f"peak {_peak_mb():,.0f} MB", flush=True)  # fmt: skip
        history.append(today)
    train = pd.concat(frames[:-1], ignore_index=True)
    started = time.perf_counter()
    model = BehaviourModel().fit(train)
    print(f"fit on {len(train):,} rows: {time.perf_counter() - started:.1f}s")
    started = time.perf_counter()
    scored = score(model, frames[-1])
    alerted = int(np.asarray(scored["alert"]).sum())
    print(f"scored {len(frames[-1]):,} rows: {time.perf_counter() - started:.1f}s, "
          f"{alerted} alerted, peak {_peak_mb():,.0f} MB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
