"""The filter bar's suggestions (partners, apps, assignees), bounded and cached briefly: they
cost a scan of the alerts, and every queue and suppressions page ships them. Bounded because the
ids are partner-controlled: neither a huge id nor thousands of apps may grow every page."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from starlette.requests import Request

from pipeline.review.sessions import engine_of
from pipeline.review.tables import review_alerts

FACETS_SECONDS = 30.0
FACET_NAMES = ("partner_id", "app_id", "assignee")
TOP_VALUES = 50  # suggestions per filter: the values with the most alerts
MAX_SUGGESTED = 200  # characters: a longer id is never suggested (it can still be typed)


@dataclass(frozen=True)
class Facet:
    """A filter's suggested values, most alerts first, and how many values were left out."""

    values: tuple[str, ...]
    left_out: int


def bounded_facets(store: object) -> dict[str, Facet]:
    """The TOP_VALUES most frequent short values of each filter (one grouped query each)."""
    facets: dict[str, Facet] = {}
    with engine_of(store).connect() as connection:
        for name in FACET_NAMES:
            column = review_alerts.c[name]
            present = column.is_not(None)
            distinct = connection.execute(
                sa.select(sa.func.count(sa.distinct(column))).where(present)
            ).scalar_one()
            count = sa.func.count()
            values = connection.execute(
                sa.select(column)
                .where(present, sa.func.length(column) <= MAX_SUGGESTED)
                .group_by(column)
                .order_by(count.desc(), column)
                .limit(TOP_VALUES)
            ).scalars()
            shown = tuple(values)
            facets[name] = Facet(shown, distinct - len(shown))
    return facets


class FacetCache:
    """bounded_facets at most once per FACETS_SECONDS, or again after a change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: dict[str, Facet] | None = None
        self._at = 0.0

    def get(self, request: Request) -> dict[str, Facet]:
        with self._lock:
            if self._value is None or time.monotonic() - self._at > FACETS_SECONDS:
                self._value = bounded_facets(request.app.state.store)
                self._at = time.monotonic()
            return self._value

    def invalidate(self) -> None:
        with self._lock:
            self._value = None


def cached_facets(request: Request) -> dict[str, Facet]:
    cache: FacetCache = request.app.state.facets
    return cache.get(request)
