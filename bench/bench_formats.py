"""Benchmark: ingest cost per access event of each real format beside the canonical format, on
days of the same events (apps, users, times) written in each. Each format's ingest runs in its own
process; CPU seconds (user + system, all threads) count only the ingest. Prints figures and the
ratio to canonical (target: at most 1.5x) and each child's own peak resident memory (VmHWM,
its consent set-up included); it does not pass or fail.

    python bench/bench_formats.py [--events 1000000] [--work /tmp/access-audit-bench-formats]
                                  [--formats canonical google_workspace_token ...] [--keep]

An M365 record lists one to three messages, so its day holds fewer records than events; the
cost is per event (canonical access row) in every format.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate_day import APPS, CHUNK, FILES_PER_DAY, USERS, _join, _s, _stamp, _write_lines
from bench.generate_day import generate as generate_canonical
from bench.run_bench import (
    _cpu_seconds,  # noqa: F401  (the same CPU clock as run_bench)
    _Stopwatch,
)

DAY = date(2026, 3, 2)
FORMATS = (
    "canonical",
    "google_workspace_token",
    "m365_mail_items_accessed",
    "graph_activity",
    "gateway",
)
SOURCES = {
    "google_workspace_token": '[[sources]]\nname = "gws"\nkind = "access"\n'
    'format = "google_workspace_token"\n',
    "m365_mail_items_accessed": '[[sources]]\nname = "m365"\nkind = "access"\n'
    'format = "m365_mail_items_accessed"\n',
    "graph_activity": '[[sources]]\nname = "graph"\nkind = "access"\nformat = "graph_activity"\n',
    "gateway": '[[sources]]\nname = "gateway"\nkind = "access"\nformat = "gateway"\n'
    'pattern = "combined_audit"\n',
}
FOLDERS = {"google_workspace_token": "gws", "m365_mail_items_accessed": "m365"}
FOLDERS |= {"graph_activity": "graph", "gateway": "gateway"}
CONSENT = '[[sources]]\nname = "consent"\nkind = "consent"\nformat = "canonical"\n'


def _columns(rng: np.random.Generator, start: int, n: int) -> dict:
    users = rng.integers(0, USERS, n)
    action = np.where(rng.random(n) < 0.8, "read", np.where(rng.random(n) < 0.5, "write", "delete"))
    return {
        "index": np.arange(start, start + n),
        "users": users,
        "apps": users % APPS,
        "seconds": np.sort(rng.integers(0, 86_400, n)),
        "micros": rng.integers(0, 1_000, n) * 1000,
        "action": action,
        "message": rng.integers(0, 10**9, n),
        "status": np.where(rng.random(n) < 0.97, 200, 404),
    }


def google_chunk(rng: np.random.Generator, start: int, n: int) -> pa.Array:
    c = _columns(rng, start, n)
    verb = np.select([c["action"] == "read", c["action"] == "write"], ["get", "send"], "delete")
    return _join(
        '{"kind":"admin#reports#activity","id":{"time":"', _stamp(DAY, c["seconds"], c["micros"]),
        '","uniqueQualifier":"', _s(c["index"], 12),
        '","applicationName":"token","customerId":"C03demo"},"actor":{"email":"u',
        _s(c["users"], 6),
        '","profileId":"1', _s(c["users"], 19), '"},"ipAddress":"10.1.', _s(c["apps"]),
        '.1","events":[{"type":"auth","name":"activity","parameters":[{"name":"api_name",'
        '"value":"gmail"},{"name":"method_name","value":"gmail.users.messages.', pa.array(verb),
        '"},{"name":"client_id","value":"app-', _s(c["apps"], 2),
        '"},{"name":"num_response_bytes","intValue":"2048"},{"name":"product_bucket",'
        '"value":"GMAIL"},{"name":"client_type","value":"WEB"}]}]}\n',
    )  # fmt: skip


def m365_chunk(rng: np.random.Generator, start: int, n: int) -> tuple[pa.Array, int]:
    """Records of one to three messages (Bind), 3% folder syncs; returns them and their events."""
    c = _columns(rng, start, n)
    items = rng.integers(1, 4, n)
    sync = rng.random(n) < 0.03
    items = np.where(sync, 1, items)
    one = _join('{"InternetMessageId":"<m', _s(c["message"]), '@contoso.example>"}')
    two = _join(one, ',{"InternetMessageId":"<n', _s(c["message"]), '@contoso.example>"}')
    three = _join(two, ',{"InternetMessageId":"<o', _s(c["message"]), '@contoso.example>"}')
    listed = pc.if_else(pa.array(items == 1), one, pc.if_else(pa.array(items == 2), two, three))
    folders = pc.if_else(
        pa.array(sync),
        pa.scalar('[{"Path":"\\\\Inbox"}]'),
        _join('[{"Path":"\\\\Inbox","FolderItems":[', listed, "]}]"),
    )
    stamp = _stamp(DAY, c["seconds"])
    lines = _join(
        '{"CreationTime":"', pc.utf8_slice_codeunits(stamp, 0, 19), '","Id":"rec-',
        _s(c["index"], 12), '","Operation":"MailItemsAccessed","OrganizationId":'
        '"b662313f-14fc-43a2-9a7a-d2e27f4f3478","RecordType":50,"ResultStatus":"Succeeded",'
        '"UserType":0,"Version":1,"Workload":"Exchange","UserId":"u', _s(c["users"], 6),
        '","AppId":"app-', _s(c["apps"], 2), '","ClientAppId":"app-', _s(c["apps"], 2),
        '","ClientIPAddress":"10.2.', _s(c["apps"]), '.1","ClientInfoString":"Client=REST;",'
        '"ExternalAccess":false,"InternalLogonType":0,"LogonType":0,"MailboxOwnerUPN":"u',
        _s(c["users"], 6), '","OperationProperties":[{"Name":"MailAccessType","Value":"',
        pc.if_else(pa.array(sync), pa.scalar("Sync"), pa.scalar("Bind")),
        '"},{"Name":"IsThrottled","Value":"False"}],"SessionId":"s', _s(c["index"]),
        '","Folders":', folders, ',"OperationCount":', _s(items), "}\n",
    )  # fmt: skip
    return lines, int(items.sum())


def graph_chunk(rng: np.random.Generator, start: int, n: int) -> pa.Array:
    c = _columns(rng, start, n)
    method = np.select([c["action"] == "read", c["action"] == "write"], ["GET", "PATCH"], "DELETE")
    return _join(
        '{"TimeGenerated":"', _stamp(DAY, c["seconds"], c["micros"]), '","RequestId":"g',
        _s(c["index"], 12), '","OperationId":"o', _s(c["index"]), '","AppId":"app-',
        _s(c["apps"], 2), '","UserId":"u', _s(c["users"], 6), '","IPAddress":"10.3.',
        _s(c["apps"]), '.1","UserAgent":"PartnerSDK/4.2","RequestMethod":"', pa.array(method),
        '","RequestUri":"https://graph.microsoft.com/v1.0/users/u', _s(c["users"], 6),
        "/messages/AAMk", _s(c["message"]), '","ResponseStatusCode":', _s(c["status"]),
        ',"ResponseSizeBytes":2048,"DurationMs":35,"Scopes":"Mail.Read offline_access",'
        '"AadTenantId":"b662313f-14fc-43a2-9a7a-d2e27f4f3478"}\n',
    )  # fmt: skip


def gateway_chunk(rng: np.random.Generator, start: int, n: int) -> pa.Array:
    c = _columns(rng, start, n)
    method = np.select([c["action"] == "read", c["action"] == "write"], ["GET", "POST"], "DELETE")
    hours, minutes, seconds = c["seconds"] // 3600, c["seconds"] // 60 % 60, c["seconds"] % 60
    stamp = _join(
        DAY.strftime("%d/%b/%Y:"), _s(hours, 2), ":", _s(minutes, 2), ":", _s(seconds, 2), " +0000"
    )
    return _join(
        "10.4.", _s(c["apps"]), ".1 - - [", stamp, '] "', pa.array(method), " /v2/me/messages/",
        _s(c["message"]), "?access_token=tok", _s(c["index"]), ' HTTP/1.1" ', _s(c["status"]),
        ' 512 "-" "PartnerSDK/4.2 (Linux)" r', _s(c["index"], 12), ' "app-', _s(c["apps"], 2),
        '" "u', _s(c["users"], 6), '"\n',
    )  # fmt: skip


CHUNKS = {"google_workspace_token": google_chunk, "graph_activity": graph_chunk}
CHUNKS |= {"gateway": gateway_chunk}


def generate(work: Path, events: int) -> None:
    """The canonical day (with its consent and registry), then the same volume in each format."""
    landing = work / "landing"
    generate_canonical(landing, events, DAY)
    rng = np.random.default_rng(2)
    per_file = -(-events // FILES_PER_DAY)
    for fmt, folder in FOLDERS.items():
        day_folder = landing / folder / DAY.isoformat()
        day_folder.mkdir(parents=True, exist_ok=True)
        (day_folder / "_SUCCESS").touch()
        suffix = ".log" if fmt == "gateway" else ".jsonl"
        for f in range(FILES_PER_DAY):
            path = day_folder / f"part-{f}{suffix}"
            written = 0
            while written < per_file:
                n = min(CHUNK, per_file - written)
                if fmt == "m365_mail_items_accessed":  # records of ~2 events: as many events
                    lines, count = m365_chunk(rng, f * per_file + written, max(1, n // 2))
                else:
                    lines, count = CHUNKS[fmt](rng, f * per_file + written, n), n
                _write_lines(path, lines)
                written += count
        (work / f"{fmt}.toml").write_text(SOURCES[fmt] + CONSENT)


def _peak_rss_mb() -> float:
    """This process's own peak resident memory. Not ru_maxrss: Linux carries the parent's peak
    into a child's (its memory map's high-water mark at the fork, kept over the exec), and the
    parent here has just generated the days."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise OSError("no VmHWM in /proc/self/status")


def phase(work: Path, fmt: str) -> dict:
    from datetime import timedelta

    from pipeline.config import load_settings
    from pipeline.steps import ingest_access, ingest_consent

    config = None if fmt == "canonical" else str(work / f"{fmt}.toml")
    settings = load_settings(
        config, env={}, landing=str(work / "landing"), warehouse=str(work / f"wh-{fmt}")
    )
    ingest_consent(DAY - timedelta(days=1), settings)
    ingest_consent(DAY, settings)
    watch = _Stopwatch()
    summary = ingest_access(DAY, settings)
    figures = watch.figures(events=summary["totals"]["read"], valid=summary["totals"]["valid"])
    return figures | {"peak_rss_mb": _peak_rss_mb()}


def _run(work: Path, fmt: str) -> dict:
    child = subprocess.run(
        [sys.executable, __file__, "--phase", fmt, "--work", str(work)],
        stdout=subprocess.PIPE,
        check=False,
    )
    if child.returncode != 0:
        raise SystemExit(f"bench of {fmt} failed")
    result: dict = json.loads(child.stdout.decode().strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/access-audit-bench-formats"))
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--keep", action="store_true", help="reuse and keep the generated days")
    parser.add_argument("--phase", choices=FORMATS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:  # a child: --work is the day's folder
        print(json.dumps(phase(args.work, args.phase)))
        return
    work = args.work / f"n{args.events}"
    if not (args.keep and (work / "landing").is_dir()):
        subprocess.run(["rm", "-rf", str(work)], check=True)
        generate(work, args.events)
    print(
        f"{'format':<26} {'events':>11} {'seconds':>8} {'CPU s':>7} {'CPU µs/event':>13} "
        f"{'x canonical':>12} {'peak RSS MB':>12}"
    )
    canonical = None
    for fmt in ("canonical", *[f for f in args.formats if f != "canonical"]):
        result = _run(work, fmt)
        per_event = result["cpu_seconds"] / result["events"] * 1e6
        canonical = canonical or per_event
        print(
            f"{fmt:<26} {result['events']:>11,} {result['seconds']:>8.1f} "
            f"{result['cpu_seconds']:>7.1f} {per_event:>13.2f} {per_event / canonical:>12.2f} "
            f"{result['peak_rss_mb']:>12,.0f}",
            flush=True,
        )
    if not args.keep:
        subprocess.run(["rm", "-rf", str(work)], check=True)


if __name__ == "__main__":
    main()
