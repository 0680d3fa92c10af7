"""Microsoft Entra directory audit (`/auditLogs/directoryAudits`, JSON Lines): consent.

`Consent to application` and `Add delegated permission grant` are grants (scopes from
`ConsentAction.Permissions` or `DelegatedPermissionGrant.Scope`); `Remove delegated permission
grant` and `Revoke consent` are revokes. The app is `additionalDetails[AppId]` (the application
id M365 and Graph name), else the target service principal's object id (map it in [apps]). The
user is the initiator's UPN; an admin consent for all users (`ConsentContext.IsAdminConsent` or
`OnBehalfOfAll` true, or a grant of `ConsentType` `AllPrincipals`, and the removal of one) has
user `*`, which the rules take as every user of the app.
"""

from __future__ import annotations

from pipeline.config import Source
from pipeline.readers.formats.describe import (
    Check,
    KindRecords,
    RecordFormat,
    app_of,
    json_record,
    named,
    one_of,
    quote,
    scopes_of,
    user_of,
    utc_time,
)
from pipeline.readers.formats.mapping import Mapping

GRANTS = ("Consent to application", "Add delegated permission grant")
REVOKES = ("Remove delegated permission grant", "Revoke consent")
STRUCTURE = {
    "id": "VARCHAR",
    "activityDateTime": "VARCHAR",
    "activityDisplayName": "VARCHAR",
    "result": "VARCHAR",
    "initiatedBy": {"user": {"id": "VARCHAR", "userPrincipalName": "VARCHAR"}},
    "targetResources": [
        {
            "id": "VARCHAR",
            "modifiedProperties": [{"displayName": "VARCHAR", "newValue": "VARCHAR"}],
        }
    ],
    "additionalDetails": [{"key": "VARCHAR", "value": "VARCHAR"}],
}
# What makes a consent (or its removal) an admin consent for every user of the tenant: user `*`
ADMIN_MARKS = (
    ("ConsentContext.IsAdminConsent", "true"),
    ("ConsentContext.OnBehalfOfAll", "true"),
    ("DelegatedPermissionGrant.ConsentType", "allprincipals"),  # vs Principal: one user's
)
INITIATOR = "coalesce(r.initiatedBy.user.userPrincipalName, r.initiatedBy.user.id)"
PROPERTIES = "flatten(list_transform(r.targetResources, lambda t: t.modifiedProperties))"


def _property(name: str) -> str:
    return named(PROPERTIES, "displayName", name, "newValue")


def _scopes() -> str:
    """`…Scope: Mail.Read offline_access, CreatedDateTime…` or `"Mail.Read offline_access"`."""
    permissions = _property("ConsentAction.Permissions")
    listed = f"regexp_extract({permissions}, 'Scope: ([^,\\]]*)', 1)"
    grant_scope = f"trim({_property('DelegatedPermissionGrant.Scope')}, '\" ')"
    text = f"CASE WHEN {permissions} IS NOT NULL THEN {listed} ELSE {grant_scope} END"
    names = f"list_filter(string_split(trim({text}), ' '), lambda s: s <> '')"
    return scopes_of(names)


def describe(source: Source, mapping: Mapping) -> RecordFormat:
    admin = " OR ".join(
        f"coalesce(lower(trim({_property(name)}, '\" ')) = {quote(value)}, false)"
        for name, value in ADMIN_MARKS
    )
    consent = KindRecords(
        fields={
            "event_id": "r.id",
            "event_time": utc_time("r.activityDateTime"),
            "user_id": f"CASE WHEN {admin} THEN '*' ELSE {user_of(INITIATOR)} END",
            "app_id": app_of(
                f"coalesce({named('r.additionalDetails', 'key', 'AppId')}, r.targetResources[1].id)"
            ),
            "event_type": f"CASE WHEN {one_of('r.activityDisplayName', GRANTS)} "
            "THEN 'grant' ELSE 'revoke' END",
            "scopes": f"CASE WHEN {one_of('r.activityDisplayName', GRANTS)} THEN {_scopes()} END",
        }
    )
    return RecordFormat(
        name="entra_audit",
        parse=json_record(STRUCTURE),
        kinds={"consent": consent},
        primary_kind="consent",
        checks=(
            Check(
                f"NOT coalesce({one_of('r.activityDisplayName', GRANTS + REVOKES)}, false)",
                "not_a_consent_activity",
                "'activity ' || coalesce(r.activityDisplayName, '(none)') || "
                "' is not a consent grant or revoke'",
            ),
            Check(
                "lower(r.result) IS DISTINCT FROM 'success'",
                "failed_activity",
                "'result ' || coalesce(r.result, '(none)') || ': nothing was granted or revoked'",
            ),
        ),
        reads=(
            "id",
            "activityDateTime",
            "activityDisplayName",
            "initiatedBy.user",
            "targetResources",
        ),
    )
