"""The model commands' errors: one line, exit 2 for usage, 1 for a failed step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env_free = ["--landing", str(tmp_path / "landing"), "--warehouse", str(tmp_path / "w")]
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args, *env_free],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["train", "--end", "2026-03-09", "--window-days", "0"], 2,
         "access-audit: error: --window-days must be at least 1, not 0"),
        (["train", "--end", "2026-03-09", "--window-days", "3"], 1,
         "access-audit: train failed: no features in the window 2026-03-07 .. 2026-03-09: "
         "run those days first"),
        (["evaluate", "--start", "2026-03-10", "--end", "2026-03-09"], 2,
         "access-audit: error: --end 2026-03-09 is before --start 2026-03-10"),
        (["evaluate", "--start", "2026-03-10", "--end", "2026-03-10"], 1,
         "access-audit: evaluate failed: no anomaly scores for 2026-03-10 .. 2026-03-10: "
         "train, then run"),
        (["score", "--start", "2026-03-10"], 2, "the following arguments are required: --end"),
    ],
)  # fmt: skip
def test_cli_model_commands_fail_with_one_line(
    tmp_path: Path, args: list[str], code: int, message: str
):
    result = _cli(tmp_path, *args)
    assert result.returncode == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert message in lines[0]
    assert "Traceback" not in result.stderr
