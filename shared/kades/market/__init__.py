"""Market ticks from feeds: normalised, stored as token metrics, passed on (market-aggregator).

`aggregate` is pure; `function` is the handler.
"""
from kades.market.aggregate import normalise_ticks, normalise_time  # noqa: F401
