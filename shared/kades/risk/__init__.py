"""Per-token risk scores from anomalies (the risk-scoring function).

`scoring` is pure (a token's evidence set and its risk as of a time: `absorb`, `risk_at`,
`update_risk`); `alerting` decides alerts (pure); `function` is the handler.
"""
from kades.risk.scoring import (  # noqa: F401
    absorb, combine, component_of, decay, level_of, risk_at, update_risk)
