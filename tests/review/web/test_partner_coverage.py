"""The partner page's coverage and measures section, and the coverage alert's page, on the tiny
landing of tests/formats/coverage_landing.py (figures worked out by hand there): Tunely (P1)
judged 3 of 5 accesses, 2 not judged for users no consent source mentions; its calls for alice
went on 2 h after her revoke; Streamflix (P2) kept calling 3 h 30 min after its end."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from pipeline.config import ReviewUser, Settings
from pipeline.detect.coverage_alerts import coverage_alert_id
from pipeline.review.store import ReviewStore
from pipeline.review.web.app import create_app
from pipeline.review.web.auth import hash_password
from tests.formats.coverage_landing import EXPLANATION, D, run
from tests.review.web.conftest import PASSWORDS, ROLES, SESSION_SECRET, login


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("partner-coverage")
    return run(root, f"sqlite:///{root / 'review.db'}")


@pytest.fixture
def client(audited: Settings) -> Iterator[TestClient]:
    users = (ReviewUser("vic", hash_password(PASSWORDS["vic"]), ROLES["vic"]),)
    settings = replace(audited, review_users=users, review_session_secret=SESSION_SECRET)
    store = ReviewStore.open(settings.review_db)
    made = TestClient(create_app(settings, store), raise_server_exceptions=False)
    made.headers["origin"] = str(made.base_url).rstrip("/")
    login(made, "vic", PASSWORDS["vic"])
    yield made
    store.dispose()


def section(page: str, anchor: str) -> str:
    start = page.index(f'id="{anchor}"')
    return page[start : page.index("</section>", start)]


def cell(text: str, key: str) -> str:
    match = re.search(rf'data-coverage="{re.escape(key)}">([^<]*)<', text)
    assert match, key
    return match.group(1)


def alert_ids(settings: Settings) -> dict[tuple[str, str], str]:
    rows = pq.read_table(Path(settings.warehouse) / "alerts" / f"date={D}").to_pylist()
    return {(r["app_id"] or r["partner_id"], r["rule"]): r["alert_id"] for r in rows}


def test_partner_page_shows_its_coverage_per_day(client: TestClient) -> None:
    page = client.get("/partners/P1").text
    coverage = section(page, "partner-coverage")
    assert "3 of 5 message accesses judged over 1 day; 2 (40.0%) not judged" in coverage
    assert cell(coverage, f"{D}|accesses") == "5"
    assert cell(coverage, f"{D}|judged") == "3"
    assert cell(coverage, f"{D}|user_not_in_consent_sources") == "2"
    assert cell(coverage, f"{D}|unknown_app") == "0"
    assert cell(coverage, f"{D}|share") == "40.0%"


def test_partner_page_shows_the_measures_linked_to_their_alerts(
    client: TestClient, audited: Settings
) -> None:
    ids = alert_ids(audited)
    measures = section(client.get("/partners/P1").text, "partner-measures")
    assert "1 case, 2 calls after; median lag 2 h 00 min, longest 2 h 00 min." in measures
    assert f'href="/alerts/{ids[("tunely", "SIGNIN_REVOKED")]}"' in measures
    assert "2026-03-10 09:00:00" in measures and "alice" in measures
    ended = section(client.get("/partners/P2").text, "partner-measures")
    assert "longest 3 h 30 min" in ended
    assert f'href="/alerts/{ids[("stream", "AFTER_PARTNERSHIP_END")]}"' in ended
    # a window without the day shows none of it
    empty = client.get("/partners/P1?start=2026-03-11&end=2026-03-12").text
    assert "No coverage counted for this partner" in section(empty, "partner-coverage")


def test_coverage_alert_page_explains_it_and_queue_lists_it(client: TestClient) -> None:
    alert_id = coverage_alert_id(D, "P1")
    page = client.get(f"/alerts/{alert_id}").text
    assert html.escape(EXPLANATION, quote=False) in page
    assert 'id="coverage-meaning"' in page
    assert "A coverage alert has no flags" in page
    queue = client.get("/queue?kind=coverage").text
    assert f"/alerts/{alert_id}" in queue and 'id="result-count">1–1 of 1 rows<' in queue
    assert client.get("/queue?rule=INCOMPLETE_COVERAGE").status_code == 200
