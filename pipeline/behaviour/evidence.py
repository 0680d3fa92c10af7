"""How far beyond chance a count or a share is: upper-tail probabilities, as -log10 p.

A count against its expected level is negative binomial (Poisson with extra day-to-day spread
`alpha`: variance mu + alpha mu^2); a share, k of n against a usual rate p, is beta-binomial
(intra-day correlation `rho`: variance n p (1 - p) (1 + (n - 1) rho)). Only rises are evidence:
a partner doing less than usual is not what a security reviewer is asked to look at.

scipy's logsf reaches -inf far out in the tail (2,104 of 2,110 where 1% is usual), which would
tie every strong change, and before that its rounding (1 - cdf) stalls near 1e-13; there the
tail is also bounded by its first term and the geometric run of the pmf's ratio,
log P(X >= x) ~ log pmf(x) - log(1 - pmf(x + 1) / pmf(x)), which keeps order.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

LN10 = np.log(10.0)
FAR_LOG_SF = 10.0  # beyond P ~ 5e-5 the geometric bound is weighed beside logsf
MAX_EVIDENCE = 1e6  # -log10 p beyond any real change; only to keep the arithmetic finite


def _tail(dist: stats.rv_discrete, x: np.ndarray, *args: np.ndarray) -> np.ndarray:
    """-log10 P(X >= x), finite even where logsf underflows."""
    with np.errstate(all="ignore"):
        log_sf = dist.logsf(x - 1, *args)
        far = ~np.isfinite(log_sf) | (log_sf < -FAR_LOG_SF)
        if far.any():
            sub = [a[far] if np.ndim(a) else a for a in args]
            first = dist.logpmf(x[far], *sub)
            ratio = np.exp(dist.logpmf(x[far] + 1, *sub) - first)
            bound = first - np.log1p(-np.clip(ratio, 0.0, 1 - 1e-12))
            bound = np.where(np.isfinite(bound), bound, -MAX_EVIDENCE * LN10)
            exact = log_sf[far]
            log_sf = log_sf.copy()
            # both are at least the true tail: the smaller is the nearer (logsf's own rounding
            # leaves ~1e-13 where the tail is far smaller, 669 of 669 at 3.5%)
            log_sf[far] = np.where(np.isfinite(exact), np.minimum(exact, bound), bound)
    return np.clip(-log_sf / LN10, 0.0, MAX_EVIDENCE)


def count_evidence(x: np.ndarray, mu: np.ndarray, alpha: np.ndarray | float) -> np.ndarray:
    """-log10 P(X >= x) for X negative binomial of mean mu, variance mu + alpha mu^2 (Poisson at
    alpha 0); 0 where x is not above mu or mu is unknown."""
    x, mu = np.asarray(x, dtype=np.float64), np.asarray(mu, dtype=np.float64)
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), x.shape)
    out = np.zeros(x.shape)
    rises = np.isfinite(mu) & np.isfinite(x) & (x > mu)
    if not rises.any():
        return out
    xs, ms, al = np.round(x[rises]), np.maximum(mu[rises], 1e-3), np.maximum(alpha[rises], 1e-9)
    size = 1.0 / al
    out[rises] = _tail(stats.nbinom, xs, size, size / (size + ms))
    return out


def share_evidence(
    k: np.ndarray, n: np.ndarray, p: np.ndarray, rho: np.ndarray | float
) -> np.ndarray:
    """-log10 P(K >= k) for K beta-binomial of n trials, mean rate p and intra-class correlation
    rho; 0 where k / n is not above p, or n or p is unknown."""
    k, n = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    k = np.minimum(k, n)  # a count of more than all is all (no certainty beyond "every one")
    p = np.asarray(p, dtype=np.float64)
    rho = np.broadcast_to(np.asarray(rho, dtype=np.float64), k.shape)
    out = np.zeros(k.shape)
    rises = np.isfinite(k) & np.isfinite(n) & np.isfinite(p) & (n >= 1) & (k > n * p)
    if not rises.any():
        return out
    ps = np.clip(p[rises], 1e-6, 1 - 1e-6)
    concentration = 1.0 / np.clip(rho[rises], 1e-9, 0.999) - 1.0
    a, b = ps * concentration, (1 - ps) * concentration
    out[rises] = _tail(stats.betabinom, np.round(k[rises]), np.round(n[rises]), a, b)
    return out


TRIM = 0.001  # the most extreme rows a training window holds are capped in its spread


def _row_excess(
    residual_sq: np.ndarray,
    base_var: np.ndarray,
    extra_var: np.ndarray,
    rises: np.ndarray | None,
    trim: float,
    *others: np.ndarray,
) -> tuple[np.ndarray, ...] | None:
    """Per usable row, its variance beyond `base_var` (capped, rises only where given: see
    fit_spread), its `extra_var` and the `others` columns; None with fewer than 10 rows."""
    ok = np.isfinite(residual_sq) & np.isfinite(base_var) & np.isfinite(extra_var)
    for column in others:
        ok &= np.isfinite(column)
    residual_sq, base_var, extra_var = residual_sq[ok], base_var[ok], extra_var[ok]
    weight = np.ones(len(residual_sq))
    if rises is not None:
        rises = rises[ok]
        residual_sq = np.where(rises, residual_sq, 0.0)
        weight = np.where(rises, 2.0, 0.0)
    if len(residual_sq) < 10 or extra_var.sum() <= 0:
        return None
    # each row's square is capped at the TRIM quantile of the standardised ones: how often the
    # tail is reached counts in full, how far one row goes does not
    scale = np.maximum(base_var + extra_var * 0.01, 1e-12)
    cap = np.quantile(residual_sq / scale, 1 - trim) * scale
    excess = weight * np.minimum(residual_sq, cap) - base_var
    return (excess, extra_var, *(column[ok] for column in others))


def fit_spread(
    residual_sq: np.ndarray,
    base_var: np.ndarray,
    extra_var: np.ndarray,
    rises: np.ndarray | None = None,
    trim: float = TRIM,
) -> float:
    """Method-of-moments over-dispersion s in var = base + s * extra, over training rows.

    With `rises` (a mask), only the rows above their expectation count, twice (a symmetric
    spread puts half its mass there): drops such as weekends do not widen the spread of rises,
    which are all that is scored. Without, every row counts (rare counts and shares, whose
    rises are the whole story). The top `trim` of standardised residuals is left out: a window's
    own anomalies should not teach the model how far anomalies go (rare counts keep theirs: a
    rare event's clusters, a revoked token's last few reads, are all there is to learn from).
    Means, not medians, of the squares: the tails are what the false alerts come from."""
    rows = _row_excess(residual_sq, base_var, extra_var, rises, trim)
    if rows is None:
        return 0.0
    excess, extra = rows
    return float(max(0.0, excess.sum() / extra.sum()))


def fit_spread_by(
    residual_sq: np.ndarray,
    base_var: np.ndarray,
    extra_var: np.ndarray,
    covariate: np.ndarray,
    rises: np.ndarray | None = None,
    trim: float = TRIM,
) -> tuple[float, float]:
    """fit_spread with a row's spread a + b * covariate, (a, b) both >= 0: by least squares of
    each row's excess over its extra variance, weighted by it (a single spread so fitted is
    fit_spread's). How much an entity's own measured wander says of its tails is the data's to
    say: none where every entity's rare big days are alike whatever its usual wander."""
    rows = _row_excess(residual_sq, base_var, extra_var, rises, trim, covariate)
    if rows is None:
        return 0.0, 0.0
    # a row's excess over its weight w (its extra variance) is its own spread: the weighted
    # normal equations, written with the excess itself
    excess, w, c = rows
    mean = float(excess.sum() / w.sum())
    c_mean = float((w * c).sum() / w.sum())
    c_var = float((w * (c - c_mean) ** 2).sum())
    slope = float(((c - c_mean) * excess).sum() / c_var) if c_var > 0 else 0.0
    if slope <= 0:
        return max(0.0, mean), 0.0
    common = mean - slope * c_mean
    if common < 0:  # through the origin
        return 0.0, float(max(0.0, (c * excess).sum() / (w * c * c).sum()))
    return common, slope
