"""Input formats → canonical record batches. One module per format; readers only read."""
