"""A run killed (SIGKILL) while it writes leaves every earlier partition whole, and the re-run
gives exactly the flags of a clean run."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bench.generate_day import generate

pytestmark = pytest.mark.slow
EVENTS = 300_000


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", *args]


def _snapshot(warehouse: Path) -> dict[str, str]:
    """Every committed partition file and day manifest, with its content hash. (The step
    records under runs/ of steps that did finish before the kill are rewritten, by design.)"""
    return {
        str(p.relative_to(warehouse)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(warehouse.rglob("*"))
        if p.is_file()
        and (p.suffix == ".parquet" or p.name == "manifest.json")
        and ".scratch" not in p.parts  # staging, never read as data
    }


def _kill_when_writing(command: list[str], warehouse: Path, pattern: str) -> None:
    """Start the run and SIGKILL it the moment a file matching `pattern` (a part being written,
    to be committed by a rename when complete) appears in the warehouse."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if any(warehouse.glob(pattern)):
                process.send_signal(signal.SIGKILL)
                break
            if process.poll() is not None:
                pytest.fail("the run finished before it could be killed while writing")
            time.sleep(0.001)
        else:
            pytest.fail("no temporary part appeared in time")
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL


@pytest.mark.parametrize(
    "pattern",
    [
        ".scratch/*/records.parquet",  # ingest staging the access partition
        "flags/date=*/.part-0.parquet.*.tmp",  # detect writing the flags partition
    ],
)
def test_fault_kill_while_writing_keeps_partitions_and_rerun_matches_clean_run(
    tmp_path: Path, pattern: str
):
    landing = tmp_path / "landing"
    day = generate(landing, EVENTS).isoformat()
    clean, faulty = tmp_path / "clean", tmp_path / "faulty"
    for warehouse in (clean, faulty):
        subprocess.run(
            _cli("backfill", "--all", "--landing", str(landing), "--warehouse", str(warehouse)),
            check=True,
            capture_output=True,
        )
    before = _snapshot(faulty)

    _kill_when_writing(
        _cli("run", "--date", day, "--landing", str(landing), "--warehouse", str(faulty)),
        faulty,
        pattern,
    )
    assert _snapshot(faulty) == before  # nothing committed was touched or half-written

    rerun = subprocess.run(
        _cli("run", "--date", day, "--landing", str(landing), "--warehouse", str(faulty)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert not [p for p in faulty.rglob("*.tmp")]  # the re-run cleared the killed run's leftovers
    for name in ("access", "consent", "quarantine", "flags"):
        folder = f"{name}/date={day}"
        for part in sorted((clean / folder).glob("*.parquet")):
            expected = pq.read_table(part)
            actual = pq.read_table(faulty / folder / part.name)
            assert actual.equals(expected), f"{folder}/{part.name} differs from the clean run"
    assert pq.read_table(faulty / f"flags/date={day}/part-0.parquet").num_rows > 0
