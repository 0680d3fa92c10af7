"""A run killed (SIGKILL) while it writes leaves every earlier partition whole, and the re-run
gives exactly the flags of a clean run: on local disk, and with the warehouse on S3."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from bench.generate_day import generate
from pipeline.config import load_settings
from pipeline.warehouse import Warehouse
from tests.s3 import SeaweedFS, s3_env, seaweedfs  # noqa: F401 (fixtures)

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
        # staging (.scratch/, a detection's .staged-<run>/) and temporaries are never data
        and not any(part.startswith(".") for part in p.relative_to(warehouse).parts)
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
        # detect writing the flags (one unit: its piece, which becomes the part by a rename)
        "flags/date=*/.staged-*/.shard-0-of-1.parquet.*.tmp",
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


S3_EVENTS = 200_000


def _s3_snapshot(fs: Any, root: str) -> dict[str, str]:
    """Every committed part and day manifest on S3, with its ETag (staged pieces and hidden
    temporaries are not data; step records under runs/ are rewritten by design)."""
    return {
        path: str(info.get("ETag"))
        for path, info in fs.find(root, detail=True).items()
        if (path.endswith(".parquet") or path.endswith("/manifest.json"))
        and "/." not in path.removeprefix(root)
    }


@pytest.mark.timeout(900)
def test_fault_on_s3_worker_killed_mid_detection_keeps_partitions_and_retry_matches(
    s3_env: SeaweedFS,  # noqa: F811 (the fixture)
    tmp_path: Path,
):
    """A detection with 4 units on S3 is killed (SIGKILL) once some units have staged their
    flags and before the day's flags are committed: every committed object is untouched (the
    day's old flags included), and the retry gives the rows of a clean run."""
    local_landing = tmp_path / "landing"
    day = generate(local_landing, S3_EVENTS).isoformat()
    bucket = s3_env.bucket().removeprefix("s3://")
    fs = s3_env.filesystem()
    fs.put(str(local_landing), f"{bucket}/landing", recursive=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ACCESS_AUDIT_", "AWS_"))},
        **s3_env.env,
        "ACCESS_AUDIT_DETECT_SHARDS": "4",
        "ACCESS_AUDIT_REVIEW_DB": f"sqlite:///{tmp_path / 'review.db'}",
        "ACCESS_AUDIT_MODELS_DIR": str(tmp_path / "no-models"),
    }
    where = ("--landing", f"s3://{bucket}/landing")
    clean, faulty = f"{bucket}/clean", f"{bucket}/faulty"
    for warehouse in (clean, faulty):
        done = subprocess.run(
            _cli("backfill", "--all", *where, "--warehouse", f"s3://{warehouse}"),
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    before = _s3_snapshot(fs, faulty)
    assert f"{faulty}/flags/date={day}/part-0.parquet" in before

    rerun = _cli("run", "--date", day, *where, "--warehouse", f"s3://{faulty}")
    process = subprocess.Popen(rerun, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    staged = f"{faulty}/flags/date={day}/.staged-*/shard-*.parquet"
    try:
        deadline = time.monotonic() + 600
        while not fs.glob(staged):
            assert process.poll() is None, "the run finished before a unit staged its flags"
            assert time.monotonic() < deadline, "no unit staged its flags in time"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert _s3_snapshot(fs, faulty) == before  # nothing committed was touched or half-written

    retry = subprocess.run(rerun, env=env, capture_output=True, text=True, check=False)
    assert retry.returncode == 0, retry.stderr
    # the retry's commit removed every staged piece (SeaweedFS may keep the emptied folders)
    assert not fs.glob(f"{faulty}/flags/date={day}/.staged-*/*")
    settings = load_settings(env={})
    for name in ("access", "consent", "quarantine", "flags"):
        expected = Warehouse(f"s3://{clean}", settings).read_partition(
            name, date.fromisoformat(day)
        )
        actual = Warehouse(f"s3://{faulty}", settings).read_partition(name, date.fromisoformat(day))
        assert actual.equals(expected), f"{name} of {day} differs from the clean run"
        assert name != "flags" or actual.num_rows > 0
