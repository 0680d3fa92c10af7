"""Okta System Log (LogEvent, JSON Lines): consent grants, consent revokes and token revocations.

Grants: `app.oauth2.as.consent.grant`, `app.oauth2.consent.grant`, `app.oauth2.admin.consent.grant`
(admin: user `*`). Revokes: every `app.oauth2.as.consent.revoke*` (the implicit ones too: a removed
client or scope revokes without a user), `app.oauth2.admin.consent.revoke`, and
`app.oauth2.as.token.revoke`. Export those event types (`filter=eventType sw "app.oauth2"`); any
other is quarantined as not a consent event. The user is the actor's login (`alternateId`), else
the target's `detailEntry.user` / `subject`; the app is `client.id`, else the target AppInstance.
Granted scopes are the targets of type scope (Okta names them by display name).
"""

from __future__ import annotations

from pipeline.config import Source
from pipeline.readers.formats.describe import (
    Check,
    KindRecords,
    RecordFormat,
    app_of,
    json_record,
    one_of,
    scopes_of,
    user_of,
    utc_time,
)
from pipeline.readers.formats.mapping import Mapping

GRANTS = (
    "app.oauth2.as.consent.grant",
    "app.oauth2.consent.grant",
    "app.oauth2.admin.consent.grant",
)
REVOKES = ("app.oauth2.admin.consent.revoke", "app.oauth2.as.token.revoke")
ADMIN = ("app.oauth2.admin.consent.grant", "app.oauth2.admin.consent.revoke")
TARGET = {
    "id": "VARCHAR",
    "type": "VARCHAR",
    "alternateId": "VARCHAR",
    "displayName": "VARCHAR",
    "detailEntry": {"user": "VARCHAR", "subject": "VARCHAR", "publicclientapp": "VARCHAR"},
}
STRUCTURE = {
    "uuid": "VARCHAR",
    "published": "VARCHAR",
    "eventType": "VARCHAR",
    "actor": {"id": "VARCHAR", "type": "VARCHAR", "alternateId": "VARCHAR"},
    "client": {"id": "VARCHAR", "ipAddress": "VARCHAR"},
    "outcome": {"result": "VARCHAR"},
    "target": [TARGET],
}
IS_REVOKE = (
    f"(starts_with(r.eventType, 'app.oauth2.as.consent.revoke') "
    f"OR {one_of('r.eventType', REVOKES)})"
)
IS_GRANT = one_of("r.eventType", GRANTS)
APP_TARGET = "list_filter(r.target, lambda t: t.type = 'AppInstance')[1].id"
SCOPE_TARGETS = (
    "list_transform(list_filter(r.target, lambda t: contains(lower(t.type), 'scope')), "
    "lambda t: coalesce(t.displayName, t.alternateId, t.id))"
)


def describe(source: Source, mapping: Mapping) -> RecordFormat:
    user = (
        "coalesce(CASE WHEN r.actor.type IS NULL OR r.actor.type = 'User' "
        "THEN r.actor.alternateId END, r.target[1].detailEntry.user, "
        "r.target[1].detailEntry.subject)"
    )
    admin = one_of("r.eventType", ADMIN)
    consent = KindRecords(
        fields={
            "event_id": "r.uuid",
            "event_time": utc_time("r.published"),
            "user_id": f"CASE WHEN {admin} THEN '*' ELSE {user_of(user)} END",
            "app_id": app_of(
                f"coalesce(r.client.id, {APP_TARGET}, r.target[1].detailEntry.publicclientapp)"
            ),
            "event_type": f"CASE WHEN {IS_GRANT} THEN 'grant' ELSE 'revoke' END",
            "scopes": f"CASE WHEN {IS_GRANT} THEN {scopes_of(f'nullif({SCOPE_TARGETS}, [])')} END",
        }
    )
    return RecordFormat(
        name="okta_system_log",
        parse=json_record(STRUCTURE),
        kinds={"consent": consent},
        primary_kind="consent",
        checks=(
            Check(
                f"NOT coalesce({IS_GRANT} OR {IS_REVOKE}, false)",
                "not_a_consent_event",
                "'eventType ' || coalesce(r.eventType, '(none)') || ' is not a consent grant, "
                "consent revoke or token revocation'",
            ),
            Check(
                "r.outcome.result IS DISTINCT FROM 'SUCCESS'",
                "failed_outcome",
                "'outcome ' || coalesce(r.outcome.result, '(none)') || ': nothing was granted or "
                "revoked'",
            ),
        ),
        reads=("uuid", "published", "eventType", "actor", "client.id", "outcome.result", "target"),
    )
