"""A landing zone of hostile partner records (issue 13), written by code so each case says what
it attacks. Every secret value starts with SECRET; none may be stored anywhere."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path
from typing import Any

DAY = date(2024, 3, 10)
NOON = "2024-03-10T12:00:00Z"
SECRET = "Hx9SECRETv"
# partner ids that break a link unless it encodes them as one path segment (issue 13)
PATH_PARTNERS = {
    "p/../../audit": "app-math",
    "a/b": "app-ab",
    "%2F": "app-pct",
    "..": "app-dots",
    ".": "app-dot",
    "?x=1": "app-query",
    "#": "app-hash",
}
LONG_APP = "app-" + "L" * 100_000  # one huge id must not grow every page's filter lists


def _access(request_id: str, app: str = "app-ok", user: str = "u1", **extra: Any) -> dict:
    return {
        "request_id": request_id,
        "event_time": NOON,
        "app_id": app,
        "user_id": user,
        "resource": "messages",
        "action": "read",
        **extra,
    }


def _secret(n: int) -> str:
    return f"{SECRET}{n}"


def _access_records() -> list[Any]:
    """Valid records carrying secrets in stored fields, odd identifiers, broken lines."""
    paths = [
        f"/v2/me/messages?%61ccess_token={_secret(1)}",
        f"/v2/me/messages?access%5Ftoken={_secret(2)}&page=2",
        f"/v2/me/messages?pass%77ord={_secret(3)}",
        f"/v2/me/messages?X-Amz-Signature={_secret(4)}&X-Amz-Credential={_secret(5)}",
        f"/v2/me/messages?X-Amz-Security-Token={_secret(6)}#x",
        f"/v2/me/messages;jsessionid={_secret(7)}",
        f"/v2/me/messages?accessToken={_secret(8)}&api-key={_secret(9)}&oauth_token={_secret(10)}",
        f"/v2/me/messages?jwt={_secret(11)}&X-Goog-Signature={_secret(12)}&auth_code={_secret(13)}",
        f"/v2/me/messages?redirect=https%3A%2F%2Fx%3Fcode%3D{_secret(14)}",
    ]
    records: list[Any] = [
        _access(f"path-{i}", path=p, user_agent="Mozilla/5.0") for i, p in enumerate(paths)
    ]
    records += [
        _access("ua-1", user_agent=f"curl/8 Authorization: Bearer {_secret(20)}"),
        _access(
            "ua-2", user_agent=f"app/1.0 (Basic {_secret(21)})", thread_id=f"pwd={_secret(22)}"
        ),
        _access("ua-3", user_agent=f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIi{_secret(23)}.c2ln"),
        # identifiers: long, mathtext, direction overrides, markup, slashes (all valid)
        _access("long-" + "x" * 10_000, app="app-math", user="u" * 5_000),
        _access("bidi-1", app="app-bidi", user="u\u202eevil"),
        _access("slash-1", app="app-slash", user="<script>alert(1)</script>"),
        _access("csv-1", app="app-math", user='=HYPERLINK("http://evil")'),
        _access("unknown-1", app="app-\u202e$x$"),
        _access("long-app-1", app=LONG_APP),
        *(_access(f"partner-{app}", app=app) for app in sorted(PATH_PARTNERS.values())),
        # identifiers with control characters: quarantined
        _access("nul-1", app="app\u0000ok"),
        _access("ctl-1", user="u\u001f1"),
        _access("tab\t1"),
        _access("del-1", user="u\u007f"),
        # broken lines whose raw text is kept (redacted)
        f"access_token={_secret(30)}&x=1",
        json.dumps([f"access_token={_secret(31)}", "b"]),
        f"{{'request_id': 'r', 'password': '{_secret(32)}'}}",
        f'{{"request_id": "r", "headers": "Authorization: Bearer {_secret(33)}", "x',
        f'{{"request_id": "r", "cookie": "session={_secret(34)}", "x": ',
        f'{{"request_id": "r", "pwd" : {_secret(35)}, "x',
        f'{{"request_id": "r", "note": "{_secret(36)}", "y": ',  # an unknown key's value
        f'{{"request_id": "r", "meta": "{{\\"client_secret\\": \\"{_secret(37)}\\"}}", "z',
        f'{{"request_id": "r", "%61pi_key": "{_secret(38)}"',
        f'"request_id": "r", "set-cookie": "a={_secret(39)}"',
        # rejected JSON objects with secrets in kept and unknown fields
        {**_access("rej-1", user=5), "path": f"/m?token={_secret(40)}", "password": _secret(41)},
        {**_access("rej-2", action=f"read token={_secret(42)}")},  # the detail quotes action
        "[" * 100_000 + "]" * 100_000,  # deep nesting
        "{" * 50_000,
        "\ufeff" + json.dumps(_access("bom-inside")),  # a BOM on a line of its own: not JSON
    ]
    return records


def _bytes_of(records: list[Any], ending: bytes = b"\n") -> bytes:
    return b"".join(
        (r if isinstance(r, str) else json.dumps(r)).encode("utf-8", "surrogatepass") + ending
        for r in records
    )


def build(root: Path) -> dict[str, Any]:
    """Write the landing zone; returns what a run must read (lines per file where known)."""
    access = root / "access" / DAY.isoformat()
    consent = root / "consent" / DAY.isoformat()
    access.mkdir(parents=True)
    consent.mkdir(parents=True)
    (access / "a.jsonl").write_bytes(_bytes_of(_access_records()))
    # a BOM opening a file and CRLF line ends (a Windows export)
    (access / "b.jsonl").write_bytes(
        b"\xef\xbb\xbf" + _bytes_of([_access("crlf-1"), _access("crlf-2")], b"\r\n")
    )
    # invalid UTF-8, a huge valid line, a huge broken one
    huge = json.dumps(_access("huge-1", user_agent="A" * 3_000_000))
    (access / "c.jsonl").write_bytes(
        b'{"request_id": "bad-utf8", "app_id": "\xff\xfe"}\n'
        + huge.encode()
        + b"\n"
        + b'{"request_id": "huge-2", "user_agent": "'
        + b"B" * 2_000_000
        + b"\n"
    )
    # a truncated .gz (the lines before the damage count) and a gz bomb without line breaks
    whole = gzip.compress(_bytes_of([_access(f"gz-{i}") for i in range(2000)]), mtime=0)
    (access / "d.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    with gzip.open(access / "e.jsonl.gz", "wb", compresslevel=9) as bomb:
        for _ in range(80):
            bomb.write(b"\0" * (1 << 20))
    (access / "_SUCCESS").touch()
    (consent / "a.jsonl").write_bytes(
        _bytes_of(
            [
                {
                    "event_id": "g1",
                    "event_time": "2024-03-01T00:00:00Z",
                    "user_id": "u1",
                    "app_id": "app-ok",
                    "event_type": "grant",
                    "scopes": ["messages.read"],
                },
                {
                    "event_id": "nul\u0000",
                    "event_time": NOON,
                    "user_id": "u1",
                    "app_id": "a",
                    "event_type": "grant",
                },
                {
                    "event_id": "g2",
                    "event_time": NOON,
                    "user_id": "u\u202e1",
                    "app_id": "app-bidi",
                    "event_type": "grant",
                    "access_token": _secret(50),
                },
            ]
        )
    )
    (consent / "_SUCCESS").touch()
    (root / "partners.csv").write_text(
        "partner_id,partner_name,app_id,start,end,scopes,grant_ttl_days\n"
        "p-ok,Good Partner,app-ok,2024-01-01,,messages.read,\n"
        '"p/../../audit","$\\frac{$ Evil Corp",app-math,2024-01-01,2024-02-01,messages.read,\n'
        'p-bidi,"Stream\u202eflix <!channel> <https://evil.example|bank> & co",app-bidi,'
        "2024-01-01,,messages.read,30\n"
        'p-csv,"=HYPERLINK(""http://evil"")",app-slash,2024-01-01,,messages.write,\n'
        + "".join(
            f'"{partner}",Path {n},{app},2024-01-01,,messages.write,\n'
            for n, (partner, app) in enumerate(PATH_PARTNERS.items())
            if app != "app-math"
        )
        + f"p-long,Long,{LONG_APP},2024-01-01,,messages.write,\n"
    )
    return {"access_files": 5, "consent_files": 1}
