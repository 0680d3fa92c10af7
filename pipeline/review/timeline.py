"""What a reviewer needs to see around one access: the user's sign-ins to the app (grants,
revocations, TTL expiries) and the app's partnership periods, from the warehouse and registry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pipeline.config import Settings

MAX_CONSENT_EVENTS = 1000  # the newest ones; more would not fit a chart anyway


@dataclass(frozen=True)
class Period:
    """A partnership period of the app: [start, end), end None while ongoing."""

    start: datetime
    end: datetime | None
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class Grant:
    """One sign-in: valid from `start` until the next consent event or its TTL expiry."""

    start: datetime
    scopes: tuple[str, ...] | None  # None: every scope
    ended_at: datetime | None  # the next grant or revoke of the same user and app
    expires_at: datetime | None  # start + the app's TTL, when it has one

    @property
    def expired_first(self) -> bool:
        """The TTL ran out before anything else ended the grant."""
        return self.expires_at is not None and (
            self.ended_at is None or self.expires_at < self.ended_at
        )

    @property
    def valid_until(self) -> datetime | None:
        return self.expires_at if self.expired_first else self.ended_at


@dataclass(frozen=True)
class Timeline:
    """The consent history of a user and app (delivered up to the alert's day), its partnership
    periods and the user's flagged accesses of the alert."""

    user_id: str
    app_id: str
    access_times: tuple[datetime, ...]
    grants: tuple[Grant, ...]
    revocations: tuple[datetime, ...]
    periods: tuple[Period, ...]
    ttl_days: float | None
    registered: bool  # the app is in the registry

    def instants(self) -> list[datetime]:
        """Every instant the chart must show."""
        points = [g.start for g in self.grants] + list(self.revocations)
        points += [g.expires_at for g in self.grants if g.expired_first and g.expires_at]
        return points + list(self.access_times)


def grants_from_events(
    events: list[tuple[datetime, str, tuple[str, ...] | None]], ttl_days: float | None
) -> tuple[tuple[Grant, ...], tuple[datetime, ...]]:
    """Consent events (time, grant|revoke, scopes) → grants with their ends, and revocations.

    Ordered as the rules order them (SPEC §3): by time, a grant before a revoke at equal times.
    """
    ordered = sorted(events, key=lambda e: (e[0], e[1] != "grant"))
    ttl = _ttl(ttl_days)
    grants: list[Grant] = []
    revocations: list[datetime] = []
    for i, (time, kind, scopes) in enumerate(ordered):
        if kind == "revoke":
            revocations.append(time)
            continue
        following = ordered[i + 1][0] if i + 1 < len(ordered) else None
        expires = _expiry(time, ttl)
        grants.append(Grant(time, scopes, following, expires))
    return tuple(grants), tuple(revocations)


def _ttl(ttl_days: float | None) -> timedelta | None:
    try:
        return timedelta(days=ttl_days) if ttl_days is not None else None
    except OverflowError:  # a TTL of millions of years: as good as none
        return None


def _expiry(granted: datetime, ttl: timedelta | None) -> datetime | None:
    """When a grant expires; None without a TTL or beyond the calendar (year 9999)."""
    try:
        return granted + ttl if ttl is not None else None
    except OverflowError:
        return None


def _consent_events(
    settings: Settings, day: date, user_id: str, app_id: str
) -> list[tuple[datetime, str, tuple[str, ...] | None]]:
    import pyarrow.dataset as ds

    from pipeline.warehouse import Warehouse

    warehouse = Warehouse(settings.warehouse, settings)
    days = [d for d in warehouse.partition_days("consent") if d <= day]
    if not days:
        return []
    dataset = warehouse.dataset("consent", days)
    # Values go into a pyarrow expression, never into query text.
    matching = (ds.field("user_id") == user_id) & (ds.field("app_id") == app_id)
    table = dataset.to_table(columns=["event_time", "event_type", "scopes"], filter=matching)
    if table.num_rows > MAX_CONSENT_EVENTS:
        table = table.sort_by([("event_time", "descending")]).slice(0, MAX_CONSENT_EVENTS)
    return [
        (row["event_time"], row["event_type"], _scopes(row["scopes"])) for row in table.to_pylist()
    ]


def _scopes(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _periods(settings: Settings, app_id: str) -> tuple[tuple[Period, ...], float | None, bool]:
    import pyarrow.compute as pc

    from pipeline.detect.registry import load_registry
    from pipeline.readers.landing import Landing

    registry, _ = load_registry(Landing(settings.landing, settings))
    rows = registry.filter(pc.equal(registry["app_id"], app_id)).to_pylist()
    periods = tuple(
        Period(row["period_start"], row["period_end"], tuple(row["period_scopes"]))
        for row in sorted(rows, key=lambda r: r["period_start"])
    )
    ttl = rows[0]["grant_ttl_days"] if rows else None
    return periods, ttl, bool(rows)


def timeline_for(
    settings: Settings, day: date, user_id: str, app_id: str, access_times: Sequence[datetime]
) -> Timeline:
    """The timeline of `user_id` and `app_id` as the run of `day` saw it, with the flagged
    accesses marked."""
    periods, ttl, registered = _periods(settings, app_id)
    grants, revocations = grants_from_events(_consent_events(settings, day, user_id, app_id), ttl)
    return Timeline(
        user_id=user_id,
        app_id=app_id,
        access_times=tuple(sorted(t.astimezone(UTC) for t in access_times)),
        grants=grants,
        revocations=revocations,
        periods=periods,
        ttl_days=ttl,
        registered=registered,
    )
