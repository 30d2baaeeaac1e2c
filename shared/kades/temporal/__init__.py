"""Streaming per-token detectors over market ticks (the temporal-analysis function).

One file per detector (`detector`, `multiwindow`, `pump`, `liquidity`, `volatility`,
`momentum`), `ensemble` combines them (`fused` steps them in one pass), `threshold` turns
scores into flags, `function` is the handler; `scoring` judges detections as streaming
benchmarks do, `score_cli` is `kades score`, `prediction` the short-horizon forecast.
docs/temporal.md tells the story.
"""
from kades.compiled import from_source
from kades.temporal.detector import ReturnSpikeDetector  # noqa: F401
from kades.temporal.ensemble import TemporalEnsemble  # noqa: F401
from kades.temporal.threshold import ThresholdFilter  # noqa: F401

# The modules shared/setup.py has Cython compile (it reads these two names from this file),
# where `make setup` finds a C compiler: the one pass and the likelihood, whose locals'
# annotations give their C types, and the alert policy's path around them, compiled as the
# Python it is (its two classes with their attributes in C slots: threshold.pxd, clock.pxd).
# Together they run on every point of every token (docs/performance.md).
COMPILED_TYPED = ("fused", "likelihood")
COMPILED_AS_PYTHON = ("policy", "threshold", "clock", "young", "ensemble")


def running_from_source() -> list[str]:
    """The modules of COMPILED_TYPED and COMPILED_AS_PYTHON that run from their source here
    (none where the build had a C compiler): the same results, slower."""
    return from_source(__name__)
