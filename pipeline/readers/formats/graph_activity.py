"""Microsoft Graph activity logs (`MicrosoftGraphActivityLogs`, exported as JSON Lines): one
HTTP request per record. Resource and action come from the request's path and method (the
route table), except that Graph's mail paths (`/me/mailFolders/{id}/messages`) are messages."""

from __future__ import annotations

from pipeline.config import Source
from pipeline.readers.formats.describe import (
    KindRecords,
    RecordFormat,
    app_of,
    http_status,
    json_record,
    quote,
    user_of,
    utc_time,
)
from pipeline.readers.formats.mapping import Mapping

STRUCTURE = {
    "TimeGenerated": "VARCHAR",
    "RequestId": "VARCHAR",
    "AppId": "VARCHAR",
    "UserId": "VARCHAR",
    "IPAddress": "VARCHAR",
    "UserAgent": "VARCHAR",
    "RequestMethod": "VARCHAR",
    "RequestUri": "VARCHAR",
    "ResponseStatusCode": "VARCHAR",
}
PATH = "regexp_replace(r.RequestUri, '^[A-Za-z][A-Za-z0-9+.-]*://[^/]*', '')"
MAIL = r"'^/(v1\.0|beta)/(me|users/[^/]+)/(mailFolders/[^/]+/)?(messages|childFolders)(/|$|\?)'"


def describe(source: Source, mapping: Mapping) -> RecordFormat:
    mail = f"regexp_matches({PATH}, {MAIL})"
    by_method = " ".join(
        f"WHEN {quote(m)} THEN {quote(a)}"
        for m, a in (
            *(("GET", "read"), ("HEAD", "read"), ("POST", "write")),
            *(("PUT", "write"), ("PATCH", "write"), ("DELETE", "delete")),
        )
    )
    access = KindRecords(
        fields={
            "request_id": "r.RequestId",
            "event_time": utc_time("r.TimeGenerated"),
            "app_id": app_of("r.AppId"),
            "user_id": user_of("r.UserId"),
            # other paths: the route table decides, from method and path
            "resource": f"CASE WHEN {mail} THEN 'messages' END",
            "action": f"CASE WHEN {mail} THEN CASE upper(r.RequestMethod) {by_method} END END",
            "method": "r.RequestMethod",
            "path": PATH,
            "status": http_status("r.ResponseStatusCode"),
            "ip": "r.IPAddress",
            "user_agent": "r.UserAgent",
        }
    )
    return RecordFormat(
        name="graph_activity",
        parse=json_record(STRUCTURE),
        kinds={"access": access},
        primary_kind="access",
        reads=tuple(STRUCTURE),
    )
