"""Ranking and alert figures of scored entity-days against a ground truth (day, partner_id):
precision and recall at k, by rank or among the day's alerts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd


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
