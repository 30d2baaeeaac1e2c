"""Recorded RPC answers -> transactions grouped by slot -> `ai.kades.chain.block.v1` events.

Accepted inputs (each file, or each element of a JSON array): a bare transaction object, a
JSON-RPC envelope `{"result": ...}`, a `getBlock` result (`{"transactions": [...]}`), in
`json` or `jsonParsed` encoding. A block without a `slot` field takes `parentSlot + 1`.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

from kades.events.envelope import CloudEvent
from kades.solana.normalise import EMPTY_KINDS, empty_records, normalise_transaction
from kades.solana.parts import split_block
from kades.solana.transaction import MalformedTransaction

SOURCE = "/kades/solana-source"


def transactions_of(document: Any) -> Iterator[dict]:
    """Every transaction in a recorded document, each with `slot` and `blockTime` filled in."""
    if isinstance(document, list):
        for item in document:
            yield from transactions_of(item)
        return
    if not isinstance(document, dict):
        raise MalformedTransaction(f"expected a JSON object or array, got {type(document).__name__}")
    if "result" in document and "transaction" not in document:
        if document["result"] is not None:  # null: a skipped slot or an unknown signature
            yield from transactions_of(document["result"])
        return
    if "transactions" in document:  # a getBlock result
        slot = document.get("slot", (document.get("parentSlot", -1) + 1))
        for tx in document["transactions"]:
            yield {"slot": slot, "blockTime": document.get("blockTime"), **tx}
        return
    yield document


def rfc3339(unix_s: int | None) -> str | None:
    if unix_s is None:
        return None
    return datetime.fromtimestamp(unix_s, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def build_blocks(transactions: Iterable[dict]) -> list[dict]:
    """One chain-block data object per slot, in slot order; records in transaction order."""
    blocks: dict[int, dict] = {}
    for tx in transactions:
        slot = int(tx.get("slot") or 0)
        block = blocks.setdefault(slot, {"slot": slot, "block_time": rfc3339(tx.get("blockTime")),
                                         **empty_records(), "stats": Counter(), "skipped": Counter()})
        records, skipped = normalise_transaction(tx)
        failed = (tx.get("meta") or {}).get("err") is not None
        block["stats"]["transactions"] += 1
        block["stats"]["failed"] += failed
        block["skipped"].update(skipped)
        position = block["stats"]["transactions"] - 1  # records keep their transaction's order
        for kind in EMPTY_KINDS:
            block[kind].extend({**record, "tx_index": position} for record in records[kind])
    result = []
    for slot in sorted(blocks):
        block = blocks[slot]
        block["stats"] = {"transactions": block["stats"]["transactions"],
                          "failed": block["stats"]["failed"],
                          "skipped_programs": dict(sorted(block.pop("skipped").items()))}
        result.append(block)
    return result


def block_events(block: dict, *, source: str = SOURCE) -> list[CloudEvent]:
    """The CloudEvents of one slot: one per mint, in parts under MAX_EVENT_BYTES
    (kades.solana.parts). Ids depend only on the slot, mint and part, so a replay is
    deduplicated."""
    return split_block(block, source=source)


def programs_summary(blocks: list[dict]) -> str:
    """What a replay read: records per program (swaps, liquidity, pool states, launches) and
    instructions of programs it skipped (no market meaning, or not read yet)."""
    read, skipped = Counter(), Counter()
    for block in blocks:
        for kind in ("swaps", "liquidity", "pool_states", "launches"):
            read.update(record.get("program", "spl_token") for record in block[kind])
        skipped.update(block["stats"]["skipped_programs"])
    shown = lambda counts: ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "none"
    return f"programs read (records): {shown(read)}\nprograms skipped (instructions): {shown(skipped)}"
