"""The landing zone's layout: which files a delivery day holds, and whether it is complete."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from pipeline.storage import filesystem

if TYPE_CHECKING:
    from pipeline.config import Settings

SUCCESS_MARKER = "_SUCCESS"
RECORD_SUFFIXES = (".jsonl", ".jsonl.gz")
KINDS = ("access", "consent")


@dataclass(frozen=True)
class LandingFile:
    """One delivered file: its name within the day folder, full path, size in bytes, and a
    version stamp (ETag or modification time) that changes when the file is rewritten."""

    name: str
    path: str
    size: int
    version: str = ""


class Landing:
    """A landing zone at a local path or an fsspec URL (s3://bucket/prefix); `settings` give
    an S3 endpoint."""

    def __init__(self, root: str, settings: Settings | None = None) -> None:
        self.fs, self.root = filesystem(root, settings)
        self.url = root

    def where(self, kind: str, day: date, name: str = "") -> str:
        """How a message names a place in the landing zone: `<url>/<kind>/<day>[/<name>]`."""
        return "/".join(p for p in (self.url.rstrip("/"), kind, day.isoformat(), name) if p)

    def day_folder(self, kind: str, day: date) -> str:
        return posixpath.join(self.root, kind, day.isoformat())

    def is_complete(self, kind: str, day: date) -> bool:
        return bool(self.fs.exists(posixpath.join(self.day_folder(kind, day), SUCCESS_MARKER)))

    def files(
        self, kind: str, day: date, suffixes: tuple[str, ...] | None = None
    ) -> list[LandingFile]:
        """The day's record files (ending in one of `suffixes`, canonical JSON Lines unless
        told) in name order (the order the spec reads them in). `kind` is the folder."""
        folder = self.day_folder(kind, day)
        if not self.fs.isdir(folder):
            return []
        entries: list[dict[str, Any]] = self.fs.ls(folder, detail=True)
        found = [
            LandingFile(
                posixpath.basename(e["name"]),
                e["name"],
                int(e.get("size") or 0),
                str(e.get("ETag") or e.get("mtime") or e.get("LastModified") or ""),
            )
            for e in entries
            if e.get("type") == "file" and e["name"].endswith(suffixes or RECORD_SUFFIXES)
        ]
        return sorted(found, key=lambda f: f.name)

    def days(self, kind: str) -> list[date]:
        """Every delivery day folder of `kind`, oldest first (non-date folder names are ignored)."""
        folder = posixpath.join(self.root, kind)
        if not self.fs.isdir(folder):
            return []
        days = []
        for entry in self.fs.ls(folder, detail=False):
            try:
                days.append(date.fromisoformat(posixpath.basename(entry.rstrip("/"))))
            except ValueError:
                continue
        return sorted(days)

    def open(self, path: str) -> Any:
        return self.fs.open(path, "rb")

    def registry_path(self) -> str:
        return posixpath.join(self.root, "partners.csv")
