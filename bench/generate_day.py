"""Synthetic delivery days of N access events in the canonical format, built with Arrow string
kernels (no Python loop per event) so that a 10M-event day takes seconds to make.

    python bench/generate_day.py --out /tmp/bench-landing --events 10000000
"""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

APPS = 50
USERS = 200_000
FILES_PER_DAY = 4
CHUNK = 1_000_000


def _s(values: np.ndarray, width: int = 0) -> pa.Array:
    text = pc.cast(pa.array(values), pa.string())
    return pc.utf8_lpad(text, width=width, padding="0") if width else text


def _join(*pieces: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*pieces, "")


def _stamp(day: date, seconds: np.ndarray, micros: np.ndarray | None = None) -> pa.Array:
    """RFC 3339 UTC times of `day` at the given seconds (and microseconds)."""
    parts: list[pa.Array | str] = [
        day.isoformat() + "T",
        _s(seconds // 3600, 2),
        ":",
        _s(seconds // 60 % 60, 2),
        ":",
        _s(seconds % 60, 2),
    ]
    if micros is not None:
        parts += [".", _s(micros, 6)]
    return _join(*parts, "Z")


def _write_lines(path: Path, lines: pa.Array) -> None:
    """Lines already end in '\\n': the array's data buffer is the file's content."""
    lines = lines.cast(pa.large_string())
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset :]
    data = lines.buffers()[2]
    with open(path, "ab") as fh:
        fh.write(memoryview(data)[offsets[0] : offsets[len(lines)]])


def access_chunk(rng: np.random.Generator, day: date, start: int, n: int) -> pa.Array:
    index = np.arange(start, start + n)
    users = rng.integers(0, USERS, n)
    apps = users % APPS
    seconds = np.sort(rng.integers(0, 86_400, n))
    micros = rng.integers(0, 1_000_000, n)
    kind = rng.random(n)
    explicit = rng.random(n) < 0.5
    resource = np.where(kind < 0.6, "messages", np.where(kind < 0.8, "contacts", "profile"))
    action = np.where(rng.random(n) < 0.8, "read", np.where(rng.random(n) < 0.5, "write", "delete"))
    method = np.select([action == "read", action == "write"], ["GET", "POST"], "DELETE")
    collection = np.where(resource == "messages", "messages", resource)
    status = np.where(rng.random(n) < 0.97, 200, 404)
    stamp = _stamp(day, seconds, micros)
    head = _join(
        '{"request_id":"r',
        day.strftime("%Y%m%d"),
        "-",
        _s(index, 9),
        '","event_time":"',
        stamp,
        '","app_id":"app-',
        _s(apps, 2),
        '","user_id":"u',
        _s(users, 6),
        '"',
    )
    route = _join(
        ',"method":"',
        pa.array(method),
        '","path":"/v2/me/',
        pa.array(collection),
        "/",
        _s(rng.integers(0, 10**9, n)),
        "?access_token=tok",
        _s(rng.integers(0, 10**9, n)),
        '&page=2"',
    )
    given = _join(',"resource":"', pa.array(resource), '","action":"', pa.array(action), '"')
    routing = pc.if_else(pa.array(explicit), _join(given, route), route)
    tail = _join(
        ',"status":',
        _s(status),
        ',"thread_id":"t',
        _s(rng.integers(0, 50_000, n)),
        '","ip":"10.',
        _s(apps),
        ".",
        _s(rng.integers(0, 255, n)),
        '.1","user_agent":"PartnerSDK/4.2 (Linux)"}\n',
    )
    return _join(head, routing, tail)


def consent_lines(rng: np.random.Generator, day: date, grants: bool) -> pa.Array:
    """The day before: a grant per user (some limited in scope); the day itself: some revokes."""
    users = np.arange(USERS) if grants else rng.choice(USERS, USERS // 50, replace=False)
    n = len(users)
    seconds = rng.integers(0, 86_400, n)
    stamp = _stamp(day, seconds)
    if grants:
        scopes = pc.if_else(
            pa.array(rng.random(n) < 0.9),
            ',"scopes":null',
            ',"scopes":["messages.read","contacts.read"]',
        )
        event = '","event_type":"grant"'
    else:
        scopes, event = pa.array([""] * n), '","event_type":"revoke"'
    return _join(
        '{"event_id":"c',
        day.strftime("%Y%m%d"),
        "-",
        _s(np.arange(n), 7),
        '","event_time":"',
        stamp,
        '","user_id":"u',
        _s(users, 6),
        '","app_id":"app-',
        _s(users % APPS, 2),
        event,
        scopes,
        "}\n",
    )


def registry_text(day: date) -> str:
    rows = ["partner_id,partner_name,app_id,start,end,scopes,grant_ttl_days"]
    for a in range(APPS):
        end = (day - timedelta(days=1)).isoformat() if a % 10 == 9 else ""
        ttl = "90" if a % 5 == 0 else ""
        rows.append(
            f"p{a // 2},Partner {a // 2},app-{a:02d},2020-01-01,{end},"
            f"messages.read messages.write contacts.read profile.read,{ttl}"
        )
    return "\n".join(rows) + "\n"


def generate(out: Path, events: int, day: date = date(2026, 3, 2), seed: int = 1) -> date:
    """Writes the day (and the consent day before it) under `out`; returns the access day."""
    rng = np.random.default_rng(seed)
    before = day - timedelta(days=1)
    for kind, d in (("access", day), ("consent", day), ("consent", before), ("access", before)):
        folder = out / kind / d.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        (folder / "_SUCCESS").touch()
    (out / "partners.csv").write_text(registry_text(day))
    _write_lines(
        out / "consent" / before.isoformat() / "grants.jsonl", consent_lines(rng, before, True)
    )
    _write_lines(
        out / "consent" / day.isoformat() / "revokes.jsonl", consent_lines(rng, day, False)
    )
    per_file = -(-events // FILES_PER_DAY)
    for f in range(FILES_PER_DAY):
        path = out / "access" / day.isoformat() / f"gw-{f}.jsonl"
        first, last = f * per_file, min(events, (f + 1) * per_file)
        for start in range(first, last, CHUNK):
            _write_lines(path, access_chunk(rng, day, start, min(CHUNK, last - start)))
    return day


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(generate(args.out, args.events, seed=args.seed))


if __name__ == "__main__":
    main()
