"""pipeline.readers.jsonl: bytes → batches of (source_line, raw, encoding_ok), block by block."""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib

import pytest

from pipeline.readers.jsonl import READ_PIECE, FileStats, read_line_batches


def read_all(data: bytes, name: str = "f.jsonl", block_bytes: int = 64) -> tuple[list, FileStats]:
    stats = FileStats()
    rows = []
    for batch in read_line_batches(io.BytesIO(data), name, block_bytes, stats):
        rows.extend(batch.to_pylist())
    return rows, stats


def test_jsonl_reader_lines_span_blocks_and_keep_numbers():
    lines = [b'{"n": %d, "pad": "%s"}' % (i, b"x" * (i * 7 % 150)) for i in range(40)]
    rows, stats = read_all(b"\n".join(lines) + b"\n", block_bytes=64)
    assert [r["raw"] for r in rows] == [line.decode() + "\n" for line in lines]
    assert [r["source_line"] for r in rows] == list(range(1, 41))
    assert stats.lines == 40


def test_jsonl_reader_line_longer_than_a_block_is_whole():
    long_line = b'{"pad": "' + b"y" * 1000 + b'"}'
    rows, _ = read_all(b"{}\n" + long_line + b"\n{}", block_bytes=64)
    assert [r["raw"] for r in rows] == ["{}\n", long_line.decode() + "\n", "{}"]


def test_jsonl_reader_blank_lines_are_counted_and_skipped():
    rows, stats = read_all(b"{}\n\n  \t\r\n{}\n", block_bytes=64)
    assert [r["source_line"] for r in rows] == [1, 4]
    assert (stats.lines, stats.blank_lines) == (4, 2)


def test_jsonl_reader_flags_invalid_utf8_lines_only():
    rows, _ = read_all('{"u": "é"}\n'.encode() + b'{"u": "\xff"}\n{}\n', block_bytes=1 << 16)
    assert [r["encoding_ok"] for r in rows] == [True, False, True]
    assert rows[0]["raw"] == '{"u": "é"}\n'


def test_jsonl_reader_truncated_gz_gives_whole_lines_before_damage_then_fails():
    lines = [b'{"n": %d}' % i for i in range(200_000)]
    whole = gzip.compress(b"\n".join(lines) + b"\n", mtime=0)
    damaged = whole[: len(whole) * 3 // 4]
    stats = FileStats()
    rows = []
    with pytest.raises((EOFError, zlib.error)):
        for batch in read_line_batches(io.BytesIO(damaged), "f.jsonl.gz", 1 << 20, stats):
            rows.extend(batch.to_pylist())
    assert len(rows) > READ_PIECE // len(lines[-1])  # more than one piece was kept
    assert [r["raw"] for r in rows] == [line.decode() + "\n" for line in lines[: len(rows)]]
    assert stats.sha256 == hashlib.sha256(damaged).hexdigest()
