"""Inside Airflow, report and digest links point at the review UI the plugin mounts on the API
server, unless the settings name another `review_url`."""

from __future__ import annotations

import dataclasses
import importlib.util
from types import ModuleType

import pytest

from pipeline.config import Settings
from tests.dags.conftest import DAGS_FOLDER


def dag_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "audit_dag_for_links", DAGS_FOLDER / "partner_access_audit.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_review_links_point_at_the_plugin_on_the_api_server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    monkeypatch.setenv("AIRFLOW__API__HOST", "0.0.0.0")
    monkeypatch.setenv("AIRFLOW__API__PORT", "8793")
    module = dag_module()
    assert module._with_review_url(Settings()).review_url == "http://localhost:8793/access-audit"
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.org/")
    assert module._with_review_url(Settings()).review_url == (
        "https://airflow.example.org/access-audit"
    )


def test_review_links_keep_a_configured_review_url():
    configured = dataclasses.replace(Settings(), review_url="https://review.example.org")
    assert dag_module()._with_review_url(configured).review_url == "https://review.example.org"
