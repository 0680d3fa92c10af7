"""Failed-login throttling per user name and per client address, in the review store's database
so that every worker agrees: a few free failures, then each further one blocks that key for a
doubling delay (1 s, 2 s, 4 s … up to 15 min). Attempts while blocked are refused unchecked
(no password hash is computed for them) and do not count."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from pipeline.review.tables import UTCDateTime

USER_FREE_FAILURES = 5
ADDRESS_FREE_FAILURES = 20  # an office behind one address shares it
MAX_DELAY_SECONDS = 15 * 60
FORGET_SECONDS = 60 * 60  # failures this long ago no longer count

metadata = sa.MetaData()
review_login_throttle = sa.Table(
    "review_login_throttle",
    metadata,
    # "user:" or "addr:" and a SHA-256: names typed at the login form are attacker's text
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure_at", UTCDateTime, nullable=False),
    sa.Column("blocked_until", UTCDateTime),
)


def throttle_key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.encode("utf-8", "backslashreplace")).hexdigest()
    return f"{kind}:{digest}"


def delay_after(failures: int, free: int) -> float:
    """Seconds a key stays blocked after its `failures`-th failure (0 while still free)."""
    if failures <= free:
        return 0.0
    return float(min(2 ** min(failures - free - 1, 30), MAX_DELAY_SECONDS))


def _insert(connection: Connection) -> Any:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


class LoginThrottle:
    """Counts failures; `wait_seconds` says how long a login attempt must still wait."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self.clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _keys(self, user: str, address: str | None) -> dict[str, int]:
        keys = {throttle_key("user", user): USER_FREE_FAILURES}
        if address:
            keys[throttle_key("addr", address)] = ADDRESS_FREE_FAILURES
        return keys

    def wait_seconds(self, user: str, address: str | None) -> int:
        """Whole seconds until this user may try from this address again (0: now)."""
        now = self._now()
        table = review_login_throttle.c
        with self._engine.connect() as connection:
            blocked = connection.execute(
                sa.select(sa.func.max(table.blocked_until)).where(
                    table.key.in_(list(self._keys(user, address))), table.blocked_until > now
                )
            ).scalar_one()
        if blocked is None:
            return 0
        if blocked.tzinfo is None:  # an aggregate is not typed by the column on SQLite
            blocked = datetime.fromisoformat(str(blocked)).replace(tzinfo=UTC)
        return max(1, math.ceil((blocked - now).total_seconds()))

    def failed(self, user: str, address: str | None) -> int:
        """Count a failure for the user and the address; returns the longer new block (s)."""
        now = self._now()
        forget = now - timedelta(seconds=FORGET_SECONDS)
        table = review_login_throttle.c
        longest = 0.0
        with self._engine.connect() as connection:
            connection.execution_options(review_write=True)
            with connection.begin():
                for key, free in sorted(self._keys(user, address).items()):
                    # the row exists first (another worker may make it meanwhile), then is locked
                    connection.execute(
                        _insert(connection)(review_login_throttle)
                        .values(key=key, failures=0, last_failure_at=now)
                        .on_conflict_do_nothing()
                    )
                    row = connection.execute(
                        sa.select(table.failures, table.last_failure_at)
                        .where(table.key == key)
                        .with_for_update()
                    ).one()
                    failures = 1 if row.last_failure_at < forget else row.failures + 1
                    delay = delay_after(failures, free)
                    values = {
                        "failures": failures,
                        "last_failure_at": now,
                        "blocked_until": now + timedelta(seconds=delay) if delay else None,
                    }
                    connection.execute(
                        sa.update(review_login_throttle).where(table.key == key).values(values)
                    )
                    longest = max(longest, delay)
                connection.execute(
                    sa.delete(review_login_throttle).where(
                        table.last_failure_at < forget,
                        sa.or_(table.blocked_until.is_(None), table.blocked_until < now),
                    )
                )
        return math.ceil(longest)

    def succeeded(self, user: str) -> None:
        """The user's own count starts again; the address's does not (one valid login of an
        attacker's own must not clear the count of their guesses at others)."""
        with self._engine.connect() as connection:
            connection.execution_options(review_write=True)
            with connection.begin():
                connection.execute(
                    sa.delete(review_login_throttle).where(
                        review_login_throttle.c.key == throttle_key("user", user)
                    )
                )
