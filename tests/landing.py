"""Builds small landing zones on disk from Python records, for tests that need real files."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path
from typing import Any

REGISTRY_HEADER = "partner_id,partner_name,app_id,start,end,scopes,grant_ttl_days"


def line(record: Any) -> str:
    return record if isinstance(record, str) else json.dumps(record)


def write_day(
    root: Path,
    kind: str,
    day: date,
    files: dict[str, list[Any]],
    complete: bool = True,
) -> Path:
    """One delivery day: each file's records (dicts, or raw strings for broken lines)."""
    folder = root / kind / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    for name, records in files.items():
        payload = "".join(line(r) + "\n" for r in records).encode()
        (folder / name).write_bytes(
            gzip.compress(payload, mtime=0) if name.endswith(".gz") else payload
        )
    if complete:
        (folder / "_SUCCESS").touch()
    return folder


def write_registry(root: Path, rows: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "partners.csv"
    path.write_text("\n".join([REGISTRY_HEADER, *rows]) + "\n")
    return path


def access(request_id: str, when: Any, app: str = "app1", user: str = "u1", **extra: Any) -> dict:
    record = {
        "request_id": request_id,
        "event_time": when,
        "app_id": app,
        "user_id": user,
        "resource": "messages",
        "action": "read",
    }
    record.update(extra)
    return record


def consent(
    event_id: str, when: Any, kind: str = "grant", app: str = "app1", user: str = "u1", **extra: Any
) -> dict:
    record = {
        "event_id": event_id,
        "event_time": when,
        "app_id": app,
        "user_id": user,
        "event_type": kind,
    }
    record.update(extra)
    return record
