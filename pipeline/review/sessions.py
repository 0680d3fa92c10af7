"""Server-side sessions of the review UI, in the review store's database: the browser holds only
a random id; the row (found by the id's SHA-256, the id itself is never stored) says who is
logged in, so logout, a password change or an admin's "log out everyone" end a session for
every copy of its cookie and in every worker."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.review.tables import UTCDateTime

IDLE_SECONDS = 60 * 60  # a session nobody used for this long has ended
LIFETIME_SECONDS = 12 * 3600  # absolute: a session ends this long after its login
TOUCH_SECONDS = 60  # last use is written at most once a minute (not on every request)
KEEP_ENDED_SECONDS = 24 * 3600  # ended rows are deleted after this (they only explain a 401)
ID_BYTES = 32

metadata = sa.MetaData()
review_sessions = sa.Table(
    "review_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_name", sa.Text),  # None: a session with data but no login (Airflow's users)
    sa.Column("password_tag", sa.String(32)),  # of the hash the user logged in with
    sa.Column("address", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("seen_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime),
    sa.Column("end_reason", sa.String(32)),
    sa.Column("data", sa.JSON, nullable=False),
)


def new_session_id() -> str:
    """A fresh random id for a cookie (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(ID_BYTES)


def id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def password_tag(password_hash: str) -> str:
    """A short fingerprint of a user's password hash: a session remembers which hash it was
    logged in with, and ends when the settings hold another (the password was changed)."""
    return hashlib.sha256(b"password-tag|" + password_hash.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class SessionRecord:
    """A live session as its row holds it."""

    user_name: str | None
    password_tag: str | None
    created_at: datetime
    seen_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class Lookup:
    """What a cookie's id found: a live session, or whether a dead one (ended, expired) or
    nothing at all had that id."""

    record: SessionRecord | None
    known: bool


class SessionStore:
    """Sessions in one table; every method is one short transaction."""

    def __init__(
        self,
        engine: Engine,
        *,
        idle_seconds: int = IDLE_SECONDS,
        lifetime_seconds: int = LIFETIME_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self.idle = timedelta(seconds=idle_seconds)
        self.lifetime = timedelta(seconds=lifetime_seconds)
        self.clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._engine.connect() as connection:
            # SQLite: BEGIN IMMEDIATE, as the review store's writers do (see store._sqlite_engine)
            connection.execution_options(review_write=True)
            with connection.begin():
                yield connection

    def start(
        self,
        user_name: str | None,
        tag: str | None,
        address: str | None,
        data: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> str:
        """A new session (under a fresh id unless one is given); returns the id for the cookie.
        Long-dead rows are cleared meanwhile."""
        session_id = session_id or new_session_id()
        now = self.now()
        with self._writing() as connection:
            connection.execute(
                sa.insert(review_sessions).values(
                    id_hash=id_hash(session_id),
                    user_name=user_name,
                    password_tag=tag,
                    address=address,
                    created_at=now,
                    seen_at=now,
                    data=data or {},
                )
            )
            self._purge(connection, now)
        return session_id

    def _live(self, now: datetime) -> sa.ColumnElement[bool]:
        columns = review_sessions.c
        return sa.and_(
            columns.ended_at.is_(None),
            columns.created_at > now - self.lifetime,
            columns.seen_at > now - self.idle,
        )

    def load(self, session_id: str) -> Lookup:
        """The live session of this id; its last use is noted (at most once a minute)."""
        now = self.now()
        columns = review_sessions.c
        key = id_hash(session_id)
        with self._engine.connect() as connection:
            row = connection.execute(
                sa.select(review_sessions, self._live(now).label("live")).where(
                    columns.id_hash == key
                )
            ).first()
        if row is None:
            return Lookup(None, known=False)
        if not row.live:
            return Lookup(None, known=True)
        if now - row.seen_at >= timedelta(seconds=TOUCH_SECONDS):
            with self._writing() as connection:
                connection.execute(
                    sa.update(review_sessions)
                    .where(columns.id_hash == key, columns.ended_at.is_(None))
                    .values(seen_at=now)
                )
        record = SessionRecord(
            row.user_name, row.password_tag, row.created_at, row.seen_at, dict(row.data or {})
        )
        return Lookup(record, known=True)

    def save_data(self, session_id: str, data: dict[str, Any]) -> None:
        """Keep the session's data (flashed messages); an ended session stays ended."""
        columns = review_sessions.c
        with self._writing() as connection:
            connection.execute(
                sa.update(review_sessions)
                .where(columns.id_hash == id_hash(session_id), columns.ended_at.is_(None))
                .values(data=data)
            )

    def end(self, session_id: str, reason: str) -> bool:
        """End one session (logout); True if it was live."""
        return self._end(review_sessions.c.id_hash == id_hash(session_id), reason) > 0

    def end_all(self, reason: str, user_name: str | None = None) -> int:
        """End every live session (of one user); returns how many."""
        condition = sa.true() if user_name is None else review_sessions.c.user_name == user_name
        return self._end(condition, reason)

    def _end(self, condition: sa.ColumnElement[bool], reason: str) -> int:
        columns = review_sessions.c
        with self._writing() as connection:
            return connection.execute(
                sa.update(review_sessions)
                .where(condition, columns.ended_at.is_(None))
                .values(ended_at=self.now(), end_reason=reason[:32])
            ).rowcount

    def live_count(self, user_name: str | None = None) -> int:
        columns = review_sessions.c
        query = sa.select(sa.func.count()).where(self._live(self.now()))
        if user_name is not None:
            query = query.where(columns.user_name == user_name)
        with self._engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def _purge(self, connection: Connection, now: datetime) -> None:
        columns = review_sessions.c
        keep = timedelta(seconds=KEEP_ENDED_SECONDS)
        connection.execute(
            sa.delete(review_sessions).where(
                sa.or_(
                    columns.ended_at < now - keep,
                    columns.seen_at < now - self.idle - keep,
                    columns.created_at < now - self.lifetime - keep,
                )
            )
        )


def engine_of(store: Any) -> Engine:
    """The review store's engine: sessions live in the store's database, so every worker (and
    the CLI's `review logout-all`) sees the same ones."""
    engine: Engine = store._engine
    return engine


def logout_all(store: Any, actor: str, user_name: str | None = None) -> int:
    """An admin's "log out everyone" (or one user): every live session ends now, in every
    worker; recorded in the audit trail. Returns how many ended."""
    from pipeline.review.audit_chain import record

    engine = engine_of(store)
    ended = SessionStore(engine).end_all("logged out by admin", user_name)
    entry = {
        "alert_id": None,
        "item_id": None,
        "actor": actor,
        "at": datetime.now(UTC),
        "action": "logout_all",
        "from_value": None,
        "to_value": user_name or "(everyone)",
        "note": f"{ended} session(s) ended",
    }
    record(engine, [entry])
    return ended
