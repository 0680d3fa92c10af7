"""The pipeline's steps, one function each, shared by the CLI and the Airflow DAGs (one code path).

Each step takes the delivery day and the settings explicitly and returns a small JSON-able summary.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pipeline.config import Settings


class MissingInput(RuntimeError):
    """A delivery the run needs is absent or incomplete (no _SUCCESS marker)."""


def missing_markers(day: date, settings: Settings) -> list[str]:
    """The delivery markers of `day` that are not there yet (empty when the day is complete)."""
    raise NotImplementedError


def ingest_access(day: date, settings: Settings) -> dict[str, Any]:
    """Landing access/<day>/ → warehouse access, quarantine; returns counts."""
    raise NotImplementedError


def ingest_consent(day: date, settings: Settings) -> dict[str, Any]:
    """Landing consent/<day>/ → warehouse consent, quarantine; returns counts."""
    raise NotImplementedError


def detect(day: date, settings: Settings) -> dict[str, Any]:
    """Warehouse access of <day> + consent of days <= day + registry → warehouse flags."""
    raise NotImplementedError


def publish(day: date, settings: Settings) -> dict[str, Any]:
    """Writes the day's run manifest (inputs, counts, config, version); later: review store."""
    raise NotImplementedError


def run_day(day: date, settings: Settings) -> dict[str, Any]:
    """Every step for one day, in order."""
    raise NotImplementedError
