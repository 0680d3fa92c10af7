"""Behaviour: features per entity-day, the anomaly model, its store, and its evaluation."""
