"""Who is asking: the principal of a request, and the standalone logins from the settings."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import anyio.to_thread
from starlette.requests import Request

from pipeline.config import ReviewUser
from pipeline.review.sessions import LIFETIME_SECONDS, SessionRecord, SessionStore, password_tag
from pipeline.review.web.session_middleware import STATE_KEY, SessionState, session_state

VIEWER, REVIEWER = "viewer", "reviewer"
SESSION_LIFETIME_SECONDS = LIFETIME_SECONDS  # absolute: a session ends this long after its login
# argon2 as configured takes 64 MiB a check: this many at once per worker, the others wait
HASHING_SLOTS = 2
HASHING_WAIT_SECONDS = 20.0


class LoginBusy(Exception):
    """Every hashing slot stayed taken for HASHING_WAIT_SECONDS: try again later (503)."""


@dataclass(frozen=True)
class Principal:
    """A logged-in person: viewers read, reviewers also change."""

    name: str
    role: str

    @property
    def can_change(self) -> bool:
        return self.role == REVIEWER


class Authenticator(Protocol):
    """How the app learns who is logged in: its own sessions, or Airflow's tokens."""

    login_form: bool  # True: the app shows /login itself

    async def principal(self, request: Request) -> Principal | None: ...

    def login_url(self, request: Request, next_path: str) -> str: ...

    def logout_url(self, request: Request) -> str: ...


def hash_password(password: str) -> str:
    """An argon2id hash for the `review_users` setting."""
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


class StandaloneAuth:
    """Logins from `settings.review_users` (argon2 hashes); who is logged in is the server-side
    session's row (see session_middleware), never the cookie itself."""

    login_form = True

    def __init__(self, users: tuple[ReviewUser, ...], sessions: SessionStore) -> None:
        from argon2 import PasswordHasher

        self._hasher = PasswordHasher()
        self._users = {user.name: user for user in users}
        self.sessions = sessions
        # Unknown names are checked against this hash so that they take as long as known ones.
        self._dummy_hash = self._hasher.hash("not a password of anyone")
        self._slots = threading.BoundedSemaphore(HASHING_SLOTS)
        self._count_lock = threading.Lock()
        self.hashing_now = 0
        self.hashing_peak = 0  # most checks ever run at once (for tests and monitoring)

    def _record(self, request: Request) -> SessionRecord | None:
        state = request.scope.get(STATE_KEY)
        return state.record if isinstance(state, SessionState) else None

    async def principal(self, request: Request) -> Principal | None:
        record = self._record(request)
        if record is None or record.user_name is None:
            return None
        user = self._users.get(record.user_name)
        if user is None:
            return None
        if record.password_tag != password_tag(user.password_hash):
            # the settings hold a new password since this login: the session has ended
            state = session_state(request)
            await anyio.to_thread.run_sync(self.sessions.end, state.id, "password changed")
            state.record = None
            return None
        # The role is read from the settings on every request, never kept in the session.
        return Principal(user.name, user.role)

    @contextmanager
    def hashing_slot(self) -> Iterator[None]:
        """One of HASHING_SLOTS, held while a password is checked (LoginBusy if none frees)."""
        if not self._slots.acquire(timeout=HASHING_WAIT_SECONDS):
            raise LoginBusy
        with self._count_lock:
            self.hashing_now += 1
            self.hashing_peak = max(self.hashing_peak, self.hashing_now)
        try:
            yield
        finally:
            with self._count_lock:
                self.hashing_now -= 1
            self._slots.release()

    def verify(self, name: str, password: str) -> Principal | None:
        """The principal if the password matches the user's hash, else None (same cost).
        Call it inside `hashing_slot()`."""
        from argon2.exceptions import InvalidHashError, VerificationError

        user = self._users.get(name)
        try:
            self._hasher.verify(user.password_hash if user else self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return Principal(user.name, user.role) if user else None

    def password_tag_of(self, name: str) -> str:
        return password_tag(self._users[name].password_hash)

    def login_url(self, request: Request, next_path: str) -> str:
        from urllib.parse import urlencode

        return f"{request.scope.get('root_path', '')}/login?{urlencode({'next': next_path})}"

    def logout_url(self, request: Request) -> str:
        return f"{request.scope.get('root_path', '')}/login"
