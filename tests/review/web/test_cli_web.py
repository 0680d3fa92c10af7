"""`access-audit hash-password` and `serve` as a user meets them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from pipeline.cli import main

ACCESS_AUDIT = str(Path(sys.executable).parent / "access-audit")


def test_hash_password_reads_stdin_and_prints_a_verifiable_argon2_hash() -> None:
    done = subprocess.run(
        [ACCESS_AUDIT, "hash-password"],
        input="correct horse battery\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout.strip()
    assert printed.startswith("$argon2id$")
    assert PasswordHasher().verify(printed, "correct horse battery")
    assert "correct horse" not in done.stderr


def test_hash_password_refuses_an_empty_password() -> None:
    done = subprocess.run(
        [ACCESS_AUDIT, "hash-password"], input="\n", capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "access-audit: error: empty password"


def test_serve_without_logins_says_which_setting_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "empty.toml"
    config.write_text(f'review_db = "sqlite:///{tmp_path / "r.db"}"\n')
    assert main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "no review_users in the settings" in err and "hash-password" in err
