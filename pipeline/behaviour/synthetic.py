"""A generator of partner traffic for the behaviour evaluation, independent of
tools/make_sample_logs.py: access and consent events day by day, with injected behaviour.

One world per seed: 5–500 partners (log-uniform), each one app whose calls a day are log-uniform
over 10–1,000 (100x), with a weekend dip of its own, day-to-day noise (gamma, cv 0.15), users of
uneven weight who are active on some days and not others (so some reads are of users idle for a
week), a pool of idle users granted long ago, a few joining and revoking each day (and the app
making a last call or two after a revoke), addresses that now and then rotate, night work for
some partners and office hours for others, and a busy user (a mailbox service account) per app.

Injections (`KINDS`), at the strengths stated in `STRENGTHS`, are made on one partner (partner-day)
and on the busy user of another partner (app-user-day) on the same day. Everything is numpy
arrays per day; the events go through the real feature code (pipeline.behaviour.features).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pyarrow as pa

from pipeline.schema import REGISTRY

START = date(2026, 1, 5)  # a Monday
MICROS_PER_HOUR = 3_600_000_000
READ, WRITE, DELETE = 0, 1, 2
ACTIONS = np.array(["read", "write", "delete"])
MESSAGES, CONTACTS, FILES = 0, 1, 2
RESOURCES = np.array(["messages", "contacts", "files"])
ACTIVE, IDLE, RESERVE, REVOKED, GONE = 0, 1, 2, 3, 4  # GONE: granted, never called again

KINDS = (
    "bulk_read",
    "night_crawl",
    "dormant_sweep",
    "post_revocation",
    "delete_spike",
    "scope_creep",
    "new_user_burst",
    "slow_ramp",
)
RAMP_DAYS, RAMP_FACTOR = 5, 1.5
DELETE_MIN_ACCESSES = 150  # a delete spike is stated on days of at least this many accesses
STRENGTHS = {
    "bulk_read": "partner: message reads 15x its usual day; user: the busy user's reads 15x",
    "night_crawl": "every call between 01:00 and 04:00 UTC from never-seen addresses in new /24s "
    "(partner: 20-250 of them; user: the busy user's calls, 5-20)",
    "dormant_sweep": "partner: all the day's message reads of users granted long ago and idle "
    "since; user: one such idle user read 15x the app's typical user's day",
    "post_revocation": "partner: 30% of the day's users (at least 10) revoke 06:00-08:00 and the "
    "app keeps reading them after; user: the busy user likewise",
    "delete_spike": "15% of message accesses are deletes (usual 0.3-2%), on a partner-day and a "
    f"user-day of at least {DELETE_MIN_ACCESSES} message accesses (at 15% of 16 accesses, 2-3 "
    "deletes are within chance of a 2% rate)",
    "scope_creep": "10% of calls with a scope the app never used (files.read)",
    "new_user_burst": "partner: new sign-ins equal to 30% of the day's users (at least 10), each "
    "read as a usual user; user: one new user read 15x the app's typical user's day",
    "slow_ramp": f"every call x{RAMP_FACTOR} a day for {RAMP_DAYS} days (x7.6), judged on the "
    "last day",
}


@dataclass
class World:
    """One seed's partners and users (arrays indexed by partner or by user)."""

    rng: np.random.Generator
    volume: np.ndarray  # calls on a usual weekday
    weekend: np.ndarray  # factor on Saturdays and Sundays
    read_p: np.ndarray
    delete_p: np.ndarray
    contacts_p: np.ndarray
    night_p: np.ndarray
    office_hour: np.ndarray
    fail_p: np.ndarray
    ip_pool: np.ndarray  # partner x slot → address index
    ip_slots: np.ndarray  # slots in use per partner
    ip_names: list[str]
    partner_net: np.ndarray  # partner x 3 → /24 network number its addresses come from
    user_partner: np.ndarray
    user_weight: np.ndarray
    user_q: np.ndarray  # chance of being active on a day
    user_state: np.ndarray
    busy_user: np.ndarray  # per partner, its busy user's index
    user_names: np.ndarray
    next_net: int = 1
    app_names: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    regrant: list[int] = field(default_factory=list)
    leave: list[int] = field(default_factory=list)  # an injection's users, called on its day only
    consent: list[pa.Table] = field(default_factory=list)
    last_seen: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def partners(self) -> int:
        return len(self.volume)


def _ip_name(net: int, host: int) -> str:
    return f"{10 + net // 65536}.{net // 256 % 256}.{net % 256}.{host}"


def make_world(seed: int, partners: int | None = None, max_partners: int = 500) -> World:
    """A seed's partners (log-uniform over 5..max_partners unless `partners` is given)."""
    rng = np.random.default_rng(seed)
    n = partners or round(np.exp(rng.uniform(np.log(5), np.log(max_partners))))
    volume = np.exp(rng.uniform(np.log(10), np.log(1000), n))
    share = rng.uniform(0.1, 0.3, n)  # the busy user's share of the calls
    if (share * volume).max() < 60:  # every world has a busy user to inject into
        big = int(np.argmax(share * volume))
        volume[big], share[big] = max(volume[big], 400.0), max(share[big], 0.2)
    batch = rng.random(n) < 0.3
    night = np.where(batch, rng.uniform(0.1, 0.4, n), rng.uniform(0.005, 0.05, n))
    calls_per_user = rng.uniform(8, 25, n)
    active_pool = np.ceil(volume * (1 - share) / (calls_per_user * 0.5)).astype(int) + 3
    idle_pool = np.ceil(0.4 * active_pool).astype(int) + 10
    reserve = np.ceil(0.5 * active_pool).astype(int) + 80
    sizes = active_pool + 1 + idle_pool + reserve
    user_partner = np.repeat(np.arange(n), sizes)
    state = np.concatenate(
        [
            np.repeat([ACTIVE, ACTIVE, IDLE, RESERVE], [a, 1, i, r])
            for a, i, r in zip(active_pool, idle_pool, reserve, strict=True)
        ]
    )
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    busy = starts + active_pool
    weight = rng.lognormal(0.0, 1.0, len(user_partner))
    q = rng.uniform(0.05, 1.0, len(user_partner))
    # the busy user takes `share` of the calls: its weight against the others' expected total
    others = np.bincount(user_partner, weights=np.where(state == ACTIVE, weight * q, 0.0))
    others -= weight[busy] * q[busy]
    weight[busy], q[busy] = others * share / (1 - share), 1.0
    names = np.array([f"P{p:03d}-u{i}" for i, p in enumerate(user_partner)], dtype=object)
    slots = rng.integers(1, 16, n)
    nets = np.arange(n * 3).reshape(n, 3) + 1
    pool = np.zeros((n, 64), dtype=np.int64)
    ip_names: list[str] = []
    for p in range(n):
        for s in range(slots[p]):
            pool[p, s] = len(ip_names)
            ip_names.append(_ip_name(int(nets[p, s % rng.integers(1, 4)]), s + 1))
    world = World(
        rng=rng,
        volume=volume,
        weekend=rng.uniform(0.3, 1.0, n),
        read_p=rng.uniform(0.6, 0.9, n),
        delete_p=rng.uniform(0.003, 0.02, n),
        contacts_p=np.where(rng.random(n) < 0.5, rng.uniform(0.01, 0.15, n), 0.0),
        night_p=night,
        office_hour=rng.uniform(8, 17, n),
        fail_p=rng.uniform(0.002, 0.03, n),
        ip_pool=pool,
        ip_slots=slots,
        ip_names=ip_names,
        partner_net=nets,
        user_partner=user_partner,
        user_weight=weight,
        user_q=q,
        user_state=state,
        busy_user=busy,
        user_names=names,
        next_net=n * 3 + 1,
    )
    world.last_seen = np.full(len(user_partner), -10_000)
    world.app_names = np.array([f"app-{p:03d}" for p in range(n)], dtype=object)
    granted = state != RESERVE  # granted 30-400 days before the first day
    ago = rng.uniform(30, 400, int(granted.sum()))
    world.consent.append(_consent(world, np.flatnonzero(granted), "grant", -ago * 24, START))
    return world


def registry(world: World) -> pa.Table:
    n = world.partners
    rows = {
        "partner_id": [f"P{p:03d}" for p in range(n)],
        "partner_name": [f"Partner {p}" for p in range(n)],
        "app_id": [f"app-{p:03d}" for p in range(n)],
        "period_start": pa.array([0] * n, pa.timestamp("us", tz="UTC")),
        "period_end": pa.array([None] * n, pa.timestamp("us", tz="UTC")),
        "period_scopes": [["messages.read", "messages.write", "messages.delete"]] * n,
        "grant_ttl_days": pa.array([None] * n, pa.float64()),
        "registry_line": list(range(2, n + 2)),
    }
    return pa.table(rows, schema=REGISTRY)


def _day_micros(day: date) -> int:
    return (day - date(1970, 1, 1)).days * 24 * MICROS_PER_HOUR


def _consent(world: World, users: np.ndarray, kind: str, hours: np.ndarray, day: date) -> pa.Table:
    micros = _day_micros(day) + (np.asarray(hours) * MICROS_PER_HOUR).astype(np.int64)
    apps = world.app_names
    return pa.table(
        {
            "user_id": pa.array(world.user_names[users], pa.string()),
            "app_id": pa.array(apps[world.user_partner[users]], pa.string()),
            "event_type": pa.array([kind] * len(users), pa.string()),
            "event_time": pa.array(micros, pa.timestamp("us", tz="UTC")),
            "delivery_date": pa.array([max(day, START)] * len(users), pa.date32()),
        }
    )


@dataclass
class Calls:
    """One day's calls as arrays; turned into an access table at the end."""

    user: np.ndarray
    action: np.ndarray
    resource: np.ndarray
    hour: np.ndarray
    status: np.ndarray
    ip: np.ndarray

    def keep(self, mask: np.ndarray) -> None:
        for name in ("user", "action", "resource", "hour", "status", "ip"):
            setattr(self, name, getattr(self, name)[mask])

    def extend(self, other: Calls) -> None:
        for name in ("user", "action", "resource", "hour", "status", "ip"):
            setattr(self, name, np.concatenate([getattr(self, name), getattr(other, name)]))


def make_calls(world: World, users: np.ndarray) -> Calls:
    """One call per element of `users`, drawn from its partner's habits."""
    rng = world.rng
    p = world.user_partner[users]
    m = len(users)
    r = rng.random(m)
    message_action = np.where(
        r < world.read_p[p], READ, np.where(r < world.read_p[p] + world.delete_p[p], DELETE, WRITE)
    )
    contacts = rng.random(m) < world.contacts_p[p]
    night = rng.random(m) < world.night_p[p]
    office = np.clip(rng.normal(world.office_hour[p], 3.0), 5.0, 23.999)
    slot = (rng.random(m) * world.ip_slots[p]).astype(np.int64)
    return Calls(
        user=users,
        action=np.where(contacts, READ, message_action),
        resource=np.where(contacts, CONTACTS, MESSAGES),
        hour=np.where(night, rng.uniform(0.0, 5.0, m), office),
        status=np.where(rng.random(m) < world.fail_p[p], 503, 200),
        ip=world.ip_pool[p, slot],
    )


def _pick_users(world: World, partners: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """For each element of `partners`, a user of that partner drawn by `weights`."""
    cum = np.cumsum(weights)
    ends = np.searchsorted(world.user_partner, np.arange(world.partners), side="right")
    top = cum[ends - 1]
    bottom = np.concatenate([[0.0], top[:-1]])
    draw = bottom[partners] + world.rng.random(len(partners)) * (top - bottom)[partners]
    return np.minimum(np.searchsorted(cum, draw, side="right"), len(cum) - 1)


def base_calls(world: World, day_index: int, volume_factor: np.ndarray) -> tuple[Calls, np.ndarray]:
    """The day's usual calls; also the users active on it."""
    rng = world.rng
    weekend = day_index % 7 >= 5
    level = world.volume * np.where(weekend, world.weekend, 1.0) * volume_factor
    expected = level * rng.gamma(1 / 0.15**2, 0.15**2, world.partners)
    counts = rng.poisson(expected)
    active = (world.user_state == ACTIVE) & (rng.random(len(world.user_q)) < world.user_q)
    busy = world.busy_user[world.user_state[world.busy_user] == ACTIVE]
    active[busy] = True
    weights = world.user_weight * active * rng.gamma(1 / 0.3**2, 0.3**2, len(active))
    has_users = np.bincount(world.user_partner, weights=weights, minlength=world.partners) > 0
    counts = np.where(has_users, counts, 0)
    partners = np.repeat(np.arange(world.partners), counts)
    return make_calls(world, _pick_users(world, partners, weights)), active


def _rotate_addresses(world: World) -> None:
    rng = world.rng
    for p in np.flatnonzero(rng.random(world.partners) < 0.05):
        slot = int(rng.integers(0, world.ip_slots[p]))
        net = world.partner_net[p, int(rng.integers(0, 3))]
        if rng.random() < 0.2:  # now and then a network of its own never used before
            net, world.next_net = world.next_net, world.next_net + 1
        world.ip_pool[p, slot] = len(world.ip_names)
        world.ip_names.append(_ip_name(int(net), int(rng.integers(1, 255))))


def fresh_addresses(world: World, count: int) -> np.ndarray:
    """`count` addresses never used by anyone, in new /24 networks."""
    first = len(world.ip_names)
    for i in range(count):
        if i % 200 == 0:
            world.next_net += 1
        world.ip_names.append(_ip_name(world.next_net, i % 200 + 1))
    return np.arange(first, first + count)


@dataclass
class Injection:
    kind: str
    partner: int  # the partner-day injection
    user_partner: int  # the partner of the app-user-day injection
    ramp_step: int = RAMP_DAYS  # slow ramp: which of its days (judged on the last)
    user: int = -1  # set by inject: the injected app-user
    user_name: str = ""


def _typical_user_calls(world: World, calls: Calls, partner: int) -> int:
    mine = world.user_partner[calls.user] == partner
    users = len(np.unique(calls.user[mine]))
    return max(4, round(mine.sum() / max(users, 1)))


def _users_of(world: World, partner: int, state: int) -> np.ndarray:
    return np.flatnonzero((world.user_partner == partner) & (world.user_state == state))


def _join(world: World, users: np.ndarray, day: date, hours: np.ndarray | None = None) -> None:
    world.user_state[users] = ACTIVE
    at = world.rng.uniform(0, 5, len(users)) if hours is None else hours
    world.consent.append(_consent(world, users, "grant", at, day))


def _busy_enough(world: World, calls: Calls, a: int, b: int, least: int) -> tuple[int, int]:
    """A partner and a busy user (of another partner) with at least `least` message accesses
    on the day: `a` and b's busy user when they have them, else drawn from those that do (the
    most busy when none does)."""
    message = calls.resource == MESSAGES
    per_partner = np.bincount(world.user_partner[calls.user[message]], minlength=world.partners)
    per_busy = np.bincount(calls.user[message], minlength=len(world.user_q))[world.busy_user]
    if per_partner[a] < least:
        ok = np.flatnonzero((per_partner >= least) & (np.arange(world.partners) != b))
        a = int(world.rng.choice(ok)) if len(ok) else a
    if per_busy[b] < least:
        ok = np.flatnonzero((per_busy >= least) & (np.arange(world.partners) != a))
        b = int(world.rng.choice(ok)) if len(ok) else b
    return a, int(world.busy_user[b])


def inject(world: World, calls: Calls, active: np.ndarray, inj: Injection, day: date) -> None:
    """Change the day's calls as the injection's kind says (STRENGTHS)."""
    rng = world.rng
    a, b = inj.partner, inj.user_partner
    busy = int(world.busy_user[b])
    inj.user = busy
    of_a = world.user_partner[calls.user] == a
    of_u = calls.user == busy
    kind = inj.kind
    if kind == "bulk_read":
        is_read = (calls.action == READ) & (calls.resource == MESSAGES)
        reads = np.concatenate([calls.user[of_a & is_read], calls.user[of_u & is_read]])
        extra = make_calls(world, np.repeat(reads, 14))
        extra.action[:], extra.resource[:] = READ, MESSAGES
        calls.extend(extra)
    elif kind == "night_crawl":
        for mask, count in ((of_a, int(rng.integers(20, 251))), (of_u, int(rng.integers(5, 21)))):
            calls.hour[mask] = rng.uniform(1.0, 4.0, int(mask.sum()))
            calls.ip[mask] = rng.choice(fresh_addresses(world, count), int(mask.sum()))
    elif kind == "dormant_sweep":
        idle = _users_of(world, a, IDLE)
        reads = np.flatnonzero(of_a & (calls.action == READ) & (calls.resource == MESSAGES))
        calls.user[reads] = rng.choice(idle, len(reads))
        sleeper = int(rng.choice(_users_of(world, b, IDLE)))
        inj.user = sleeper
        extra = make_calls(world, np.repeat(sleeper, 15 * _typical_user_calls(world, calls, b)))
        extra.resource[:], extra.action[:] = MESSAGES, READ
        calls.extend(extra)
    elif kind == "post_revocation":
        users_a = np.unique(calls.user[of_a & (calls.user != world.busy_user[a])])
        size = min(len(users_a), max(10, round(0.3 * len(users_a))))
        wave = rng.choice(users_a, size, replace=False)
        wave = np.concatenate([wave, [busy]]) if len(wave) else np.array([busy])
        world.consent.append(_consent(world, wave, "revoke", rng.uniform(6, 8, len(wave)), day))
        after = np.isin(calls.user, wave)
        calls.hour[after] = rng.uniform(8.0, 23.999, int(after.sum()))
        world.user_state[wave] = REVOKED
        world.regrant.append(busy)  # the busy user signs in again the next morning
    elif kind == "delete_spike":
        a, busy = _busy_enough(world, calls, a, b, DELETE_MIN_ACCESSES)
        inj.partner, inj.user = a, busy
        inj.user_partner = int(world.user_partner[busy])  # left out of the partner-days' ranks
        of_a, of_u = world.user_partner[calls.user] == a, calls.user == busy
        for mask in (of_a, of_u):
            message = np.flatnonzero(mask & (calls.resource == MESSAGES))
            calls.action[message] = np.where(rng.random(len(message)) < 0.15, DELETE, READ)
    elif kind == "scope_creep":
        for mask in (of_a, of_u):
            hit = mask & (rng.random(len(mask)) < 0.10)
            calls.resource[hit], calls.action[hit] = FILES, READ
    elif kind == "new_user_burst":
        reserve = _users_of(world, a, RESERVE)
        seen_a = len(np.unique(calls.user[of_a]))
        joiners = reserve[: max(10, round(0.3 * seen_a))]
        _join(world, joiners, day)
        world.leave.extend(joiners.tolist())
        per_user = _typical_user_calls(world, calls, a)
        calls.extend(make_calls(world, np.repeat(joiners, rng.poisson(per_user, len(joiners)))))
        newcomer = _users_of(world, b, RESERVE)[:1]
        _join(world, newcomer, day)
        world.leave.extend(newcomer.tolist())
        inj.user = int(newcomer[0])
        heavy = 15 * _typical_user_calls(world, calls, b)
        extra = make_calls(world, np.repeat(newcomer, heavy))
        extra.resource[:], extra.action[:] = MESSAGES, READ
        calls.extend(extra)
    elif kind == "slow_ramp":
        factor = RAMP_FACTOR**inj.ramp_step
        ramped = calls.user[of_a | of_u]
        more = rng.poisson(factor - 1.0, len(ramped))  # each usual call becomes ~factor calls
        calls.extend(make_calls(world, np.repeat(ramped, more)))
    else:
        raise ValueError(f"unknown kind {kind!r}")
    inj.user_name = str(world.user_names[inj.user])


def natural_consent(world: World, calls: Calls, day: date) -> None:
    """A few sign-ins and revocations, and idle users coming back, as on any day."""
    rng = world.rng
    reserve = np.flatnonzero(world.user_state == RESERVE)  # in partner order
    wanted = rng.poisson(0.2 + 0.001 * world.volume)
    first = np.searchsorted(world.user_partner[reserve], np.arange(world.partners))
    rank = np.arange(len(reserve)) - first[world.user_partner[reserve]]
    joins = reserve[rank < wanted[world.user_partner[reserve]]]
    if len(joins):
        _join(world, joins, day)
        calls.extend(make_calls(world, np.repeat(joins, 3)))
    active = np.flatnonzero(world.user_state == ACTIVE)
    active = active[~np.isin(active, world.busy_user)]
    leaving = active[rng.random(len(active)) < 0.002]
    if len(leaving):
        at = rng.uniform(0, 24, len(leaving))
        world.consent.append(_consent(world, leaving, "revoke", at, day))
        world.user_state[leaving] = REVOKED
        # the app stops calling them, but for a token's last minutes (up to 10 after): reading
        # on after a revocation is what the post_revocation injection does, not usual traffic
        revoked_at = np.full(len(world.user_q), np.inf)
        revoked_at[leaving] = at
        calls.keep(calls.hour <= revoked_at[calls.user] + 10 / 60)
    idle = np.flatnonzero(world.user_state == IDLE)
    world.user_state[idle[rng.random(len(idle)) < 0.003]] = ACTIVE


def access_table(world: World, calls: Calls, day: date, first_id: int) -> pa.Table:
    """The calls as access events (unsorted: nothing downstream needs an order)."""
    m = len(calls.user)
    micros = _day_micros(day) + (calls.hour * MICROS_PER_HOUR).astype(np.int64)
    thread = calls.user * 32 + world.rng.integers(0, 24, m)
    apps = pa.array(world.app_names, pa.string())
    names = pa.array(world.user_names, pa.string())
    return pa.table(
        {
            "request_id": pa.array(np.arange(first_id, first_id + m)).cast(pa.string()),
            "event_time": pa.array(micros, pa.timestamp("us", tz="UTC")),
            "app_id": apps.take(pa.array(world.user_partner[calls.user])),
            "user_id": names.take(pa.array(calls.user)),
            "resource": pa.array(RESOURCES.tolist()).take(pa.array(calls.resource)),
            "action": pa.array(ACTIONS.tolist()).take(pa.array(calls.action)),
            "status": pa.array(calls.status, pa.int32()),
            "thread_id": pa.array(thread).cast(pa.string()),
            "ip": pa.array(world.ip_names, pa.string()).take(pa.array(calls.ip)),
        }
    )


def day_of(index: int) -> date:
    return START + timedelta(index)


TRAIN_DAYS = 21  # clean days first: the model's training window and every entity's history
CLEAN_TEST_DAYS = 5
MIN_INJECTED_CALLS = 50  # partner-day injections go to apps with at least this many calls a day
MIN_BUSY_CALLS = 60  # app-user-day injections go to busy users this busy


@dataclass
class SimDay:
    index: int
    day: date
    access: pa.Table
    consent: pa.Table  # every consent event delivered up to the day
    recent_users: pa.Table  # (app_id, user_id) that made a call on the `dormant_days` before
    dormancy_known: bool  # the history covers those days
    injection: Injection | None
    judged: bool  # the injection is judged on this day (a ramp's last day)


def make_plan(world: World) -> list[tuple[Injection | None, bool]]:
    """TRAIN_DAYS clean days, then one day per kind (a ramp of RAMP_DAYS) and clean days, in a
    random order. Partner-day injections on apps of at least MIN_INJECTED_CALLS calls a day;
    app-user-day injections on another partner's busy user."""
    rng = world.rng
    eligible = np.flatnonzero(world.volume >= MIN_INJECTED_CALLS)
    if not len(eligible):
        eligible = np.array([int(np.argmax(world.volume))])
    share = np.bincount(world.user_partner, weights=world.user_weight * world.user_q)
    busy_calls = world.user_weight[world.busy_user] / share * world.volume
    busy = np.flatnonzero(busy_calls >= MIN_BUSY_CALLS)
    if not len(busy):
        busy = np.array([int(np.argmax(busy_calls))])
    blocks: list[list[tuple[Injection | None, bool]]] = [[(None, False)]] * CLEAN_TEST_DAYS
    blocks = [list(b) for b in blocks]
    # each kind's user on another partner where there are enough (a user revoked by one kind
    # would be read by no other)
    users = rng.permutation(busy)
    for i, kind in enumerate(KINDS):
        a = int(rng.choice(eligible))
        b = int(users[i % len(users)])
        if b == a and len(busy) > 1:
            b = int(rng.choice(busy[busy != a]))
        if kind == "slow_ramp":
            steps = range(1, RAMP_DAYS + 1)
            blocks.append([(Injection(kind, a, b, s), s == RAMP_DAYS) for s in steps])
        else:
            blocks.append([(Injection(kind, a, b), True)])
    order = rng.permutation(len(blocks))
    plan: list[tuple[Injection | None, bool]] = [(None, False)] * TRAIN_DAYS
    for i in order:
        plan.extend(blocks[i])
    return plan


def simulate(world: World, dormant_days: int) -> Iterator[SimDay]:
    """The world's days in order (SimDay), events already made."""
    plan = make_plan(world)
    apps = np.array([f"app-{p:03d}" for p in range(world.partners)], dtype=object)
    next_id = 0
    for index, (injection, judged) in enumerate(plan):
        day = day_of(index)
        if world.regrant:  # at the day's first moment: no call of the day precedes the grant
            _join(world, np.array(world.regrant), day, np.zeros(len(world.regrant)))
            world.regrant.clear()
        if world.leave:  # an injection's one-day users: the days after it are clean days
            world.user_state[np.array(world.leave)] = GONE
            world.leave.clear()
        _rotate_addresses(world)
        calls, active = base_calls(world, index, np.ones(world.partners))
        natural_consent(world, calls, day)
        if injection is not None:
            inject(world, calls, active, injection, day)
        access = access_table(world, calls, day, next_id)
        next_id += access.num_rows
        seen = np.flatnonzero(world.last_seen >= index - dormant_days)
        recent = pa.table(
            {
                "app_id": pa.array(apps[world.user_partner[seen]], pa.string()),
                "user_id": pa.array(world.user_names[seen], pa.string()),
            }
        )
        world.last_seen[np.unique(calls.user)] = index
        yield SimDay(
            index=index,
            day=day,
            access=access,
            consent=pa.concat_tables(world.consent),
            recent_users=recent,
            dormancy_known=index >= dormant_days,
            injection=injection,
            judged=judged,
        )
