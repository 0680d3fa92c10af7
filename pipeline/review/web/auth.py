"""Who is asking: the principal of a request, and the standalone logins from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request

from pipeline.config import ReviewUser

VIEWER, REVIEWER = "viewer", "reviewer"
SESSION_USER = "user"


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
