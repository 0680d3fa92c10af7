"""Who is asking: the principal of a request, and the standalone logins from the settings."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request

from pipeline.config import ReviewUser

VIEWER, REVIEWER = "viewer", "reviewer"
SESSION_USER = "user"
SESSION_LOGIN_AT = "login_at"  # Unix seconds of the password check
SESSION_LIFETIME_SECONDS = 12 * 3600  # absolute: a session ends this long after its login


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


def session_is_fresh(login_at: object) -> bool:
    """True if a session logged in at `login_at` (Unix seconds) has not outlived its lifetime;
    a copied cookie thus stops working by itself, even after logout."""
    if not isinstance(login_at, int) or isinstance(login_at, bool):
        return False
    return 0 <= time.time() - login_at < SESSION_LIFETIME_SECONDS


def hash_password(password: str) -> str:
    """An argon2id hash for the `review_users` setting."""
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


class StandaloneAuth:
    """Logins from `settings.review_users` (argon2 hashes) kept in the signed session cookie."""

    login_form = True

    def __init__(self, users: tuple[ReviewUser, ...]) -> None:
        from argon2 import PasswordHasher

        self._hasher = PasswordHasher()
        self._users = {user.name: user for user in users}
        # Unknown names are checked against this hash so that they take as long as known ones.
        self._dummy_hash = self._hasher.hash("not a password of anyone")

    async def principal(self, request: Request) -> Principal | None:
        name = request.session.get(SESSION_USER)
        if not session_is_fresh(request.session.get(SESSION_LOGIN_AT)):
            return None
        user = self._users.get(name) if isinstance(name, str) else None
        # The role is read from the settings on every request, never trusted from the cookie.
        return Principal(user.name, user.role) if user else None

    def verify(self, name: str, password: str) -> Principal | None:
        """The principal if the password matches the user's hash, else None (same cost)."""
        from argon2.exceptions import InvalidHashError, VerificationError

        user = self._users.get(name)
        try:
            self._hasher.verify(user.password_hash if user else self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return Principal(user.name, user.role) if user else None

    def login_url(self, request: Request, next_path: str) -> str:
        from urllib.parse import urlencode

        return f"{request.scope.get('root_path', '')}/login?{urlencode({'next': next_path})}"

    def logout_url(self, request: Request) -> str:
        return f"{request.scope.get('root_path', '')}/login"
