"""Ids of any length are filterable from the UI, on SQLite and PostgreSQL: one longer than a link
takes (MAX_LINKED_ID) is linked by its SHA-256 digest, which the store filters by exactly; pages
show it cut short with its length and stay small."""

from __future__ import annotations

import html
import re
from datetime import date

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from pipeline.links import MAX_LINKED_ID, digest, partner_path
from pipeline.review.store import AlertFilter
from pipeline.warehouse import Warehouse
from tests.review.web.backends import Backend, backend_fixture  # noqa: F401 (fixture)
from tests.review.web.conftest import PASSWORDS, SAMPLE_DAYS, login

DAY = date(2026, 3, 20)  # after the sample days: its alerts are the two below alone
LENGTH = 100_000
# Two of each that share their first MAX_LINKED_ID characters and their length: only a filter
# by the whole id tells them apart.
APP = "app-" + "a" * (LENGTH - 5) + "1"
TWIN_APP = APP[:-1] + "2"
PARTNER = "partner-" + "p" * (LENGTH - 9) + "1"
TWIN_PARTNER = PARTNER[:-1] + "2"
ALERT, TWIN = "1" * 32, "2" * 32
MAX_PAGE_BYTES = 40_000  # the 100,000-character ids never appear whole
HREF = re.compile(r'href="([^"]*)"')
ROW_ALERT = re.compile(r'href="/alerts/([0-9a-f]{32})')


@pytest.fixture
def client(backend: Backend, sample_run) -> TestClient:
    """rita's client on a store holding the sample days and DAY's two long-id alerts."""
    template = Warehouse(str(sample_run.warehouse)).read_partition("alerts", SAMPLE_DAYS[0])
    row = template.filter(pa.compute.equal(template["kind"], "rule")).slice(0, 1).to_pylist()[0]
    rows = [
        {**row, "alert_id": alert, "day": DAY, "series_id": None, "app_id": app, "partner_id": p}
        for alert, app, p in ((ALERT, APP, PARTNER), (TWIN, TWIN_APP, TWIN_PARTNER))
    ]
    backend.store.upsert_day(DAY, pa.Table.from_pylist(rows, schema=template.schema))
    client = backend.client()
    login(client, "rita", PASSWORDS["rita"])
    return client


def get(client: TestClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.text[:300])
    text = response.text
    assert len(text.encode()) < MAX_PAGE_BYTES, (path, len(text))
    assert APP[:MAX_LINKED_ID] not in text and PARTNER[:MAX_LINKED_ID] not in text
    return text


def alerts_on(text: str) -> set[str]:
    return set(ROW_ALERT.findall(text))


def test_the_queue_links_a_long_app_by_its_digest_to_exactly_its_alert(client: TestClient):
    queue = get(client, f"/queue?start={DAY}&end={DAY}")
    assert alerts_on(queue) == {ALERT, TWIN}
    link = f"/queue?app_digest={digest(APP)}"
    assert f'href="{link}"' in queue
    filtered = get(client, link)
    assert alerts_on(filtered) == {ALERT}  # not the twin: same prefix, same length
    # the filter box names the id cut short with its length, and keeps the filter on submit
    assert f"{APP[:20]}" in filtered and f"({LENGTH:,} characters)" in filtered
    assert f'name="app_digest" value="{digest(APP)}"' in filtered
    exported = client.get(f"/export.csv?app_digest={digest(APP)}")  # the Export CSV button
    assert exported.status_code == 200 and ALERT in exported.text and TWIN not in exported.text
    # paging and sorting links keep the digest, never the id
    assert any("app_digest=" in html.unescape(h) and "sort=" in h for h in HREF.findall(filtered))


def test_a_long_partner_opens_its_page_and_its_queue(client: TestClient):
    queue = get(client, f"/queue?start={DAY}&end={DAY}")
    path = partner_path(PARTNER)
    assert path == f"/partners?digest={digest(PARTNER)}"
    assert f'href="{html.escape(path)}"' in queue
    page = get(client, path)
    assert 'id="partner-rules"' in page and f"({LENGTH:,} characters)" in page
    assert alerts_on(page) == {ALERT}  # its untriaged alerts: not the twin's
    assert f'name="digest" value="{digest(PARTNER)}"' in page  # the date filter keeps it
    all_alerts = f"/queue?partner_digest={digest(PARTNER)}"
    assert f'href="{all_alerts}"' in page
    assert alerts_on(get(client, all_alerts)) == {ALERT}
    listing = get(client, "/partners")
    assert f'href="{html.escape(path)}"' in listing and f'href="{all_alerts}"' in listing


def test_a_typed_id_too_long_for_a_link_is_taken_and_written_back_as_its_digest(
    client: TestClient,
):
    """A client may send one (this many characters fit in a URL): filtered by its text, and
    the page's links name it by its digest."""
    typed = TWIN_APP[: MAX_LINKED_ID + 1]
    text = get(client, f"/queue?app={typed}")
    assert alerts_on(text) == set()  # a prefix of an id is not that id
    assert f'name="app_digest" value="{digest(typed)}"' in text
    assert f"({MAX_LINKED_ID + 1:,} characters)" in text and typed not in text


def test_a_digest_no_alert_has_finds_nothing(client: TestClient):
    assert alerts_on(get(client, f"/queue?app_digest={digest('no-such-app' * 1000)}")) == set()
    assert client.get(f"/partners?digest={digest('x' * 5000)}").status_code == 404
    assert client.get("/queue?app_digest=not-hex").status_code == 400


def test_the_store_filters_by_digest_exactly(client: TestClient, backend: Backend):
    def ids(**filt: str) -> set[str]:
        return {a.alert_id for a in backend.store.iter_alerts(AlertFilter(**filt))}  # type: ignore[arg-type]

    assert ids(app_digest=digest(APP)) == {ALERT}
    assert ids(partner_digest=digest(TWIN_PARTNER)) == {TWIN}
    assert ids(app_digest=digest(APP), partner_digest=digest(TWIN_PARTNER)) == set()
    assert ids(app_id=TWIN_APP) == {TWIN}  # the text filters as before
    short = backend.store.alerts(AlertFilter(end=SAMPLE_DAYS[-1]), per_page=1).alerts[0].app_id
    assert short is not None and len(short) <= MAX_LINKED_ID
    assert ids(app_digest=digest(short)) == set()  # a short id is linked by its text alone
