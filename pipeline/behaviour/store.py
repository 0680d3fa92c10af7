"""The models/ store: a fitted behaviour model and its metadata, by name and version, and the
checks that refuse a model this code cannot use as trained (its feature list, learned state's
format, scikit-learn version, or alert thresholds differ from what its metadata records)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sklearn

from pipeline.behaviour.model import FEATURES, MODEL_FORMAT, BehaviourModel
from pipeline.config import MODEL_NAME
from pipeline.errors import ModelMismatch, NoModel

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"


def model_metadata(model: BehaviourModel, name: str, version: str) -> dict[str, Any]:
    """What the store records beside a fitted model."""
    return {
        "name": name,
        "version": version,
        "window": {"start": model.window_[0], "end": model.window_[1]},
        "features": list(model.feature_names_in_),
        "model_format": MODEL_FORMAT,
        "sklearn_version": sklearn.__version__,
        "random_state": model.random_state,
        "data_fingerprint": model.fingerprint_,
        "parameters": model.get_params(),
        "training_metrics": model.training_metrics_,
        "alert_thresholds": {
            kind: {
                "threshold": model.threshold_[kind],
                "entities_per_day": model.entities_per_day_[kind],
            }
            for kind in model.threshold_
        },
        "spreads": model.spread_,
        "own_wander_slopes": model.own_slope_,
        "priors": model.prior_,
    }


def save_model(
    model: BehaviourModel, models_dir: Path, name: str, extra: dict[str, Any] | None = None
) -> Path:
    """Write models/<name>/<version>/{model.joblib, metadata.json} and return the folder.

    Version = last training day + data fingerprint, so versions sort by training window.
    `extra` adds to the metadata (e.g. the detector comparison, the requested window).
    """
    import joblib

    version = f"{model.window_[1]}-{model.fingerprint_[:8]}"
    folder = Path(models_dir) / name / version
    folder.mkdir(parents=True, exist_ok=True)
    staged = folder / f".{MODEL_FILE}.tmp"
    joblib.dump(model, staged)
    staged.replace(folder / MODEL_FILE)
    document = {**model_metadata(model, name, version), **(extra or {})}
    staged = folder / f".{METADATA_FILE}.tmp"
    staged.write_text(json.dumps(document, indent=2, sort_keys=True, default=str))
    staged.replace(folder / METADATA_FILE)  # written last: a version without it is incomplete
    model.model_name_, model.model_version_ = name, version
    return folder


def model_versions(models_dir: Path, name: str) -> list[str]:
    """Complete versions of a model (with metadata), oldest first."""
    root = Path(models_dir) / name
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / METADATA_FILE).is_file())


def _check(metadata: dict[str, Any], folder: Path) -> None:
    """Refuse a model this code cannot use as trained."""
    features = metadata.get("features")
    if features != list(FEATURES):
        stored = set(features or [])
        missing = sorted(set(FEATURES) - stored)
        extra = sorted(stored - set(FEATURES))
        what = f"missing {missing}, unknown {extra}" if missing or extra else "order differs"
        raise ModelMismatch(
            f"model {folder}: its feature list differs from this code's ({what}); "
            "retrain it with `access-audit train`"
        )
    if metadata.get("model_format") != MODEL_FORMAT:
        raise ModelMismatch(
            f"model {folder}: its learned state is of format {metadata.get('model_format')}, "
            f"this code reads format {MODEL_FORMAT}; retrain it with `access-audit train`"
        )
    if metadata.get("sklearn_version") != sklearn.__version__:
        raise ModelMismatch(
            f"model {folder}: trained with scikit-learn {metadata.get('sklearn_version')}, "
            f"installed is {sklearn.__version__}; retrain it with `access-audit train`"
        )
    if not metadata.get("alert_thresholds"):
        raise ModelMismatch(
            f"model {folder}: its metadata records no alert thresholds (trained before they "
            "were learned); retrain it with `access-audit train`"
        )


def _check_thresholds(model: BehaviourModel, metadata: dict[str, Any], folder: Path) -> None:
    """Refuse a model file whose learned thresholds are not the ones its metadata records."""
    recorded = {k: v["threshold"] for k, v in metadata["alert_thresholds"].items()}
    if getattr(model, "threshold_", None) != recorded:
        raise ModelMismatch(
            f"model {folder}: {MODEL_FILE} and {METADATA_FILE} disagree on the alert "
            "thresholds (one of them was replaced); retrain it with `access-audit train`"
        )


def load_model(
    models_dir: Path, name: str = MODEL_NAME, version: str | None = None
) -> tuple[BehaviourModel, dict[str, Any]]:
    """The newest (or the named) version of a model and its metadata, checked before unpickling."""
    import joblib

    versions = model_versions(models_dir, name)
    if version is None and not versions:
        raise NoModel(f"no model {name!r} in {models_dir}")
    chosen = version or versions[-1]
    folder = Path(models_dir) / name / chosen
    if chosen not in versions:
        raise NoModel(f"no model version {folder}")
    metadata = json.loads((folder / METADATA_FILE).read_text())
    _check(metadata, folder)
    model: BehaviourModel = joblib.load(folder / MODEL_FILE)
    _check_thresholds(model, metadata, folder)
    model.model_name_, model.model_version_ = name, chosen
    return model, metadata
