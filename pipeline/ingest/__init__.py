"""Ingest: validation driven by a record kind's description, dedupe, redaction, quarantine."""
