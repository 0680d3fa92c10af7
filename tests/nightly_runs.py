"""What the DAG and end-to-end tests share: the sample days, the nightly DAG's expected task states,
a way to compare warehouse partitions, and a free local port for the servers they start."""

from __future__ import annotations

import json
import socket
from contextlib import ExitStack
from datetime import date
from pathlib import Path

SAMPLE_LOGS = Path(__file__).resolve().parents[1] / "sample_logs"
TABLES = ("access", "consent", "quarantine", "flags", "alerts")
NIGHTLY_TASKS = (
    "wait_for_delivery",
    "ingest_access",
    "ingest_consent",
    "plan_detect",
    "detect_shard",
    "detect",
    "score",
    "alerts",
    "publish",
    "report",
    "alert",
)
# a delivery that never arrives fails the sensor, and nothing after it runs
STATES_WHEN_DELIVERY_MISSING = {
    task: "failed" if task == "wait_for_delivery" else "upstream_failed" for task in NIGHTLY_TASKS
}


def sample_days() -> list[date]:
    return sorted(date.fromisoformat(p.name) for p in (SAMPLE_LOGS / "access").iterdir())


def partition_rows(warehouse: Path, table: str, day: date) -> list[str]:
    """A day's rows of one table as sorted JSON lines: equal for equal rows in any order."""
    from pipeline.warehouse import Warehouse

    rows = Warehouse(str(warehouse)).read_partition(table, day).to_pylist()
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Ports free now, all different: each stays bound until the last is picked (a port closed
    and picked again could be handed out twice)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
