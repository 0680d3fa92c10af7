"""Web UI fixtures: a small real warehouse and review store (three sample days run through the
pipeline, their alerts published), logins of each role, and clients logged in through the login
form."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipeline.config import PROJECT_ROOT, ReviewUser, Settings, load_settings
from pipeline.review.store import ReviewStore
from pipeline.review.web.app import create_app
from pipeline.review.web.auth import hash_password
from tests.built_once import built_once

SAMPLE_DAYS = (date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3))
PASSWORDS = {"rita": "rita-reviews-2026", "vic": "vic-only-reads"}
ROLES = {"rita": "reviewer", "vic": "viewer"}
SESSION_SECRET = "kQ3vX9-test-only-0b1d4e7a92c5f8e6a3d1b7c4e9f2a6d8"  # strong enough to start
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class SampleRun:
    """A warehouse and review store made by running the pipeline on sample days."""

    warehouse: Path
    review_db: Path
    users: tuple[ReviewUser, ...]


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> SampleRun:
    root = built_once(tmp_path_factory, "review-web", run_sample_days)  # one for all workers
    users = tuple(
        ReviewUser(name, hash_password(pw), ROLES[name]) for name, pw in PASSWORDS.items()
    )
    return SampleRun(root / "warehouse", root / "review.db", users)


def run_sample_days(root: Path) -> None:
    from pipeline.steps import run_day

    settings = load_settings(
        env={},
        landing=str(PROJECT_ROOT / "sample_logs"),
        warehouse=str(root / "warehouse"),
        review_db=f"sqlite:///{root / 'review.db'}",
        models_dir=str(root / "models"),
    )
    for day in SAMPLE_DAYS:
        run_day(day, settings)
        publish_alerts(day, settings)


def publish_alerts(day: date, settings: Settings) -> None:
    """The day's alerts into the store. Until the pipeline's alerts step writes alerts/date=D/,
    they are made here from the day's flags and anomalies (tests.review.literals)."""
    from pipeline.review.publish import publish_day
    from pipeline.warehouse import Warehouse
    from tests.review.literals import alerts_from_flags

    warehouse = Warehouse(settings.warehouse)
    if not warehouse.has_partition("alerts", day):
        made = alerts_from_flags(
            day, warehouse.read_partition("flags", day), warehouse.read_partition("anomalies", day)
        )
        warehouse.write_table("alerts", day, made)
    publish_day(day, settings)


def settings_for(run: SampleRun, review_db: str) -> Settings:
    return load_settings(
        env={},
        landing=str(PROJECT_ROOT / "sample_logs"),
        warehouse=str(run.warehouse),
        review_db=review_db,
        review_users=run.users,
        review_session_secret=SESSION_SECRET,
    )


@pytest.fixture
def web_settings(sample_run: SampleRun, tmp_path: Path) -> Settings:
    """Settings on a private copy of the sample review store (tests may change it)."""
    copy = tmp_path / "review.db"
    shutil.copyfile(sample_run.review_db, copy)
    return settings_for(sample_run, f"sqlite:///{copy}")


@pytest.fixture
def store(web_settings: Settings) -> Iterator[ReviewStore]:
    opened = ReviewStore.open(web_settings.review_db)
    yield opened
    opened.dispose()


@pytest.fixture
def app_client(web_settings: Settings, store: ReviewStore) -> Callable[..., TestClient]:
    """Clients of one app; `logged_in_as` a name logs in through the form first."""

    def make(logged_in_as: str | None = None) -> TestClient:
        client = TestClient(create_app(web_settings, store), raise_server_exceptions=False)
        client.headers["origin"] = str(client.base_url).rstrip("/")  # as a browser's posts
        if logged_in_as is not None:
            login(client, logged_in_as, PASSWORDS[logged_in_as])
        return client

    return make


def csrf_of(client: TestClient, path: str = "/queue") -> str:
    """The CSRF token in the forms of a page."""
    match = CSRF_INPUT.search(client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: TestClient, name: str, password: str, next_path: str = "/queue") -> str:
    """Log in through the form; returns where the login redirects to. The client sends this
    origin with every request from now on, as a browser does with its form posts."""
    client.headers["origin"] = str(client.base_url).rstrip("/")
    token = csrf_of(client, "/login")
    response = client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": token, "next": next_path},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return response.headers["location"]
