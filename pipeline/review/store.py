"""The review store: flags and anomaly alerts with their review decisions, an append-only audit
trail and suppressions, in SQLite (default) or PostgreSQL through SQLAlchemy Core."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from pipeline.config import SEVERITIES
from pipeline.errors import InvalidTransition, StaleItem, UnknownItem
from pipeline.review.audit_chain import chain_entries
from pipeline.review.lifecycle import KINDS, OPEN_STATUSES, SORTS, STATUSES, TRANSITIONS
from pipeline.review.rows import anomaly_rows, flag_rows
from pipeline.review.tables import review_audit, review_items, review_suppressions

log = logging.getLogger(__name__)

SORT_COLUMNS = {
    "day": review_items.c.day,
    "severity": review_items.c.severity_rank,
    "event_time": review_items.c.event_time,
    "partner_id": review_items.c.partner_id,
    "score": review_items.c.score,
}
MAX_PER_PAGE = 500
# the version a caller saw: one for every item, each item's own, or None (no check)
ExpectedVersion = int | Mapping[str, int] | None
INGEST_ACTOR = "pipeline"
CHUNK_ROWS = 1000  # rows per executemany of the upsert
CHUNK_IDS = 500  # ids per IN (...) list


def _check_text(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ValueError(f"filter {name}: {value!r} is not text")
    if "\x00" in value:
        raise ValueError(f"filter {name}: NUL characters are not allowed")


@dataclass(frozen=True)
class ItemFilter:
    """Which items the queue shows; every value is checked so that bad input fails clearly."""

    start: date | None = None
    end: date | None = None
    partner_id: str | None = None
    app_id: str | None = None
    rule: str | None = None
    severity: str | None = None
    status: str | None = None
    assignee: str | None = None
    kind: str | None = None  # flag | anomaly
    include_suppressed: bool = False

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
                raise ValueError(f"filter {name}: {value!r} is not a date")
        for field in fields(self)[2:-1]:
            value = getattr(self, field.name)
            if value is not None:
                _check_text(field.name, value)
        for name, allowed in (("severity", SEVERITIES), ("status", STATUSES), ("kind", KINDS)):
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise ValueError(f"unknown {name} {value!r} (one of {', '.join(allowed)})")


@dataclass(frozen=True)
class Item:
    """One flag or anomaly alert and its review state."""

    item_id: str
    kind: str
    day: date
    event_time: datetime | None
    rule: str
    severity: str
    partner_id: str | None
    app_id: str | None
    user_id: str | None
    request_id: str | None
    resource: str | None
    action: str | None
    status_code: int | None
    explanation: str
    evidence: dict[str, Any]
    score: float | None
    status: str
    assignee: str | None
    version: int
    suppressed_by: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Page:
    """One page of the queue and the number of items matching the filter."""

    items: list[Item]
    total: int
    page: int
    per_page: int


@dataclass(frozen=True)
class AuditEntry:
    """One change: who did what when (item_id None: a store-wide entry such as an ingest)."""

    id: int
    item_id: str | None
    actor: str
    at: datetime
    action: str  # status | assign | note | suppress | ingest
    from_value: str | None
    to_value: str | None
    note: str | None


@dataclass(frozen=True)
class Suppression:
    """Items of `app_id` and `rule` delivered on or before `until` stay out of the queue."""

    id: int
    app_id: str
    rule: str
    until: date
    reason: str
    created_by: str
    created_at: datetime


ITEM_FIELDS = tuple(f.name for f in fields(Item))


def engine_url(url: str) -> str:
    """`postgresql://` and `postgres://` use psycopg 3, the driver installed."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_engine(url: sa.URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy emits BEGIN itself (below), so that writers can take the lock up front
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "busy_timeout=30000",
            "foreign_keys=ON",
            "synchronous=NORMAL",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # BEGIN IMMEDIATE: a writer waits for the lock instead of failing on a stale snapshot
        writing = connection.get_execution_options().get("review_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

    return engine


def _chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _now() -> datetime:
    return datetime.now(UTC)


def _item(row: sa.Row[Any]) -> Item:
    values = row._mapping
    return Item(**{name: values[name] for name in ITEM_FIELDS})


def _suppression(row: sa.Row[Any]) -> Suppression:
    return Suppression(**dict(row._mapping))


def _server_engine(url: sa.URL) -> Engine:
    # psycopg prepares a statement after five runs, and PostgreSQL may then keep a generic plan:
    # for the upsert's 500-id IN lists that plan is a table scan (seconds a day at 100k items)
    connect_args = {"prepare_threshold": None} if url.get_driver_name() == "psycopg" else {}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


class ReviewStore:
    """Review items and decisions in one SQL database; safe for concurrent reviewers."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name

    @classmethod
    def open(cls, url: str) -> ReviewStore:
        """Connect and bring the schema to the newest migration."""
        from alembic import command
        from alembic.config import Config

        parsed = sa.make_url(engine_url(url))
        engine = (
            _sqlite_engine(parsed)
            if parsed.get_backend_name() == "sqlite"
            else _server_engine(parsed)
        )
        store = cls(engine)
        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with store._writing() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return store

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._engine.connect() as connection:
            connection.execution_options(review_write=True)
            with connection.begin():
                yield connection

    def _audit(self, connection: Connection, entries: list[dict[str, Any]]) -> None:
        chain_entries(connection, entries)  # inserted now, hash-chained at commit

    # ingest

    def upsert_day(self, day: date, flags: pa.Table, anomalies: pa.Table) -> dict[str, int]:
        """Insert or refresh the day's items by id; review decisions are never touched.

        Returns how many items were inserted, updated (already there) and newly suppressed.
        Items of the day that are no longer produced are kept; the ingest audit entry counts them.
        """
        rows = flag_rows(day, flags) + anomaly_rows(day, anomalies)
        ids = [row["item_id"] for row in rows]
        now = _now()
        with self._writing() as connection:
            existing: set[str] = set()
            for chunk in _chunks(ids, CHUNK_IDS):
                existing.update(
                    connection.execute(
                        sa.select(review_items.c.item_id).where(review_items.c.item_id.in_(chunk))
                    ).scalars()
                )
            before = set(
                connection.execute(
                    sa.select(review_items.c.item_id).where(review_items.c.day == day)
                ).scalars()
            )
            fresh = {"status": "new", "version": 1, "created_at": now, "updated_at": now}
            self._upsert_rows(connection, [{**row, **fresh} for row in rows])
            suppressed = self._apply_suppressions(
                connection, self._active_suppressions(connection, day), day, INGEST_ACTOR, now
            )
            counts = {
                "inserted": len(set(ids) - existing),
                "updated": len(existing),
                "suppressed": suppressed,
            }
            gone = len(before - set(ids))
            note = ", ".join(f"{key} {n}" for key, n in counts.items())
            self._audit(
                connection,
                [
                    {
                        "item_id": None,
                        "actor": INGEST_ACTOR,
                        "at": now,
                        "action": "ingest",
                        "from_value": None,
                        "to_value": day.isoformat(),
                        "note": f"{note}, no longer produced {gone}",
                    }
                ],
            )
        log.info("review store: %s %s", day, counts)
        return counts

    def _upsert_rows(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert or refresh items: on PostgreSQL by COPY into a temporary table and one
        INSERT … SELECT (a round trip per row costs 5x the server's work), elsewhere by
        executemany in chunks."""
        if not rows:
            return
        if self._dialect != "postgresql":
            statement = _on_conflict(sqlite.insert(review_items))
            for chunk in _chunks(rows, CHUNK_ROWS):
                connection.execute(statement, list(chunk))
            return
        columns = list(rows[0])
        connection.exec_driver_sql(
            "CREATE TEMPORARY TABLE review_incoming (LIKE review_items) ON COMMIT DROP"
        )
        with connection.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            names = ", ".join(columns)
            with cursor.copy(f"COPY review_incoming ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([_copy_value(row[name]) for name in columns])
        incoming = sa.table("review_incoming", *(sa.column(name) for name in columns))
        select = sa.select(*(incoming.c[name] for name in columns))
        upsert = postgresql.insert(review_items).from_select(columns, select)
        connection.execute(_on_conflict(upsert))

    # suppressions

    def _active_suppressions(self, connection: Connection, day: date) -> list[Suppression]:
        rows = connection.execute(
            sa.select(review_suppressions)
            .where(review_suppressions.c.until >= day)
            .order_by(review_suppressions.c.id)
        )
        return [_suppression(row) for row in rows]

    def _apply_suppressions(
        self,
        connection: Connection,
        suppressions: list[Suppression],
        day: date | None,
        actor: str,
        now: datetime,
    ) -> int:
        """Suppress unsuppressed new items matching each suppression (of `day`, or any day)."""
        items = review_items.c
        total = 0
        for suppression in suppressions:
            match = [
                items.app_id == suppression.app_id,
                items.rule == suppression.rule,
                items.day <= suppression.until,
                items.status == "new",
                items.suppressed_by.is_(None),
            ]
            if day is not None:
                match.append(items.day == day)
            # one UPDATE … RETURNING: an item a reviewer touches meanwhile is either already
            # changed (and left alone) or changed after; the trail names exactly those hidden
            ids = list(
                connection.execute(
                    sa.update(review_items)
                    .where(*match)
                    .values(suppressed_by=suppression.id, version=items.version + 1, updated_at=now)
                    .returning(items.item_id)
                ).scalars()
            )
            self._audit(
                connection,
                [
                    {
                        "item_id": item_id,
                        "actor": actor,
                        "at": now,
                        "action": "suppress",
                        "from_value": None,
                        "to_value": str(suppression.id),
                        "note": suppression.reason,
                    }
                    for item_id in ids
                ],
            )
            total += len(ids)
        return total

    def suppress(self, app_id: str, rule: str, until: date, reason: str, actor: str) -> Suppression:
        """Keep matching items up to `until` out of the queue (never out of the warehouse)."""
        for name, value in (("app", app_id), ("rule", rule), ("reason", reason), ("actor", actor)):
            if not isinstance(value, str) or not value.strip() or "\x00" in value:
                raise ValueError(f"suppression {name} must be non-empty text")
        if not isinstance(until, date):
            raise ValueError(f"suppression until: {until!r} is not a date")
        now = _now()
        with self._writing() as connection:
            new_id = connection.execute(
                sa.insert(review_suppressions)
                .values(
                    app_id=app_id,
                    rule=rule,
                    until=until,
                    reason=reason,
                    created_by=actor,
                    created_at=now,
                )
                .returning(review_suppressions.c.id)
            ).scalar_one()
            suppression = Suppression(new_id, app_id, rule, until, reason, actor, now)
            hidden = self._apply_suppressions(connection, [suppression], None, actor, now)
            self._audit(
                connection,
                [
                    {
                        "item_id": None,
                        "actor": actor,
                        "at": now,
                        "action": "suppress",
                        "from_value": None,
                        "to_value": f"#{new_id}: app {app_id}, rule {rule}, until {until}",
                        "note": f"{reason} ({hidden} items hidden)",
                    }
                ],
            )
        return suppression

    def suppressions(self, active_on: date | None = None) -> list[Suppression]:
        """Every suppression (or those still in force on `active_on`), newest first."""
        query = sa.select(review_suppressions).order_by(review_suppressions.c.id.desc())
        if active_on is not None:
            query = query.where(review_suppressions.c.until >= active_on)
        with self._engine.connect() as connection:
            return [_suppression(row) for row in connection.execute(query)]

    # queue

    def _conditions(self, filt: ItemFilter) -> list[sa.ColumnElement[bool]]:
        items = review_items.c
        conditions: list[sa.ColumnElement[bool]] = []
        if filt.start is not None:
            conditions.append(items.day >= filt.start)
        if filt.end is not None:
            conditions.append(items.day <= filt.end)
        for name, column in (
            ("partner_id", items.partner_id),
            ("app_id", items.app_id),
            ("rule", items.rule),
            ("severity", items.severity),
            ("status", items.status),
            ("assignee", items.assignee),
            ("kind", items.kind),
        ):
            value = getattr(filt, name)
            if value is not None:
                conditions.append(column == value)
        if not filt.include_suppressed:
            conditions.append(items.suppressed_by.is_(None))
        return conditions

    def _order(self, sort: str, reverse: bool = False) -> list[sa.ColumnElement[Any]]:
        """ORDER BY of a sort (or of its exact reverse), item_id breaking ties."""
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r} (one of {', '.join(SORTS)})")
        column = SORT_COLUMNS[sort.lstrip("-")]
        tie = review_items.c.item_id
        descending = sort.startswith("-") != reverse
        first = column.desc() if descending else column.asc()
        # nulls sort as the smallest values on both databases (SQLite's own order; PostgreSQL's
        # indexes on these columns are built NULLS FIRST to match)
        if column.nullable and self._dialect == "postgresql":
            first = first.nulls_last() if descending else first.nulls_first()
        return [first, tie.desc() if descending else tie.asc()]

    def items(
        self, filt: ItemFilter, sort: str = "-day", page: int = 1, per_page: int = 50
    ) -> Page:
        """One page of the items matching `filt`; a page past the end is empty."""
        order = self._order(sort)
        if not isinstance(page, int) or page < 1:
            raise ValueError(f"page must be a whole number from 1, not {page!r}")
        if not isinstance(per_page, int) or not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be from 1 to {MAX_PER_PAGE}, not {per_page!r}")
        conditions = self._conditions(filt)
        with self._engine.connect() as connection:
            total = connection.execute(
                sa.select(sa.func.count()).select_from(review_items).where(*conditions)
            ).scalar_one()
            start = (page - 1) * per_page
            if start >= total:
                return Page([], total, page, per_page)
            end = min(start + per_page, total)
            # an OFFSET walks the index up to the page: pages in the back half walk it from the
            # other end, so the last page costs what the first does
            from_end = start > total - end
            ids = (
                sa.select(review_items.c.item_id)
                .where(*conditions)
                .order_by(*self._order(sort, reverse=from_end))
                .limit(end - start)
                .offset(total - end if from_end else start)
            )
            # the page's ids come from the narrow index; only those rows are read whole
            rows = connection.execute(
                sa.select(review_items).where(review_items.c.item_id.in_(ids)).order_by(*order)
            )
            return Page([_item(row) for row in rows], total, page, per_page)

    def iter_items(self, filt: ItemFilter, sort: str = "-day") -> Iterator[Item]:
        """Every item matching `filt`, streamed (for exports)."""
        query = sa.select(review_items).where(*self._conditions(filt)).order_by(*self._order(sort))
        with self._engine.connect() as connection:
            result = connection.execution_options(yield_per=CHUNK_ROWS).execute(query)
            for row in result:
                yield _item(row)

    def item(self, item_id: str) -> Item:
        """The item with this id, or UnknownItem."""
        if not isinstance(item_id, str) or "\x00" in item_id:
            raise UnknownItem(item_id)
        with self._engine.connect() as connection:
            row = connection.execute(
                sa.select(review_items).where(review_items.c.item_id == item_id)
            ).first()
        if row is None:
            raise UnknownItem(item_id)
        return _item(row)

    def audit_trail(self, item_id: str | None = None, limit: int = 200) -> list[AuditEntry]:
        """The newest `limit` audit entries (of one item, or of the whole store), newest first."""
        query = sa.select(review_audit).order_by(review_audit.c.id.desc()).limit(max(limit, 0))
        if item_id is not None:
            query = query.where(review_audit.c.item_id == item_id)
        with self._engine.connect() as connection:
            return [AuditEntry(**dict(row._mapping)) for row in connection.execute(query)]

    # decisions

    def _lock(self, connection: Connection, item_id: str) -> sa.Row[str, str, str | None, int]:
        if not isinstance(item_id, str) or "\x00" in item_id:
            raise UnknownItem(item_id)
        query = sa.select(
            review_items.c.item_id,
            review_items.c.status,
            review_items.c.assignee,
            review_items.c.version,
        ).where(review_items.c.item_id == item_id)
        row = connection.execute(query.with_for_update()).first()
        if row is None:
            raise UnknownItem(item_id)
        return row

    def _change(
        self,
        item_ids: Sequence[str],
        column: str,
        decide: Callable[[str, Any], Any],
        actor: str,
        expected_version: ExpectedVersion,
        note: str | None,
    ) -> int:
        """Apply `decide(item_id, current value) -> new value` to each item in one transaction
        (all or none); returns how many changed. `expected_version` is one version for every
        item, or each item's own (as a queue page showed them), or None (no check).

        Each item is locked before it is read (FOR UPDATE; SQLite writers take the database lock
        at BEGIN), and the UPDATE is guarded by the version read: a concurrent change is never
        overwritten, and each audit entry's from-value is the value it replaced.
        """
        changed = 0
        with self._writing() as connection:
            # sorted: concurrent batches lock their items in one order (no deadlock)
            for item_id in sorted(set(item_ids)):
                current = self._lock(connection, item_id)
                seen = (
                    expected_version.get(item_id)
                    if isinstance(expected_version, Mapping)
                    else expected_version
                )
                if seen is not None and current.version != seen:
                    raise StaleItem(
                        f"item {item_id} changed (version {current.version}, "
                        f"you saw {seen}); reload it"
                    )
                old = getattr(current, column)
                new = decide(item_id, old)
                if new == old:
                    continue
                now = _now()
                updated = connection.execute(
                    sa.update(review_items)
                    .where(
                        review_items.c.item_id == item_id,
                        review_items.c.version == current.version,
                    )
                    .values({column: new, "version": current.version + 1, "updated_at": now})
                ).rowcount
                if updated != 1:
                    raise StaleItem(f"item {item_id} changed meanwhile; reload it")
                self._audit(
                    connection,
                    [
                        {
                            "item_id": item_id,
                            "actor": actor,
                            "at": now,
                            "action": "status" if column == "status" else "assign",
                            "from_value": old,
                            "to_value": new,
                            "note": note,
                        }
                    ],
                )
                changed += 1
        return changed

    def set_status(
        self,
        item_ids: Sequence[str],
        status: str,
        actor: str,
        note: str | None = None,
        expected_version: ExpectedVersion = None,
    ) -> int:
        """Move items to `status`, all or none (InvalidTransition if one may not); returns how
        many changed."""
        if status not in STATUSES:
            raise InvalidTransition(f"unknown status {status!r} (one of {', '.join(STATUSES)})")

        def decide(item_id: str, old: str) -> str:
            if status not in TRANSITIONS[old]:
                allowed = ", ".join(TRANSITIONS[old])
                raise InvalidTransition(
                    f"item {item_id} cannot move from {old} to {status} (allowed: {allowed})"
                )
            return status

        return self._change(item_ids, "status", decide, actor, expected_version, note)

    def assign(
        self,
        item_ids: Sequence[str],
        assignee: str | None,
        actor: str,
        expected_version: ExpectedVersion = None,
    ) -> int:
        """Give items to `assignee` (None: nobody); returns how many changed."""
        if assignee is not None and (not assignee.strip() or "\x00" in assignee):
            raise ValueError("assignee must be non-empty text (or None for nobody)")
        return self._change(
            item_ids, "assignee", lambda _id, _old: assignee, actor, expected_version, None
        )

    def add_note(self, item_id: str, note: str, actor: str) -> None:
        """Append a note to the item's audit trail."""
        if not isinstance(note, str) or not note.strip() or "\x00" in note:
            raise ValueError("a note must be non-empty text")
        with self._writing() as connection:
            self._lock(connection, item_id)
            self._audit(
                connection,
                [
                    {
                        "item_id": item_id,
                        "actor": actor,
                        "at": _now(),
                        "action": "note",
                        "from_value": None,
                        "to_value": None,
                        "note": note,
                    }
                ],
            )

    # overviews

    def partner_counts(
        self, partner_id: str, start: date | None = None, end: date | None = None
    ) -> list[tuple[date, str, int]]:
        """Items per day and rule of one partner (suppressed ones included)."""
        items = review_items.c
        query = (
            sa.select(items.day, items.rule, sa.func.count())
            .where(items.partner_id == partner_id)
            .group_by(items.day, items.rule)
            .order_by(items.day, items.rule)
        )
        if start is not None:
            query = query.where(items.day >= start)
        if end is not None:
            query = query.where(items.day <= end)
        with self._engine.connect() as connection:
            return [(day, rule, n) for day, rule, n in connection.execute(query)]

    def partners(self) -> list[tuple[str, int, int]]:
        """Each partner with its open (new or triaged, not suppressed) and all items."""
        items = review_items.c
        is_open = sa.and_(items.status.in_(OPEN_STATUSES), items.suppressed_by.is_(None))
        open_count = sa.func.sum(sa.case((is_open, 1), else_=0))
        query = (
            sa.select(items.partner_id, open_count, sa.func.count())
            .where(items.partner_id.is_not(None))
            .group_by(items.partner_id)
            .order_by(open_count.desc(), items.partner_id)
        )
        with self._engine.connect() as connection:
            return [(partner, int(n_open), n) for partner, n_open, n in connection.execute(query)]

    def facets(self) -> dict[str, list[str]]:
        """The values each queue filter can take, for drop-downs."""
        order = {"severity": list(SEVERITIES), "status": list(STATUSES)}
        facets: dict[str, list[str]] = {}
        with self._engine.connect() as connection:
            for name in ("partner_id", "app_id", "rule", "severity", "status", "assignee"):
                column = review_items.c[name]
                values = connection.execute(
                    sa.select(column).where(column.is_not(None)).distinct()
                ).scalars()
                ranking = order.get(name)
                facets[name] = sorted(
                    values, key=(lambda v, r=ranking: r.index(v)) if ranking else None
                )
        return facets


def _copy_value(value: Any) -> Any:
    """A row value as COPY takes it: JSON as text, the rest as psycopg adapts it."""
    return json.dumps(value) if isinstance(value, dict) else value


def _on_conflict(insert: Any) -> Any:
    """The upsert: an existing item's facts are refreshed, never its review decision."""
    facts = (
        "event_time",
        "rule",
        "severity",
        "severity_rank",
        "partner_id",
        "app_id",
        "user_id",
        "request_id",
        "resource",
        "action",
        "status_code",
        "explanation",
        "evidence",
        "score",
        "updated_at",
    )
    changes: dict[str, Any] = {name: insert.excluded[name] for name in facts}
    # an item redelivered on another day belongs to the earliest day that produced it
    changes["day"] = sa.case(
        (insert.excluded.day < review_items.c.day, insert.excluded.day),
        else_=review_items.c.day,
    )
    return insert.on_conflict_do_update(index_elements=["item_id"], set_=changes)
