"""A clock for the DAG parse-time budget that a busy machine does not move.

Wall time counts the seconds a parse sat runnable while other processes (a parallel test run,
other jobs on the machine) had the CPU, so a one-second budget failed under load with nothing
wrong. This clock is wall time minus the time the thread waited for a CPU (Linux schedstat's
run-queue delay): a DAG file that computes, sleeps or waits on the network at import still shows
every second of it. Where schedstat is missing it is plain wall time.
"""

from __future__ import annotations

import time
from pathlib import Path

SCHEDSTAT = Path("/proc/thread-self/schedstat")  # "<ns on CPU> <ns waiting for a CPU> <slices>"


def _waited_for_cpu() -> float:
    try:
        return int(SCHEDSTAT.read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def now() -> float:
    """Seconds on a clock that stops while this thread waits for a CPU; subtract two readings."""
    return time.perf_counter() - _waited_for_cpu()
