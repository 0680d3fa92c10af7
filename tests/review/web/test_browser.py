"""An analyst in a real browser (Playwright driving Debian's Chromium) against `access-audit
serve`: log in, filter the queue, expand a series, open it and one day's alert, page and filter
its flags, look at one user's timeline, decide the whole series, and find the decision in the
audit trail. Screenshots go to test-artifacts/review-ui/."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import PROJECT_ROOT
from tests.browser import launch_chromium
from tests.review.web.conftest import PASSWORDS, SampleRun
from tests.review.web.server import serving, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "review-ui"
NOTE = "QuickReply kept calling after users revoked; confirmed with the partner on the call"


@pytest.fixture
def server_url(sample_run: SampleRun, tmp_path: Path) -> Iterator[str]:
    review_db = tmp_path / "review.db"
    shutil.copyfile(sample_run.review_db, review_db)
    config = write_config(
        tmp_path / "access-audit.toml",
        f"sqlite:///{review_db}",
        sample_run.warehouse,
        sample_run.users,
    )
    with serving(config, tmp_path / "serve.log") as url:
        yield url


@pytest.fixture
def page(server_url: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(base_url=server_url, viewport={"width": 1360, "height": 900})
        page = context.new_page()
        page.set_default_timeout(20_000)
        yield page
        context.close()
        browser.close()


def test_analyst_walks_from_the_queue_to_a_series_decision_in_the_browser(
    page: object, server_url: str
) -> None:
    """queue → series → alert → its flags → one user's timeline → decide the series → the audit
    trail shows it."""
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    # log in
    page.goto("/queue")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fqueue$"))
    page.screenshot(path=ARTIFACTS / "01-login.png")
    page.fill('input[name="username"]', "rita")
    page.fill('input[name="password"]', PASSWORDS["rita"])
    page.click('button:has-text("Log in")')
    expect(page.locator("#current-user")).to_have_text("rita")
    expect(page.locator(".role")).to_have_text("reviewer")
    page.screenshot(path=ARTIFACTS / "02-queue.png", full_page=True)

    # filter the queue: a series is one row that expands into its days
    page.select_option('select[name="rule"]', "SIGNIN_REVOKED")
    page.select_option('select[name="sort"]', "-flags")
    page.click("#apply-filters")
    expect(page).to_have_url(re.compile(r"rule=SIGNIN_REVOKED"))
    rules = page.locator("#queue-table tbody td.rule").all_inner_texts()
    assert rules and set(rules) == {"SIGNIN_REVOKED"}
    row = page.locator("#queue-table tbody tr.series-row").first
    series_id = row.get_attribute("data-row-key")
    assert series_id
    days = row.locator("a.day-link")
    expect(days.first).to_be_hidden()
    row.locator("details.series-days summary span.muted").click()
    expect(days.first).to_be_visible()
    day_count = days.count()
    assert day_count > 1
    page.screenshot(path=ARTIFACTS / "03-queue-series-expanded.png", full_page=True)

    # the series: its days
    row.locator("a.series-link").click()
    expect(page).to_have_url(re.compile(rf"/series/{series_id}"))
    expect(page.locator("#series-days tbody tr")).to_have_count(day_count)
    page.screenshot(path=ARTIFACTS / "04-series.png", full_page=True)

    # one day's alert and its flags, paged from the warehouse, filtered by action
    page.locator("#series-days a.day-link").last.click()
    expect(page).to_have_url(re.compile(r"/alerts/[0-9a-f]{32}"))
    flags_shown = page.locator("#flags-table tbody tr")
    assert flags_shown.count() >= 1
    total = int(re.search(r"of ([\d,]+) flags", page.locator("#flags-count").inner_text())
                .group(1).replace(",", ""))  # fmt: skip
    assert total == int(page.locator("#alert-flags").inner_text().replace(",", ""))
    expect(page.locator("#hours-chart")).to_be_visible()
    page.select_option('#flag-filters select[name="action"]', "read")
    page.click('#flag-filters button:has-text("Filter")')
    actions = page.locator("#flags-table tbody td:nth-child(4)").all_inner_texts()
    assert actions and all(".read " in a for a in actions)
    page.screenshot(path=ARTIFACTS / "05-alert-flags.png", full_page=True)

    # one user's timeline: sign-ins against the partnership, their flagged accesses marked
    users = page.locator("#users-table tbody tr")
    first_user = users.first
    flags_of_user = int(first_user.locator("td.num").inner_text())
    first_user.locator("a.timeline-link").click()
    chart = page.locator("#timeline-chart")
    expect(chart).to_be_visible()
    assert "Timeline of user" in (chart.get_attribute("aria-label") or "")
    expect(chart.locator("circle.tl-access")).to_have_count(flags_of_user)
    assert chart.locator("rect.tl-period").count() >= 1
    assert chart.locator("path.tl-revoke").count() >= 1
    page.screenshot(path=ARTIFACTS / "06-user-timeline.png", full_page=True)

    # decide the whole series
    page.click("#series-link")
    expect(page).to_have_url(re.compile(rf"/series/{series_id}"))
    page.select_option("#series-new-status", "confirmed")
    page.fill("#series-note", NOTE)
    page.click("#save-series-status")
    expect(page.locator(".flash")).to_have_text(
        f"{day_count} day(s) of the series set to confirmed."
    )
    statuses = page.locator("#series-days tbody td:nth-child(5) .badge").all_inner_texts()
    assert statuses == ["confirmed"] * day_count
    page.screenshot(path=ARTIFACTS / "07-series-decided.png", full_page=True)

    # the audit trail shows it: one entry a day, each saying it came from the series
    page.click('nav a:has-text("Audit trail")')
    entries = page.locator("#audit-trail tbody tr").filter(has_text=NOTE)
    expect(entries).to_have_count(day_count)
    for n in range(day_count):
        expect(entries.nth(n)).to_contain_text("confirmed")
        expect(entries.nth(n)).to_contain_text("rita")
        expect(entries.nth(n)).to_contain_text(f"series {series_id}")
    page.screenshot(path=ARTIFACTS / "08-audit.png", full_page=True)

    # the partner overview, for the record
    page.click('nav a:has-text("Partners")')
    page.locator("#partners-table tbody a").first.click()
    expect(page.locator("#partner-chart")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "09-partner.png", full_page=True)
    assert [url for url in requested if not url.startswith(server_url + "/")] == []
