"""RPC mode against a local JSON-RPC server replaying recorded transactions as blocks.

The server is a stand-in for a Solana node (not for Redis/PostgreSQL, which stay real): it
answers 429 first, has a skipped slot and a slot not produced yet, as real endpoints do.
"""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import shared_material
from nodes import Quiet, serving

from kades.keys import SOLANA_LAST_SLOT
from kades.solana.block import block_events, build_blocks
from kades.solana.poll import FETCH_AHEAD, follow
from kades.solana.rpc import SolanaRpc

DATA = shared_material.DATA / "solana/rpc"
pytestmark = shared_material.needs(DATA)


def recorded(name: str) -> dict:
    document = json.loads((DATA / name).read_text())
    return document[0] if isinstance(document, list) else document


class FakeNode(Quiet):
    blocks: dict[int, dict] = {}
    tip = 0
    calls: list[str] = []
    throttled = False
    unrooted = False

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["content-length"])))
        FakeNode.calls.append(request["method"])
        if not FakeNode.throttled:
            FakeNode.throttled = True
            self.answer(status=429, headers={"retry-after": "0"})
            return
        if request["method"] == "getSlot":
            answer = {"result": FakeNode.tip}
        elif request["method"] == "getBlocksWithLimit":
            first, limit = request["params"][:2]
            answer = {"result": [s for s in sorted(FakeNode.blocks) if first <= s][:limit]}
        elif FakeNode.unrooted and request["params"][0] not in FakeNode.blocks:
            # a node's answer for a skipped slot above its root (agave's get_block)
            answer = {"error": {"code": -32004, "message": "Block not available"}}
        else:
            slot = request["params"][0]
            if slot in FakeNode.blocks:
                answer = {"result": FakeNode.blocks[slot]}
            else:
                answer = {"error": {"code": -32007, "message": f"Slot {slot} was skipped"}}
        self.answer(json.dumps({"jsonrpc": "2.0", "id": request["id"], **answer}).encode())


@pytest.fixture
def node():
    tx = recorded("txparser_pumpfun_buy_bundle.json")
    block = {"blockTime": tx["blockTime"], "parentSlot": 99, "blockhash": "h",
             "transactions": [{"transaction": tx["transaction"], "meta": tx["meta"]}]}
    FakeNode.blocks, FakeNode.tip, FakeNode.calls, FakeNode.throttled = {100: block, 102: block}, 102, [], False
    FakeNode.unrooted = False
    with serving(FakeNode) as url:
        yield url


# every getBlock in turn, and FETCH_AHEAD in flight (kades.solana.poll.BlockFetcher): the same
FETCHING = pytest.mark.parametrize("fetch_ahead", [1, FETCH_AHEAD])


@FETCHING
def test_follows_slots_skips_gaps_retries_429_and_resumes(node, redis_conn, fetch_ahead):
    rpc = SolanaRpc(node, backoff_s=0.0)
    sent = []
    assert follow(rpc, sent.append, start_slot=100, max_slots=3, store=redis_conn, sleep=lambda s: None,
                  fetch_ahead=fetch_ahead) == 3
    assert [e.data["slot"] for e in sent] == [100, 102]  # 101 was skipped
    assert len(sent[0].data["swaps"]) == 4 and FakeNode.calls[0] == FakeNode.calls[1]  # 429, then again
    assert int(redis_conn.get(SOLANA_LAST_SLOT)) == 102
    assert FakeNode.calls.count("getSlot") == 2  # the 429 and its retry: the tip asked for once
    FakeNode.blocks[103] = FakeNode.blocks[100]
    FakeNode.tip = 103
    again = []
    follow(rpc, again.append, start_slot=None, max_slots=1, store=redis_conn, sleep=lambda s: None,
           fetch_ahead=fetch_ahead)
    assert [e.data["slot"] for e in again] == [103]  # resumed after the last slot kept in Redis
    # the links (kades.solana.parts.SlotLinks): what came before each slot, as far as this run saw
    assert [e.data["previous_slot"] for e in sent] == [None] * (len(sent) - 1) + [100]
    assert {m for e in sent[:-1] for m in e.data["previous_mint_slots"].values()} == {99}
    assert [e.data["previous_mint_slots"] for e in sent if e.data["slot"] == 102] == \
        [{e.subject: 100} for e in sent if e.data["slot"] == 100]
    assert {e.data["previous_slot"] for e in again} == {102}  # resumed after 102
    assert {m for e in again for m in e.data["previous_mint_slots"].values()} == {102}


@FETCHING
def test_a_skipped_slot_not_yet_rooted_is_passed_at_once(node, redis_conn, fetch_ahead):
    """A node answers -32004 "not available" for a skipped slot until it is rooted: the
    source waited at each (~13 s on mainnet); now getBlocksWithLimit tells it that slot has no block.
    The tip's own slot still waits: not available there means not yet."""
    FakeNode.unrooted = True
    rpc = SolanaRpc(node, backoff_s=0.0)
    waits, sent = [], []
    assert follow(rpc, sent.append, start_slot=100, max_slots=3, store=redis_conn,
                  sleep=waits.append, fetch_ahead=fetch_ahead) == 3
    assert [e.data["slot"] for e in sent] == [100, 102] and waits == []
    FakeNode.tip = 103
    FakeNode.blocks[104] = FakeNode.blocks[100]  # 103 not available yet, at the tip

    def sleep(seconds):
        waits.append(seconds)
        FakeNode.tip = 104  # the next block came: 103 was skipped
    assert follow(rpc, sent.append, start_slot=103, max_slots=2, store=redis_conn,
                  sleep=sleep, fetch_ahead=fetch_ahead) == 2
    assert [e.data["slot"] for e in sent][2:] == [104] and len(waits) == 1


class AlwaysBusy(Quiet):
    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        self.answer(status=503)


def test_a_node_that_stays_away_is_a_temporary_failure_after_backoff():
    from kades.errors import TemporaryFailure
    waits = []
    with serving(AlwaysBusy) as url:
        rpc = SolanaRpc(url, max_attempts=4, backoff_s=0.1, sleep=waits.append)
        with pytest.raises(TemporaryFailure, match="HTTP 503 after 4 attempts"):
            rpc.get_slot()
    assert waits == [0.1, 0.2, 0.4]  # exponential, and no wait after the last attempt


def test_a_mint_whose_event_was_refused_keeps_its_earlier_slot_in_the_links(node, redis_conn):
    """Its part of slot 100 never comes: its event of 102 must not say 100 was its last."""
    sent, refused = [], []

    def emit(event):
        if event.data["slot"] == 100 and not refused:  # the sink's 4xx (kades.solana.poll.sending)
            refused.append(event.subject)
            return False
        sent.append(event)
        return True
    follow(SolanaRpc(node, backoff_s=0.0), emit, start_slot=100, max_slots=3, store=redis_conn,
           sleep=lambda s: None)
    later = {e.subject: e.data["previous_mint_slots"][e.subject] for e in sent if e.data["slot"] == 102}
    assert later == {refused[0]: 99}  # the slot before the first followed, not 100


def test_an_event_outside_the_contract_is_left_out_and_the_feed_goes_on(node, redis_conn,
                                                                        monkeypatch):
    """Validated before it is sent, an invalid event raised, the slot was never marked done,
    and every restart stopped on it again."""
    import kades.solana.poll as poll
    made = poll.block_events

    def one_bad(data, **links):
        events = made(data, **links)
        events[0].data["slot"] = -1  # what no schema takes
        return events
    monkeypatch.setattr(poll, "block_events", one_bad)
    sent = []
    rpc = SolanaRpc(node, backoff_s=0.0)
    assert follow(rpc, sent.append, start_slot=100, max_slots=3, store=redis_conn,
                  sleep=lambda s: None) == 3
    assert int(redis_conn.get(SOLANA_LAST_SLOT)) == 102
    assert all(e.data["slot"] >= 0 for e in sent)


def test_a_block_ahead_of_this_clock_waits_for_it_instead_of_being_left_out(node, redis_conn):
    """With this machine's clock more than a minute behind the chain, every block's events
    were refused as from the future and the slots marked done without them: a quiet feed."""
    block_time = FakeNode.blocks[100]["blockTime"]
    now = [block_time - 300.0]  # five minutes behind the chain
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        now[0] += 30.0
    sent = []
    rpc = SolanaRpc(node, backoff_s=0.0)
    assert follow(rpc, sent.append, start_slot=100, max_slots=1, store=redis_conn,
                  sleep=sleep, clock=lambda: now[0]) == 1
    assert sent and all(e.data["slot"] == 100 for e in sent)
    assert len(waits) == 8  # until the clock was within MAX_FUTURE_S (60 s) of the block


def test_a_price_past_the_contract_says_nothing_rather_than_stop_the_feed():
    """A pool anyone can make (1 lamport against 10**12 of a stablecoin) priced SOL at 1e15 $."""
    from kades.market.chain import sol_usd_of
    from kades.solana.programs import STABLECOINS, WSOL
    from kades.solana.swaps import ui_price
    usdc = sorted(STABLECOINS)[0]
    state = {"quote_mint": WSOL, "base_mint": usdc, "price": ui_price(10**12, 0, 1, 9)}
    assert sol_usd_of({"pool_states": [state]}) is None
    assert ui_price(1, 0, 10**40, 0) is None and ui_price(2, 0, 5, 0) == 2.5


class BehindNode(Quiet):
    """Two nodes behind one address: the getBlock and getBlocks of a slot go to one that is
    behind (-32004, and [] past its own tip) `behind` times, then to one that has it."""
    blocks: dict[int, dict] = {}
    behind: dict[int, int] = {}
    answers: dict[int, list] = {}   # slot -> what getBlock answers first (errors, null)
    first_available = 0

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["content-length"])))
        method, params = request["method"], request["params"]
        if method == "getSlot":
            answer = {"result": max(BehindNode.blocks)}
        elif method == "getFirstAvailableBlock":
            answer = {"result": BehindNode.first_available}
        elif method == "getBlocksWithLimit":
            first, limit = params[:2]
            lagging = BehindNode.behind.get(first, 0) > 0
            answer = {"result": [] if lagging else
                      [s for s in sorted(BehindNode.blocks) if first <= s][:limit]}
        else:
            slot = params[0]
            queued = BehindNode.answers.get(slot) or []
            if queued:
                answer = queued.pop(0)
            elif BehindNode.behind.get(slot, 0) > 0:
                BehindNode.behind[slot] -= 1
                answer = {"error": {"code": -32004, "message": "Block not available"}}
            elif slot in BehindNode.blocks:
                answer = {"result": BehindNode.blocks[slot]}
            else:  # skipped, not rooted yet: "not available" (agave's get_block)
                answer = {"error": {"code": -32004, "message": "Block not available"}}
        self.answer(json.dumps({"jsonrpc": "2.0", "id": request["id"], **answer}).encode())


@FETCHING
def test_a_node_behind_the_load_balancer_or_a_null_block_loses_no_slot(redis_conn, fetch_ahead):
    """getBlocksWithLimit of a node a few slots behind answers [] past its tip: that read as "skipped"
    and one block in ten at the tip was lost; a null getBlock (not confirmed yet) too. Only a
    later slot listed without it proves a skip. A node's passing errors are retried."""
    tx = recorded("txparser_pumpfun_buy_bundle.json")
    block = {"blockTime": tx["blockTime"], "parentSlot": 99, "blockhash": "h",
             "transactions": [{"transaction": tx["transaction"], "meta": tx["meta"]}]}
    BehindNode.blocks = {slot: block for slot in (100, 101, 103, 104)}  # 102 skipped
    BehindNode.behind = {101: 2}
    BehindNode.answers = {103: [{"result": None}],
                          104: [{"error": {"code": -32019, "message": "Failed to query "
                                           "long-term storage; please try again"}}]}
    with serving(BehindNode) as url:
        sent = []
        assert follow(SolanaRpc(url, backoff_s=0.0), sent.append, start_slot=100, max_slots=5,
                      store=redis_conn, sleep=lambda s: None, fetch_ahead=fetch_ahead) == 5
    assert [e.data["slot"] for e in sent] == [100, 101, 103, 104]


def _block(slot_before: int) -> dict:
    tx = recorded("txparser_pumpfun_buy_bundle.json")
    return {"blockTime": tx["blockTime"], "parentSlot": slot_before, "blockhash": "h",
            "transactions": [{"transaction": tx["transaction"], "meta": tx["meta"]}]}


@FETCHING
def test_a_gateways_rate_limit_under_a_skip_code_is_waited_for_not_taken_for_a_skip(
        redis_conn, fetch_ahead):
    """QuickNode answers its rate limit with -32007, Solana's code for a skipped slot: every
    slot asked meanwhile was passed over, its block never sent, without a word. Only an
    answer that says "skipped" is one."""
    BehindNode.blocks = {slot: _block(slot - 1) for slot in (100, 101, 102)}
    BehindNode.behind = {}
    limited = {"error": {"code": -32007, "message": "50/second request limit reached - reduce "
                         "calls per second or upgrade your account at quicknode.com"}}
    BehindNode.answers = {101: [limited, limited], 102: [
        {"error": {"code": -32009, "message": "Slot 102 was skipped, or missing in long-term storage"}}]}
    with serving(BehindNode) as url:
        sent = []
        assert follow(SolanaRpc(url, backoff_s=0.0), sent.append, start_slot=100, max_slots=3,
                      store=redis_conn, sleep=lambda s: None, fetch_ahead=fetch_ahead) == 3
    assert [e.data["slot"] for e in sent] == [100, 101]  # 102: skipped, as its answer says


def test_resuming_from_a_slot_the_node_has_pruned_goes_on_from_its_first(redis_conn, caplog):
    """A source resuming after a long outage, or on a node without history, met -32001
    ("cleaned up") and exited, and every restart met the same slot."""
    BehindNode.blocks = {slot: _block(slot - 1) for slot in (200, 201)}
    BehindNode.behind, BehindNode.first_available = {}, 200
    BehindNode.answers = {50: [{"error": {"code": -32001, "message": "Block 50 cleaned up, does "
                                          "not exist on node. First available block: 200"}}]}
    with serving(BehindNode) as url:
        sent = []
        assert follow(SolanaRpc(url, backoff_s=0.0), sent.append, start_slot=50, max_slots=2,
                      store=redis_conn, sleep=lambda s: None) == 2
    assert [e.data["slot"] for e in sent] == [200, 201]
    assert int(redis_conn.get(SOLANA_LAST_SLOT)) == 201
    assert any("no longer has" in r.getMessage() for r in caplog.records)


def test_a_slot_whose_events_cannot_fit_is_left_out_and_the_feed_goes_on(node, redis_conn,
                                                                          monkeypatch):
    """An event no split brings under the limit raised out of the source, the slot unsaved:
    every restart stopped on it again."""
    import kades.solana.poll as poll
    from kades.events.chunking import EventTooLarge
    made = poll.block_events

    def too_large_at_100(data, **links):
        if data["slot"] == 100:
            raise EventTooLarge("a record over the limit")
        return made(data, **links)
    monkeypatch.setattr(poll, "block_events", too_large_at_100)
    sent = []
    assert follow(SolanaRpc(node, backoff_s=0.0), sent.append, start_slot=100, max_slots=3,
                  store=redis_conn, sleep=lambda s: None) == 3
    assert [e.data["slot"] for e in sent] == [102] and int(redis_conn.get(SOLANA_LAST_SLOT)) == 102


def test_the_sink_away_is_waited_for_and_an_event_it_refuses_left_out(node, redis_conn,
                                                                      monkeypatch):
    """One 503 from the Broker ingress (a rollout) exited the pod; a 400 exited 1 without
    the slot kept, and every restart sent it again: the feed stopped for good."""
    from kades.errors import TemporaryFailure
    from kades.runtime.sink import SinkRefused
    from kades.solana import poll
    FakeNode.blocks[103], FakeNode.tip = FakeNode.blocks[100], 103
    answers, delivered = ["503", "ok", "400", "ok", "ok", "ok", "ok", "ok", "ok", "ok"], []

    def send_one(event):
        answer = answers.pop(0)
        if answer == "503":
            raise TemporaryFailure("sink answered 503")
        if answer == "400":
            raise SinkRefused("sink answered 400", 400)
        delivered.append(event.data["slot"])
    emit = poll.sending(send_one, sleep=lambda s: None)
    assert follow(SolanaRpc(node, backoff_s=0.0), emit, start_slot=100, max_slots=4,
                  store=redis_conn, sleep=lambda s: None) == 4
    assert int(redis_conn.get(SOLANA_LAST_SLOT)) == 103
    assert len(delivered) == 2 and delivered[-1] == 103  # the refused one left out, the rest on


@pytest.mark.parametrize("status", [404, 401, 403, 409])
def test_a_sink_refusing_the_sender_not_the_event_loses_no_slot(node, redis_conn, status):
    """A 404 (the Broker being made again in a rollout), 401 or 403 (a token or an
    EventPolicy being put right) was taken as the sink's verdict on the event: logged, left
    out and the slot kept, every slot of the outage lost. Now retried, then a failure with
    the slot not kept, so the restarted pod sends it."""
    from kades.errors import TemporaryFailure
    from kades.runtime.sink import SinkRefused
    from kades.solana import poll
    attempts = []

    def send_one(event):
        attempts.append(event.data["slot"])
        raise SinkRefused(f"sink answered {status}", status)
    emit = poll.sending(send_one, sleep=lambda s: None)
    with pytest.raises(TemporaryFailure, match=f"answered {status}"):
        follow(SolanaRpc(node, backoff_s=0.0), emit, start_slot=100, max_slots=1,
               store=redis_conn, sleep=lambda s: None)
    assert len(attempts) == poll.SINK_ATTEMPTS and redis_conn.get(SOLANA_LAST_SLOT) is None


class SlowSink(Quiet):
    """A Broker ingress taking 20 ms an event: which ids came, how many at most at once, and
    an id it answers 503 to every time (`failing`)."""
    arrived: list[str] = []
    in_flight = most = 0
    failing = ""
    lock = threading.Lock()

    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        with SlowSink.lock:
            SlowSink.in_flight += 1
            SlowSink.most = max(SlowSink.most, SlowSink.in_flight)
        time.sleep(0.02)
        with SlowSink.lock:
            SlowSink.in_flight -= 1
            SlowSink.arrived.append(self.headers["ce-id"])
        self.answer(status=503 if self.headers["ce-id"] == SlowSink.failing else 202)


def busy_slot() -> tuple[dict, int]:
    """Every recorded transaction in one block (38, over 42 mints' events), and its events."""
    found = [json.loads(path.read_text()) for folder in (DATA, DATA.parent / "rpc2")
             for path in sorted(folder.glob("*.json"))]
    txs = [tx for doc in found for tx in (doc[:1] if isinstance(doc, list) else [doc])
           if "transaction" in tx]
    block = {"blockTime": txs[0]["blockTime"], "parentSlot": 99, "blockhash": "h",
             "transactions": [{"transaction": tx["transaction"], "meta": tx["meta"]} for tx in txs]}
    events = [event for data in build_blocks({**tx, "slot": 100, "blockTime": block["blockTime"]}
                                             for tx in block["transactions"])
              for event in block_events(data)]
    return block, len(events)


def test_a_busy_slots_events_go_to_the_sink_at_once_and_the_slot_is_kept_once_all_are(node, redis_conn):
    """Sent one at a time, a slot of hundreds of mints took ~1.6 s where the chain makes one
    every 0.4 s. Now SEND_CONCURRENCY at once; the slot is kept as sent only once every event
    is, and an event the sink keeps answering 503 to stops the feed before the slot is kept."""
    from kades.errors import TemporaryFailure
    from kades.runtime.sink import send
    from kades.solana import poll
    FakeNode.blocks[100], count = busy_slot()
    FakeNode.tip = 100
    SlowSink.arrived, SlowSink.in_flight, SlowSink.most, SlowSink.failing = [], 0, 0, ""
    with serving(SlowSink) as sink:
        emit = poll.sending(lambda event: send([event], sink, token_file=""), sleep=lambda s: None)
        rpc = SolanaRpc(node, backoff_s=0.0)
        assert follow(rpc, emit, start_slot=100, max_slots=1, store=redis_conn,
                      sleep=lambda s: None, concurrency=poll.SEND_CONCURRENCY) == 1
        print(f"\n{count} events, at most {SlowSink.most} at once")
        assert count >= 20 and len(set(SlowSink.arrived)) == count and SlowSink.most > 4
        assert int(redis_conn.get(SOLANA_LAST_SLOT)) == 100
        redis_conn.delete(SOLANA_LAST_SLOT)
        SlowSink.arrived, SlowSink.failing = [], SlowSink.arrived[count // 2]
        with pytest.raises(TemporaryFailure):
            follow(rpc, emit, start_slot=100, max_slots=1, store=redis_conn,
                   sleep=lambda s: None, concurrency=poll.SEND_CONCURRENCY)
        assert SlowSink.arrived.count(SlowSink.failing) == poll.SINK_ATTEMPTS
        assert redis_conn.get(SOLANA_LAST_SLOT) is None


def test_a_failing_slot_drops_the_events_not_started_yet(monkeypatch):
    """At the first failure the rest of a slot's events were still sent, each through its
    retries: with the sink away, Ctrl-C or the exit waited for all of them."""
    from kades.errors import TemporaryFailure
    from kades.solana import poll
    started = []

    def emit(event):
        started.append(event)
        time.sleep(0.01)
        if event == 0:
            raise TemporaryFailure("sink away")
    with ThreadPoolExecutor(4) as pool, pytest.raises(TemporaryFailure):
        poll.emit_all(emit, list(range(200)), pool)
    print(f"\n{len(started)} of 200 started")
    assert 0 in started and len(started) < 50


class SlowNode(Quiet):
    """A node whose getBlock answers take ANSWER_S (a block with full transactions is several
    MB): it notes each slot asked for and the most getBlock requests it had at once."""
    ANSWER_S = 0.05
    block: dict = {}
    tip = 0
    asked: list[int] = []
    in_flight = most = 0
    lock = threading.Lock()

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if request["method"] == "getSlot":
            answer = {"result": SlowNode.tip}
        else:
            slot = request["params"][0]
            produced = slot <= SlowNode.tip  # as the node stood when asked
            with SlowNode.lock:
                SlowNode.asked.append(slot)
                SlowNode.in_flight += 1
                SlowNode.most = max(SlowNode.most, SlowNode.in_flight)
            time.sleep(SlowNode.ANSWER_S)
            with SlowNode.lock:
                SlowNode.in_flight -= 1
            answer = {"result": SlowNode.block} if produced else {
                "error": {"code": -32004, "message": "Block not available"}}
        self.answer(json.dumps({"jsonrpc": "2.0", "id": request["id"], **answer}).encode())


@pytest.mark.parametrize("fetch_ahead", [1, 2, FETCH_AHEAD])
def test_blocks_are_asked_for_ahead_in_order_never_past_the_tip_or_the_last_slot(redis_conn, fetch_ahead):
    """Fetched one after another, a slot cost the node's answer time and its handling, more
    than the chain's 0.4 s a slot on mainnet: the source fell behind for good. FETCH_AHEAD
    getBlock requests are in flight at once; the slots are still handled in order, each asked
    for once, none past the node's tip or the last slot asked for."""
    tx = recorded("txparser_pumpfun_buy_bundle.json")
    SlowNode.block = {"blockTime": tx["blockTime"], "parentSlot": 99, "blockhash": "h",
                      "transactions": [{"transaction": tx["transaction"], "meta": tx["meta"]}]}
    SlowNode.tip, SlowNode.asked, SlowNode.in_flight, SlowNode.most = 120, [], 0, 0
    with serving(SlowNode) as url:
        sent = []
        assert follow(SolanaRpc(url, backoff_s=0.0), sent.append, start_slot=100, max_slots=8,
                      store=redis_conn, sleep=lambda s: None, fetch_ahead=fetch_ahead) == 8
        assert [e.data["slot"] for e in sent] == list(range(100, 108))
        assert sorted(SlowNode.asked) == list(range(100, 108))  # once each, none past the last
        # (most at once: every one while the node takes 50 ms an answer; a loaded machine
        # may not send them all inside one)
        assert SlowNode.most == 1 if fetch_ahead == 1 else 1 < SlowNode.most <= fetch_ahead
        SlowNode.tip, SlowNode.asked = 109, []  # 110 comes while the source waits

        def sleep(seconds):
            SlowNode.tip = 110
        assert follow(SolanaRpc(url, backoff_s=0.0), sent.append, start_slot=108, max_slots=3,
                      store=redis_conn, sleep=sleep, fetch_ahead=fetch_ahead) == 3
        # 110 asked for once, once the node had it: not ahead, past the tip known then
        assert sorted(SlowNode.asked) == [108, 109, 110]
        assert [e.data["slot"] for e in sent][8:] == [108, 109, 110]


def test_a_block_fetched_ahead_that_was_not_available_yet_is_asked_again_before_waiting(redis_conn):
    """A slot asked for ahead was asked early: its "not available" (a node behind the load
    balancer) is not taken for the slot's answer before it is asked again; that answer waited
    a slot's time for nothing."""
    tx = recorded("txparser_pumpfun_buy_bundle.json")
    block = {"blockTime": tx["blockTime"], "parentSlot": 99, "blockhash": "h",
             "transactions": [{"transaction": tx["transaction"], "meta": tx["meta"]}]}
    BehindNode.blocks = {slot: block for slot in (100, 101, 102)}
    BehindNode.behind, BehindNode.answers = {101: 1}, {}
    waits, sent = [], []
    with serving(BehindNode) as url:
        assert follow(SolanaRpc(url, backoff_s=0.0), sent.append, start_slot=100, max_slots=3,
                      store=redis_conn, sleep=waits.append, fetch_ahead=FETCH_AHEAD) == 3
    assert [e.data["slot"] for e in sent] == [100, 101, 102]
    assert BehindNode.behind[101] == 0 and waits == []


def test_a_request_made_ahead_is_tried_once_and_the_slot_asked_again_in_its_turn(redis_conn):
    """A request made ahead went through every retry of its own (up to ~3 minutes against a
    node that never answers), and an exit waited for it; its failure stopped the feed before
    the slot's turn. It is tried once now: the slot is asked again in its turn, with the
    retries, and the feed goes on."""
    tx = recorded("txparser_pumpfun_buy_bundle.json")
    block = {"blockTime": tx["blockTime"], "parentSlot": 99, "blockhash": "h",
             "transactions": [{"transaction": tx["transaction"], "meta": tx["meta"]}]}
    BehindNode.blocks, BehindNode.behind = {slot: block for slot in (100, 101, 102)}, {}
    busy = {"error": {"code": -32019, "message": "Failed to query long-term storage; please try again"}}
    BehindNode.answers = {101: [dict(busy) for _ in range(6)]}  # one more than the turn's retries
    sent = []
    with serving(BehindNode) as url:
        assert follow(SolanaRpc(url, backoff_s=0.0), sent.append, start_slot=100, max_slots=3,
                      store=redis_conn, sleep=lambda s: None, fetch_ahead=FETCH_AHEAD) == 3
    assert [e.data["slot"] for e in sent] == [100, 101, 102] and BehindNode.answers[101] == []


def test_redis_away_while_following_stops_nothing_and_the_last_slot_is_saved_once_back(
        node, tmp_path):
    """The last slot is where a restart resumes: Redis away (a failover) made the source exit
    and wait for the kubelet's restart delays. Now it goes on, and saves a later slot."""
    import redis

    from kades.dev import services as devservices
    from kades.dev.services import free_port
    port = free_port()
    devservices.ensure_redis(data_dir=tmp_path, port=port)
    store = redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2)
    FakeNode.blocks = {slot: FakeNode.blocks[100] for slot in range(100, 104)}
    FakeNode.tip = 103
    sent = []

    def emit(event):  # Redis goes away after slot 100's events, and comes back at slot 102's
        sent.append(event.data["slot"])
        if event.data["slot"] == 100:
            devservices.stop_redis(tmp_path)
        if event.data["slot"] == 102:
            devservices.ensure_redis(data_dir=tmp_path, port=port)

    try:
        assert follow(SolanaRpc(node, backoff_s=0.0), emit, start_slot=100, max_slots=4,
                      store=store, sleep=lambda s: None) == 4
        assert sent == [100, 101, 102, 103]  # every slot's event once
        assert int(store.get(SOLANA_LAST_SLOT)) == 103
    finally:
        devservices.stop_redis(tmp_path)
