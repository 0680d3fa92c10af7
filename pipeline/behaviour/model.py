"""The behaviour model: how far beyond chance each entity-day's change is, as a scikit-learn
outlier estimator, and its scores with one-line explanations.

Per entity-day and feature (features.LEVEL_COUNTS, RARE_COUNTS, SHARES) the evidence is
-log10 of the upper-tail probability of today's figure given the entity's own history
(evidence.py): 5 deletes where 14.5 are usual is no evidence at all, 14.5 where 5 are usual is a
little (p ~ 0.003), and 2,104 night reads of 2,110 where 1% is usual is overwhelming. The spread
a count or share has from day to day beyond Poisson/binomial chance is learned at fit per entity
kind and feature, robustly (evidence.fit_spread); a level's as a part common to the kind and a
part per unit of the entity's own early days' wander against its kind's typical one (own_spread,
shrunk toward the kind's), as far as the training window shows the wander tells (a service
account calling 1,000 times every day may be steadier than a person: fit_spread_by). A short
history widens it (the usual level is itself uncertain), and a user with little history borrows
the app's typical user as its prior, as uncertain as the training window's users differ from
theirs, tails included (`between_users_`, quantile_matched_spread). A rise held over days (a
slow ramp) is weighed as today's and the last days' calls together against 1.5x the window's
earlier level, a CUSUM with an allowance (`calls_sustained`). Levels are against the entity's own
days of today's class (weekend or weekday: features.py). A user's day cut by its grant has no
time of day (TIME_OF_DAY_SHARES). Reads after a revocation are weighed against those the day's
revocations explain (a token's last minutes: REVOCATION_LAG).

The score of a row is its strongest feature's evidence, or its two strongest families' together
where that is more (FAMILIES: a heavy day of reads only is two findings), plus a tenth of the
next feature (a tie-break). Alerts: a row alerts when its score is beyond what the day's many
rows and features would reach by chance on `false_alerts_per_day` days (Bonferroni over entities x
features), beyond the level the training window's tail puts at `usual_alerts_per_day` a day (an
exponential fitted to its top scores: not its one top score), and no more rows than
`alerts_per_day` of the training window's would have alerted.

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

from pipeline.behaviour.evidence import (
    count_evidence,
    fit_spread,
    fit_spread_by,
    share_evidence,
)
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

# the learned state's layout: the store refuses a model of another (2: a level's spread in two
# parts, own_slope_ beside spread_)
MODEL_FORMAT = 2
SHARE_NAMES = tuple(name for name, _, _ in SHARES)
FIRST_USE_SHARES = ("new_scope",)  # the share of calls with something never seen before
# the new-address shares are kept for explanations only: one rotated address of an app with one
# is all of its calls, every time; how many addresses are new is the evidence
EXPLAINED_ONLY = ("new_ip", "new_network")
# a user's day cut by its grant (signed in for the first time, or revoked, that day) has calls only
# in the hours it was live: revoked at 03:00, every call was at night; its time of day is not news
TIME_OF_DAY_SHARES = ("night",)
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
# A token lives a few minutes past its revocation: reads of users who revoked that day are as
# usual as the day's revocations make them, at the kind's reads (and users read) per revocation
# of the training window (priors "<feature>_per_revoke"). A partner with 2 reads after 1 of its
# rare revocations is not news; 200 revoking and the app reading on for hours is.
REVOCATION_LAG = ("revoked_reads", "revoked")
LAG_ROW_QUANTILE = 0.99  # a training row's reads per revocation are capped here (its anomalies)
FEATURES: tuple[str, ...] = (
    *LEVEL_COUNTS,
    *TREND_COUNTS,
    *SUSTAINED_COUNTS,
    *RARE_COUNTS,
    *(s for s in SHARE_NAMES if s not in EXPLAINED_ONLY),
)
# Families: the features that measure one thing; each family's chance wander is about
# independent of the others'. A day far out in two families is two findings (a read-only sweep:
# a heavy day, and of reads only: volume and reads). The counts of one action are a day's volume
# times its share of the actions, both at once: they are findings on their own (ACTION_COUNTS)
# but join no other (a person's 32 calls where 3 are usual are 30 reads too: one finding).
FAMILIES: tuple[tuple[str, ...], ...] = (
    ("calls", "distinct_users", *TREND_COUNTS, *SUSTAINED_COUNTS),
    ("reads",),
    ("deletes",),
    ("night",),
    ("failed",),
    ("dormant",),
    ("revoked", "revokes", "revoked_reads"),
    ("flagged",),
    ("new_users",),
    ("new_ips", "new_networks"),
    ("new_scopes", "new_scope"),
)
_FAMILY_INDEX = tuple([FEATURES.index(f) for f in family] for family in FAMILIES)
_FAMILY_PAIRS = len(FAMILIES) * (len(FAMILIES) - 1) / 2
# partner-day only: per user the addresses are not kept
_PARTNER_ONLY = frozenset({"new_ips", "new_networks", "new_ip", "new_network"})
MEDIAN_VARIANCE = np.pi / 2  # a median of h days varies pi/2 times as much as a mean
APP_PRIOR_DAYS = 2.0  # a user's own history counts as much as the app's typical user at 2 days
RARE_PRIOR_DAYS = 3.0  # a rare count's usual rate: the kind's mean as 3 days of history
SHARE_PRIOR_EVENTS = 30.0  # a share's usual rate: the kind's rate as 30 events of history
MIN_LEVEL = 0.5  # a usual level of 0 is taken as half an event: the first one is not news
# An entity's own day-to-day spread of calls (its early days' variance beyond Poisson, relative to
# its kind's typical one) counts as much as the kind's at this many days: a service account that
# calls 1,000 times every day is steadier than a person, and its rises mean more
OWN_SPREAD_PRIOR_DAYS = 8.0
# below this level a day's variance is mostly Poisson's: its own part is not measurable
MIN_OWN_SPREAD_LEVEL = 30.0
IQR_EFFICIENCY = 0.37  # a spread from quartiles is worth about this share of the days' own
IQR_PER_SD = 1.349  # a normal's interquartile range in standard deviations
BETWEEN_USERS_QUANTILE = 0.99  # the borrowed level's spread matches how far users reach this often
TAIL_ROWS = 20  # the training window's top scores that the alert threshold's tail is fitted to
MIN_TAIL_ROWS = 10
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


def revocation_lag(frame: pd.DataFrame, feature: str, prior: Mapping[str, float]) -> np.ndarray:
    """The day's revocations times the kind's `feature` per revocation (REVOCATION_LAG; 0 for a
    model trained before it was learned)."""
    return np.nan_to_num(_col(frame, "revokes")) * prior.get(f"{feature}_per_revoke", 0.0)


def _share_rate(frame: pd.DataFrame, name: str, prior: Mapping[str, float]) -> np.ndarray:
    """A share's usual rate: the entity's history, shrunk toward its app's (a user's) or the
    kind's rate by SHARE_PRIOR_EVENTS events; for the share read after a revocation, at least
    what the day's revocations explain (REVOCATION_LAG)."""
    rate = _history_rate(frame, name, prior[name])
    if name in REVOCATION_LAG:
        _, total, _, _ = share_parts(frame, name)
        with np.errstate(all="ignore"):
            lagged = np.clip(revocation_lag(frame, name, prior) / total, 0.0, 1.0)
        rate = np.fmax(rate, lagged)
    return rate


def _history_rate(frame: pd.DataFrame, name: str, prior: float) -> np.ndarray:
    """The share's rate over the entity's history, shrunk toward its app's or `prior`."""
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


def cut_by_grant(frame: pd.DataFrame) -> np.ndarray:
    """The app-user-days whose grant began or ended on the day (TIME_OF_DAY_SHARES)."""
    users = frame["entity_kind"].to_numpy() == APP_USER_DAY
    changed = (np.nan_to_num(_col(frame, "revokes")) > 0) | (
        np.nan_to_num(_col(frame, "new_users")) > 0
    )
    return users & changed


def own_spread(frame: pd.DataFrame) -> np.ndarray:
    """Per row, its entity's own over-dispersion of calls over its early days (the variance
    beyond Poisson over the level squared, the variance from the quartiles and the level their
    median: robust to a few anomalous days; NaN with less than a week of them or few calls)."""
    mean = _col(frame, "calls_early_median")
    var = (_col(frame, "calls_early_iqr") / IQR_PER_SD) ** 2
    days = np.nan_to_num(_col(frame, "early_days"), nan=0.0)
    with np.errstate(all="ignore"):
        alpha = np.maximum(var - mean, 0.0) / mean**2
    known = (days >= MIN_EARLY_DAYS) & (mean >= MIN_OWN_SPREAD_LEVEL) & np.isfinite(alpha)
    return np.where(known, alpha, np.nan)


def spread_ratio(frame: pd.DataFrame, typical: float) -> np.ndarray:
    """The entity's own spread against its kind's typical one, shrunk toward 1 by
    OWN_SPREAD_PRIOR_DAYS days (1 where it is unknown)."""
    own = own_spread(frame)
    days = np.nan_to_num(_col(frame, "early_days"), nan=0.0)
    weight = IQR_EFFICIENCY * np.maximum(days - 1.0, 0.0)
    ratio = own / max(typical, 1e-6)
    shrunk = (weight * ratio + OWN_SPREAD_PRIOR_DAYS) / (weight + OWN_SPREAD_PRIOR_DAYS)
    return np.where(np.isfinite(ratio), shrunk, 1.0)


def quantile_matched_spread(ratios: np.ndarray, q: float = BETWEEN_USERS_QUANTILE) -> float:
    """The gamma spread alpha (mean 1, variance alpha) whose q-quantile reaches the ratios' own:
    the tails, not the middle, are where a borrowed level's false alerts come from."""
    from scipy import stats

    target = float(np.quantile(ratios, q))
    if target <= 1.0:
        return 0.0
    alphas = np.logspace(-3, 2, 400)
    reach = stats.gamma.ppf(q, 1.0 / alphas, scale=alphas)
    enough = np.flatnonzero(reach >= target)
    return float(alphas[enough[0]] if len(enough) else alphas[-1])


def tail_level(scores: np.ndarray, days: float, per_day: float, top: int = TAIL_ROWS) -> float:
    """The score that `days` days of these scores would pass `per_day` times a day: past the
    top rows, an exponential tail fitted to them (peaks over a threshold). The window's days
    reach it less than once, so the top score alone would set it: one freak of a day, a person's
    32 calls where 3 are usual, would hide every change below it on every day after."""
    ordered = np.sort(scores[np.isfinite(scores)])[::-1]
    k = min(top, len(ordered) - 1)
    if k < MIN_TAIL_ROWS or days <= 0:  # too few to have a tail: the quantile as it is
        return float(np.quantile(ordered, 1.0 - min(1.0, per_day * days / len(ordered))))
    start = ordered[k]
    scale = float(np.mean(ordered[:k] - start))
    rate = k / days  # how often a day passes `start`
    if rate <= per_day:
        return float(start)
    return float(start + scale * np.log(rate / per_day))


class BehaviourModel(OutlierMixin, BaseEstimator):
    """Significance of each entity-day's changes against its own history (module docstring)."""

    model_name_ = "unsaved"  # the store's name and version, set by save_model and load_model
    model_version_ = "unsaved"

    def __init__(
        self,
        false_alerts_per_day: float = 0.05,
        alerts_per_day: float = 1.0,
        usual_alerts_per_day: float = 0.05,
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
        self.typical_own_spread_: dict[str, float] = {}
        self.own_slope_: dict[str, dict[str, float]] = {}
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
            own = own_spread(rows)
            own = own[np.isfinite(own)]
            self.typical_own_spread_[kind] = float(np.median(own)) if len(own) >= 10 else np.nan
            self.spread_[kind], self.own_slope_[kind] = self._fit_spreads(rows, kind)
            if kind == APP_USER_DAY:
                self.between_users_ = self._fit_between_users(rows)
                self.share_between_users_ = self._fit_share_between_users(rows)
            scores = self._combine(self._evidence(rows, kind))
            bonferroni = np.log10(per_day * self._n_features(kind) / self.false_alerts_per_day)
            rate = min(1.0, self.alerts_per_day / per_day)
            budget = float(np.quantile(scores, 1.0 - rate))
            # the tail the window's own usual days reach: chance as the data has it, not only as
            # the tails assume (an anomaly kept in the window raises this bar too, a little)
            usual = tail_level(scores, len(scores) / per_day, self.usual_alerts_per_day)
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
        revokes = np.nan_to_num(_col(rows, "revokes"))
        revoking = revokes > 0
        for feature in REVOCATION_LAG:
            lag = 0.0
            if revoking.any():  # the share's count (users read after revoking), or the count
                count = next((c for name, c, _ in SHARES if name == feature), feature)
                per_revoke = np.nan_to_num(_col(rows, count))[revoking] / revokes[revoking]
                capped = np.minimum(per_revoke, np.quantile(per_revoke, LAG_ROW_QUANTILE))
                lag = float((capped * revokes[revoking]).sum() / revokes.sum())
            priors[f"{feature}_per_revoke"] = lag
        return priors

    def _fit_spreads(
        self, rows: pd.DataFrame, kind: str
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Per feature, the day-to-day spread beyond chance (evidence.fit_spread), with the
        variance the evidence assumes: a usual level from h days is itself uncertain. A level's
        is a part common to the kind and a part per unit of the entity's own wander
        (evidence.fit_spread_by against spread_ratio): the second of the pair."""
        spreads, slopes = {}, {}
        h = np.maximum(_history_days(rows), 1.0)
        known = _history_days(rows) > 0
        prior = self.prior_[kind]
        ratio = self._spread_ratio(rows, kind)
        for count in (*LEVEL_COUNTS, *TREND_COUNTS, *SUSTAINED_COUNTS, *RARE_COUNTS):
            x = self._observed(rows, count)
            mu = self._expectation(rows, count, prior, allowance=False)
            ok = known & np.isfinite(x) & np.isfinite(mu)
            widen = 1.0 + MEDIAN_VARIANCE / h
            level = count not in RARE_COUNTS
            if level:  # levels: rises only, of levels chance alone would not explain, of
                # entities with a week of their own (a borrowed level's uncertainty is apart:
                # between_users_)
                ok &= (mu >= 3) & (_history_days(rows) >= MIN_EARLY_DAYS)
            squares = ((x - mu) ** 2)[ok], (mu * widen)[ok], (mu**2 * widen)[ok]
            if level:
                spreads[count], slopes[count] = fit_spread_by(*squares, ratio[ok], (x > mu)[ok])
            else:  # every row, their clusters kept
                spreads[count] = fit_spread(*squares, trim=0.0)
        for name in SHARE_NAMES:
            k, n, _k_hist, n_hist = share_parts(rows, name)
            p = _share_rate(rows, name, prior)
            ok = known & np.isfinite(k) & np.isfinite(n) & (n >= 1)
            if name in TIME_OF_DAY_SHARES:
                ok &= ~cut_by_grant(rows)
            base = n * p * (1 - p) * (1 + n / (np.nan_to_num(n_hist) + SHARE_PRIOR_EVENTS))
            common = ok & (n * p >= 3)
            use, rises = (common, (k > n * p)[common]) if common.sum() >= 50 else (ok, None)
            spreads[name] = fit_spread(
                ((k - n * p) ** 2)[use], base[use], (n * (n - 1) * p * (1 - p))[use], rises
            )
        return spreads, slopes

    def _spread_ratio(self, rows: pd.DataFrame, kind: str) -> np.ndarray:
        typical = self.typical_own_spread_.get(kind, np.nan)
        if not np.isfinite(typical):
            return np.ones(len(rows))
        return spread_ratio(rows, typical)

    @staticmethod
    def _fit_between_users(rows: pd.DataFrame) -> float:
        """How far a user's own level is from its app's typical user's (users of a week's
        history), as the spread of a gamma that reaches as far as they do
        (quantile_matched_spread): the uncertainty of a level borrowed from the app for a user
        with little history of its own. Users differ by orders of magnitude; a middle measure
        of it made every heavy user's second day an alert."""
        own, app = _col(rows, "calls_baseline"), _col(rows, "calls_app_user_median")
        ok = (_history_days(rows) >= MIN_EARLY_DAYS) & np.isfinite(own) & (app >= 3)
        if ok.sum() < 20:
            return 0.0
        return quantile_matched_spread(own[ok] / app[ok])

    @staticmethod
    def _fit_share_between_users(rows: pd.DataFrame) -> dict[str, float]:
        """Per share, how far users' own rates (users of 50 events or more) are from their
        app's beyond binomial chance, as an intra-class correlation: the uncertainty of a rate
        a user new to the window borrows from its app (users of a mail app that only read are
        as usual as the app's data says they are)."""
        between = {}
        for name in SHARE_NAMES:
            _, _, k_hist, n_hist = share_parts(rows, name)
            p = _col(rows, f"{name}_app_rate")
            ok = np.isfinite(k_hist) & (n_hist >= 50) & np.isfinite(p) & (p > 0) & (p < 1)
            if ok.sum() < 20:
                between[name] = 1.0 / SHARE_PRIOR_EVENTS
                continue
            own, p, n = k_hist[ok] / n_hist[ok], p[ok], n_hist[ok]
            excess = np.mean((own - p) ** 2 - p * (1 - p) / n)
            between[name] = float(max(0.0, excess / np.mean(p * (1 - p))))
        return between

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
        mu = rare_expectation(rows, count, prior[count])
        if count in REVOCATION_LAG:
            mu = np.fmax(mu, revocation_lag(rows, count, prior))
        return mu

    @staticmethod
    def _observed(rows: pd.DataFrame, feature: str) -> np.ndarray:
        return _col(rows, feature.removesuffix("_trend"))

    # ------------------------------------------------------------ score

    def _evidence(self, rows: pd.DataFrame, kind: str) -> np.ndarray:
        """-log10 p per row and feature (columns in FEATURES order), rows of one kind."""
        out = np.zeros((len(rows), len(FEATURES)))
        h = np.maximum(_history_days(rows), 1.0)
        prior, spread = self.prior_[kind], self.spread_[kind]
        ratio = self._spread_ratio(rows, kind)
        for j, feature in enumerate(FEATURES):
            if kind != PARTNER_DAY and feature in _PARTNER_ONLY:
                continue
            if feature in SHARE_NAMES:
                k, n, _k_hist, n_hist = share_parts(rows, feature)
                p = _share_rate(rows, feature, prior)
                # the usual rate is itself estimated: from n_hist events, over h days; a user's
                # is its app's in part, as uncertain as users' rates differ from their apps'
                borrowed = SHARE_PRIOR_EVENTS / (np.nan_to_num(n_hist) + SHARE_PRIOR_EVENTS)
                if kind == APP_USER_DAY:
                    borrowed = borrowed * self.share_between_users_[feature]
                else:
                    borrowed = borrowed / SHARE_PRIOR_EVENTS
                rho = spread[feature] * (1 + 1 / h) + borrowed
                # a usual rate: the entity's own, or for a user new to the window its app's
                app_rate = _col(rows, f"{feature}_app_rate")
                has_rate = (_history_days(rows) > 0) | np.isfinite(app_rate)
                if feature in TIME_OF_DAY_SHARES:
                    has_rate &= ~cut_by_grant(rows)
                out[:, j] = np.where(has_rate, share_evidence(k, n, p, rho), 0.0)
            else:
                x = self._observed(rows, feature)
                mu = self._expectation(rows, feature, prior)
                # a level's spread: the kind's common part and the entity's own wander's
                slope = 0.0 if feature in RARE_COUNTS else self.own_slope_[kind][feature]
                core = spread[feature] + slope * ratio
                alpha = core * (1 + MEDIAN_VARIANCE / h) + MEDIAN_VARIANCE / (
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
        """The strongest feature's evidence, or the two strongest families' together where
        that is more (FAMILIES; by the tail of a sum of two independent -log10 p, and the
        pairs of families there are), plus a tenth of the next feature (a tie-break)."""
        ordered = -np.sort(-evidence, axis=1)
        second = ordered[:, 1] if evidence.shape[1] > 1 else 0.0
        best = np.stack([evidence[:, idx].max(axis=1) for idx in _FAMILY_INDEX], axis=1)
        best = -np.sort(-best, axis=1)
        both = best[:, 0] + best[:, 1]
        with np.errstate(all="ignore"):
            together = both - np.log10(1.0 + both * np.log(10.0)) - np.log10(_FAMILY_PAIRS)
        together = np.where(best[:, 1] > 0, together, 0.0)
        return np.maximum(ordered[:, 0], together) + 0.1 * second

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
    "reads": "calls were message reads",
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
    if feature in REVOCATION_LAG and 0 < row["mu"] <= row["lag"]:
        return f"{_number(row['x'])} {label}, usually {row['mu']:.2g} after the day's revocations"
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
            figures[feature] = {"k": k, "n": n, "p": _share_rate(X, feature, prior)}
        else:
            figures[feature] = {
                "x": model._observed(X, feature),
                "mu": model._expectation(X, feature, prior),
                "lag": revocation_lag(X, feature, prior),
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
