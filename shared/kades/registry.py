"""Which functions exist and where their `Function` objects live (one place for all tools)."""
from __future__ import annotations

import importlib

from kades.runtime.function import Function

# name -> "module:attribute"; the folder functions/<name>/ deploys the same object.
FUNCTIONS = {
    "market-aggregator": "kades.market.function:FUNCTION",
    "temporal-analysis": "kades.temporal.function:FUNCTION",
    "risk-scoring": "kades.risk.function:FUNCTION",
    "sentiment-analysis": "kades.sentiment.function:FUNCTION",
    "alert-dispatch": "kades.alerts.function:FUNCTION",
    "dead-letter": "kades.deadletter.function:FUNCTION",
    "chain-analysis": "kades.chain.function:FUNCTION",
    "whale-detection": "kades.whales.function:FUNCTION",
}
# HTTP functions that are not event handlers (served by their own app).
HTTP_FUNCTIONS = ("api",)


def load(name: str) -> Function:
    if name not in FUNCTIONS:
        raise KeyError(f"unknown function {name!r}; known: {', '.join(sorted(FUNCTIONS))}")
    module_name, attribute = FUNCTIONS[name].split(":")
    return getattr(importlib.import_module(module_name), attribute)
