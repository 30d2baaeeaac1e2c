"""A chain block's records regrouped the way the detectors read them (pure, no I/O)."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from kades.events.catalogue import TIME_PROBLEM, is_event_time
from kades.solana.programs import QUOTE_MINTS


def block_time_s(block: dict, fallback: str | None) -> float:
    """The block's time: its block_time (checked by the contract), else the event's `time`,
    which must then be an instant the contract would take (a year 10000 once in UTC, say,
    made every anomaly's time fail later)."""
    text = block.get("block_time") or fallback
    if not text:
        raise ValueError("a chain block needs block_time (or the event's time)")
    text = text.replace("z", "Z").replace("t", "T")  # the envelope takes RFC 3339's lower case
    if not is_event_time(text):
        raise ValueError(f"{text!r}: {TIME_PROBLEM}")
    return datetime.fromisoformat(text).timestamp()


def pool_observations(block: dict, time_s: float) -> dict[str, list[dict]]:
    """Per pool, liquidity and state records in transaction order (liquidity first in a tx)."""
    slot = block["slot"]
    keyed = defaultdict(list)
    for kind, records, rank in (("liquidity", block.get("liquidity", []), 0),
                                ("state", block.get("pool_states", []), 1)):
        for position, record in enumerate(records):
            order = (record.get("tx_index", position), rank, position)
            keyed[record["pool"]].append((order, {"kind": kind, "time_s": time_s, "slot": slot, "record": record}))
    return {pool: [obs for _, obs in sorted(items, key=lambda x: x[0])] for pool, items in keyed.items()}


def token_records(block: dict) -> dict[str, dict[str, list]]:
    """Per token (never a quote mint): its swaps, token transfers and launch records. A swap
    between two quote mints (SOL/USDC, the base the less preferred quote) is no token's: as
    USDC's, market makers' SOL/USDC trades were wash trading, four swaps in a slot a sniper
    bundle, a $3,000 one a whale."""
    tokens: dict[str, dict[str, list]] = defaultdict(lambda: {"swaps": [], "transfers": [], "launches": []})
    for swap in block.get("swaps", []):
        if swap["base_mint"] not in QUOTE_MINTS:
            tokens[swap["base_mint"]]["swaps"].append(swap)
    for transfer in block.get("transfers", []):
        if transfer["mint"] not in QUOTE_MINTS:
            tokens[transfer["mint"]]["transfers"].append(transfer)
    for launch in block.get("launches", []):
        if launch["mint"] not in QUOTE_MINTS:
            tokens[launch["mint"]]["launches"].append(launch)
    return dict(tokens)


def sol_fundings(block: dict) -> list[tuple[str, str]]:
    """(funder, wallet) of every native SOL transfer in the slot: a part of a split block
    carries the whole slot's in its context (kades.solana.parts)."""
    if "context" in block:
        return [(funder, wallet) for funder, wallet in block["context"]["fundings"]]
    return [(t["source"], t["destination"]) for t in block.get("transfers", []) if t.get("native")]


def slot_launches(block: dict) -> list[dict]:
    """Every launch record of the slot (mint, creator, kind), from the context of a part."""
    return block["context"]["launches"] if "context" in block else block.get("launches", [])
