"""Recorded RPC answers -> transactions grouped by slot -> `ai.kades.chain.block.v1` events.

Accepted inputs (each file, or each element of a JSON array): a bare transaction object, a
JSON-RPC envelope `{"result": ...}`, a `getBlock` result (`{"transactions": [...]}`), in
`json`, `jsonParsed`, `base64` or `base58` encoding. A block without a `slot` field takes `parentSlot + 1`. A
null result or a skipped-slot error is a slot without a block; any other RPC error, and a
block recorded without its transactions, is refused with what to record instead.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

from kades.events.envelope import CloudEvent
from kades.solana.normalise import EMPTY_KINDS, empty_records, normalise_transaction
from kades.solana.parts import SlotLinks, split_block
from kades.solana.rpc import RpcError
from kades.solana.transaction import MalformedTransaction
from kades.solana.wire import first_signature

SOURCE = "/kades/solana-source"
# What reading one odd transaction can raise: it is left out and reported, never the end of
# the feed (a poller stopped by it would stop on the same slot again after every restart).
# AttributeError: a field holding a number where the normaliser reads an object.
UNREADABLE = (MalformedTransaction, KeyError, IndexError, TypeError, ValueError, OverflowError,
              AttributeError)


def transactions_of(document: Any, guessed: list[int] | None = None) -> Iterator[dict]:
    """Every transaction in a recorded document, each with `slot` and `blockTime` filled in.
    A getBlock result records no slot (the request named it): without one added, its slot is
    taken as `parentSlot + 1`, wrong after a skipped slot, and noted in `guessed`."""
    if isinstance(document, list):
        for item in document:
            yield from transactions_of(item, guessed)
        return
    if not isinstance(document, dict):
        raise MalformedTransaction(f"expected a JSON object or array, got {type(document).__name__}")
    if "result" in document and "transaction" not in document:
        if document["result"] is not None:  # null: a skipped slot or an unknown signature
            yield from transactions_of(document["result"], guessed)
        return
    if "error" in document and "transaction" not in document:  # a JSON-RPC error answer
        error = document["error"] if isinstance(document["error"], dict) else {}
        if RpcError(error.get("code"), str(error.get("message", ""))).skipped:
            return  # as a null result: a slot without a block (not a provider's rate limit
            # under the same code, QuickNode's -32007: then the slot was never recorded)
        raise MalformedTransaction(f"an RPC error was recorded, not a transaction: "
                                   f"{error.get('code')} {error.get('message', document['error'])}")
    if "blockhash" in document and "transactions" not in document:
        raise MalformedTransaction("a getBlock result without its transactions: record it with "
                                   "transactionDetails \"full\"")
    if "transactions" in document:  # a getBlock result
        parent = document.get("parentSlot")
        slot = document.get("slot", parent + 1 if isinstance(parent, int) else 0)
        if "slot" not in document and guessed is not None:
            guessed.append(slot)
        if not isinstance(document["transactions"], list):
            raise MalformedTransaction("a getBlock result's transactions are a JSON array")
        for tx in document["transactions"]:  # what is no object is reported by build_blocks
            yield {"slot": slot, "blockTime": document.get("blockTime"), **tx} if isinstance(tx, dict) else tx
        return
    yield document


def signature_of(tx: Any) -> str:
    """The transaction's first signature, for a report; "?" when it has none to give."""
    try:
        transaction = tx["transaction"]
        if isinstance(transaction, list):  # wire bytes: the signatures come first
            return first_signature(transaction)
        return str(transaction["signatures"][0])
    except (KeyError, IndexError, TypeError, ValueError):
        return "?"


def rfc3339(unix_s: int | None) -> str | None:
    if unix_s is None:
        return None
    if not isinstance(unix_s, int) or isinstance(unix_s, bool):
        raise MalformedTransaction(f"blockTime is not a Unix time in seconds: {unix_s!r}")
    return datetime.fromtimestamp(unix_s, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def build_blocks(transactions: Iterable[dict], *,
                 unreadable: list[tuple[int, str]] | None = None) -> list[dict]:
    """One chain-block data object per slot, in slot order; records in transaction order.
    A transaction that cannot be read is left out, counted in its block's
    `stats.unreadable` (when its slot can be read) and, as (its position in `transactions`,
    the reason), appended to `unreadable`."""
    blocks: dict[int, dict] = {}
    left_out: Counter = Counter()  # per slot
    for position, tx in enumerate(transactions):
        try:
            if not isinstance(tx, dict):
                raise MalformedTransaction(f"a transaction is a JSON object, not {type(tx).__name__}")
            slot, block_time = int(tx.get("slot") or 0), rfc3339(tx.get("blockTime"))
            records, skipped = normalise_transaction(tx)
        except UNREADABLE as error:
            if unreadable is not None:
                unreadable.append((position, f"{signature_of(tx)}: {type(error).__name__}: {error}"))
            if isinstance(tx, dict) and isinstance(tx.get("slot"), int):
                left_out[tx["slot"]] += 1
            continue
        block = blocks.setdefault(slot, {"slot": slot, "block_time": block_time,
                                         **empty_records(), "stats": Counter(), "skipped": Counter()})
        failed = (tx.get("meta") or {}).get("err") is not None
        block["stats"]["transactions"] += 1
        block["stats"]["failed"] += failed
        block["skipped"].update(skipped)
        tx_index = block["stats"]["transactions"] - 1  # records keep their transaction's order
        for kind in EMPTY_KINDS:
            block[kind].extend({**record, "tx_index": tx_index} for record in records[kind])
    result = []
    for slot in sorted(blocks):
        block = blocks[slot]
        block["stats"] = {"transactions": block["stats"]["transactions"],
                          "failed": block["stats"]["failed"],
                          "unreadable": left_out[slot],
                          "skipped_programs": dict(sorted(block.pop("skipped").items()))}
        result.append(block)
    return result


def block_events(block: dict, *, source: str = SOURCE, links: SlotLinks | None = None) -> list[CloudEvent]:
    """The CloudEvents of one slot: one per mint, in parts under MAX_EVENT_BYTES
    (kades.solana.parts), with the `links` of a source that follows the chain. Ids depend
    only on the slot, mint and part, so a replay is deduplicated."""
    return split_block(block, source=source, links=links)


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
