"""Canonical JSON Lines (plain or .gz) → Arrow batches of raw lines with their line numbers.

Parsing and validation happen in ingest, vectorised; this module only splits bytes into lines,
streaming in blocks so memory stays flat whatever the file's size.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NEWLINE = 10
READ_PIECE = 1 << 16
LINE_BATCH = pa.schema(
    [
        pa.field("source_line", pa.int64()),
        pa.field("raw", pa.large_string()),
        pa.field("encoding_ok", pa.bool_()),
    ]
)


@dataclass
class FileStats:
    """What reading one file saw: its bytes' sha256, lines, and blank lines (not records)."""

    sha256: str = ""
    lines: int = 0
    blank_lines: int = 0
    _hasher: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)


class _HashingReader:
    """Feeds every byte read from the underlying (compressed) file to a hash."""

    def __init__(self, raw: IO[bytes], hasher: hashlib._Hash) -> None:
        self._raw, self._hasher = raw, hasher

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size)
        self._hasher.update(chunk)
        return chunk

    def readinto(self, buffer: bytearray | memoryview) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def readable(self) -> bool:
        return True


def _lines_of_block(block: bytes, first_line: int) -> tuple[pa.Table, int]:
    """Split a block of whole lines without a Python object per line (offsets from numpy).

    Lines keep their line break (JSON parsers ignore it; quarantine trims it). Blank lines are
    not records: they are dropped here and counted.
    """
    data = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(data == NEWLINE) + 1
    if len(block) and (len(ends) == 0 or ends[-1] != len(block)):
        ends = np.append(ends, len(block))  # last line of a file without a final newline
    offsets = np.concatenate([[0], ends]).astype(np.int64)
    count = len(offsets) - 1
    line_numbers = np.arange(first_line, first_line + count, dtype=np.int64)
    try:
        block.decode("utf-8")
        raw = pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(block))
        encoding_ok = pa.array(np.ones(count, dtype=bool))
    except UnicodeDecodeError:  # rare: decode line by line, keeping the bad ones for quarantine
        pieces = [block[offsets[i] : offsets[i + 1]] for i in range(count)]
        raw = pa.array([p.decode("utf-8", "replace") for p in pieces], pa.large_string())
        encoding_ok = pa.array([_is_utf8(p) for p in pieces])
    lines = pa.table([pa.array(line_numbers), raw, encoding_ok], schema=LINE_BATCH)
    blank = pc.utf8_is_space(raw)  # stops at a line's first other character: cheap
    blanks = int(pc.sum(blank).as_py() or 0)
    if blanks:
        lines = lines.filter(pc.invert(blank))
    return lines, blanks


def _is_utf8(piece: bytes) -> bool:
    try:
        piece.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _read_block(stream: IO[bytes], size: int) -> tuple[bytes, Exception | None]:
    """Up to `size` bytes, read 64 KiB at a time so that a damaged (e.g. truncated .gz) file
    still gives the whole lines before the damage (all but the last piece)."""
    pieces, total = [], 0
    try:
        while total < size:
            piece = stream.read(min(READ_PIECE, size - total))
            if not piece:
                break
            pieces.append(piece)
            total += len(piece)
    except (OSError, EOFError, zlib.error) as exc:
        return b"".join(pieces), exc
    return b"".join(pieces), None


def read_line_batches(
    raw_file: IO[bytes], name: str, block_bytes: int, stats: FileStats
) -> Iterator[pa.Table]:
    """Yield tables of (source_line, raw, encoding_ok) for the non-blank lines of one file."""
    source: IO[bytes] = _HashingReader(raw_file, stats._hasher)  # type: ignore[assignment]
    stream: IO[bytes] = (
        gzip.GzipFile(fileobj=source, mode="rb")  # type: ignore[assignment]
        if name.endswith(".gz")
        else source
    )
    carry = b""
    next_line = 1
    try:
        while True:
            chunk, failure = _read_block(stream, block_bytes)
            if failure is not None:  # yield the lines read before the damage, then report it
                chunk = chunk[: chunk.rfind(b"\n") + 1]
            block = carry + chunk
            if chunk:
                cut = block.rfind(b"\n") + 1
                if cut == 0:  # one line longer than a block: keep reading
                    carry = block
                    continue
                block, carry = block[:cut], block[cut:]
            if block:
                lines, blanks = _lines_of_block(block, next_line)
                next_line += lines.num_rows + blanks
                stats.lines += lines.num_rows + blanks
                stats.blank_lines += blanks
                if lines.num_rows:
                    yield lines
            if failure is not None:
                raise failure
            if not chunk:
                break
    finally:  # hash the whole file even when it cannot be decompressed to the end
        with contextlib.suppress(OSError):
            while source.read(1 << 20):
                pass
        stats.sha256 = stats._hasher.hexdigest()
