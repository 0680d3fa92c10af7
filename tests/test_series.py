"""pipeline.detect.series.series_of: (app, rule) alerts on consecutive days form one series."""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from pipeline.detect.series import series_of

D = date(2026, 3, 1)


def keys(*rows: tuple[str, str, int]) -> pa.Table:
    return pa.table(
        {
            "app_id": [r[0] for r in rows],
            "rule": [r[1] for r in rows],
            "day": pa.array([D + timedelta(r[2]) for r in rows], pa.date32()),
        }
    )


def test_series_of_joins_consecutive_days_and_splits_at_a_gap():
    result = series_of(keys(("a", "R", 0), ("a", "R", 1), ("a", "R", 2), ("a", "R", 4)))
    rows = result.to_pylist()
    assert [r["series_days"] for r in rows] == [3, 3, 3, 1]
    assert len({r["series_id"] for r in rows[:3]}) == 1
    assert rows[3]["series_id"] != rows[0]["series_id"]
    assert rows[0]["series_start"] == D and rows[0]["series_end"] == D + timedelta(2)
    assert rows[3]["series_start"] == rows[3]["series_end"] == D + timedelta(4)


def test_series_of_keeps_apps_and_rules_apart():
    rows = series_of(keys(("a", "R", 0), ("b", "R", 1), ("a", "S", 1))).to_pylist()
    assert len({r["series_id"] for r in rows}) == 3
    assert all(r["series_days"] == 1 for r in rows)


def test_series_of_counts_a_repeated_key_once():
    rows = series_of(keys(("a", "R", 0), ("a", "R", 0), ("a", "R", 1))).to_pylist()
    assert len(rows) == 2 and rows[0]["series_days"] == 2


def test_series_id_is_stable_and_names_the_first_day():
    first = series_of(keys(("a", "R", 3), ("a", "R", 4))).column("series_id").to_pylist()
    again = series_of(keys(("a", "R", 4), ("a", "R", 3))).column("series_id").to_pylist()
    assert first == again
    grown = series_of(keys(("a", "R", 2), ("a", "R", 3), ("a", "R", 4)))
    assert grown.column("series_id")[1].as_py() != first[0]  # a backfilled day before: a new id


@given(st.sets(st.integers(0, 40), min_size=1, max_size=30))
def test_series_of_matches_a_plain_reading(days: set[int]):
    """Two days share a series exactly when every day between them is there too."""
    rows = series_of(keys(*(("a", "R", n) for n in days))).to_pylist()
    by_day = {(r["day"] - D).days: r["series_id"] for r in rows}
    for x in days:
        for y in days:
            if x < y:
                unbroken = all(n in days for n in range(x, y + 1))
                assert (by_day[x] == by_day[y]) == unbroken
