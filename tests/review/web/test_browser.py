"""A reviewer in a real browser (Playwright driving Debian's Chromium) against `access-audit
serve`: log in, filter the queue, open an item, see its timeline, mark it a false positive with a
note, reload, and find the decision in the audit trail. Screenshots go to
test-artifacts/review-ui/."""

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
NOTE = "Partner QA account, confirmed with Tunely on the call"


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


def test_reviewer_marks_an_item_false_positive_in_the_browser(
    page: object, server_url: str
) -> None:
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

    # filter the queue
    page.select_option('select[name="rule"]', "SIGNIN_REVOKED")
    page.select_option('select[name="sort"]', "-event_time")
    page.click("#apply-filters")
    expect(page).to_have_url(re.compile(r"rule=SIGNIN_REVOKED"))
    rules = page.locator("#queue-table tbody td.rule").all_inner_texts()
    assert rules and set(rules) == {"SIGNIN_REVOKED"}
    page.screenshot(path=ARTIFACTS / "03-queue-filtered.png", full_page=True)

    # open an item and see its timeline
    first = page.locator("#queue-table tbody tr").first
    item_id = first.get_attribute("data-item-id")
    assert item_id
    first.locator("a.item-link").click()
    expect(page).to_have_url(re.compile(rf"/items/{item_id}"))
    chart = page.locator("#timeline-chart")
    expect(chart).to_be_visible()
    assert "Timeline of user" in (chart.get_attribute("aria-label") or "")
    expect(chart.locator("circle.tl-access")).to_have_count(1)
    assert chart.locator("path.tl-revoke").count() >= 1
    assert chart.locator("rect.tl-grant").count() >= 1
    assert chart.locator("rect.tl-period").count() >= 1
    page.screenshot(path=ARTIFACTS / "04-item.png", full_page=True)

    # mark it a false positive with a note, reload, see the change
    page.select_option("#new-status", "false_positive")
    page.fill("#status-note", NOTE)
    page.click("#save-status")
    expect(page.locator(".flash")).to_have_text("Status set to false positive.")
    page.reload()
    expect(page.locator("#item-status")).to_have_text("false positive")
    expect(page.locator("#audit-trail")).to_contain_text(NOTE)
    page.screenshot(path=ARTIFACTS / "05-item-decided.png", full_page=True)

    # find it in the audit trail
    page.click('nav a:has-text("Audit trail")')
    row = page.locator("#audit-trail tbody tr").filter(has_text=item_id[:10])
    expect(row.first).to_contain_text("false positive")
    expect(row.first).to_contain_text(NOTE)
    expect(row.first).to_contain_text("rita")
    page.screenshot(path=ARTIFACTS / "06-audit.png", full_page=True)

    # the partner overview, for the record
    page.click('nav a:has-text("Partners")')
    page.locator("#partners-table tbody a").first.click()
    expect(page.locator("#partner-chart")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "07-partner.png", full_page=True)
    assert [url for url in requested if not url.startswith(server_url + "/")] == []
