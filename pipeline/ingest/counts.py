"""An ingest's counts per input file, which must reconcile: read = valid + quarantined +
duplicates dropped."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FileCounts:
    """One input file's reconciliation: read = valid + quarantined + duplicates_dropped."""

    file: str
    size: int
    version: str = ""
    sha256: str = ""
    lines: int = 0
    blank_lines: int = 0
    read: int = 0
    valid: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    duplicates_dropped: int = 0
    error: str | None = None


@dataclass
class IngestResult:
    kind: str
    day: str
    files: list[FileCounts]
    seconds: float = 0.0

    def totals(self) -> dict[str, int]:
        quarantined = sum(sum(f.quarantined.values()) for f in self.files)
        return {
            "files": len(self.files),
            "read": sum(f.read for f in self.files),
            "valid": sum(f.valid for f in self.files),
            "quarantined": quarantined,
            "duplicates_dropped": sum(f.duplicates_dropped for f in self.files),
        }

    def reasons(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for f in self.files:
            total.update(f.quarantined)
        return dict(sorted(total.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "day": self.day,
            "seconds": round(self.seconds, 3),
            "totals": self.totals(),
            "quarantine_reasons": self.reasons(),
            "files": [asdict(f) for f in self.files],
        }
