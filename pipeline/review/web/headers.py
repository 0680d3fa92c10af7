"""Security headers on every response: a strict CSP (only this origin's own files), no sniffing,
no caching of review data, framing only where Airflow's UI embeds the app, and redirects that
never leave this origin."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def security_headers(framed: bool) -> list[tuple[bytes, bytes]]:
    """Headers for a standalone app (never framed) or the Airflow plugin (framed by Airflow's
    UI, which is served from the same origin as the plugin)."""
    ancestors = "'self'" if framed else "'none'"
    policy = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
    )
    return [
        (b"content-security-policy", policy.encode()),
        (b"x-frame-options", b"SAMEORIGIN" if framed else b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    ]


def relative_location(location: bytes, host: bytes) -> bytes:
    """A redirect target on this request's `host` as a path: Starlette builds some absolute
    ones from the Host header (`/queue/` → `http://<Host>/queue`), which a forged Host would
    turn into a redirect to another site. Targets on other hosts that the app chose itself
    (an auth manager's login page) are kept; protocol-relative ones never leave this origin."""
    text = location.decode("latin-1")
    parts = urlsplit(text)
    # browsers read `\` as `/`: `/\evil` and `\\evil` are `//evil`, another host
    protocol_relative = not parts.scheme and ("\\" in text[:2] or text[:2] == "//")
    from_host = bool(parts.netloc) and parts.netloc.lower() == host.decode("latin-1").lower()
    if not protocol_relative and not from_host:
        return location
    path = "/" + parts.path.lstrip("/\\")
    return urlunsplit(("", "", path, parts.query, parts.fragment)).encode("latin-1")


def _route_path(scope: Scope) -> str:
    """The path inside this app: without the mount prefix, whether or not the server kept it."""
    path, root = str(scope.get("path", "")), str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


class SecurityHeadersMiddleware:
    """Adds the headers to every HTTP response, and `no-store` to all but static files."""

    def __init__(self, app: ASGIApp, framed: bool = False) -> None:
        self.app = app
        self.headers = security_headers(framed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_static = _route_path(scope).startswith("/static/")
        host = dict(scope.get("headers", [])).get(b"host", b"")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (n, relative_location(v, host) if n.lower() == b"location" else v)
                    for n, v in message.get("headers", [])
                ]
                names = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in self.headers if n not in names]
                if not is_static and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
