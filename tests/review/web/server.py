"""The standalone review UI as a user starts it: `access-audit serve` in a subprocess, with a
TOML config naming the store, warehouse and logins."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.config import PROJECT_ROOT, ReviewUser
from tests.nightly_runs import free_port

VENV_BIN = Path(sys.executable).parent
STARTUP_SECONDS = 60


def write_config(
    path: Path, review_db: str, warehouse: Path, users: tuple[ReviewUser, ...]
) -> Path:
    lines = [
        f'review_db = "{review_db}"',
        f'warehouse = "{warehouse}"',
        f'landing = "{PROJECT_ROOT / "sample_logs"}"',
    ]
    for user in users:
        lines += [
            "[[review_users]]",
            f'name = "{user.name}"',
            f'password_hash = "{user.password_hash}"',
            f'role = "{user.role}"',
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def serving(config: Path, log: Path) -> Iterator[str]:
    """`access-audit serve` on a free port until the block ends; yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESS_AUDIT_")}
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(VENV_BIN / "access-audit"), "serve", "--config", str(config), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, f"serve exited: {log.read_text()}"
            try:
                with urllib.request.urlopen(f"{url}/login", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, f"serve did not answer: {log.read_text()}"
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
