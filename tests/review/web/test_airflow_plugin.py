"""The review UI inside Airflow 3: a real `airflow api-server` (simple auth manager, SQLite, a
throwaway AIRFLOW_HOME) loads the plugin through the package's entry point, lists it with its
menu entry, refuses unauthenticated requests to the mounted app, and serves it to Airflow users
with a JWT, mapping their Airflow roles to review roles."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.review.web.conftest import SampleRun
from tests.review.web.server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

VENV_BIN = Path(sys.executable).parent
STARTUP_SECONDS = 240
AIRFLOW_USERS = {"alice": ("admin", "alice-pw-2026"), "val": ("viewer", "val-pw-2026")}


@pytest.fixture(scope="module")
def airflow_api(sample_run: SampleRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`airflow api-server` on a free port with the plugin installed; yields its base URL."""
    home = tmp_path_factory.mktemp("airflow-home")
    (home / "dags").mkdir()
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({name: pw for name, (_, pw) in AIRFLOW_USERS.items()}))
    review_db = home / "review.db"
    shutil.copyfile(sample_run.review_db, review_db)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ACCESS_AUDIT_"))},
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
            f"{name}:{role}" for name, (role, _) in AIRFLOW_USERS.items()
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": "plugin-test-jwt-secret",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "ACCESS_AUDIT_REVIEW_DB": f"sqlite:///{review_db}",
        "ACCESS_AUDIT_WAREHOUSE": str(sample_run.warehouse),
    }
    migrate = subprocess.run(
        [str(VENV_BIN / "airflow"), "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    log = home / "api-server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(VENV_BIN / "airflow"), "api-server", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert server.poll() is None, f"api-server exited:\n{log.read_text()[-4000:]}"
            try:
                if httpx.get(f"{url}/api/v2/monitor/health", timeout=3).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"api-server not up:\n{log.read_text()[-4000:]}"
            time.sleep(1)
        yield url
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()


def token_for(url: str, name: str) -> str:
    response = httpx.post(
        f"{url}/auth/token",
        json={"username": name, "password": AIRFLOW_USERS[name][1]},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


def test_airflow_lists_the_plugin_with_its_app_and_menu_entry(airflow_api: str) -> None:
    headers = {"authorization": f"Bearer {token_for(airflow_api, 'alice')}"}
    plugins = httpx.get(f"{airflow_api}/api/v2/plugins", headers=headers, timeout=30).json()
    (plugin,) = [p for p in plugins["plugins"] if p["name"] == "access_audit"]
    assert plugin["source"].startswith("partner-access-audit==")
    assert [app["url_prefix"] for app in plugin["fastapi_apps"]] == ["/access-audit"]
    (view,) = plugin["external_views"]
    assert (view["href"], view["url_route"], view["destination"]) == (
        "/access-audit/queue",
        "access-audit",
        "nav",
    )


def test_unauthenticated_requests_to_the_plugin_are_refused(airflow_api: str) -> None:
    for headers, cookies in (
        ({}, {}),
        ({"authorization": "Bearer not-a-jwt"}, {}),
        ({}, {"_token": "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJtYWxsb3J5In0.forged"}),
    ):
        response = httpx.get(
            f"{airflow_api}/access-audit/queue",
            headers=headers,
            cookies=cookies,
            follow_redirects=False,
            timeout=60,
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"].startswith("/auth/login")
        assert "data-row-key" not in response.text
    export = httpx.get(
        f"{airflow_api}/access-audit/export.csv", headers={"accept": "text/csv"}, timeout=60
    )
    assert export.status_code == 401 and "alert_id" not in export.text
    post = httpx.post(f"{airflow_api}/access-audit/bulk", data={"action": "assign"}, timeout=60)
    assert post.status_code == 401


def test_airflow_users_see_the_queue_with_their_mapped_role(airflow_api: str) -> None:
    admin = httpx.Client(
        base_url=airflow_api,
        headers={"authorization": f"Bearer {token_for(airflow_api, 'alice')}"},
        timeout=60,
    )
    page = admin.get("/access-audit/queue")
    assert page.status_code == 200
    assert re.search(r'id="current-user">alice<', page.text) and "role-reviewer" in page.text
    assert "data-row-key" in page.text
    assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "SAMEORIGIN"
    # the UI's own cookie works as well (what the iframe in Airflow's UI sends)
    viewer_token = token_for(airflow_api, "val")
    viewer = httpx.Client(base_url=airflow_api, cookies={"_token": viewer_token}, timeout=60)
    viewer_page = viewer.get("/access-audit/queue")
    assert viewer_page.status_code == 200 and "role-viewer" in viewer_page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', viewer_page.text)
    assert token
    alert_id = re.findall(r'href="/access-audit/alerts/([0-9a-f]{32})', viewer_page.text)[0]
    refused = viewer.post(
        f"/access-audit/alerts/{alert_id}/assign",
        data={"assignee": "val", "version": "1", "csrf_token": token.group(1)},
    )
    assert refused.status_code == 403
