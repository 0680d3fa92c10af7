"""What a format's reader declares about its records, and the SQL pieces the declarations use.

A format *describes* its records: how a line is parsed (a JSON structure of the paths it reads,
or a line pattern), which checks a record must pass, how one record unnests into several events,
and an SQL expression per canonical field over the parsed record `r` and its unnested element
`item`. `convert.py` turns a description into one vectorised DuckDB query; nothing here runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Placeholders replaced by the source's mapping (MAP literals) when the query is built.
APPS, SCOPES, USERS = "$APPS", "$SCOPES", "$USERS"


@dataclass(frozen=True)
class Check:
    """A record (or element) fails when `condition` holds: quarantined with `reason` and the
    text `detail` gives (an SQL expression)."""

    condition: str
    reason: str
    detail: str


@dataclass(frozen=True)
class KindRecords:
    """How the elements of one record kind (access or consent) become canonical events."""

    fields: dict[str, str]  # canonical field → SQL over r, item, item_no, items_n
    where: str = "true"  # which elements are of this kind (a format giving both kinds)
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class RecordFormat:
    """One format's description of its records."""

    name: str
    parse: str  # SQL over `raw` giving the record `r` (NULL where it cannot be parsed)
    kinds: dict[str, KindRecords]
    primary_kind: str  # where records that give no event of either kind are quarantined
    checks: tuple[Check, ...] = ()  # on the whole record, before it unnests
    items: str | None = None  # SQL list over r: one event per element; None: one per record
    # the reason for a readable line that `parse` makes no record of (JSON formats: none, so
    # validation names it: invalid_json, not_a_json_object)
    unparsed: Check | None = None
    reads: tuple[str, ...] = field(default_factory=tuple)  # the source paths read (docs, tests)


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def json_record(structure: dict[str, Any]) -> str:
    """The record parsed into a struct of the paths in `structure` (json_transform: values of
    another type come back NULL or as their JSON text, never an error)."""
    return f"try(json_transform(raw, {quote(json.dumps(structure))}))"


def app_of(expr: str) -> str:
    """The partner app a client id is, by the mapping; an unmapped id stays itself (and is an
    app the registry lacks unless it names one)."""
    return f"coalesce({APPS}[{expr}], {expr})"


def user_of(expr: str) -> str:
    """A user id through the mapping's [users] table; e-mail-like ids compared lower-cased, as
    platforms treat them."""
    mapped = f"coalesce({USERS}[{expr}], {expr})"
    return f"CASE WHEN contains({mapped}, '@') THEN lower({mapped}) ELSE {mapped} END"


def scopes_of(list_expr: str) -> str:
    """Permission names through the mapping (one may stand for several scopes, space-separated);
    an unmapped name stays itself; order kept. NULL stays NULL (a grant of every scope)."""
    return (
        f"flatten(list_transform({list_expr}, "
        f"lambda p: coalesce(string_split({SCOPES}[p], ' '), [p])))"
    )


def utc_time(expr: str) -> str:
    """A time as an RFC 3339 text: ISO times without an offset are UTC (as Microsoft documents
    CreationTime); epoch milliseconds and `10/Oct/2000:13:55:36 -0700` are converted. Text that is
    none of these is passed on, so validation names it (invalid_time)."""
    clf = f"try_strptime({expr}, '%d/%b/%Y:%H:%M:%S %z')"
    iso = "'^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9:.]+$'"
    return (
        f"CASE WHEN regexp_full_match({expr}, '-?[0-9]{{1,16}}') "
        f"THEN strftime(epoch_ms({expr}::BIGINT), '%Y-%m-%dT%H:%M:%S.%fZ') "
        f"WHEN regexp_full_match({expr}, {iso}) THEN {expr} || 'Z' "
        f"WHEN {clf} IS NOT NULL THEN strftime({clf}, '%Y-%m-%dT%H:%M:%S.%fZ') "
        f"ELSE {expr} END"
    )


def http_status(expr: str) -> str:
    """A status given as a number or its text, as a JSON number; anything else as JSON text,
    which validation refuses (wrong_type)."""
    return (
        f"CASE WHEN regexp_full_match({expr}, '[0-9]{{1,9}}') THEN {expr}::INTEGER::JSON "
        f"ELSE to_json({expr}) END"
    )


def dash_null(expr: str) -> str:
    """Log formats write `-` for an absent value."""
    return f"nullif(nullif({expr}, '-'), '')"


def named(list_expr: str, key: str, name: str, value: str = "value") -> str:
    """The `value` of the element of a list of {key, value} objects whose `key` is `name`."""
    return f"list_filter({list_expr}, lambda p: p.{key} = {quote(name)})[1].{value}"


def one_of(expr: str, values: tuple[str, ...]) -> str:
    return f"{expr} IN ({', '.join(quote(v) for v in values)})"
