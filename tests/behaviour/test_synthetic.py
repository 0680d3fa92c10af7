"""The evaluation harness's generator (pipeline/behaviour/synthetic.py): its plan, and its
injections at their stated strengths."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from pipeline.behaviour import synthetic
from pipeline.behaviour.features import DORMANT_DAYS

# a world with users busy enough for every stated strength: in one of 30 partners no user makes
# the 150 message accesses a delete spike is stated on, and the generator falls back to its
# busiest user, below the stated strength (a known gap of the harness in small worlds)
PARTNERS = 120


@pytest.fixture(scope="module")
def world() -> synthetic.World:
    return synthetic.make_world(3, partners=PARTNERS)


@pytest.fixture(scope="module")
def days(world) -> list[synthetic.SimDay]:
    return list(synthetic.simulate(world, DORMANT_DAYS))


def _of(table, column: str, value: str):
    return table.filter(pc.equal(table[column], value))


def test_the_plan_trains_on_clean_days_then_injects_every_kind_once(days):
    assert all(d.injection is None for d in days[: synthetic.TRAIN_DAYS])
    judged = [d.injection.kind for d in days if d.injection is not None and d.judged]
    assert sorted(judged) == sorted(synthetic.KINDS)
    clean = [d for d in days[synthetic.TRAIN_DAYS :] if d.injection is None]
    assert len(clean) == synthetic.CLEAN_TEST_DAYS
    # a ramp is its days in a row, judged on the last
    ramp = [i for i, d in enumerate(days) if d.injection and d.injection.kind == "slow_ramp"]
    assert ramp == list(range(ramp[0], ramp[0] + synthetic.RAMP_DAYS))
    assert [days[i].judged for i in ramp] == [False] * (synthetic.RAMP_DAYS - 1) + [True]
    assert [days[i].injection.ramp_step for i in ramp] == list(range(1, synthetic.RAMP_DAYS + 1))


def test_a_delete_spike_is_on_days_of_enough_message_accesses_at_its_stated_share(world, days):
    day = next(d for d in days if d.injection and d.injection.kind == "delete_spike")
    inj = day.injection
    messages = day.access.filter(pc.equal(day.access["resource"], "messages"))
    for column, value in (
        ("app_id", world.app_names[inj.partner]),
        ("user_id", inj.user_name),
    ):
        mine = _of(messages, column, value)
        assert mine.num_rows >= synthetic.DELETE_MIN_ACCESSES
        deletes = pc.sum(pc.equal(mine["action"], "delete")).as_py() / mine.num_rows
        assert deletes == pytest.approx(0.15, abs=0.05)


def test_a_clean_day_reads_no_one_long_after_they_revoked(days):
    # a token's last minutes only (natural_consent): reading on is the post_revocation injection
    revoked = 0
    for day in days:
        if day.injection is not None:
            continue
        revokes = day.consent.filter(
            pc.and_(
                pc.equal(day.consent["event_type"], "revoke"),
                pc.equal(day.consent["delivery_date"], day.day),
            )
        )
        at = dict(
            zip(revokes["user_id"].to_pylist(), revokes["event_time"].to_pylist(), strict=True)
        )
        calls = day.access.filter(pc.is_in(day.access["user_id"], revokes["user_id"]))
        for user, time in zip(
            calls["user_id"].to_pylist(), calls["event_time"].to_pylist(), strict=True
        ):
            assert (time - at[user]).total_seconds() <= 10 * 60 + 1
        revoked += len(at)
    assert revoked > 0  # the clean days do have revocations
