"""The day's (or a range's) report: figures, charts, rendering, digest, notifications."""
