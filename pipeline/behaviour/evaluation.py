"""The behaviour evaluation: the model and the baselines on generated traffic (synthetic.py)
through the real feature code, per injected kind and entity kind.

Per seed: TRAIN_DAYS clean days (the training window, and every entity's history), then a day
per injected kind (a ramp of several) and clean days. On an injection day one partner is
injected (its partner-day is judged among the day's partner-days, the user-injected partner's
left out) and one app-user of another partner (judged among the day's app-user-days, the
partner-injected partner's users left out). Printed per kind: the share of injections ranked 1
of their day, the share alerted, the median rank; and the false alerts per clean day.

    python -m pipeline.behaviour.evaluation --seeds 20 [--jobs 2] [--batch 5]
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
import pyarrow.compute as pc

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


SeedFrames = tuple[pd.DataFrame, list[tuple[Any, pd.DataFrame]], int, int]
_SEP = "|"  # seed prefix of the names in a batch: "<seed>|P003"


def _prefixed(table: pa.Table, prefix: str, columns: tuple[str, ...]) -> pa.Table:
    for name in columns:
        i = table.schema.get_field_index(name)
        column = pc.binary_join_element_wise(pa.scalar(prefix), table[name], "")
        table = table.set_column(i, name, column.cast(table.schema.field(name).type))
    return table


def _split(frame: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """A batch's relative features per seed, the names without their seed prefix."""
    parts = frame["partner_id"].str.split(_SEP, n=1, regex=False)
    seeds = parts.str[0].astype(int).to_numpy()
    frame = frame.assign(partner_id=parts.str[1])
    for name in ("app_id", "user_id"):
        frame[name] = frame[name].str.split(_SEP, n=1, regex=False).str[1]
    return {int(seed): frame[seeds == seed].reset_index(drop=True) for seed in np.unique(seeds)}


def seed_frames(
    seeds: list[int], partners: int | None = None, max_partners: int = 500
) -> dict[int, SeedFrames]:
    """Per seed, its training frame (relative features of the training days with a week of
    history), its test days (SimDay, relative features), its partners and events.

    The seeds' worlds run side by side as one world, their names prefixed by the seed: a
    feature call costs ~0.3 s before it reads a row (DuckDB plans a large query), so one call
    per day for a batch of seeds instead of one per seed and day (why the batch)."""
    worlds = {seed: synthetic.make_world(seed, partners, max_partners) for seed in seeds}
    prefix = {seed: f"{seed}{_SEP}" for seed in seeds}
    registry = pa.concat_tables(
        _prefixed(synthetic.registry(w), prefix[s], ("partner_id", "app_id"))
        for s, w in worlds.items()
    )
    settings = Settings(duckdb_threads=1)
    sims = {seed: synthetic.simulate(w, DORMANT_DAYS) for seed, w in worlds.items()}
    history: list[pa.Table] = []
    train: dict[int, list[pd.DataFrame]] = {seed: [] for seed in seeds}
    tests: dict[int, list[tuple[Any, pd.DataFrame]]] = {seed: [] for seed in seeds}
    events = dict.fromkeys(seeds, 0)
    for days in zip(*sims.values(), strict=True):  # every plan has the same length
        day = {seed: sim for seed, sim in zip(sims, days, strict=True)}
        first = days[0]
        access = pa.concat_tables(
            _prefixed(sim.access, prefix[s], ("request_id", "app_id", "user_id"))
            for s, sim in day.items()
        )
        consent = pa.concat_tables(
            _prefixed(sim.consent, prefix[s], ("app_id", "user_id")) for s, sim in day.items()
        )
        recent = None
        if first.dormancy_known:
            recent = pa.concat_tables(
                _prefixed(sim.recent_users, prefix[s], ("app_id", "user_id"))
                for s, sim in day.items()
            )
        today = daily_features(access, _EMPTY_FLAGS, consent, registry, first.day, settings, recent)
        for seed, sim in day.items():
            events[seed] += sim.access.num_rows
        training = first.index < synthetic.TRAIN_DAYS
        # the model trains on every other day of the window's last two weeks (time, not need)
        wanted = [
            s
            for s, sim in day.items()
            if (training and sim.index >= MIN_HISTORY_DAYS and sim.index % 2 == 0)
            or (not training and (sim.injection is None or sim.judged))
        ]
        if wanted:
            frames = _split(relative_features(today, pa.concat_tables(history[-HISTORY_DAYS:])))
            for seed in wanted:
                frame = frames[seed]
                if training:
                    train[seed].append(frame)
                else:
                    tests[seed].append((day[seed], frame))
        history.append(today)
    return {
        seed: (pd.concat(train[seed], ignore_index=True), tests[seed], w.partners, events[seed])
        for seed, w in worlds.items()
    }


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
    explanations = frame.get("_explanation")
    if sim.injection is None:
        for kind in ENTITY_KINDS:
            alerted = alerts & (kinds == kind)
            text = ""
            if explanations is not None:  # what the false alerts said
                who = frame["user_id"].fillna(frame["partner_id"])[alerted]
                text = "; ".join(
                    f"{w}: {e}" for w, e in zip(who, explanations[alerted], strict=True)
                )
            outcomes.append(
                Outcome(
                    seed, name, kind, "clean", false_alerts=int(alerted.sum()), explanation=text
                )
            )
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
    for kind, (target, among) in targets.items():
        rank = _rank(scores, target, among)
        alerted = bool(alerts[target].any())
        text = ""
        if explanations is not None and target.any():
            text = str(explanations[target].iloc[0])
        outcomes.append(Outcome(seed, name, kind, inj.kind, rank, alerted, explanation=text))
    return outcomes


def cached_frames(
    seeds: list[int], partners: int | None, cache: str | None, max_partners: int = 500
) -> dict[int, SeedFrames]:
    """seed_frames, each seed's kept in `cache` (a folder) when given: the model can change
    without the features being computed again."""
    if not cache:
        return seed_frames(seeds, partners, max_partners)
    import pickle
    from pathlib import Path

    def path(seed: int) -> Path:
        return Path(cache) / f"seed-{seed}-{partners or f'upto{max_partners}'}.pickle"

    frames: dict[int, SeedFrames] = {}
    for seed in seeds:
        if path(seed).is_file():
            frames[seed] = pickle.loads(path(seed).read_bytes())
    missing = [seed for seed in seeds if seed not in frames]
    if missing:
        made = seed_frames(missing, partners, max_partners)
        Path(cache).mkdir(parents=True, exist_ok=True)
        for seed, made_frames in made.items():
            path(seed).write_bytes(pickle.dumps(made_frames))
        frames.update(made)
    return frames


def run_seeds(
    seeds: list[int],
    partners: int | None = None,
    explain: bool = False,
    cache: str | None = None,
    max_partners: int = 500,
) -> list[SeedRun]:
    """Every detector trained on each seed's training days and judged on its test days."""
    from pipeline.behaviour.model import score

    started = time.perf_counter()
    frames = cached_frames(seeds, partners, cache, max_partners)
    features_seconds = (time.perf_counter() - started) / len(seeds)
    runs = []
    for seed in seeds:
        started = time.perf_counter()
        train, tests, n_partners, events = frames[seed]
        run = SeedRun(seed, n_partners, events, 0.0)
        for name, detector in make_detectors().items():
            detector.fit(train)
            for sim, frame in tests:
                if explain and name == "model":
                    scored = score(detector, frame).to_pandas()  # type: ignore[arg-type]
                    keys = ["entity_kind", "partner_id", "user_id"]
                    merged = frame[keys].merge(scored[[*keys, "explanation"]], on=keys, how="left")
                    judged = frame.assign(_explanation=merged["explanation"].to_numpy())
                else:
                    judged = frame
                run.outcomes.extend(_judge(seed, name, detector, sim, judged))
        run.seconds = round(features_seconds + time.perf_counter() - started, 1)
        runs.append(run)
    return runs


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


def _run(args: tuple[list[int], int | None, bool, str | None, int]) -> list[SeedRun]:
    return run_seeds(*args)


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
    parser.add_argument(
        "--batch", type=int, default=5, help="seeds whose features are made in one pass (5)"
    )
    parser.add_argument("--explain", action="store_true", help="print the model's explanations")
    parser.add_argument("--cache", help="keep each seed's features in this folder (for reruns)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    every = list(range(args.first_seed, args.first_seed + args.seeds))
    size = max(1, args.batch)
    batches = [
        (every[i : i + size], args.partners, args.explain, args.cache, args.max_partners)
        for i in range(0, len(every), size)
    ]
    outcomes: list[Outcome] = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for run in (run for runs in pool.map(_run, batches) for run in runs):
            outcomes.extend(run.outcomes)
            print(f"seed {run.seed}: {run.partners} partners, {run.events:,} events, "
                  f"{run.seconds}s", file=sys.stderr)  # fmt: skip
            if args.explain:
                for o in run.outcomes:
                    if o.detector == "model" and (o.kind != "clean" or o.false_alerts):
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
