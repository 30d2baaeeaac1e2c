"""Per-token risk scores from anomalies (the risk-scoring function).

`scoring` is pure; `function` is the handler.
"""
from kades.risk.scoring import (  # noqa: F401
    combine, component_of, decay, level_of, update_risk)
