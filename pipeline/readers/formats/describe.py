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

    fields: dict[str, str]  # canonical field → SQL over r, item, item_no, items_n, lets
    where: str = "true"  # which elements are of this kind (a format giving both kinds)
    checks: tuple[Check, ...] = ()  # may use the lets too
    lets: dict[str, str] = field(default_factory=dict)  # values several fields use, named once


@dataclass(frozen=True)
class RecordFormat:
    """One format's description of its records."""

    name: str
    parse: str  # SQL over `raw` giving the record (NULL where it cannot be parsed)
    kinds: dict[str, KindRecords]
    primary_kind: str  # where records that give no event of either kind are quarantined
    parsed_when: str = "TRUE"  # over the parse's value `r0`: it is a record (a pattern matched)
    record: str = "r0"  # the record `r` made of `r0` where parsed_when holds
    checks: tuple[Check, ...] = ()  # on the whole record, before it unnests
    items: str | None = None  # SQL list over r: one event per element; None: one per record
    lets: dict[str, str] = field(default_factory=dict)  # values of the record, named once
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


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def utc_time(expr: str, style: str = "rfc3339") -> str:
    """A time as RFC 3339 text, for validation to parse and check. Styles: `rfc3339` (passed on),
    `no_offset` (ISO without an offset is UTC, as Microsoft documents CreationTime), `clf`
    (`10/Oct/2000:13:55:36 -0700`, rearranged by slicing: cheaper than parsing twice), `any`
    (those, or epoch milliseconds). Text that fits none is passed on: validation names it."""
    if style == "rfc3339":
        return expr
    no_offset = (
        f"CASE WHEN regexp_full_match({expr}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}[Tt ][0-9:.]+') "
        f"THEN {expr} || 'Z' ELSE {expr} END"
    )
    if style == "no_offset":
        return no_offset
    month = " ".join(f"WHEN '{m}' THEN '{n:02d}'" for n, m in enumerate(MONTHS, 1))
    clf = (
        f"CASE WHEN length({expr}) = 26 AND substr({expr}, 21, 1) = ' ' THEN concat("
        f"substr({expr}, 8, 4), '-', CASE substr({expr}, 4, 3) {month} ELSE '??' END, '-', "
        f"substr({expr}, 1, 2), 'T', substr({expr}, 13, 8), substr({expr}, 22, 3), ':', "
        f"substr({expr}, 25, 2)) ELSE {expr} END"
    )
    if style == "clf":
        return clf
    return (
        f"CASE WHEN regexp_full_match({expr}, '-?[0-9]{{1,16}}') "
        f"THEN strftime(epoch_ms({expr}::BIGINT), '%Y-%m-%dT%H:%M:%S.%fZ') "
        f"WHEN contains({expr}, '/') THEN {clf} ELSE {no_offset} END"
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


def by_name(list_expr: str, names: str, key: str, name: str, value: str = "value") -> str:
    """Like `named`, given the list of the elements' `key` values (`names`, computed once): an
    element found by its position, several times cheaper than a filter per lookup."""
    return f"{list_expr}[list_position({names}, {quote(name)})].{value}"


def one_of(expr: str, values: tuple[str, ...]) -> str:
    return f"{expr} IN ({', '.join(quote(v) for v in values)})"
