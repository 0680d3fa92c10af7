"""Admin (tenant-wide) consent: Entra's and Okta's records of it are stored with user `*`, and the
rules, shards and coverage take it as a consent event of every user of the app (formats.md,
Part 3 §4: it "covers all users")."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline.config import Settings, Source
from pipeline.detect.coverage import coverage_table
from pipeline.detect.registry import parse_registry
from pipeline.detect.rules import flags_for_day
from pipeline.schema import ACCESS, CONSENT
from tests.formats.ingest_helpers import SAMPLES, ingest, reconciles, rows, stored

APP = "11111111-2222-3333-4444-555555555555"
ENTRA = Source("entra", "consent", "entra_audit", "entra", "entra.toml")
SCOPES = '[scopes]\n"Mail.Read" = "messages.read"\n'
REGISTRY = parse_registry(
    "partner_id,partner_name,app_id,start,end,scopes,grant_ttl_days\n"
    f"P1,Mailer,{APP},2020-01-01,,messages.read messages.write,\n"
    "P2,Other,other-app,2020-01-01,,messages.read,\n"
)
T = datetime(2026, 9, 10, 12, 0, tzinfo=UTC)


def _entra(record_id: str, activity: str, properties: dict[str, str], when: str) -> str:
    """An Entra directory audit record in the public sample's shape (formats.md §2.4)."""
    return json.dumps(
        {
            "id": record_id,
            "category": "ApplicationManagement",
            "activityDateTime": when,
            "activityDisplayName": activity,
            "initiatedBy": {"user": {"id": "admin-1", "userPrincipalName": "Admin@Example.test"}},
            "targetResources": [
                {
                    "type": "ServicePrincipal",
                    "id": "sp-123",
                    "modifiedProperties": [
                        {"displayName": k, "newValue": v} for k, v in properties.items()
                    ],
                }
            ],
            "additionalDetails": [{"key": "AppId", "value": APP}],
            "result": "success",
        }
    )


def _okta(uuid: str, event_type: str, when: str, scopes: tuple[str, ...] = ()) -> str:
    targets = [{"id": s, "type": "Scope", "displayName": s} for s in scopes]
    return json.dumps(
        {
            "uuid": uuid,
            "published": when,
            "eventType": event_type,
            "actor": {"id": "00uadmin", "type": "User", "alternateId": "admin@example.test"},
            "client": {"id": APP},
            "outcome": {"result": "SUCCESS"},
            "target": targets,
        }
    )


def test_entra_public_sample_as_admin_consent_is_user_star(tmp_path: Path):
    """The public sample with its IsAdminConsent flag set: the same grant, for every user."""
    record = (SAMPLES / "entra_audit.jsonl").read_text().replace('\\"False\\"', '\\"True\\"')
    assert '\\"True\\"' in record
    _, settings = ingest(tmp_path, ENTRA, {"audit.jsonl": record}, SCOPES)
    assert rows(settings, "consent", ["event_id", "user_id", "app_id", "event_type"]) == [
        {"event_id": "audit-1", "user_id": "*", "app_id": APP, "event_type": "grant"}
    ]


def test_entra_marks_of_a_tenant_wide_grant(tmp_path: Path):
    """OnBehalfOfAll and a delegated grant of ConsentType AllPrincipals (and its removal) are for
    every user; a grant of ConsentType Principal is the initiator's own."""
    lines = [
        _entra(
            "c-all",
            "Consent to application",
            {
                "ConsentContext.IsAdminConsent": '"False"',
                "ConsentContext.OnBehalfOfAll": '"True"',
                "ConsentAction.Permissions": "[] => [[Id: x, Scope: Mail.Read, ConsentType: ]]",
            },
            "2026-03-01T08:00:00Z",
        ),
        _entra(
            "g-all",
            "Add delegated permission grant",
            {
                "DelegatedPermissionGrant.Scope": '" Mail.Read"',
                "DelegatedPermissionGrant.ConsentType": '"AllPrincipals"',
            },
            "2026-03-01T09:00:00Z",
        ),
        _entra(
            "g-one",
            "Add delegated permission grant",
            {
                "DelegatedPermissionGrant.Scope": '"Mail.Read"',
                "DelegatedPermissionGrant.ConsentType": '"Principal"',
            },
            "2026-03-01T10:00:00Z",
        ),
        _entra(
            "r-all",
            "Remove delegated permission grant",
            {"DelegatedPermissionGrant.ConsentType": '"AllPrincipals"'},
            "2026-03-01T11:00:00Z",
        ),
    ]
    summaries, settings = ingest(tmp_path, ENTRA, {"audit.jsonl": "\n".join(lines) + "\n"}, SCOPES)
    assert reconciles(summaries["consent"])
    got = rows(settings, "consent", ["event_id", "user_id", "event_type", "scopes"])
    assert sorted(got, key=lambda r: r["event_id"]) == [
        {"event_id": "c-all", "user_id": "*", "event_type": "grant", "scopes": ["messages.read"]},
        {"event_id": "g-all", "user_id": "*", "event_type": "grant", "scopes": ["messages.read"]},
        {
            "event_id": "g-one",
            "user_id": "admin@example.test",
            "event_type": "grant",
            "scopes": ["messages.read"],
        },
        {"event_id": "r-all", "user_id": "*", "event_type": "revoke", "scopes": None},
    ]


def test_okta_admin_consent_grant_and_revoke_are_user_star(tmp_path: Path):
    source = Source("okta", "consent", "okta_system_log")
    lines = [
        _okta("a1", "app.oauth2.admin.consent.grant", "2026-03-01T08:00:00Z", ("messages.read",)),
        _okta("a2", "app.oauth2.as.consent.grant", "2026-03-01T09:00:00Z", ("messages.write",)),
        _okta("a3", "app.oauth2.admin.consent.revoke", "2026-03-01T10:00:00Z"),
    ]
    summaries, settings = ingest(tmp_path, source, {"log.jsonl": "\n".join(lines) + "\n"})
    assert reconciles(summaries["consent"])
    got = rows(settings, "consent", ["event_id", "user_id", "app_id", "event_type", "scopes"])
    assert sorted(got, key=lambda r: r["event_id"]) == [
        {
            "event_id": "a1",
            "user_id": "*",
            "app_id": APP,
            "event_type": "grant",
            "scopes": ["messages.read"],
        },
        {
            "event_id": "a2",
            "user_id": "admin@example.test",
            "app_id": APP,
            "event_type": "grant",
            "scopes": ["messages.write"],
        },
        {"event_id": "a3", "user_id": "*", "app_id": APP, "event_type": "revoke", "scopes": None},
    ]


def _access(n: int, user: str, action: str = "read", app: str = APP, at: datetime = T) -> dict:
    return {
        "request_id": f"r{n}",
        "event_time": at,
        "app_id": app,
        "user_id": user,
        "resource": "messages",
        "action": action,
        "status": 200,
        "method": "GET",
        "path": "/v2/me/messages",
        "delivery_date": at.date(),
        "source_file": "access/f.jsonl",
        "source_line": n,
    }


def _rules(flags: pa.Table) -> list[tuple[str, str]]:
    return sorted(zip(flags["request_id"].to_pylist(), flags["rule"].to_pylist(), strict=True))


def _consent_day(tmp_path: Path, lines: list[str]) -> pa.Table:
    """Entra records ingested the real way (reader, validation), as the warehouse holds them."""
    day = T.date() - timedelta(days=1)
    _, settings = ingest(tmp_path, ENTRA, {"audit.jsonl": "\n".join(lines) + "\n"}, SCOPES, day)
    return stored(settings, "consent", day)


def test_rules_take_an_admin_consent_as_every_users(tmp_path: Path):
    """An Entra admin consent covers users who never consented themselves, for its scopes only;
    a user's own later revoke still wins for that user; another app is not covered."""
    admin = _entra(
        "admin-grant",
        "Consent to application",
        {
            "ConsentContext.IsAdminConsent": '"True"',
            "ConsentAction.Permissions": "[] => [[Scope: Mail.Read, ]]",
        },
        "2026-09-09T17:04:02Z",
    )
    own_revoke = _entra(
        "u2-revoke",
        "Remove delegated permission grant",
        {"DelegatedPermissionGrant.ConsentType": '"Principal"'},
        "2026-09-10T06:00:00Z",
    ).replace("Admin@Example.test", "u2@example.test")
    consent = _consent_day(tmp_path, [admin, own_revoke])
    access = pa.Table.from_pylist(
        [
            _access(1, "u1@example.test"),
            _access(2, "u2@example.test"),
            _access(3, "u3@example.test", "write"),
            _access(4, "u1@example.test", app="other-app"),
            _access(5, "u4@example.test", at=datetime(2026, 9, 9, 17, 0, tzinfo=UTC)),
        ],
        schema=ACCESS,
    )
    flags = flags_for_day(access, consent, REGISTRY, T.date(), Settings())
    assert _rules(flags) == [
        ("r2", "SIGNIN_REVOKED"),
        ("r3", "SCOPE_NOT_GRANTED"),  # the admin consent granted Mail.Read only
        ("r4", "NO_SIGNIN"),  # an admin consent of another app
        ("r5", "NO_SIGNIN"),  # before the admin consent
    ]
    (r3,) = flags.filter(pa.compute.equal(flags["request_id"], "r3")).to_pylist()
    assert r3["last_grant_scopes"] == ["messages.read"]
    assert r3["last_grant_time"] == datetime(2026, 9, 9, 17, 4, 2, tzinfo=UTC)

    # an admin revoke withdraws it for everyone; a user's own later grant covers that user again
    revoke_all = _entra(
        "admin-revoke",
        "Remove delegated permission grant",
        {"DelegatedPermissionGrant.ConsentType": '"AllPrincipals"'},
        "2026-09-10T07:00:00Z",
    )
    own_grant = _entra(
        "u1-grant",
        "Add delegated permission grant",
        {
            "DelegatedPermissionGrant.Scope": '"Mail.Read"',
            "DelegatedPermissionGrant.ConsentType": '"Principal"',
        },
        "2026-09-10T08:00:00Z",
    ).replace("Admin@Example.test", "u1@example.test")
    consent = _consent_day(tmp_path / "again", [admin, own_revoke, revoke_all, own_grant])
    flags = flags_for_day(access.slice(0, 3), consent, REGISTRY, T.date(), Settings())
    assert _rules(flags) == [
        ("r2", "SIGNIN_REVOKED"),
        ("r3", "SIGNIN_REVOKED"),
    ]


def test_coverage_counts_users_an_admin_consent_covers_as_judged():
    consent = pa.Table.from_pylist(
        [
            {
                "event_id": "e1",
                "event_time": T - timedelta(days=1),
                "user_id": "*",
                "app_id": APP,
                "event_type": "grant",
                "delivery_date": T.date(),
                "source_file": "c",
                "source_line": 1,
            }
        ],
        schema=CONSENT,
    )
    access = pa.Table.from_pylist(
        [_access(1, "nobody@example.test"), _access(2, "nobody@example.test", app="other-app")],
        schema=ACCESS,
    )
    con = duckdb.connect()
    con.register("a", access)
    con.register("c", consent)
    con.register("r", REGISTRY)
    by_partner = {
        row["partner_id"]: (row["judged"], row["user_not_in_consent_sources"])
        for row in coverage_table(con, Settings(), "a", "c", "r").to_pylist()
    }
    assert by_partner == {"P1": (1, 0), "P2": (0, 1)}
