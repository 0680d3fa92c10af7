"""Review store (decisions on flags and anomaly alerts), its CLI and publish hook."""
