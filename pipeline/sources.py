"""The sources of a record kind (SPEC §2 "Sources in the formats platforms really export"): which
folders of the landing zone hold a delivery day's files, in which format, and whether the day is
complete. With no `[[sources]]` declared, the canonical `access/` and `consent/` folders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pipeline.config import Settings, Source
from pipeline.readers.landing import SUCCESS_MARKER, Landing, LandingFile

# Real formats are exported as JSON Lines or as log files (gateways).
FORMAT_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".log", ".log.gz")


@dataclass(frozen=True)
class SourceFile(LandingFile):
    """A delivered file and the source it belongs to."""

    source: Source | None = None


def sources_of(settings: Settings, kind: str) -> list[Source]:
    """The sources that give records of `kind` (access or consent), in declaration order."""
    if not settings.sources:
        return [Source(kind, kind, "canonical", kind)]
    return [s for s in settings.sources if s.gives(kind)]


def day_files(landing: Landing, settings: Settings, kind: str, day: date) -> list[SourceFile]:
    """The day's files of every source of `kind`: by source, then in name order. Names carry the
    source (`<source>/<file>`) once sources are declared, so two sources' files never clash."""
    found = []
    for source in sources_of(settings, kind):
        suffixes = None if source.format == "canonical" else FORMAT_SUFFIXES
        for f in landing.files(source.folder, day, suffixes):
            name = f"{source.name}/{f.name}" if settings.sources else f.name
            found.append(SourceFile(name, f.path, f.size, f.version, source))
    return found


def missing_markers(landing: Landing, settings: Settings, kind: str, day: date) -> list[str]:
    """`<folder>/<day>/_SUCCESS` of each source of `kind` that is not there yet."""
    return [
        f"{s.folder}/{day.isoformat()}/{SUCCESS_MARKER}"
        for s in sources_of(settings, kind)
        if not landing.is_complete(s.folder, day)
    ]


def delivery_days(landing: Landing, settings: Settings, kind: str) -> list[date]:
    """Every day that some source of `kind` delivered, oldest first."""
    return sorted({d for s in sources_of(settings, kind) for d in landing.days(s.folder)})
