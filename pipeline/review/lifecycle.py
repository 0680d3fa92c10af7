"""Review vocabulary shared by the store and the command line (light: no SQL or Arrow)."""

from __future__ import annotations

STATUSES = ("new", "triaged", "confirmed", "false_positive", "resolved")
TRANSITIONS = {
    "new": ("triaged", "confirmed", "false_positive", "resolved"),
    "triaged": ("confirmed", "false_positive", "resolved"),
    "confirmed": ("triaged",),  # closed alerts can only be reopened
    "false_positive": ("triaged",),
    "resolved": ("triaged",),
}
OPEN_STATUSES = ("new", "triaged")
KINDS = ("rule", "behaviour", "coverage")  # SPEC §5; coverage: detect/coverage_alerts.py
SORTS = (
    "-day",
    "day",
    "-severity",
    "severity",
    "-flags",
    "flags",
    "-users",
    "partner_id",
    "-score",
)
