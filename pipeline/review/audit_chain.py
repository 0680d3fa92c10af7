"""The review audit trail as a hash chain: each row holds its position in the chain and the
SHA-256 of the previous row's hash and its own contents, so a row edited, deleted or slipped
in by SQL breaks the chain from that row on (`access-audit review verify-audit`).

Rows are inserted by `chain_entries` at once (errors surface where they are made) and chained
just before their transaction commits: taking the chain's lock last means a writer holding it
never waits for another lock, so reviewers and an ingest on PostgreSQL cannot deadlock on it,
and the chain's order is the order of commits. Truncating the tail leaves a valid shorter
chain: `verify-audit` prints the head's position and hash to be kept elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.review.tables import review_audit

GENESIS = "0" * 64  # the "previous hash" of the first row
CHAIN_LOCK_KEY = 7_305_912  # PostgreSQL advisory lock: one chainer at a time
CHUNK_ROWS = 1000
PENDING = "access_audit_chain_pending"  # connection.info flag: rows to chain at commit
HASHED = (
    "id",
    "item_id",
    "alert_id",
    "actor",
    "at",
    "action",
    "from_value",
    "to_value",
    "note",
    "via",
    "origin",
)

# The trail's columns as the store declares them (whatever they become), plus this module's.
# A column added to the trail later is stored but not hashed until HASHED names it (the hash
# of rows already chained must not change).
audit_rows = sa.table(
    "review_audit",
    *(sa.column(column.name, column.type) for column in review_audit.columns),
    sa.column("origin", sa.Text),
    sa.column("chain_seq", sa.Integer),
    sa.column("chain_hash", sa.String),
)

_origin: ContextVar[str | None] = ContextVar("audit_origin", default=None)
_listening = threading.Lock()


@contextmanager
def acting_from(origin: str) -> Iterator[None]:
    """Audit rows written inside the block say where they came from (the CLI's OS user, a web
    request's address) beside the actor they name."""
    token = _origin.set(origin[:500])
    try:
        yield
    finally:
        _origin.reset(token)


def _canonical(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def row_hash(previous: str, position: int, row: Mapping[Any, Any]) -> str:
    """The hash of a row at `position` (from 1) after a row whose hash is `previous`."""
    body = json.dumps(
        [position, *(_canonical(row[name]) for name in HASHED)],
        ensure_ascii=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(f"{previous}\n{body}".encode()).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    """The first row where the chain does not hold, and why."""

    row_id: int | None
    position: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    rows: int
    head_hash: str
    broken: ChainBreak | None


def verify_rows(rows: Iterable[Mapping[Any, Any]]) -> ChainReport:
    """Walk rows in chain order (by chain_seq) and report the first that does not follow."""
    previous, expected, count = GENESIS, 1, 0
    for row in rows:
        position = row["chain_seq"]
        if position is None:
            return ChainReport(count, previous, ChainBreak(row["id"], expected, "not chained"))
        if position != expected:
            reason = f"chain position {expected} is missing (next is {position})"
            return ChainReport(count, previous, ChainBreak(row["id"], expected, reason))
        if row["chain_hash"] != row_hash(previous, position, row):
            reason = "its contents or hash were changed"
            return ChainReport(count, previous, ChainBreak(row["id"], position, reason))
        previous, expected, count = row["chain_hash"], expected + 1, count + 1
    return ChainReport(count, previous, None)


def verify_chain(connection: Connection) -> ChainReport:
    """Verify the stored chain: every row chained, in order, each hash matching."""
    unchained = connection.execute(
        sa.select(audit_rows.c.id)
        .where(audit_rows.c.chain_seq.is_(None))
        .order_by(audit_rows.c.id)
        .limit(1)
    ).scalar()
    result = connection.execution_options(yield_per=CHUNK_ROWS).execute(
        sa.select(audit_rows).where(audit_rows.c.chain_seq.is_not(None)).order_by("chain_seq")
    )
    report = verify_rows(row._mapping for row in result)
    result.close()
    if report.broken is None and unchained is not None:
        broken = ChainBreak(unchained, report.rows + 1, "not chained (added outside the store)")
        return ChainReport(report.rows, report.head_hash, broken)
    return report


def seal(connection: Connection) -> int:
    """Chain every committed or own row not chained yet, in id order; returns how many."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})
    columns = audit_rows.c
    head = connection.execute(
        sa.select(columns.chain_seq, columns.chain_hash)
        .where(columns.chain_seq.is_not(None))
        .order_by(columns.chain_seq.desc())
        .limit(1)
    ).first()
    position, previous = (head.chain_seq, head.chain_hash) if head else (0, GENESIS)
    pending = connection.execute(
        sa.select(audit_rows).where(columns.chain_seq.is_(None)).order_by(columns.id)
    ).all()
    updates = []
    for row in pending:
        position += 1
        previous = row_hash(previous, position, row._mapping)
        updates.append({"row_id": row.id, "seq": position, "hash": previous})
    if updates:
        connection.execute(
            sa.update(audit_rows)
            .where(columns.id == sa.bindparam("row_id"))
            .values(chain_seq=sa.bindparam("seq"), chain_hash=sa.bindparam("hash")),
            updates,
        )
    return len(updates)


def _seal_before_commit(connection: Connection) -> None:
    if connection.info.pop(PENDING, False):
        seal(connection)


def _forget_on_rollback(connection: Connection) -> None:
    connection.info.pop(PENDING, None)


def _listen(engine: Engine) -> None:
    with _listening:
        if not sa.event.contains(engine, "commit", _seal_before_commit):
            sa.event.listen(engine, "commit", _seal_before_commit)
            sa.event.listen(engine, "rollback", _forget_on_rollback)


def chain_entries(connection: Connection, entries: list[dict[str, Any]]) -> None:
    """Insert audit entries (dicts of `tables.review_audit`'s columns but id) in the
    connection's transaction; they are chained when it commits."""
    if not entries:
        return
    _listen(connection.engine)
    origin = _origin.get()
    rows = [{"origin": origin, **entry} for entry in entries]
    for start in range(0, len(rows), CHUNK_ROWS):
        connection.execute(sa.insert(audit_rows), rows[start : start + CHUNK_ROWS])
    connection.info[PENDING] = True


def record(engine: Engine, entries: list[dict[str, Any]]) -> None:
    """Write store-wide audit entries (logins, refusals, exports) in a transaction of their own."""
    with engine.connect() as connection:
        connection.execution_options(review_write=True)
        with connection.begin():
            chain_entries(connection, entries)


def verify_audit(store: Any) -> tuple[bool, str]:
    """(intact, one line for the CLI) about the review store's audit trail."""
    from pipeline.review.sessions import engine_of

    with engine_of(store).connect() as connection:
        report = verify_chain(connection)
    if report.broken is None:
        return True, (
            f"audit trail intact: {report.rows} row(s), head #{report.rows} {report.head_hash} "
            "(keep this line elsewhere: a shortened trail would still verify)"
        )
    broken = report.broken
    return False, (
        f"audit trail broken at row id {broken.row_id} (chain position {broken.position}): "
        f"{broken.reason}; {report.rows} row(s) before it verify"
    )
