"""`kades solana-source --rpc URL`: follow the chain slot by slot, resuming where it stopped.

The last slot sent is kept in Redis (`kades.keys.SOLANA_LAST_SLOT`), so a restarted source
(or a new pod of its ContainerSource) carries on from there instead of skipping or repeating.
Blocks not available yet are waited for; skipped slots are passed over.
"""
from __future__ import annotations

import contextlib
import copy
import json
import logging
import sys
import time
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait

from kades import exitcodes
from kades.cliutil import report, report_error, report_unreachable
from kades.clients import TEMPORARY_ERRORS, redis_client
from kades.errors import InvalidEventError, TemporaryFailure
from kades.events.catalogue import MAX_FUTURE_S, validate_data
from kades.events.chunking import EventTooLarge
from kades.events.envelope import to_dict
from kades.keys import SOLANA_LAST_SLOT
from kades.logs import log
from kades.runtime.sink import SinkRefused
from kades.settings import redact_url, settings
from kades.solana.block import block_events, build_blocks, transactions_of
from kades.solana.parts import SlotLinks
from kades.solana.rpc import CLEANED_UP_CODE, NOT_YET_CODES, RpcError, SolanaRpc
from kades.solana.transaction import MalformedTransaction

POLL_S = 0.4  # one slot
SINK_ATTEMPTS = 6     # a Broker ingress away (a rollout) is waited for, 15 s and more in all
SINK_BACKOFF_S = 0.5
BEHIND_WARN_SLOTS = 150  # a minute of chain: said, every REPORT_EVERY slots, while behind
REPORT_EVERY = 100
# A slot's events (one per mint it touched, hundreds in a busy one) go to the sink this many
# at once: sent one at a time, a busy slot took ~1.6 s, and the chain makes one every 0.4 s.
# The Broker keeps no order among them anyway; the slot is kept as sent once every one is.
SEND_CONCURRENCY = 16
# getBlock requests in flight at once: the slot being handled and those after it, up to the
# known tip. Fetched one after another, a slot cost the node's answer time (a block with full
# transactions is several MB) plus its handling, more than the chain's 0.4 s a slot.
FETCH_AHEAD = 3
MALFORMED_ATTEMPTS = 3  # a block the node answers unreadably: asked this often, then left out
logger = logging.getLogger("kades.solana.source")


def sending(send_one, *, sleep=time.sleep):
    """`emit` for follow: send one event, retrying a sink away (a 503 or a refused connection
    exited the pod at once, into CrashLoopBackOff) or refusing the sender (a 404, 401 or 403:
    the Broker or its policy being made; each had its event left out for good), and leaving
    out, logged, an event the sink refuses itself (kades.runtime.sink.REFUSES_THE_EVENT: a
    400 exited 1 without the slot kept, and every restart sent it again, for good): False
    then."""
    def emit(event) -> bool:
        for attempt in range(SINK_ATTEMPTS):
            try:
                send_one(event)
                return True
            except TemporaryFailure as error:
                if isinstance(error, SinkRefused) and error.about_the_event:
                    log(logger, logging.ERROR, "solana-source: event refused by the sink, left out",
                        subject=event.get("subject"), event_id=event.id, status=error.status,
                        error=str(error)[:300])
                    return False
                if attempt + 1 == SINK_ATTEMPTS:  # the slot not kept: a restart sends it again
                    raise
                sleep(SINK_BACKOFF_S * 2 ** attempt)
    return emit


def emit_all(emit, events: list, pool: ThreadPoolExecutor | None) -> list:
    """`emit` each event, all at once on `pool` (None: one after another); returns once every
    one is sent or refused, with the events not refused (`emit` said False). At the first
    failure (or Ctrl-C) the events not started yet are dropped and it raises once those under
    way finished: the slot is not kept, so a restart sends it whole again (the ids are the
    slot's), and nothing waits for a sink that is away to refuse every queued event through
    its retries."""
    if pool is None or len(events) < 2:
        return [event for event in events if emit(event) is not False]
    futures = [pool.submit(emit, event) for event in events]
    try:
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
    finally:
        for future in futures:
            future.cancel()  # (those under way run on; the pool's exit waits for them)
    for future in done:
        if future.exception() is not None:
            raise future.exception()
    return [event for event, future in zip(events, futures) if future.result() is not False]


class BlockFetcher:
    """getBlock of the slot being handled and, on `pool` (of `ahead` threads), of the
    `ahead - 1` after it that the node has (up to the known tip, and `last`), so that the
    node's answers overlap each other and the handling of the slot before; without a pool, of
    the slot alone. A slot's answer is taken once: asked for again (after a "not yet", or a
    clock ahead), it is fetched again. A request made ahead is tried once: whatever it failed
    with ("not yet": it was asked early; a node busy or away), the slot is asked again when
    its turn comes, with `rpc`'s retries, so that an exit never waits for retries of slots
    ahead."""

    def __init__(self, rpc: SolanaRpc, ahead: int, pool: ThreadPoolExecutor | None,
                 last: int | None = None):
        self.rpc, self.ahead, self.pool, self.last = rpc, ahead, pool, last
        self.once = copy.copy(rpc)  # the same node and settings, one attempt a request
        self.once.max_attempts = 1
        self.pending: dict[int, Future] = {}

    def get_block(self, slot: int, tip: int) -> dict | None:
        """The answer for `slot` (each slot's turn passes through here, so nothing is left
        pending below it)."""
        if self.pool is not None:
            end = min(slot + self.ahead - 1, tip, self.last if self.last is not None else tip)
            for later in range(slot + 1, end + 1):
                if later not in self.pending:
                    self.pending[later] = self.pool.submit(self.once.get_block, later)
        future = self.pending.pop(slot, None)
        if future is None or future.exception() is not None:  # (waits for the answer)
            return self.rpc.get_block(slot)
        return future.result()

    def close(self) -> None:
        for future in self.pending.values():
            future.cancel()
        self.pending.clear()


def follow(rpc: SolanaRpc, emit, *, start_slot: int | None, max_slots: int | None, store=None,
           sleep=time.sleep, clock=time.time, concurrency: int = 1, fetch_ahead: int = 1) -> int:
    """Send the chain-block event of every slot from `start_slot` on; slots handled. A block
    whose time is ahead of this machine's clock by more than the contract allows waits for
    the clock (its events would be refused, and the slot marked done without them). A slot's
    events are emitted `concurrency` at once (emit_all); `fetch_ahead` getBlock requests are
    in flight at once (BlockFetcher)."""
    with contextlib.ExitStack() as stack:
        def pool(workers: int, name: str) -> ThreadPoolExecutor | None:
            if workers < 2:
                return None
            executor = ThreadPoolExecutor(workers, thread_name_prefix=name)
            stack.callback(executor.shutdown, cancel_futures=True)
            return executor
        senders = pool(concurrency, "solana-send")
        fetcher = BlockFetcher(rpc, fetch_ahead, pool(fetch_ahead, "solana-fetch"))
        stack.callback(fetcher.close)
        return _follow(rpc, emit, start_slot, max_slots, store, sleep, clock, senders, fetcher)


def _follow(rpc: SolanaRpc, emit, start_slot: int | None, max_slots: int | None, store,
            sleep, clock, pool: ThreadPoolExecutor | None, fetcher: BlockFetcher) -> int:
    resumed = store.get(SOLANA_LAST_SLOT) if store is not None else None
    slot = start_slot if start_slot is not None else (int(resumed) + 1 if resumed else rpc.get_slot())
    if max_slots is not None:
        fetcher.last = slot + max_slots - 1
    handled, tip, malformed = 0, None, 0
    # what the events say of the slots before theirs: the slot before the one resumed after
    links = SlotLinks(slot, previous=int(resumed) if start_slot is None and resumed else None)
    while max_slots is None or handled < max_slots:
        # the tip is asked for when this slot may be past it (and every REPORT_EVERY slots, for
        # the lag said below), not at every slot: behind the tip, catching up, that was one
        # more round trip to the node a slot
        if tip is None or slot > tip or handled % REPORT_EVERY == 0:
            tip = rpc.get_slot()
        if slot > tip:
            sleep(POLL_S)
            continue
        try:
            block = fetcher.get_block(slot, tip)
        except RpcError as error:
            if error.code == CLEANED_UP_CODE and (first := rpc.first_available()) > slot:
                # resumed from a slot the node has pruned (a long outage, a node without
                # history): the source exited, and every restart met the same slot
                log(logger, logging.ERROR, "solana-source: the node no longer has these "
                    "slots' blocks; going on from the first it has", slot=slot,
                    first_available=first, slots_lost=first - slot)
                fetcher.close()
                slot = first
                links = SlotLinks(slot)  # the slots passed over were never seen
                continue
            if error.code not in NOT_YET_CODES:
                raise
            # Below the tip, "not available" is also how a node answers for a slot that was
            # skipped and not yet rooted (-32007 comes only once it is): ~13 s of waiting at
            # every skipped slot, unless getBlocks proves it has no block (rpc.skipped)
            if slot < tip and rpc.skipped(slot, tip):
                block = None
            else:
                sleep(POLL_S)
                tip = None  # asked again: the slot may be the tip, or past a tip known before
                continue
        ahead = (block or {}).get("blockTime") or 0
        if isinstance(ahead, (int, float)) and ahead > clock() + MAX_FUTURE_S:
            log(logger, logging.WARNING, "solana-source: the block's time is ahead of this "
                "machine's clock; waiting for the clock", slot=slot, ahead_s=ahead - clock())
            sleep(POLL_S)
            continue
        if block is not None:
            try:  # (read whole here: what build_blocks is given is read once)
                transactions = list(transactions_of(block))
            except MalformedTransaction as error:
                # A node's odd answer (transactions null, an error inside a result) exited the
                # source with a traceback, and every restart met the same slot: asked again,
                # then the slot left out, said
                malformed += 1
                if malformed < MALFORMED_ATTEMPTS:
                    sleep(POLL_S)
                    continue
                log(logger, logging.ERROR, "solana-source: the node's block is unreadable; "
                    "the slot left out", slot=slot, attempts=malformed, error=str(error)[:300])
                transactions = []
                links = SlotLinks(slot + 1)  # what this slot held is not known: never "none"
            malformed = 0
            unreadable: list[tuple[int, str]] = []
            outgoing, left_out = [], set()
            for data in build_blocks(transactions, unreadable=unreadable):
                try:
                    events = block_events(data, links=links)
                except EventTooLarge as error:  # a record no split brings under the limit:
                    log(logger, logging.ERROR,    # kept, it would stop the feed here for good
                        "solana-source: the slot's events left out, one is over the size limit",
                        slot=slot, error=str(error)[:300])
                    continue
                for event in events:
                    try:
                        validate_data(event)
                    except InvalidEventError as error:  # sent, it would be refused; kept, it
                        log(logger, logging.ERROR,       # would stop the feed on this slot for good
                            "solana-source: event left out, outside the event contract",
                            slot=slot, subject=event.get("subject"), problems=str(error.problems)[:500])
                        left_out.add(event.get("subject"))
                        continue
                    outgoing.append(event)
            sent = emit_all(emit, outgoing, pool)
            if sent:  # a mint with a part left out or refused keeps its last slot sent
                taken = set(map(id, sent))
                left_out |= {event.get("subject") for event in outgoing if id(event) not in taken}
                links.sent(slot, {event.get("subject") for event in sent} - left_out - {None})
            for _, reason in unreadable:  # left out, so that one odd transaction never stops the feed
                log(logger, logging.WARNING, "solana-source: transaction left out, unreadable",
                    slot=slot, reason=reason)
        if store is not None:
            _save_last_slot(store, slot)
        if handled % REPORT_EVERY == 0 and tip - slot > BEHIND_WARN_SLOTS:
            log(logger, logging.WARNING, "solana-source: behind the chain's tip", slot=slot,
                behind_slots=tip - slot)
        slot += 1
        handled += 1
    return handled


def _save_last_slot(store, slot: int) -> None:
    """Where a restart resumes. Redis away (a failover, a restart) stops nothing: the slot's
    events are sent, and a later slot is saved once Redis is back; a restart meanwhile sends
    the slots since the one saved again, duplicates by their event ids. The source exited
    here, and came back after the kubelet's growing restart delays, not in seconds."""
    try:
        store.set(SOLANA_LAST_SLOT, slot)
    except TEMPORARY_ERRORS as error:
        log(logger, logging.WARNING, "solana-source: the last slot was not saved; going on",
            slot=slot, error=type(error).__name__)


def run_polling(args) -> int:
    """`kades solana-source --rpc`: an exit code (3 when the node, Redis or the sink is away)."""
    import redis

    from kades.runtime.sink import send
    rpc = SolanaRpc(args.rpc)
    if args.stdout:
        emit = lambda event: print(json.dumps(to_dict(event)), flush=True)  # noqa: E731
    else:
        sink = args.sink or settings().sink_url
        emit = sending(lambda event: send([event], sink, token_file=args.sink_token_file))
    try:
        handled = follow(rpc, emit, start_slot=args.start_slot, max_slots=args.max_slots,
                         store=redis_client(settings()),
                         concurrency=1 if args.stdout else SEND_CONCURRENCY,
                         fetch_ahead=FETCH_AHEAD)
    except RpcError as error:  # the node answered, with an error that waiting will not cure
        return report("solana-source", f"{redact_url(args.rpc)}: {error}")
    except TemporaryFailure as error:  # the node or the sink, after its retries
        return report_unreachable("solana-source", "a dependency", error)
    except redis.RedisError as error:
        return report_error("solana-source", f"Redis at {redact_url(settings().redis_url)}", error)
    print(f"kades solana-source: {handled} slots", file=sys.stderr)
    return exitcodes.OK
