"""The behaviour evaluation: the model and the baselines on generated traffic (synthetic.py)
through the real feature code, per injected kind and entity kind.

Per seed: TRAIN_DAYS clean days (the training window, and every entity's history), then a day
per injected kind (a ramp of several) and clean days. On an injection day one partner is
injected (its partner-day is judged among the day's partner-days, the user-injected partner's
left out) and one app-user of another partner (judged among the day's app-user-days, the
partner-injected partner's users left out). Printed per kind: the share of injections ranked 1
of their day, the share alerted, the median rank; and the false alerts per clean day.

    python -m pipeline.behaviour.evaluation --seeds 20 [--jobs 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.behaviour import synthetic
from pipeline.behaviour.baselines import Baseline
from pipeline.behaviour.features import (
    APP_USER_DAY,
    DORMANT_DAYS,
    ENTITY_KINDS,
    MIN_HISTORY_DAYS,
    PARTNER_DAY,
    daily_features,
    relative_features,
)
from pipeline.behaviour.model import BehaviourModel
from pipeline.config import Settings

DETECTOR_NAMES = ("model", "robust_z", "lof")
HISTORY_DAYS = 21  # each day against the 3 weeks before (the pipeline: anomaly_window_days)
KIND_LABELS = {PARTNER_DAY: "partner-days", APP_USER_DAY: "app-user-days"}


class Detector(Protocol):
    def fit(self, X: pd.DataFrame) -> Any: ...
    def anomaly_score(self, X: pd.DataFrame) -> np.ndarray: ...
    def alerts(self, X: pd.DataFrame) -> np.ndarray: ...


def make_detectors() -> dict[str, Detector]:
    import os

    every: dict[str, Detector] = {
        "model": BehaviourModel(),
        "robust_z": Baseline("robust_z"),
        "lof": Baseline("lof"),
    }
    # BEHAVIOUR_DETECTORS=model: the model alone, while it is being worked on
    names = os.environ.get("BEHAVIOUR_DETECTORS", ",".join(DETECTOR_NAMES)).split(",")
    return {name: every[name] for name in names}


@dataclass
class Outcome:
    """One judged injection, or one clean day, for one detector and entity kind."""

    seed: int
    detector: str
    entity_kind: str
    kind: str  # an injected kind, or "clean"
    rank: float = np.nan
    alerted: bool = False
    false_alerts: int = 0
    explanation: str = ""


@dataclass
class SeedRun:
    seed: int
    partners: int
    events: int
    seconds: float
    outcomes: list[Outcome] = field(default_factory=list)


_EMPTY_FLAGS = pa.table({"request_id": pa.array([], pa.string())})


def seed_frames(
    seed: int, partners: int | None = None, max_partners: int = 500
) -> tuple[pd.DataFrame, list[tuple[Any, pd.DataFrame]], int, int]:
    """The seed's training frame (relative features of the training days with a week of
    history) and its test days (SimDay, relative features); also its partners and events."""
    world = synthetic.make_world(seed, partners, max_partners)
    registry = synthetic.registry(world)
    settings = Settings(duckdb_threads=1)
    history: list[pa.Table] = []
    train, tests, events = [], [], 0
    for sim in synthetic.simulate(world, DORMANT_DAYS):
        recent = sim.recent_users if sim.dormancy_known else None
        today = daily_features(
            sim.access, _EMPTY_FLAGS, sim.consent, registry, sim.day, settings, recent
        )
        events += sim.access.num_rows
        training = sim.index < synthetic.TRAIN_DAYS
        # the model trains on every other day of the window's last two weeks (time, not need)
        wanted = (training and sim.index >= MIN_HISTORY_DAYS and sim.index % 2 == 0) or (
            not training and (sim.injection is None or sim.judged)
        )
        if wanted:
            frame = relative_features(today, pa.concat_tables(history[-HISTORY_DAYS:]))
            if training:
                train.append(frame)
            else:
                tests.append((sim, frame))
        history.append(today)
    return pd.concat(train, ignore_index=True), tests, world.partners, events


def _rank(scores: np.ndarray, target: np.ndarray, among: np.ndarray) -> float:
    """1 + the rows among `among` that score above the target row (ties count against it)."""
    if not target.any():
        return np.nan
    mine = float(np.nan_to_num(scores[target], nan=-np.inf).max())
    others = np.nan_to_num(scores[among & ~target], nan=-np.inf)
    return float(1 + (others >= mine).sum())


def _judge(
    seed: int, name: str, detector: Detector, sim: Any, frame: pd.DataFrame
) -> list[Outcome]:
    scores = detector.anomaly_score(frame)
    alerts = detector.alerts(frame)
    kinds = frame["entity_kind"].to_numpy()
    partner = frame["partner_id"].to_numpy()
    outcomes = []
    if sim.injection is None:
        for kind in ENTITY_KINDS:
            count = int(alerts[kinds == kind].sum())
            outcomes.append(Outcome(seed, name, kind, "clean", false_alerts=count))
        return outcomes
    inj = sim.injection
    a, b = f"P{inj.partner:03d}", f"P{inj.user_partner:03d}"
    user = inj.user_name
    users = frame["user_id"].to_numpy()
    targets = {
        PARTNER_DAY: (
            (kinds == PARTNER_DAY) & (partner == a),
            (kinds == PARTNER_DAY) & (partner != b),
        ),
        APP_USER_DAY: (
            (kinds == APP_USER_DAY) & (users == user),
            (kinds == APP_USER_DAY) & (partner != a),
        ),
    }
    explanations = frame.get("_explanation")
    for kind, (target, among) in targets.items():
        rank = _rank(scores, target, among)
        alerted = bool(alerts[target].any())
        text = ""
        if explanations is not None and target.any():
            text = str(explanations[target].iloc[0])
        outcomes.append(Outcome(seed, name, kind, inj.kind, rank, alerted, explanation=text))
    return outcomes


def cached_frames(
    seed: int, partners: int | None, cache: str | None, max_partners: int = 500
) -> tuple[pd.DataFrame, list[tuple[Any, pd.DataFrame]], int, int]:
    """seed_frames, kept in `cache` (a folder) when given: the model can change without the
    features being computed again."""
    if not cache:
        return seed_frames(seed, partners, max_partners)
    import pickle
    from pathlib import Path

    path = Path(cache) / f"seed-{seed}-{partners or f'upto{max_partners}'}.pickle"
    if path.is_file():
        with path.open("rb") as f:
            return pickle.load(f)
    frames = seed_frames(seed, partners, max_partners)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(frames, f)
    return frames


def run_seed(
    seed: int,
    partners: int | None = None,
    explain: bool = False,
    cache: str | None = None,
    max_partners: int = 500,
) -> SeedRun:
    """Every detector trained on the seed's training days and judged on its test days."""
    from pipeline.behaviour.model import score

    started = time.perf_counter()
    train, tests, n_partners, events = cached_frames(seed, partners, cache, max_partners)
    run = SeedRun(seed, n_partners, events, 0.0)
    for name, detector in make_detectors().items():
        detector.fit(train)
        for sim, frame in tests:
            if explain and name == "model" and sim.injection is not None:
                scored = score(detector, frame).to_pandas()  # type: ignore[arg-type]
                keys = ["entity_kind", "partner_id", "user_id"]
                merged = frame[keys].merge(scored[[*keys, "explanation"]], on=keys, how="left")
                judged = frame.assign(_explanation=merged["explanation"].to_numpy())
            else:
                judged = frame
            run.outcomes.extend(_judge(seed, name, detector, sim, judged))
    run.seconds = round(time.perf_counter() - started, 1)
    return run


def summary_table(outcomes: Iterable[Outcome]) -> pd.DataFrame:
    """Per entity kind, injected kind and detector: rank-1 rate, alert rate, median rank (or,
    for clean days, false alerts per day)."""
    frame = pd.DataFrame([o.__dict__ for o in outcomes])
    injected = frame[frame["kind"] != "clean"]
    rows = injected.groupby(["entity_kind", "kind", "detector"]).agg(
        n=("rank", "size"),
        rank1=("rank", lambda r: float((r == 1).mean())),
        alerted=("alerted", "mean"),
        both=("rank", lambda r: 0.0),
        median_rank=("rank", "median"),
    )
    both = injected.assign(hit=(injected["rank"] == 1) & injected["alerted"])
    rows["both"] = both.groupby(["entity_kind", "kind", "detector"])["hit"].mean()
    clean = (
        frame[frame["kind"] == "clean"]
        .groupby(["entity_kind", "detector"])
        .agg(n=("false_alerts", "size"), false_alerts_per_day=("false_alerts", "mean"))
    )
    clean["kind"] = "clean"
    clean = clean.reset_index().set_index(["entity_kind", "kind", "detector"])
    return pd.concat([rows, clean]).sort_index()


def format_table(table: pd.DataFrame) -> str:
    """The summary as text: one block per entity kind, a row per injected kind."""
    lines = []
    for entity_kind in ENTITY_KINDS:
        if entity_kind not in table.index.get_level_values(0):
            continue
        block = table.loc[entity_kind]
        present = set(block.index.get_level_values(0))  # a ground truth may name its own kinds
        others = sorted(present - {*synthetic.KINDS, "clean"})
        kinds_order = [*synthetic.KINDS, *others, "clean"]
        lines.append(f"\n{KIND_LABELS[entity_kind]}")
        header = f"{'kind':<16}{'n':>4}"
        for name in DETECTOR_NAMES:
            header += f" | {name + ': rank1 alert both med':<32}"
        lines.append(header)
        for kind in kinds_order:
            if kind not in block.index.get_level_values(0):
                continue
            part = block.loc[kind]
            n = int(part["n"].iloc[0])
            line = f"{kind:<16}{n:>4}"
            for name in DETECTOR_NAMES:
                if name not in part.index:
                    line += f" | {'-':<32}"
                    continue
                r = part.loc[name]
                if kind == "clean":
                    cell = f"false alerts/day {r['false_alerts_per_day']:.2f}"
                else:
                    cell = (f"{r['rank1']:6.0%} {r['alerted']:5.0%} {r['both']:5.0%} "
                            f"{r['median_rank']:5.0f}")  # fmt: skip
                line += f" | {cell:<32}"
            lines.append(line)
    return "\n".join(lines)


def _run(args: tuple[int, int | None, bool, str | None, int]) -> SeedRun:
    return run_seed(*args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.behaviour.evaluation", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seeds", type=int, default=20, help="how many seeds (default 20)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--partners", type=int, help="partners per seed (default: random)")
    parser.add_argument(
        "--max-partners", type=int, default=500, help="seeds draw 5..this many (default 500)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once (default 1)")
    parser.add_argument("--explain", action="store_true", help="print the model's explanations")
    parser.add_argument("--cache", help="keep each seed's features in this folder (for reruns)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    seeds = [
        (s, args.partners, args.explain, args.cache, args.max_partners)
        for s in range(args.first_seed, args.first_seed + args.seeds)
    ]
    outcomes: list[Outcome] = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for run in pool.map(_run, seeds):
            outcomes.extend(run.outcomes)
            print(f"seed {run.seed}: {run.partners} partners, {run.events:,} events, "
                  f"{run.seconds}s", file=sys.stderr)  # fmt: skip
            if args.explain:
                for o in run.outcomes:
                    if o.detector == "model" and o.kind != "clean":
                        print(f"  {o.entity_kind} {o.kind} rank {o.rank:.0f} "
                              f"{'alert' if o.alerted else 'no alert'}: {o.explanation}",
                              file=sys.stderr)  # fmt: skip
    print("strengths:")
    for kind, strength in synthetic.STRENGTHS.items():
        print(f"  {kind}: {strength}")
    print(format_table(summary_table(outcomes)))
    print(f"\n{args.seeds} seeds in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def judge_days(
    train: pd.DataFrame, tests: dict[Any, pd.DataFrame], truth: pd.DataFrame
) -> dict[str, Any]:
    """The same figures on days of real features (a warehouse's): every detector trained on
    `train`, each test day's partner-days judged against `truth` (day, partner_id, kind). A
    partner of the truth ranks among the day's partner-days not in it; an alert on any other
    partner-day is a false alert. The truth names no users: app-user-day alerts are counted."""
    outcomes: list[Outcome] = []
    alerts_per_day: dict[str, list[int]] = {}
    for name, detector in make_detectors().items():
        detector.fit(train)
        for day, frame in tests.items():
            scores, alerts = detector.anomaly_score(frame), detector.alerts(frame)
            kinds, partner = frame["entity_kind"].to_numpy(), frame["partner_id"].to_numpy()
            todays = truth[truth["day"] == day]
            injected = np.isin(partner, todays["partner_id"].to_numpy()) & (kinds == PARTNER_DAY)
            among = (kinds == PARTNER_DAY) & ~injected
            for row in todays.itertuples():
                target = (kinds == PARTNER_DAY) & (partner == row.partner_id)
                rank = _rank(scores, target, among | target)
                alerted = bool(alerts[target].any())
                outcomes.append(Outcome(0, name, PARTNER_DAY, str(row.kind), rank, alerted))
            false = int((alerts & among).sum())
            outcomes.append(Outcome(0, name, PARTNER_DAY, "clean", false_alerts=false))
            users = int((alerts & (kinds == APP_USER_DAY)).sum())
            alerts_per_day.setdefault(name, []).append(users)
    table = summary_table(outcomes)
    figures: dict[str, Any] = {}
    for key, row in table.iterrows():
        kind, name = str(key[1]), str(key[2])  # type: ignore[index]
        cell = figures.setdefault(name, {}).setdefault(kind, {})
        if kind == "clean":
            cell["false_alerts_per_day"] = round(float(row["false_alerts_per_day"]), 3)
        else:
            cell.update(
                n=int(row["n"]),
                rank1=round(float(row["rank1"]), 3),
                alerted=round(float(row["alerted"]), 3),
                median_rank=float(row["median_rank"]),
            )
    for name, counts in alerts_per_day.items():
        figures[name]["app_user_alerts_per_day"] = round(float(np.mean(counts)), 2)
    text = format_table(table).replace("clean ", "other ")
    return {"detectors": figures, "table": text}
