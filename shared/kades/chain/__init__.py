"""On-chain manipulation detectors (chain-analysis): pure functions over chain-block records.

Each detector takes its JSON state (kept in Redis by `function.py`) and the block's records,
and returns its new state and the anomalies it found, with evidence a person can check.
"""
