"""An API gateway's access log: nginx/Apache `combined` lines by a pattern, or JSON lines (API
Gateway, Envoy `json_format`, Kong) through the mapping's [fields] (canonical field → dotted path).

The source's `pattern` is a preset (`combined`, `combined_audit`), a regular expression with named
groups (ip, remote_user, time, method, path, status, user_agent, request_id, app_id, user_id), or
`json`. `combined` has no app: its lines are quarantined for lacking one unless the operator logs
it; `combined_audit` is combined plus `$request_id "$http_x_client_id" "$http_x_user_id"`, the
format the README recommends. A line without a request id is identified by a hash of its text
(so a line delivered twice is one record). Resource and action come from the route table.
"""

from __future__ import annotations

import re

from pipeline.config import Source
from pipeline.errors import ConfigError
from pipeline.readers.formats.describe import (
    Check,
    KindRecords,
    RecordFormat,
    app_of,
    dash_null,
    http_status,
    json_record,
    quote,
    user_of,
    utc_time,
)
from pipeline.readers.formats.mapping import Mapping

COMBINED = (
    r"(?P<ip>\S+) \S+ (?P<remote_user>\S+) \[(?P<time>[^\]]+)\] "
    r'"(?P<method>[A-Za-z]+) (?P<path>[^ "]+)[^"]*" (?P<status>[0-9]{3}) \S+'
    r'(?: "(?P<referer>[^"]*)" "(?P<user_agent>[^"]*)")?'
)
PRESETS = {
    "combined": COMBINED,
    "combined_audit": COMBINED + r' (?P<request_id>\S+) "(?P<app_id>[^"]*)" "(?P<user_id>[^"]*)"',
}
GROUPS = (
    *("ip", "remote_user", "time", "method", "path", "status", "user_agent", "request_id"),
    *("app_id", "user_id", "referer", "event_time"),
)
JSON_FIELDS = (
    *("request_id", "event_time", "app_id", "user_id", "method", "path", "status"),
    *("ip", "user_agent", "resource", "action", "thread_id"),
)
UNNAMED = "coalesce({}, 'line-' || md5(rtrim(raw, chr(13) || chr(10))))"  # no request id logged


def _pattern_record(pattern: str) -> tuple[str, list[str]]:
    try:
        names = list(re.compile(pattern).groupindex)
    except re.error as exc:
        raise ConfigError(f"gateway pattern {pattern!r}: {exc}") from None
    unknown = set(names) - set(GROUPS)
    if unknown or (not {"time", "path"} <= set(names) and "event_time" not in names):
        raise ConfigError(
            f"gateway pattern: named groups must be among {', '.join(GROUPS)} and include "
            f"time and path (got {', '.join(names) or 'none'})"
        )
    groups = list(re.compile(pattern).groupindex.items())
    ordered = [name for name, _ in sorted(groups, key=lambda item: item[1])]
    # RE2 takes the Python syntax of named groups; the struct names come in group order. One
    # regexp_extract reads a line: a line it does not match gives empty groups.
    regex = quote("^" + pattern + r"\r?\n?$")
    names_list = "[" + ", ".join(quote(n) for n in ordered) + "]"
    return f"regexp_extract(raw, {regex}, {names_list})", ordered


# The presets are read by splitting a line on its double quotes (nginx writes a quote inside a
# value as \x22), several times cheaper than a pattern's capture groups. Pieces: 1 `ip - user
# [time] `, 2 the request line, 3 ` status bytes `, 4 referer, 6 user agent; combined_audit adds
# 7 ` request_id `, 8 client id, 10 user.
SPLIT_FIELDS = {
    "ip": "split_part(r0[1], ' ', 1)",
    "remote_user": "split_part(r0[1], ' ', 3)",
    "time": "split_part(split_part(r0[1], '[', 2), ']', 1)",
    "method": "split_part(r0[2], ' ', 1)",
    "path": "split_part(r0[2], ' ', 2)",
    "status": "split_part(trim(r0[3]), ' ', 1)",
    "user_agent": "r0[6]",
}
SPLIT_AUDIT = {"request_id": "trim(r0[7])", "app_id": "r0[8]", "user_id": "r0[10]"}


def _split_record(audit: bool) -> tuple[str, str, str, list[str]]:
    fields = SPLIT_FIELDS | (SPLIT_AUDIT if audit else {})
    record = "struct_pack(" + ", ".join(f"{n} := {e}" for n, e in fields.items()) + ")"
    pieces = 11 if audit else 7
    matched = f"len(r0) = {pieces} AND contains(r0[1], '[') AND contains(r0[2], ' ')"
    return "string_split(raw, '\"')", matched, record, list(fields)


def _text_format(pattern: str) -> RecordFormat:
    if pattern in PRESETS:
        parse, matched, record, names = _split_record(pattern == "combined_audit")
    else:
        parse, names = _pattern_record(pattern)
        matched = "r0.event_time <> ''" if "event_time" in names else "r0.time <> ''"
        record = "r0"

    def group(name: str) -> str:
        return dash_null(f"r.{name}") if name in names else "NULL::VARCHAR"

    time = group("event_time") if "event_time" in names else group("time")
    request_id = UNNAMED.format(group("request_id"))
    access = KindRecords(
        fields={
            "request_id": request_id,
            "event_time": utc_time(time, "clf"),
            "app_id": app_of(group("app_id")),
            "user_id": user_of(f"coalesce({group('user_id')}, {group('remote_user')})"),
            "method": group("method"),
            "path": group("path"),
            "status": http_status(group("status")),
            "ip": group("ip"),
            "user_agent": group("user_agent"),
        }
    )
    return RecordFormat(
        name="gateway",
        parse=parse,
        parsed_when=matched,
        record=record,
        kinds={"access": access},
        primary_kind="access",
        unparsed=Check("TRUE", "unmatched_line", "'the line does not match the gateway pattern'"),
        reads=tuple(names),
    )


def _nested(paths: dict[str, str]) -> dict:
    structure: dict = {}
    for path in paths.values():
        node = structure
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"gateway [fields]: {path} is both a value and an object")
        node[leaf] = "VARCHAR"
    return structure


def _json_format(mapping: Mapping) -> RecordFormat:
    fields = mapping.fields
    unknown = set(fields) - set(JSON_FIELDS)
    if unknown or not fields:
        raise ConfigError(
            "gateway json: the mapping's [fields] must map canonical fields "
            f"({', '.join(JSON_FIELDS)}) to paths (unknown: {', '.join(sorted(unknown)) or '-'})"
        )

    def value(name: str) -> str:
        if name not in fields:
            return "NULL::VARCHAR"
        return dash_null("r" + "".join(f"[{quote(p)}]" for p in fields[name].split(".")))

    values = {
        "request_id": UNNAMED.format(value("request_id")),
        "event_time": utc_time(value("event_time"), "any"),
        "app_id": app_of(value("app_id")),
        "user_id": user_of(value("user_id")),
        "status": http_status(value("status")),
    }
    access = KindRecords(
        fields={
            name: values.get(name, value(name))
            for name in JSON_FIELDS
            if name in fields or name in values
        }
    )
    return RecordFormat(
        name="gateway",
        parse=json_record(_nested(fields)),
        kinds={"access": access},
        primary_kind="access",
        reads=tuple(fields.values()),
    )


def describe(source: Source, mapping: Mapping) -> RecordFormat:
    pattern = source.pattern or "combined_audit"
    if pattern == "json":
        return _json_format(mapping)
    return _text_format(pattern)
