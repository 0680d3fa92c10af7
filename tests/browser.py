"""Debian's Chromium for the browser tests, started the way this machine allows (no downloads,
no background connections to Google's hosts)."""

from __future__ import annotations

import os
from typing import Any

CHROMIUM = os.environ.get("ACCESS_AUDIT_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def launch_chromium(playwright: Any) -> Any:
    """A headless Chromium browser from Playwright's sync API."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
