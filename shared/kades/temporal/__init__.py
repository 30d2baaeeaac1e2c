"""Streaming per-token detectors over market ticks (the temporal-analysis function).

One file per detector (`detector`, `multiwindow`, `pump`, `liquidity`, `volatility`,
`momentum`), `ensemble` combines them (`fused` steps them in one pass), `threshold` turns
scores into flags, `function` is the handler; `scoring` judges detections as streaming
benchmarks do, `score_cli` is `kades score`, `prediction` the short-horizon forecast.
docs/temporal.md tells the story.
"""
from kades.temporal.detector import ReturnSpikeDetector  # noqa: F401
from kades.temporal.ensemble import TemporalEnsemble  # noqa: F401
from kades.temporal.threshold import ThresholdFilter  # noqa: F401
