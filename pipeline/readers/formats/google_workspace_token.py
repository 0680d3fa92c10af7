"""Google Workspace Reports API token audit (`applicationName=token`), one activity per line.

Access: `activity` events (one API call by an app for the user). Consent: `authorize` (grant, with
its `scope` multiValue) and `revoke`. An activity record's `events[]` unnest, one event each.
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

PARAMETER = {"name": "VARCHAR", "value": "VARCHAR", "multiValue": ["VARCHAR"]}
STRUCTURE = {
    "id": {"time": "VARCHAR", "uniqueQualifier": "VARCHAR", "applicationName": "VARCHAR"},
    "actor": {"email": "VARCHAR", "profileId": "VARCHAR"},
    "ipAddress": "VARCHAR",
    "events": [{"type": "VARCHAR", "name": "VARCHAR", "parameters": [PARAMETER]}],
}
CONSENT_EVENTS = ("authorize", "revoke")
# the verb of a method name (gmail.users.messages.get) → action
VERBS = {
    "read": ("get", "list", "watch", "getProfile"),
    "write": ("send", "insert", "import", "modify", "batchModify", "create", "update", "patch"),
    "delete": ("delete", "trash", "batchDelete", "untrash"),
}
MESSAGE_PREFIXES = ("gmail.users.messages.", "gmail.users.threads.", "gmail.users.drafts.")
LISTINGS = (*tuple(p + "list" for p in MESSAGE_PREFIXES), "gmail.users.history.list")


# an event's parameter names, listed once: a parameter is then found by its position (several
# times cheaper than a map or a filter per parameter)
PARAMETERS = {"param_names": "list_transform(item.parameters, lambda p: p.name)"}


def _param(name: str) -> str:
    return f"item.parameters[list_position(param_names, {quote(name)})].value"


def _event_id() -> str:
    """An activity is identified by its time and unique qualifier together (Google's `id`);
    a record of several events numbers them."""
    one = "r.id.uniqueQualifier || '@' || r.id.time"
    return f"CASE WHEN items_n > 1 THEN {one} || '#' || item_no ELSE {one} END"


def _action() -> str:
    verb = f"string_split({_param('method_name')}, '.')[-1]"
    cases = " ".join(
        f"WHEN {one_of(verb, verbs)} THEN {quote(action)}" for action, verbs in VERBS.items()
    )
    return f"CASE {cases} END"


def _resource() -> str:
    method = _param("method_name")
    message = " OR ".join(f"starts_with({method}, {quote(p)})" for p in MESSAGE_PREFIXES)
    return (
        f"CASE WHEN {one_of(method, LISTINGS)} THEN 'message_list' "
        f"WHEN {message} THEN 'messages' "
        f"ELSE coalesce({_param('api_name')}, 'unknown') END"
    )


def describe(source: Source, mapping: Mapping) -> RecordFormat:
    common = {
        "event_time": utc_time("r.id.time"),
        "user_id": user_of("coalesce(r.actor.email, r.actor.profileId)"),
        "app_id": app_of(_param("client_id")),
    }
    access = KindRecords(
        fields={
            "request_id": _event_id(),
            **common,
            "resource": _resource(),
            "action": _action(),
            "method": _param("method_name"),
            "ip": "r.ipAddress",
        },
        where=f"NOT coalesce({one_of('item.name', CONSENT_EVENTS)}, false)",
        lets=PARAMETERS,
        checks=(
            Check(
                "item.name IS DISTINCT FROM 'activity'",
                "unknown_event",
                "'event ' || coalesce(item.name, '(none)') || ' is not activity, authorize or "
                "revoke'",
            ),
        ),
    )
    consent = KindRecords(
        fields={
            "event_id": _event_id(),
            **common,
            "event_type": "CASE item.name WHEN 'authorize' THEN 'grant' ELSE 'revoke' END",
            "scopes": f"CASE WHEN item.name = 'authorize' THEN "
            f"{scopes_of(named('item.parameters', 'name', 'scope', 'multiValue'))} END",
        },
        where=f"coalesce({one_of('item.name', CONSENT_EVENTS)}, false)",
        lets=PARAMETERS,
    )
    return RecordFormat(
        name="google_workspace_token",
        parse=json_record(STRUCTURE),
        kinds={"access": access, "consent": consent},
        primary_kind="access",
        checks=(
            Check(
                "r.id.applicationName IS DISTINCT FROM 'token'",
                "unknown_application",
                "'applicationName ' || coalesce(r.id.applicationName, '(none)') || ' is not token'",
            ),
        ),
        items="r.events",
        reads=("id.time", "id.uniqueQualifier", "actor.email", "ipAddress", "events[].parameters"),
    )
