"""Uniswap V2 pool histories (Sync + LP Transfer logs) as chain-analysis pool observations.

The labelled real pools in ../shared/data/liquidity/uniswap_v2_pools are Ethereum, but a
pool's reserves after each Sync are exactly the pool-state records a liquidity tracker reads,
and LP mints/burns say who added or removed. Block times are not in the data: a block is
counted as 13 s (the 2021 mainnet average), which only matters for the windows.
"""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
ZERO = "0x0000000000000000000000000000000000000000"
BLOCK_S = 13.0


def load_labels(folder: Path) -> list[dict]:
    with open(folder / "labels.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def held_out(rows: list[dict]) -> set[str]:
    """The pools held out of tuning (the LP-holder defaults, the temporal policy): per label,
    the pools in order of the SHA-256 of their lower-case address, every third from the
    second on -- a rule that does not look at the data."""
    chosen = set()
    for label in {row["label"] for row in rows}:
        pools = sorted((row["pool"] for row in rows if row["label"] == label),
                       key=lambda pool: hashlib.sha256(pool.lower().encode()).hexdigest())
        chosen |= set(pools[1::3])
    return chosen


def pool_observations(folder: Path, row: dict) -> list[dict]:
    """Observations of one labelled pool in chain order: per transaction its LP mint or burn
    (liquidity), its other LP transfers (lp_transfers: to lockers, burn addresses, wallets),
    then its Sync (state)."""
    pool = row["pool"]
    syncs = json.loads((folder / "sync" / f"{pool}.json").read_text())
    transfers = json.loads((folder / "lp_transfers" / f"{pool}.json").read_text())
    quote_index = 0 if row["token0"].lower() == WETH.lower() else 1
    base_decimals = int(row["token_decimals"])
    order = lambda e: (e["blockNumber"], e["transactionIndex"], e["logIndex"])  # noqa: E731
    first_block = min(e["blockNumber"] for e in syncs)
    common = {"base_mint": row["token"], "quote_mint": WETH, "base_decimals": base_decimals,
              "quote_decimals": 18, "pool": pool}
    by_tx: dict[str, list[dict]] = {}
    for event in transfers:
        by_tx.setdefault(event["transactionHash"], []).append(event)
    synced = {sync["transactionHash"] for sync in syncs}
    # Transactions that moved LP without touching the reserves (a lock, an unlock, a sale).
    steps = [(order(sync), sync, sync["transactionHash"]) for sync in syncs]
    steps += [(min(order(e) for e in events), None, tx) for tx, events in by_tx.items() if tx not in synced]
    observations, previous = [], (0, 0)
    for (block, _, _), sync, tx_hash in sorted(steps, key=lambda s: s[0]):
        where = {"time_s": 1.6e9 + (block - first_block) * BLOCK_S, "slot": block}
        events = sorted(by_tx.pop(tx_hash, []), key=order)
        if sync:
            base = int(sync["args"][f"reserve{1 - quote_index}"])
            quote = int(sync["args"][f"reserve{quote_index}"])
        action = _lp_action(events, pool, first=previous == (0, 0)) if sync else None
        if action is not None:
            kind, provider, lp_amount = action
            observations.append({"kind": "liquidity", **where, "record": {
                **common, "signature": tx_hash, "action": kind, "provider": provider, "lp_amount": lp_amount,
                "base_delta": base - previous[0], "quote_delta": quote - previous[1],
                "base_reserve_before": previous[0], "quote_reserve_before": previous[1],
                "base_reserve_after": base, "quote_reserve_after": quote}})
        moves = _lp_moves(events, pool)
        if moves:
            observations.append({"kind": "lp_transfers", **where,
                                 "record": {**common, "signature": tx_hash, "moves": moves}})
        if sync:
            observations.append({"kind": "state", **where, "record": {
                **common, "signature": tx_hash, "base_reserve": base, "quote_reserve": quote}})
            previous = (base, quote)
    return observations


def _lp_moves(events: list[dict], pool: str) -> list[list]:
    """[source, destination, amount] of LP transfers between holders: neither a mint, a burn,
    nor LP handed to the pair to be burned (the liquidity record counts those)."""
    return [[e["args"]["from"], e["args"]["to"], int(e["args"]["value"])] for e in events
            if ZERO not in (e["args"]["from"], e["args"]["to"]) and e["args"]["to"].lower() != pool.lower()]


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
