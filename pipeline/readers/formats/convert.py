"""The one mechanism every format goes through: a description (describe.py) becomes a DuckDB query
that turns a block of raw lines into canonical records, handed to validation as typed columns (one
`f_<field>` per canonical field, see validation.typed_column): validation checks those values as
it checks a canonical line's, and dedupe, redaction and quarantine are the same, without parsing
the record a second time.

A record the format itself refuses (not its operation, a line that does not match the pattern)
goes on as its own raw text marked not readable, so that validation quarantines it with the text
redacted the generic way; `with_format_reasons` then puts the format's reason and detail in. A
line the parse makes no record of goes on as itself (`converted` false), for validation to name.

One record may give several events (a Bind record lists messages). Their `source_line` keeps the
record's line for the first and adds ITEM_STRIDE per further one (line 57's third event is
200000057), so every event has its own row key and the line stays readable.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ingest.validation import typed_column
from pipeline.readers.formats.describe import APPS, SCOPES, USERS, RecordFormat, quote
from pipeline.readers.formats.mapping import Mapping

ITEM_STRIDE = 100_000_000
FORMAT_COLUMNS = ("format_reason", "format_detail")


def _map_literal(table: dict[str, str]) -> str:
    if not table:
        return "(MAP {}::MAP(VARCHAR, VARCHAR))"
    pairs = ", ".join(f"{quote(k)}: {quote(v)}" for k, v in sorted(table.items()))
    return f"(MAP {{{pairs}}})"


def _with_mapping(sql: str, mapping: Mapping) -> str:
    for token, table in ((APPS, mapping.apps), (SCOPES, mapping.scopes), (USERS, mapping.users)):
        sql = sql.replace(token, _map_literal(table))
    return sql


def _cases(checks: list[tuple[str, str]]) -> str:
    return (
        "CASE " + " ".join(f"WHEN {c} THEN {v}" for c, v in checks) + " END" if checks else "NULL"
    )


def conversion_sql(
    fmt: RecordFormat, kind: str, primary_kind: str, mapping: Mapping, source: str = "batch"
) -> str:
    """A query over `source` (source_line, raw, encoding_ok) giving the typed columns of the
    canonical records, `converted`, `raw` (the line, where no record was made of it), and
    format_reason and format_detail for the records the format refuses."""
    spec = fmt.kinds[kind]
    record_reason = _cases([(c.condition, quote(c.reason)) for c in fmt.checks])
    record_detail = _cases([(c.condition, c.detail) for c in fmt.checks])
    item_reason = _cases([(c.condition, quote(c.reason)) for c in spec.checks])
    item_detail = _cases([(c.condition, c.detail) for c in spec.checks])
    fine = "r IS NOT NULL AND record_reason IS NULL"
    if fmt.unparsed is not None:  # lines the parse makes no record of, by the format's reason
        unparsed = f"WHEN r IS NULL AND encoding_ok THEN {quote(fmt.unparsed.reason)}"
        unparsed_detail = f"WHEN r IS NULL AND encoding_ok THEN {fmt.unparsed.detail}"
    else:
        unparsed = unparsed_detail = ""
    if fmt.items is None:
        unnested = "SELECT *, NULL AS item, 1 AS item_no, 1 AS items_n FROM judged"
    else:
        # the elements once, then one row per element number (a record without any: one)
        unnested = (
            "SELECT * EXCLUDE (elements), elements[item_no] AS item FROM ("
            "SELECT *, unnest(range(1, items_n + 1)) AS item_no FROM ("
            "SELECT *, greatest(coalesce(len(elements), 0), 1) AS items_n FROM ("
            f"SELECT *, CASE WHEN {fine} THEN {fmt.items} END AS elements FROM judged)))"
        )
    record_lets = "".join(
        f", CASE WHEN r IS NOT NULL THEN {expr} END AS {name}" for name, expr in fmt.lets.items()
    )
    # values several fields use, computed once (NULL for records that give no event)
    lets = "".join(
        f", CASE WHEN {fine} THEN {expr} END AS {name}" for name, expr in spec.lets.items()
    )
    # Records that give no event (unparsed or refused) are quarantined by one kind only. Which
    # rows to keep is a column that Arrow filters by: a filter in the query costs far more (it
    # slices the parsed records' structs).
    unusable = "TRUE" if kind == primary_kind else "FALSE"
    converted = "r IS NOT NULL AND format_reason IS NULL"
    typed = "".join(
        f", CASE WHEN {converted} THEN {expr} END AS {typed_column(name)}"
        for name, expr in spec.fields.items()
    )
    sql = f"""
WITH parsing AS (
    SELECT source_line, raw, encoding_ok, CASE WHEN encoding_ok THEN {fmt.parse} END AS r0
    FROM {source}
), parsed AS (
    SELECT source_line, raw, encoding_ok, CASE WHEN {fmt.parsed_when} THEN {fmt.record} END AS r
    FROM parsing
), lettered AS (
    SELECT *{record_lets} FROM parsed
), judged AS (
    SELECT *, CASE WHEN r IS NOT NULL THEN {record_reason} {unparsed} END AS record_reason,
           CASE WHEN r IS NOT NULL THEN {record_detail} {unparsed_detail} END AS record_detail
    FROM lettered
), unnested AS ({unnested}
), named AS (
    SELECT *{lets} FROM unnested
), checked AS (
    SELECT *,
           coalesce(record_reason, CASE WHEN r IS NOT NULL THEN {item_reason} END) AS format_reason,
           coalesce(record_detail, CASE WHEN r IS NOT NULL THEN {item_detail} END) AS format_detail
    FROM named
)
SELECT (source_line + (item_no - 1) * {ITEM_STRIDE})::BIGINT AS source_line,
       CASE WHEN {converted} THEN NULL ELSE raw END AS raw,
       encoding_ok AND format_reason IS NULL AS encoding_ok, {converted} AS converted,
       format_reason, left(format_detail, 300) AS format_detail,
       CASE WHEN {fine} THEN coalesce(({spec.where}), false) ELSE {unusable} END AS keep{typed}
FROM checked
"""
    return _with_mapping(sql, mapping)


def field_types(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, str]:
    """Canonical field → the DuckDB type of its typed column in the query's result (what
    validation reads them as), asked of DuckDB on an empty block."""
    empty = pa.table(
        {"source_line": pa.array([], pa.int64()), "raw": pa.array([], pa.string())}
        | {"encoding_ok": pa.array([], pa.bool_())}
    )
    con.register("batch", empty)
    try:
        relation = con.sql(sql)
        columns = zip(relation.columns, relation.types, strict=True)
        prefix = typed_column("")
        return {c[len(prefix) :]: str(t) for c, t in columns if c.startswith(prefix)}
    finally:
        con.unregister("batch")


def converted_batches(
    con: duckdb.DuckDBPyConnection, sql: str, lines: Iterator[pa.Table], unnests: bool
) -> Iterator[pa.Table]:
    """Each block of raw lines as typed canonical records (blocks that keep none are left out)."""
    for batch in lines:
        if unnests and batch.num_rows and batch["source_line"][-1].as_py() >= ITEM_STRIDE:
            raise OSError(f"a file of records that unnest may hold {ITEM_STRIDE - 1} lines")
        con.register("batch", batch)
        try:
            converted = con.sql(sql).to_arrow_table()
        finally:
            con.unregister("batch")
        keep = converted["keep"]
        converted = converted.drop_columns(["keep"])
        if keep.null_count or not pc.all(keep).as_py():
            converted = converted.filter(pc.fill_null(keep, False))
        if converted.num_rows:
            yield converted


def with_format_reasons(result: pa.Table, batch: pa.Table) -> pa.Table:
    """Validation's result with the format's own reason and detail where it refused a record.
    Rows match one to one; validation gives them in line order, which the block of a format whose
    records unnest may not be in (the second event of line 1 is numbered after line 2)."""
    if "format_reason" not in batch.column_names:
        return result
    if batch["format_reason"].null_count == batch.num_rows:  # the usual case: none refused
        return result
    if not pc.all(pc.equal(result["source_line"], batch["source_line"])).as_py():
        batch = batch.take(pc.sort_indices(batch["source_line"]))
    refused = pc.is_valid(batch["format_reason"])
    for column, source in (("reason", "format_reason"), ("detail", "format_detail")):
        index = result.schema.get_field_index(column)
        merged = pc.if_else(refused, batch[source], result[column])
        result = result.set_column(index, column, merged)
    return result
