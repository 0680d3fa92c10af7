"""The behaviour model: training, scoring with explanations, the `models/` store, and the
detector comparison that chose the default.

The model sees only `features.MODEL_FEATURES`: each entity's change against its own history.
Ratios go in as log2 (a halving and a doubling are equally far), shares as differences.
Every feature is robustly standardised (median, MAD) per entity kind, which also gives each
score its explanation: the features furthest from the training distribution.

Alerts: each kind's threshold is learned at fit time from its training scores, so that about
`alerts_per_day` of the kind's entity-days a day would have alerted in the training window (the
quantile at rate = alerts_per_day / entities per day, as IsolationForest's `contamination`).
A budget per day rather than a fixed share: a reviewer's capacity does not grow with the number
of users, and the training window keeps its own anomalies, so the rate is an alert rate and an
upper bound on the false-alarm rate on days like the training ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sklearn
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor

from pipeline.behaviour.features import (
    ENTITY_KINDS,
    MIN_HISTORY_DAYS,
    MODEL_FEATURES,
    PARTNER_DAY,
    RECENT_DAYS,
)
from pipeline.config import MODEL_NAME
from pipeline.errors import ModelMismatch, NoModel
from pipeline.schema import ANOMALIES

log = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
DETECTORS = ("isolation_forest", "local_outlier_factor", "robust_z")
DEFAULT_DETECTOR = "isolation_forest"
DETECTOR_CHOICE = (
    "isolation_forest: on the sample logs (trained 03-01..03-09, scored 03-10..03-14) all three "
    "detectors rank every injected anomaly first or second of its day and alert on each; the "
    "forest raises the fewest false alerts (at most 2 in a day, random states 0-5 alike; "
    "robust_z 3, local_outlier_factor 4, whose scores also explode on the many identical "
    "app-user rows). On the synthetic features robust_z is slightly ahead, as expected where "
    "each anomaly moves one or two independent Gaussian features; the sample logs' behaviours "
    "move correlated counts, and they decide. `access-audit evaluate` reruns the comparison."
)
TOP_FEATURES = 3
EXPLAIN_MIN_Z = 3.0  # features this far out are named in the explanation (the top one always)
# Smallest spread per feature, in model units: below it a feature that never moves in training
# would turn any wiggle into a huge z (log2 ratio 0.5: 1.4x; shares: 5 points).
RATIO_SCALE_FLOOR = 0.5
SHARE_SCALE_FLOOR = 0.05
MAD_TO_SIGMA = 1.4826


def _is_ratio(feature: str) -> bool:
    return feature.endswith("_ratio")


def model_matrix(features: pd.DataFrame) -> np.ndarray:
    """MODEL_FEATURES in model units: log2 for ratios, raw for shares and deltas."""
    missing = [f for f in MODEL_FEATURES if f not in features.columns]
    if missing:
        raise KeyError(f"features frame lacks model column(s): {', '.join(missing)}")
    matrix = features[list(MODEL_FEATURES)].to_numpy(dtype=np.float64, copy=True)
    ratios = [i for i, f in enumerate(MODEL_FEATURES) if _is_ratio(f)]
    matrix[:, ratios] = np.log2(np.clip(matrix[:, ratios], 1e-6, None))
    return matrix


def _scale_floor() -> np.ndarray:
    floors = [RATIO_SCALE_FLOOR if _is_ratio(f) else SHARE_SCALE_FLOOR for f in MODEL_FEATURES]
    return np.array(floors)


def robust_center_scale(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column median and MAD (as a standard deviation), floored so no column divides by 0."""
    center = np.median(matrix, axis=0)
    scale = MAD_TO_SIGMA * np.median(np.abs(matrix - center), axis=0)
    return center, np.maximum(scale, _scale_floor())


class RobustZDetector:
    """Baseline: how far the most extreme feature is, in robust z units (max |z|)."""

    def fit(self, z: np.ndarray) -> RobustZDetector:
        self.n_features_in_ = z.shape[1]
        return self

    def score_samples(self, z: np.ndarray) -> np.ndarray:
        return -np.abs(z).max(axis=1)  # sklearn's sign: lower is more abnormal


def make_detector(name: str, random_state: int, n_estimators: int, n_neighbors: int) -> Any:
    """A fresh, unfitted detector by name."""
    if name == "isolation_forest":
        return IsolationForest(n_estimators=n_estimators, random_state=random_state)
    if name == "local_outlier_factor":
        return LocalOutlierFactor(n_neighbors=n_neighbors, novelty=True)
    if name == "robust_z":
        return RobustZDetector()
    raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")


def _training_scores(detector: Any, z: np.ndarray) -> np.ndarray:
    """Scores of the training rows, higher is more anomalous. LocalOutlierFactor's own
    leave-one-out factor: its score_samples counts a training row as its own neighbour."""
    if hasattr(detector, "negative_outlier_factor_"):
        return np.asarray(-detector.negative_outlier_factor_, dtype=np.float64)
    return np.asarray(-detector.score_samples(z), dtype=np.float64)


class BehaviourModel:
    """One detector per entity kind over robustly standardised MODEL_FEATURES.

    Parameters are stored untouched; learned state ends in `_`; randomness comes only from
    `random_state` (the training sample and the forest).
    """

    model_name_ = "unsaved"  # the store's name and version, set by save_model and load_model
    model_version_ = "unsaved"

    def __init__(
        self,
        detector: str = DEFAULT_DETECTOR,
        random_state: int = 0,
        n_estimators: int = 200,
        n_neighbors: int = 20,
        max_train_rows: int = 100_000,
        alerts_per_day: float = 1.0,
    ) -> None:
        self.detector = detector
        self.random_state = random_state
        self.n_estimators = n_estimators
        self.n_neighbors = n_neighbors
        self.max_train_rows = max_train_rows
        self.alerts_per_day = alerts_per_day

    def get_params(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "random_state": self.random_state,
            "n_estimators": self.n_estimators,
            "n_neighbors": self.n_neighbors,
            "max_train_rows": self.max_train_rows,
            "alerts_per_day": self.alerts_per_day,
        }

    def fit(self, features: pd.DataFrame) -> BehaviourModel:
        """Learn each entity kind's centre, spread and detector from its rows."""
        started = time.perf_counter()
        rng = np.random.RandomState(self.random_state)
        self.feature_names_in_ = MODEL_FEATURES
        self.fingerprint_ = fingerprint(model_matrix(features))
        days = pd.to_datetime(features["day"]).dt.date
        self.window_ = (min(days).isoformat(), max(days).isoformat())
        self.center_: dict[str, np.ndarray] = {}
        self.scale_: dict[str, np.ndarray] = {}
        self.detectors_: dict[str, Any] = {}
        self.n_train_rows_: dict[str, int] = {}
        self.alert_rate_: dict[str, float] = {}
        self.threshold_: dict[str, float] = {}
        training_scores: dict[str, np.ndarray] = {}
        for kind in ENTITY_KINDS:
            rows = features[features["entity_kind"] == kind]
            matrix = model_matrix(rows)
            if len(matrix) < 2:
                continue
            entities_per_day = len(rows) / rows["day"].nunique()
            self.alert_rate_[kind] = min(1.0, self.alerts_per_day / entities_per_day)
            if len(matrix) > self.max_train_rows:  # a sample bounds time and memory
                matrix = matrix[rng.choice(len(matrix), self.max_train_rows, replace=False)]
            center, scale = robust_center_scale(matrix)
            detector = make_detector(
                self.detector, self.random_state, self.n_estimators, self.n_neighbors
            )
            self.detectors_[kind] = detector.fit((matrix - center) / scale)
            self.center_[kind], self.scale_[kind] = center, scale
            self.n_train_rows_[kind] = len(matrix)
            scores = _training_scores(self.detectors_[kind], (matrix - center) / scale)
            training_scores[kind] = scores
            self.threshold_[kind] = float(np.quantile(scores, 1.0 - self.alert_rate_[kind]))
        if not self.detectors_:
            raise ValueError("no entity kind has at least 2 training rows")
        seconds = time.perf_counter() - started
        self.training_metrics_ = _training_metrics(self, len(features), training_scores, seconds)
        return self

    def alerts(self, features: pd.DataFrame, scores: np.ndarray) -> np.ndarray:
        """Whether each row's score is above its kind's learned threshold."""
        kinds = features["entity_kind"].to_numpy()
        thresholds = np.array([self.threshold_.get(kind, np.inf) for kind in kinds])
        return np.nan_to_num(scores, nan=-np.inf) > thresholds

    def robust_z(self, features: pd.DataFrame, kind: str) -> np.ndarray:
        """Rows of one kind in training-distribution z units."""
        return (model_matrix(features) - self.center_[kind]) / self.scale_[kind]

    def score_samples(self, features: pd.DataFrame) -> np.ndarray:
        """Anomaly score per row, higher is more anomalous; NaN for a kind not trained."""
        scores = np.full(len(features), np.nan)
        kinds = features["entity_kind"].to_numpy()
        for kind, detector in self.detectors_.items():
            rows = kinds == kind
            if rows.any():
                z = self.robust_z(features[rows], kind)
                scores[rows] = -detector.score_samples(z)
        return scores


# ---------------------------------------------------------------- explanations


_LABELS = {
    "message_reads": "message reads",
    "message_writes": "message writes",
    "message_deletes": "message deletes",
    "distinct_users": "distinct users",
    "calls": "calls",
    "revokes": "revocations",
    "accesses_per_live_grant": "message accesses per live grant",
    "max_burst_per_minute": "peak message accesses by one user in a minute",
}


_SHARES = {
    "night_share": "of message accesses between 00:00 and 05:00",
    "flagged_share": "of message accesses flagged by the rules",
    "failed_rate": "of calls failed",
}


def _times(value: float) -> str:
    return f"{value:.0f}x" if value >= 10 else f"{value:.1f}x"


def _known(*values: Any) -> bool:
    return all(v is not None and pd.notna(v) for v in values)


def _baseline_name(row: Mapping[str, Any], base: str, kind: str) -> str:
    """Which of the entity's baselines today was measured against, in words."""
    whose = "this partner's" if kind == PARTNER_DAY else "this user's"
    recent, median = row.get(f"{base}_recent"), row.get(f"{base}_median")
    if _known(recent, row.get(f"{base}_baseline")) and row[f"{base}_baseline"] != median:
        return f"{whose} last-{RECENT_DAYS}-day median"
    return f"{whose} {int(row.get('history_days', 0))}-day median"


def _phrase(feature: str, row: Mapping[str, Any], kind: str) -> str:
    """One readable clause about one feature of one row."""
    base = feature.removesuffix("_ratio").removesuffix("_delta")
    if not _known(row.get(base), row.get(f"{base}_baseline")):  # model columns only
        moved = _times(row[feature]) if _is_ratio(feature) else f"{row[feature] * 100:+.0f} points"
        return f"{base.replace('_', ' ')} {moved} vs its usual"
    value, baseline = float(row[base]), float(row[f"{base}_baseline"])
    against = _baseline_name(row, base, kind)
    if _is_ratio(feature):  # the unshrunk factor: the figures beside it are the raw ones
        factor = (value + 1.0) / (baseline + 1.0)
        return f"{_LABELS[base]} {_times(factor)} {against} ({value:.3g} vs {baseline:.3g})"
    if base == "new_ip_share":
        new = int(row.get("new_ips", 0))
        return f"{new} new IP addresses, {value:.0%} of the day's ({against} {baseline:.0%})"
    return f"{value:.0%} {_SHARES[base]} ({against} {baseline:.0%})"


def _short_history(row: Mapping[str, Any], kind: str) -> str:
    """The caveat for an entity whose changes were shrunk for lack of history."""
    days = int(row.get("history_days", 0))
    if days >= MIN_HISTORY_DAYS or not _known(row.get("history_days")):
        return ""
    who = "new partner" if kind == PARTNER_DAY else "new or occasional user of the app"
    return f" ({who}, {days} days of history)"


def _explanation_columns() -> set[str]:
    """Every column a phrase may read: the model features, their bases and baselines."""
    bases = {f.removesuffix("_ratio").removesuffix("_delta") for f in MODEL_FEATURES}
    baselines = {f"{b}_{s}" for b in bases for s in ("median", "recent", "baseline")}
    return {*MODEL_FEATURES, *bases, *baselines, "history_days", "new_ips"}


class _Row(Mapping[str, Any]):
    """One row read from column arrays on demand. Not iterrows() (a Series per row costs 10x)
    nor a dict per row (every column of every row at once: 1.4 GB on a 1M-event day)."""

    def __init__(self, arrays: dict[str, np.ndarray], index: int) -> None:
        self._arrays, self._index = arrays, index

    def __getitem__(self, column: str) -> Any:
        return self._arrays[column][self._index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)


def explain(features: pd.DataFrame, z: np.ndarray, kind: str) -> tuple[list[list[str]], list[str]]:
    """Per row: the features with the largest |z| and a sentence naming the far-out ones."""
    order = np.argsort(-np.abs(z), axis=1, kind="stable")[:, :TOP_FEATURES]
    tops, sentences = [], []
    arrays = {c: features[c].to_numpy() for c in features.columns if c in _explanation_columns()}
    rows = (_Row(arrays, i) for i in range(len(features)))
    for row, columns, zs in zip(rows, order, z, strict=True):
        names = [MODEL_FEATURES[c] for c in columns]
        far = [n for n, c in zip(names, columns, strict=True) if abs(zs[c]) >= EXPLAIN_MIN_Z]
        tops.append(names)
        sentence = "; ".join(_phrase(n, row, kind) for n in (far or names[:1]))
        sentences.append(sentence + _short_history(row, kind))
    return tops, sentences


# ---------------------------------------------------------------- scoring


def score(model: BehaviourModel, features_df: pd.DataFrame) -> pa.Table:
    """Scores, ranks and explanations of the rows of the kinds the model was trained on."""
    frame = features_df[features_df["entity_kind"].isin(list(model.detectors_))].copy()
    frame = frame.reset_index(drop=True)
    frame["score"] = model.score_samples(frame)
    frame["top_features"] = pd.Series([[]] * len(frame), dtype=object)
    frame["explanation"] = ""
    for kind in model.detectors_:
        rows = frame.index[frame["entity_kind"] == kind]
        if len(rows):
            part = frame.loc[rows]
            tops, sentences = explain(part, model.robust_z(part, kind), kind)
            frame.loc[rows, "top_features"] = pd.Series(tops, index=rows, dtype=object)
            frame.loc[rows, "explanation"] = sentences
    # ties fall back to the entity's key so a re-run gives the same ranks
    frame = frame.sort_values(
        ["day", "entity_kind", "score", "partner_id", "app_id", "user_id"],
        ascending=[True, True, False, True, True, True],
        na_position="first",
        kind="stable",
    )
    frame["rank"] = frame.groupby(["day", "entity_kind"]).cumcount().astype("int32") + 1
    frame["alert"] = model.alerts(frame, frame["score"].to_numpy())
    frame["model_name"] = model.model_name_
    frame["model_version"] = model.model_version_
    frame = frame.sort_values(["entity_kind", "day", "rank"], kind="stable")
    return pa.Table.from_pandas(frame[ANOMALIES.names], schema=ANOMALIES, preserve_index=False)


# ---------------------------------------------------------------- evaluation


def _ranked(scores: pd.DataFrame, truth: pd.DataFrame, keys: Iterable[str]) -> pd.DataFrame:
    """Scores (with `day` and `rank`) marked with whether their entity is a true anomaly."""
    keys = list(keys)
    marked = truth[keys].drop_duplicates().assign(is_anomaly=True)
    ranked = scores.merge(marked, on=keys, how="left")
    ranked["is_anomaly"] = ranked["is_anomaly"].fillna(False).astype(bool)
    return ranked


def with_alert_rank(scores: pd.DataFrame) -> pd.DataFrame:
    """Scores with `alert_rank`: the rank among the day's alerts (by `rank`), NaN if no alert."""
    ranked = scores.copy()
    alerts = ranked[ranked["alert"]].sort_values(["day", "rank"], kind="stable")
    ranked["alert_rank"] = alerts.groupby("day").cumcount().add(1).reindex(ranked.index)
    return ranked


def precision_at_k(
    scores: pd.DataFrame,
    truth: pd.DataFrame,
    k: int,
    keys: Iterable[str] = ("day", "partner_id"),
    rank: str = "rank",
) -> float:
    """Mean over the days with a top k (by the `rank` column) of the share that are true."""
    ranked = _ranked(scores, truth, keys)
    top = ranked[ranked[rank] <= k]
    per_day = top.groupby("day")["is_anomaly"].mean()
    return float(per_day.mean()) if len(per_day) else 0.0


def recall_at_k(
    scores: pd.DataFrame,
    truth: pd.DataFrame,
    k: int,
    keys: Iterable[str] = ("day", "partner_id"),
    rank: str = "rank",
) -> float:
    """Share of the true anomalies (on scored days) that rank in the top k of their day; with
    rank="alert_rank", in the top k of the day's alerts (not alerted: missed)."""
    keys = list(keys)
    on_scored_days = truth[truth["day"].isin(scores["day"].unique())][keys].drop_duplicates()
    if on_scored_days.empty:
        return 0.0
    hits = on_scored_days.merge(scores[[*keys, rank]], on=keys, how="left")
    return float((hits[rank] <= k).mean())


def false_in_top_k(
    scores: pd.DataFrame,
    truth: pd.DataFrame,
    k: int,
    keys: Iterable[str] = ("day", "partner_id"),
    rank: str = "rank",
) -> int:
    """The most entries that are not true anomalies in any one day's top k."""
    ranked = _ranked(scores, truth, keys)
    top = ranked[ranked[rank] <= k]
    return int((~top["is_anomaly"]).groupby(top["day"]).sum().max()) if len(top) else 0


def missed_alerts(
    scores: pd.DataFrame, truth: pd.DataFrame, k: int, keys: Iterable[str] = ("day", "partner_id")
) -> list[str]:
    """The true anomalies (on scored days) not among the top k alerts of their day."""
    keys = list(keys)
    on_scored_days = truth[truth["day"].isin(scores["day"].unique())][keys].drop_duplicates()
    hits = on_scored_days.merge(scores[[*keys, "alert_rank"]], on=keys, how="left")
    missed = hits[~(hits["alert_rank"] <= k)]
    return [" ".join(str(v) for v in row) for row in missed[keys].itertuples(index=False)]


def ranking_figures(scores: pd.DataFrame, truth: pd.DataFrame, k: int) -> dict[str, Any]:
    """Every scored entity ranked by score, no threshold."""
    return {
        f"precision_at_{k}": round(precision_at_k(scores, truth, k), 3),
        f"recall_at_{k}": round(recall_at_k(scores, truth, k), 3),
        f"most_false_in_top_{k}": false_in_top_k(scores, truth, k),
        "recall_at_1": round(recall_at_k(scores, truth, 1), 3),
    }


def alert_figures(scores: pd.DataFrame, truth: pd.DataFrame, k: int) -> dict[str, Any]:
    """The day's alerts ranked by score, at most k a day (`scores` needs `alert_rank`)."""
    per_day = scores.groupby("day")["alert"].sum()
    return {
        "alerts": int(per_day.sum()),
        "alerts_per_day": {str(day): int(n) for day, n in per_day.items()},
        f"precision_at_{k}": round(precision_at_k(scores, truth, k, rank="alert_rank"), 3),
        f"recall_at_{k}": round(recall_at_k(scores, truth, k, rank="alert_rank"), 3),
        f"most_false_in_top_{k}": false_in_top_k(scores, truth, k, rank="alert_rank"),
        "missed": missed_alerts(scores, truth, k),
    }


SYNTHETIC_KINDS: dict[str, dict[str, float]] = {
    # kind of injected behaviour → the features it moves (ratio factors, share deltas)
    "message_read_spike": {"message_reads_ratio": 14.0, "calls_ratio": 6.0},
    "night_crawl": {"night_share_delta": 0.55, "new_ip_share_delta": 0.6},
    "dormant_inbox_sweep": {"distinct_users_ratio": 4.0, "accesses_per_live_grant_ratio": 3.0},
    "calls_after_revocations": {"revokes_ratio": 8.0, "flagged_share_delta": 0.25},
    "burst_scraping": {"max_burst_per_minute_ratio": 6.0, "failed_rate_delta": 0.15},
}


def synthetic_features(
    random_state: int = 0, days: int = 40, entities: int = 60, anomalies_per_day: int = 3
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Partner-day model features with injected anomalies, and the ground truth (day,
    partner_id, kind). Normal entities wobble around their own medians; each anomaly moves
    the one or two features its kind names, at a random strength between half and full."""
    rng = np.random.RandomState(random_state)
    n = days * entities
    frame = pd.DataFrame(
        {
            "entity_kind": PARTNER_DAY,
            "day": np.repeat(pd.date_range("2026-01-01", periods=days).date, entities),
            "partner_id": np.tile([f"P{i:03d}" for i in range(entities)], days),
            "app_id": None,
            "user_id": None,
        }
    )
    for feature in MODEL_FEATURES:
        if _is_ratio(feature):
            frame[feature] = np.exp(rng.normal(0.0, 0.25, n))
        else:
            frame[feature] = rng.normal(0.0, 0.03, n)
    entity = np.concatenate(
        [rng.choice(entities, anomalies_per_day, replace=False) for _ in range(days)]
    )
    rows = np.repeat(np.arange(days) * entities, anomalies_per_day) + entity
    kinds = rng.choice(list(SYNTHETIC_KINDS), len(rows))
    strength = rng.uniform(0.5, 1.0, len(rows))
    for kind, changes in SYNTHETIC_KINDS.items():
        hit = kinds == kind
        for feature, change in changes.items():
            column = frame[feature].to_numpy(copy=True)
            if _is_ratio(feature):
                column[rows[hit]] *= change ** strength[hit]
            else:
                column[rows[hit]] += change * strength[hit]
            frame[feature] = column
    truth = frame.iloc[rows][["day", "partner_id"]].assign(kind=kinds).reset_index(drop=True)
    return frame, truth


def compare_detectors(
    features: pd.DataFrame,
    truth: pd.DataFrame,
    train_days: list[date],
    test_days: list[date],
    random_state: int = 0,
    keys: Iterable[str] = ("day", "partner_id"),
) -> dict[str, dict[str, float]]:
    """Each detector trained on the train days (anomalies left in, as in real windows) and
    judged on the test days: the ranking (precision@3, precision@10, recall@10, mean rank of the
    anomalies) and its alerts (recall@10 among the day's alerts, most false alerts in a day's
    top 10, alerts per day)."""
    keys = list(keys)
    tested = truth[truth["day"].isin(test_days)]
    results = {}
    for name in DETECTORS:
        started = time.perf_counter()
        model = BehaviourModel(detector=name, random_state=random_state)
        model.fit(features[features["day"].isin(train_days)])
        scored = with_alert_rank(
            score(model, features[features["day"].isin(test_days)]).to_pandas()
        )
        scored = scored[scored["entity_kind"] == PARTNER_DAY]
        ranks = tested[keys].merge(scored[[*keys, "rank"]], on=keys, how="left")["rank"]
        results[name] = {
            "precision_at_3": round(precision_at_k(scored, truth, 3, keys), 4),
            "precision_at_10": round(precision_at_k(scored, truth, 10, keys), 4),
            "recall_at_10": round(recall_at_k(scored, truth, 10, keys), 4),
            "mean_anomaly_rank": round(float(ranks.mean()), 2),
            "alert_recall_at_10": round(recall_at_k(scored, truth, 10, keys, "alert_rank"), 4),
            "most_false_alerts_in_top_10": false_in_top_k(scored, truth, 10, keys, "alert_rank"),
            "alerts_per_day": round(float(scored["alert"].sum()) / len(test_days), 2),
            "seconds": round(time.perf_counter() - started, 3),
        }
    return results


def synthetic_comparison(random_states: Iterable[int] = (0, 1, 2)) -> dict[str, dict[str, float]]:
    """compare_detectors on synthetic_features (28 training days, 12 test days), averaged over
    a few random states so one lucky draw does not pick the winner."""
    runs = []
    for random_state in random_states:
        features, truth = synthetic_features(random_state)
        days = sorted(features["day"].unique())
        runs.append(compare_detectors(features, truth, days[:28], days[28:], random_state))
    return {
        name: {m: round(float(np.mean([r[name][m] for r in runs])), 4) for m in runs[0][name]}
        for name in DETECTORS
    }


def best_detector(comparison: dict[str, dict[str, float]]) -> str:
    """The detector whose alerts catch the most anomalies, then with the fewest false alerts,
    then with the best ranking (recall@10, precision@3)."""

    def merit(name: str) -> tuple[float, ...]:
        figures = comparison[name]
        return (
            figures["alert_recall_at_10"],
            -figures["most_false_alerts_in_top_10"],
            figures["recall_at_10"],
            figures["precision_at_3"],
        )

    return max(comparison, key=merit)


# ---------------------------------------------------------------- the store


def fingerprint(matrix: np.ndarray) -> str:
    """sha256 of the training matrix's bytes (C order, float64)."""
    return hashlib.sha256(np.ascontiguousarray(matrix, dtype=np.float64).tobytes()).hexdigest()


def _training_metrics(
    model: BehaviourModel, rows: int, scores: dict[str, np.ndarray], seconds: float
) -> dict:
    """Rows per kind, fit time and the quantiles of the scores the thresholds came from."""
    quantiles = {
        kind: {
            q: round(float(np.quantile(kind_scores, p)), 6)
            for q, p in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
        }
        for kind, kind_scores in scores.items()
    }
    return {
        "rows": rows,
        "rows_by_kind": dict(model.n_train_rows_),
        "score_quantiles": quantiles,
        "fit_seconds": round(seconds, 3),
    }


def model_metadata(model: BehaviourModel, name: str, version: str) -> dict[str, Any]:
    """What the store records beside a fitted model."""
    return {
        "name": name,
        "version": version,
        "window": {"start": model.window_[0], "end": model.window_[1]},
        "features": list(model.feature_names_in_),
        "sklearn_version": sklearn.__version__,
        "random_state": model.random_state,
        "data_fingerprint": model.fingerprint_,
        "parameters": model.get_params(),
        "training_metrics": model.training_metrics_,
        "alert_thresholds": {
            kind: {"threshold": model.threshold_[kind], "alert_rate": model.alert_rate_[kind]}
            for kind in model.threshold_
        },
        "detector_choice": DETECTOR_CHOICE,
    }


def save_model(
    model: BehaviourModel, models_dir: Path, name: str, extra: dict[str, Any] | None = None
) -> Path:
    """Write models/<name>/<version>/{model.joblib, metadata.json} and return the folder.

    Version = last training day + data fingerprint, so versions sort by training window.
    `extra` adds to the metadata (e.g. the detector comparison, the requested window).
    """
    import joblib

    version = f"{model.window_[1]}-{model.fingerprint_[:8]}"
    folder = Path(models_dir) / name / version
    folder.mkdir(parents=True, exist_ok=True)
    staged = folder / f".{MODEL_FILE}.tmp"
    joblib.dump(model, staged)
    staged.replace(folder / MODEL_FILE)
    document = {**model_metadata(model, name, version), **(extra or {})}
    staged = folder / f".{METADATA_FILE}.tmp"
    staged.write_text(json.dumps(document, indent=2, sort_keys=True, default=str))
    staged.replace(folder / METADATA_FILE)  # written last: a version without it is incomplete
    model.model_name_, model.model_version_ = name, version
    return folder


def model_versions(models_dir: Path, name: str) -> list[str]:
    """Complete versions of a model (with metadata), oldest first."""
    root = Path(models_dir) / name
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / METADATA_FILE).is_file())


def _check(metadata: dict[str, Any], folder: Path) -> None:
    """Refuse a model this code cannot use as trained."""
    features = metadata.get("features")
    if features != list(MODEL_FEATURES):
        stored = set(features or [])
        missing = sorted(set(MODEL_FEATURES) - stored)
        extra = sorted(stored - set(MODEL_FEATURES))
        what = f"missing {missing}, unknown {extra}" if missing or extra else "order differs"
        raise ModelMismatch(
            f"model {folder}: its feature list differs from this code's ({what}); "
            "retrain it with `access-audit train`"
        )
    if metadata.get("sklearn_version") != sklearn.__version__:
        raise ModelMismatch(
            f"model {folder}: trained with scikit-learn {metadata.get('sklearn_version')}, "
            f"installed is {sklearn.__version__}; retrain it with `access-audit train`"
        )
    if not metadata.get("alert_thresholds"):
        raise ModelMismatch(
            f"model {folder}: its metadata records no alert thresholds (trained before they "
            "were learned); retrain it with `access-audit train`"
        )


def _check_thresholds(model: BehaviourModel, metadata: dict[str, Any], folder: Path) -> None:
    """Refuse a model file whose learned thresholds are not the ones its metadata records."""
    recorded = {k: v["threshold"] for k, v in metadata["alert_thresholds"].items()}
    if getattr(model, "threshold_", None) != recorded:
        raise ModelMismatch(
            f"model {folder}: {MODEL_FILE} and {METADATA_FILE} disagree on the alert "
            "thresholds (one of them was replaced); retrain it with `access-audit train`"
        )


def load_model(
    models_dir: Path, name: str = MODEL_NAME, version: str | None = None
) -> tuple[BehaviourModel, dict[str, Any]]:
    """The newest (or the named) version of a model and its metadata, checked before unpickling."""
    import joblib

    versions = model_versions(models_dir, name)
    if version is None and not versions:
        raise NoModel(f"no model {name!r} in {models_dir}")
    chosen = version or versions[-1]
    folder = Path(models_dir) / name / chosen
    if chosen not in versions:
        raise NoModel(f"no model version {folder}")
    metadata = json.loads((folder / METADATA_FILE).read_text())
    _check(metadata, folder)
    model: BehaviourModel = joblib.load(folder / MODEL_FILE)
    _check_thresholds(model, metadata, folder)
    model.model_name_, model.model_version_ = name, chosen
    return model, metadata
