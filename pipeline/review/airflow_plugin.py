"""The review UI inside Airflow 3: an Airflow plugin that mounts the app on the API server at
/access-audit and adds a menu entry that shows it in Airflow's UI (an iframe, same origin).

The one module of `pipeline` that imports Airflow. Airflow does not authenticate plugin apps, so
every request is checked here against Airflow's own JWT (the UI's `_token` cookie or an
`Authorization: Bearer` header), validated by Airflow's auth manager. Roles:

- simple auth manager: `admin`, `op` and `user` review (change alerts); `viewer` reads;
- any other auth manager: reviewers may `PUT` the custom view `access-audit`, viewers `GET` it
  (`is_authorized_custom_view`); someone with neither is refused (403).

Nothing heavy is imported when Airflow loads the plugin: the app is built on its first request.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/access-audit"
RESOURCE_NAME = "access-audit"
READ_ROLES = ("viewer",)
CHANGE_ROLES = ("user", "op", "admin")


def _bearer_or_cookie(request: Any) -> str | None:
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    token = request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    return token or None


def review_role(manager: Any, user: Any) -> str | None:
    """The review role of an Airflow user (see the module docstring), None for no access."""
    from pipeline.review.web.auth import REVIEWER, VIEWER

    role = getattr(user, "role", None)
    if isinstance(role, str):
        if role.lower() in CHANGE_ROLES:
            return REVIEWER
        return VIEWER if role.lower() in READ_ROLES else None
    if manager.is_authorized_custom_view(method="PUT", resource_name=RESOURCE_NAME, user=user):
        return REVIEWER
    if manager.is_authorized_custom_view(method="GET", resource_name=RESOURCE_NAME, user=user):
        return VIEWER
    return None


class AirflowAuth:
    """The logged-in Airflow user, from Airflow's JWT checked by Airflow's auth manager."""

    login_form = False

    async def principal(self, request: Any) -> Any:
        from airflow.api_fastapi.app import get_auth_manager
        from fastapi import HTTPException
        from jwt import InvalidTokenError

        from pipeline.review.web.auth import Principal

        token = _bearer_or_cookie(request)
        if token is None:
            return None
        manager = get_auth_manager()
        try:
            user = await manager.get_user_from_token(token)
        except (InvalidTokenError, ValueError, KeyError):
            return None  # expired, revoked or forged: as if not logged in
        role = review_role(manager, user)
        if role is None:
            raise HTTPException(403, f"{user.get_name()} may not use the access review")
        return Principal(user.get_name(), role)

    def login_url(self, request: Any, next_path: str) -> str:
        from airflow.api_fastapi.app import get_auth_manager

        return str(get_auth_manager().get_url_login(next_url=next_path))

    def logout_url(self, request: Any) -> str:
        return f"{request.scope.get('root_path', '')}/queue"


def _session_secret(configured: str) -> str:
    """The configured secret, else one derived from Airflow's JWT signing key (its secret or its
    private key file): the same in every API server worker and after restarts. A per-process
    random one would break sessions and CSRF tokens across workers, so none is made up."""
    if configured:
        return configured
    from airflow.configuration import conf

    from pipeline.errors import ConfigError

    key = (conf.get("api_auth", "jwt_secret", fallback="") or "").encode()
    key_path = conf.get("api_auth", "jwt_private_key_path", fallback="") or ""
    if not key and key_path:
        try:
            key = Path(key_path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"review_session_secret is unset and {key_path}: {exc}") from None
    if not key:
        raise ConfigError(
            "review_session_secret is unset and Airflow has no [api_auth] jwt_secret or "
            "jwt_private_key_path to derive one from: set review_session_secret"
        )
    return hashlib.sha256(b"access-audit session|" + key).hexdigest()


class LazyReviewApp:
    """An ASGI app that builds the review UI (settings, store, templates) on its first request."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = asyncio.Lock()

    def _build(self) -> Any:
        from pipeline.config import load_settings
        from pipeline.review.web.app import create_app

        settings = load_settings()
        return create_app(
            settings,
            auth=AirflowAuth(),
            framed=True,
            session_secret=_session_secret(settings.review_session_secret),
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            async with self._lock:
                if self._app is None:
                    # migrating the store may take a moment: not on the event loop
                    self._app = await asyncio.to_thread(self._build)
        await self._app(scope, receive, send)


review_app = LazyReviewApp()


class AccessAuditPlugin(AirflowPlugin):
    """Mounts the review UI on Airflow's API server and adds it to Airflow's navigation."""

    name = "access_audit"
    fastapi_apps = [  # noqa: RUF012 (AirflowPlugin declares these as class lists)
        {"app": review_app, "url_prefix": URL_PREFIX, "name": "Partner access review"}
    ]
    external_views = [  # noqa: RUF012
        {
            "name": "Access review",
            "href": f"{URL_PREFIX}/queue",
            "url_route": RESOURCE_NAME,  # shown inside Airflow's UI at /plugin/access-audit
            "destination": "nav",
            "category": "browse",
        }
    ]
