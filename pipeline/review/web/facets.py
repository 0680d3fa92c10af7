"""The filter bar's choices (partners, apps, assignees ...), cached briefly: they cost a scan of
the items, and every queue page shows them."""

from __future__ import annotations

import threading
import time

from starlette.requests import Request

FACETS_SECONDS = 30.0


class FacetCache:
    """store.facets() at most once per FACETS_SECONDS, or again after a change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: dict[str, list[str]] | None = None
        self._at = 0.0

    def get(self, request: Request) -> dict[str, list[str]]:
        with self._lock:
            if self._value is None or time.monotonic() - self._at > FACETS_SECONDS:
                self._value = request.app.state.store.facets()
                self._at = time.monotonic()
            return self._value

    def invalidate(self) -> None:
        with self._lock:
            self._value = None


def cached_facets(request: Request) -> dict[str, list[str]]:
    cache: FacetCache = request.app.state.facets
    return cache.get(request)
