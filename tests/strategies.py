"""Hypothesis strategies for small, adversarial inputs of the rules (SPEC §3).

Every time in one example is drawn from a small pool of instants on a 6-hour grid (plus jitters of
±1 µs and of the clock skew), so ties between grants and revokes, accesses at exactly a grant, a
revoke, a period start or end, exactly one TTL (0, 6 h, 12 h, 1 day) after a grant, or within the
clock skew of a grant are frequent. Also row builders shared by the example-based tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from hypothesis import strategies as st

from pipeline import schema

DAY = dt.date(2024, 3, 10)
BASE = dt.datetime(2024, 3, 10, tzinfo=dt.UTC)  # 00:00Z of DAY
SKEW_SECONDS = 30.0
GRID_STEP = dt.timedelta(hours=6)
US = dt.timedelta(microseconds=1)
JITTERS = (
    dt.timedelta(0),
    dt.timedelta(0),
    dt.timedelta(0),
    US,
    -US,
    dt.timedelta(seconds=SKEW_SECONDS),
    dt.timedelta(seconds=SKEW_SECONDS) + US,
)
TWIN_OFFSETS = (
    dt.timedelta(0),  # no twin
    dt.timedelta(seconds=SKEW_SECONDS),
    dt.timedelta(seconds=SKEW_SECONDS) + US,
    dt.timedelta(seconds=SKEW_SECONDS / 2),
    dt.timedelta(hours=16, minutes=48),  # a TTL of 0.7 days
)
KNOWN_APPS = ("app_a", "app_b")
UNKNOWN_APP = "app_z"  # never in the registry
APPS = ("app_a", "app_a", "app_a", "app_b", "app_b", UNKNOWN_APP)  # weighted
PARTNERS = {"app_a": ("p_1", "Partner One"), "app_b": ("p_2", "Partner Two")}
USERS = ("u1", "u1", "u1", "u2")  # weighted
CONSENT_USERS = (*USERS, "*")  # and admin consent: user `*` is every user of the app
SCOPE_SET = ("messages.read", "messages.write", "messages.delete", "contacts.read")
# 0.7 days is 16:48:00 exactly, though 0.7 * 86400e6 in floating point is not a whole number.
TTL_DAYS = (None, 0.0, 0.25, 0.25, 0.5, 1.0, 0.7)
DELIVERY_DAYS = (
    DAY - dt.timedelta(days=2),
    DAY - dt.timedelta(days=1),
    DAY,
    DAY,
    DAY + dt.timedelta(days=1),
)
# "part-10" < "part-9" as strings: a numeric comparison of file names would get lineage ties wrong.
FILE_NAMES = ("part-10.jsonl", "part-9.jsonl")
STATUSES = (200, 200, 302, 399, 400, 404, 500)
MESSAGE_RESOURCES = (("messages",), ("messages", "contacts"))


# ---------------------------------------------------------------------------------------------
# Row builders (plain dicts in the schemas' column order)


def access_row(
    request_id: str,
    event_time: dt.datetime,
    *,
    app_id: str = "app_a",
    user_id: str = "u1",
    resource: str = "messages",
    action: str = "read",
    status: int = 200,
    delivery_date: dt.date = DAY,
    source_file: str | None = None,
    source_line: int = 1,
    method: str | None = None,
    path: str | None = None,
    ip: str | None = None,
) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "event_time": event_time,
        "app_id": app_id,
        "user_id": user_id,
        "resource": resource,
        "action": action,
        "method": method,
        "path": path,
        "status": status,
        "thread_id": None,
        "ip": ip,
        "user_agent": None,
        "delivery_date": delivery_date,
        "source_file": source_file or f"access/{delivery_date.isoformat()}/part-0.jsonl",
        "source_line": source_line,
    }


def consent_row(
    event_id: str,
    event_time: dt.datetime,
    event_type: str,
    *,
    scopes: list[str] | None = None,
    app_id: str = "app_a",
    user_id: str = "u1",
    delivery_date: dt.date = DAY,
    source_file: str | None = None,
    source_line: int = 1,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_time": event_time,
        "user_id": user_id,
        "app_id": app_id,
        "event_type": event_type,
        "scopes": scopes if event_type == "grant" else None,
        "delivery_date": delivery_date,
        "source_file": source_file or f"consent/{delivery_date.isoformat()}/part-0.jsonl",
        "source_line": source_line,
    }


def grant(event_id: str, event_time: dt.datetime, **kwargs: Any) -> dict[str, Any]:
    return consent_row(event_id, event_time, "grant", **kwargs)


def revoke(event_id: str, event_time: dt.datetime, **kwargs: Any) -> dict[str, Any]:
    return consent_row(event_id, event_time, "revoke", **kwargs)


def registry_row(
    app_id: str,
    period_start: dt.datetime,
    period_end: dt.datetime | None,
    period_scopes: list[str],
    *,
    grant_ttl_days: float | None = None,
    registry_line: int = 1,
) -> dict[str, Any]:
    partner_id, partner_name = PARTNERS.get(app_id, ("p_x", "Partner X"))
    return {
        "partner_id": partner_id,
        "partner_name": partner_name,
        "app_id": app_id,
        "period_start": period_start,
        "period_end": period_end,
        "period_scopes": period_scopes,
        "grant_ttl_days": grant_ttl_days,
        "registry_line": registry_line,
    }


def table(rows: list[dict[str, Any]], table_schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=table_schema)


# ---------------------------------------------------------------------------------------------
# Strategies


@dataclass(frozen=True)
class AuditCase:
    """One input of `flags_for_day`, plus the two settings the rules read."""

    access: pa.Table
    consent: pa.Table
    registry: pa.Table
    day: dt.date
    message_resources: tuple[str, ...]
    clock_skew_seconds: float

    def __repr__(self) -> str:
        def fmt(value: Any) -> str:
            if isinstance(value, dt.datetime):
                return value.strftime("%m-%dT%H:%M:%S.%f")
            if isinstance(value, dt.date):
                return value.strftime("%m-%d")
            return repr(value)

        def rows(tbl: pa.Table, columns: list[str]) -> str:
            return "".join(
                "\n    " + ", ".join(f"{c}={fmt(r[c])}" for c in columns) for r in tbl.to_pylist()
            )

        return (
            f"AuditCase(day={self.day}, message_resources={self.message_resources}, "
            f"clock_skew_seconds={self.clock_skew_seconds}"
            + "\n  access:"
            + rows(
                self.access,
                ["request_id", "event_time", "app_id", "user_id", "resource", "action", "status"],
            )
            + "\n  consent:"
            + rows(
                self.consent,
                [
                    "event_id",
                    "event_time",
                    "app_id",
                    "user_id",
                    "event_type",
                    "scopes",
                    "delivery_date",
                    "source_file",
                    "source_line",
                ],
            )
            + "\n  registry:"
            + rows(
                self.registry,
                ["app_id", "period_start", "period_end", "period_scopes", "grant_ttl_days"],
            )
            + ")"
        )


def instants() -> st.SearchStrategy[dt.datetime]:
    """An instant on the 6-hour grid around DAY (−36 h … +30 h), maybe nudged by a jitter."""
    return st.builds(
        lambda k, jitter: BASE + k * GRID_STEP + jitter,
        st.integers(min_value=-6, max_value=5),
        st.sampled_from(JITTERS),
    )


def scope_lists() -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(SCOPE_SET), unique=True, max_size=len(SCOPE_SET))


@st.composite
def registry_tables(draw: st.DrawFn, pool: list[dt.datetime]) -> pa.Table:
    """0–3 periods for each known app (overlapping, with gaps, ongoing); UNKNOWN_APP has none."""
    rows: list[dict[str, Any]] = []
    for app_id in KNOWN_APPS:
        ttl = draw(st.sampled_from(TTL_DAYS))
        for _ in range(draw(st.sampled_from((1, 0, 1, 2, 3)))):
            start = draw(st.sampled_from(pool))
            later = [instant for instant in pool if instant > start]
            end = draw(st.none() | st.sampled_from(later)) if later else None
            rows.append(
                registry_row(
                    app_id,
                    start,
                    end,
                    draw(scope_lists()),
                    grant_ttl_days=ttl,
                    registry_line=len(rows) + 2,
                )
            )
    return table(rows, schema.REGISTRY)


@st.composite
def consent_tables(draw: st.DrawFn, pool: list[dt.datetime]) -> pa.Table:
    """Grants (scopes null / [] / subsets) and revokes, delivered before, on and after DAY."""
    lineage = draw(
        st.lists(
            st.tuples(
                st.sampled_from(DELIVERY_DAYS),
                st.sampled_from(FILE_NAMES),
                st.integers(min_value=1, max_value=12),
            ),
            min_size=draw(st.sampled_from((0, 2, 4, 6))),
            max_size=10,
            unique=True,
        )
    )
    rows = []
    for i, (delivery_date, file_name, source_line) in enumerate(lineage):
        event_type = draw(st.sampled_from(("grant", "grant", "revoke")))
        rows.append(
            consent_row(
                f"e{i}",
                draw(st.sampled_from(pool)),
                event_type,
                scopes=draw(st.none() | scope_lists()) if event_type == "grant" else None,
                app_id=draw(st.sampled_from(APPS)),
                user_id=draw(st.sampled_from(CONSENT_USERS)),
                delivery_date=delivery_date,
                source_file=f"consent/{delivery_date.isoformat()}/{file_name}",
                source_line=source_line,
            )
        )
    # Rows are in lineage-draw order, which is not lineage order: no sort is implied.
    return table(rows, schema.CONSENT)


@st.composite
def access_tables(draw: st.DrawFn, pool: list[dt.datetime], day: dt.date) -> pa.Table:
    """Access events delivered on `day`: messages/contacts, read/write/delete, 2xx–5xx."""
    lineage = draw(
        st.lists(
            st.tuples(st.sampled_from(FILE_NAMES), st.integers(min_value=1, max_value=12)),
            min_size=1,
            max_size=8,
            unique=True,
        )
    )
    rows = []
    for i, (file_name, source_line) in enumerate(lineage):
        resource = draw(st.sampled_from(("messages", "messages", "contacts")))
        action = draw(st.sampled_from(schema.ACTIONS))
        rows.append(
            access_row(
                f"r{i}",
                draw(st.sampled_from(pool)),
                app_id=draw(st.sampled_from(APPS)),
                user_id=draw(st.sampled_from(USERS)),
                resource=resource,
                action=action,
                status=draw(st.sampled_from(STATUSES)),
                delivery_date=day,
                source_file=f"access/{day.isoformat()}/{file_name}",
                source_line=source_line,
                method={"read": "GET", "write": "POST", "delete": "DELETE"}[action],
                path=f"/v2/me/{resource}",
                ip=draw(st.none() | st.just("203.0.113.7")),
            )
        )
    return table(rows, schema.ACCESS)


@st.composite
def audit_cases(draw: st.DrawFn) -> AuditCase:
    """A whole input: one pool of 1–10 instants shared by the registry, consent and access."""
    pool = set(draw(st.lists(instants(), min_size=1, max_size=5, unique=True)))
    # Twins a clock skew (or a microsecond more) after some instants: grants "within the skew".
    for instant in sorted(pool):
        pool.add(instant + draw(st.sampled_from(TWIN_OFFSETS)))
    return AuditCase(
        access=draw(access_tables(sorted(pool), DAY)),
        consent=draw(consent_tables(sorted(pool))),
        registry=draw(registry_tables(sorted(pool))),
        day=DAY,
        message_resources=draw(st.sampled_from(MESSAGE_RESOURCES)),
        clock_skew_seconds=draw(st.sampled_from((0.0, SKEW_SECONDS, SKEW_SECONDS))),
    )
