"""The session cookie: only a random id. Whom it logs in, and its flashed messages, live in the
store's `review_sessions` (pipeline.review.sessions), so ending a session there ends it for
every copy of the cookie. A visitor who is not logged in keeps an id that is stored nowhere
(it only keys their CSRF token), so the login page cannot be used to fill the table."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.review.sessions import LIFETIME_SECONDS, SessionRecord, SessionStore, new_session_id

COOKIE = "access_audit_session"
STATE_KEY = "review_session"  # the request scope's SessionState
ID_FORM = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass
class SessionState:
    """This request's session: its id, its row (None: not stored), and whether the response
    must set the cookie (a new id)."""

    id: str
    record: SessionRecord | None
    set_cookie: bool
    saved_data: dict[str, Any] = field(default_factory=dict)


def session_state(connection: HTTPConnection) -> SessionState:
    state: SessionState = connection.scope[STATE_KEY]
    return state


class ServerSessionMiddleware:
    """Reads the cookie's id, finds its live session, and keeps the session's data."""

    def __init__(self, app: ASGIApp, sessions: SessionStore, https_only: bool) -> None:
        self.app = app
        self.sessions = sessions
        self.secure = "; secure" if https_only else ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        sent = HTTPConnection(scope).cookies.get(COOKIE, "")
        state = await self._state(sent)
        scope[STATE_KEY] = state
        scope["session"] = dict(state.saved_data)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self._save(state, scope["session"])
                if state.set_cookie:
                    headers = MutableHeaders(scope=message)
                    headers.append(
                        "set-cookie",
                        f"{COOKIE}={state.id}; path=/; max-age={LIFETIME_SECONDS}; httponly; "
                        f"samesite=lax{self.secure}",
                    )
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    async def _state(self, sent: str) -> SessionState:
        if not ID_FORM.fullmatch(sent):
            return SessionState(new_session_id(), None, set_cookie=True)
        lookup = await anyio.to_thread.run_sync(self.sessions.load, sent)
        if lookup.record is not None:
            return SessionState(sent, lookup.record, False, dict(lookup.record.data))
        if lookup.known:  # ended or expired: its id is never used again
            return SessionState(new_session_id(), None, set_cookie=True)
        return SessionState(sent, None, set_cookie=False)

    async def _save(self, state: SessionState, data: dict[str, Any]) -> None:
        if data == state.saved_data:
            return
        if state.record is not None:
            await anyio.to_thread.run_sync(self.sessions.save_data, state.id, data)
        else:  # data without a login (flashed messages of Airflow's users): stored from now on,
            # under the same id so that the forms' CSRF tokens stay valid
            await anyio.to_thread.run_sync(
                lambda: self.sessions.start(None, None, None, data, session_id=state.id)
            )
            state.record = SessionRecord(None, None, self.sessions.now(), self.sessions.now(), data)
            state.set_cookie = True
        state.saved_data = dict(data)
