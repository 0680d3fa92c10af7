"""Literal relative-feature rows for the model's tests: an entity-day with its history, by hand."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

DAY = date(2026, 3, 10)


def row(partner: str, day: date = DAY, kind: str = "partner_day", **figures: float) -> dict:
    """A partner-day (or app-user-day) as usual: 200 calls a day for 21 days, 1% deletes, 2%
    night, no new anything; `figures` override today's counts and their history."""
    usual = {
        "calls": 200.0, "message_reads": 150.0, "message_writes": 40.0, "message_deletes": 2.0,
        "distinct_users": 30.0, "message_accesses": 192.0, "night_accesses": 4.0,
        "failed_calls": 2.0, "dormant_users": 1.0, "revoked_users": 0.0, "revoked_reads": 0.0,
        "flagged_accesses": 0.0,
        "new_users": 0.0, "revokes": 0.0, "new_ips": 0.0, "new_networks": 0.0, "new_scopes": 0.0,
        "new_ip_calls": 0.0, "new_network_calls": 0.0, "new_scope_calls": 0.0,
    }  # fmt: skip
    h = figures.pop("history_days", 21)
    user = "u1" if kind == "app_user_day" else None
    out: dict = {"day": day, "entity_kind": kind, "partner_id": partner, "app_id": None,
                 "user_id": user, "history_days": h}  # fmt: skip
    for name, value in usual.items():
        out[name] = value
    for name in ("calls", "message_reads", "message_writes", "message_deletes", "distinct_users"):
        out[f"{name}_baseline"] = figures.pop(f"{name}_baseline", usual[name])
        out[f"{name}_app_user_median"] = np.nan
    shares = {"night_accesses": "message_accesses", "message_deletes": "message_accesses",
              "message_reads": "calls",
              "failed_calls": "calls", "dormant_users": "distinct_users",
              "revoked_users": "distinct_users", "flagged_accesses": "message_accesses",
              "new_ip_calls": "calls", "new_network_calls": "calls",
              "new_scope_calls": "calls"}  # fmt: skip
    for count, total in shares.items():
        out[f"{count}_hist"] = figures.pop(f"{count}_hist", usual[count] * h)
        out[f"{count}_of_hist"] = figures.pop(f"{count}_of_hist", usual[total] * h)
    for rare in ("new_users", "revokes", "revoked_reads", "new_ips", "new_networks", "new_scopes"):
        out[f"{rare}_hist_mean"] = figures.pop(f"{rare}_hist_mean", 0.05)
    early = figures.pop("calls_early_median", out["calls_baseline"])  # the level held
    out["calls_early_median"], out["sustained_days"] = early, 4
    # 17 days before the last ones, with a little spread of their own beyond Poisson's
    spread = figures.pop("calls_early_sd", np.sqrt(early + 0.05 * early**2))
    out["calls_early_iqr"] = 1.349 * spread  # a normal's quartiles
    out["early_days"] = figures.pop("early_days", 17)
    out.update(figures)
    # the last 3 days as usual unless given: each at most today's
    out.setdefault("calls_sustained", out["calls"] + 3 * min(out["calls"], early))
    return out


def training_frame(
    partners: int = 40,
    days: int = 14,
    seed: int = 0,
    spreads: tuple[float, ...] = (0.05,),
    early_days_tell: bool = True,
) -> pd.DataFrame:
    """Usual days of `partners` partners: Poisson counts around their usual levels, calls
    over-dispersed by `spreads` (taken in turn by the partners), as the rows' early days say;
    with `early_days_tell` false, the early days' spread is another partner's (it says nothing)."""
    rng = np.random.default_rng(seed)
    rows = []
    turn = len(spreads)
    for d in range(days):
        for p in range(partners):
            spread = told = spreads[p % turn]
            if not early_days_tell:  # uncorrelated with its own: every pair of spreads occurs
                told = spreads[(p // turn) % turn]
            level = 200 * (rng.gamma(1 / spread, spread) if spread > 0 else 1.0)
            calls = rng.poisson(level)
            before = np.minimum(rng.poisson(200, 3), calls).sum()
            deletes = rng.poisson(2)
            rows.append(
                row(
                    f"P{p:02d}",
                    DAY - timedelta(days - d),
                    calls=calls,
                    message_reads=rng.binomial(calls, 0.75),
                    message_writes=rng.poisson(40),
                    message_deletes=deletes,
                    message_accesses=calls - 8,
                    distinct_users=rng.poisson(30),
                    night_accesses=rng.poisson(4),
                    failed_calls=rng.poisson(2),
                    dormant_users=rng.poisson(1),
                    new_users=rng.poisson(0.05),
                    revokes=rng.poisson(0.05),
                    new_ips=rng.poisson(0.05),
                    calls_sustained=calls + before,
                    calls_early_sd=np.sqrt(200 + told * 200**2),
                )
            )
    return pd.DataFrame(rows)
