#!/usr/bin/env python3
"""Deterministic generator of the demo landing zone `sample_logs/` (SPEC.md §2).

    python tools/make_sample_logs.py [--out sample_logs] [--seed 7]

Stdlib only; the same seed gives byte-identical output (seeded RNGs, no wall clock, gzip mtime 0).
The data tells the story in `sample_logs/README.md` (written by this script from the same tables).

Layout of the code, so later issues can add behaviours:
  1. the registry (PARTNERS) and per-app consent plans (CONSENT_PLANS),
  2. consent behaviours (CONSENT_BEHAVIOURS): functions that add sign-ins and revokes to the World,
  3. access behaviours (ACCESS_BEHAVIOURS): one function per partner behaviour and day; every event
     carries the name of the behaviour that made it (`Access.behaviour`, never written to the logs),
  3b. injected behavioural anomalies (ANOMALY_CONSENT_BEHAVIOURS, ANOMALY_BEHAVIOURS, names starting
     with `anomaly_`): covered by consent and partnership, so no rule names them; each records its
     ground truth (`World.anomalies`, written to `anomalies.csv`),
  4. delivery (late and just-before-midnight events), rendering (time formats, explicit fields or
     method + path, query strings with fake secrets), malformed records, duplicates, and writing.
Each behaviour draws from its own RNG, keyed by (seed, behaviour, day): adding a behaviour does not
change what the others produce. The anomalies run after every ordinary behaviour and are rendered
with their own RNG, after the day's other lines: every line the ordinary behaviours write is the
same with or without them (their lines are inserted in time order).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
import shutil
import statistics
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

FIRST_DAY = date(2026, 3, 1)
LAST_DAY = date(2026, 3, 14)
N_USERS = 4000
USERS = tuple(f"u{n:05d}" for n in range(1, N_USERS + 1))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
HISTORY_FILE = "history-export"  # consent events before FIRST_DAY, delivered on FIRST_DAY

Scopes = tuple[str, ...] | None  # None: the grant covers every scope
Scope = tuple[str, str]  # (resource, action)

# --------------------------------------------------------------------------------------------------
# 1. Registry and consent plans
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """One row of partners.csv: one app and one partnership period, written as given."""

    partner_id: str
    partner_name: str
    app_id: str
    start: str
    end: str
    scopes: str
    grant_ttl_days: str = ""


TUNELY_SCOPES = "messages.read messages.write messages.delete profile.read contacts.read"
PARTNERS: tuple[Period, ...] = (
    Period("P001", "Tunely Music", "tunely-ios", "2024-01-15", "", TUNELY_SCOPES),
    Period("P001", "Tunely Music", "tunely-android", "2024-02-01T00:00:00Z", "", TUNELY_SCOPES),
    Period(
        "P002",
        "Streamflix",
        "streamflix-tv",
        "2023-06-01",
        "2026-03-08T12:00:00Z",
        "messages.read profile.read",
    ),
    Period(
        "P003",
        "Orbit Devices",
        "orbit-sync",
        "2025-06-01T00:00:00Z",
        "",
        "contacts.read contacts.write profile.read messages.read",
    ),
    Period(
        "P004",
        "QuickReply Labs",
        "quickreply-assist",
        "2025-09-01",
        "",
        "messages.read messages.write profile.read",
    ),
    Period(
        "P005",
        "Insightly Analytics",
        "insightly-crawler",
        "2025-11-01",
        "",
        "messages.read profile.read",
    ),
    Period(
        "P006",
        "Gamebox Studios",
        "gamebox-chat",
        "2025-03-01",
        "2026-03-04",
        "messages.read messages.write messages.delete profile.read",
    ),
    Period(
        "P006",
        "Gamebox Studios",
        "gamebox-chat",
        "2026-03-09",
        "",
        "messages.read messages.write profile.read",
    ),
    Period(
        "P007",
        "Calendo",
        "calendo-assistant",
        "2025-10-01T00:00:00Z",
        "",
        "messages.read events.read events.write profile.read",
        "7",
    ),
    Period(
        "P008",
        "Lingo Translate",
        "lingo-translate",
        "2026-03-10T10:00:00+01:00",
        "",
        "messages.read messages.write profile.read",
    ),
)
UNREGISTERED_APPS = ("shadowsync-web", "Tunely-iOS")  # in the access logs, not in partners.csv


@dataclass(frozen=True)
class ConsentPlan:
    """How users of one app sign in and out: history population and daily rates."""

    app_id: str
    population: int  # users with a grant in the history export
    scope_mix: tuple[tuple[Scopes, float], ...]
    signins: int  # new sign-ins a day (only while a partnership period covers the day)
    resignins: int  # signed-in users signing in again a day (new grant replaces the scopes)
    revokes: int  # revokes a day
    revoked_share: float = 0.03  # history users whose last event is a revoke
    zombie_share: float = 0.0  # revoking users whose token the app keeps using


TUNELY_FULL = ("messages.read", "messages.write", "messages.delete", "profile.read")
TUNELY_READ_ONLY = ("messages.read", "profile.read")
TUNELY_MIX: tuple[tuple[Scopes, float], ...] = (
    (None, 0.70),
    (TUNELY_FULL, 0.14),
    (TUNELY_READ_ONLY, 0.11),
    ((), 0.05),
)
CONSENT_PLANS: tuple[ConsentPlan, ...] = (
    ConsentPlan("tunely-ios", 1100, TUNELY_MIX, 40, 15, 6),
    ConsentPlan("tunely-android", 800, TUNELY_MIX, 35, 12, 5),
    ConsentPlan(
        "streamflix-tv", 500, ((None, 0.3), (("messages.read", "profile.read"), 0.7)), 8, 3, 3
    ),
    ConsentPlan(
        "orbit-sync",
        700,
        ((None, 0.35), (("contacts.read", "contacts.write", "profile.read"), 0.65)),
        15,
        6,
        2,
    ),
    ConsentPlan(
        "quickreply-assist", 350, ((None, 1.0),), 6, 2, 6, revoked_share=0.08, zombie_share=0.35
    ),
    ConsentPlan("gamebox-chat", 400, ((None, 0.85), (TUNELY_FULL, 0.15)), 8, 3, 2),
    ConsentPlan("lingo-translate", 0, ((None, 1.0),), 20, 1, 1),
)
CALENDO = "calendo-assistant"
CALENDO_MIX: tuple[tuple[Scopes, float], ...] = (
    (None, 0.8),
    (("messages.read", "events.read", "events.write"), 0.2),
)

# --------------------------------------------------------------------------------------------------
# The world: consent and access events as the generator means them (before rendering)
# --------------------------------------------------------------------------------------------------


@dataclass
class Consent:
    """One consent event."""

    event_id: str
    time: datetime
    user_id: str
    app_id: str
    event_type: str  # grant | revoke
    scopes: Scopes = None
    delivery: date = FIRST_DAY
    behaviour: str = ""

    def covers(self, resource: str, action: str) -> bool:
        """Whether this grant allows `resource.action`."""
        return self.scopes is None or f"{resource}.{action}" in self.scopes


@dataclass
class Access:
    """One access event; `behaviour` names the function that made it (ground truth, not logged)."""

    request_id: str
    time: datetime
    app_id: str
    user_id: str
    resource: str
    action: str
    status: int
    behaviour: str
    ip: str | None = None
    user_agent: str | None = None
    thread_id: str | None = None
    delivery: date = FIRST_DAY
    time_style: str | None = None  # forced rendering (boundary probes)


@dataclass
class Pool:
    """Users of one app by their consent state at the start of a day, as the pipeline sees it.

    `busy` users have a consent event during the day (or a grant expiring during it); behaviours
    leave them alone so that every event's intended outcome is unambiguous.
    """

    active: list[tuple[str, Consent]] = field(default_factory=list)
    expired: list[tuple[str, Consent]] = field(default_factory=list)
    revoked: list[tuple[str, Consent]] = field(default_factory=list)
    busy: set[str] = field(default_factory=set)
    known: set[str] = field(default_factory=set)  # users with any consent event for the app

    def covering(self, resource: str, action: str) -> list[tuple[str, Consent]]:
        """Active users whose grant allows the scope."""
        return [(u, g) for u, g in self.active if g.covers(resource, action)]


def midnight(day: date) -> datetime:
    """00:00Z of a day."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def days() -> Iterator[date]:
    """The delivery days of the demo."""
    day = FIRST_DAY
    while day <= LAST_DAY:
        yield day
        day += DAY


def parse_bound(text: str, *, end: bool) -> datetime | None:
    """A partners.csv start/end as an instant (a date end covers its whole day)."""
    if not text:
        return None
    if len(text) == 10:
        start = midnight(date.fromisoformat(text))
        return start + DAY if end else start
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def period_bounds(app_id: str) -> list[tuple[datetime, datetime | None]]:
    """The [start, end) spans of an app's partnership periods."""
    spans = []
    for p in PARTNERS:
        if p.app_id == app_id:
            start = parse_bound(p.start, end=False)
            assert start is not None
            spans.append((start, parse_bound(p.end, end=True)))
    return spans


def covered(app_id: str, t: datetime) -> bool:
    """Whether some partnership period of the app covers instant t."""
    return any(s <= t and (e is None or t < e) for s, e in period_bounds(app_id))


STREAMFLIX_END = period_bounds("streamflix-tv")[0][1]
GAMEBOX_GAP = (period_bounds("gamebox-chat")[0][1], period_bounds("gamebox-chat")[1][0])
LINGO_START = period_bounds("lingo-translate")[0][0]
assert STREAMFLIX_END is not None and GAMEBOX_GAP[0] is not None


def grant_ttl(app_id: str) -> timedelta | None:
    """The app's grant TTL from the registry."""
    ttls = {p.grant_ttl_days for p in PARTNERS if p.app_id == app_id}
    assert len(ttls) <= 1, app_id
    ttl = next(iter(ttls), "")
    return timedelta(days=float(ttl)) if ttl else None


class World:
    """Everything generated so far, plus seeded RNGs and a few stable per-user attributes."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.consents: list[Consent] = []
        self.by_app: dict[str, dict[str, list[Consent]]] = defaultdict(lambda: defaultdict(list))
        self.accesses: list[Access] = []
        self.zombies: set[tuple[str, str]] = set()  # (app, user): app keeps calling after revoke
        self.anomalies: list[tuple[date, str, str, str, str]] = []  # ground truth (anomalies.csv)
        self._pools: dict[tuple[str, date], tuple[int, Pool]] = {}

    def rng(self, *key: object) -> random.Random:
        """An independent RNG for one behaviour (and day)."""
        return random.Random("|".join(map(str, (self.seed, *key))))

    def truth(self, day: date, app: str, kind: str, description: str) -> None:
        """Records one injected anomaly (day, partner, app, kind, description)."""
        partner = next(p.partner_id for p in PARTNERS if p.app_id == app)
        self.anomalies.append((day, partner, app, kind, description))

    # consent --------------------------------------------------------------------------------------
    def add_consent(
        self,
        rng: random.Random,
        behaviour: str,
        t: datetime,
        user: str,
        app: str,
        event_type: str,
        scopes: Scopes = None,
        *,
        late: float = 0.015,
    ) -> Consent:
        """Records a consent event; events before FIRST_DAY go to the history export."""
        delivery = max(t.date(), FIRST_DAY)
        if t.date() >= FIRST_DAY and delivery < LAST_DAY:
            near_midnight = t.hour == 23 and t.minute >= 58
            if rng.random() < late or (near_midnight and rng.random() < 0.6):
                delivery += DAY
        ev = Consent(
            f"evt_{rng.getrandbits(64):016x}",
            t,
            user,
            app,
            event_type,
            scopes if event_type == "grant" else None,
            delivery,
            behaviour,
        )
        self.consents.append(ev)
        self.by_app[app][user].append(ev)
        return ev

    def pool(self, app: str, day: date) -> Pool:
        """Consent state of the app's users at 00:00Z of `day`, from events delivered by `day`."""
        cached = self._pools.get((app, day))
        if cached and cached[0] == len(self.consents):
            return cached[1]
        start, end = midnight(day), midnight(day) + DAY
        ttl = grant_ttl(app)
        pool = Pool()
        for user in sorted(self.by_app[app]):
            events = self.by_app[app][user]
            pool.known.add(user)
            if any(start <= e.time < end or (e.time < start and e.delivery > day) for e in events):
                pool.busy.add(user)
                continue
            seen = sorted(
                (e for e in events if e.time < start and e.delivery <= day),
                key=lambda e: (e.time, e.event_type != "grant"),
            )
            if not any(e.event_type == "grant" for e in seen):
                continue
            last = seen[-1]
            if last.event_type == "revoke":
                pool.revoked.append((user, last))
            elif ttl is not None and last.time + ttl <= start:
                pool.expired.append((user, last))
            elif ttl is not None and last.time + ttl <= end:
                pool.busy.add(user)
            else:
                pool.active.append((user, last))
        self._pools[(app, day)] = (len(self.consents), pool)
        return pool

    # access ---------------------------------------------------------------------------------------
    def emit(
        self,
        rng: random.Random,
        behaviour: str,
        app: str,
        user: str,
        t: datetime,
        scope: Scope,
        *,
        ip: str | None = None,
        thread: str | None = None,
        status: int | None = None,
        time_style: str | None = None,
    ) -> Access:
        """Records one access event."""
        resource, action = scope
        ev = Access(
            request_id=f"req_{rng.getrandbits(64):016x}",
            time=t,
            app_id=app,
            user_id=user,
            resource=resource,
            action=action,
            status=pick_status(rng, action) if status is None else status,
            behaviour=behaviour,
            ip=ip if ip is not None else self.client_ip(rng, app, user),
            user_agent=self.user_agent(app, user),
            thread_id=(thread or self.thread(rng, user)) if resource == "messages" else None,
            delivery=t.date(),
            time_style=time_style,
        )
        self.accesses.append(ev)
        return ev

    def client_ip(self, rng: random.Random, app: str, user: str) -> str:
        """Server apps call from their partner's few addresses; mobile apps from the user's."""
        if app in SERVER_IPS:
            prefix, first, count = SERVER_IPS[app]
            return f"{prefix}.{first + rng.randrange(count)}"
        if rng.random() < 0.08:  # roaming
            return f"100.{rng.randint(64, 127)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        home = self.rng("ip", user)
        if home.random() < 0.12:
            return f"2001:db8:{home.randrange(1, 0xFFFF):x}::{home.randrange(1, 0xFFFF):x}"
        return f"100.{home.randint(64, 127)}.{home.randint(0, 255)}.{home.randint(1, 254)}"

    def user_agent(self, app: str, user: str) -> str:
        """The user's client version (stable per user)."""
        agents = USER_AGENTS[app]
        return agents[self.rng("ua", app, user).randrange(len(agents))]

    def thread(self, rng: random.Random, user: str) -> str:
        """One of the user's few conversation threads."""
        own = self.rng("threads", user)
        return str(rng.choice([own.randint(1, 99_999) for _ in range(own.randint(3, 10))]))


SERVER_IPS: dict[str, tuple[str, int, int]] = {
    "streamflix-tv": ("198.51.100", 10, 8),
    "quickreply-assist": ("198.51.100", 40, 4),
    "gamebox-chat": ("198.51.100", 80, 8),
    "insightly-crawler": ("203.0.113", 66, 4),
    "calendo-assistant": ("203.0.113", 20, 8),
    "lingo-translate": ("203.0.113", 120, 4),
    "shadowsync-web": ("192.0.2", 200, 4),
}
USER_AGENTS: dict[str, tuple[str, ...]] = {
    "tunely-ios": ("Tunely/8.4.1 (iPhone; iOS 19.2)", "Tunely/8.3.0 (iPad; iOS 18.6)"),
    "tunely-android": (
        "Tunely/8.4.0 (Android 16; Pixel 10)",
        "Tunely/8.2.7 (Android 15; SM-S931B)",
    ),
    "Tunely-iOS": ("Tunely/8.5.0-dev (iPhone; iOS 19.3)",),
    "streamflix-tv": ("Streamflix-Backend/5.2 (+https://streamflix.example)",),
    "orbit-sync": ("OrbitSync/3.1 (OrbitPhone X2; OrbitOS 7)", "OrbitSync/3.0 (OrbitTab 4)"),
    "quickreply-assist": ("QuickReply/2.0.3 python-httpx/0.28",),
    "insightly-crawler": ("insightly-crawler/0.9 (+https://insightly.example/bot)",),
    "gamebox-chat": ("Gamebox-ChatRelay/1.12",),
    "calendo-assistant": ("Calendo-Assistant/4.4 (java 21)",),
    "lingo-translate": ("LingoTranslate/1.0.0-beta",),
    "shadowsync-web": ("python-requests/2.32.3",),
}

HUMAN_HOURS = (4, 3, 2, 2, 2, 3, 4, 5, 6, 6, 6, 7, 7, 7, 7, 7, 8, 9, 10, 11, 11, 10, 8, 6)
OFFICE_HOURS = (1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 10, 9, 8, 9, 10, 10, 9, 7, 4, 2, 2, 1, 1, 1)
NIGHT_HOURS = (8, 10, 10, 10, 9, 6, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 4)
FLAT_HOURS = (1,) * 24


def pick_status(rng: random.Random, action: str) -> int:
    """HTTP status: mostly success, a few client and server errors."""
    r = rng.random()
    for limit, status in ((0.012, 401), (0.022, 403), (0.036, 404), (0.040, 500), (0.043, 429)):
        if r < limit:
            return status
    if action == "write" and r > 0.8:
        return 201
    if action == "delete" and r > 0.5:
        return 204
    return 200


def time_in_day(
    rng: random.Random,
    day: date,
    hours: tuple[int, ...] = HUMAN_HOURS,
    window: tuple[datetime, datetime] | None = None,
) -> datetime:
    """A time on `day` following an hourly profile, optionally inside a window."""
    lo, hi = window or (midnight(day), midnight(day) + DAY)
    for _ in range(50):
        hour = rng.choices(range(24), weights=hours)[0]
        t = midnight(day) + timedelta(hours=hour, microseconds=rng.randrange(3_600_000_000))
        if lo <= t < hi:
            return t
    return lo + timedelta(microseconds=rng.randrange(int((hi - lo) / timedelta(microseconds=1))))


def volume(rng: random.Random, day: date, base: float) -> int:
    """A day's call count: base, a bit more on weekends, with jitter."""
    weekend = 1.12 if day.weekday() >= 5 else 1.0
    return round(base * weekend * rng.uniform(0.92, 1.08))


def weighted(rng: random.Random, mix: tuple[tuple[Any, float], ...]) -> Any:
    """One item of a (value, weight) mix."""
    return rng.choices([v for v, _ in mix], weights=[w for _, w in mix])[0]


# --------------------------------------------------------------------------------------------------
# 2. Consent behaviours
# --------------------------------------------------------------------------------------------------


def consent_history(world: World) -> None:
    """The history export: each app's signed-in users before FIRST_DAY, with some older churn."""
    for plan in CONSENT_PLANS:
        if not plan.population:
            continue
        rng = world.rng("consent_history", plan.app_id)
        start = max(period_bounds(plan.app_id)[0][0], datetime(2025, 1, 1, tzinfo=UTC))
        span = midnight(FIRST_DAY) - timedelta(hours=2) - start
        for user in sorted(rng.sample(USERS, plan.population)):
            t = start + span * rng.random()
            if rng.random() < 0.15:  # an older grant, replaced (maybe after a revoke) by the last
                old = start + (t - start) * rng.random()
                world.add_consent(
                    rng, "history", old, user, plan.app_id, "grant", weighted(rng, plan.scope_mix)
                )
                if rng.random() < 0.4:
                    world.add_consent(
                        rng, "history", old + (t - old) / 2, user, plan.app_id, "revoke"
                    )
            world.add_consent(
                rng, "history", t, user, plan.app_id, "grant", weighted(rng, plan.scope_mix)
            )
            if rng.random() < plan.revoked_share:
                revoke = t + (midnight(FIRST_DAY) - t) * rng.uniform(0.1, 0.9)
                world.add_consent(rng, "history", revoke, user, plan.app_id, "revoke")
                if rng.random() < plan.zombie_share:
                    world.zombies.add((plan.app_id, user))


def consent_calendo_refresh(world: World) -> None:
    """Calendo grants expire after 7 days, so its users sign in again every 2-6 days.

    About 12% of them stop signing in at some point ("lapsed"); their grants expire.
    """
    rng = world.rng("consent_calendo_refresh")
    history_from = midnight(FIRST_DAY) - timedelta(days=28)
    end = midnight(LAST_DAY) + DAY
    for user in sorted(rng.sample(USERS, 320)):
        interval = timedelta(days=rng.uniform(2.0, 5.5))
        scopes = weighted(rng, CALENDO_MIX)
        joined = midnight(FIRST_DAY) - timedelta(days=rng.uniform(0, 150))
        if rng.random() < 0.25:  # joined during the demo
            joined = midnight(FIRST_DAY) + timedelta(days=rng.uniform(0, 12))
        lapse = None
        if rng.random() < 0.12:
            lapse = midnight(FIRST_DAY) + timedelta(days=rng.uniform(-18, 9))
        t = max(joined, history_from + interval * rng.random())
        while t < end and (lapse is None or t < lapse):
            world.add_consent(rng, "calendo_refresh", t, user, CALENDO, "grant", scopes)
            t += interval * rng.uniform(0.85, 1.1)


def consent_lingo_beta(world: World) -> None:
    """Twelve beta testers sign in to Lingo Translate two days before its partnership starts."""
    day = LINGO_START.date() - 2 * DAY
    rng = world.rng("consent_lingo_beta", day)
    for user in sorted(rng.sample(USERS, 12)):
        world.add_consent(
            rng,
            "lingo_beta",
            time_in_day(rng, day, OFFICE_HOURS),
            user,
            "lingo-translate",
            "grant",
            None,
            late=0.0,
        )


def consent_daily(world: World) -> None:
    """Each day and app: new sign-ins (while a period covers the day), sign-ins again, revokes."""
    for day in days():
        noon = midnight(day) + timedelta(hours=12)
        for plan in CONSENT_PLANS:
            rng = world.rng("consent_daily", plan.app_id, day)
            pool = world.pool(plan.app_id, day)
            used = set(pool.busy)
            revoked = {u for u, _ in pool.revoked}

            def take(
                candidates: list[str], n: int, used: set[str] = used, rng: random.Random = rng
            ) -> list[str]:
                free = [u for u in candidates if u not in used]
                chosen = sorted(rng.sample(free, min(n, len(free))))
                used.update(chosen)
                return chosen

            if covered(plan.app_id, noon):
                fresh = [u for u in USERS if u not in pool.known or u in revoked]
                for user in take(fresh, volume(rng, day, plan.signins)):
                    world.add_consent(
                        rng,
                        "signin",
                        time_in_day(rng, day),
                        user,
                        plan.app_id,
                        "grant",
                        weighted(rng, plan.scope_mix),
                    )
            active = [u for u, _ in pool.active]
            scopes_of = dict(pool.active)
            for user in take(active, volume(rng, day, plan.resignins)):
                old = scopes_of[user].scopes
                # limited grants are often widened when users sign in again
                new = None if old is not None and rng.random() < 0.5 else old
                world.add_consent(
                    rng, "resignin", time_in_day(rng, day), user, plan.app_id, "grant", new
                )
            for user in take(active, volume(rng, day, plan.revokes)):
                # revokes of apps that ignore them are often delivered late (delivery-day semantics)
                late = 0.15 if plan.zombie_share else 0.015
                world.add_consent(
                    rng, "revoke", time_in_day(rng, day), user, plan.app_id, "revoke", late=late
                )
                if rng.random() < plan.zombie_share:
                    world.zombies.add((plan.app_id, user))


CONSENT_BEHAVIOURS: tuple[Callable[[World], None], ...] = (
    consent_history,
    consent_calendo_refresh,
    consent_lingo_beta,
    consent_daily,  # last: it reads the state the others made
)

# --------------------------------------------------------------------------------------------------
# 3. Access behaviours (one function per partner behaviour; each called once per day)
# --------------------------------------------------------------------------------------------------

MSG_READ, MSG_WRITE, MSG_DELETE = (
    ("messages", "read"),
    ("messages", "write"),
    ("messages", "delete"),
)
PROFILE_READ = ("profile", "read")


def sessions(
    world: World,
    rng: random.Random,
    day: date,
    *,
    behaviour: str,
    app: str,
    calls: int,
    users: list[tuple[str, Consent]],
    mix: tuple[tuple[Scope, float], ...],
    hours: tuple[int, ...] = HUMAN_HOURS,
    window: tuple[datetime, datetime] | None = None,
    keep: Callable[[datetime], bool] | None = None,
    respect_grant: bool = True,
    ips: tuple[str, ...] | None = None,
) -> list[Access]:
    """About `calls` calls in short sessions (1-8 calls, same user, thread, address).

    With `respect_grant`, a call the user's grant does not allow is downgraded to a message read
    or a profile read, as a well-behaved app does. `keep` may drop a session by its start time.
    `ips` replaces the app's usual addresses (one per session).
    """
    out: list[Access] = []
    made = 0
    end = window[1] if window else midnight(day) + DAY
    while made < calls and users:
        user, grant = rng.choice(users)
        t = time_in_day(rng, day, hours, window)
        n = min(calls - made, 1 + min(7, int(rng.expovariate(1 / 2.2))))
        made += n
        if keep is not None and not keep(t):
            continue
        ip = rng.choice(ips) if ips else world.client_ip(rng, app, user)
        thread = world.thread(rng, user)
        for _ in range(n):
            scope = weighted(rng, mix)
            if respect_grant and not grant.covers(*scope):
                scope = (
                    MSG_READ if scope[0] == "messages" and grant.covers(*MSG_READ) else PROFILE_READ
                )
            out.append(world.emit(rng, behaviour, app, user, t, scope, ip=ip, thread=thread))
            t += timedelta(seconds=rng.uniform(2, 90), microseconds=rng.randrange(1_000_000))
            if t >= end:
                break
    return out


def probe(
    world: World,
    rng: random.Random,
    behaviour: str,
    app: str,
    t: datetime,
    scope: Scope,
    users: list[tuple[str, Consent]],
) -> None:
    """One successful call at an exact instant (partnership boundaries), rendered to the µs."""
    if users:
        world.emit(
            rng, behaviour, app, rng.choice(users)[0], t, scope, status=200, time_style="z_micro"
        )


TUNELY_MIX_CALLS = (
    (MSG_READ, 0.66),
    (MSG_WRITE, 0.20),
    (MSG_DELETE, 0.04),
    (PROFILE_READ, 0.07),
    (("contacts", "read"), 0.03),
)


def tunely_listening(world: World, day: date) -> None:
    """Tunely (both apps) shares songs in chats: reads, writes, a few deletes. Legitimate."""
    for app, base in (("tunely-ios", 1050), ("tunely-android", 760)):
        rng = world.rng("tunely_listening", app, day)
        pool = world.pool(app, day)
        sessions(
            world,
            rng,
            day,
            behaviour="tunely_listening",
            app=app,
            calls=volume(rng, day, base),
            users=pool.active,
            mix=TUNELY_MIX_CALLS,
        )


def tunely_overreach(world: World, day: date) -> None:
    """Tunely Android's "clean up old shares" writes and deletes for users who granted read only,
    and the iOS app reads messages of users who granted no scope (`[]`): SCOPE_NOT_GRANTED."""
    rng = world.rng("tunely_overreach", day)
    android = world.pool("tunely-android", day)
    limited = [(u, g) for u, g in android.active if g.scopes and not g.covers(*MSG_DELETE)]
    sessions(
        world,
        rng,
        day,
        behaviour="tunely_overreach",
        app="tunely-android",
        calls=rng.randint(6, 14),
        users=limited,
        mix=((MSG_DELETE, 0.6), (MSG_WRITE, 0.4)),
        respect_grant=False,
    )
    ios = world.pool("tunely-ios", day)
    nothing = [(u, g) for u, g in ios.active if g.scopes == ()]
    sessions(
        world,
        rng,
        day,
        behaviour="tunely_overreach",
        app="tunely-ios",
        calls=rng.randint(2, 6),
        users=nothing,
        mix=((MSG_READ, 1.0),),
        respect_grant=False,
    )


def tunely_cross_app(world: World, day: date) -> None:
    """Tunely Android reuses tokens of users who only ever signed in on iOS: NO_SIGNIN."""
    rng = world.rng("tunely_cross_app", day)
    android = world.pool("tunely-android", day)
    ios_only = [(u, g) for u, g in world.pool("tunely-ios", day).active if u not in android.known]
    sessions(
        world,
        rng,
        day,
        behaviour="tunely_cross_app",
        app="tunely-android",
        calls=rng.randint(2, 5),
        users=ios_only,
        mix=((MSG_READ, 1.0),),
        respect_grant=False,
    )


def streamflix_watch_party(world: World, day: date) -> None:
    """Streamflix posts watch-party invites; its partnership ends 2026-03-08T12:00Z but half of
    its backend keeps calling: AFTER_PARTNERSHIP_END (users' grants stay valid)."""
    assert STREAMFLIX_END is not None
    rng = world.rng("streamflix_watch_party", day)
    pool = world.pool("streamflix-tv", day)
    sessions(
        world,
        rng,
        day,
        behaviour="streamflix_watch_party",
        app="streamflix-tv",
        calls=volume(rng, day, 300),
        users=pool.active,
        mix=((MSG_READ, 0.55), (PROFILE_READ, 0.45)),
        keep=lambda t: t < STREAMFLIX_END or rng.random() < 0.55,
    )
    if day == STREAMFLIX_END.date():
        readers = pool.covering(*MSG_READ)
        for t in (STREAMFLIX_END - timedelta(microseconds=1), STREAMFLIX_END):
            probe(world, rng, "streamflix_watch_party", "streamflix-tv", t, MSG_READ, readers)


def orbit_device_sync(world: World, day: date) -> None:
    """Orbit phones sync contacts and profiles; message reads are rare. Legitimate."""
    rng = world.rng("orbit_device_sync", day)
    sessions(
        world,
        rng,
        day,
        behaviour="orbit_device_sync",
        app="orbit-sync",
        calls=volume(rng, day, 640),
        users=world.pool("orbit-sync", day).active,
        mix=(
            (("contacts", "read"), 0.70),
            (("contacts", "write"), 0.08),
            (PROFILE_READ, 0.18),
            (MSG_READ, 0.04),
        ),
    )


def quickreply_assist(world: World, day: date) -> None:
    """QuickReply suggests replies: reads and writes messages of signed-in users. Legitimate."""
    rng = world.rng("quickreply_assist", day)
    sessions(
        world,
        rng,
        day,
        behaviour="quickreply_assist",
        app="quickreply-assist",
        calls=volume(rng, day, 240),
        users=world.pool("quickreply-assist", day).active,
        mix=((MSG_READ, 0.7), (MSG_WRITE, 0.25), (PROFILE_READ, 0.05)),
    )


def quickreply_zombie_tokens(world: World, day: date) -> None:
    """QuickReply keeps using cached tokens of about a third of the users who revoked it, including
    on the day of the revoke, after it: SIGNIN_REVOKED (unless the revoke is delivered late)."""
    app = "quickreply-assist"
    rng = world.rng("quickreply_zombie_tokens", day)
    pool = world.pool(app, day)
    for user, _ in pool.revoked:
        if (app, user) in world.zombies:
            for _ in range(rng.choice((0, 1, 1, 2, 3))):
                world.emit(
                    rng,
                    "quickreply_zombie_tokens",
                    app,
                    user,
                    time_in_day(rng, day),
                    weighted(rng, ((MSG_READ, 0.8), (MSG_WRITE, 0.2))),
                )
    start = midnight(day)
    for user in sorted(pool.busy):
        if (app, user) not in world.zombies:
            continue
        today = [e for e in world.by_app[app][user] if start <= e.time < start + DAY]
        revoke = max(today, key=lambda e: e.time, default=None)
        if revoke is not None and revoke.event_type == "revoke":
            window = (revoke.time + timedelta(minutes=5), start + DAY)
            if window[0] < window[1]:
                world.emit(
                    rng,
                    "quickreply_zombie_tokens",
                    app,
                    user,
                    time_in_day(rng, day, FLAT_HOURS, window),
                    MSG_READ,
                )


def insightly_crawler(world: World, day: date) -> None:
    """Insightly's crawler reads messages of users never signed in to it, at night: NO_SIGNIN."""
    rng = world.rng("insightly_crawler", day)
    victims = [(u, Consent("", midnight(day), u, "", "grant")) for u in rng.sample(USERS, 60)]
    sessions(
        world,
        rng,
        day,
        behaviour="insightly_crawler",
        app="insightly-crawler",
        calls=volume(rng, day, 40),
        users=victims,
        hours=NIGHT_HOURS,
        mix=((MSG_READ, 0.9), (PROFILE_READ, 0.1)),
        respect_grant=False,
    )


def gamebox_chat(world: World, day: date) -> None:
    """Gamebox relays in-game chat. Between its two periods (03-05 .. 03-08) 30% of its traffic
    goes on (AFTER_PARTNERSHIP_END); the renewed period lacks messages.delete, yet it still
    deletes (SCOPE_NOT_IN_PARTNERSHIP)."""
    gap_start, gap_end = GAMEBOX_GAP
    assert gap_start is not None
    rng = world.rng("gamebox_chat", day)
    pool = world.pool("gamebox-chat", day)
    sessions(
        world,
        rng,
        day,
        behaviour="gamebox_chat",
        app="gamebox-chat",
        calls=volume(rng, day, 180),
        users=pool.active,
        mix=((MSG_READ, 0.55), (MSG_WRITE, 0.3), (MSG_DELETE, 0.1), (PROFILE_READ, 0.05)),
        keep=lambda t: not gap_start <= t < gap_end or rng.random() < 0.3,
    )
    if day == gap_start.date() - DAY:
        users = pool.covering(*MSG_READ)
        probe(
            world,
            rng,
            "gamebox_chat",
            "gamebox-chat",
            gap_start - timedelta(milliseconds=500),
            MSG_READ,
            users,
        )
    if day == gap_start.date():
        probe(
            world,
            rng,
            "gamebox_chat",
            "gamebox-chat",
            gap_start,
            MSG_READ,
            pool.covering(*MSG_READ),
        )


def calendo_assistant(world: World, day: date) -> None:
    """Calendo reads messages to find meetings and manages calendar events. Legitimate."""
    rng = world.rng("calendo_assistant", day)
    sessions(
        world,
        rng,
        day,
        behaviour="calendo_assistant",
        app=CALENDO,
        calls=volume(rng, day, 220),
        users=world.pool(CALENDO, day).active,
        hours=OFFICE_HOURS,
        mix=((MSG_READ, 0.6), (("events", "read"), 0.3), (("events", "write"), 0.1)),
    )


def calendo_stale_tokens(world: World, day: date) -> None:
    """Calendo keeps reading messages of users whose 7-day grant expired: SIGNIN_EXPIRED."""
    rng = world.rng("calendo_stale_tokens", day)
    for user, _ in world.pool(CALENDO, day).expired:
        for _ in range(rng.choice((0, 1, 1, 2))):
            world.emit(
                rng,
                "calendo_stale_tokens",
                CALENDO,
                user,
                time_in_day(rng, day, OFFICE_HOURS),
                MSG_READ,
            )


def lingo_translate(world: World, day: date) -> None:
    """Lingo translates chats. Its beta testers' calls start a day before the partnership starts
    (2026-03-10T09:00Z): BEFORE_PARTNERSHIP_START. Legitimate after that."""
    app = "lingo-translate"
    rng = world.rng("lingo_translate", day)
    pool = world.pool(app, day)
    mix = ((MSG_READ, 0.7), (MSG_WRITE, 0.25), (PROFILE_READ, 0.05))
    launch_day = LINGO_START.date()
    if day == launch_day - DAY:
        sessions(
            world,
            rng,
            day,
            behaviour="lingo_translate",
            app=app,
            calls=30,
            users=pool.active,
            mix=mix,
            hours=OFFICE_HOURS,
        )
    elif day == launch_day:
        sessions(
            world,
            rng,
            day,
            behaviour="lingo_translate",
            app=app,
            calls=12,
            users=pool.active,
            mix=mix,
            window=(midnight(day), LINGO_START),
        )
        sessions(
            world,
            rng,
            day,
            behaviour="lingo_translate",
            app=app,
            calls=60,
            users=pool.active,
            mix=mix,
            window=(LINGO_START, midnight(day) + DAY),
        )
        for t in (LINGO_START - timedelta(microseconds=1), LINGO_START):
            probe(world, rng, "lingo_translate", app, t, MSG_READ, pool.active)
    elif day > launch_day:
        sessions(
            world,
            rng,
            day,
            behaviour="lingo_translate",
            app=app,
            calls=volume(rng, day, 40 * (day - launch_day).days),
            users=pool.active,
            mix=mix,
        )


def unregistered_apps(world: World, day: date) -> None:
    """shadowsync-web is in no partnership; a Tunely dev build sends the app id 'Tunely-iOS'
    (ids are case-sensitive): UNKNOWN_APP."""
    rng = world.rng("unregistered_apps", day)
    anyone = [(u, Consent("", midnight(day), u, "", "grant")) for u in rng.sample(USERS, 40)]
    sessions(
        world,
        rng,
        day,
        behaviour="unregistered_apps",
        app="shadowsync-web",
        calls=volume(rng, day, 22),
        users=anyone,
        mix=((MSG_READ, 0.9), (PROFILE_READ, 0.1)),
        respect_grant=False,
    )
    if day.day % 6 == 0:
        sessions(
            world,
            rng,
            day,
            behaviour="unregistered_apps",
            app="Tunely-iOS",
            calls=rng.randint(3, 5),
            users=world.pool("tunely-ios", day).active,
            mix=((MSG_READ, 0.7), (MSG_WRITE, 0.3)),
        )


ACCESS_BEHAVIOURS: tuple[Callable[[World, date], None], ...] = (
    tunely_listening,
    tunely_overreach,
    tunely_cross_app,
    streamflix_watch_party,
    orbit_device_sync,
    quickreply_assist,
    quickreply_zombie_tokens,
    insightly_crawler,
    gamebox_chat,
    calendo_assistant,
    calendo_stale_tokens,
    lingo_translate,
    unregistered_apps,
)

# --------------------------------------------------------------------------------------------------
# 3b. Injected behavioural anomalies (second week). Every call is covered by a grant and a
#     partnership period, so no rule names them (except the revoked tokens of the last one): only a
#     change of behaviour against the partner's own first days shows them. Each is recorded in
#     World.anomalies, one row per anomaly and day.
# --------------------------------------------------------------------------------------------------

ANOMALY = "anomaly_"  # prefix of every injected behaviour's name
VOLUME_SPIKE_DAY = date(2026, 3, 10)
VOLUME_SPIKE_FACTOR = 30  # the day's message reads, in multiples of the usual day's
DORMANT_SWEEP_DAY = date(2026, 3, 11)
DORMANT_AFTER = timedelta(days=14)  # last sign-in at least this old, and no call since FIRST_DAY
NIGHT_CRAWLS: dict[date, tuple[str, int, int]] = {  # night: never-used addresses (prefix, first, n)
    date(2026, 3, 12): ("203.0.113", 200, 6),
    date(2026, 3, 13): ("203.0.113", 210, 5),
}
NIGHT_END = timedelta(hours=5)  # night: 00:00 .. 05:00Z
QUICKREPLY = "quickreply-assist"
REVOCATION_WAVE_DAY = date(2026, 3, 13)
REVOCATION_WAVE = (timedelta(hours=8), timedelta(hours=10, minutes=30))  # of the wave day, UTC
REVOCATION_WAVE_SIZE = 60
PERSISTENCE_RATE = 6  # multiples of the usual hourly rate of message reads, after the wave
PERSISTENCE_REVOKED_SHARE = 0.3  # wave revokers whose tokens are still used (each persisting day)


def injected(behaviour: str) -> bool:
    """Whether a behaviour name is an injected anomaly's."""
    return behaviour.startswith(ANOMALY)


def usual_daily(world: World, app: str, day: date, scope: Scope) -> float:
    """Median daily number of the app's `scope` calls (ordinary behaviours) before `day`."""
    counts: dict[date, int] = {d: 0 for d in days() if d < day}
    for ev in world.accesses:
        d = ev.time.date()
        if ev.app_id == app and d in counts and (ev.resource, ev.action) == scope:
            counts[d] += not injected(ev.behaviour)
    return float(statistics.median(counts.values()))


def calls_on(world: World, app: str, day: date, scope: Scope) -> int:
    """Number of the app's `scope` calls made on `day` so far (every behaviour)."""
    return sum(
        1
        for ev in world.accesses
        if ev.app_id == app and ev.time.date() == day and (ev.resource, ev.action) == scope
    )


def span(first: date, last: date) -> str:
    """A day range, short."""
    return f"{first:%m-%d}..{last:%m-%d}"


def anomaly_revocation_wave(world: World) -> None:
    """Many QuickReply users revoke it within a morning (after a press story), among those the
    ordinary behaviours leave alone from that day on (no call, no other consent event): the
    ordinary events stay exactly as they are."""
    day, name = REVOCATION_WAVE_DAY, "anomaly_revocation_wave"
    rng = world.rng(name, day)
    start = midnight(day)
    pool = world.pool(QUICKREPLY, day)
    called = {e.user_id for e in world.accesses if e.app_id == QUICKREPLY and e.time >= start}
    events = world.by_app[QUICKREPLY]
    candidates = [
        u
        for u, _ in pool.active
        if u not in called
        and (QUICKREPLY, u) not in world.zombies
        and all(e.time < start for e in events[u])
    ]
    lo, hi = REVOCATION_WAVE
    for user in sorted(rng.sample(candidates, min(REVOCATION_WAVE_SIZE, len(candidates)))):
        t = start + lo + (hi - lo) * rng.random()
        world.add_consent(rng, name, t, user, QUICKREPLY, "revoke", late=0.0)


ANOMALY_CONSENT_BEHAVIOURS: tuple[Callable[[World], None], ...] = (anomaly_revocation_wave,)


def anomaly_volume_spike(world: World, day: date) -> None:
    """Orbit Devices, whose phones rarely read messages, suddenly reads about 30 times its usual
    daily message content (a "backup" feature), for users whose grants allow it."""
    if day != VOLUME_SPIKE_DAY:
        return
    app, name = "orbit-sync", "anomaly_volume_spike"
    rng = world.rng(name, day)
    usual = usual_daily(world, app, day, MSG_READ)
    made = sessions(
        world,
        rng,
        day,
        behaviour=name,
        app=app,
        calls=round(usual * VOLUME_SPIKE_FACTOR) - calls_on(world, app, day, MSG_READ),
        users=world.pool(app, day).covering(*MSG_READ),
        mix=((MSG_READ, 1.0),),
    )
    total = calls_on(world, app, day, MSG_READ)
    world.truth(
        day,
        app,
        "volume_spike",
        f"{total} message reads ({total / usual:.0f}x its median of {usual:g} a day on "
        f"{span(FIRST_DAY, day - DAY)}), {len({e.user_id for e in made})} users, all granted",
    )


def anomaly_dormant_sweep(world: World, day: date) -> None:
    """Gamebox reads, in a two-hour batch, the inboxes of every user it still holds a grant for
    whose last sign-in is older than 14 days and who had no Gamebox call since FIRST_DAY."""
    if day != DORMANT_SWEEP_DAY:
        return
    app, name = "gamebox-chat", "anomaly_dormant_sweep"
    rng = world.rng(name, day)
    start = midnight(day)
    seen = {e.user_id for e in world.accesses if e.app_id == app and e.time < start}
    dormant = [
        (u, g)
        for u, g in world.pool(app, day).covering(*MSG_READ)
        if g.time <= start - DORMANT_AFTER and u not in seen
    ]
    window = (start + timedelta(hours=14), start + timedelta(hours=16))
    reads = 0
    for user, _ in dormant:
        t = time_in_day(rng, day, FLAT_HOURS, window)
        ip = world.client_ip(rng, app, user)
        for _ in range(rng.randint(4, 9)):
            world.emit(rng, name, app, user, t, MSG_READ, ip=ip)  # a thread per call: the inbox
            t += timedelta(seconds=rng.uniform(0.2, 3), microseconds=rng.randrange(1_000_000))
            reads += 1
    usual_users = statistics.median(
        len({e.user_id for e in world.accesses if e.app_id == app and e.time.date() == d})
        for d in days()
        if d < day
    )
    world.truth(
        day,
        app,
        "dormant_sweep",
        f"{reads} message reads of {len(dormant)} dormant users (last sign-in over "
        f"{DORMANT_AFTER.days} days old, no call since {FIRST_DAY:%m-%d}) between "
        f"{window[0]:%H:%M} and {window[1]:%H:%M}Z; usual day: {usual_users:g} users, "
        f"{usual_daily(world, app, day, MSG_READ):g} message reads",
    )


def anomaly_night_crawl(world: World, day: date) -> None:
    """Calendo, an office-hours assistant calling from its eight addresses, crawls its users'
    messages between 00:00 and 05:00Z from addresses it never used before."""
    if day not in NIGHT_CRAWLS:
        return
    app, name = CALENDO, "anomaly_night_crawl"
    rng = world.rng(name, day)
    prefix, first, count = NIGHT_CRAWLS[day]
    ips = tuple(f"{prefix}.{first + i}" for i in range(count))
    usual = usual_daily(world, app, day, MSG_READ)
    made = sessions(
        world,
        rng,
        day,
        behaviour=name,
        app=app,
        calls=rng.randint(450, 550),
        users=world.pool(app, day).covering(*MSG_READ),
        mix=((MSG_READ, 1.0),),
        hours=FLAT_HOURS,
        window=(midnight(day), midnight(day) + NIGHT_END),
        ips=ips,
    )
    usual_prefix, usual_first, usual_count = SERVER_IPS[app]
    world.truth(
        day,
        app,
        "night_crawl",
        f"{len(made)} message reads of {len({e.user_id for e in made})} users between 00:00 and "
        f"05:00Z from {count} new addresses {ips[0]}..{ips[-1]} (usual: {usual:g} message reads "
        f"a day, in office hours, from {usual_prefix}.{usual_first}.."
        f"{usual_prefix}.{usual_first + usual_count - 1})",
    )


def anomaly_post_revocation(world: World, day: date) -> None:
    """After the morning's wave of revokes, QuickReply reads the remaining users' messages at six
    times its usual rate (that day and the next), and keeps using some revoked tokens
    (those calls are SIGNIN_REVOKED; the rest is covered)."""
    if day not in (REVOCATION_WAVE_DAY, REVOCATION_WAVE_DAY + DAY):
        return
    name = "anomaly_post_revocation"
    rng = world.rng(name, day)
    wave = sorted(
        (c for c in world.consents if c.behaviour == "anomaly_revocation_wave"),
        key=lambda c: c.user_id,
    )
    start, end = midnight(day), midnight(day) + DAY
    window = (max(start, *(c.time for c in wave)), end)
    usual = usual_daily(world, QUICKREPLY, REVOCATION_WAVE_DAY, MSG_READ)
    made = sessions(
        world,
        rng,
        day,
        behaviour=name,
        app=QUICKREPLY,
        calls=round(PERSISTENCE_RATE * usual * ((window[1] - window[0]) / DAY)),
        users=world.pool(QUICKREPLY, day).active,
        mix=((MSG_READ, 1.0),),
        hours=FLAT_HOURS,
        window=window,
    )
    reads = len(made)
    revoked_calls = 0
    for c in wave:
        if rng.random() < PERSISTENCE_REVOKED_SHARE:
            after = (max(window[0], c.time + timedelta(minutes=5)), end)
            for _ in range(rng.randint(1, 2)):
                t = time_in_day(rng, day, FLAT_HOURS, after)
                world.emit(rng, name, QUICKREPLY, c.user_id, t, MSG_READ)
                revoked_calls += 1
    hours = (window[1] - window[0]) / timedelta(hours=1)
    wave_text = f"the day after {len(wave)} users revoked it: "
    if day == REVOCATION_WAVE_DAY:
        lo, hi = REVOCATION_WAVE
        wave_text = (
            f"{len(wave)} users revoked it between {midnight(day) + lo:%H:%M} and "
            f"{midnight(day) + hi:%H:%M}Z (usual: a few a day); after that, "
        )
    world.truth(
        day,
        QUICKREPLY,
        "post_revocation",
        f"{wave_text}{reads} message reads of {len({e.user_id for e in made})} remaining users "
        f"in {hours:.1f} h ({reads / hours / (usual / 24):.1f}x its usual hourly rate, median "
        f"{usual:g} a day on {span(FIRST_DAY, REVOCATION_WAVE_DAY - DAY)}) and {revoked_calls} "
        f"calls with revoked tokens",
    )


ANOMALY_BEHAVIOURS: tuple[Callable[[World, date], None], ...] = (
    anomaly_volume_spike,
    anomaly_dormant_sweep,
    anomaly_night_crawl,
    anomaly_post_revocation,
)

# --------------------------------------------------------------------------------------------------
# 4. Delivery, rendering, malformed records, writing
# --------------------------------------------------------------------------------------------------


def delay_deliveries(world: World) -> None:
    """A few access events arrive one or two days late; half of those in the last minute of a day
    arrive with the next day's delivery."""
    rng = world.rng("delay_deliveries")
    for ev in world.accesses:
        r = rng.random()
        if ev.time.hour == 23 and ev.time.minute == 59 and r < 0.5:
            shift = 1
        elif r < 0.004:
            shift = 1 if rng.random() < 0.75 else 2
        else:
            continue
        if ev.delivery + shift * DAY <= LAST_DAY:
            ev.delivery += shift * DAY


ACCESS_FILES = ("gw-a.jsonl.gz", "gw-b.jsonl.gz", "gw-c.jsonl")  # gw-c: legacy gateway, plain
CONSENT_FILES = ("consent-svc-1.jsonl.gz", "consent-svc-2.jsonl")
MOBILE_APPS = {"tunely-ios", "tunely-android", "orbit-sync", "Tunely-iOS"}
TIME_STYLES: dict[str, tuple[tuple[str, float], ...]] = {
    "gw-a.jsonl.gz": (
        ("z_micro", 55),
        ("z_milli", 15),
        ("z_sec", 10),
        ("offset", 10),
        ("epoch_ms", 10),
    ),
    "gw-b.jsonl.gz": (("epoch_ms", 45), ("z_milli", 35), ("offset", 10), ("z_micro", 10)),
    "gw-c.jsonl": (("offset", 60), ("z_sec", 40)),
    "consent-svc-1.jsonl.gz": (("z_milli", 80), ("epoch_ms", 20)),
    "consent-svc-2.jsonl": (("z_sec", 60), ("offset", 40)),
    HISTORY_FILE: (("z_sec", 100),),
}
OFFSETS = tuple(timedelta(minutes=m) for m in (120, 60, -300, 330, -180, 540, 0))
SECRET_PARAMS = ("access_token", "token", "code", "client_secret", "api_key")


def format_time(t: datetime, style: str, rng: random.Random) -> str | int:
    """An instant in one of the formats seen in the logs (the value truncates, never rounds)."""
    if style == "epoch_ms":
        return (t - EPOCH) // timedelta(milliseconds=1)
    if style == "offset":
        local = t.astimezone(timezone(rng.choice(OFFSETS)))
        return local.isoformat(timespec=rng.choice(("seconds", "milliseconds", "microseconds")))
    spec = {"z_micro": "microseconds", "z_milli": "milliseconds", "z_sec": "seconds"}[style]
    return t.isoformat(timespec=spec).replace("+00:00", "Z")


def fake_secret(rng: random.Random) -> str:
    """A fake token: never a real secret."""
    return f"tok_demo_{rng.getrandbits(96):024x}"


def route_for(ev: Access, rng: random.Random) -> tuple[str, str]:
    """A method and path that the default route table maps to the event's resource and action."""
    version = rng.choice(("/v2", "/v2", "/v2", "/v2", "/v1", "/v2.1", ""))
    who = f"/users/{ev.user_id}" if rng.random() < 0.25 else "/me"
    base = version + who
    tid, mid, item = ev.thread_id or "1", rng.randint(100_000, 9_999_999), rng.randint(1, 9999)
    method: str
    if ev.resource == "messages":
        if ev.action == "read":
            method = "HEAD" if rng.random() < 0.03 else "GET"
            path = rng.choice(
                (
                    f"/messages/{mid}",
                    f"/threads/{tid}",
                    f"/threads/{tid}/messages",
                    f"/conversations/{tid}",
                    "/messages",
                )
            )
        elif ev.action == "write":
            method, path = rng.choice(
                (
                    ("POST", f"/threads/{tid}/messages"),
                    ("PUT", f"/messages/{mid}"),
                    ("PATCH", f"/messages/{mid}"),
                )
            )
        else:
            method, path = "DELETE", rng.choice((f"/messages/{mid}", f"/threads/{tid}"))
    else:
        collection = {"contacts": rng.choice(("contacts", "friends"))}.get(ev.resource, ev.resource)
        method = {"read": "GET", "write": rng.choice(("POST", "PUT")), "delete": "DELETE"}[
            ev.action
        ]
        path = f"/{collection}" if method in ("GET", "POST") else f"/{collection}/{item}"
    query = []
    r = rng.random()
    if r < 0.03:
        query.append(f"{rng.choice(SECRET_PARAMS)}={fake_secret(rng)}")
    if method == "GET" and rng.random() < 0.25:
        query.append(
            rng.choice((f"page={rng.randint(2, 9)}", "limit=50", "fields=id,sender,sent_at"))
        )
    if r < 0.015:
        query.reverse()
    return method, base + path + ("?" + "&".join(query) if query else "")


def render_access(ev: Access, gateway: str, rng: random.Random) -> dict[str, Any]:
    """The event as the gateway logs it: explicit resource/action, method + path, or both."""
    style = ev.time_style or weighted(rng, TIME_STYLES[gateway])
    d: dict[str, Any] = {
        "request_id": ev.request_id,
        "event_time": format_time(ev.time, style, rng),
        "app_id": ev.app_id,
        "user_id": ev.user_id,
    }
    mode = weighted(rng, (("both", 0.35), ("explicit", 0.15), ("route", 0.5)))
    if mode in ("both", "route"):
        d["method"], d["path"] = route_for(ev, rng)
    if mode in ("both", "explicit"):
        d["resource"], d["action"] = ev.resource, ev.action
    if ev.status != 200 or rng.random() < 0.8:
        d["status"] = ev.status
    optional = rng.random() < 0.93
    if ev.thread_id and optional:
        d["thread_id"] = ev.thread_id
    if ev.ip and optional:
        d["ip"] = ev.ip
    if ev.user_agent and (optional or rng.random() < 0.5):
        d["user_agent"] = ev.user_agent
    if ev.resource == "messages" and ev.action == "write" and rng.random() < 0.006:
        d["body"] = rng.choice(BODIES)  # must never be stored by the pipeline
    if rng.random() < 0.05:
        d["latency_ms"] = rng.randint(3, 900)  # unknown field: ignored
    return d


BODIES = (
    "now playing: Fake Band - Demo Song (listen with me!)",
    "are we still on for tonight? (demo text)",
    "demo message body, not real",
)


def render_consent(ev: Consent, source: str, rng: random.Random) -> dict[str, Any]:
    """The consent event as the consent service logs it."""
    d: dict[str, Any] = {
        "event_id": ev.event_id,
        "event_time": format_time(ev.time, weighted(rng, TIME_STYLES[source]), rng),
        "user_id": ev.user_id,
        "app_id": ev.app_id,
        "event_type": ev.event_type,
    }
    if ev.event_type == "grant":
        if ev.scopes is not None:
            d["scopes"] = list(ev.scopes)
        elif rng.random() < 0.3:
            d["scopes"] = None
    return d


def dumps(d: Any, compact: bool) -> str:
    """One JSON line."""
    return json.dumps(d, separators=(",", ":") if compact else (", ", ": "))


Line = tuple[float, int, str]  # (sort time, tie-break, text)


def malformed_access(kind: str, rng: random.Random, day: date, base: dict[str, Any]) -> str:
    """One invalid access record of the given kind, built from a valid-looking event."""
    d = dict(base)
    if kind == "invalid_json":
        d["path"] = f"/v2/me/messages?access_token={fake_secret(rng)}&page=2"
        text = dumps(d, False)
        return text[: text.index("tok_demo_") + 20]  # cut mid-line: the writer crashed
    if kind == "json_array":
        return dumps([d, {**d, "request_id": d["request_id"] + "b"}], True)
    if kind == "missing_request_id":
        del d["request_id"]
    elif kind == "user_id_number":
        d["user_id"] = int(d["user_id"][1:])
    elif kind == "time_without_offset":
        d["event_time"] = f"{day.isoformat()}T10:00:00"
    elif kind == "impossible_date":
        d["event_time"] = rng.choice(("2026-02-30T10:00:00Z", "2026-02-29T08:15:00Z"))
    elif kind == "unknown_action":
        d.pop("method", None)
        d.pop("path", None)
        d["resource"], d["action"] = "messages", "share"
    else:
        raise ValueError(kind)
    return dumps(d, False)


def malformed_consent(kind: str, rng: random.Random, base: dict[str, Any]) -> str:
    """One invalid consent record of the given kind."""
    d = dict(base)
    if kind == "consent_unknown_event_type":
        d["event_type"] = "approve"
    elif kind == "consent_missing_event_id":
        del d["event_id"]
    elif kind == "consent_scopes_not_a_list":
        d["event_type"], d["scopes"] = "grant", "messages.read profile.read"
    elif kind == "consent_invalid_json":
        return dumps(d, True)[:-9]
    else:
        raise ValueError(kind)
    return dumps(d, True)


ACCESS_MALFORMED = (
    "invalid_json",
    "json_array",
    "missing_request_id",
    "user_id_number",
    "time_without_offset",
    "impossible_date",
    "unknown_action",
)
CONSENT_MALFORMED = (
    "consent_unknown_event_type",
    "consent_missing_event_id",
    "consent_scopes_not_a_list",
    "consent_invalid_json",
)
MALFORMED_KINDS = ACCESS_MALFORMED + CONSENT_MALFORMED


def malformed_kinds_of(day: date) -> list[str]:
    """Four kinds a day, rotating so that every kind appears several times."""
    i = (day - FIRST_DAY).days
    return [MALFORMED_KINDS[(i * 4 + j) % len(MALFORMED_KINDS)] for j in range(4)]


def add_duplicates(
    files: dict[str, list[Line]],
    rng: random.Random,
    id_field: str,
    identical: int,
    conflicting: int,
) -> None:
    """Identical repeats (retried writes) and conflicting repeats (same id, other content).

    Each repeat lands after its original in read order (file name order, then line order).
    """
    names = sorted(n for n in files if files[n])
    originals = [(n, line) for n in names for line in sorted(files[n]) if line[1] >= 0]
    for i, (name, (key, tie, text)) in enumerate(rng.sample(originals, identical + conflicting)):
        if i >= identical:
            d = json.loads(text)
            if id_field == "request_id":
                d["status"] = 503 if d.get("status", 200) < 400 else 200
                d["user_agent"] = "gateway-retry/1.0"
            else:
                d["event_time"] = format_time(
                    datetime.fromtimestamp(key, UTC) + timedelta(seconds=1), "z_milli", rng
                )
            line = dumps(d, ", " not in text)
        else:
            line = text
        later = [n for n in names if n >= name]
        target = rng.choice(later)
        files[target].append((key + rng.uniform(0.001, 30) if target == name else key, tie, line))


def write_file(path: Path, lines: list[Line]) -> None:
    """Sorted lines to a .jsonl or .jsonl.gz file (gzip without name or time: reproducible)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(text + "\n" for _, _, text in sorted(lines)).encode()
    if path.suffix == ".gz":
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
            gz.write(data)
        data = buf.getvalue()
    path.write_bytes(data)


def render_accesses(
    events: list[Access], files: dict[str, list[Line]], rng: random.Random, first: int = 0
) -> None:
    """Access events to their gateway files (tie-breaks from `first` on)."""
    for n, ev in enumerate(events, first):
        legacy = rng.random() < 0.03
        gw = "gw-a.jsonl.gz" if ev.app_id in MOBILE_APPS else "gw-b.jsonl.gz"
        gw = "gw-c.jsonl" if legacy else gw
        text = dumps(render_access(ev, gw, rng), gw == "gw-b.jsonl.gz")
        files[gw].append((ev.time.timestamp(), n, text))


def render_consents(
    events: list[Consent],
    files: dict[str, list[Line]],
    history: list[Line],
    rng: random.Random,
    first: int = 0,
) -> None:
    """Consent events to the consent services' files, or to the history export."""
    for n, cev in enumerate(events, first):
        if cev.time < midnight(FIRST_DAY):
            history.append(
                (cev.time.timestamp(), n, dumps(render_consent(cev, HISTORY_FILE, rng), True))
            )
            continue
        name = CONSENT_FILES[0] if rng.random() < 0.7 else CONSENT_FILES[1]
        files[name].append((cev.time.timestamp(), n, dumps(render_consent(cev, name, rng), True)))


def write_day(world: World, out: Path, day: date) -> None:
    """One delivery day: gateway files, consent files, malformed records, duplicates, markers.

    Injected anomalies are rendered last, with their own RNG, and are never duplicated: the
    ordinary lines are exactly those of a world without them."""
    rng = world.rng("render", day)
    access_files: dict[str, list[Line]] = {name: [] for name in ACCESS_FILES}
    delivered = sorted(
        (e for e in world.accesses if e.delivery == day), key=lambda e: (e.time, e.request_id)
    )
    todays = [e for e in delivered if not injected(e.behaviour)]
    render_accesses(todays, access_files, rng)

    consent_files: dict[str, list[Line]] = {name: [] for name in CONSENT_FILES}
    history: list[Line] = []
    delivered_consents = sorted(
        (e for e in world.consents if e.delivery == day), key=lambda e: (e.time, e.event_id)
    )
    mine = [e for e in delivered_consents if not injected(e.behaviour)]
    render_consents(mine, consent_files, history, rng)
    if history:
        consent_files[HISTORY_FILE + ".jsonl.gz"] = history

    base_access = render_access(todays[len(todays) // 2], "gw-a.jsonl.gz", rng)
    base_consent = render_consent(mine[-1], CONSENT_FILES[0], rng)
    for i, kind in enumerate(malformed_kinds_of(day)):
        key = time_in_day(rng, day).timestamp()
        if kind in ACCESS_MALFORMED:
            base = {**base_access, "request_id": f"req_bad_{day:%m%d}_{i}"}
            access_files[rng.choice(ACCESS_FILES)].append(
                (key, -1, malformed_access(kind, rng, day, base))
            )
        else:
            base = {**base_consent, "event_id": f"evt_bad_{day:%m%d}_{i}"}
            consent_files[rng.choice(CONSENT_FILES)].append(
                (key, -1, malformed_consent(kind, rng, base))
            )
    if (day - FIRST_DAY).days % 4 == 1:
        for _ in range(rng.randint(1, 2)):
            access_files[rng.choice(ACCESS_FILES)].append(
                (time_in_day(rng, day).timestamp(), -1, "")
            )
    add_duplicates(access_files, rng, "request_id", identical=3, conflicting=2)
    if (day - FIRST_DAY).days % 2 == 0:
        add_duplicates(consent_files, rng, "event_id", identical=1, conflicting=1)

    extra = world.rng("render", ANOMALY, day)
    render_accesses(
        [e for e in delivered if injected(e.behaviour)], access_files, extra, len(todays)
    )
    render_consents(
        [e for e in delivered_consents if injected(e.behaviour)],
        consent_files,
        history,
        extra,
        len(mine),
    )

    for kind, files in (("access", access_files), ("consent", consent_files)):
        folder = out / kind / day.isoformat()
        for name, lines in sorted(files.items()):
            if lines:
                write_file(folder / name, lines)
        (folder / "_SUCCESS").write_bytes(b"")


ANOMALY_COLUMNS = ("day", "partner_id", "app_id", "kind", "description")


def write_anomalies(out: Path, world: World) -> None:
    """anomalies.csv, the ground truth: one row per injected anomaly and day."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(ANOMALY_COLUMNS)
    for day, partner, app, kind, description in sorted(world.anomalies):
        writer.writerow([day.isoformat(), partner, app, kind, description])
    (out / "anomalies.csv").write_text(buf.getvalue())


def write_partners(out: Path) -> None:
    """partners.csv, one row per app and period."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["partner_id", "partner_name", "app_id", "start", "end", "scopes", "grant_ttl_days"]
    )
    for p in PARTNERS:
        writer.writerow(
            [p.partner_id, p.partner_name, p.app_id, p.start, p.end, p.scopes, p.grant_ttl_days]
        )
    (out / "partners.csv").write_text(buf.getvalue())


README = """\
# Demo landing zone

Generated by `tools/make_sample_logs.py` (seed {seed}); do not edit by hand: edit the generator
and rebuild with `python tools/make_sample_logs.py --out sample_logs --seed {seed}`. The same seed
gives byte-identical files. Layout and formats: SPEC.md §2. Everything here is fictional: users
`u00001` .. `u{n_users:05d}`, documentation IP ranges, fake tokens `tok_demo_...`.

- `partners.csv`: the registry ({n_rows} rows). `start`/`end` mix dates and RFC 3339 timestamps.
- `access/<day>/`: {first} .. {last}, about 3,500 calls a day from three gateways:
  `gw-a.jsonl.gz` (mobile apps), `gw-b.jsonl.gz` (partner servers), `gw-c.jsonl` (legacy, plain).
- `consent/<day>/`: `consent-svc-1.jsonl.gz`, `consent-svc-2.jsonl` (a few hundred events a day);
  the first day also carries `history-export.jsonl.gz`, every sign-in and revoke before {first}.
- every day folder ends with an empty `_SUCCESS` marker.
- `anomalies.csv`: the ground truth of the injected behavioural anomalies (below), one row per
  anomaly and day: `day,partner_id,app_id,kind,description`. Not a landing-zone input.

## The partners (and the rules each should trigger)

- **P001 Tunely Music**, apps `tunely-ios` and `tunely-android`: shares songs in chats (message
  reads, writes, a few deletes); most of the demo's traffic, nearly all legitimate. Its Android
  "cleanup" writes and deletes messages of users who granted only `messages.read`, and the iOS app
  reads messages of users who granted `[]`: SCOPE_NOT_GRANTED. The Android app also reuses tokens
  of users who only ever signed in on iOS (grants are per app): NO_SIGNIN.
- **P002 Streamflix**, `streamflix-tv`: watch-party invites (message reads, profile). Its
  partnership ends at `2026-03-08T12:00:00Z` (exclusive), but about half of its traffic goes on:
  AFTER_PARTNERSHIP_END. Probes at 11:59:59.999999Z (covered) and 12:00:00Z (flagged).
- **P003 Orbit Devices**, `orbit-sync`: a phone maker syncing contacts (70%) and profiles, rare
  message reads, all covered: no flags (non-message resources are out of scope).
- **P004 QuickReply Labs**, `quickreply-assist`: suggested replies (reads, writes). It keeps using
  the tokens of about a third of the users who revoked it, even minutes after the revoke:
  SIGNIN_REVOKED (not when the revoke itself is delivered a day late: it does not count yet).
- **P005 Insightly Analytics**, `insightly-crawler`: a night-time "analytics" crawler with a valid
  partnership but no user sign-in at all: NO_SIGNIN on every message read.
- **P006 Gamebox Studios**, `gamebox-chat`: in-game chat relay (reads, writes, deletes). Period 1
  ends with the day `2026-03-04`, period 2 starts `2026-03-09`; 30% of its traffic goes on in the
  gap: AFTER_PARTNERSHIP_END (probes at 03-04 23:59:59.5Z, covered, and 03-05 00:00Z). Period 2
  lacks `messages.delete`, yet it still deletes: SCOPE_NOT_IN_PARTNERSHIP.
- **P007 Calendo**, `calendo-assistant`: reads messages to find meetings, manages calendar events.
  Grants expire after `grant_ttl_days` = 7; users sign in again every 2-6 days, but about 12% stop
  and Calendo keeps reading their messages: SIGNIN_EXPIRED.
- **P008 Lingo Translate**, `lingo-translate`: chat translation, a new partner whose partnership
  starts `2026-03-10T10:00:00+01:00` (09:00Z). Twelve beta testers sign in on 03-08 and are served
  from 03-09: BEFORE_PARTNERSHIP_START (probes at 08:59:59.999999Z and 09:00:00Z).
- **no partner**: `shadowsync-web`, an unregistered scraper, and a Tunely dev build that sends the
  app id `Tunely-iOS` (ids are compared case-sensitively): UNKNOWN_APP.

Every other call is covered by a grant and a partnership period: flags are a small minority.
Failed calls (status >= 400, about 4% of all) are never flagged, whoever made them.

## Injected behavioural anomalies (ground truth: `anomalies.csv`)

In the second week, four partners change their behaviour on one or two days. Their calls are
covered by the users' grants and by the partnership, so no rule names them (only the revoked
tokens of the last one are SIGNIN_REVOKED): a detector has to learn each partner's normal from
the days before. The figures below are those of seed {seed}.

- **volume_spike**, P003 Orbit Devices (`orbit-sync`), {volume_days}: its phones, which rarely
  read messages, read about {spike}x the usual day's message content, for users whose grants allow
  it.
- **dormant_sweep**, P006 Gamebox Studios (`gamebox-chat`), {dormant_days}: in a two-hour batch it
  reads 4-9 threads of each user it still holds a grant for whose last sign-in is over
  {dormant_age} days old and who had no Gamebox call since {first}.
- **night_crawl**, P007 Calendo (`calendo-assistant`), {night_days}: an office-hours assistant that
  crawls its users' messages between 00:00 and 05:00Z, from addresses it never used before (a new
  set each night).
- **post_revocation**, P004 QuickReply Labs (`quickreply-assist`), {wave_days}: {wave_size} users
  revoke it on the morning of {wave_day} (usually a few a day); for the rest of that day and the
  next it reads the remaining users' messages at about {rate}x its usual rate, and keeps using
  about {revoked_pct}% of the revoked tokens (those calls are flagged SIGNIN_REVOKED).

{anomaly_rows}

## Realism and traps

- `event_time`: RFC 3339 with `Z` (seconds, milli- or microseconds), with offsets such as `+02:00`,
  `-05:00`, `+05:30`, or integer epoch milliseconds.
- some events carry `resource`/`action`, some only `method` + `path` (resolved by the route table,
  e.g. `/v2/users/u00042/threads/77`, `/v2/me/conversations/5`, `/v1/me/friends`), some both.
- about 3% of paths carry fake secrets in the query string (`?access_token=tok_demo_...&page=2`,
  `token`, `code`, `client_secret`, `api_key`): the pipeline must store them as `REDACTED`.
- a few message writes carry a `body` field (otherwise valid): it must never be stored.
- late delivery: a few access events arrive one or two days after their `event_time`, half of the
  calls made in a day's last minute arrive with the next day, and ~1.5% of consent events arrive a
  day late (a late revoke does not count on the day the access was delivered).
- consent history: users sign in, revoke, sign in again with other scopes; grants with `scopes`
  absent or `null` (every scope), with lists, and with `[]` (no scope).
- malformed records, a few a day, each kind several times (every one is quarantined):
{malformed}
- blank lines; identical duplicates (same `request_id`/`event_id`, same line: counted once) and
  conflicting duplicates (same id, different content: the first in read order wins, the others
  are quarantined as `conflicting_duplicate`).
"""


def write_readme(out: Path, world: World) -> None:
    """The story, for analysts."""

    def days_of(kind: str) -> str:
        return ", ".join(sorted({f"{d:%m-%d}" for d, _, _, k, _ in world.anomalies if k == kind}))

    rows = "\n".join(
        f"- {day}, {partner} `{app}`, {kind}: {description}."
        for day, partner, app, kind, description in sorted(world.anomalies)
    )
    (out / "README.md").write_text(
        README.format(
            seed=world.seed,
            volume_days=days_of("volume_spike"),
            spike=VOLUME_SPIKE_FACTOR,
            dormant_days=days_of("dormant_sweep"),
            dormant_age=DORMANT_AFTER.days,
            night_days=days_of("night_crawl"),
            wave_days=days_of("post_revocation"),
            wave_size=REVOCATION_WAVE_SIZE,
            wave_day=f"{REVOCATION_WAVE_DAY:%m-%d}",
            rate=PERSISTENCE_RATE,
            revoked_pct=round(PERSISTENCE_REVOKED_SHARE * 100),
            anomaly_rows=rows,
            n_users=N_USERS,
            n_rows=len(PARTNERS),
            first=FIRST_DAY,
            last=LAST_DAY,
            malformed="\n".join(f"  - `{k}`" for k in MALFORMED_KINDS),
        )
    )


def build(seed: int) -> World:
    """Runs every behaviour: the whole demo, in memory."""
    world = World(seed)
    for consent_behaviour in CONSENT_BEHAVIOURS:
        consent_behaviour(world)
    for day in days():
        for access_behaviour in ACCESS_BEHAVIOURS:
            access_behaviour(world, day)
    for anomaly_consent in ANOMALY_CONSENT_BEHAVIOURS:  # after the ordinary accesses: see 3b
        anomaly_consent(world)
    for day in days():
        for anomaly in ANOMALY_BEHAVIOURS:
            anomaly(world, day)
    delay_deliveries(world)
    return world


def write_landing(world: World, out: Path) -> None:
    """Replaces what this tool owns under `out` with the world's files."""
    for owned in ("access", "consent"):
        shutil.rmtree(out / owned, ignore_errors=True)
    for owned in ("partners.csv", "README.md", "anomalies.csv"):
        (out / owned).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    write_partners(out)
    write_anomalies(out, world)
    for day in days():
        write_day(world, out, day)
    write_readme(out, world)


# --------------------------------------------------------------------------------------------------
# 5. The same world in the formats platforms really export (--formats: sample_logs_formats/)
# --------------------------------------------------------------------------------------------------
# Three tenants: a Google Workspace tenant (token audit: access and consent in one source), a
# Microsoft 365 tenant (MailItemsAccessed for message reads, Graph activity for other calls, Entra
# consent) and the platform's own API gateway (nginx combined_audit lines, Okta consent). Failed
# calls are left out where the platform logs successes only (Google token audit, MailItemsAccessed).

GOOGLE_APPS = ("tunely-ios", "tunely-android", "gamebox-chat")
MICROSOFT_APPS = (
    *("streamflix-tv", "quickreply-assist", "calendo-assistant"),
    *("lingo-translate", "insightly-crawler"),
)
GOOGLE_SCOPES = {  # permission name → canonical scopes (written to the mapping file)
    "https://mail.google.com/": "messages.read messages.write messages.delete",
    "https://www.googleapis.com/auth/gmail.readonly": "messages.read",
    "https://www.googleapis.com/auth/gmail.compose": "messages.write",
    "https://www.googleapis.com/auth/userinfo.profile": "profile.read",
    "https://www.googleapis.com/auth/contacts.readonly": "contacts.read",
    "https://www.googleapis.com/auth/contacts": "contacts.write",
    "https://www.googleapis.com/auth/calendar.readonly": "events.read",
    "https://www.googleapis.com/auth/calendar.events": "events.write",
}
MICROSOFT_SCOPES = {
    "Mail.ReadWrite": "messages.read messages.write messages.delete",
    "Mail.Read": "messages.read",
    "Mail.Send": "messages.write",
    "User.Read": "profile.read",
    "Contacts.Read": "contacts.read",
    "Contacts.ReadWrite": "contacts.write",
    "Calendars.Read": "events.read",
    "Calendars.ReadWrite": "events.write",
}
GMAIL_METHODS = {"read": "get", "write": "send", "delete": "delete"}
GOOGLE_APIS = {  # non-message resources: (api_name, method_name prefix)
    "contacts": ("people", "people.connections"),
    "profile": ("oauth2", "oauth2.userinfo"),
    "events": ("calendar", "calendar.events"),
    "photos": ("photoslibrary", "photoslibrary.mediaItems"),
}


def permissions_for(scopes: Scopes, table: dict[str, str]) -> list[str] | None:
    """Permission names whose mapped scopes are `scopes` (None stays None: every scope)."""
    if scopes is None:
        return None
    wanted, names = set(scopes), []
    full = next(name for name, mapped in table.items() if "messages.delete" in mapped.split())
    if "messages.delete" in wanted:
        names.append(full)
        wanted -= set(table[full].split())
    for name, mapped in table.items():
        if name != full and mapped in wanted:
            names.append(name)
            wanted.discard(mapped)
    return names


def stable_number(text: str) -> int:
    """A number of the text that every run gives (unlike hash())."""
    return zlib.crc32(text.encode())


def google_client_id(app: str) -> str:
    return f"{stable_number(app)}-{app}.apps.googleusercontent.com"


def microsoft_app_id(app: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, app + ".apps.example"))


def upn(user: str) -> str:
    return f"{user}@contoso.example"


def google_token_record(
    qualifier: str,
    time_text: str,
    email: str,
    client_id: str,
    name: str,
    *,
    method_name: str = "",
    api_name: str = "",
    scopes: list[str] | None = None,
    ip: str | None = None,
) -> str:
    """One Reports API activity of applicationName=token (activity, authorize or revoke)."""
    parameters: list[dict[str, Any]] = [{"name": "client_id", "value": client_id}]
    if name == "activity":
        parameters = [
            {"name": "api_name", "value": api_name},
            {"name": "method_name", "value": method_name},
            *parameters,
            {"name": "num_response_bytes", "intValue": "2048"},
            {"name": "client_type", "value": "NATIVE_ANDROID"},
        ]
    elif scopes is not None:
        parameters.append({"name": "scope", "multiValue": scopes})
    record: dict[str, Any] = {
        "kind": "admin#reports#activity",
        "id": {
            "time": time_text,
            "uniqueQualifier": qualifier,
            "applicationName": "token",
            "customerId": "C03demo",
        },
        "actor": {"email": email, "profileId": str(10**20 + stable_number(email))},
        "events": [{"type": "auth", "name": name, "parameters": parameters}],
    }
    if ip:
        record["ipAddress"] = ip
    return json.dumps(record, separators=(",", ":"))


def m365_record(
    record_id: str,
    creation_time: str,
    app_id: str,
    mailbox: str,
    access_type: str,
    folders: list[tuple[str, list[str]]],
    *,
    throttled: bool = False,
    ip: str | None = None,
) -> str:
    """One MailItemsAccessed record: Bind lists messages per folder, Sync names folders."""
    record: dict[str, Any] = {
        "CreationTime": creation_time,
        "Id": record_id,
        "Operation": "MailItemsAccessed",
        "OrganizationId": "b662313f-14fc-43a2-9a7a-d2e27f4f3478",
        "RecordType": 50,
        "ResultStatus": "Succeeded",
        "UserType": 0,
        "Workload": "Exchange",
        "UserId": mailbox,
        "AppId": app_id,
        "AppAccessContext": {"ClientAppId": app_id, "UniqueTokenId": record_id[:8]},
        "MailboxOwnerUPN": mailbox,
        "OperationProperties": [
            {"Name": "MailAccessType", "Value": access_type},
            {"Name": "IsThrottled", "Value": "True" if throttled else "False"},
        ],
        "Folders": [
            {
                "Path": path,
                **({"FolderItems": [{"InternetMessageId": m} for m in ids]} if ids else {}),
            }
            for path, ids in folders
        ],
        "OperationCount": sum(len(ids) for _, ids in folders) or len(folders),
    }
    if ip:
        record["ClientIPAddress"] = ip
    return json.dumps(record, separators=(",", ":"))


def graph_record(
    request_id: str,
    time_text: str,
    app_id: str,
    user_id: str,
    method: str,
    uri: str,
    status: int,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
) -> str:
    """One MicrosoftGraphActivityLogs row as exported."""
    record = {
        "TimeGenerated": time_text,
        "RequestId": request_id,
        "AppId": app_id,
        "UserId": user_id,
        "RequestMethod": method,
        "RequestUri": "https://graph.microsoft.com" + uri,
        "ResponseStatusCode": status,
        "IPAddress": ip,
        "UserAgent": user_agent,
        "AadTenantId": "b662313f-14fc-43a2-9a7a-d2e27f4f3478",
    }
    return json.dumps({k: v for k, v in record.items() if v is not None}, separators=(",", ":"))


def entra_record(
    audit_id: str, time_text: str, activity: str, user: str, app_id: str, permissions: list[str]
) -> str:
    """One directoryAudit entry: consent to an application, or a removed permission grant."""
    properties = [
        {"displayName": "ConsentContext.IsAdminConsent", "newValue": '"False"'},
        {
            "displayName": "ConsentAction.Permissions",
            "newValue": f"[] => [[Id: x, ClientId: {app_id}, PrincipalId: p, ResourceId: r, "
            f"ConsentType: Principal, Scope: {' '.join(permissions)}, CreatedDateTime: , ]]; ",
        },
    ]
    record = {
        "id": audit_id,
        "category": "ApplicationManagement",
        "activityDateTime": time_text,
        "activityDisplayName": activity,
        "loggedByService": "Core Directory",
        "result": "success",
        "initiatedBy": {"user": {"id": f"oid-{user}", "userPrincipalName": user}},
        "targetResources": [
            {"type": "ServicePrincipal", "id": f"sp-{app_id[:8]}", "modifiedProperties": properties}
        ],
        "additionalDetails": [
            {"key": "User-Agent", "value": "EvoSTS"},
            {"key": "AppId", "value": app_id},
        ],
    }
    return json.dumps(record, separators=(",", ":"))


def okta_record(
    uuid_text: str,
    time_text: str,
    event_type: str,
    login: str,
    client_id: str,
    scopes: list[str] | None,
) -> str:
    """One System Log LogEvent of a consent grant or revoke."""
    targets: list[dict[str, Any]] = [
        {"id": f"0oa{stable_number(client_id)}", "type": "AppInstance", "displayName": client_id}
    ]
    targets += [{"id": s, "type": "Scope", "displayName": s} for s in scopes or []]
    record = {
        "uuid": uuid_text,
        "published": time_text,
        "eventType": event_type,
        "version": "0",
        "severity": "INFO",
        "actor": {"id": f"00u{stable_number(login)}", "type": "User", "alternateId": login},
        "client": {"id": client_id},
        "outcome": {"result": "SUCCESS"},
        "target": targets,
    }
    return json.dumps(record, separators=(",", ":"))


def gateway_line(
    ip: str, when: datetime, method: str, path: str, status: int, user_agent: str,
    request_id: str, client_id: str, user: str,
) -> str:  # fmt: skip
    """One nginx line of the combined_audit format (combined + request id, client id, user)."""
    stamp = when.astimezone(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return (
        f'{ip} - - [{stamp}] "{method} {path} HTTP/1.1" {status} 512 "-" "{user_agent}" '
        f'{request_id} "{client_id}" "{user}"'
    )


def z_time(t: datetime, spec: str = "milliseconds") -> str:
    return t.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def write_format_day(world: World, out: Path, day: date) -> None:
    """One delivery day of every real-format source."""
    rng = world.rng("formats", day)
    lines: dict[str, list[Line]] = defaultdict(list)
    delivered = sorted(
        (e for e in world.accesses if e.delivery == day), key=lambda e: (e.time, e.request_id)
    )
    for n, ev in enumerate(delivered):
        key = (ev.time.timestamp(), n)
        if ev.app_id in GOOGLE_APPS:
            if ev.status >= 400:
                continue  # the token audit logs calls that succeeded
            if ev.resource == "messages":
                api, method = "gmail", f"gmail.users.messages.{GMAIL_METHODS[ev.action]}"
            else:
                api, prefix = GOOGLE_APIS.get(ev.resource, (ev.resource, ev.resource))
                method = f"{prefix}.{GMAIL_METHODS[ev.action].replace('send', 'update')}"
            text = google_token_record(
                ev.request_id, z_time(ev.time), upn(ev.user_id), google_client_id(ev.app_id),
                "activity", method_name=method, api_name=api, ip=ev.ip,
            )  # fmt: skip
            lines["gws/token-audit.jsonl.gz"].append((*key, text))
        elif ev.app_id in MICROSOFT_APPS:
            if ev.resource == "messages" and ev.action == "read":
                if ev.status >= 400:
                    continue
                roll = rng.random()
                access_type = "Sync" if roll < 0.03 else "Bind"
                ids = [] if access_type == "Sync" else [f"<{ev.request_id}@contoso.example>"]
                text = m365_record(
                    ev.request_id, ev.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    microsoft_app_id(ev.app_id), upn(ev.user_id), access_type,
                    [("\\Inbox", ids)], throttled=0.03 <= roll < 0.04, ip=ev.ip,
                )  # fmt: skip
                lines["m365/mail-items-accessed.jsonl.gz"].append((*key, text))
            else:
                method, path = route_for(ev, rng)
                path = (
                    path.replace("/v2.1", "/v1.0").replace("/v2", "/v1.0").replace("/v1/", "/v1.0/")
                )
                text = graph_record(
                    ev.request_id, z_time(ev.time), microsoft_app_id(ev.app_id), upn(ev.user_id),
                    method, path, ev.status, ip=ev.ip, user_agent=ev.user_agent,
                )  # fmt: skip
                lines["graph/graph-activity.jsonl.gz"].append((*key, text))
        else:
            method, path = route_for(ev, rng)
            text = gateway_line(
                ev.ip or "198.51.100.1", ev.time, method, path, ev.status,
                ev.user_agent or "-", ev.request_id, ev.app_id, ev.user_id,
            )  # fmt: skip
            lines["gateway/access.log.gz"].append((*key, text))
    consents = sorted(
        (e for e in world.consents if e.delivery == day), key=lambda e: (e.time, e.event_id)
    )
    for n, cev in enumerate(consents):
        key = (cev.time.timestamp(), n)
        if cev.app_id in GOOGLE_APPS:
            text = google_token_record(
                cev.event_id, z_time(cev.time), upn(cev.user_id), google_client_id(cev.app_id),
                "authorize" if cev.event_type == "grant" else "revoke",
                scopes=permissions_for(cev.scopes, GOOGLE_SCOPES),
            )  # fmt: skip
            lines["gws/token-audit.jsonl.gz"].append((*key, text))
        elif cev.app_id in MICROSOFT_APPS:
            grant = cev.event_type == "grant"
            permissions = permissions_for(cev.scopes, MICROSOFT_SCOPES)
            if grant and permissions is None:  # consent to everything the app asks for
                permissions = list(MICROSOFT_SCOPES)
            text = entra_record(
                cev.event_id, z_time(cev.time, "seconds"),
                "Consent to application" if grant else "Remove delegated permission grant",
                upn(cev.user_id), microsoft_app_id(cev.app_id), permissions or [],
            )  # fmt: skip
            lines["entra/directory-audit.jsonl.gz"].append((*key, text))
        else:
            text = okta_record(
                cev.event_id, z_time(cev.time),
                "app.oauth2.as.consent.grant" if cev.event_type == "grant"
                else "app.oauth2.as.consent.revoke",
                upn(cev.user_id), cev.app_id, list(cev.scopes) if cev.scopes is not None else None,
            )  # fmt: skip
            lines["okta/system-log.jsonl"].append((*key, text))
    for source in FORMAT_SOURCES:
        folder = out / source / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        for name, found in lines.items():
            if name.startswith(source + "/"):
                write_file(out / source / day.isoformat() / name.split("/", 1)[1], found)
        (folder / "_SUCCESS").write_bytes(b"")


FORMAT_SOURCES = ("gws", "m365", "graph", "entra", "gateway", "okta")
FORMAT_CONFIG = """\
# The sources of sample_logs_formats/ (written by tools/make_sample_logs.py --formats).
# access-audit run --config sample_logs_formats/access-audit.toml --landing sample_logs_formats ...
[[sources]]
name = "gws"
kind = "both"
format = "google_workspace_token"
mapping = "mappings/google.toml"

[[sources]]
name = "m365"
kind = "access"
format = "m365_mail_items_accessed"
mapping = "mappings/microsoft.toml"

[[sources]]
name = "graph"
kind = "access"
format = "graph_activity"
mapping = "mappings/microsoft.toml"

[[sources]]
name = "entra"
kind = "consent"
format = "entra_audit"
mapping = "mappings/microsoft.toml"

[[sources]]
name = "gateway"
kind = "access"
format = "gateway"
pattern = "combined_audit"
mapping = "mappings/gateway.toml"

[[sources]]
name = "okta"
kind = "consent"
format = "okta_system_log"
mapping = "mappings/gateway.toml"
"""


def _toml_table(name: str, table: dict[str, str]) -> str:
    return f"[{name}]\n" + "".join(f"{json.dumps(k)} = {json.dumps(v)}\n" for k, v in table.items())


def write_format_landing(world: World, out: Path) -> None:
    """Replaces what this tool owns under `out` with the world in real formats."""
    for owned in (*FORMAT_SOURCES, "mappings"):
        shutil.rmtree(out / owned, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    write_partners(out)
    (out / "mappings").mkdir()
    google_apps = {google_client_id(a): a for a in GOOGLE_APPS}
    users = {upn(u): u for u in USERS}  # mailboxes and logins are the platform's user ids
    (out / "mappings" / "google.toml").write_text(
        _toml_table("apps", google_apps) + _toml_table("scopes", GOOGLE_SCOPES)
        + _toml_table("users", users)
    )  # fmt: skip
    microsoft_apps = {microsoft_app_id(a): a for a in MICROSOFT_APPS}
    (out / "mappings" / "microsoft.toml").write_text(
        _toml_table("apps", microsoft_apps) + _toml_table("scopes", MICROSOFT_SCOPES)
        + _toml_table("users", users)
    )  # fmt: skip
    (out / "mappings" / "gateway.toml").write_text(_toml_table("users", users))
    (out / "access-audit.toml").write_text(FORMAT_CONFIG)
    for day in days():
        write_format_day(world, out, day)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description="Writes the demo landing zone sample_logs/.")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "sample_logs",
        help="landing zone folder (default: sample_logs/)",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    parser.add_argument(
        "--formats",
        type=Path,
        metavar="DIR",
        help="instead, write the same world in real formats (Google Workspace, Microsoft 365 + "
        "Entra, a gateway + Okta) to DIR, e.g. sample_logs_formats/",
    )
    args = parser.parse_args(argv)
    world = build(args.seed)
    if args.formats:
        write_format_landing(world, args.formats)
        print(f"wrote {args.formats}: {len(world.accesses)} access events in real formats")
        return 0
    write_landing(world, args.out)
    print(
        f"wrote {args.out}: {len(world.accesses)} access events, "
        f"{len(world.consents)} consent events, {len(PARTNERS)} registry rows"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
