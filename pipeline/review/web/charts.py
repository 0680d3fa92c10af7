"""Server-rendered SVG charts: shapes with coordinates, classes and tooltips; the template draws
them. No JavaScript, nothing fetched: the page is complete as it is sent."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from pipeline.review.timeline import Grant, Timeline

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
TICK_STEPS = (
    HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    7 * DAY,
    14 * DAY,
    30 * DAY,
    91 * DAY,
    365 * DAY,
)
MAX_TICKS = 8
EPOCH = datetime(1970, 1, 5, tzinfo=UTC)  # a Monday: week ticks fall on Mondays
NEARBY = timedelta(days=30)  # partnership boundaries this close to the events are shown


@dataclass(frozen=True)
class Shape:
    """One SVG element: tag, CSS class, geometry attributes and a tooltip."""

    tag: str
    cls: str
    attrs: dict[str, str | float]
    title: str = ""
    label: str = ""  # text content (tag "text" only)


@dataclass(frozen=True)
class Chart:
    """An SVG drawing with its legend; `summary` is its accessible description."""

    width: int
    height: int
    shapes: list[Shape]
    legend: list[tuple[str, str]]  # (CSS class, label)
    summary: str
    counts: dict[str, int] = field(default_factory=dict)


def _fmt(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "open"


class TimeScale:
    """Maps instants of [lo, hi] onto [x0, x1] pixels."""

    def __init__(self, lo: datetime, hi: datetime, x0: float, x1: float) -> None:
        self.lo, self.hi, self.x0, self.x1 = lo, hi, x0, x1

    def x(self, moment: datetime) -> float:
        clamped = min(max(moment, self.lo), self.hi)
        share = (clamped - self.lo) / (self.hi - self.lo)
        return round(self.x0 + share * (self.x1 - self.x0), 1)

    def ticks(self) -> list[tuple[datetime, str]]:
        span = self.hi - self.lo
        step = next((s for s in TICK_STEPS if span / s <= MAX_TICKS), TICK_STEPS[-1])
        first = EPOCH + ((self.lo - EPOCH) // step + 1) * step
        form = "%Y-%m-%d" if step >= DAY else "%m-%d %H:%M"
        ticks = []
        moment = first
        while moment <= self.hi:
            ticks.append((moment, moment.strftime(form)))
            moment += step
        return ticks


MAX_ACCESS_LINES = 20  # more flagged accesses are marked by dots alone


def _domain(timeline: Timeline) -> tuple[datetime, datetime]:
    points = timeline.instants()
    if not points:
        points = [datetime(2000, 1, 1, tzinfo=UTC)]
    lo, hi = min(points), max(points)
    for period in timeline.periods:
        for edge in (period.start, period.end):
            if edge is not None and lo - NEARBY <= edge <= hi + NEARBY:
                lo, hi = min(lo, edge), max(hi, edge)
    pad = max((hi - lo) * 0.06, 2 * HOUR)
    return lo - pad, hi + pad


def timeline_chart(timeline: Timeline, width: int = 960) -> Chart:
    """Partnership periods, sign-in spans (to revoke, re-grant or TTL expiry), revocations and
    the flagged accesses on one time axis."""
    left, right = 120, width - 45
    rows = {"period": 34, "grant": 74, "access": 114}
    axis_y = 140
    lo, hi = _domain(timeline)
    scale = TimeScale(lo, hi, left, right)
    shapes: list[Shape] = [
        Shape("text", "tl-row-label", {"x": 8, "y": y + 4}, label=name)
        for name, y in (
            ("Partnership", rows["period"]),
            ("Sign-in", rows["grant"]),
            ("Access", rows["access"]),
        )
    ]
    shapes.append(Shape("line", "tl-axis", {"x1": left, "y1": axis_y, "x2": right, "y2": axis_y}))
    for moment, label in scale.ticks():
        x = scale.x(moment)
        shapes.append(Shape("line", "tl-grid", {"x1": x, "y1": 16, "x2": x, "y2": axis_y + 4}))
        shapes.append(
            Shape("text", "tl-tick", {"x": x, "y": axis_y + 18, "text-anchor": "middle"}, "", label)
        )
    for period in timeline.periods:
        if (period.end is not None and period.end <= lo) or period.start >= hi:
            continue
        x0, x1 = scale.x(period.start), scale.x(period.end or hi)
        shapes.append(
            Shape(
                "rect",
                "tl-period",
                {"x": x0, "y": rows["period"] - 9, "width": max(x1 - x0, 2), "height": 18},
                f"Partnership period {_fmt(period.start)} → {_fmt(period.end)}; "
                f"scopes: {' '.join(period.scopes) or '(none)'}",
            )
        )
    for grant in timeline.grants:
        _grant_shapes(grant, scale, rows["grant"], hi, timeline.ttl_days, shapes)
    for moment in timeline.revocations:
        x = scale.x(moment)
        y = rows["grant"]
        shapes.append(
            Shape(
                "path",
                "tl-revoke",
                {"d": f"M{x - 6},{y - 14} L{x + 6},{y - 14} L{x},{y - 3} Z M{x},{y - 3} V{y + 12}"},
                f"Revoked {_fmt(moment)}",
            )
        )
    accesses = timeline.access_times
    for moment in accesses:
        x = scale.x(moment)
        if len(accesses) <= MAX_ACCESS_LINES:
            shapes.append(
                Shape("line", "tl-access-line", {"x1": x, "y1": 16, "x2": x, "y2": axis_y})
            )
        shapes.append(
            Shape(
                "circle",
                "tl-access",
                {"cx": x, "cy": rows["access"], "r": 7 if len(accesses) <= MAX_ACCESS_LINES else 4},
                f"Flagged access {_fmt(moment)}",
            )
        )
    counts = {
        "periods": sum(s.cls == "tl-period" for s in shapes),
        "grants": sum(s.cls == "tl-grant" for s in shapes),
        "revocations": sum(s.cls == "tl-revoke" for s in shapes),
        "expiries": sum(s.cls == "tl-expiry" for s in shapes),
        "accesses": len(accesses),
    }
    summary = (
        f"Timeline of user {timeline.user_id} and app {timeline.app_id}: "
        f"{counts['periods']} partnership period(s), {counts['grants']} sign-in(s), "
        f"{counts['revocations']} revocation(s), {counts['expiries']} TTL expiry(ies)"
        + (
            f", {len(accesses)} flagged access(es) from {_fmt(accesses[0])} to {_fmt(accesses[-1])}"
            if accesses
            else ""
        )
    )
    legend = [
        ("tl-period", "partnership period"),
        ("tl-grant", "sign-in valid"),
        ("tl-lapsed", "after TTL expiry"),
        ("tl-expiry", "TTL expiry"),
        ("tl-revoke", "revocation"),
        ("tl-access", "flagged access"),
    ]
    return Chart(width, axis_y + 30, shapes, legend, summary, counts)


def _grant_shapes(
    grant: Grant,
    scale: TimeScale,
    y: int,
    hi: datetime,
    ttl_days: float | None,
    shapes: list[Shape],
) -> None:
    scopes = "every scope" if grant.scopes is None else (" ".join(grant.scopes) or "no scope")
    until = grant.valid_until
    x0, x1 = scale.x(grant.start), scale.x(until or hi)
    ttl = f"; TTL {ttl_days:g} days" if ttl_days is not None else ""
    shapes.append(
        Shape(
            "rect",
            "tl-grant",
            {"x": x0, "y": y - 7, "width": max(x1 - x0, 2), "height": 14},
            f"Signed in {_fmt(grant.start)}, valid until {_fmt(until)}; scopes: {scopes}{ttl}",
        )
    )
    if grant.expired_first and grant.expires_at is not None:
        lapsed_end = scale.x(grant.ended_at or hi)
        if lapsed_end > x1:
            shapes.append(
                Shape(
                    "rect",
                    "tl-lapsed",
                    {"x": x1, "y": y - 4, "width": lapsed_end - x1, "height": 8},
                    f"Expired {_fmt(grant.expires_at)}: no new sign-in until "
                    f"{_fmt(grant.ended_at)}",
                )
            )
        shapes.append(
            Shape(
                "path",
                "tl-expiry",
                {"d": f"M{x1},{y - 10} L{x1 + 7},{y} L{x1},{y + 10} L{x1 - 7},{y} Z"},
                f"TTL expiry {_fmt(grant.expires_at)}",
            )
        )


# Distinct, colour-blind-friendly fills per rule (the stylesheet holds the colours).
RULE_CLASSES = {
    "UNKNOWN_APP": "r0",
    "AFTER_PARTNERSHIP_END": "r1",
    "BEFORE_PARTNERSHIP_START": "r2",
    "SCOPE_NOT_IN_PARTNERSHIP": "r3",
    "NO_SIGNIN": "r4",
    "SIGNIN_REVOKED": "r5",
    "SIGNIN_EXPIRED": "r6",
    "SCOPE_NOT_GRANTED": "r7",
    "partner_day": "r8",
    "app_user_day": "r8",
}


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least `value`."""
    return min(
        step * 10**power for power in range(12) for step in (1, 2, 5) if step * 10**power >= value
    )


def hour_chart(by_hour: Sequence[int], width: int = 960) -> Chart:
    """An alert's flags by hour of the day (UTC) as 24 bars."""
    left, right, top, bottom = 50, width - 20, 12, 150
    counts = list(by_hour)[:24] + [0] * max(0, 24 - len(by_hour))
    peak = _nice_ceiling(max(*counts, 1))
    slot = (right - left) / 24
    shapes: list[Shape] = []
    for fraction in (0, 0.5, 1):
        y = round(bottom - fraction * (bottom - top), 1)
        shapes.append(Shape("line", "bar-grid", {"x1": left, "y1": y, "x2": right, "y2": y}))
        shapes.append(
            Shape(
                "text",
                "bar-tick",
                {"x": left - 6, "y": y + 4, "text-anchor": "end"},
                label=f"{peak * fraction:g}",
            )
        )
    for hour, n in enumerate(counts):
        height = n / peak * (bottom - top)
        x = round(left + hour * slot + slot * 0.1, 1)
        shapes.append(
            Shape(
                "rect",
                "bar r1",
                {"x": x, "y": round(bottom - height, 1), "width": round(slot * 0.8, 1),
                 "height": round(height, 1)},
                f"{hour:02}:00–{hour:02}:59 UTC: {n:,} flags",
            )
        )  # fmt: skip
        if hour % 3 == 0:
            shapes.append(
                Shape(
                    "text",
                    "bar-tick",
                    {"x": round(x + slot * 0.4, 1), "y": bottom + 16, "text-anchor": "middle"},
                    label=f"{hour:02}h",
                )
            )
    busiest = counts.index(max(counts))
    summary = f"{sum(counts):,} flags by hour of the day (UTC), most in hour {busiest:02}"
    return Chart(width, bottom + 30, shapes, [], summary, {"flags": sum(counts)})


def rule_counts_chart(counts: Sequence[tuple[date, str, int]], width: int = 960) -> Chart:
    """Flags by rule per day as stacked bars, one bar per day of the range."""
    left, right, top, bottom = 50, width - 20, 12, 190
    per_day: dict[date, dict[str, int]] = defaultdict(dict)
    for day, rule, n in counts:
        per_day[day][rule] = per_day[day].get(rule, 0) + n
    shapes: list[Shape] = []
    if not per_day:
        return Chart(width, bottom + 30, shapes, [], "No alerts for this partner", {})
    first, last = min(per_day), max(per_day)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    peak = _nice_ceiling(max(sum(v.values()) for v in per_day.values()))
    slot = (right - left) / len(days)
    bar = max(min(slot * 0.8, 40), 1)
    for fraction in (0, 0.5, 1):
        y = round(bottom - fraction * (bottom - top), 1)
        shapes.append(Shape("line", "bar-grid", {"x1": left, "y1": y, "x2": right, "y2": y}))
        shapes.append(
            Shape(
                "text",
                "bar-tick",
                {"x": left - 6, "y": y + 4, "text-anchor": "end"},
                label=f"{peak * fraction:g}",
            )
        )
    label_every = max(1, len(days) // 10)
    order = list(RULE_CLASSES)

    def rule_order(rule: str) -> int:
        return order.index(rule) if rule in order else len(order)

    for i, day in enumerate(days):
        x = round(left + i * slot + (slot - bar) / 2, 1)
        y = float(bottom)
        for rule in sorted(per_day.get(day, {}), key=rule_order):
            n = per_day[day][rule]
            height = n / peak * (bottom - top)
            y -= height
            shapes.append(
                Shape(
                    "rect",
                    f"bar {RULE_CLASSES.get(rule, 'r8')}",
                    {"x": x, "y": round(y, 1), "width": round(bar, 1), "height": round(height, 1)},
                    f"{day}: {n} {rule}",
                )
            )
        if i % label_every == 0:
            shapes.append(
                Shape(
                    "text",
                    "bar-tick",
                    {"x": round(x + bar / 2, 1), "y": bottom + 16, "text-anchor": "middle"},
                    label=day.strftime("%m-%d"),
                )
            )
    rules_present = sorted({rule for v in per_day.values() for rule in v}, key=rule_order)
    legend = [(f"bar {RULE_CLASSES.get(rule, 'r8')}", rule) for rule in rules_present]
    total = sum(sum(v.values()) for v in per_day.values())
    summary = f"{total} flags by rule per day, {first} to {last}"
    return Chart(width, bottom + 30, shapes, legend, summary, {"days": len(days)})
