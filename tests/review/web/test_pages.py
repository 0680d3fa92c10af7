"""What the read-only pages show: partner counts that match the queue they link to, honest
paging, audit values as recorded, a validated way back, and no internals in messages."""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path

from fastapi.testclient import TestClient

from pipeline.config import Settings
from pipeline.review.store import AlertFilter, ReviewStore
from pipeline.review.web.app import create_app
from tests.review.web.conftest import PASSWORDS, login

RULE_ROW = re.compile(r'<a href="([^"]*)">(\w+)</a></td><td class="num">([\d,]+)</td>')


def queue_total(client: TestClient, url: str) -> int:
    """The row count a queue page states."""
    page = client.get(url).text
    match = re.search(r'id="result-count">(?:[^<]* of )?([\d,]+) rows<', page)
    assert match, url
    return int(match.group(1).replace(",", ""))


def test_partner_counts_by_rule_match_the_queue_they_link_to(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    item = next(a for a in store.iter_alerts(AlertFilter(kind="rule")) if a.partner_id and a.app_id)
    assert item.app_id and item.partner_id
    store.suppress(item.app_id, item.rule, date(2026, 12, 31), "agreed migration", actor="rita")
    client = app_client(logged_in_as="vic")
    start, end = "2026-03-02", "2026-03-03"
    page = client.get(f"/partners/{item.partner_id}?start={start}&end={end}").text
    table = page[page.index('id="partner-rules"') :]
    rows = RULE_ROW.findall(table[: table.index("</table>")])
    assert rows
    for href, rule, count in rows:
        url = html.unescape(href)
        assert f"start={start}" in url and f"end={end}" in url and f"rule={rule}" in url
        # the partner's alerts of a rule (one per app and day), in the queue as rows of series
        filt = AlertFilter(partner_id=item.partner_id, rule=rule, start=date(2026, 3, 2),
                           end=date(2026, 3, 3))  # fmt: skip
        assert store.alerts(filt).total == int(count.replace(",", "")), rule
        assert queue_total(client, url) == store.queue(filt).total, rule


def test_a_page_past_the_end_says_so_and_links_to_the_last(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    total = store.queue(AlertFilter(rule="NO_SIGNIN"), per_page=1).total
    assert total > 1
    last = total  # one row a page
    page = app_client(logged_in_as="vic").get("/queue?rule=NO_SIGNIN&per_page=1&page=999").text
    summary = page[page.index('id="result-count"') :]
    summary = summary[: summary.index("</div>")]
    assert "no rows on this page" in summary
    assert f"page={last}" in html.unescape(summary)
    assert " of " not in summary.split("no rows")[0]


def test_audit_trail_shows_assignees_as_recorded(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    alert = store.alerts(AlertFilter(status="new"), per_page=1).alerts[0]
    store.assign([alert.alert_id], "ana_maria", actor="rita")
    store.set_status([alert.alert_id], "false_positive", actor="rita")
    page = app_client(logged_in_as="vic").get(f"/alerts/{alert.alert_id}").text
    trail = page[page.index('id="audit-trail"') :]
    assert "<td>ana_maria</td>" in trail
    assert "<td>false positive</td>" in trail


def test_alert_and_series_pages_link_back_only_to_a_valid_queue_view(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    client = app_client(logged_in_as="vic")
    alert = store.alerts(AlertFilter(), per_page=1).alerts[0]
    cases = {
        "rule%3DNO_SIGNIN%26evil%3D%22x%26sort%3D-severity": "/queue?rule=NO_SIGNIN&sort=-severity",
        "rule%3DBOGUS": "/queue",
        "%0d%0aSet-Cookie%3Ax": "/queue",
        "": "/queue",
    }
    for back, expected in cases.items():
        for path in (f"/alerts/{alert.alert_id}", f"/series/{alert.series_id}"):
            page = client.get(f"{path}?back={back}").text
            crumb = re.search(r'<p class="crumbs"><a href="([^"]*)"', page)
            assert crumb and html.unescape(crumb.group(1)) == expected, back


def test_bulk_status_offers_only_reachable_statuses(
    app_client: Callable[..., TestClient],
) -> None:
    page = app_client(logged_in_as="rita").get("/queue").text
    select = re.search(r'<select name="status" aria-label="New status">(.*?)</select>', page)
    assert select
    offered = re.findall(r'value="(\w+)"', select.group(1))
    assert offered == ["triaged", "confirmed", "false_positive", "resolved"]


def test_an_unavailable_timeline_hides_the_reason(
    web_settings: Settings, store: ReviewStore, tmp_path: Path
) -> None:
    broken = tmp_path / "broken-warehouse"
    shutil.copytree(web_settings.warehouse, broken)
    consent_files = sorted(broken.rglob("*.parquet"))
    consent_files = [f for f in consent_files if "consent" in f.parts[len(broken.parts)]]
    assert consent_files
    for file in consent_files:
        file.write_bytes(b"not parquet")
    app = create_app(replace(web_settings, warehouse=str(broken)), store)
    client = TestClient(app, raise_server_exceptions=False)
    login(client, "vic", PASSWORDS["vic"])
    alert = store.alerts(AlertFilter(rule="SIGNIN_REVOKED"), per_page=1).alerts[0]
    page = client.get(f"/alerts/{alert.alert_id}?timeline={alert.sample_request_ids and 'u'}").text
    user = re.search(r'<td class="id">([^<]+)</td><td class="num">', page)
    assert user
    page = client.get(f"/alerts/{alert.alert_id}?timeline={user.group(1)}").text
    note = re.search(r'id="timeline-note">([^<]*)<', page)
    assert note and "Timeline unavailable" in note.group(1)
    assert str(tmp_path) not in page and ".parquet" not in page


def test_a_series_row_expands_into_its_days(
    app_client: Callable[..., TestClient], store: ReviewStore
) -> None:
    page = app_client(logged_in_as="vic").get("/queue").text
    row = next(r for r in store.queue(AlertFilter()).rows if r.series_days > 1)
    start = page.index(f'data-row-key="{row.key}"')
    cells = page[start : page.index("</tr>", start)]
    assert f'href="/series/{row.series_id}' in cells
    days = re.findall(r'class="day-link" href="/alerts/([0-9a-f]{32})', cells)
    assert days == [a.alert_id for a in row.alerts]
    assert f"{row.first.day} → {row.last.day}" in cells
    assert f'<td class="num">{row.flags:,}</td>' in cells


def test_a_registry_partner_without_alerts_has_a_page_and_no_other_id_does(
    app_client: Callable[..., TestClient], store: ReviewStore, web_settings: Settings
) -> None:
    """The report links every partner of its coverage table, alerts or not."""
    from pipeline.detect.registry import load_registry
    from pipeline.readers.landing import Landing

    registry, _ = load_registry(Landing(web_settings.landing, web_settings))
    with_alerts = {partner for partner, _open, _total in store.partners()}
    quiet = sorted(set(registry["partner_id"].to_pylist()) - with_alerts)
    assert quiet, "the sample days have a partner without alerts"
    client = app_client(logged_in_as="vic")
    page = client.get(f"/partners/{quiet[0]}")
    assert page.status_code == 200
    assert f"<h1>{quiet[0]} " in page.text and "0 open of 0 alerts" in page.text
    assert client.get("/partners/no-such-partner").status_code == 404
