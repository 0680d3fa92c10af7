"""The plugin's session secret: one for every API worker, derived from Airflow's JWT key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.review.airflow_plugin import _session_secret


@pytest.fixture
def airflow_key(monkeypatch: pytest.MonkeyPatch):
    def use(secret: str = "", private_key_path: str = "") -> None:
        monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secret)
        monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_PRIVATE_KEY_PATH", private_key_path)

    return use


def test_configured_secret_wins(airflow_key) -> None:
    airflow_key(secret="airflow-secret")
    assert _session_secret("mine") == "mine"


def test_derived_from_the_jwt_secret_alike_in_every_worker(airflow_key) -> None:
    airflow_key(secret="airflow-secret")
    first = _session_secret("")
    assert first == _session_secret("")  # another worker, or after a restart
    airflow_key(secret="another-secret")
    assert _session_secret("") != first


def test_derived_from_the_private_key_file(airflow_key, tmp_path: Path) -> None:
    key = tmp_path / "jwt.pem"
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n")
    airflow_key(private_key_path=str(key))
    first = _session_secret("")
    assert first == _session_secret("")
    key.write_bytes(b"another key")
    assert _session_secret("") != first


def test_no_key_to_derive_from_is_a_clear_error(airflow_key, tmp_path: Path) -> None:
    airflow_key()
    with pytest.raises(ConfigError, match="set review_session_secret"):
        _session_secret("")
    airflow_key(private_key_path=str(tmp_path / "absent.pem"))
    with pytest.raises(ConfigError, match=r"absent\.pem"):
        _session_secret("")
