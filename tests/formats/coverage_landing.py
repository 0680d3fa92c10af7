"""A tiny canonical landing with hand-worked coverage and measures (see
tests/formats/test_coverage_end_to_end.py for the figures), run through every step."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pipeline import steps
from pipeline.config import Settings, load_settings
from tests.landing import access, consent, write_day, write_registry

D = date(2026, 3, 10)
EXPLANATION = (
    "Tunely (P1): 2 of its 5 message accesses on 2026-03-10 (40%) could not be judged: "
    "2 for users no consent source mentions."
)


def tiny_landing(root: Path) -> Path:
    landing = root / "landing"
    write_registry(
        landing,
        [
            "P1,Tunely,tunely,2026-01-01,,messages.read,",
            "P2,Streamflix,stream,2026-01-01,2026-03-09,messages.read,",
        ],
    )
    write_day(
        landing,
        "consent",
        D,
        {
            "c.jsonl": [
                consent("c1", "2026-03-10T08:00:00Z", app="tunely", user="alice"),
                consent("c2", "2026-03-10T09:00:00Z", "revoke", app="tunely", user="alice"),
                consent("c3", "2026-03-09T00:00:00Z", app="stream", user="bob"),
            ]
        },
    )
    write_day(
        landing,
        "access",
        D,
        {
            "a.jsonl": [
                access("r1", "2026-03-10T08:30:00Z", app="tunely", user="alice"),
                access("r2", "2026-03-10T09:30:00Z", app="tunely", user="alice"),
                access("r3", "2026-03-10T11:00:00Z", app="tunely", user="alice"),
                access("r4", "2026-03-10T10:00:00Z", app="tunely", user="dave"),
                access("r5", "2026-03-10T10:00:00Z", app="tunely", user="erin"),
                access("r6", "2026-03-10T01:00:00Z", app="stream", user="bob"),
                access("r7", "2026-03-10T03:30:00Z", app="stream", user="bob"),
                access("r8", "2026-03-10T10:00:00Z", app="ghost", user="carol"),
            ]
        },
    )
    return landing


def run(root: Path, review_db: str) -> Settings:
    settings = load_settings(
        env={},
        landing=str(tiny_landing(root)),
        warehouse=str(root / "warehouse"),
        models_dir=str(root / "models"),
        review_db=review_db,
        review_url="http://review.example",
    )
    steps.run_day(D, settings)
    return settings
