"""pipeline.detect.alert_ids: the SQL and Python forms of a rule alert's id agree, and ids are
stable functions of (day, app, rule) alone."""

from __future__ import annotations

from datetime import date

import duckdb
from hypothesis import given
from hypothesis import strategies as st

from pipeline.detect.alert_ids import behaviour_alert_id, rule_alert_id, rule_alert_id_sql
from pipeline.schema import RULES

D = date(2026, 3, 9)


@given(app_id=st.text(min_size=1, max_size=40), rule=st.sampled_from(RULES))
def test_rule_alert_id_sql_matches_python(app_id: str, rule: str):
    con = duckdb.connect()
    (from_sql,) = con.execute(
        f"SELECT {rule_alert_id_sql(D, '$app', '$rule')}", {"app": app_id, "rule": rule}
    ).fetchone()
    assert from_sql == rule_alert_id(D, app_id, rule)


def test_rule_alert_id_differs_by_day_app_and_rule():
    ids = {
        rule_alert_id(D, "a", "NO_SIGNIN"),
        rule_alert_id(date(2026, 3, 10), "a", "NO_SIGNIN"),
        rule_alert_id(D, "b", "NO_SIGNIN"),
        rule_alert_id(D, "a", "SIGNIN_REVOKED"),
    }
    assert len(ids) == 4


def test_behaviour_alert_id_keeps_the_anomaly_item_id_of_earlier_stores():
    # md5("ANOMALY|partner_day|2026-03-09|p1||"), the id the review store gave anomaly items
    import hashlib

    expected = hashlib.md5(b"ANOMALY|partner_day|2026-03-09|p1||").hexdigest()
    assert behaviour_alert_id("partner_day", D, "p1", None, None) == expected
