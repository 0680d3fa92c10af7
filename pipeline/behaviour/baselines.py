"""Baselines the behaviour model is judged against in the same run: a robust z-score per
entity-day and a local outlier factor, both over each entity's changes against its own history
(features.MODEL_FEATURES: log2 ratios of counts, differences of shares), standardised per entity
kind by the training rows' median and MAD. Each alerts at the training scores' quantile that
would have given `alerts_per_day` alerts a day, as the earlier model did."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.neighbors import LocalOutlierFactor

from pipeline.behaviour.features import ENTITY_KINDS, MODEL_FEATURES

RATIO_FLOOR, SHARE_FLOOR = 0.5, 0.05  # smallest spread per feature (log2 ratio; share)
MAD_TO_SIGMA = 1.4826


def model_matrix(frame: pd.DataFrame) -> np.ndarray:
    """MODEL_FEATURES in model units: log2 for ratios, raw for shares' differences."""
    matrix = frame[list(MODEL_FEATURES)].to_numpy(dtype=np.float64, copy=True)
    ratios = [i for i, f in enumerate(MODEL_FEATURES) if f.endswith("_ratio")]
    matrix[:, ratios] = np.log2(np.clip(matrix[:, ratios], 1e-6, None))
    return np.nan_to_num(matrix)


class Baseline:
    """One of "robust_z" or "lof", fitted per entity kind."""

    def __init__(self, method: str, alerts_per_day: float = 1.0, max_train_rows: int = 20_000):
        self.method = method
        self.alerts_per_day = alerts_per_day
        self.max_train_rows = max_train_rows

    def fit(self, X: pd.DataFrame) -> Baseline:
        rng = np.random.RandomState(0)
        self.center_, self.scale_, self.lof_, self.threshold_ = {}, {}, {}, {}
        floors = np.array([RATIO_FLOOR if f.endswith("_ratio") else SHARE_FLOOR
                           for f in MODEL_FEATURES])  # fmt: skip
        for kind in ENTITY_KINDS:
            rows = X[X["entity_kind"] == kind]
            if len(rows) < 2:
                continue
            matrix = model_matrix(rows)
            if len(matrix) > self.max_train_rows:
                matrix = matrix[rng.choice(len(matrix), self.max_train_rows, replace=False)]
            center = np.median(matrix, axis=0)
            scale = np.maximum(MAD_TO_SIGMA * np.median(np.abs(matrix - center), axis=0), floors)
            self.center_[kind], self.scale_[kind] = center, scale
            z = (matrix - center) / scale
            if self.method == "lof":
                lof = LocalOutlierFactor(n_neighbors=20, novelty=True).fit(z)
                self.lof_[kind] = lof
                scores = -lof.negative_outlier_factor_
            else:
                scores = np.abs(z).max(axis=1)
            rate = min(1.0, self.alerts_per_day * rows["day"].nunique() / len(rows))
            self.threshold_[kind] = float(np.quantile(scores, 1.0 - rate))
        return self

    def anomaly_score(self, X: pd.DataFrame) -> np.ndarray:
        scores = np.full(len(X), np.nan)
        kinds = X["entity_kind"].to_numpy()
        for kind in self.threshold_:
            rows = kinds == kind
            if not rows.any():
                continue
            z = (model_matrix(X[rows]) - self.center_[kind]) / self.scale_[kind]
            if self.method == "lof":
                scores[rows] = -self.lof_[kind].score_samples(z)
            else:
                scores[rows] = np.abs(z).max(axis=1)
        return scores

    def alerts(self, X: pd.DataFrame) -> np.ndarray:
        kinds = X["entity_kind"].to_numpy()
        thresholds = np.array([self.threshold_.get(k, np.inf) for k in kinds])
        return np.nan_to_num(self.anomaly_score(X), nan=-np.inf) > thresholds
