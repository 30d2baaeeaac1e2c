"""Market ticks from chain blocks: per token, last price, volume and liquidity of one slot.

Prices are in the pool's quote token (SOL for most memecoins), read from the reserves after
the slot's last pool state, else from its last swap. When the block itself prices SOL in a
stablecoin (a SOL/USDC or SOL/USDT pool or swap), `price_usd` is added.
"""
from __future__ import annotations

from kades.events.catalogue import MAX_SOL_USD
from kades.solana.programs import STABLECOINS, WSOL


def sol_usd_of(block: dict) -> float | None:
    """SOL in USD from the block's own SOL/stablecoin trades (base = the stablecoin); a part
    of a split block carries the whole slot's in its context (kades.solana.parts)."""
    if "context" in block:
        return block["context"].get("sol_usd")
    price = None
    for record in list(block.get("swaps", [])) + list(block.get("pool_states", [])):
        if record.get("quote_mint") == WSOL and record.get("base_mint") in STABLECOINS and record.get("price"):
            price = 1.0 / record["price"]  # the record prices one dollar in SOL
    # a pool anyone can make may price SOL at anything: past the contract's bound it says nothing
    return price if price is None or price <= MAX_SOL_USD else None


def chain_ticks(block: dict, *, sol_usd: float | None = None) -> list[dict]:
    """One tick per traded token of the block (stablecoins and SOL themselves excluded)."""
    time = block.get("block_time")
    sol_usd = sol_usd_of(block) or sol_usd
    per_token: dict[str, dict] = {}
    for swap in block.get("swaps", []):
        if swap["base_mint"] in STABLECOINS or not swap.get("price"):
            continue
        tick = per_token.setdefault(swap["base_mint"], {"volume": 0.0, "quote": swap["quote_mint"]})
        quote_decimals = swap["decimals_in"] if swap["side"] == "buy" else swap["decimals_out"]
        tick["volume"] += swap["quote_amount"] / 10 ** quote_decimals
        tick["price"], tick["source"] = swap["price"], f"solana:{swap['program']}"
    for state in block.get("pool_states", []):
        if state["base_mint"] in STABLECOINS or not state.get("price"):
            continue
        tick = per_token.setdefault(state["base_mint"], {"volume": 0.0, "quote": state["quote_mint"]})
        tick["price"], tick["source"] = state["price"], f"solana:{state.get('program', 'pool')}"
        # both sides of a constant-product pool are worth the same: liquidity = 2 x quote side
        tick["liquidity"] = 2 * state["quote_reserve"] / 10 ** state["quote_decimals"]
    ticks = []
    for token, tick in per_token.items():
        if not tick.get("price") or time is None:
            continue
        row = {"token": token, "time": time, "price": tick["price"], "volume": tick["volume"],
               "source": tick["source"], "quote": tick["quote"]}
        if "liquidity" in tick:
            row["liquidity"] = tick["liquidity"]
        if sol_usd and tick["quote"] == WSOL:
            row["price_usd"] = tick["price"] * sol_usd
        elif tick["quote"] in STABLECOINS:
            row["price_usd"] = tick["price"]
        ticks.append(row)
    return ticks
