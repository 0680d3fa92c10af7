"""The behaviour model: how far beyond chance each entity-day's change is, as a scikit-learn
outlier estimator, and its scores with one-line explanations.

Per entity-day and feature (features.LEVEL_COUNTS, RARE_COUNTS, SHARES) the evidence is
-log10 of the upper-tail probability of today's figure given the entity's own history
(evidence.py): 5 deletes where 14.5 are usual is no evidence at all, 14.5 where 5 are usual is a
little (p ~ 0.003), and 2,104 night reads of 2,110 where 1% is usual is overwhelming. The spread
a count or share has from day to day beyond Poisson/binomial chance is learned at fit per entity
kind and feature, robustly (evidence.fit_spread); a short history widens it (the usual level is
itself uncertain), and a user with little history borrows the app's typical user as its prior,
as uncertain as the training window's users differ from theirs (`between_users_`). A rise held
over days (a slow ramp) is weighed as today's and the last days' calls together against 1.5x the
window's earlier level, a CUSUM with an allowance (`calls_sustained`).

The score of a row is its strongest feature's evidence plus a tenth of the next (a tie-break for
corroboration). Alerts: a row alerts when its score is beyond what the day's many rows and
features would reach by chance on `false_alerts_per_day` days (Bonferroni over entities x
features), beyond what the training window's days reached more often than `usual_alerts_per_day`,
and no more rows than `alerts_per_day` of the training window's would have alerted.

scikit-learn's contract: parameters untouched in __init__, learned state ends in `_`,
score_samples is higher for more normal rows (minus the score), decision_function is negative
for outliers, predict gives -1 for them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import BaseEstimator, OutlierMixin

from pipeline.behaviour.evidence import count_evidence, fit_spread, share_evidence
from pipeline.behaviour.features import (
    APP_USER_DAY,
    DORMANT_DAYS,
    ENTITY_KINDS,
    LEVEL_COUNTS,
    PARTNER_DAY,
    RARE_COUNTS,
    RECENT_DAYS,
    SHARES,
)
from pipeline.schema import ANOMALIES

SHARE_NAMES = tuple(name for name, _, _ in SHARES)
FIRST_USE_SHARES = ("new_scope",)  # the share of calls with something never seen before
# the new-address shares are kept for explanations only: one rotated address of an app with one
# is all of its calls, every time; how many addresses are new is the evidence
EXPLAINED_ONLY = ("new_ip", "new_network")
# calls against the whole window's median, not the nearer edge of it and the last days': a slow
# ramp is a new level every day, and only the window remembers where it started
TREND_COUNTS = ("calls_trend",)
# today's and the last days' calls against the days before them (features.py): a ramp's every
# day is a little above the one before, its days together are far above where it started
SUSTAINED_COUNTS = ("calls_sustained",)
# as a CUSUM's allowance: the days together are weighed against 1.5x the earlier level (a held
# rise of half again; smaller drifts of a few days are the day-to-day wander of a big app)
SUSTAINED_ALLOWANCE = 1.5
MIN_EARLY_DAYS = 7
FEATURES: tuple[str, ...] = (
    *LEVEL_COUNTS,
    *TREND_COUNTS,
    *SUSTAINED_COUNTS,
    *RARE_COUNTS,
    *(s for s in SHARE_NAMES if s not in EXPLAINED_ONLY),
)
# partner-day only: per user the addresses are not kept
_PARTNER_ONLY = frozenset({"new_ips", "new_networks", "new_ip", "new_network"})
MEDIAN_VARIANCE = np.pi / 2  # a median of h days varies pi/2 times as much as a mean
APP_PRIOR_DAYS = 2.0  # a user's own history counts as much as the app's typical user at 2 days
RARE_PRIOR_DAYS = 3.0  # a rare count's usual rate: the kind's mean as 3 days of history
SHARE_PRIOR_EVENTS = 30.0  # a share's usual rate: the kind's rate as 30 events of history
MIN_LEVEL = 0.5  # a usual level of 0 is taken as half an event: the first one is not news
EXPLAIN_MIN_EVIDENCE = 3.0  # features this far out are named (the strongest always)
TOP_FEATURES = 3


def _col(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)


def _history_days(frame: pd.DataFrame) -> np.ndarray:
    return np.nan_to_num(_col(frame, "history_days"), nan=0.0)


def level_expectation(frame: pd.DataFrame, count: str, suffix: str = "baseline") -> np.ndarray:
    """The usual level of a count: the entity's nearer-edge median (features.py; with suffix
    "median", the window's); for a user, blended with the app's typical user-day by how much
    history the user has."""
    own = _col(frame, f"{count}_{suffix}")
    prior = _col(frame, f"{count}_app_user_median")
    h = _history_days(frame)
    weight = h / (h + APP_PRIOR_DAYS)
    blended = np.where(np.isfinite(own), weight * own, 0.0) + np.where(
        np.isfinite(prior), (1 - weight) * prior, 0.0
    )
    known = np.isfinite(own) | np.isfinite(prior)
    users = frame["entity_kind"].to_numpy() == APP_USER_DAY
    mu = np.where(users, blended, own)
    return np.where(known | ~users, np.maximum(mu, MIN_LEVEL), np.nan)


def rare_expectation(frame: pd.DataFrame, count: str, prior: float) -> np.ndarray:
    """A rare count's usual rate: the entity's history mean, shrunk toward the kind's."""
    mean = _col(frame, f"{count}_hist_mean")
    h = _history_days(frame)
    own = np.where(np.isfinite(mean), mean * h, 0.0)
    mu = (own + prior * RARE_PRIOR_DAYS) / (np.where(np.isfinite(mean), h, 0.0) + RARE_PRIOR_DAYS)
    return np.where(h > 0, np.maximum(mu, 1e-3), np.nan)


def share_parts(
    frame: pd.DataFrame, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(k, n) today and (k, n) over the history, of one share."""
    _, count, total = next(s for s in SHARES if s[0] == name)
    return (
        _col(frame, count),
        _col(frame, total),
        _col(frame, f"{count}_hist"),
        _col(frame, f"{count}_of_hist"),
    )


def _share_rate(frame: pd.DataFrame, name: str, prior: float) -> np.ndarray:
    """A share's usual rate: the entity's history, shrunk toward its app's (a user's) or the
    kind's rate by SHARE_PRIOR_EVENTS events."""
    _, _, k_hist, n_hist = share_parts(frame, name)
    k_hist, n_hist = np.nan_to_num(k_hist), np.nan_to_num(n_hist)
    app = _col(frame, f"{name}_app_rate")
    toward = np.where(np.isfinite(app), app, prior)
    rate = (k_hist + toward * SHARE_PRIOR_EVENTS) / (n_hist + SHARE_PRIOR_EVENTS)
    if name in FIRST_USE_SHARES:
        # a first use is as likely as one more call of the history's (the rule of succession):
        # an app of 16 calls a day that used contacts once a month is not news the day it does
        rate = np.maximum(rate, 1.0 / (n_hist + 1.0))
    return rate


def with_app_rates(X: pd.DataFrame) -> pd.DataFrame:
    """X with `<share>_app_rate` on its app-user rows: the share's history rate of the same
    day's partner-day row (a batch app's users work at night as it does)."""
    users = X["entity_kind"].to_numpy() == APP_USER_DAY
    if not users.any() or (~users).sum() == 0:
        return X
    partner_key = X["partner_id"].where(X["partner_id"].notna(), X["app_id"]).astype(str)
    key = X["day"].astype(str) + "\x1f" + partner_key
    partners = ~users
    out = X.copy()
    for name in SHARE_NAMES:
        _, _, k_hist, n_hist = share_parts(X, name)
        rate = (np.nan_to_num(k_hist) + 0.5) / (np.nan_to_num(n_hist) + 1.0)
        by_key = pd.Series(rate[partners], index=key[partners].to_numpy())
        by_key = by_key[~by_key.index.duplicated()]
        looked_up = by_key.reindex(key.to_numpy()).to_numpy()
        out[f"{name}_app_rate"] = np.where(users, looked_up, np.nan)
    return out


class BehaviourModel(OutlierMixin, BaseEstimator):
    """Significance of each entity-day's changes against its own history (module docstring)."""

    model_name_ = "unsaved"  # the store's name and version, set by save_model and load_model
    model_version_ = "unsaved"

    def __init__(
        self,
        false_alerts_per_day: float = 0.05,
        alerts_per_day: float = 1.0,
        usual_alerts_per_day: float = 0.1,
        max_train_rows: int = 200_000,
        random_state: int = 0,
    ) -> None:
        self.false_alerts_per_day = false_alerts_per_day
        self.alerts_per_day = alerts_per_day
        self.usual_alerts_per_day = usual_alerts_per_day
        self.max_train_rows = max_train_rows
        self.random_state = random_state

    # ------------------------------------------------------------ fit

    def fit(self, X: pd.DataFrame, y: Any = None) -> BehaviourModel:
        """Learn, per entity kind, each feature's prior rate and spread and the alert threshold."""
        started = time.perf_counter()
        self.feature_names_in_ = np.array(FEATURES, dtype=object)
        self.n_features_in_ = len(FEATURES)
        self.fingerprint_ = fingerprint(X)
        X = with_app_rates(X)
        days = pd.to_datetime(X["day"]).dt.date
        self.window_ = (min(days).isoformat(), max(days).isoformat())
        self.prior_: dict[str, dict[str, float]] = {}
        self.spread_: dict[str, dict[str, float]] = {}
        self.threshold_: dict[str, float] = {}
        self.entities_per_day_: dict[str, float] = {}
        self.n_train_rows_: dict[str, int] = {}
        rng = np.random.RandomState(self.random_state)
        quantiles = {}
        for kind in ENTITY_KINDS:
            rows = X[X["entity_kind"] == kind]
            if len(rows) < 2:
                continue
            per_day = len(rows) / rows["day"].nunique()
            if len(rows) > self.max_train_rows:  # a sample bounds time and memory
                rows = rows.iloc[rng.choice(len(rows), self.max_train_rows, replace=False)]
            self.n_train_rows_[kind] = len(rows)
            self.entities_per_day_[kind] = per_day
            self.prior_[kind] = self._fit_priors(rows)
            self.spread_[kind] = self._fit_spreads(rows, kind)
            if kind == APP_USER_DAY:
                self.between_users_ = self._fit_between_users(rows)
            scores = self._combine(self._evidence(rows, kind))
            bonferroni = np.log10(per_day * self._n_features(kind) / self.false_alerts_per_day)
            rate = min(1.0, self.alerts_per_day / per_day)
            budget = float(np.quantile(scores, 1.0 - rate))
            # the tail the window's own usual days reach: chance as the data has it, not only as
            # the tails assume (an anomaly kept in the window raises this bar too)
            usual = float(np.quantile(scores, 1.0 - min(1.0, self.usual_alerts_per_day / per_day)))
            self.threshold_[kind] = float(max(bonferroni, budget, usual))
            quantiles[kind] = {
                q: round(float(np.quantile(scores, p)), 3)
                for q, p in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))
            }
        if not self.threshold_:
            raise ValueError("no entity kind has at least 2 training rows")
        self.training_metrics_ = {
            "rows": len(X),
            "rows_by_kind": dict(self.n_train_rows_),
            "score_quantiles": quantiles,
            "fit_seconds": round(time.perf_counter() - started, 3),
        }
        return self

    @staticmethod
    def _n_features(kind: str) -> int:
        return sum(1 for f in FEATURES if kind == PARTNER_DAY or f not in _PARTNER_ONLY)

    @staticmethod
    def _fit_priors(rows: pd.DataFrame) -> dict[str, float]:
        """The kind's typical rate of each rare count and share (its prior for short histories)."""
        priors = {}
        for count in RARE_COUNTS:
            values = _col(rows, count)
            priors[count] = float(np.nanmean(values)) if np.isfinite(values).any() else 0.0
        for name in SHARE_NAMES:
            k, n, _, _ = share_parts(rows, name)
            ok = np.isfinite(k) & np.isfinite(n)
            priors[name] = float((k[ok].sum() + 0.5) / (n[ok].sum() + 1.0))
        return priors

    def _fit_spreads(self, rows: pd.DataFrame, kind: str) -> dict[str, float]:
        """Per feature, the day-to-day spread beyond chance (evidence.fit_spread), with the
        variance the evidence assumes: a usual level from h days is itself uncertain."""
        spreads = {}
        h = np.maximum(_history_days(rows), 1.0)
        known = _history_days(rows) > 0
        prior = self.prior_[kind]
        for count in (*LEVEL_COUNTS, *TREND_COUNTS, *SUSTAINED_COUNTS, *RARE_COUNTS):
            x = self._observed(rows, count)
            mu = self._expectation(rows, count, prior, allowance=False)
            ok = known & np.isfinite(x) & np.isfinite(mu)
            widen = 1.0 + MEDIAN_VARIANCE / h
            level = count not in RARE_COUNTS
            if level:  # levels: rises only, of levels chance alone would not explain
                ok &= mu >= 3
            rises = (x > mu)[ok] if level else None
            spreads[count] = fit_spread(
                (x[ok] - mu[ok]) ** 2, (mu * widen)[ok], (mu**2 * widen)[ok], rises
            )
        for name in SHARE_NAMES:
            k, n, _k_hist, n_hist = share_parts(rows, name)
            p = _share_rate(rows, name, prior[name])
            ok = known & np.isfinite(k) & np.isfinite(n) & (n >= 1)
            base = n * p * (1 - p) * (1 + n / (np.nan_to_num(n_hist) + SHARE_PRIOR_EVENTS))
            common = ok & (n * p >= 3)
            use, rises = (common, (k > n * p)[common]) if common.sum() >= 50 else (ok, None)
            spreads[name] = fit_spread(
                ((k - n * p) ** 2)[use], base[use], (n * (n - 1) * p * (1 - p))[use], rises
            )
        return spreads

    @staticmethod
    def _fit_between_users(rows: pd.DataFrame) -> float:
        """How far a user's own level is from its app's typical user's (the median of the
        squared relative difference, users of a week's history): the uncertainty of a level
        borrowed from the app for a user with little history of its own."""
        own, app = _col(rows, "calls_baseline"), _col(rows, "calls_app_user_median")
        ok = (_history_days(rows) >= MIN_EARLY_DAYS) & np.isfinite(own) & (app >= 3)
        if ok.sum() < 20:
            return 0.0
        return float(np.median((own[ok] / app[ok] - 1.0) ** 2))

    @staticmethod
    def _expectation(
        rows: pd.DataFrame, count: str, prior: Mapping[str, float], allowance: bool = True
    ) -> np.ndarray:
        if count in LEVEL_COUNTS:
            return level_expectation(rows, count)
        if count in TREND_COUNTS:
            return level_expectation(rows, count.removesuffix("_trend"), "median")
        if count in SUSTAINED_COUNTS:
            days = _col(rows, "sustained_days")
            # the window's days before the last ones: a level of a week of days, or none (a
            # user's day of joining is not its level)
            early_days = _history_days(rows) - (days - 1)
            known = np.isfinite(_col(rows, "calls_early_median")) & (early_days >= MIN_EARLY_DAYS)
            mu = level_expectation(rows, "calls", "early_median") * days
            if allowance:  # scoring; the spread is fit on the days as they are
                mu = mu * SUSTAINED_ALLOWANCE
            return np.where(known, mu, np.nan)
        return rare_expectation(rows, count, prior[count])

    @staticmethod
    def _observed(rows: pd.DataFrame, feature: str) -> np.ndarray:
        return _col(rows, feature.removesuffix("_trend"))

    # ------------------------------------------------------------ score

    def _evidence(self, rows: pd.DataFrame, kind: str) -> np.ndarray:
        """-log10 p per row and feature (columns in FEATURES order), rows of one kind."""
        out = np.zeros((len(rows), len(FEATURES)))
        h = np.maximum(_history_days(rows), 1.0)
        prior, spread = self.prior_[kind], self.spread_[kind]
        for j, feature in enumerate(FEATURES):
            if kind != PARTNER_DAY and feature in _PARTNER_ONLY:
                continue
            if feature in SHARE_NAMES:
                k, n, _k_hist, n_hist = share_parts(rows, feature)
                p = _share_rate(rows, feature, prior[feature])
                # the usual rate is itself estimated: from n_hist events, over h days
                rho = spread[feature] * (1 + 1 / h) + 1 / (
                    np.nan_to_num(n_hist) + SHARE_PRIOR_EVENTS
                )
                has_history = _history_days(rows) > 0
                out[:, j] = np.where(has_history, share_evidence(k, n, p, rho), 0.0)
            else:
                x = self._observed(rows, feature)
                mu = self._expectation(rows, feature, prior)
                alpha = spread[feature] * (1 + MEDIAN_VARIANCE / h) + MEDIAN_VARIANCE / (
                    h * np.maximum(np.nan_to_num(mu, nan=1.0), MIN_LEVEL)
                )
                if kind == APP_USER_DAY and feature not in RARE_COUNTS:
                    # the part of the level borrowed from the app's typical user is as uncertain
                    # as users differ from it
                    # (a week of its own and the user's level is its own)
                    hd = _history_days(rows)
                    borrowed = np.where(
                        hd < MIN_EARLY_DAYS, APP_PRIOR_DAYS / (hd + APP_PRIOR_DAYS), 0.0
                    )
                    alpha = alpha + borrowed * getattr(self, "between_users_", 0.0)
                out[:, j] = count_evidence(x, mu, alpha)
        return out

    @staticmethod
    def _combine(evidence: np.ndarray) -> np.ndarray:
        ordered = -np.sort(-evidence, axis=1)
        second = ordered[:, 1] if evidence.shape[1] > 1 else 0.0
        return ordered[:, 0] + 0.1 * second

    def evidence(self, X: pd.DataFrame) -> np.ndarray:
        """-log10 p per row and feature (FEATURES order); NaN rows for a kind not trained."""
        out = np.full((len(X), len(FEATURES)), np.nan)
        X = with_app_rates(X)
        kinds = X["entity_kind"].to_numpy()
        for kind in self.threshold_:
            rows = kinds == kind
            if rows.any():
                out[rows] = self._evidence(X[rows], kind)
        return out

    def anomaly_score(self, X: pd.DataFrame) -> np.ndarray:
        """Higher is more anomalous (the anomalies table's sign); NaN for a kind not trained."""
        evidence = self.evidence(X)
        scores = np.full(len(X), np.nan)
        known = ~np.isnan(evidence).all(axis=1)
        scores[known] = self._combine(evidence[known])
        return scores

    def score_samples(self, X: pd.DataFrame) -> np.ndarray:
        """scikit-learn's sign: higher is more normal."""
        return -self.anomaly_score(X)

    def thresholds(self, X: pd.DataFrame) -> np.ndarray:
        kinds = X["entity_kind"].to_numpy()
        return np.array([self.threshold_.get(kind, np.inf) for kind in kinds])

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Negative for outliers: the threshold minus the anomaly score."""
        return np.nan_to_num(self.thresholds(X) - self.anomaly_score(X), nan=np.inf)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """-1 for the rows that alert, 1 for the others."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def alerts(self, X: pd.DataFrame) -> np.ndarray:
        return self.predict(X) == -1


def fingerprint(X: pd.DataFrame) -> str:
    """sha256 of the training rows' keys and numeric columns (C order, float64)."""
    numeric = X.select_dtypes("number").sort_index(axis=1)
    digest = hashlib.sha256(np.ascontiguousarray(numeric.to_numpy(np.float64)).tobytes())
    named = X[["entity_kind", "partner_id", "app_id", "user_id"]].astype(object)
    keys = named.where(named.notna(), "\x02").astype(str).to_numpy()
    digest.update("\x1f".join(keys.ravel().tolist()).encode())
    return digest.hexdigest()


# ---------------------------------------------------------------- explanations


_COUNT_LABELS = {
    "calls": "calls",
    "message_reads": "message reads",
    "message_writes": "message writes",
    "message_deletes": "message deletes",
    "distinct_users": "users read or written",
    "calls_trend": "calls",
    "calls_sustained": f"calls on the day and the {RECENT_DAYS} before (each at most the day's)",
    "new_users": "users signed in for the first time",
    "revokes": "revocations",
    "revoked_reads": "message reads of users after they revoked the app",
    "new_ips": "addresses never seen from this app",
    "new_networks": "/24 networks never seen from this app",
    "new_scopes": "scopes this {who} never used before",
}
_SHARE_LABELS = {
    "night": "message accesses between 00:00 and 05:00 UTC",
    "deletes": "message accesses were deletes",
    "failed": "calls failed",
    "dormant": f"users read were idle (no call of this app for {DORMANT_DAYS}+ days)",
    "revoked": "users read after they revoked the app",
    "flagged": "message accesses flagged by the rules",
    "new_ip": "calls from addresses never seen from this app",
    "new_network": "calls from /24 networks never seen from this app",
    "new_scope": "calls with a scope this {who} never used",
}


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or float(value).is_integer() else f"{value:.1f}"


def _percent(p: float) -> str:
    if p >= 0.095:
        return f"{p:.0%}"
    return f"{p:.1%}" if p >= 0.001 else f"{p:.2%}"


def _phrase(feature: str, row: Mapping[str, float], who: str) -> str:
    """One clause in the terms that decided it."""
    if feature in SHARE_NAMES:
        label = _SHARE_LABELS[feature].format(who=who)
        return f"{_number(row['k'])} of {_number(row['n'])} {label}, usually {_percent(row['p'])}"
    label = _COUNT_LABELS[feature].format(who=who)
    if feature in ("new_ips", "new_networks", "new_scopes") and row["mu"] < 0.5:
        return f"{_number(row['x'])} {label}"
    if feature in RARE_COUNTS:
        return f"{_number(row['x'])} {label}, usually {row['mu']:.2g} a day"
    times = row["x"] / max(row["mu"], MIN_LEVEL)
    factor = f" ({times:.0f}x)" if times >= 10 else f" ({times:.1f}x)"
    usual = "the window's median" if feature in TREND_COUNTS else "usually"
    if feature in SUSTAINED_COUNTS:
        usual = f"{SUSTAINED_ALLOWANCE}x as many days before"
    return f"{_number(row['x'])} {label}, {usual} {_number(row['mu'])}{factor}"


def explain(
    model: BehaviourModel, X: pd.DataFrame, evidence: np.ndarray, kind: str
) -> tuple[list[list[str]], list[str]]:
    """Per row: the features by evidence (the first TOP_FEATURES) and a sentence naming the
    ones beyond EXPLAIN_MIN_EVIDENCE (the strongest always)."""
    order = np.argsort(-evidence, axis=1, kind="stable")[:, :TOP_FEATURES]
    prior = model.prior_[kind]
    figures: dict[str, dict[str, np.ndarray]] = {}
    for feature in FEATURES:
        if feature in SHARE_NAMES:
            k, n, _k_hist, _n_hist = share_parts(X, feature)
            figures[feature] = {"k": k, "n": n, "p": _share_rate(X, feature, prior[feature])}
        else:
            figures[feature] = {
                "x": model._observed(X, feature),
                "mu": model._expectation(X, feature, prior),
            }
    who = "app" if kind == PARTNER_DAY else "user"
    history = _history_days(X)
    tops: list[list[str]] = []
    sentences: list[str] = []
    for i in range(len(X)):
        names = [FEATURES[j] for j in order[i]]
        far = [FEATURES[j] for j in order[i] if evidence[i, j] >= EXPLAIN_MIN_EVIDENCE]
        if evidence[i, order[i][0]] <= 0:
            tops.append([])
            sentences.append("no change beyond chance")
            continue
        tops.append(names)
        clauses = [
            _phrase(f, {key: float(v[i]) for key, v in figures[f].items()}, who)
            for f in (far or names[:1])
        ]
        sentence = "; ".join(clauses)
        if history[i] < 7:
            what = "new partner" if kind == PARTNER_DAY else "new or occasional user of the app"
            sentence += f" ({what}, {int(history[i])} days of history)"
        sentences.append(sentence)
    return tops, sentences


def score(model: BehaviourModel, features_df: pd.DataFrame) -> pa.Table:
    """Scores, ranks and explanations of the rows of the kinds the model was trained on."""
    frame = features_df[features_df["entity_kind"].isin(list(model.threshold_))].copy()
    frame = with_app_rates(frame.reset_index(drop=True))
    evidence = model.evidence(frame)
    frame["score"] = model.anomaly_score(frame)
    frame["top_features"] = pd.Series([[]] * len(frame), dtype=object)
    frame["explanation"] = ""
    for kind in model.threshold_:
        rows = frame.index[frame["entity_kind"] == kind]
        if len(rows):
            tops, sentences = explain(model, frame.loc[rows], evidence[rows], kind)
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
    frame["alert"] = model.alerts(frame)
    frame["model_name"] = model.model_name_
    frame["model_version"] = model.model_version_
    frame = frame.sort_values(["entity_kind", "day", "rank"], kind="stable")
    return pa.Table.from_pandas(frame[ANOMALIES.names], schema=ANOMALIES, preserve_index=False)
