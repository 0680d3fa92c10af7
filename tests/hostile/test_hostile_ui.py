"""The hostile run (tests/hostile/conftest.py) as analysts see it, on both review stores: every
UI page, the report, digest and notifications, and every CSV export. Each answers 200 (a bad id
a clean 404), counts reconcile with the warehouse, no secret value appears, and partner-made
names are inert: escaped, their direction overrides shown, their ids linked as one segment."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from unittest import mock
from urllib.parse import quote, urlencode, urlsplit

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from pipeline.config import ReviewUser, Settings
from pipeline.links import digest, partner_path
from pipeline.report.notifications import alerts_for
from pipeline.review.publish import publish_day
from pipeline.review.store import AlertFilter, ReviewStore
from pipeline.review.web.app import create_app
from pipeline.review.web.auth import hash_password
from pipeline.review.web.params import MAX_ID, MAX_LINKED_ID, id_query
from pipeline.schema import UNKNOWN_PARTNER
from pipeline.text_safety import csv_cell
from pipeline.warehouse import Warehouse
from tests.hostile import corpus
from tests.hostile.conftest import Run
from tests.postgres import scratch_schema
from tests.review.web.conftest import PASSWORDS, ROLES, SESSION_SECRET, csrf_of, login

BACKENDS = ["sqlite", "postgresql"]
HREF = re.compile(r'href="([^"]*)"')
ROW = re.compile(r"<tr data-row-key=")
MAX_PAGE_BYTES = 60_000  # a queue page of the corpus: twenty rows, bounded filter lists


@dataclass
class UI:
    client: TestClient
    store: ReviewStore
    settings: Settings
    alerts: pa.Table  # the day's alerts in the warehouse
    flags: pa.Table


def _users() -> tuple[ReviewUser, ...]:
    return tuple(ReviewUser(n, hash_password(pw), ROLES[n]) for n, pw in PASSWORDS.items())


def _ui(run: Run, url: str) -> Iterator[UI]:
    settings = replace(
        run.settings, review_db=url, review_users=_users(), review_session_secret=SESSION_SECRET
    )
    store = ReviewStore.open(url)
    client = TestClient(create_app(settings, store), raise_server_exceptions=False)
    login(client, "rita", PASSWORDS["rita"])
    warehouse = Warehouse(settings.warehouse)
    yield UI(
        client,
        store,
        settings,
        warehouse.read_partition("alerts", corpus.DAY),
        warehouse.read_partition("flags", corpus.DAY),
    )
    store.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def ui(request: pytest.FixtureRequest, run: Run) -> Iterator[UI]:
    """A reviewer logged in to the UI on the run's store (read only: tests here change nothing)."""
    yield from _ui(run, run.store_urls()[request.param])


@pytest.fixture(params=BACKENDS)
def fresh_ui(request: pytest.FixtureRequest, run: Run, tmp_path: Path) -> Iterator[UI]:
    """The run's alerts in a store of this test's own (it may change it)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'review.db'}"
        publish_day(corpus.DAY, replace(run.settings, review_db=url))
        yield from _ui(run, url)
        return
    with scratch_schema("hostile_ui") as url:
        publish_day(corpus.DAY, replace(run.settings, review_db=url))
        yield from _ui(run, url)


def assert_inert(text: str, where: str) -> None:
    """No secret, no raw direction override, no partner markup or Slack mention left live."""
    assert corpus.SECRET not in text, where
    assert "\u202e" not in text, where
    for live in ("<script>alert(1)</script>", "<!channel>", "<https://evil.example|bank>"):
        assert live not in text, where


def _get(ui: UI, path: str, status: int) -> str:
    # Starlette's TestClient decodes the path twice (httpx's url.path, then unquote): `%252F`
    # would arrive as `/`. A server (uvicorn) decodes the path it is sent once; so here.
    with mock.patch("starlette.testclient.unquote", lambda path: path):
        response = ui.client.get(path)
    assert response.status_code == status, (path[:200], response.status_code, response.text[:300])
    assert corpus.SECRET not in response.text, path[:200]
    return response.text


def page(ui: UI, path: str, status: int = 200) -> str:
    text = _get(ui, path, status)
    assert_inert(text, path[:200])
    return text


def rows_on(text: str) -> int:
    return len(ROW.findall(text))


def test_the_queue_shows_every_alert_and_each_filter_reconciles(ui: UI):
    assert rows_on(page(ui, "/queue?per_page=200")) == ui.alerts.num_rows > 0
    by_app: dict[str | None, int] = {}
    for app in ui.alerts["app_id"].to_pylist():
        by_app[app] = by_app.get(app, 0) + 1
    queue = page(ui, "/queue?per_page=200")
    for app, n in by_app.items():  # the direction override and the `$…$` too
        if app is None:  # a coverage alert is of a partner, no app
            continue
        # the row's link: the id, or (too long for a link: clients refuse URLs over 64 KB) its
        # digest, which filters exactly
        link = f"/queue?{id_query('app', app)}"
        assert f'href="{escape(link)}"' in queue, app[:40]
        assert rows_on(page(ui, f"{link}&per_page=200")) == n, app[:40]
    assert f"app_digest={digest(corpus.LONG_APP)}" in queue
    # a prefix of the long id, typed: taken (no 400), matching nothing, linked by its digest
    typed = page(ui, f"/queue?{urlencode({'app': corpus.LONG_APP[: MAX_LINKED_ID + 1]})}")
    assert rows_on(typed) == 0 and f"({MAX_LINKED_ID + 1:,} characters)" in typed
    partners = ui.store.partners()
    shown = 0
    for partner, _open, total in partners:
        if partner != UNKNOWN_PARTNER:
            query = urlencode({"partner": partner, "per_page": 200})
            assert rows_on(page(ui, f"/queue?{query}")) == total, partner
            shown += total
    unknown = sum(t for p, _o, t in partners if p == UNKNOWN_PARTNER)
    assert shown + unknown == ui.alerts.num_rows
    for partner in corpus.PATH_PARTNERS:
        assert f'href="{escape(partner_path(partner))}"' in queue, partner
    for name, values in (
        ("rule", set(ui.alerts["rule"].to_pylist())),
        ("severity", set(ui.alerts["severity"].to_pylist())),
        ("status", {"new"}),
        ("kind", {"rule"}),
        ("sort", {"-severity", "partner_id", "-flags", "-users", "day"}),
    ):
        for value in values:
            page(ui, f"/queue?{urlencode({name: value})}")


def test_every_alert_page_renders_with_its_flags_and_timelines(ui: UI):
    users = ui.flags.group_by(["alert_id", "user_id"]).aggregate([]).to_pylist()
    for row in ui.alerts.select(["alert_id", "flags", "partner_id"]).to_pylist():
        text = page(ui, f"/alerts/{row['alert_id']}")
        assert 'id="status-form"' in text
        if row["partner_id"]:  # its partner linked as one segment (`.`/`..` by query)
            assert f'href="{escape(partner_path(row["partner_id"]))}"' in text
        for pair in (u for u in users if u["alert_id"] == row["alert_id"]):
            if len(pair["user_id"]) > MAX_LINKED_ID:  # the 5,000-character user: shown, unlinked
                assert "id too long to link" in text
                continue
            query = urlencode({"timeline": pair["user_id"], "user": pair["user_id"]})
            text = page(ui, f"/alerts/{row['alert_id']}?{query}")
            assert "Timeline unavailable" not in text and "Flags unavailable" not in text
            assert "has no flags in this alert" not in text, pair  # the filter matched
    page(ui, "/alerts/not-an-id", 404)
    page(ui, f"/alerts/{'0' * 32}", 404)


def test_every_series_page_renders_and_bad_ids_are_404(fresh_ui: UI):
    """The corpus is one day: the same alerts a day later make every app and rule a series."""
    ui = fresh_ui
    later = corpus.DAY + timedelta(days=1)
    rows = [
        {**row, "alert_id": f"{n:032x}", "day": later, "series_id": None}
        for n, row in enumerate(ui.alerts.to_pylist())
    ]
    ui.store.upsert_day(later, pa.Table.from_pylist(rows, schema=ui.alerts.schema))
    series_ids = {a.series_id for a in ui.store.iter_alerts(AlertFilter()) if a.series_id}
    # one per app and rule; a coverage alert (a partner's, no app) belongs to none: a row a day
    lone = sum(kind == "coverage" for kind in ui.alerts["kind"].to_pylist())
    assert len(series_ids) == ui.alerts.num_rows - lone > 0
    for series_id in series_ids:
        text = page(ui, f"/series/{series_id}")
        assert 'id="series-status-form"' in text
    assert rows_on(page(ui, "/queue?per_page=200")) == len(series_ids) + 2 * lone
    page(ui, f"/series/{'f' * 32}", 404)
    page(ui, "/series/..%2F..%2Faudit", 404)


def test_every_partner_link_opens_that_partner(ui: UI):
    """Each partner's link on /partners (and the queue) opens its own page; `p/../../audit`,
    `a/b`, `%2F`, `.`, `..`, `?x=1` and `#` included, never another page."""
    listing = page(ui, "/partners")
    links = set(HREF.findall(listing))
    partners = [p for p, _o, _t in ui.store.partners() if p != UNKNOWN_PARTNER]
    assert set(corpus.PATH_PARTNERS) <= set(partners)
    for partner in partners:
        link = str(escape(partner_path(partner)))
        assert link in links, partner
        text = page(ui, html.unescape(link))
        assert 'id="partner-rules"' in text, partner  # the partner page, not /audit or /queue
        assert f"<h1>{escape(partner)}" in text, partner
    bidi = page(ui, partner_path("p-bidi"))
    assert "Stream&lt;U+202E&gt;flix &lt;!channel&gt; &lt;https://evil.example|bank&gt;" in bidi
    page(ui, "/partners/no-such-partner", 404)
    page(ui, f"/partners/{quote('p/../../audit', safe='')}x", 404)
    page(ui, "/partners/" + "x" * (MAX_LINKED_ID + 1), 404)  # taken, though linked by digest
    page(ui, f"/partners?digest={digest('x' * (MAX_LINKED_ID + 1))}", 404)


def test_suppressions_and_audit_pages_render(ui: UI):
    page(ui, "/suppressions")
    text = page(ui, "/audit")
    assert f"inserted {ui.alerts.num_rows}" in text  # the publish is on the trail


def test_filter_lists_stay_small_with_a_huge_id(ui: UI):
    for path in ("/queue", "/suppressions", "/partners"):
        text = page(ui, path)
        assert len(text.encode()) < MAX_PAGE_BYTES, (path, len(text))
        assert corpus.LONG_APP[:1000] not in text  # shown cut short, never suggested


def test_the_report_digest_and_notifications_are_inert_and_link_each_partner(ui: UI, run: Run):
    report = run.results["report"]
    html_text = Path(report["files"]["html"]).read_text()
    digest = Path(report["files"]["digest"]).read_text()
    summary = Path(report["files"]["summary"]).read_text()
    for name, text in (("report", html_text), ("digest", digest)):
        assert_inert(text, name)
    assert corpus.SECRET not in summary  # data, not a page: the names are kept as they are
    assert report["totals"]["alerts"] == ui.alerts.num_rows
    notifications = alerts_for(report, run.settings)
    assert notifications  # the corpus quarantines a large share: an incomplete-input alert
    for alert in notifications:
        for text in (alert.subject, alert.body, alert.slack_text(), html.escape(alert.body)):
            assert corpus.SECRET not in text
        assert "<!channel>" not in alert.slack_text() and "\u202e" not in alert.slack_text()
    base = run.settings.review_url.rstrip("/")
    partner_links = [
        html.unescape(h)
        for h in HREF.findall(html_text)
        if h.startswith((f"{base}/partners/", f"{base}/partners?"))
    ]
    assert len(partner_links) >= len(corpus.PATH_PARTNERS)
    for link in partner_links:  # as a browser resolves it, then as the UI answers it
        parts = urlsplit(link)
        assert "/../" not in parts.path and not parts.path.endswith(("/..", "/."))
        path = parts.path[len(urlsplit(base).path) :] + (f"?{parts.query}" if parts.query else "")
        assert 'id="partner-rules"' in page(ui, path), link


def exported(ui: UI, path: str) -> str:
    """A CSV export: data, so its ids are exact (direction overrides kept), but no secret."""
    return _get(ui, path, 200)


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _assert_no_formula(rows: list[dict[str, str]], where: str) -> None:
    for row in rows:
        for cell in row.values():
            assert cell.startswith("'") or csv_cell(cell) == cell, (where, cell[:40])


def test_every_export_reconciles_and_runs_no_formula(ui: UI):
    rows = _csv_rows(exported(ui, "/export.csv"))
    assert sorted(r["alert_id"] for r in rows) == sorted(ui.alerts["alert_id"].to_pylist())
    _assert_no_formula(rows, "export.csv")
    assert {r["app_id"] for r in rows} >= {corpus.LONG_APP, "app-\u202e$x$"}  # exported whole
    query = urlencode({"partner": "p/../../audit"})
    assert {r["partner_id"] for r in _csv_rows(exported(ui, f"/export.csv?{query}"))} == {
        "p/../../audit"
    }
    flagged = ui.alerts.select(["alert_id", "flags"]).to_pylist()
    users = set()
    for alert in flagged:
        flags = _csv_rows(exported(ui, f"/alerts/{alert['alert_id']}/flags.csv"))
        assert len(flags) == alert["flags"], alert
        _assert_no_formula(flags, alert["alert_id"])
        users |= {f["user_id"] for f in flags}
    assert '\'=HYPERLINK("http://evil")' in users  # the formula user id, quoted
    assert sum(a["flags"] for a in flagged) == ui.flags.num_rows


def _suppress(ui: UI, app_id: str, rule: str = "NO_SIGNIN") -> tuple[int, str]:
    form = {
        "csrf_token": csrf_of(ui.client, "/suppressions"),
        "app_id": app_id,
        "rule": rule,
        "until": "2024-03-31",
        "reason": "agreed migration",
    }
    response = ui.client.post("/suppressions", data=form, follow_redirects=False)
    return response.status_code, response.text


def test_a_huge_app_id_is_suppressed_in_the_ui_and_bad_ones_refused(fresh_ui: UI):
    ui = fresh_ui
    status, text = _suppress(ui, corpus.LONG_APP)
    assert status == 303, text[-300:]
    (suppression,) = ui.store.suppressions()
    assert suppression.app_id == corpus.LONG_APP  # the whole id, not a cut
    hidden = ui.store.alerts(AlertFilter(app_id=corpus.LONG_APP), per_page=10)
    assert [a.rule for a in hidden.alerts] == ["SCOPE_NOT_IN_PARTNERSHIP"]  # NO_SIGNIN hidden
    text = page(ui, "/suppressions")
    assert f"{corpus.LONG_APP[:79]}…" in text and len(text.encode()) < MAX_PAGE_BYTES
    for bad, reason in (
        ("app\x00ok", "app_id: control characters are not allowed"),
        ("a\x1fb", "app_id: control characters are not allowed"),
        ("x" * (MAX_ID + 1), f"app_id: longer than {MAX_ID:,} characters"),
    ):
        status, text = _suppress(ui, bad)
        assert (status, reason in html.unescape(text)) == (400, True), (bad[:20], text[-600:])
    refusal = page(ui, "/queue?" + urlencode({"app": "a\x01b"}), 400)
    assert "app: control characters are not allowed" in refusal
    assert len(ui.store.suppressions()) == 1


CLI = Path(sys.executable).parent / "access-audit"


def _review(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "review", *args, "--db", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_line_lists_and_suppresses_a_huge_id_and_refuses_a_control_character(
    fresh_ui: UI,
):
    url = fresh_ui.settings.review_db
    listed = _review(url, "list", "--app", corpus.LONG_APP, "--json")
    assert listed.returncode == 0, listed.stderr
    assert {a["app_id"] for a in json.loads(listed.stdout)["alerts"]} == {corpus.LONG_APP}
    until = ("--until", "2024-03-31", "--reason", "migration", "--as", "rita")
    done = _review(url, "suppress", "--app", corpus.LONG_APP, "--rule", "NO_SIGNIN", *until)
    assert done.returncode == 0, done.stderr
    assert [s.app_id for s in fresh_ui.store.suppressions()] == [corpus.LONG_APP]
    for bad, code in (("app\x01ok", "0001"), ("a\x7f", "007F")):
        refused = _review(url, "suppress", "--app", bad, "--rule", "NO_SIGNIN", *until)
        assert refused.returncode == 2
        assert refused.stderr.splitlines() == [
            f"access-audit: error: argument --app: holds a control character (U+{code}), which "
            "no id may hold (see 'access-audit review suppress --help')"
        ]
    assert len(fresh_ui.store.suppressions()) == 1
