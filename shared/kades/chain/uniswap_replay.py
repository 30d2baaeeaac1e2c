"""Uniswap V2 pool histories (Sync + LP Transfer logs) as chain-analysis pool observations.

The labelled real pools in ../shared/data/liquidity/uniswap_v2_pools are Ethereum, but a
pool's reserves after each Sync are exactly the pool-state records a liquidity tracker reads,
and LP mints/burns say who added or removed. Block times are not in the data: a block is
counted as 13 s (the 2021 mainnet average), which only matters for the windows.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
ZERO = "0x0000000000000000000000000000000000000000"
BLOCK_S = 13.0


def load_labels(folder: Path) -> list[dict]:
    with open(folder / "labels.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def pool_observations(folder: Path, row: dict) -> list[dict]:
    """Observations of one labelled pool in chain order (liquidity before state in a tx)."""
    pool = row["pool"]
    syncs = json.loads((folder / "sync" / f"{pool}.json").read_text())
    transfers = json.loads((folder / "lp_transfers" / f"{pool}.json").read_text())
    quote_index = 0 if row["token0"].lower() == WETH.lower() else 1
    base_decimals = int(row["token_decimals"])
    order = lambda e: (e["blockNumber"], e["transactionIndex"], e["logIndex"])  # noqa: E731
    first_block = min(e["blockNumber"] for e in syncs)
    by_tx: dict[str, list[dict]] = {}
    for event in transfers:
        by_tx.setdefault(event["transactionHash"], []).append(event)
    observations, previous = [], (0, 0)
    for sync in sorted(syncs, key=order):
        base = int(sync["args"][f"reserve{1 - quote_index}"])
        quote = int(sync["args"][f"reserve{quote_index}"])
        tx_hash, time_s = sync["transactionHash"], 1.6e9 + (sync["blockNumber"] - first_block) * BLOCK_S
        common = {"signature": tx_hash, "base_mint": row["token"], "quote_mint": WETH,
                  "base_decimals": base_decimals, "quote_decimals": 18}
        action = _lp_action(by_tx.pop(tx_hash, []), pool, first=previous == (0, 0))
        if action is not None:
            kind, provider, lp_amount = action
            observations.append({"kind": "liquidity", "time_s": time_s, "slot": sync["blockNumber"], "record": {
                **common, "pool": pool, "action": kind, "provider": provider, "lp_amount": lp_amount,
                "base_delta": base - previous[0], "quote_delta": quote - previous[1],
                "base_reserve_before": previous[0], "quote_reserve_before": previous[1],
                "base_reserve_after": base, "quote_reserve_after": quote}})
        observations.append({"kind": "state", "time_s": time_s, "slot": sync["blockNumber"], "record": {
            **common, "pool": pool, "base_reserve": base, "quote_reserve": quote}})
        previous = (base, quote)
    return observations


def _lp_action(events: list[dict], pool: str, *, first: bool) -> tuple[str, str, int] | None:
    """("create"|"add"|"remove", provider, LP amount) of one transaction's LP transfers."""
    minted = [e for e in events if e["args"]["from"] == ZERO and e["args"]["to"] != ZERO]
    burned = [e for e in events if e["args"]["to"] == ZERO and e["args"]["from"].lower() == pool.lower()]
    if minted:
        return ("create" if first else "add"), minted[-1]["args"]["to"], sum(int(e["args"]["value"]) for e in minted)
    if burned:  # the provider sent its LP tokens to the pair just before the burn
        senders = [e["args"]["from"] for e in events if e["args"]["to"].lower() == pool.lower()]
        return "remove", (senders[0] if senders else ZERO), sum(int(e["args"]["value"]) for e in burned)
    return None
