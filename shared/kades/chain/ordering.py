"""Slot order per mint for chain-analysis and whale-detection, whatever the delivery order.

A slot reaches the consumers as one event per mint (kades.solana.parts) and the Broker
delivers those concurrently, out of order and sometimes twice. Each mint's state holds a
reorder buffer (kades.runtime.reorder) whose time axis is the slot number: a mint's records
of one slot are one item (id: the slot), released in slot order, once each, when the mint has
seen a slot `lateness` later (KADES_REORDER_LATENESS_S converted at Solana's 400 ms target
slot time: 30 s = 75 slots) or when the item waited KADES_REORDER_IDLE_S of wall-clock time
(the stream-flush PingSource asks for that). Slots, not block times: they are the chain's own
order, whole numbers, and never tie (block times are whole seconds shared by ~2.5 slots).

What the detectors read across mints is kept so that it does not depend on order: every event
carries its slot's context (SOL fundings, launches, SOL/USD), which is recorded on arrival in
the shared documents with its slot, and read back *as of* the slot being analysed. Within the
lateness everything up to that slot has arrived by the time it is released, so the ordered and
the shuffled feed read the same.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

from kades.metrics import LATE_INPUTS
from kades.runtime.reorder import ReorderBuffer

SLOT_S = 0.4            # Solana's target slot time: converts the lateness setting to slots
FAN_OUT_WALLETS = 3     # a funder paying 3+ wallets in one slot is seeding them (tips go to 1-2)
FUNDINGS_PER_WALLET = 4  # a wallet's latest fundings kept (the one as of a slot is among them)
# The feed is already in order (eval, benchmarks, replays): release each slot as it comes.
IN_ORDER = ReorderBuffer(lateness_s=0, idle_s=0)
logger = logging.getLogger("kades.chain")


def slot_buffer(settings) -> ReorderBuffer:
    """The reorder buffer of the settings, its lateness in slots."""
    return ReorderBuffer(lateness_s=settings.reorder_lateness_s / SLOT_S,
                         idle_s=settings.reorder_idle_s)


class MissingKeys(Exception):
    """A released slot needs documents that were not read (a pool or creator seen only now)."""

    def __init__(self, keys: set[str]):
        super().__init__(f"{len(keys)} more documents needed")
        self.keys = keys


def admit(buffer: ReorderBuffer, state: dict, item: tuple[int, float, dict] | None, *,
          now_s: float, function: str, mint: str) -> list[tuple[int, dict]]:
    """Take a mint's item (slot, block time, payload) into the buffer held in `state`
    ("reorder"); the items released, in slot order, as (slot, payload with "time_s").
    A slot later than the lateness is counted and logged, not analysed."""
    waiting = state.setdefault("reorder", {})
    new = [] if item is None else [(float(item[0]), str(item[0]), {**item[2], "time_s": item[1]})]
    ready, late = buffer.admit(waiting, new, now_s=now_s)
    if late:
        LATE_INPUTS.labels(function).inc(len(late))
        logger.warning("%s: slot %s of %s came after later slots were analysed (past the "
                       "allowed lateness): not analysed", function,
                       ", ".join(i for _, i, _ in late), mint)
    return [(int(slot), payload) for slot, _, payload in ready]


def pending_payloads(state: dict | None) -> list[dict]:
    """The payloads waiting in a mint's buffer."""
    return [entry[2] for entry in ((state or {}).get("reorder") or {}).get("pending", [])]


def record_fundings(doc: dict | None, fundings: list, *, slot: int, time_s: float,
                    keep_s: float, creators: frozenset = frozenset(), max_wallets: int) -> dict:
    """Remember who seeded which wallet in `slot`: a funder paying 3+ wallets, or one of
    `creators`. Each wallet keeps its latest fundings with their slot; what is older than
    `keep_s` behind the newest slot seen goes. The same slot twice changes nothing."""
    doc = doc or {"funded": {}, "newest_s": None}
    fan_out: dict[str, set] = {}
    for funder, wallet in fundings:
        fan_out.setdefault(funder, set()).add(wallet)
    funded, added = doc["funded"], False
    for funder, wallets in fan_out.items():
        if len(wallets) < FAN_OUT_WALLETS and funder not in creators:
            continue
        for wallet in wallets:
            entries = funded.setdefault(wallet, [])
            if [funder, time_s, slot] not in entries:
                entries.append([funder, time_s, slot])
                entries.sort(key=lambda e: (e[2], e[0]))
                del entries[:-FUNDINGS_PER_WALLET]
                added = True
    if added:  # prune only when something changed: an unchanged document is not rewritten
        newest = max(time_s, doc.get("newest_s") or time_s)
        doc["newest_s"] = newest
        kept = {w: [e for e in es if newest - e[1] <= keep_s] for w, es in funded.items()}
        kept = {w: es for w, es in kept.items() if es}
        if len(kept) > max_wallets:  # the wallets funded last stay
            newest_first = sorted(kept, key=lambda w: (kept[w][-1][2], w), reverse=True)
            kept = {w: kept[w] for w in newest_first[:max_wallets]}
        doc["funded"] = kept
    return doc


class FundersAsOf(Mapping):
    """wallet -> its funder as of a slot: the latest funding at or before it, within `ttl_s`."""

    def __init__(self, doc: dict, *, slot: int, time_s: float, ttl_s: float):
        self.funded, self.slot, self.time_s, self.ttl_s = doc["funded"], slot, time_s, ttl_s

    def __getitem__(self, wallet: str) -> str:
        for funder, time_s, slot in reversed(self.funded.get(wallet, ())):
            if slot <= self.slot and self.time_s - time_s <= self.ttl_s:
                return funder
        raise KeyError(wallet)

    def __iter__(self) -> Iterator[str]:
        return (w for w in self.funded if w in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def record_launches(doc: dict | None, launches: list[dict], creator: str, *, slot: int,
                    time_s: float, keep_s: float) -> dict:
    """A creator's launches (time, mint, slot), each mint once; older than `keep_s` behind
    the newest go."""
    doc = doc or {"launches": []}
    seen = {entry[1] for entry in doc["launches"]}
    fresh = [[time_s, l["mint"], slot] for l in launches
             if l.get("creator") == creator and l["mint"] not in seen and l["kind"] != "set_authority"]
    if fresh:
        rows = sorted(doc["launches"] + fresh, key=lambda e: (e[2], e[1]))
        doc["launches"] = [e for e in rows if rows[-1][0] - e[0] <= keep_s]
    return doc


def launches_as_of(doc: dict | None, *, slot: int, time_s: float, window_s: float) -> int:
    """How many launches the creator made in the window ending at `slot`."""
    return sum(1 for t, _, s in (doc or {}).get("launches", ()) if s <= slot and time_s - t <= window_s)
