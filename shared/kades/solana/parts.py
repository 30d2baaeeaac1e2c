"""A slot's chain block as events under MAX_EVENT_BYTES: one per mint, in numbered parts.

Every record goes to exactly one mint, so nothing is counted twice: swaps, liquidity changes
and pool states to their `base_mint` (the non-quote side; the detectors read swaps per base
mint only), transfers and launches to their `mint`. A native SOL transfer is a WSOL record,
a SOL/USDC trade a USDC one. Each event is `subject` = `partitionkey` = its mint, so the
Kafka Broker keeps one mint's events in order; a mint whose records exceed the limit is cut
into parts `index` of `count` (consecutive records, transaction order kept), which the
consumers join again before analysing (kades.events.chunking.assemble).

What a detector needs from the slot's other mints travels in every event as `context`: the
SOL price in USD, the SOL fundings (funder, wallet) and the launches (creator, mint), so the
parts of a slot give the same results as the whole block, in any order.

A source that follows the chain slot by slot also says what it knows of the slots between
(`SlotLinks`): `previous_slot`, the last slot before this one it sent events of (none
between had any), and `previous_mint_slots`, for each mint of the event, the last slot before
this one with records of that mint (or a slot from which on it knows there were none). With
them a consumer knows when nothing earlier is still to come, and analyses a slot at once
instead of waiting out its lateness (kades.chain.ordering).
"""
from __future__ import annotations

import uuid
from collections import OrderedDict

from kades.events.catalogue import CHAIN_BLOCK, MAX_EVENT_BYTES, new_event
from kades.events.chunking import check_size, event_bytes, group_id, json_bytes, pack
from kades.events.envelope import CloudEvent
from kades.market.chain import sol_usd_of
from kades.solana.normalise import EMPTY_KINDS

CONTEXT_BUDGET_BYTES = MAX_EVENT_BYTES // 4  # what the context may take of every event
FAN_OUT_WALLETS = 3  # as the detectors: a funder paying 3+ wallets in a block is seeding them
MINTS_REMEMBERED = 200_000  # mints whose last slot a source keeps (~45 MB); others: its horizon


class SlotLinks:
    """A source's memory of the slots it sent, for the links of the next (the module's doc):
    the last slot sent, and each mint's last slot, the least recently seen forgotten past
    `max_mints`. `horizon` is the slot from which on every mint's slots are remembered: the
    slot before the first one followed, then the newest forgotten. A source resuming after
    the last slot it handled gives that slot as `previous`: if it had no events, the
    consumers wait out the lateness once."""

    def __init__(self, first_slot: int, *, previous: int | None = None,
                 max_mints: int = MINTS_REMEMBERED):
        self.previous = previous  # the last slot sent before the first (None: not known)
        self.horizon = first_slot - 1
        self.max_mints = max_mints
        self.mints: OrderedDict[str, int] = OrderedDict()

    def mint_previous(self, mint: str) -> int:
        return self.mints.get(mint, self.horizon)

    def whole_block(self, block: dict) -> dict:
        """The links of an unsplit block, for each of its mints (`kades simulate --kind
        chain` sends whole blocks): the fields to add to its data."""
        mints = sorted({record_key(kind, r) for kind in EMPTY_KINDS for r in block.get(kind, [])})
        return {"previous_slot": self.previous,
                "previous_mint_slots": {mint: self.mint_previous(mint) for mint in mints}}

    def sent(self, slot: int, mints) -> None:
        """Every event of `slot` was sent, of these mints (an empty slot's event: none)."""
        self.previous = slot
        for mint in mints:
            self.mints[mint] = slot
            self.mints.move_to_end(mint)
        while len(self.mints) > self.max_mints:
            _, forgotten = self.mints.popitem(last=False)
            self.horizon = max(self.horizon, forgotten)


def record_key(kind: str, record: dict) -> str:
    """The one mint a record belongs to."""
    return record.get("base_mint") or record["mint"]


def slot_context(block: dict, *, budget_bytes: int = CONTEXT_BUDGET_BYTES) -> dict:
    """What every part carries of the whole slot, within `budget_bytes`: the launches first
    (half the budget at most), then the fundings. Fundings over what is left keep the fan-out
    funders' (what both detectors remember); each counts what it leaves out. The launches had
    no bound: a slot of 3,000 cheap mint-authority changes (~0.0006 SOL in fees) made every
    part of it, an empty one too, larger than an event may be, and the source exited on that
    slot at every restart."""
    launches = [{"mint": l["mint"], "creator": l.get("creator"), "kind": l["kind"]}
                for l in block.get("launches", [])]
    kept_launches = pack(launches, budget_bytes=budget_bytes // 2)[0] if launches else []
    budget_bytes -= json_bytes(kept_launches)
    pairs = list(dict.fromkeys((t["source"], t["destination"])
                               for t in block.get("transfers", []) if t.get("native")))
    if json_bytes(pairs) > budget_bytes:
        wallets: dict[str, set] = {}
        for funder, wallet in pairs:
            wallets.setdefault(funder, set()).add(wallet)
        pairs = [p for p in pairs if len(wallets[p[0]]) >= FAN_OUT_WALLETS]
    kept = pack(pairs, budget_bytes=budget_bytes)[0] if pairs else []
    context = {"sol_usd": sol_usd_of(block), "fundings": [list(p) for p in kept],
               "launches": kept_launches}
    dropped = len(dict.fromkeys((t["source"], t["destination"]) for t in block.get("transfers", [])
                                if t.get("native"))) - len(kept)
    if dropped:
        context["fundings_dropped"] = dropped
    if len(kept_launches) < len(launches):
        context["launches_dropped"] = len(launches) - len(kept_launches)
    return context


def _event(block: dict, data: dict, key: str | None, index: int, count: int, source: str) -> CloudEvent:
    name = f"solana:slot:{block['slot']}" + (f":{key}:{index}/{count}" if key else "")
    return new_event(CHAIN_BLOCK, source, data, subject=key,
                     event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, name)), time=block["block_time"])


def split_block(block: dict, *, source: str, max_bytes: int = MAX_EVENT_BYTES,
                links: SlotLinks | None = None) -> list[CloudEvent]:
    """The events of one slot: per mint (sorted), each mint in as few parts as fit; with the
    source's `links`, each says its previous slot and its mint's."""
    by_key: dict[str, list[tuple[str, dict]]] = {}
    for kind in EMPTY_KINDS:
        for record in block.get(kind, []):
            by_key.setdefault(record_key(kind, record), []).append((kind, record))
    head = {"slot": block["slot"], "block_time": block.get("block_time"), "stats": block.get("stats", {}),
            "context": slot_context(block)}
    if links is not None:
        head["previous_slot"], head["previous_mint_slots"] = links.previous, {}
    if not by_key:  # an empty slot still says it was seen (and its stats)
        return [check_size(_event(block, {**head, **{k: [] for k in EMPTY_KINDS}}, None, 1, 1, source),
                           max_bytes=max_bytes)]
    events = []
    for key in sorted(by_key):
        def part_data(items, index, count, key=key):
            data = {**head, **{k: [] for k in EMPTY_KINDS},
                    "part": {"key": key, "index": index, "count": count,
                             "group": group_id(source, block["slot"], key)}}
            if links is not None:
                data["previous_mint_slots"] = {key: links.mint_previous(key)}
            for kind, record in items:
                data[kind].append(record)
            return data

        records = by_key[key]
        overhead = event_bytes(_event(block, part_data([], 99_999, 99_999), key, 99_999, 99_999, source))
        groups = pack(records, budget_bytes=max_bytes - overhead)
        events += [check_size(_event(block, part_data(group, i, len(groups)), key, i, len(groups), source),
                              max_bytes=max_bytes)
                   for i, group in enumerate(groups, start=1)]
    return events
