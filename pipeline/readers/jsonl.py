"""Canonical JSON Lines (plain or .gz) → Arrow batches of raw lines with their line numbers.

Parsing and validation happen in ingest, vectorised; this module only splits bytes into lines,
streaming in blocks so memory stays flat whatever the file's size.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NEWLINE = 10
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


def _lines_of_block(block: bytes, first_line: int) -> pa.Table:
    """Split a block of whole lines without a Python object per line (offsets from numpy)."""
    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == NEWLINE)
    if len(block) and (len(ends) == 0 or ends[-1] != len(block) - 1):
        ends = np.append(ends, len(block))  # last line of a file without a final newline
    offsets = np.concatenate([[0], ends + 1]).astype(np.int64)
    offsets[-1] = min(offsets[-1], len(block))
    count = len(offsets) - 1
    line_numbers = np.arange(first_line, first_line + count, dtype=np.int64)
    try:
        block.decode("utf-8")
        raw = pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(block))
        encoding_ok = pa.array(np.ones(count, dtype=bool))
    except UnicodeDecodeError:  # rare: decode line by line, keeping the bad ones for quarantine
        pieces = [block[offsets[i] : offsets[i + 1]] for i in range(count)]
        ok = []
        for piece in pieces:
            try:
                piece.decode("utf-8")
                ok.append(True)
            except UnicodeDecodeError:
                ok.append(False)
        raw = pa.array([p.decode("utf-8", "replace") for p in pieces], pa.large_string())
        encoding_ok = pa.array(ok)
    raw = pc.utf8_rtrim(raw, characters="\r\n")
    return pa.table([pa.array(line_numbers), raw, encoding_ok], schema=LINE_BATCH)


def read_line_batches(
    raw_file: IO[bytes], name: str, block_bytes: int, stats: FileStats
) -> Iterator[pa.Table]:
    """Yield tables of (source_line, raw, encoding_ok) for the non-blank lines of one file."""
    source: IO[bytes] = _HashingReader(raw_file, stats._hasher)  # type: ignore[assignment]
    stream: IO[bytes] = gzip.GzipFile(fileobj=source, mode="rb") if name.endswith(".gz") else source
    carry = b""
    next_line = 1
    while True:
        chunk = stream.read(block_bytes)
        block = carry + chunk
        if chunk:
            cut = block.rfind(b"\n") + 1
            if cut == 0:  # one line longer than a block: keep reading
                carry = block
                continue
            block, carry = block[:cut], block[cut:]
        if block:
            lines = _lines_of_block(block, next_line)
            next_line += lines.num_rows
            stats.lines += lines.num_rows
            blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(lines["raw"])), 0)
            blanks = int(pc.sum(blank).as_py() or 0)
            if blanks:
                stats.blank_lines += blanks
                lines = lines.filter(pc.invert(blank))
            if lines.num_rows:
                yield lines
        if not chunk:
            break
    while source.read(1 << 20):  # hash what the decompressor did not need (trailing bytes)
        pass
    stats.sha256 = stats._hasher.hexdigest()
