"""A property per format: events written in the format platforms export and the same events
written in the canonical format give identical flags and alerts (SPEC §2, "Sources in the
formats platforms really export"). Records come from the sample-logs tool's renderers; the
canonical events are what a plain reading of formats.md's mapping says each record means."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline import steps
from pipeline.config import Settings, Source
from pipeline.warehouse import Warehouse
from tests.landing import line, write_registry

DAY = date(2026, 3, 2)
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
APPS = ("app-a", "app-b", "app-x")  # app-x is in no registry row
USERS = ("alice@x.example", "bob@x.example")
REGISTRY = [
    "P1,Alpha,app-a,2026-01-01,,messages.read messages.write contacts.read,",
    "P2,Beta,app-b,2026-01-01,2026-03-02T10:00:00Z,messages.read messages.write messages.delete,",
]
pytestmark = pytest.mark.slow
TOOL = Path(__file__).resolve().parents[2] / "tools" / "make_sample_logs.py"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sample_logs_formats", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


TOOL_MODULE = _tool()
CONSENT_SOURCE = Source("consent", "consent", "canonical", "consent")
ACCESS_SOURCE = Source("access", "access", "canonical", "access")


# ---- abstract events ---------------------------------------------------------------------------
# An access: (n, minute, app, user, resource, action); a consent: (n, minute, app, user, grant?,
# permissions or None). Minutes from 09:00 put events on both sides of app-b's end (10:00).

minutes = st.integers(0, 120)
accesses = st.lists(
    st.tuples(
        minutes,
        st.sampled_from(APPS),
        st.sampled_from(USERS),
        st.sampled_from((("messages", "read"), ("messages", "write"), ("messages", "delete"))),
    ),
    min_size=1,
    max_size=6,
)
consents = st.lists(
    st.tuples(
        minutes,
        st.sampled_from(APPS[:2]),
        st.sampled_from(USERS),
        st.booleans(),
        st.none() | st.lists(st.integers(0, 3), max_size=3, unique=True),
    ),
    max_size=5,
)


def at(minute: int, second: int = 0) -> datetime:
    return START + timedelta(minutes=minute, seconds=second)


def z(t: datetime, spec: str = "milliseconds") -> str:
    return t.isoformat(timespec=spec).replace("+00:00", "Z")


def permission_names(table: dict[str, str], picks: list[int] | None) -> list[str] | None:
    names = list(table)
    return None if picks is None else [names[i] for i in picks]


def mapped(table: dict[str, str], names: list[str] | None) -> list[str] | None:
    return None if names is None else [s for n in names for s in table[n].split()]


def canonical_consents(drawn: list[tuple], table: dict[str, str]) -> list[dict]:
    return [
        {
            "event_id": f"c{n}",
            "event_time": z(at(m, 30)),
            "user_id": user,
            "app_id": app,
            "event_type": "grant" if grant else "revoke",
            **({"scopes": mapped(table, permission_names(table, picks))} if grant else {}),
        }
        for n, (m, app, user, grant, picks) in enumerate(drawn)
    ]


# ---- the two landing zones and their flags -----------------------------------------------------


def flags_of(root: Path, files: dict[str, dict[str, list[str]]], sources: tuple[Source, ...],
             mapping: tuple[str, str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Ingest, detect and alert DAY of a landing zone holding `files` (folder → file → lines):
    its flags (less their lineage), then its alerts."""
    write_registry(root, REGISTRY)
    for folder, named in files.items():
        path = root / folder / DAY.isoformat()
        path.mkdir(parents=True, exist_ok=True)
        for name, lines in named.items():
            (path / name).write_text("".join(text + "\n" for text in lines))
        (path / "_SUCCESS").touch()
    if mapping:
        (root / mapping[0]).write_text(mapping[1])
    settings = Settings(
        landing=str(root), warehouse=str(root / "wh"), sources=sources, duckdb_threads=1
    )
    for kind in ("access", "consent"):
        summary = steps._ingest(kind, DAY, settings, None)
        assert summary["totals"]["quarantined"] == 0, summary["quarantine_reasons"]
    steps.detect(DAY, settings)
    steps.alerts(DAY, settings)
    warehouse = Warehouse(settings.warehouse)
    flags = warehouse.read_partition("flags", DAY)
    alerts = warehouse.read_partition("alerts", DAY).sort_by("alert_id").to_pylist()
    flag_rows = flags.drop_columns(["source_file", "source_line"]).sort_by("flag_id").to_pylist()
    return [*flag_rows, *alerts]


def same_flags(real: Callable[[Path], list[dict]], canonical: Callable[[Path], list[dict]]) -> None:
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        expected, got = canonical(Path(a)), real(Path(b))
    note(f"{len(expected)} canonical flags and alerts")
    assert got == expected


# Each example runs the pipeline twice (about 10 s on a loaded machine): few examples, marked slow.
PROPERTY = hsettings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _json_lines(records: list[dict]) -> list[str]:
    return [line(r) for r in records]


# ---- one property per format -------------------------------------------------------------------


@PROPERTY
@given(accesses, consents)
def test_google_workspace_token_gives_the_canonical_flags(drawn_access, drawn_consent):
    tool, table = TOOL_MODULE, TOOL_MODULE.GOOGLE_SCOPES
    methods = {"read": "get", "write": "send", "delete": "delete"}
    real, access = [], []
    for n, (m, app, user, (_, action)) in enumerate(drawn_access):
        when, method = z(at(m)), f"gmail.users.messages.{methods[action]}"
        real.append(tool.google_token_record(f"q{n}", when, user, f"cid-{app}", "activity",
                                             method_name=method, api_name="gmail"))  # fmt: skip
        access.append({"request_id": f"q{n}@{when}", "event_time": when, "app_id": app,
                       "user_id": user, "resource": "messages", "action": action,
                       "method": method})  # fmt: skip
    for n, (m, app, user, grant, picks) in enumerate(drawn_consent):
        names = permission_names(table, picks)
        real.append(
            tool.google_token_record(
                f"c{n}",
                z(at(m, 30)),
                user,
                f"cid-{app}",
                "authorize" if grant else "revoke",
                scopes=names,
            )
        )
    consent = canonical_consents(drawn_consent, table)
    for event, (n, _) in zip(consent, enumerate(drawn_consent), strict=True):
        event["event_id"] = f"c{n}@{event['event_time']}"
    mapping = "[apps]\n" + "".join(f'"cid-{a}" = "{a}"\n' for a in APPS)
    mapping += "[scopes]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in table.items())
    source = Source("gws", "both", "google_workspace_token", "gws", "gws.toml")
    same_flags(
        lambda root: flags_of(root, {"gws": {"t.jsonl": real}}, (source,), ("gws.toml", mapping)),
        lambda root: flags_of(
            root,
            {
                "access": {"a.jsonl": _json_lines(access)},
                "consent": {"c.jsonl": _json_lines(consent)},
            },
            (),
        ),
    )


@PROPERTY
@given(
    accesses,
    consents,
    st.lists(st.sampled_from(("Bind", "Sync", "throttled")), min_size=6, max_size=6),
)
def test_m365_mail_items_accessed_gives_the_canonical_flags(drawn_access, drawn_consent, kinds):
    tool = TOOL_MODULE
    real, access = [], []
    # consecutive reads of one app and user form one Bind record (the two-minute aggregation)
    groups: list[list[tuple[int, tuple]]] = []
    for n, event in enumerate(drawn_access):
        if groups and groups[-1][-1][1][1:3] == event[1:3]:
            groups[-1].append((n, event))
        else:
            groups.append([(n, event)])
    for g, group in enumerate(groups):
        m, app, user, _ = group[0][1]
        kind = kinds[g]
        access_type = "Sync" if kind == "Sync" else "Bind"
        ids = [] if access_type == "Sync" else [f"<m{n}@x>" for n, _ in group]
        real.append(tool.m365_record(f"rec{g}", at(m).strftime("%Y-%m-%dT%H:%M:%S"), app, user,
                                     access_type, [("\\Inbox", ids)],
                                     throttled=kind == "throttled"))  # fmt: skip
        items = [None] if access_type == "Sync" else ids
        for i, message in enumerate(items, 1):
            access.append({
                "request_id": f"rec{g}" if len(items) == 1 else f"rec{g}/{i}",
                "event_time": z(at(m), "seconds"), "app_id": app, "user_id": user,
                "resource": "mail_folder" if access_type == "Sync" else "messages",
                "action": "read", "method": access_type + THROTTLED.get(kind, ""),
                "path": "\\Inbox" + (f"/{message}" if message else ""), "status": 200,
            })  # fmt: skip
    consent = canonical_consents(drawn_consent, tool.MICROSOFT_SCOPES)
    source = Source("m365", "access", "m365_mail_items_accessed")
    same_flags(
        lambda root: flags_of(
            root,
            {"m365": {"r.jsonl": real}, "consent": {"c.jsonl": _json_lines(consent)}},
            (source, CONSENT_SOURCE),
        ),
        lambda root: flags_of(
            root,
            {
                "access": {"a.jsonl": _json_lines(access)},
                "consent": {"c.jsonl": _json_lines(consent)},
            },
            (),
        ),
    )


THROTTLED = {"throttled": " throttled"}
GRAPH_PATHS = (
    "/v1.0/me/messages/1",
    "/v1.0/users/u/mailFolders/inbox/messages",
    "/v1.0/me/threads/7",
)
GRAPH_METHODS = {"read": "GET", "write": "PATCH", "delete": "DELETE"}


@PROPERTY
@given(accesses, consents, st.lists(st.sampled_from(GRAPH_PATHS), min_size=6, max_size=6),
       st.lists(st.sampled_from((200, 201, 404)), min_size=6, max_size=6))  # fmt: skip
def test_graph_activity_gives_the_canonical_flags(drawn_access, drawn_consent, paths, statuses):
    tool = TOOL_MODULE
    real, access = [], []
    for n, (m, app, user, (_, action)) in enumerate(drawn_access):
        method, path, status = GRAPH_METHODS[action], paths[n], statuses[n]
        real.append(tool.graph_record(f"g{n}", z(at(m)), app, user, method, path, status,
                                      ip="203.0.113.9"))  # fmt: skip
        event = {"request_id": f"g{n}", "event_time": z(at(m)), "app_id": app, "user_id": user,
                 "method": method, "path": path, "status": status, "ip": "203.0.113.9"}  # fmt: skip
        if "/threads/" not in path:  # Graph's mail paths; threads go by the route table
            event.update(resource="messages", action=action)
        access.append(event)
    consent = canonical_consents(drawn_consent, tool.MICROSOFT_SCOPES)
    source = Source("graph", "access", "graph_activity")
    same_flags(
        lambda root: flags_of(
            root,
            {"graph": {"g.jsonl": real}, "consent": {"c.jsonl": _json_lines(consent)}},
            (source, CONSENT_SOURCE),
        ),
        lambda root: flags_of(
            root,
            {
                "access": {"a.jsonl": _json_lines(access)},
                "consent": {"c.jsonl": _json_lines(consent)},
            },
            (),
        ),
    )


def _canonical_access(drawn_access: list[tuple]) -> list[dict]:
    return [
        {"request_id": f"r{n}", "event_time": z(at(m)), "app_id": app, "user_id": user,
         "resource": resource, "action": action}
        for n, (m, app, user, (resource, action)) in enumerate(drawn_access)
    ]  # fmt: skip


@PROPERTY
@given(accesses, consents)
def test_entra_audit_gives_the_canonical_flags(drawn_access, drawn_consent):
    tool, table = TOOL_MODULE, TOOL_MODULE.MICROSOFT_SCOPES
    real = []
    for n, (m, app, user, grant, picks) in enumerate(drawn_consent):
        activity = "Consent to application" if grant else "Remove delegated permission grant"
        names = permission_names(table, picks)
        real.append(tool.entra_record(f"c{n}", z(at(m, 30), "seconds"), activity, user,
                                      f"guid-{app}", names or []))  # fmt: skip
    consent = canonical_consents(drawn_consent, table)
    for event in consent:  # a grant names its permissions: none listed grants nothing
        if event["event_type"] == "grant" and event["scopes"] is None:
            event["scopes"] = []
    access = _json_lines(_canonical_access(drawn_access))
    mapping = "[apps]\n" + "".join(f'"guid-{a}" = "{a}"\n' for a in APPS)
    mapping += "[scopes]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in table.items())
    source = Source("entra", "consent", "entra_audit", "entra", "ms.toml")
    same_flags(
        lambda root: flags_of(
            root,
            {"entra": {"e.jsonl": real}, "access": {"a.jsonl": access}},
            (source, ACCESS_SOURCE),
            ("ms.toml", mapping),
        ),
        lambda root: flags_of(
            root, {"access": {"a.jsonl": access}, "consent": {"c.jsonl": _json_lines(consent)}}, ()
        ),
    )


OKTA_SCOPES = {
    s: s for s in ("messages.read", "messages.write", "messages.delete", "contacts.read")
}


@PROPERTY
@given(accesses, consents)
def test_okta_system_log_gives_the_canonical_flags(drawn_access, drawn_consent):
    tool = TOOL_MODULE
    real = []
    for n, (m, app, user, grant, picks) in enumerate(drawn_consent):
        event_type = "app.oauth2.as.consent.grant" if grant else "app.oauth2.as.consent.revoke"
        real.append(tool.okta_record(f"c{n}", z(at(m, 30)), event_type, user, app,
                                     permission_names(OKTA_SCOPES, picks)))  # fmt: skip
    consent = canonical_consents(drawn_consent, OKTA_SCOPES)
    for event in consent:  # a grant without scope targets is a grant of every scope
        if event.get("scopes") == []:
            event["scopes"] = None
    access = _json_lines(_canonical_access(drawn_access))
    source = Source("okta", "consent", "okta_system_log")
    same_flags(
        lambda root: flags_of(
            root,
            {"okta": {"o.jsonl": real}, "access": {"a.jsonl": access}},
            (source, ACCESS_SOURCE),
        ),
        lambda root: flags_of(
            root, {"access": {"a.jsonl": access}, "consent": {"c.jsonl": _json_lines(consent)}}, ()
        ),
    )


GATEWAY_PATHS = {
    "read": ("GET", "/v2/me/messages/3"),
    "write": ("POST", "/me/threads/1/messages"),
    "delete": ("DELETE", "/v1/users/x/messages/9?access_token=tok_demo_1"),  # redacted alike
}


@PROPERTY
@given(accesses, consents, st.lists(st.sampled_from((200, 204, 403)), min_size=6, max_size=6))
def test_gateway_gives_the_canonical_flags(drawn_access, drawn_consent, statuses):
    tool = TOOL_MODULE
    real, access = [], []
    for n, (m, app, user, (_, action)) in enumerate(drawn_access):
        method, path = GATEWAY_PATHS[action]
        real.append(tool.gateway_line("192.0.2.1", at(m), method, path, statuses[n], "Demo/1.0",
                                      f"r{n}", app, user))  # fmt: skip
        access.append({"request_id": f"r{n}", "event_time": z(at(m), "seconds"), "app_id": app,
                       "user_id": user, "method": method, "path": path, "status": statuses[n],
                       "ip": "192.0.2.1", "user_agent": "Demo/1.0"})  # fmt: skip
    consent = _json_lines(canonical_consents(drawn_consent, OKTA_SCOPES))
    source = Source("gateway", "access", "gateway", pattern="combined_audit")
    same_flags(
        lambda root: flags_of(
            root,
            {"gateway": {"a.log": real}, "consent": {"c.jsonl": consent}},
            (source, CONSENT_SOURCE),
        ),
        lambda root: flags_of(
            root, {"access": {"a.jsonl": _json_lines(access)}, "consent": {"c.jsonl": consent}}, ()
        ),
    )
