"""Where ingest's validation query spends its time: CPU seconds per 1M access lines for the whole
query, for the query with one costly part replaced by a plain column, and for the two JSON
readings alone. One DuckDB thread, best of three runs. Prints figures; it does not pass or fail.

    python bench/validation_costs.py [--lines 200000]

A part's cost is roughly the whole query's figure less the figure without it.
"""

from __future__ import annotations

import argparse
import resource
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate_day import access_chunk
from pipeline.config import Settings
from pipeline.ingest import validation
from pipeline.schema import RFC3339


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _without(sql: str, part: str, plain: str) -> str:
    """The query with one expression replaced; loud if the expression is not there any more."""
    if part not in sql:
        raise SystemExit(f"validation_costs: the query no longer holds {part[:60]!r}")
    return sql.replace(part, plain)


def variants(settings: Settings) -> dict[str, str]:
    kind = validation.ACCESS_KIND
    sql = validation.validation_sql(kind, settings)
    fields = {f.name: f for f in kind.fields}
    route_no, _, _ = validation._route_sql(settings)
    as_text = validation._quote(validation.text_struct(kind))
    paths = validation.field_paths(kind)
    return {
        "whole query": sql,
        "  without path redaction": _without(
            sql, validation.redact_path_sql("v_path", settings), "v_path"
        ),
        "  without the RFC 3339 pattern": _without(
            sql, f"regexp_full_match(s.event_time, {validation._quote(RFC3339)}) AND ", ""
        ),
        "  with a plain time cast": _without(
            sql,
            validation._value(fields["event_time"]),
            "TRY_CAST(s.event_time AS TIMESTAMPTZ)",
        ),
        "  without the route table": _without(sql, route_no, "1"),
        "  without the content hash": _without(sql, validation._content_hash(kind), "0"),
        "JSON values alone (json_transform)": (
            f"SELECT try(json_transform(raw, {as_text})) FROM batch"
        ),
        "JSON types alone (json_type)": f"SELECT json_type(raw, {paths}) FROM batch",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()

    import duckdb

    raw = access_chunk(np.random.default_rng(1), date(2026, 3, 2), 0, args.lines)
    batch = pa.table(
        {
            "source_line": pa.array(np.arange(1, args.lines + 1), pa.int64()),
            "raw": raw,
            "encoding_ok": pa.array(np.ones(args.lines, dtype=bool)),
        }
    )
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.execute("SET TimeZone = 'UTC'")
    con.register("batch", batch)
    print(f"{'':40s} CPU s per 1M lines ({args.lines:,} lines, one thread)")
    for name, sql in variants(Settings()).items():
        best = float("inf")
        for _ in range(3):
            started = _cpu_seconds()
            con.sql(sql).to_arrow_table()
            best = min(best, _cpu_seconds() - started)
        print(f"{name:40s} {best * 1_000_000 / args.lines:6.2f}")


if __name__ == "__main__":
    main()
