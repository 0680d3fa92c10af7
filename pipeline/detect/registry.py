"""The partnership registry (partners.csv): parsed, validated, one row per app and period."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa

from pipeline.errors import RegistryError
from pipeline.readers.landing import Landing
from pipeline.schema import REGISTRY, REGISTRY_IDENTIFIERS, RFC3339

COLUMNS = ("partner_id", "partner_name", "app_id", "start", "end", "scopes", "grant_ttl_days")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIMESTAMP = re.compile(RFC3339)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # SPEC §2: an identifier holding one is invalid


def _instant(text: str, *, is_end: bool, where: str) -> datetime:
    """A date covers its whole day (UTC): as an end it means the next day's midnight."""
    try:
        if DATE.match(text):
            day = date.fromisoformat(text)
            midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return midnight + timedelta(days=1) if is_end else midnight
        if TIMESTAMP.match(text):
            fraction = re.search(r"\.(\d+)", text)
            if fraction and len(fraction.group(1)) > 6:  # keep microseconds, as events do
                text = text.replace(fraction.group(0), "." + fraction.group(1)[:6])
            return datetime.fromisoformat(text.upper().replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        pass
    raise RegistryError(f"{where}: {text!r} is not a date (YYYY-MM-DD) or an RFC 3339 timestamp")


def parse_registry(text: str, source: str = "partners.csv") -> pa.Table:
    """Validate the whole registry; the first problem found stops it with a clear message."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise RegistryError(f"{source}: missing column(s) {', '.join(missing)}")
    reader.fieldnames = header
    rows = []
    ttl_by_app: dict[str, tuple[float | None, int]] = {}
    partner_by_app: dict[str, tuple[str, int]] = {}
    for row in reader:
        line = reader.line_num
        values = {c: (row.get(c) or "").strip() for c in COLUMNS}

        def where(column: str, line: int = line) -> str:
            return f"{source} line {line}, column {column}"

        for column in ("partner_id", "partner_name", "app_id", "start"):
            if not values[column]:
                raise RegistryError(f"{where(column)}: empty, but required")
        for column in REGISTRY_IDENTIFIERS:
            control = CONTROL.search(values[column])
            if control is not None:
                # named by code point and position: the value itself may be huge or unprintable
                raise RegistryError(
                    f"{where(column)}: holds a control character (U+{ord(control.group()):04X} "
                    f"at character {control.start() + 1}); identifiers may not"
                )
        start = _instant(values["start"], is_end=False, where=where("start"))
        end = _instant(values["end"], is_end=True, where=where("end")) if values["end"] else None
        if end is not None and end <= start:
            raise RegistryError(f"{where('end')}: the period ends before it starts")
        ttl: float | None = None
        if values["grant_ttl_days"]:
            try:
                ttl = float(values["grant_ttl_days"])
            except ValueError:
                ttl = -1.0
            if not ttl >= 0 or ttl == float("inf"):
                raise RegistryError(
                    f"{where('grant_ttl_days')}: {values['grant_ttl_days']!r} is not a number "
                    "of days (or empty for no expiry)"
                )
        app = values["app_id"]
        if app in ttl_by_app and ttl_by_app[app][0] != ttl:
            raise RegistryError(
                f"{where('grant_ttl_days')}: app {app} has grant_ttl_days "
                f"{values['grant_ttl_days'] or '(empty)'} here but a different value on line "
                f"{ttl_by_app[app][1]}; it must be the same on every row of an app"
            )
        if app in partner_by_app and partner_by_app[app][0] != values["partner_id"]:
            raise RegistryError(
                f"{where('partner_id')}: app {app} belongs to partner "
                f"{partner_by_app[app][0]} on line {partner_by_app[app][1]}"
            )
        ttl_by_app.setdefault(app, (ttl, line))
        partner_by_app.setdefault(app, (values["partner_id"], line))
        rows.append(
            {
                "partner_id": values["partner_id"],
                "partner_name": values["partner_name"],
                "app_id": app,
                "period_start": start,
                "period_end": end,
                "period_scopes": values["scopes"].split(),
                "grant_ttl_days": ttl,
                "registry_line": line,
            }
        )
    return pa.Table.from_pylist(rows, schema=REGISTRY)


def load_registry(landing: Landing) -> tuple[pa.Table, str]:
    """The landing zone's registry, validated, and the sha256 of the file it came from."""
    path = landing.registry_path()
    if not landing.fs.exists(path):
        raise RegistryError(f"missing input: registry {path} not found")
    with landing.open(path) as fh:
        data = fh.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RegistryError(f"{path}: not UTF-8 text") from None
    return parse_registry(text, source=path), hashlib.sha256(data).hexdigest()
