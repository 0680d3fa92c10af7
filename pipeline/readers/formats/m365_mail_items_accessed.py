"""Microsoft 365 unified audit log, `MailItemsAccessed` (RecordType 50), one record per line.

A Bind record lists the messages read in up to two minutes under `Folders[].FolderItems[]`: it
unnests into one read per message, at the window's start (`CreationTime`). A Sync record names
folders, not messages: one access per folder of resource `mail_folder`, which is not message
content, so the rules do not judge it and coverage counts it as a folder sync. `method` carries
the access type (`Bind`, `Sync`) and ` throttled` when the record says auditing was throttled.
"""

from __future__ import annotations

from pipeline.config import Source
from pipeline.readers.formats.describe import (
    Check,
    KindRecords,
    RecordFormat,
    app_of,
    by_name,
    json_record,
    user_of,
    utc_time,
)
from pipeline.readers.formats.mapping import Mapping

FOLDER_RESOURCE = "mail_folder"  # a Sync record's access: a whole folder
STRUCTURE = {
    "Id": "VARCHAR",
    "CreationTime": "VARCHAR",
    "Operation": "VARCHAR",
    "ResultStatus": "VARCHAR",
    "UserId": "VARCHAR",
    "MailboxOwnerUPN": "VARCHAR",
    "AppId": "VARCHAR",
    "ClientAppId": "VARCHAR",
    "AppAccessContext": {"ClientAppId": "VARCHAR"},
    "ClientIPAddress": "VARCHAR",
    "ClientIP": "VARCHAR",
    "ClientInfoString": "VARCHAR",
    "OperationProperties": [{"Name": "VARCHAR", "Value": "VARCHAR"}],
    "Folders": [{"Path": "VARCHAR", "FolderItems": [{"InternetMessageId": "VARCHAR"}]}],
}
PROPERTY_NAMES = {"property_names": "list_transform(r.OperationProperties, lambda p: p.Name)"}
ACCESS_TYPE = "access_type"


def _property(name: str) -> str:
    return by_name("r.OperationProperties", "property_names", "Name", name, "Value")


LETS = {  # the record's properties, read once
    **PROPERTY_NAMES,
    "access_type": _property("MailAccessType"),
    "throttled": f"lower({_property('IsThrottled')}) = 'true'",
}
THROTTLED = "throttled"
# Bind: one element per message; Sync: one per folder (its message left NULL)
ITEMS = (
    f"CASE {ACCESS_TYPE} WHEN 'Sync' THEN list_transform(r.Folders, "
    "lambda f: {'path': f.Path, 'message': NULL::VARCHAR}) "
    "ELSE flatten(list_transform(r.Folders, lambda f: list_transform(f.FolderItems, "
    "lambda m: {'path': f.Path, 'message': m.InternetMessageId}))) END"
)


def describe(source: Source, mapping: Mapping) -> RecordFormat:
    sync = f"{ACCESS_TYPE} = 'Sync'"
    access = KindRecords(
        fields={
            "request_id": "CASE WHEN items_n > 1 THEN r.Id || '/' || item_no ELSE r.Id END",
            "event_time": utc_time("r.CreationTime", "no_offset"),
            "app_id": app_of("coalesce(r.AppAccessContext.ClientAppId, r.ClientAppId, r.AppId)"),
            "user_id": user_of("coalesce(r.MailboxOwnerUPN, r.UserId)"),
            "resource": f"CASE WHEN {sync} THEN '{FOLDER_RESOURCE}' ELSE 'messages' END",
            "action": "'read'",
            "method": f"{ACCESS_TYPE} || CASE WHEN {THROTTLED} THEN ' throttled' ELSE '' END",
            "path": "concat_ws('/', item.path, item.message)",
            "status": "CASE r.ResultStatus WHEN 'Failed' THEN 403 ELSE 200 END",
            "ip": "coalesce(r.ClientIPAddress, r.ClientIP)",
            "user_agent": "r.ClientInfoString",
        }
    )
    return RecordFormat(
        name="m365_mail_items_accessed",
        parse=json_record(STRUCTURE),
        kinds={"access": access},
        primary_kind="access",
        checks=(
            Check(
                "r.Operation IS DISTINCT FROM 'MailItemsAccessed'",
                "unknown_operation",
                "'Operation ' || coalesce(r.Operation, '(none)') || ' is not MailItemsAccessed'",
            ),
            Check(
                f"{ACCESS_TYPE} IS NULL OR {ACCESS_TYPE} NOT IN ('Bind', 'Sync')",
                "unknown_access_type",
                f"'MailAccessType ' || coalesce({ACCESS_TYPE}, '(none)') || ' is not Bind or Sync'",
            ),
        ),
        items=ITEMS,
        lets=LETS,
        reads=("Id", "CreationTime", "AppAccessContext.ClientAppId", "MailboxOwnerUPN", "Folders"),
    )
