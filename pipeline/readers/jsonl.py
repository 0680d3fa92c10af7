"""Canonical JSON Lines (plain or .gz) → Arrow batches of raw lines with their line numbers.

Parsing and validation happen in ingest, vectorised; this module only splits bytes into lines,
streaming in blocks so memory stays flat whatever the file's size.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import mmap
import os
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NEWLINE = 10
OPEN_BRACE = ord("{")
READ_PIECE = 1 << 16
NEWLINE_SCAN = 1 << 22
# No record is this long: a line past it (a gz bomb of zeros, a file with no line breaks) stops
# the file as unreadable instead of filling memory.
MAX_LINE_BYTES = 1 << 26
BOM = b"\xef\xbb\xbf"
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
        readinto = getattr(self._raw, "readinto", None)
        if readinto is None:
            chunk = self.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)
        count: int = readinto(buffer)
        self._hasher.update(memoryview(buffer)[:count])
        return count

    def readable(self) -> bool:
        return True


def _lines_of_block(block: np.ndarray, first_line: int) -> tuple[pa.Table, int]:
    """Split a block of whole lines (bytes in a numpy array, which the lines then share) without
    a Python object per line (offsets from numpy).

    Lines keep their line break (JSON parsers ignore it; quarantine trims it). Blank lines are
    not records: they are dropped here and counted.
    """
    ends = _line_ends(block)
    if len(block) and (len(ends) == 0 or ends[-1] != len(block)):
        ends = np.append(ends, len(block))  # last line of a file without a final newline
    offsets = np.concatenate([[0], ends]).astype(np.int64)
    count = len(offsets) - 1
    line_numbers = np.arange(first_line, first_line + count, dtype=np.int64)
    if not len(block) or block.max() < 0x80:  # ASCII, the usual case, is valid UTF-8
        raw = pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(block))
        encoding_ok = pa.array(np.ones(count, dtype=bool))
    else:
        raw, encoding_ok = _decoded_lines(block.tobytes(), offsets)
    lines = pa.table([pa.array(line_numbers), raw, encoding_ok], schema=LINE_BATCH)
    if count and (block[offsets[:-1]] == OPEN_BRACE).all():  # the usual case: none is blank
        return lines, 0
    blank = pc.utf8_is_space(raw)  # stops at a line's first other character: cheap
    blanks = int(pc.sum(blank).as_py() or 0)
    if blanks:
        lines = lines.filter(pc.invert(blank))
    return lines, blanks


def _line_ends(block: np.ndarray) -> np.ndarray:
    """Offsets just after each line break, found a slice at a time: a mask of the whole block
    would be a fresh allocation as large as the block, paid for again in page faults."""
    pieces = [
        np.flatnonzero(block[start : start + NEWLINE_SCAN] == NEWLINE) + (start + 1)
        for start in range(0, len(block), NEWLINE_SCAN)
    ]
    return np.concatenate(pieces) if pieces else np.empty(0, dtype=np.int64)


def _decoded_lines(block: bytes, offsets: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """The lines as text, and whether each is valid UTF-8."""
    count = len(offsets) - 1
    try:
        block.decode("utf-8")
        raw = pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(block))
        return raw, pa.array(np.ones(count, dtype=bool))
    except UnicodeDecodeError:  # rare: decode line by line, keeping the bad ones for quarantine
        pieces = [block[offsets[i] : offsets[i + 1]] for i in range(count)]
        raw = pa.array([p.decode("utf-8", "replace") for p in pieces], pa.large_string())
        return raw, pa.array([_is_utf8(p) for p in pieces])


def _is_utf8(piece: bytes) -> bool:
    try:
        piece.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _fill(stream: IO[bytes], buffer: memoryview) -> tuple[int, Exception | None]:
    """Read into `buffer` until it is full or the file ends, 64 KiB at a time so that a damaged
    (e.g. truncated .gz) file still gives the whole lines before the damage (all but the last
    piece). Returns the bytes read and the error that stopped the reading, if any."""
    total = 0
    try:
        while total < len(buffer):
            count = stream.readinto(buffer[total : total + READ_PIECE])  # type: ignore[attr-defined]
            if not count:
                break
            total += count
    except (OSError, EOFError, zlib.error) as exc:
        return total, exc
    return total, None


def read_line_batches(
    raw_file: IO[bytes], name: str, block_bytes: int, stats: FileStats
) -> Iterator[pa.Table]:
    """Yield tables of (source_line, raw, encoding_ok) for the non-blank lines of one file.

    A local uncompressed file is mapped into memory block by block; any other is read.
    """
    fileno = None if name.endswith(".gz") else _regular_file_number(raw_file)
    if fileno is None:
        return _read_blocks(raw_file, name, block_bytes, stats)
    return _mapped_blocks(fileno, block_bytes, stats)


def _regular_file_number(raw_file: IO[bytes]) -> int | None:
    try:
        fileno = raw_file.fileno()
        return fileno if stat.S_ISREG(os.fstat(fileno).st_mode) else None
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None


def _mapped_blocks(fileno: int, block_bytes: int, stats: FileStats) -> Iterator[pa.Table]:
    """Each block of whole lines is its own read-only mapping of the file, which its lines
    share: no copy into the process and no buffer to clear, and the block's memory goes when
    its lines do."""
    size = os.fstat(fileno).st_size
    start, next_line = 0, 1
    while start < size:
        if os.fstat(fileno).st_size < size:  # reported as an unreadable file, the run goes on
            raise OSError(f"the file shrank from {size} bytes while it was read")
        offset = start - start % mmap.ALLOCATIONGRANULARITY
        reach = block_bytes
        while True:  # a block ends after its last line break (or at the file's end)
            length = min(size, start + reach) - offset
            mapped = mmap.mmap(fileno, length, access=mmap.ACCESS_READ, offset=offset)
            end = offset + length
            if end == size:
                break
            cut = mapped.rfind(b"\n", start - offset) + 1
            if cut:
                end = offset + cut
                break
            if reach > MAX_LINE_BYTES:
                raise OSError(
                    f"line {next_line} or one soon after is longer than {MAX_LINE_BYTES} bytes"
                )
            reach *= 2  # one line longer than a block: map more
        block = np.frombuffer(mapped, np.uint8)[start - offset : end - offset]
        stats._hasher.update(block.data)
        if start == 0 and bytes(block[:3]) == BOM:  # an encoding mark, not part of line 1
            block = block[3:]
        lines, blanks = _lines_of_block(block, next_line)
        next_line += lines.num_rows + blanks
        stats.lines += lines.num_rows + blanks
        stats.blank_lines += blanks
        if lines.num_rows:
            yield lines
        start = end
    stats.sha256 = stats._hasher.hexdigest()


def _read_blocks(
    raw_file: IO[bytes], name: str, block_bytes: int, stats: FileStats
) -> Iterator[pa.Table]:
    """Each block is read into a fresh buffer that its lines then share (no copy of the text);
    an unfinished last line moves to the head of the next block's buffer."""
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
            buffer = bytearray(len(carry) + block_bytes)
            buffer[: len(carry)] = carry
            read, failure = _fill(stream, memoryview(buffer)[len(carry) :])
            end = len(carry) + read
            ended = failure is None and read < block_bytes  # a short read is the file's end
            if failure is not None:  # keep the whole lines read before the damage, then report
                end = buffer.rfind(b"\n", 0, end) + 1  # (an unfinished line carried over is not)
            block_end = end
            if failure is None and not ended:
                block_end = buffer.rfind(b"\n", 0, end) + 1
                if block_end == 0:  # one line longer than a block: keep reading
                    carry = bytes(buffer[:end])
                    if len(carry) > MAX_LINE_BYTES:
                        raise OSError(f"line {next_line} is longer than {MAX_LINE_BYTES} bytes")
                    continue
            if block_end:
                skip = 3 if next_line == 1 and buffer.startswith(BOM) else 0  # encoding mark
                lines, blanks = _lines_of_block(
                    np.frombuffer(buffer, np.uint8, block_end - skip, skip), next_line
                )
                next_line += lines.num_rows + blanks
                stats.lines += lines.num_rows + blanks
                stats.blank_lines += blanks
                if lines.num_rows:
                    yield lines
            if failure is not None:
                raise failure
            if ended:
                break
            carry = bytes(buffer[block_end:end])
    finally:  # hash the whole file even when it cannot be decompressed to the end
        with contextlib.suppress(OSError):
            while source.read(1 << 20):
                pass
        stats.sha256 = stats._hasher.hexdigest()
