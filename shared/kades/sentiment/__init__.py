"""Social sentiment: per-post scores, token extraction, per-token aggregates and detectors."""
