"""The behaviour model: determinism, the store's round trip and refusals, the comparison."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn

from pipeline.anomaly import (
    DETECTORS,
    BehaviourModel,
    ModelMismatch,
    NoModel,
    load_model,
    precision_at_k,
    recall_at_k,
    save_model,
    score,
    synthetic_comparison,
    synthetic_features,
)
from pipeline.features import MODEL_FEATURES


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
    spiked["history_days"], spiked["message_reads"], spiked["message_reads_median"] = 28, 1, 1.0
    spiked.iloc[7, spiked.columns.get_loc("message_reads_ratio")] = 14.0
    spiked.iloc[7, spiked.columns.get_loc("message_reads")] = 27
    scored = score(model, spiked).to_pylist()
    assert [r["rank"] for r in scored] == list(range(1, len(spiked) + 1))
    top = scored[0]
    assert top["partner_id"] == spiked.iloc[7]["partner_id"]
    assert top["top_features"][0] == "message_reads_ratio"
    assert top["explanation"].startswith("message reads 14x this partner's 28-day median (27 vs 1)")


def test_precision_and_recall_at_k_count_exactly():
    scores = pd.DataFrame(
        {"day": [1, 1, 1, 2, 2], "partner_id": ["a", "b", "c", "a", "b"], "rank": [1, 2, 3, 1, 2]}
    )
    truth = pd.DataFrame({"day": [1, 2, 3], "partner_id": ["b", "b", "z"]})
    assert precision_at_k(scores, truth, 2) == 0.5  # day 1: b in {a, b}; day 2: b in {a, b}
    assert recall_at_k(scores, truth, 1) == 0.0
    assert recall_at_k(scores, truth, 2) == 1.0  # day 3 was not scored


def test_detector_comparison_ranks_injected_anomalies_above_normal_entities():
    comparison = synthetic_comparison(random_states=(0,))
    assert set(comparison) == set(DETECTORS)
    for name in ("isolation_forest", "robust_z"):
        assert comparison[name]["recall_at_10"] >= 0.95, name
        assert comparison[name]["mean_anomaly_rank"] < 5, name
    assert comparison["local_outlier_factor"]["recall_at_10"] >= 0.7
