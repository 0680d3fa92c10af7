"""The filter lists of /queue and /suppressions are bounded: neither one huge app id nor
thousands of apps grow every page (issue 13: one 100,000-character id made each page 108 KB)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pyarrow as pa
from fastapi.testclient import TestClient

from pipeline.review.store import ReviewStore
from pipeline.review.web.facets import MAX_SUGGESTED, TOP_VALUES
from pipeline.warehouse import Warehouse
from tests.review.web.conftest import SAMPLE_DAYS, SampleRun

APPS_LIST = re.compile(r'<datalist id="apps-list"[^>]*>(.*?)</datalist>', re.S)
OPTION = re.compile(r'<option value="([^"]*)"')
HUGE = "app-" + "h" * 100_000
# the queue of the sample days: the same rows before and after alerts of a later day are added
PAGES = (f"/queue?start={SAMPLE_DAYS[0]}&end={SAMPLE_DAYS[-1]}", "/suppressions")


def _apps_offered(text: str) -> list[str]:
    (listing,) = APPS_LIST.findall(text)
    return OPTION.findall(listing)


def _add_apps(store: ReviewStore, sample_run: SampleRun, apps: list[str]) -> None:
    """One alert for each app, on a day after the sample days (copies of a sample alert)."""
    day = SAMPLE_DAYS[-1] + timedelta(days=10)
    model = Warehouse(str(sample_run.warehouse)).read_partition("alerts", SAMPLE_DAYS[0])
    first = model.slice(0, 1).to_pylist()[0]
    rows = [
        {**first, "alert_id": f"{n:032x}", "app_id": app, "day": day, "series_id": None}
        for n, app in enumerate(apps)
    ]
    store.upsert_day(day, pa.Table.from_pylist(rows, schema=model.schema))


def _sizes(client: TestClient) -> dict[str, int]:
    sizes = {}
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        sizes[path] = len(response.content)
    return sizes


def test_a_huge_app_id_is_never_suggested_and_no_page_grows_with_it(
    app_client: Callable[..., TestClient], store: ReviewStore, sample_run: SampleRun
):
    before = _sizes(app_client(logged_in_as="rita"))
    _add_apps(store, sample_run, [HUGE])
    client = app_client(logged_in_as="rita")
    after = _sizes(client)
    for path in PAGES:
        assert after[path] < before[path] + 2_000, (path, before[path], after[path])
        assert HUGE[:MAX_SUGGESTED] not in client.get(path).text
    # its alert is still listed: the queue shows its row, the id cut short
    assert f"{HUGE[:79]}…" in client.get("/queue").text


def test_thousands_of_apps_offer_the_top_ones_and_pages_stay_small(
    app_client: Callable[..., TestClient], store: ReviewStore, sample_run: SampleRun
):
    before = _sizes(app_client(logged_in_as="rita"))
    _add_apps(store, sample_run, [f"many-app-{n:05d}" for n in range(5_000)])
    client = app_client(logged_in_as="rita")
    after = _sizes(client)
    for path in PAGES:
        offered = _apps_offered(client.get(path).text)
        assert len(offered) == TOP_VALUES, path
        # the sample apps have the most alerts (several days each): they come first
        assert not offered[0].startswith("many-app-")
        assert after[path] < before[path] + TOP_VALUES * 60, (path, before[path], after[path])
    left_out = re.search(r'id="apps-list" data-left-out="(\d+)"', client.get("/queue").text)
    assert left_out and int(left_out.group(1)) >= 5_000 - TOP_VALUES
