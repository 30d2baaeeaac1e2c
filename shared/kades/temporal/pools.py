"""A chain token's liquidity, every pool of it summed in slot order, whatever order blocks came in.

market-aggregator names with each chain tick the token's pools as it knew them when it
handled the block, [slot, liquidity] each, none later than the block's slot
(kades.market.chain.merge_pool_liquidity). Blocks reach it in no order, so that knowledge may
miss an earlier slot's state (not handled yet): its sum made the same stream's liquidity, and
the alerts on it, depend on delivery order. temporal-analysis sees a token's ticks in time and
slot order (its reorder buffer), so it keeps each pool's newest state up to the tick at hand
and sums those: an earlier state it has already taken from that slot's own tick, and what it
has not (a state from before this was kept) comes in from the tick. A state of a later slot,
should a tick name one, is left for its own tick.

>>> kept = {}
>>> token_liquidity(kept, {"A": [10, 400.0], "B": [10, 20.0]}, 10)
420.0
>>> token_liquidity(kept, {"A": [12, 4.0], "B": [11, 21.0]}, 11)  # A's slot-12 state: later
421.0
>>> token_liquidity(kept, {"A": [12, 4.0]}, 12)
25.0
"""
from __future__ import annotations

import math

from kades.events.catalogue import MAX_TICK_POOLS


def token_liquidity(kept: dict[str, list], pools: dict[str, list], slot: int | None
                    ) -> float | None:
    """Take `pools` ({pool: [slot, liquidity]}) of a tick at `slot` (None: any) into `kept`
    (the same shape: each pool's newest state taken), states of later slots left out; the sum
    of what is kept, exactly rounded (math.fsum: the same whatever order the pools were met),
    or None while nothing is kept (`pools: {}` said no pool, not an empty one: its 0 was a
    pull of the whole liquidity the series had)."""
    for pool, (pool_slot, liquidity) in pools.items():
        if slot is not None and pool_slot > slot:
            continue
        have = kept.get(pool)
        if (have[0] > pool_slot) if have is not None else len(kept) >= MAX_TICK_POOLS:
            continue  # an older state than the one taken; a new pool past the most kept
        kept[pool] = [pool_slot, liquidity]  # a new list: a state written before keeps its own
    return math.fsum(liquidity for _, liquidity in kept.values()) if kept else None
