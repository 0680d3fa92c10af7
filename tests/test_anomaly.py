"""The behaviour model: determinism, the store's round trip and refusals, the comparison."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn

from pipeline.behaviour.features import MODEL_FEATURES
from pipeline.behaviour.model import (
    DETECTORS,
    BehaviourModel,
    alert_figures,
    best_detector,
    load_model,
    precision_at_k,
    ranking_figures,
    recall_at_k,
    save_model,
    score,
    synthetic_comparison,
    synthetic_features,
    with_alert_rank,
)
from pipeline.errors import ModelMismatch, NoModel


@pytest.fixture(scope="module")
def synthetic() -> tuple[pd.DataFrame, pd.DataFrame]:
    return synthetic_features(random_state=3, days=30, entities=30)


def test_behaviour_model_is_deterministic_for_a_fixed_random_state(synthetic):
    features, _ = synthetic
    first = BehaviourModel(random_state=5).fit(features).score_samples(features)
    second = BehaviourModel(random_state=5).fit(features).score_samples(features)
    np.testing.assert_array_equal(first, second)
    other = BehaviourModel(random_state=6).fit(features).score_samples(features)
    assert not np.array_equal(first, other)


def test_saved_model_round_trips_with_the_same_scores(synthetic, tmp_path: Path):
    features, _ = synthetic
    model = BehaviourModel(random_state=1).fit(features)
    folder = save_model(model, tmp_path, "m")
    loaded, metadata = load_model(tmp_path, "m")
    np.testing.assert_array_equal(loaded.score_samples(features), model.score_samples(features))
    assert folder.name == metadata["version"] == loaded.model_version_
    assert metadata["window"] == {"start": "2026-01-01", "end": "2026-01-30"}
    assert metadata["features"] == list(MODEL_FEATURES)
    assert metadata["sklearn_version"] == sklearn.__version__
    assert metadata["random_state"] == 1
    assert metadata["parameters"]["detector"] == "isolation_forest"
    assert len(metadata["data_fingerprint"]) == 64
    assert metadata["version"].startswith("2026-01-30-")
    assert score(loaded, features).equals(score(model, features))
    assert loaded.threshold_ == model.threshold_
    assert metadata["alert_thresholds"]["partner_day"] == {
        "threshold": model.threshold_["partner_day"],
        "alert_rate": model.alert_rate_["partner_day"],
    }


@pytest.mark.parametrize("detector", DETECTORS)
def test_alert_threshold_is_learned_at_the_configured_rate(synthetic, detector):
    features, _ = synthetic  # 30 entities a day: 3 alerts a day is a rate of 0.1
    model = BehaviourModel(detector=detector, alerts_per_day=3).fit(features)
    assert model.alert_rate_ == {"partner_day": 0.1}
    if detector != "local_outlier_factor":  # its training scores are leave-one-out
        training_share = float(
            np.mean(model.score_samples(features) > model.threshold_["partner_day"])
        )
        assert abs(training_share - 0.1) <= 1 / len(features)
    scored = score(model, features).to_pandas()
    assert scored["alert"].tolist() == (scored["score"] > model.threshold_["partner_day"]).tolist()
    stricter = BehaviourModel(detector=detector, alerts_per_day=1).fit(features)
    assert stricter.threshold_["partner_day"] > model.threshold_["partner_day"]


def test_load_model_picks_the_newest_version(synthetic, tmp_path: Path):
    features, _ = synthetic
    days = sorted(features["day"].unique())
    save_model(BehaviourModel().fit(features[features["day"] <= days[-1]]), tmp_path, "m")
    save_model(BehaviourModel().fit(features[features["day"] <= days[10]]), tmp_path, "m")
    _, metadata = load_model(tmp_path, "m")
    assert metadata["window"]["end"] == days[-1].isoformat()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("features", [*MODEL_FEATURES[:-1], "something_else"], "feature list differs"),
        ("sklearn_version", "0.0.1", "trained with scikit-learn 0.0.1"),
        ("alert_thresholds", {}, "records no alert thresholds"),
        (
            "alert_thresholds",
            {"partner_day": {"threshold": 0.0, "alert_rate": 0.5}},
            "disagree on the alert thresholds",
        ),
    ],
)
def test_load_model_refuses_a_mismatched_model(synthetic, tmp_path, field, value, message):
    folder = save_model(BehaviourModel().fit(synthetic[0]), tmp_path, "m")
    metadata = json.loads((folder / "metadata.json").read_text())
    (folder / "metadata.json").write_text(json.dumps({**metadata, field: value}))
    with pytest.raises(ModelMismatch, match=message) as refused:
        load_model(tmp_path, "m")
    assert str(folder) in str(refused.value)


def test_load_model_without_a_model_raises_no_model(tmp_path: Path):
    with pytest.raises(NoModel, match="no model 'm' in"):
        load_model(tmp_path, "m")


def test_score_ranks_within_day_and_explains(synthetic):
    features, _ = synthetic
    model = BehaviourModel().fit(features)
    spiked = features[features["day"] == date(2026, 1, 5)].copy()
    for feature in MODEL_FEATURES:  # every entity as usual, but one
        spiked[feature] = 1.0 if feature.endswith("_ratio") else 0.0
    spiked["history_days"], spiked["message_reads"] = 28, 1
    spiked["message_reads_median"] = spiked["message_reads_baseline"] = 1.0
    spiked.iloc[7, spiked.columns.get_loc("message_reads_ratio")] = 14.0
    spiked.iloc[7, spiked.columns.get_loc("message_reads")] = 27
    spiked.iloc[9, spiked.columns.get_loc("message_reads_ratio")] = 13.0 ** (3 / 7)
    spiked.iloc[9, spiked.columns.get_loc("message_reads")] = 25
    spiked.iloc[9, spiked.columns.get_loc("history_days")] = 3
    scored = score(model, spiked).to_pylist()
    assert [r["rank"] for r in scored] == list(range(1, len(spiked) + 1))
    top, second = scored[0], scored[1]
    assert top["partner_id"] == spiked.iloc[7]["partner_id"]
    assert top["top_features"][0] == "message_reads_ratio"
    assert top["explanation"] == "message reads 14x this partner's 28-day median (27 vs 1)"
    assert second["partner_id"] == spiked.iloc[9]["partner_id"]  # shrunk: 3 days of history
    assert second["explanation"] == (
        "message reads 13x this partner's 3-day median (25 vs 1) (new partner, 3 days of history)"
    )


def test_score_explains_against_the_recent_median_when_it_is_the_nearer():
    features, _ = synthetic_features(random_state=3, days=30, entities=30)
    model = BehaviourModel().fit(features)
    row = features[features["day"] == date(2026, 1, 5)].iloc[[0]].copy()
    for feature in MODEL_FEATURES:  # as usual, but for the night share
        row[feature] = 1.0 if feature.endswith("_ratio") else 0.0
    row["history_days"], row["night_share"] = 20, 0.8
    row["night_share_median"], row["night_share_recent"], row["night_share_baseline"] = (
        0.0,
        0.2,
        0.2,
    )
    row["night_share_delta"] = 0.6
    explanation = score(model, row).to_pylist()[0]["explanation"]
    assert explanation == (
        "80% of message accesses between 00:00 and 05:00 (this partner's last-3-day median 20%)"
    )


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


def test_best_detector_prefers_alert_recall_then_fewer_false_alerts():
    figures = {"alert_recall_at_10": 1.0, "most_false_alerts_in_top_10": 3,
               "recall_at_10": 1.0, "precision_at_3": 0.9}  # fmt: skip
    comparison = {
        "a": figures,
        "b": {**figures, "most_false_alerts_in_top_10": 2, "precision_at_3": 0.5},
        "c": {**figures, "alert_recall_at_10": 0.9, "most_false_alerts_in_top_10": 0},
    }
    assert best_detector(comparison) == "b"


def test_detector_comparison_ranks_injected_anomalies_above_normal_entities():
    comparison = synthetic_comparison(random_states=(0,))
    assert set(comparison) == set(DETECTORS)
    for name in ("isolation_forest", "robust_z"):
        assert comparison[name]["recall_at_10"] >= 0.95, name
        assert comparison[name]["mean_anomaly_rank"] < 5, name
    assert comparison["local_outlier_factor"]["recall_at_10"] >= 0.7
    for figures in comparison.values():  # one alert a day budgeted, three anomalies a day
        assert 0.5 <= figures["alerts_per_day"] <= 2
        assert figures["most_false_alerts_in_top_10"] <= 2
