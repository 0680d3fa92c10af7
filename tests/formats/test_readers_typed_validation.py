"""A reader hands validation typed columns (f_<field>) instead of canonical JSON text: validation of
those columns must give exactly what validation of the same records written as JSON lines gives —
every reason, detail, typed value, hash and redacted text — whatever SQL type a column has."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from pipeline.config import Settings
from pipeline.ingest.validation import (
    ACCESS_KIND,
    CONSENT_KIND,
    RecordKind,
    typed_column,
    validation_sql,
)

SETTINGS = Settings()

# Per field, values as JSON literals (NULL: the field absent). One row per list position; the
# rows mix clean records and each kind of fault.
ACCESS_VALUES = {
    "request_id": ['"r1"', '""', '"a\\u0001b"', "null", "5", '"r6"', '"r7"', '"r8"', '"r9"'],
    "event_time": [
        '"2026-03-01T10:00:00Z"',
        '"2026-03-01T10:00:00Z"',
        '"2026-03-01T10:00:00+02:00"',
        '"2026-03-01T10:00:00Z"',
        "1772359200000",
        '"2026-03-01T10:00:00"',
        '"not a time"',
        "true",
        '"2026-03-01T10:00:00.123456Z"',
    ],
    "app_id": ['"app-1"'] * 8 + ["[1]"],
    "user_id": ['"u1"', '"u2"', '"u3"', '"u4"', '"u5"', '"u6"', '"u7"', '"u8"', '"u9"'],
    "resource": ['"messages"', "null", "null", '"messages"', "null"] + ['"messages"'] * 4,
    "action": ['"read"', "null", "null", '"READ"', "null", '"write"', '"read"', '"read"', '"x"'],
    "method": ["null", '"GET"', '"DELETE"', "null", '"GET"', "null", "null", "null", "null"],
    "path": [
        "null",
        '"/v2/me/messages/1?access_token=secret-1"',
        '"/v2/me/nothing"',
        "null",
        '"/v2/me/messages"',
        "null",
        "null",
        "null",
        "null",
    ],
    "status": ["200", '"200"', "99", "null", "1.5", "404", "200", "200", "20000000000000000000"],
    "ip": ['"10.0.0.1"', "null", '"token=abc"'] + ["null"] * 6,
    "user_agent": ['"SDK"'] + ["null"] * 8,
}
CONSENT_VALUES = {
    "event_id": ['"e1"', '"e2"', '"e3"', '"e4"', '"e5"', '"e6"'],
    "event_time": ['"2026-03-01T10:00:00Z"'] * 5 + ['"2026-03-01"'],
    "user_id": ['"*"', '"u2"', '"u3"', '"u4"', '"u5"', '"u6"'],
    "app_id": ['"app"'] * 6,
    "event_type": ['"grant"', '"grant"', '"grant"', '"revoke"', '"grant"', '"grant"'],
    "scopes": ['["messages.read"]', "[]", '["a", null]', '["x"]', "null", '["a", 1]'],
}
# How the reader's columns are typed: each as its JSON (the generic route), as a reader's natural
# SQL types, and with a few columns of other SQL types
NATURAL = {"status": "JSON", "scopes": "VARCHAR[]"}
OTHERS = {"status": "BIGINT", "scopes": "JSON"}


def _sql_value(json_literal: str, sql_type: str) -> str:
    literal = "'" + json_literal.replace("'", "''") + "'"
    if sql_type == "JSON":
        return f"{literal}::JSON"
    if sql_type == "VARCHAR":  # a string's value (only strings fit)
        return f"TRY_CAST(json_extract_string({literal}::JSON, '$') AS VARCHAR)"
    return f"TRY_CAST({literal}::JSON AS {sql_type})"


def _fits(json_literal: str, sql_type: str) -> bool:
    """Whether the SQL type holds the value as it is (else the row is left out of that run)."""
    if json_literal == "null" or sql_type == "JSON":
        return True
    if sql_type == "VARCHAR":
        return json_literal.startswith('"')
    con = duckdb.connect()
    try:
        back = con.execute(
            f"SELECT to_json({_sql_value(json_literal, sql_type)})::VARCHAR"
        ).fetchone()
    finally:
        con.close()
    assert back is not None
    return back[0] is not None and json_literal.replace(" ", "") == back[0].replace(" ", "")


def _tables(
    kind: RecordKind, values: dict[str, list[str]], types: dict[str, str]
) -> tuple[pa.Table, pa.Table]:
    """The same records as typed columns (a reader's block) and as canonical JSON lines."""
    n = len(next(iter(values.values())))
    rows = [
        i
        for i in range(n)
        if all(_fits(values[name][i], types.get(name, "VARCHAR")) for name in values)
    ]
    selects = []
    for line, i in enumerate(rows, 1):
        exprs = {name: _sql_value(values[name][i], types.get(name, "VARCHAR")) for name in values}
        columns = ", ".join(f"{e} AS {typed_column(name)}" for name, e in exprs.items())
        members = ", ".join(f"'{name}', {e}" for name, e in exprs.items())
        selects.append(
            f"SELECT {line}::BIGINT AS source_line, {columns}, "
            f"json_object({members})::VARCHAR AS canonical"
        )
    con = duckdb.connect()
    try:
        both = con.sql(" UNION ALL ".join(selects)).to_arrow_table()
    finally:
        con.close()
    lines = pa.table(
        {
            "source_line": both["source_line"],
            "raw": both["canonical"],
            "encoding_ok": pa.repeat(pa.scalar(True), both.num_rows),
        }
    )
    typed = both.drop_columns(["canonical"])
    n = typed.num_rows
    typed = typed.append_column("raw", pa.nulls(n, pa.string()))
    typed = typed.append_column("encoding_ok", pa.repeat(pa.scalar(True), n))
    typed = typed.append_column("converted", pa.repeat(pa.scalar(True), n))
    return typed, lines


def _validated(sql: str, batch: pa.Table) -> list[dict]:
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("batch", batch)
        return con.sql(f"SELECT * FROM ({sql}) ORDER BY source_line").to_arrow_table().to_pylist()
    finally:
        con.close()


@pytest.mark.parametrize("redact_all", [False, True])
@pytest.mark.parametrize("typing", ["json", "natural", "others"])
@pytest.mark.parametrize(
    ("kind", "values"), [(ACCESS_KIND, ACCESS_VALUES), (CONSENT_KIND, CONSENT_VALUES)]
)
def test_typed_columns_validate_as_their_json_lines(
    kind: RecordKind, values: dict[str, list[str]], typing: str, redact_all: bool
):
    declared = {
        "json": dict.fromkeys(values, "JSON"),
        "natural": NATURAL,
        "others": OTHERS,
    }[typing]
    typed, lines = _tables(kind, values, declared)
    # as a reader hands them over: through Arrow (where a JSON column arrives as text), with the
    # types its query declares
    types = {f.name: declared.get(f.name, "VARCHAR") for f in kind.fields if f.name in values}
    expected = _validated(validation_sql(kind, SETTINGS, redact_all=redact_all), lines)
    got = _validated(validation_sql(kind, SETTINGS, redact_all=redact_all, typed=types), typed)
    assert got == expected
    assert any(row["reason"] is None for row in got)
    assert any(row["reason"] is not None for row in got)


def test_lines_a_reader_made_no_record_of_are_judged_as_lines():
    """A line the parse made nothing of goes on as itself: validation names it as it names a
    canonical line (invalid JSON, not an object, unreadable), with the same redacted text."""
    raws = ["not json token=abc", "[1, 2]", '{"request_id": "x"', "\ufffd bytes"]
    ok = [True, True, True, False]
    n = len(raws)
    lines = pa.table(
        {
            "source_line": pa.array(range(1, n + 1), pa.int64()),
            "raw": raws,
            "encoding_ok": ok,
        }
    )
    typed = lines.append_column("converted", pa.repeat(pa.scalar(False), n))
    typed = typed.append_column(typed_column("request_id"), pa.nulls(n, pa.string()))
    expected = _validated(validation_sql(ACCESS_KIND, SETTINGS), lines)
    got = _validated(validation_sql(ACCESS_KIND, SETTINGS, typed={"request_id": "VARCHAR"}), typed)
    assert got == expected
    assert [row["reason"] for row in got] == [
        "invalid_json",
        "not_a_json_object",
        "invalid_json",
        "invalid_encoding",
    ]
