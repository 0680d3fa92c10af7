"""Brute force: failed logins block the user name and the address for growing times (kept in
the store, so every worker agrees), the right password is refused while blocked and works
after, password checks run a few at a time, and logins and failures reach the audit trail."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from pipeline.review.login_throttle import (
    ADDRESS_FREE_FAILURES,
    MAX_DELAY_SECONDS,
    USER_FREE_FAILURES,
    LoginThrottle,
    delay_after,
)
from pipeline.review.sessions import engine_of
from pipeline.review.web.auth import HASHING_SLOTS
from tests.review.web.backends import Backend, backend_fixture  # noqa: F401 (fixture)
from tests.review.web.conftest import PASSWORDS, csrf_of


def attempt(client: TestClient, name: str, password: str) -> int:
    """One login through the form; the response status (303 logged in)."""
    response = client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": csrf_of(client, "/login")},
        follow_redirects=False,
    )
    return response.status_code


def frozen_clock(*throttles: LoginThrottle) -> list[float]:
    """Stop the throttles' clock; move it by changing the returned list's one value."""
    now = [throttles[0].clock()]
    for throttle in throttles:
        throttle.clock = lambda: now[0]
    return now


def test_forty_wrong_passwords_then_the_right_one_is_refused_until_the_block_ends(
    backend: Backend,
) -> None:
    app = backend.app()
    now = frozen_clock(app.state.throttle)
    client = backend.client(app)
    statuses = [attempt(client, "rita", f"guess-{i}") for i in range(40)]
    assert statuses[:USER_FREE_FAILURES] == [401] * USER_FREE_FAILURES
    assert statuses[USER_FREE_FAILURES] == 401  # the first failure past the free ones blocks
    assert set(statuses[USER_FREE_FAILURES + 1 :]) == {429}  # no hash checked while blocked
    response = client.post(
        "/login",
        data={"username": "rita", "password": "guess-41", "csrf_token": csrf_of(client, "/login")},
    )
    assert response.status_code == 429 and "Too many failed logins" in response.text
    assert int(response.headers["retry-after"]) >= 1
    assert attempt(client, "rita", PASSWORDS["rita"]) == 429  # the 42nd: even the right one
    # another worker on the same store agrees
    other = backend.app()
    other.state.throttle.clock = app.state.throttle.clock
    assert attempt(backend.client(other), "rita", PASSWORDS["rita"]) == 429
    now[0] += delay_after(USER_FREE_FAILURES + 1, USER_FREE_FAILURES) + 1
    assert attempt(client, "rita", PASSWORDS["rita"]) == 303


def test_the_delay_grows_with_each_failure(backend: Backend) -> None:
    app = backend.app()
    now = frozen_clock(app.state.throttle)
    client = backend.client(app)
    refused = 0
    for _ in range(USER_FREE_FAILURES + 5):
        while (status := attempt(client, "vic", "wrong")) == 429:
            refused += 1
            now[0] += 1
        assert status == 401
    # each failure past the free ones blocks for twice as long: 1 s, 2 s, 4 s, 8 s
    assert refused == 1 + 2 + 4 + 8


def test_many_names_from_one_address_block_the_address(backend: Backend) -> None:
    app = backend.app()
    frozen_clock(app.state.throttle)
    client = backend.client(app)
    statuses = [attempt(client, f"user{i}", "wrong") for i in range(ADDRESS_FREE_FAILURES + 3)]
    assert statuses[: ADDRESS_FREE_FAILURES + 1] == [401] * (ADDRESS_FREE_FAILURES + 1)
    assert statuses[-1] == 429
    assert attempt(client, "vic", PASSWORDS["vic"]) == 429  # a real user from that address too


def test_a_success_clears_the_users_count_not_the_addresss(backend: Backend) -> None:
    throttle = LoginThrottle(engine_of(backend.store))
    frozen_clock(throttle)
    for _ in range(USER_FREE_FAILURES):
        throttle.failed("rita", "10.0.0.1")
    throttle.succeeded("rita")
    assert throttle.failed("rita", "10.0.0.1") == 0  # counting afresh for the user
    for i in range(ADDRESS_FREE_FAILURES - USER_FREE_FAILURES - 1):
        throttle.failed(f"x{i}", "10.0.0.1")
    assert throttle.wait_seconds("someone", "10.0.0.1") == 0
    assert throttle.failed("y", "10.0.0.1") == 1  # the address's 21st failure since it began
    assert throttle.wait_seconds("someone", "10.0.0.1") == 1
    assert throttle.wait_seconds("someone", "10.0.0.2") == 0


def test_failures_are_forgotten_after_an_hour(backend: Backend) -> None:
    throttle = LoginThrottle(engine_of(backend.store))
    now = frozen_clock(throttle)
    for _ in range(USER_FREE_FAILURES):
        throttle.failed("rita", None)
    now[0] += 3601
    assert throttle.failed("rita", None) == 0


@given(st.integers(0, 200), st.integers(0, 30))
def test_delays_are_free_then_doubling_then_capped(failures: int, free: int) -> None:
    delay = delay_after(failures, free)
    if failures <= free:
        assert delay == 0
    else:
        assert delay == min(2 ** (failures - free - 1), MAX_DELAY_SECONDS)
        assert delay_after(failures + 1, free) >= delay


def test_sixteen_parallel_logins_hash_at_most_a_few_at_a_time(backend: Backend) -> None:
    app = backend.app()
    frozen_clock(app.state.throttle)
    clients = [backend.client(app) for _ in range(16)]
    tokens = [csrf_of(client, "/login") for client in clients]

    def log_in(index: int) -> int:
        name = "rita" if index % 2 else "vic"
        return (
            clients[index]
            .post(
                "/login",
                data={"username": name, "password": PASSWORDS[name], "csrf_token": tokens[index]},
                follow_redirects=False,
            )
            .status_code
        )

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(log_in, range(16)))
    assert statuses == [303] * 16
    auth = app.state.auth
    assert auth.hashing_now == 0
    assert 1 <= auth.hashing_peak <= HASHING_SLOTS


def test_logins_and_failures_are_in_the_audit_trail(backend: Backend) -> None:
    app = backend.app()
    frozen_clock(app.state.throttle)
    client = backend.client(app)
    assert attempt(client, "rita\x00<b>", "wrong") == 401  # typed text is stored escaped
    for _ in range(USER_FREE_FAILURES + 1):
        attempt(client, "vic", "wrong")
    assert attempt(client, "rita", PASSWORDS["rita"]) == 303
    trail = [e for e in backend.store.audit_trail() if e.action in ("login", "login_failed")]
    assert [(e.action, e.actor) for e in trail][:2] == [("login", "rita"), ("login_failed", "vic")]
    assert trail[1].note and trail[1].note.startswith("blocked for 1 s")
    assert ("login_failed", "rita\\x00<b>") in [(e.action, e.actor) for e in trail]
    assert sum(e.action == "login_failed" for e in trail) == USER_FREE_FAILURES + 2
    origins = backend.sql("SELECT DISTINCT origin FROM review_audit WHERE action LIKE 'login%'")
    assert origins == [("web testclient",)]


@pytest.mark.parametrize("field", ["username", "password"])
def test_huge_credentials_are_cut_before_hashing(backend: Backend, field: str) -> None:
    client = backend.client()
    form = {"username": "rita", "password": "x", "csrf_token": csrf_of(client, "/login")}
    form[field] = "y" * 1_000_000
    assert client.post("/login", data=form).status_code == 401
