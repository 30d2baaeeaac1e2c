"""On-chain manipulation detectors (chain-analysis): small classes over typed token state.

Each detector (kades.chain.detector) reads and updates a token's typed state (kades.chain.state,
kept in Redis as JSON by `function.py`) with the block's records, and returns the anomalies
it found, with evidence a person can check.
"""
from kades.compiled import from_source

# The modules shared/setup.py has Cython compile as the Python they are (kades.compiled), where
# `make setup` finds a C compiler: what every record of every block runs through, the token
# store and its codec, the function's steps and the detectors (about a seventh fewer
# instructions a block; docs/performance.md, "Chain analysis and growth"). A compiled module
# runs its docstring's examples in tests/chain/test_chain_compiled.py (pytest.ini).
COMPILED_AS_PYTHON = ("store", "codec", "function", "blockview", "liquidity", "lp_holders",
                      "wash", "cycles", "launch", "funding", "detector", "rows", "state")


def running_from_source() -> list[str]:
    """The modules of COMPILED_AS_PYTHON that run from their source here (none where the
    build had a C compiler): the same results, slower."""
    return from_source(__name__)
