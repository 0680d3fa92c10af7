"""An alert's flags read on demand from the warehouse: pages, filters, the stream, its users."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.detect.alert_flags import (
    alert_flag_count,
    alert_flags,
    alert_users,
    iter_alert_flag_batches,
)
from pipeline.detect.alert_ids import rule_alert_id
from pipeline.schema import FLAGS
from pipeline.warehouse import Warehouse
from tests.review.literals import D1, D2, at, flag, flags

CHAT = rule_alert_id(D1, "app-chat", "NO_SIGNIN")


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    wh = Warehouse(str(tmp_path / "warehouse"))
    rows = [
        flag(f"f{n:02}", event_time=at(D1, n % 24, n % 60), user_id=f"u{n % 3}",
             action=("read", "delete")[n % 2])
        for n in range(25)
    ]  # fmt: skip
    rows.append(flag("other", rule="SIGNIN_REVOKED"))
    wh.write_table("flags", D1, flags(*rows))
    return wh


def test_alert_flags_pages_in_event_time_order(warehouse: Warehouse):
    pages = [alert_flags(warehouse, D1, CHAT, offset=o, limit=10) for o in (0, 10, 20, 30)]
    assert [p.num_rows for p in pages] == [10, 10, 5, 0]
    assert pages[0].schema == FLAGS
    ids = [i for p in pages for i in p["flag_id"].to_pylist()]
    assert sorted(ids) == [f"f{n:02}" for n in range(25)]
    times = [t for p in pages for t in p["event_time"].to_pylist()]
    assert times == sorted(times)
    assert alert_flag_count(warehouse, D1, CHAT) == 25


def test_alert_flags_filters_by_user_request_and_action(warehouse: Warehouse):
    by_user = alert_flags(warehouse, D1, CHAT, user="u1", limit=100)
    assert set(by_user["user_id"].to_pylist()) == {"u1"} and by_user.num_rows == 8
    both = alert_flags(warehouse, D1, CHAT, user="u1", action="delete")
    assert both["flag_id"].to_pylist() == [f"f{n:02}" for n in range(25) if n % 3 == 1 and n % 2]
    assert alert_flags(warehouse, D1, CHAT, request_id="req-f07")["flag_id"].to_pylist() == ["f07"]
    assert alert_flag_count(warehouse, D1, CHAT, action="read") == 13
    # a hostile value is a value, not query text
    assert alert_flags(warehouse, D1, CHAT, user="' OR 1=1 --").num_rows == 0


def test_alert_flags_of_a_day_without_flags_are_empty(warehouse: Warehouse):
    assert alert_flags(warehouse, D2, CHAT).num_rows == 0
    assert alert_flag_count(warehouse, D2, CHAT) == 0
    assert list(iter_alert_flag_batches(warehouse, D2, CHAT)) == []
    assert alert_users(warehouse, D2, CHAT).num_rows == 0


@pytest.mark.parametrize(("offset", "limit"), [(-1, 10), (0, 0), (0, 10_001)])
def test_alert_flags_refuse_bad_paging(warehouse: Warehouse, offset: int, limit: int):
    with pytest.raises(ValueError, match="must be"):
        alert_flags(warehouse, D1, CHAT, offset=offset, limit=limit)


def test_alert_flags_stream_gives_every_flag_in_batches(warehouse: Warehouse):
    batches = list(iter_alert_flag_batches(warehouse, D1, CHAT, batch_rows=4))
    assert all(b.num_rows <= 4 for b in batches) and len(batches) >= 7
    streamed = pa.Table.from_batches(batches)
    assert streamed.equals(alert_flags(warehouse, D1, CHAT, limit=1000))


def test_alert_users_most_flags_first_and_searchable(warehouse: Warehouse):
    users = alert_users(warehouse, D1, CHAT).to_pylist()
    assert [(u["user_id"], u["flags"]) for u in users] == [("u0", 9), ("u1", 8), ("u2", 8)]
    assert alert_users(warehouse, D1, CHAT, search="U2")["user_id"].to_pylist() == ["u2"]
    assert alert_users(warehouse, D1, CHAT, limit=1)["user_id"].to_pylist() == ["u0"]


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["NO_SIGNIN", "SIGNIN_REVOKED"]),
                  st.sampled_from(["u1", "u2", "u3"]), st.integers(0, 23)),
        max_size=30,
    ),
    st.integers(1, 7),
)  # fmt: skip
def test_alert_flags_pages_add_up_to_the_alerts_flags(tmp_path_factory, rows, page):
    """For random flags, paging through an alert gives each of its flags once, and only those."""
    wh = Warehouse(str(tmp_path_factory.mktemp("wh")))
    table = flags(
        *(
            flag(f"f{n}", app_id=app, rule=rule, user_id=user, event_time=at(D1, hour))
            for n, (app, rule, user, hour) in enumerate(rows)
        )
    )
    wh.write_table("flags", D1, table)
    for app in ("a", "b"):
        for rule in ("NO_SIGNIN", "SIGNIN_REVOKED"):
            alert_id = rule_alert_id(D1, app, rule)
            expected = sorted(f"f{n}" for n, r in enumerate(rows) if r[:2] == (app, rule))
            got = []
            offset = 0
            while chunk := alert_flags(wh, D1, alert_id, offset=offset, limit=page).num_rows:
                got += alert_flags(wh, D1, alert_id, offset=offset, limit=page)[
                    "flag_id"
                ].to_pylist()
                offset += chunk
            assert sorted(got) == expected
            assert alert_flag_count(wh, D1, alert_id) == len(expected)
