"""On-chain manipulation detectors (chain-analysis): small classes over typed token state.

Each detector (kades.chain.detector) reads and updates a token's typed state (kades.chain.state,
kept in Redis as JSON by `function.py`) with the block's records, and returns the anomalies
it found, with evidence a person can check.
"""
