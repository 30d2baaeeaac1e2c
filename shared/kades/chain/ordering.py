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
carries its slot's context (SOL fundings, launches, SOL/USD), which is recorded on arrival with
its slot (launches in their creators' documents, fundings and prices in the slot log:
kades.chain.slotlog), and read back *as of* the slot being analysed (fundings:
kades.chain.funding). Within the lateness everything up to that slot has arrived by the time
it is released, so the ordered and the shuffled feed read the same.
"""
from __future__ import annotations

import logging

from kades.events.catalogue import MAX_FUTURE_S, MIN_SLOT_S
from kades.jsontext import loads
from kades.metrics import IMPOSSIBLE_SLOTS, LATE_INPUTS
from kades.runtime.reorder import ReorderBuffer

SLOT_S = 0.4            # Solana's target slot time: converts the lateness setting to slots
KEEP_S = 600.0          # shared records outlive their window by this: a slot may wait that long
SLOT_SLACK_S = MAX_FUTURE_S  # block times are whole seconds and clocks differ: 171 slots at once
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


class Tally:
    """The slots a computation found late or impossible (admit), counted in the metrics only
    once its commit holds (`count`): a computation run again (a conflict, a mint started
    afresh) or whose commit failed (the event retried) counted them twice."""

    def __init__(self):
        self.late = self.impossible = 0

    def __bool__(self) -> bool:
        return bool(self.late or self.impossible)

    def count(self, function: str) -> None:
        if self.late:
            LATE_INPUTS.labels(function).inc(self.late)
        if self.impossible:
            IMPOSSIBLE_SLOTS.labels(function).inc(self.impossible)


def admit(buffer: ReorderBuffer, state: dict, item: tuple[int, float, dict] | None, *,
          now_s: float, function: str, mint: str, tally: Tally, links: tuple | None = None,
          watermark: int | None = None, blocked: dict | None = None) -> list[tuple[int, dict]]:
    """Take a mint's item (slot, block time, payload) into the buffer held in `state`
    ("reorder"); the items released, in slot order, as (slot, payload with "time_s").
    A slot later than the lateness is noted in `tally` and logged, not analysed; so is one
    further past the mint's newest slot than the time between their blocks allows
    (`impossible`).

    `links` are the item's (previous slot, the mint's previous slot), as the source sent them,
    and `watermark` the slot log's (kades.chain.slotlog): every slot up to it has a part
    committed. A slot whose mint's previous slot was released and whose previous slot is
    within the watermark has nothing left to wait for: it is released without waiting out the
    lateness (`_linked_through`). One that waits for the watermark alone is put in `blocked`
    (mint -> the watermark it needs), so that whoever moves the watermark there has it
    released (kades.chain.slotlog)."""
    waiting = state.setdefault("reorder", {})
    if item is not None and impossible(waiting, item[0], item[1]):
        tally.impossible += 1
        logger.warning("%s: slot %s of %s is further past its newest slot %s than the time "
                       "between their blocks allows: not analysed", function, item[0], mint,
                       waiting["max_seen"])
        item = None
    new = [] if item is None else [(float(item[0]), str(item[0]), {**item[2], "time_s": item[1]})]
    linked = waiting.get("links")  # {slot: [previous slot, the mint's previous slot]} of waiting slots
    if item is not None and links is not None and links[1] is not None:
        linked = waiting["links"] = {**(linked or {}), str(item[0]): list(links)}
    release_to = needed = None
    if linked and watermark is not None:
        release_to, needed = _linked_through(waiting, item, linked, watermark, buffer.lateness_s,
                                             buffer.idle_s / SLOT_S)
        if needed is not None and blocked is not None:
            blocked[mint] = needed
    ready, late = buffer.admit(waiting, new, now_s=now_s, release_to=release_to)
    if linked:  # the links of the slots that still wait
        left = {entry[1]: linked[entry[1]] for entry in waiting["pending"] if entry[1] in linked}
        if left:
            waiting["links"] = left
        else:
            waiting.pop("links", None)
    if item is not None and waiting.get("max_seen") == float(item[0]):
        waiting["max_seen_time_s"] = item[1]
    if late:
        tally.late += len(late)
        logger.warning("%s: slot %s of %s came after later slots were analysed (past the "
                       "allowed lateness): not analysed", function,
                       ", ".join(i for _, i, _ in late), mint)
    return [(int(slot), payload.decoded() if type(payload) is WaitingSlot else payload)
            for slot, _, payload in ready]


def _linked_through(waiting: dict, item: tuple | None, linked: dict, watermark: int,
                    lateness: float, idle: float) -> tuple[float | None, int | None]:
    """The last of the mint's slots, in order from the first waiting, that nothing earlier is
    still to come for: its mint's previous slot released, and every slot up to its previous
    slot committed (`watermark`); None when not the first. And the watermark the next slot
    needs when that alone holds it (None when not). The source's links say the slots
    between are empty, of the mint and of the whole stream (kades.solana.parts). A mint with
    nothing released (new, or its state expired) takes a previous slot as released when it is
    more than the lateness and the idle wait (in slots) behind its newest: a slot of it that
    late would have come too late without the links as well."""
    released, newest = waiting.get("released_to"), waiting.get("max_seen")
    slots = {entry[0] for entry in waiting.get("pending", ())}
    if item is not None:
        slots.add(float(item[0]))
        newest = float(item[0]) if newest is None else max(newest, float(item[0]))
    cut = newest - lateness  # what the buffer releases now anyway
    floor = released if released is not None else cut - idle
    through = None
    for slot in sorted(slots):
        if released is not None and slot <= released:
            continue  # a duplicate, or late: the buffer's to judge
        if slot <= cut:
            floor = slot  # released by the lateness, now
            continue
        previous, mint_previous = linked.get(str(int(slot)), (None, None))
        if mint_previous is None or mint_previous > floor:
            return through, None
        if watermark < (slot if previous is None else previous):
            return through, int(slot if previous is None else previous)
        floor = through = slot
    return through, None


Links = tuple  # (the slot's previous slot or None, {mint: the mint's previous slot})


def block_links(block: dict) -> Links | None:
    """The links a chain block carries (kades.solana.parts), None when it has none (a replay, a
    source of before 2026-12-06): its slots then wait out the lateness."""
    mints = block.get("previous_mint_slots")
    return None if mints is None else (block.get("previous_slot"), mints)


def mint_links(links: Links | None, mint: str) -> tuple | None:
    """(previous slot, the mint's previous slot) of one mint's item, as `admit` takes them."""
    return None if links is None else (links[0], links[1].get(mint))


def impossible(waiting: dict, slot: int, time_s: float) -> bool:
    """Whether `slot`, of a block at `time_s`, is further past the newest slot of the buffer
    `waiting` than a slot per MIN_SLOT_S since that slot's block allows (with SLOT_SLACK_S for
    clocks). The contract bounds a slot by its time since genesis only; one block days of
    slots ahead (inside that bound) would make every true slot of its mint late until the
    chain caught up. A mint's first slot has nothing to be judged against."""
    newest, newest_time_s = waiting.get("max_seen"), waiting.get("max_seen_time_s")
    if newest is None or newest_time_s is None or slot <= newest:
        return False
    return slot - newest > max(0.0, time_s - newest_time_s + SLOT_SLACK_S) / MIN_SLOT_S


_NEEDS: dict[tuple, tuple] = {}  # the needs of slots made lately, each as its one tuple
MAX_NEEDS_SHARED = 10_000


class WaitingSlot:
    """A waiting slot's payload as a store keeps it (kades.chain.store): its JSON text, decoded
    only when the slot is released (`decoded`, a fresh dict each time), and what the mint's
    state needs of it (`pools`, `creators`) known without decoding it. A mint whose slots
    wait the whole lateness holds 75 of them, and each block released one and decoded all
    of them: at 2,000-record blocks over 200 busy tokens, 1.4 s a block (docs/performance.md).
    `text` is the JSON of its whole entry, [slot, id, payload, arrival], as the store writes
    it: a chunk of waiting slots is their texts joined, so none is decoded to be written again
    and none holds on to another's text."""

    __slots__ = ("text", "needs")

    def __init__(self, text: str, payload: dict):
        self.text = text
        needs = _slot_needs(payload)
        # one tuple for the same needs: a mint's slots mostly name the same pools, and
        # gathering them (waiting_needs) then reads one tuple, not 75 strewn over the heap
        self.needs = _NEEDS.setdefault(needs, needs)
        if len(_NEEDS) > MAX_NEEDS_SHARED:
            _NEEDS.clear()

    def decoded(self) -> dict:
        return loads(self.text)[2]


def _slot_needs(payload: dict) -> tuple[tuple[str, ...], tuple]:
    """(its pools, the creators of its launches) of a slot's payload."""
    launches = (payload.get("records") or {}).get("launches", [])
    return tuple(payload.get("pools") or ()), tuple(launch.get("creator") for launch in launches)


def waiting_needs(state: dict | None) -> tuple[set[str], set]:
    """The pools, and the creators of the launches, of the slots waiting in a mint's buffer.
    (A mint's 75 waiting slots mostly name the same pools: their needs are gathered as a set
    first, then unpacked.)"""
    pools, creators = set(), set()
    pending = ((state or {}).get("reorder") or {}).get("pending", [])
    for slot_pools, slot_creators in {payload.needs if type(payload) is WaitingSlot
                                      else _slot_needs(payload) for _, _, payload, _ in pending}:
        pools.update(slot_pools)
        creators.update(slot_creators)
    return pools, creators


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
