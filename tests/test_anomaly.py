"""The behaviour model: significance over noise on literal tables, scikit-learn's contract,
determinism, and the store's round trip and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from pipeline.behaviour.evidence import count_evidence, fit_spread, fit_spread_by, share_evidence
from pipeline.behaviour.metrics import (
    alert_figures,
    precision_at_k,
    ranking_figures,
    recall_at_k,
    with_alert_rank,
)
from pipeline.behaviour.model import (
    FAMILIES,
    FEATURES,
    BehaviourModel,
    score,
    tail_level,
)
from pipeline.behaviour.store import load_model, save_model
from pipeline.errors import ModelMismatch, NoModel
from pipeline.schema import ACTION_COUNTS
from tests.behaviour.tables import row, training_frame


@pytest.fixture(scope="module")
def fitted() -> BehaviourModel:
    return BehaviourModel().fit(training_frame())


def ranked(model: BehaviourModel, rows: list[dict]) -> list[str]:
    scored = score(model, pd.DataFrame(rows)).to_pandas()
    return scored.sort_values("rank")["partner_id"].tolist()


def test_a_large_clear_shift_outranks_a_small_noisy_one(fitted):
    rows = [
        # 15 deletes where 5 are usual, of 200 calls: a small count's ratio, little evidence
        row("noisy", message_deletes=15, message_deletes_baseline=5,
            message_deletes_hist=5 * 21),
        # 2,104 of 2,110 message accesses at night where 1% is usual: overwhelming
        row("night", message_accesses=2110, night_accesses=2104, calls=2120,
            message_reads=1590, calls_baseline=2120, message_reads_baseline=1590,
            night_accesses_hist=0.01 * 2110 * 21, night_accesses_of_hist=2110 * 21),
        row("usual"),
    ]  # fmt: skip
    assert ranked(fitted, rows) == ["night", "noisy", "usual"]
    scored = score(fitted, pd.DataFrame(rows)).to_pandas().set_index("partner_id")
    assert scored.loc["night", "alert"] and not scored.loc["noisy", "alert"]
    assert scored.loc["night", "explanation"].startswith(
        "2,104 of 2,110 message accesses between 00:00 and 05:00 UTC, usually 1.0%"
    )


def test_a_rise_over_thousands_outranks_a_larger_ratio_of_a_few(fitted):
    rows = [
        row("tiny", message_reads=3, message_reads_baseline=1, calls=5, calls_baseline=3),
        row("big", message_reads=3000, message_reads_baseline=2000, calls=3100,
            calls_baseline=2100),
    ]  # fmt: skip
    assert ranked(fitted, rows) == ["big", "tiny"]


def test_a_rise_held_over_days_is_evidence_where_yesterday_s_spike_is_not(fitted):
    rows = [
        # a ramp: 300, 400, 500 calls on the last 3 days, 600 today, where 200 was usual; the
        # recent days raised today's baseline to 500
        row("ramp", calls=600, calls_baseline=500, calls_early_median=200,
            calls_sustained=600 + 500 + 400 + 300),
        # a spike of 1,500 yesterday, 200 today: the sum counts yesterday as at most 200
        row("spiked", calls_sustained=200 + 1500 + 200 + 200),
        row("usual"),
    ]  # fmt: skip
    assert rows[1]["calls_sustained"] == 2100  # as given; features clip it to 800
    rows[1]["calls_sustained"] = 800
    evidence = fitted.evidence(pd.DataFrame(rows))
    sustained = evidence[:, FEATURES.index("calls_sustained")]
    assert sustained[0] > evidence[0, FEATURES.index("calls")]
    assert sustained[1] == 0.0 and sustained[2] == 0.0
    scored = score(fitted, pd.DataFrame(rows)).to_pandas().set_index("partner_id")
    assert ranked(fitted, rows)[0] == "ramp" and scored.loc["ramp", "alert"]
    assert scored.loc["ramp", "explanation"].startswith(
        "1,800 calls on the day and the 3 before (each at most the day's), 1.5x as many days "
        "before 1,200 (1.5x)"
    )


def test_a_sustained_rise_needs_a_week_of_earlier_days(fitted):
    # 4 days of history, 3 of them the recent ones: the one earlier day is no level
    rows = [row("young", history_days=4, calls_early_median=20, calls_sustained=800)]
    assert fitted.evidence(pd.DataFrame(rows))[0, FEATURES.index("calls_sustained")] == 0.0
    rows[0]["history_days"] = 10
    assert fitted.evidence(pd.DataFrame(rows))[0, FEATURES.index("calls_sustained")] > 10


def test_a_drop_is_no_evidence(fitted):
    # the false alerts: "deletes 0.4x (5 vs 14.5)"
    rows = [row("fewer", message_deletes=5, message_deletes_baseline=14.5,
                message_deletes_hist=14.5 * 21)]  # fmt: skip
    evidence = fitted.evidence(pd.DataFrame(rows))
    assert evidence[0, FEATURES.index("message_deletes")] == 0.0
    assert evidence[0, FEATURES.index("deletes")] == 0.0


def test_first_addresses_and_scopes_are_evidence_against_the_entity_s_own_history(fitted):
    rows = [
        row("crawl", new_ips=248, new_networks=3, new_ip_calls=200, new_network_calls=200),
        row("rotated", new_ips=1, new_ip_calls=200, new_networks=0),
        row("creep", new_scopes=1, new_scope_calls=20),
    ]
    order = ranked(fitted, rows)
    assert order[0] == "crawl"
    explanation = score(fitted, pd.DataFrame(rows)).to_pandas().set_index("partner_id")
    assert explanation.loc["crawl", "explanation"].startswith(
        "248 addresses never seen from this app"
    )


def test_model_follows_scikit_learn_s_contract(fitted):
    frame = pd.DataFrame([row("a"), row("b", message_reads=3000)])
    assert clone(fitted).get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(BehaviourModel())
    check_is_fitted(fitted)
    np.testing.assert_array_equal(fitted.score_samples(frame), -fitted.anomaly_score(frame))
    assert fitted.score_samples(frame)[1] < fitted.score_samples(frame)[0]  # higher: normal
    assert fitted.predict(frame).tolist() == [1, -1]
    assert (fitted.decision_function(frame) < 0).tolist() == [False, True]
    learned = [name for name in vars(fitted) if name.endswith("_")]
    assert {"threshold_", "spread_", "prior_", "feature_names_in_"} <= set(learned)


def test_model_is_deterministic():
    frame = training_frame(seed=3)
    first = BehaviourModel().fit(frame).score_samples(frame)
    second = BehaviourModel().fit(frame).score_samples(frame)
    np.testing.assert_array_equal(first, second)


def test_usual_days_raise_few_alerts():
    model = BehaviourModel().fit(training_frame(seed=1))
    fresh = training_frame(seed=2)  # 14 new usual days of the same 40 partners
    assert model.predict(fresh).tolist().count(-1) <= 1


@settings(max_examples=60, deadline=None)
@given(
    mu=st.floats(0.5, 1e5),
    alpha=st.floats(0.0, 1.0),
    steps=st.lists(st.floats(0, 1e4), min_size=2, max_size=6),
)
def test_count_evidence_grows_with_the_count(mu, alpha, steps):
    xs = mu + np.cumsum(steps)
    evidence = count_evidence(xs, np.full(len(xs), mu), alpha)
    assert np.all(np.isfinite(evidence))
    assert np.all(np.diff(evidence) >= -1e-6)
    assert count_evidence(np.array([mu]), np.array([mu]), alpha)[0] == 0.0


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 5_000_000), p=st.floats(1e-4, 0.5), rho=st.floats(0.0, 0.5),
    fractions=st.lists(st.floats(0, 1), min_size=2, max_size=6),
)  # fmt: skip
def test_share_evidence_grows_with_the_share(n, p, rho, fractions):
    ks = np.round(np.sort(fractions) * n)
    evidence = share_evidence(ks, np.full(len(ks), n), np.full(len(ks), p), rho)
    assert np.all(np.isfinite(evidence))
    assert np.all(np.diff(evidence) >= -1e-6)


def test_saved_model_round_trips_with_the_same_scores(fitted, tmp_path: Path):
    frame = training_frame(seed=4)
    folder = save_model(fitted, tmp_path, "m")
    loaded, metadata = load_model(tmp_path, "m")
    np.testing.assert_array_equal(loaded.score_samples(frame), fitted.score_samples(frame))
    assert folder.name == metadata["version"] == loaded.model_version_
    assert metadata["features"] == list(FEATURES)
    assert metadata["sklearn_version"] == sklearn.__version__
    assert len(metadata["data_fingerprint"]) == 64
    assert metadata["version"].startswith(f"{fitted.window_[1]}-")
    assert loaded.threshold_ == fitted.threshold_
    assert (
        metadata["alert_thresholds"]["partner_day"]["threshold"]
        == (fitted.threshold_["partner_day"])
    )


def test_load_model_picks_the_newest_version(tmp_path: Path):
    frame = training_frame()
    days = sorted(frame["day"].unique())
    save_model(BehaviourModel().fit(frame), tmp_path, "m")
    save_model(BehaviourModel().fit(frame[frame["day"] <= days[5]]), tmp_path, "m")
    _, metadata = load_model(tmp_path, "m")
    assert metadata["window"]["end"] == days[-1].isoformat()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("features", [*FEATURES[:-1], "something_else"], "feature list differs"),
        ("sklearn_version", "0.0.1", "trained with scikit-learn 0.0.1"),
        ("model_format", None, "learned state is of format None"),
        ("alert_thresholds", {}, "records no alert thresholds"),
        (
            "alert_thresholds",
            {"partner_day": {"threshold": 0.0, "entities_per_day": 1.0}},
            "disagree on the alert thresholds",
        ),
    ],
)
def test_load_model_refuses_a_mismatched_model(fitted, tmp_path, field, value, message):
    folder = save_model(fitted, tmp_path, "m")
    metadata = json.loads((folder / "metadata.json").read_text())
    (folder / "metadata.json").write_text(json.dumps({**metadata, field: value}))
    with pytest.raises(ModelMismatch, match=message) as refused:
        load_model(tmp_path, "m")
    assert str(folder) in str(refused.value)


def test_load_model_without_a_model_raises_no_model(tmp_path: Path):
    with pytest.raises(NoModel, match="no model 'm' in"):
        load_model(tmp_path, "m")


def test_precision_and_recall_at_k_count_exactly():
    scores = pd.DataFrame(
        {"day": [1, 1, 1, 2, 2], "partner_id": ["a", "b", "c", "a", "b"], "rank": [1, 2, 3, 1, 2]}
    )
    truth = pd.DataFrame({"day": [1, 2, 3], "partner_id": ["b", "b", "z"]})
    assert precision_at_k(scores, truth, 2) == 0.5  # day 1: b in {a, b}; day 2: b in {a, b}
    assert recall_at_k(scores, truth, 1) == 0.0
    assert recall_at_k(scores, truth, 2) == 1.0  # day 3 was not scored


def literal_scores() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two days: day 1 alerts a (false), b (true); day 2 alerts none, its anomaly b ranks 1."""
    scores = pd.DataFrame(
        {
            "day": [1, 1, 1, 2, 2],
            "partner_id": ["a", "b", "c", "a", "b"],
            "rank": [1, 2, 3, 2, 1],
            "alert": [True, True, False, False, False],
        }
    )
    truth = pd.DataFrame({"day": [1, 2, 3], "partner_id": ["b", "b", "z"]})
    return with_alert_rank(scores), truth


def test_with_alert_rank_ranks_the_day_s_alerts_only():
    scores, _ = literal_scores()
    assert scores["alert_rank"].tolist()[:2] == [1.0, 2.0]
    assert scores["alert_rank"].isna().tolist() == [False, False, True, True, True]


def test_alert_figures_count_only_the_top_k_alerts():
    scores, truth = literal_scores()
    assert alert_figures(scores, truth, 10) == {
        "alerts": 2,
        "alerts_per_day": {"1": 2, "2": 0},
        "precision_at_10": 0.5,  # day 1's alerts: a (false), b (true); day 2 has none
        "recall_at_10": 0.5,  # day 2's b was not alerted
        "most_false_in_top_10": 1,
        "missed": ["2 b"],
    }
    assert alert_figures(scores, truth, 1)["recall_at_1"] == 0.0  # day 1's first alert is a


def test_ranking_figures_ignore_the_threshold():
    scores, truth = literal_scores()
    assert ranking_figures(scores, truth, 2) == {
        "precision_at_2": 0.5,  # day 1: b in {a, b}; day 2: b in {b, a}
        "recall_at_2": 1.0,
        "most_false_in_top_2": 1,
        "recall_at_1": 0.5,
    }


def test_a_level_borrowed_from_the_app_is_as_uncertain_as_its_users_differ():
    users = pd.DataFrame(
        [row("P1", kind="app_user_day", calls_baseline=2.0 * 10, calls_app_user_median=10)] * 30
        + [row("P1", kind="app_user_day", history_days=3, calls_baseline=99.0,
               calls_app_user_median=10)] * 30
    )  # fmt: skip
    # users of a week's history are 2x their app's typical user (short ones ignored): a
    # borrowed level is a gamma that reaches 2x at its 99th percentile, and no narrower one does
    alpha = BehaviourModel._fit_between_users(users)
    assert stats.gamma.ppf(0.99, 1 / alpha, scale=alpha) >= 2.0
    assert stats.gamma.ppf(0.99, 1 / (0.97 * alpha), scale=0.97 * alpha) < 2.0
    assert BehaviourModel._fit_between_users(users.iloc[:10]) == 0.0  # too few to say


def test_a_steady_entity_s_rise_outranks_the_same_rise_of_a_noisy_one():
    # both double their 200 calls; one's days varied as Poisson alone, the other's by 50%, and
    # the window's partners' days vary as their early days say
    rows = [
        row("noisy", calls=400, calls_early_sd=np.sqrt(200 + 0.25 * 200**2)),
        row("steady", calls=400, calls_early_sd=np.sqrt(200)),
    ]
    told = BehaviourModel().fit(training_frame(spreads=(0.0, 0.25)))
    evidence = told.evidence(pd.DataFrame(rows))[:, FEATURES.index("calls")]
    assert evidence[1] > 1.5 * evidence[0]
    assert ranked(told, rows) == ["steady", "noisy"]
    # a week of its own days is needed: with 3 the entity is its kind's
    short = [dict(r, early_days=3) for r in rows]
    evidence = told.evidence(pd.DataFrame(short))[:, FEATURES.index("calls")]
    assert evidence[0] == pytest.approx(evidence[1])


def test_an_entity_s_own_wander_counts_as_far_as_the_window_shows_it_does():
    # the same spreads, but the early days' wander is another partner's: it says nothing of
    # the days, and the two rises are alike
    untold = BehaviourModel().fit(training_frame(spreads=(0.0, 0.25), early_days_tell=False))
    assert untold.own_slope_["partner_day"]["calls"] < 0.1 * untold.spread_["partner_day"]["calls"]
    rows = [
        row("noisy", calls=400, calls_early_sd=np.sqrt(200 + 0.25 * 200**2)),
        row("steady", calls=400, calls_early_sd=np.sqrt(200)),
    ]
    evidence = untold.evidence(pd.DataFrame(rows))[:, FEATURES.index("calls")]
    assert evidence[1] == pytest.approx(evidence[0], rel=0.2)


def test_a_read_only_sweep_is_evidence(fitted):
    # 300 calls, every one a message read, where 3 in 4 are: the reads share says so
    rows = [row("sweep", calls=300, message_reads=300, message_writes=0), row("usual")]
    assert ranked(fitted, rows) == ["sweep", "usual"]
    scored = score(fitted, pd.DataFrame(rows)).to_pandas().set_index("partner_id")
    assert "300 of 300 calls were message reads, usually 75%" in scored.loc["sweep", "explanation"]


def test_every_feature_is_in_one_family_but_the_counts_of_one_action():
    in_families = [f for family in FAMILIES for f in family]
    assert sorted([*in_families, *ACTION_COUNTS]) == sorted(FEATURES)


def test_a_heavy_day_counted_as_calls_and_as_reads_is_one_finding():
    # a person's 32 calls where 3 are usual are 30 reads too: the evidence of either, not both
    out = np.zeros((1, len(FEATURES)))
    out[0, FEATURES.index("calls")], out[0, FEATURES.index("message_reads")] = 8.0, 10.0
    assert BehaviourModel._combine(out)[0] == pytest.approx(10 + 0.1 * 8)


def test_two_findings_outweigh_either_alone():
    def evidence(**values: float) -> np.ndarray:
        out = np.zeros((1, len(FEATURES)))
        for name, value in values.items():
            out[0, FEATURES.index(name)] = value
        return out

    one = BehaviourModel._combine(evidence(calls=6))[0]
    # a heavy day of reads only: volume and reads, two families
    sweep = BehaviourModel._combine(evidence(calls=6, reads=6))[0]
    # more deletes counted as a count and as a share: one finding
    deletes = BehaviourModel._combine(evidence(message_deletes=6, deletes=6))[0]
    assert deletes == pytest.approx(6 + 0.1 * 6)
    # two independent 1e-6 findings: P(sum of two -log10 U >= 12) = (1 + 12 ln 10) 1e-12, for
    # any of the 55 pairs of families
    assert sweep == pytest.approx(12 - np.log10(1 + 12 * np.log(10)) - np.log10(55) + 0.6)
    assert sweep > deletes > one


def test_a_rare_count_s_clusters_are_its_spread():
    # 2,000 partner-days of a rare count at 0.002 a day, two of them a revoked token's last 3
    # reads: trimmed, the two are the top 0.1% and teach nothing (Poisson: 3 is 1e-9); kept,
    # they are what the count does (clusters), and 3 is no longer a wonder
    mu = np.full(2000, 0.002)
    x = np.zeros(2000)
    x[:2] = 3
    args = ((x - mu) ** 2, mu, mu**2)
    assert fit_spread(*args) == 0.0
    clustered = fit_spread(*args, trim=0.0)
    assert clustered > 100
    assert count_evidence(np.array([3.0]), np.array([0.002]), clustered)[0] < 4
    assert count_evidence(np.array([3.0]), np.array([0.002]), 0.0)[0] > 8


def test_a_level_s_spread_is_learned_from_entities_with_a_week_of_their_own():
    usual = training_frame()
    # newcomers far from a level that is not theirs yet: the borrowed part is between_users_'
    newcomers = pd.DataFrame([row(f"N{i}", history_days=3, calls=2000) for i in range(200)])
    alone = BehaviourModel().fit(usual).spread_["partner_day"]["calls"]
    mixed = BehaviourModel().fit(pd.concat([usual, newcomers], ignore_index=True))
    assert mixed.spread_["partner_day"]["calls"] == pytest.approx(alone)


def test_a_user_s_borrowed_rate_is_as_uncertain_as_users_differ_from_their_apps():
    def users(own_rates: list[float]) -> pd.DataFrame:
        rows = [
            row(
                "P1",
                kind="app_user_day",
                message_reads_hist=rate * 1000,
                message_reads_of_hist=1000,
                reads_app_rate=0.75,
            )
            for rate in own_rates
        ]
        return pd.DataFrame(rows)  # fmt: skip

    alike = BehaviourModel._fit_share_between_users(users([0.75] * 40))["reads"]
    apart = BehaviourModel._fit_share_between_users(users([0.5, 1.0] * 20))["reads"]
    # users at their app's rate: only binomial chance apart (none beyond); users at 50% and 100%
    # of an app's 75%: (0.25^2 - 0.75 * 0.25 / 1000) / (0.75 * 0.25) beyond it
    assert alike == 0.0
    assert apart == pytest.approx((0.25**2 - 0.75 * 0.25 / 1000) / (0.75 * 0.25))
    few = BehaviourModel._fit_share_between_users(users([0.75] * 10))["reads"]
    assert few == pytest.approx(1 / 30)  # too few users to say: the 30-event prior


def test_share_evidence_takes_more_than_all_as_all():
    evidence = share_evidence(np.array([12.0, 10.0]), np.array([10.0, 10.0]), np.full(2, 0.1), 0.0)
    assert np.isfinite(evidence).all() and evidence[0] == evidence[1]


def test_the_alert_level_is_the_tail_s_not_the_window_s_top_score():
    # 7 days of 10,000 rows whose scores are exponential (-log10 p of calibrated tests): the
    # level passed 0.05 times a day is where the tail puts it, log10(10,000 / 0.05)
    rng = np.random.default_rng(0)
    scores = rng.exponential(1 / np.log(10), 70_000)
    expected = np.log10(10_000 / 0.05)
    assert tail_level(scores, 7.0, 0.05) == pytest.approx(expected, abs=0.6)
    # one freak of a day far above the rest moves it a quarter of the way at most, not to itself
    freak = np.append(scores, 16.0)
    assert expected < tail_level(freak, 7.0, 0.05) < expected + 0.25 * (16.0 - expected)
    assert np.quantile(freak, 1 - 0.05 / 10_000) > 12  # the near-top quantile it replaces
    # a window too short to have a tail: the quantile of its rows
    few = np.arange(1.0, 11.0)
    assert tail_level(few, 2.0, 0.5) == pytest.approx(np.quantile(few, 0.9))


def test_a_spread_by_an_entity_s_own_wander_is_fitted_where_the_days_show_it():
    # rows whose variance beyond Poisson is (0.02 + 0.3 c) mu^2 for their own c in [0, 1]
    rng = np.random.default_rng(1)
    n = 40_000
    mu, c = rng.uniform(50, 500, n), rng.uniform(0, 1, n)
    x = rng.poisson(mu * rng.gamma(1 / (0.02 + 0.3 * c), 0.02 + 0.3 * c))
    args = ((x - mu) ** 2, mu, mu**2)
    common, slope = fit_spread_by(*args, c, trim=0.0)
    assert common == pytest.approx(0.02, abs=0.02)
    assert slope == pytest.approx(0.3, rel=0.15)
    # a covariate that says nothing: the single spread, all common
    noise = rng.uniform(0, 1, n)
    common, slope = fit_spread_by(*args, noise, trim=0.0)
    assert slope < 0.03
    assert common + 0.5 * slope == pytest.approx(fit_spread(*args, trim=0.0), rel=0.1)


def test_a_user_s_day_cut_by_its_grant_has_no_time_of_day():
    # revoked at 03:00, every one of the day's 26 accesses was at night where 2% are usual: the
    # day was night only; the same day kept whole is a night crawl
    partners = training_frame()
    users = partners.assign(entity_kind="app_user_day", user_id="u" + partners["partner_id"])
    model = BehaviourModel().fit(pd.concat([partners, users], ignore_index=True))
    night = {"calls": 26, "message_accesses": 26, "night_accesses": 26, "message_reads": 26}
    rows = [
        row("P01", kind="app_user_day", revokes=1, **night),
        row("P02", kind="app_user_day", new_users=1, **night),
        row("P03", kind="app_user_day", **night),
    ]
    evidence = model.evidence(pd.DataFrame(rows))[:, FEATURES.index("night")]
    assert evidence[0] == 0.0 and evidence[1] == 0.0
    assert evidence[2] > 10


def test_reads_in_a_token_s_last_minutes_are_as_usual_as_the_day_s_revocations():
    # the window's partners revoke now and then, and their token reads on for a few minutes: 2
    # reads of 1 user a revocation; the same after 1 revocation today is usual, after none it
    # is not, and 30 reads after 1 or an app that reads 10 revoked users for hours is news
    frame = training_frame(days=21).assign(revokes=0)
    lagged = frame.index % 20 == 0
    frame.loc[lagged, ["revokes", "revoked_reads", "revoked_users"]] = (1, 2, 1)
    model = BehaviourModel().fit(frame)
    assert model.prior_["partner_day"]["revoked_reads_per_revoke"] == pytest.approx(2.0)
    assert model.prior_["partner_day"]["revoked_per_revoke"] == pytest.approx(1.0)
    rows = [
        row("P01", revokes=1, revoked_reads=2, revoked_users=1),
        row("P02", revokes=0, revoked_reads=2, revoked_users=1),
        row("P03", revokes=1, revoked_reads=30, revoked_users=1),
        row("P04", revokes=10, revoked_reads=400, revoked_users=10),
    ]
    evidence = model.evidence(pd.DataFrame(rows))
    reads, users = FEATURES.index("revoked_reads"), FEATURES.index("revoked")
    assert evidence[0, reads] < 1 and evidence[0, users] < 1
    assert evidence[1, reads] > 2 and evidence[1, users] > 2
    assert evidence[2, reads] > 3
    assert model.alerts(pd.DataFrame(rows)).tolist() == [False, False, True, True]
    explained = score(model, pd.DataFrame(rows)).to_pandas().set_index("partner_id")
    assert explained.loc["P03", "explanation"].startswith(
        "30 message reads of users after they revoked the app, usually 2 after the day's "
        "revocations"
    )
