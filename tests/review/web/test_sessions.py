"""Sessions live on the server: the cookie is only a random id, and a session ended by logout,
a password change or an admin's logout-all lets no copy of its cookie read or write again;
idle and absolute expiry end it too. A weak session secret stops the UI from starting."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from pipeline.cli import main
from pipeline.config import ReviewUser
from pipeline.errors import ConfigError
from pipeline.review.secret_strength import secret_problem
from pipeline.review.sessions import IDLE_SECONDS, LIFETIME_SECONDS, TOUCH_SECONDS
from pipeline.review.web.app import SESSION_COOKIE, create_app
from pipeline.review.web.auth import hash_password
from pipeline.review.web.session_middleware import ID_FORM
from tests.review.web.backends import Backend, backend_fixture, first_new_alert  # noqa: F401 (fixture)
from tests.review.web.conftest import PASSWORDS, csrf_of, login


def plant(client: TestClient, cookie: str) -> None:
    """Give a client a session cookie, as the app's own would be stored."""
    client.cookies.set(SESSION_COOKIE, cookie, domain="testserver.local")


def copy_of(backend: Backend, client: TestClient) -> TestClient:
    """Another browser holding a copy of `client`'s session cookie (stolen, or a second tab)."""
    thief = backend.client()
    plant(thief, client.cookies[SESSION_COOKIE])
    return thief


def reads(client: TestClient) -> bool:
    response = client.get("/queue", follow_redirects=False)
    assert response.status_code in (200, 303), response.status_code
    return response.status_code == 200


def writes(backend: Backend, client: TestClient, token: str) -> int:
    """Try to change an item with a form token seen while logged in; the response status."""
    item = first_new_alert(backend)
    response = client.post(
        f"/alerts/{item.alert_id}/note",
        data={"note": "written with a copied cookie", "csrf_token": token},
        follow_redirects=False,
    )
    notes = [e for e in backend.store.audit_trail(item.alert_id) if e.action == "note"]
    assert (response.status_code == 303) == bool(notes), "a note is kept only when accepted"
    return response.status_code


def test_the_cookie_holds_only_a_random_id_that_the_store_never_keeps(backend: Backend) -> None:
    client = backend.client()
    login(client, "rita", PASSWORDS["rita"])
    cookie = client.cookies[SESSION_COOKIE]
    assert ID_FORM.fullmatch(cookie), cookie
    rows = backend.sql("SELECT id_hash, user_name FROM review_sessions")
    assert rows == [(hashlib.sha256(cookie.encode()).hexdigest(), "rita")]
    assert cookie not in repr(backend.sql("SELECT * FROM review_sessions"))
    other = backend.client()
    login(other, "rita", PASSWORDS["rita"])
    assert other.cookies[SESSION_COOKIE] != cookie


def test_a_copied_cookie_reads_and_writes_nothing_after_logout(backend: Backend) -> None:
    client = backend.client()
    login(client, "rita", PASSWORDS["rita"])
    token = csrf_of(client)
    thief = copy_of(backend, client)
    stolen = client.cookies[SESSION_COOKIE]
    assert reads(thief)  # the copy works while the session lives
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert not reads(client)
    assert not reads(thief)
    assert writes(backend, thief, token) == 401
    # the ended id is never taken up again: the copy's browser was given a new one
    assert thief.cookies[SESSION_COOKIE] != stolen


def test_logout_in_one_worker_ends_the_session_in_every_worker(backend: Backend) -> None:
    first, second = backend.app(), backend.app()
    client = backend.client(first)
    login(client, "rita", PASSWORDS["rita"])
    elsewhere = backend.client(second)
    plant(elsewhere, client.cookies[SESSION_COOKIE])
    assert reads(elsewhere)
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    assert not reads(elsewhere)


def test_a_password_change_ends_the_sessions_logged_in_with_the_old_one(backend: Backend) -> None:
    rita = backend.client()
    login(rita, "rita", PASSWORDS["rita"])
    vic = backend.client()
    login(vic, "vic", PASSWORDS["vic"])
    token = csrf_of(rita)
    new_users = tuple(
        ReviewUser(u.name, hash_password("rita-new-password-2026"), u.role)
        if u.name == "rita"
        else u
        for u in backend.settings.review_users
    )
    restarted = backend.app(review_users=new_users)  # the settings now hold the new hash
    old_cookie = backend.client(restarted)
    plant(old_cookie, rita.cookies[SESSION_COOKIE])
    assert not reads(old_cookie)
    assert writes(backend, old_cookie, token) == 401
    assert not reads(rita)  # ended in the store: the old worker refuses it too
    vic_after = backend.client(restarted)
    plant(vic_after, vic.cookies[SESSION_COOKIE])
    assert reads(vic_after)  # another user's session is untouched
    fresh = backend.client(restarted)
    login(fresh, "rita", "rita-new-password-2026")
    assert reads(fresh)


def test_logout_all_from_the_cli_ends_every_session(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    clients = {name: backend.client() for name in ("rita", "vic")}
    for name, client in clients.items():
        login(client, name, PASSWORDS[name])
    tokens = {name: csrf_of(client) for name, client in clients.items()}
    copies = {name: copy_of(backend, client) for name, client in clients.items()}
    assert main(["review", "logout-all", "--db", backend.url, "--user", "vic", "--as", "ada"]) == 0
    assert "1 session(s) ended of vic" in capsys.readouterr().out
    assert reads(clients["rita"]) and not reads(clients["vic"]) and not reads(copies["vic"])
    assert main(["review", "logout-all", "--db", backend.url, "--as", "ada"]) == 0
    assert "1 session(s) ended" in capsys.readouterr().out
    for name, client in clients.items():
        assert not reads(client) and not reads(copies[name])
    assert writes(backend, copies["rita"], tokens["rita"]) == 401
    entries = [e for e in backend.store.audit_trail() if e.action == "logout_all"]
    assert [(e.actor, e.to_value) for e in entries] == [("ada", "(everyone)"), ("ada", "vic")]


def test_an_idle_session_ends_and_a_used_one_ends_at_its_lifetime(backend: Backend) -> None:
    app = backend.app()
    sessions = app.state.sessions
    now = [sessions.clock()]
    sessions.clock = lambda: now[0]
    idle, busy = backend.client(app), backend.client(app)
    login(idle, "vic", PASSWORDS["vic"])
    login(busy, "rita", PASSWORDS["rita"])
    step = IDLE_SECONDS // 2 + TOUCH_SECONDS  # the busy one comes back well within the idle time
    start = now[0]
    for elapsed in range(step, LIFETIME_SECONDS - step, step):
        now[0] = start + elapsed
        assert reads(busy), f"{elapsed} s after login"
        if elapsed > IDLE_SECONDS:
            assert not reads(idle), f"{elapsed} s after login"
    now[0] = start + LIFETIME_SECONDS + 1
    assert not reads(busy)


def test_a_made_up_or_malformed_cookie_logs_nobody_in(backend: Backend) -> None:
    client = backend.client()
    login(client, "rita", PASSWORDS["rita"])
    real = client.cookies[SESSION_COOKIE]
    for forged in ("A" * 43, real[:-1] + ("A" if real[-1] != "A" else "B"), real + "x", "", "{}"):
        other = backend.client()
        plant(other, forged)
        assert not reads(other), forged


@pytest.mark.parametrize(
    "secret",
    [
        "x",
        "changeme",
        "a long random string",
        "test-session-secret",
        "short-but-random-9f3k",
        "ab" * 30,
        "PASTE: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'",  # the README's
    ],
)
def test_a_weak_or_example_secret_is_refused_with_one_line(backend: Backend, secret: str) -> None:
    with pytest.raises(ConfigError) as refused:
        backend.app(review_session_secret=secret)
    message = str(refused.value)
    assert "review_session_secret is too weak" in message and "\n" not in message
    assert secret_problem(secret) == message


def test_a_random_secret_is_accepted() -> None:
    import secrets

    for _ in range(50):
        assert secret_problem(secrets.token_urlsafe(32)) is None
        assert secret_problem(secrets.token_hex(32)) is None


def test_serve_refuses_a_weak_secret_in_one_line(tmp_path, sample_run) -> None:
    from tests.review.web.server import write_config

    config = write_config(
        tmp_path / "ui.toml",
        f"sqlite:///{tmp_path / 'r.db'}",
        sample_run.warehouse,
        sample_run.users,
    )
    # a top-level key: before the [[review_users]] tables
    config.write_text('review_session_secret = "changeme"\n' + config.read_text())
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "review_session_secret is too weak" in lines[0], done.stderr


def test_create_app_takes_the_strong_conftest_secret(backend: Backend) -> None:
    assert create_app(backend.settings, backend.store).state.csrf_key


def test_the_readmes_example_secret_is_refused() -> None:
    import re

    from pipeline.config import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text()
    examples = re.findall(r'^review_session_secret = "([^"]*)"', readme, flags=re.MULTILINE)
    assert examples, "the README shows how to set review_session_secret"
    for example in examples:
        assert secret_problem(example) is not None, example
