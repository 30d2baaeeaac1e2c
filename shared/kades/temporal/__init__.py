"""Streaming per-token detectors over market ticks (the temporal-analysis function).

`detector` scores ticks, `threshold` turns scores into flags, `function` is the handler.
"""
from kades.temporal.detector import ReturnSpikeDetector  # noqa: F401
from kades.temporal.threshold import ThresholdFilter  # noqa: F401
