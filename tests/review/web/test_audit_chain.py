"""The audit trail is a hash chain: `review verify-audit` passes on the store's own writes (also
concurrent ones, on SQLite and PostgreSQL) and names the first row edited, deleted or slipped
in by SQL; the CLI records the OS user beside `--as`."""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from pipeline.cli import main
from pipeline.errors import InvalidTransition
from pipeline.review.audit_chain import GENESIS, HASHED, row_hash, verify_rows
from pipeline.review.sessions import engine_of
from pipeline.review.store import AlertFilter, ReviewStore
from tests.review.literals import D1, D2, alert, alerts


def day_alerts(day: date, count: int) -> Any:
    """Rule alerts of `count` apps."""
    return alerts(*(alert(day, app_id=f"app-{day}-{i}") for i in range(count)))


def item_ids(store: ReviewStore, day: date) -> list[str]:
    page = store.alerts(
        AlertFilter(start=day, end=day, include_suppressed=True), sort="day", per_page=500
    )
    return sorted(a.alert_id for a in page.alerts)


@pytest.fixture
def chained(store_url: str) -> Iterator[ReviewStore]:
    """A store (SQLite and PostgreSQL) with items and a few decisions in its trail."""
    store = ReviewStore.open(store_url)
    store.upsert_day(D1, day_alerts(D1, 6))
    f = item_ids(store, D1)
    store.set_status(f[:2], "triaged", "rita", note="looking")
    store.assign([f[2]], "vic", "rita")
    store.add_note([f[3]], "a note", "vic")
    store.suppress(f"app-{D1}-5", "NO_SIGNIN", D2, "known", "rita")
    yield store
    store.dispose()


def sql(store: ReviewStore, statement: str, **values: Any) -> list[Any]:
    with engine_of(store).begin() as connection:
        result = connection.execute(sa.text(statement), values)
        return list(result) if result.returns_rows else []


def verify(url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["review", "verify-audit", "--db", url])
    return code, capsys.readouterr().out.strip()


def ids(store: ReviewStore) -> list[int]:
    return [row[0] for row in sql(store, "SELECT id FROM review_audit ORDER BY chain_seq")]


def test_the_stores_own_writes_verify(chained, store_url, capsys) -> None:
    code, out = verify(store_url, capsys)
    rows = len(ids(chained))
    assert code == 0 and out.startswith(f"audit trail intact: {rows} row(s), head #{rows} ")
    assert rows >= 6


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("note", "'nothing to see'"),
        ("actor", "'mallory'"),
        ("to_value", "'false_positive'"),
        ("action", "'note'"),
        ("alert_id", "NULL"),
        ("via", "'series'"),
        ("origin", "'cli os_user=root'"),
        ("chain_hash", "'" + "0" * 64 + "'"),
    ],
)
def test_a_row_edited_in_sql_breaks_the_chain_at_that_row(
    chained, store_url, capsys, column: str, value: str
) -> None:
    victim = ids(chained)[2]
    sql(chained, f"UPDATE review_audit SET {column} = {value} WHERE id = :id", id=victim)
    code, out = verify(store_url, capsys)
    assert code == 1
    assert out.startswith(f"audit trail broken at row id {victim} (chain position 3)"), out
    assert "2 row(s) before it verify" in out


def test_a_row_with_another_time_breaks_the_chain(chained, store_url, capsys) -> None:
    victim = ids(chained)[1]
    (at,) = sql(chained, "SELECT at FROM review_audit WHERE id = :id", id=victim)[0]
    earlier = (at if isinstance(at, datetime) else datetime.fromisoformat(at)) - timedelta(hours=1)
    sql(chained, "UPDATE review_audit SET at = :at WHERE id = :id", at=earlier, id=victim)
    code, out = verify(store_url, capsys)
    assert code == 1 and f"row id {victim} " in out


def test_a_deleted_row_breaks_the_chain_at_the_next(chained, store_url, capsys) -> None:
    order = ids(chained)
    sql(chained, "DELETE FROM review_audit WHERE id = :id", id=order[1])
    code, out = verify(store_url, capsys)
    assert code == 1
    assert f"row id {order[2]} (chain position 2)" in out and "position 2 is missing" in out


def test_a_row_slipped_in_by_sql_is_not_in_the_chain(chained, store_url, capsys) -> None:
    sql(
        chained,
        "INSERT INTO review_audit (alert_id, actor, at, action) VALUES (:item, 'x', :at, 'note')",
        item=item_ids(chained, D1)[4],
        at=datetime.now(UTC),
    )
    (slipped,) = sql(chained, "SELECT max(id) FROM review_audit")[0]
    code, out = verify(store_url, capsys)
    assert code == 1 and f"row id {slipped} " in out and "not chained" in out


def test_concurrent_writers_chain_in_commit_order(chained, store_url, capsys) -> None:
    """Reviewers deciding while a day is published: no deadlock (PostgreSQL detects one
    within a second and fails a writer), and every row in the chain, once."""
    before = len(ids(chained))
    chained.upsert_day(D2, day_alerts(D2, 40))
    g = item_ids(chained, D2)
    batches = [g[start::4] for start in range(4)]

    def decide(batch: list[str]) -> int:
        changed = chained.set_status(batch, "triaged", "rita")
        changed += chained.assign(batch, "vic", "rita")
        return changed

    def publish(_: int) -> int:
        return chained.upsert_day(D2, day_alerts(D2, 40))["updated"]

    with ThreadPoolExecutor(6) as pool:
        decided = list(pool.map(decide, batches))
        republished = list(pool.map(publish, range(2)))
    assert sum(decided) == 80 and republished == [40, 40]
    rows = ids(chained)
    assert len(rows) == before + 1 + 80 + 2 and len(set(rows)) == len(rows)
    code, out = verify(store_url, capsys)
    assert code == 0, out


def test_a_rolled_back_change_leaves_the_chain_whole(chained, store_url, capsys) -> None:
    f = item_ids(chained, D1)
    with pytest.raises(InvalidTransition):
        chained.set_status([f[4], f[0]], "new", "rita")  # f[0] is triaged: all or none
    chained.add_note([f[4]], "after the rollback", "rita")
    code, out = verify(store_url, capsys)
    assert code == 0, out


def test_the_cli_records_the_os_user_beside_as(chained, store_url, capsys) -> None:
    item = item_ids(chained, D1)[5]
    assert (
        main(["review", "note", item, "--text", "checked", "--db", store_url, "--as", "alice"]) == 0
    )
    rows = sql(
        chained,
        "SELECT actor, origin FROM review_audit WHERE alert_id = :item AND action = 'note'",
        item=item,
    )
    assert rows == [("alice", f"cli os_user={pwd.getpwuid(os.getuid()).pw_name}")]


def test_the_migration_chains_the_trail_written_before_it(tmp_path, capsys) -> None:
    from alembic import command
    from alembic.config import Config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    config = Config()
    config.set_main_option("script_location", "pipeline/review/migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        for i in range(5):
            connection.execute(
                sa.text(
                    "INSERT INTO review_audit (item_id, actor, at, action, note) "
                    "VALUES (NULL, 'pipeline', :at, 'ingest', :note)"
                ),
                {"at": datetime(2026, 3, 1 + i), "note": f"day {i}"},
            )
    engine.dispose()
    ReviewStore.open(url).dispose()
    code, out = verify(url, capsys)
    assert code == 0 and "intact: 5 row(s)" in out


row_values = st.fixed_dictionaries(
    {
        "id": st.integers(1, 10**9),
        "item_id": st.none() | st.text(max_size=10),
        "alert_id": st.none() | st.text(max_size=10),
        "via": st.none() | st.text(max_size=10),
        "actor": st.text(max_size=10),
        "at": st.datetimes(timezones=st.just(UTC)),
        "action": st.sampled_from(["status", "note", "login", "refused"]),
        "from_value": st.none() | st.text(max_size=10),
        "to_value": st.none() | st.text(max_size=10),
        "note": st.none() | st.text(max_size=20),
        "origin": st.none() | st.text(max_size=10),
    }
)


def chain_of(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    previous, chained = GENESIS, []
    for position, row in enumerate(rows, start=1):
        previous = row_hash(previous, position, row)
        chained.append({**row, "chain_seq": position, "chain_hash": previous})
    return chained


@given(st.lists(row_values, min_size=1, max_size=8), st.data())
def test_any_change_to_any_field_is_caught_at_its_row(rows, data) -> None:
    chain = chain_of(rows)
    assert verify_rows(chain).broken is None
    index = data.draw(st.integers(0, len(chain) - 1))
    field = data.draw(st.sampled_from(HASHED))
    new = data.draw(row_values)[field]
    if new == chain[index][field]:
        return
    tampered = [dict(row) for row in chain]
    tampered[index][field] = new
    report = verify_rows(tampered)
    assert report.broken is not None and report.broken.position == index + 1
    assert report.rows == index


@given(st.lists(row_values, min_size=2, max_size=8), st.data())
def test_a_removed_row_is_caught(rows, data) -> None:
    chain = chain_of(rows)
    index = data.draw(st.integers(0, len(chain) - 2))
    report = verify_rows(chain[:index] + chain[index + 1 :])
    assert report.broken is not None and report.broken.position == index + 1


def test_the_stores_audit_entries_are_as_before(chained) -> None:
    # the chain is kept beside the store's own columns: AuditEntry is unchanged
    (entry,) = [e for e in chained.audit_trail(item_ids(chained, D1)[3]) if e.action == "note"]
    assert (entry.action, entry.note, entry.actor) == ("note", "a note", "vic")


def test_audit_rows_are_chained_last_so_writers_cannot_deadlock_on_the_chain(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two transactions each lock an item and write an audit row, then the first wants the
    second's item. Were the chain's lock taken at the audit row, the second would wait for
    it while holding what the first waits for: PostgreSQL's deadlock error. Taken at commit,
    the second commits and the first goes on."""
    import threading

    from pipeline.review.audit_chain import chain_entries

    store = ReviewStore.open(postgres_url)
    try:
        store.upsert_day(D1, day_alerts(D1, 2))
        x, y = item_ids(store, D1)
        engine = engine_of(store)
        has_y = threading.Event()
        errors: list[BaseException] = []

        def entry(item: str) -> list[dict[str, Any]]:
            return [
                {
                    "alert_id": item,
                    "item_id": None,
                    "actor": "t",
                    "at": datetime.now(UTC),
                    "action": "note",
                    "from_value": None,
                    "to_value": None,
                    "note": "n",
                }
            ]

        def touch(connection: Any, item: str) -> None:
            connection.execute(
                sa.text("UPDATE review_alerts SET version = version + 1 WHERE alert_id = :i"),
                {"i": item},
            )

        def first() -> None:
            try:
                with engine.begin() as connection:
                    touch(connection, x)
                    chain_entries(connection, entry(x))
                    assert has_y.wait(10)
                    touch(connection, y)  # waits for the second to commit
            except BaseException as exc:
                errors.append(exc)

        def second() -> None:
            try:
                with engine.begin() as connection:
                    touch(connection, y)
                    has_y.set()
                    chain_entries(connection, entry(y))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        threads[0].start()
        while not threads[0].is_alive():
            pass
        threads[1].start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        code, out = verify(postgres_url, capsys)
        assert code == 0, out
    finally:
        store.dispose()
