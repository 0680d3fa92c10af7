"""pipeline.readers.jsonl: bytes → batches of (source_line, raw, encoding_ok), block by block."""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from contextlib import ExitStack
from pathlib import Path

import pytest

from pipeline.readers.jsonl import READ_PIECE, FileStats, read_line_batches


@pytest.fixture(params=["read", "mapped"])
def read_all(request: pytest.FixtureRequest, tmp_path: Path):
    """Lines of some bytes, read from a stream or mapped from a local file: the same answers."""

    def read(data: bytes, name: str = "f.jsonl", block_bytes: int = 64) -> tuple[list, FileStats]:
        stats = FileStats()
        rows = []
        path = tmp_path / name
        path.write_bytes(data)
        with ExitStack() as stack:
            source = (
                stack.enter_context(path.open("rb"))
                if request.param == "mapped"
                else io.BytesIO(data)
            )
            for batch in read_line_batches(source, name, block_bytes, stats):
                rows.extend(batch.to_pylist())
        return rows, stats

    return read


def test_jsonl_reader_lines_span_blocks_and_keep_numbers(read_all):
    lines = [b'{"n": %d, "pad": "%s"}' % (i, b"x" * (i * 7 % 150)) for i in range(40)]
    rows, stats = read_all(b"\n".join(lines) + b"\n", block_bytes=64)
    assert [r["raw"] for r in rows] == [line.decode() + "\n" for line in lines]
    assert [r["source_line"] for r in rows] == list(range(1, 41))
    assert stats.lines == 40


def test_jsonl_reader_line_longer_than_a_block_is_whole(read_all):
    long_line = b'{"pad": "' + b"y" * 1000 + b'"}'
    rows, _ = read_all(b"{}\n" + long_line + b"\n{}", block_bytes=64)
    assert [r["raw"] for r in rows] == ["{}\n", long_line.decode() + "\n", "{}"]


def test_jsonl_reader_blank_lines_are_counted_and_skipped(read_all):
    rows, stats = read_all(b"{}\n\n  \t\r\n{}\n", block_bytes=64)
    assert [r["source_line"] for r in rows] == [1, 4]
    assert (stats.lines, stats.blank_lines) == (4, 2)


def test_jsonl_reader_flags_invalid_utf8_lines_only(read_all):
    rows, _ = read_all('{"u": "é"}\n'.encode() + b'{"u": "\xff"}\n{}\n', block_bytes=1 << 16)
    assert [r["encoding_ok"] for r in rows] == [True, False, True]
    assert rows[0]["raw"] == '{"u": "é"}\n'


@pytest.mark.parametrize("block_bytes", [1 << 20, (1 << 16) + 7, 1000])
def test_jsonl_reader_truncated_gz_gives_whole_lines_before_damage_then_fails(block_bytes: int):
    lines = [b'{"n": %d}' % i for i in range(200_000)]
    whole = gzip.compress(b"\n".join(lines) + b"\n", mtime=0)
    damaged = whole[: len(whole) * 3 // 4]
    stats = FileStats()
    rows = []
    with pytest.raises((EOFError, zlib.error)):
        for batch in read_line_batches(io.BytesIO(damaged), "f.jsonl.gz", block_bytes, stats):
            rows.extend(batch.to_pylist())
    assert len(rows) > READ_PIECE // len(lines[-1])  # more than one piece was kept
    assert [r["raw"] for r in rows] == [line.decode() + "\n" for line in lines[: len(rows)]]
    assert stats.sha256 == hashlib.sha256(damaged).hexdigest()


def test_jsonl_reader_blocks_not_on_page_boundaries_hash_the_whole_file(read_all):
    lines = [b'{"n": %d, "pad": "%s"}' % (i, b"z" * (i * 13 % 300)) for i in range(400)]
    data = b"\n".join(lines) + b"\n  {}\n"
    rows, stats = read_all(data, block_bytes=5_000)
    assert [r["raw"] for r in rows] == [line.decode() + "\n" for line in lines] + ["  {}\n"]
    assert [r["source_line"] for r in rows] == list(range(1, 402))
    assert stats.sha256 == hashlib.sha256(data).hexdigest()
    assert (stats.lines, stats.blank_lines) == (401, 0)


def test_jsonl_reader_empty_file(read_all):
    rows, stats = read_all(b"")
    assert rows == [] and stats.lines == 0
    assert stats.sha256 == hashlib.sha256(b"").hexdigest()


def test_jsonl_reader_mapped_file_that_shrinks_is_an_error_not_a_crash(tmp_path: Path):
    """A landing file cut short while it is read (it should not be: it is complete once
    _SUCCESS is written) raises the OSError that ingest reports as an unreadable file, not
    mmap's ValueError, which would fail the run."""
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"".join(b'{"n": %d, "pad": "%s"}\n' % (i, b"x" * 200) for i in range(2000)))
    with path.open("rb") as source:
        batches = read_line_batches(source, path.name, 1 << 14, FileStats())
        assert next(batches).num_rows
        with path.open("r+b") as writer:
            writer.truncate(1 << 15)
        with pytest.raises(OSError, match="shrank"):
            for _ in batches:
                pass
