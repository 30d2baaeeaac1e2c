"""kades.chain.slotlog: each slot's fundings appended once, whatever its parts and replicas,
and every process's view the same whichever way it read the log, on a real Redis."""
from __future__ import annotations

import random

from kades.chain.funding import FundersAsOf, seeding
from kades.chain.slotlog import PRICES_KEPT, RESTART_SLOTS, SlotLog, price_as_of
from kades.keys import outbox_key, unblocked_key
from kades.runtime.state import OUTBOX_TTL_S
from kades.keys import (CHAIN_FUNDING_LOG, CHAIN_FUNDING_SLOTS, CHAIN_WATERMARK, CHAIN_WATERMARK_AHEAD,
                        CHAIN_WATERMARK_BLOCKED, WHALES_FUNDING_LOG, WHALES_FUNDING_SLOTS)

TTL_S = 60.0


def replica() -> SlotLog:
    return SlotLog(CHAIN_FUNDING_LOG, CHAIN_FUNDING_SLOTS)


def records(seed: int, slots: int) -> list[dict]:
    """Slots 0.4 s apart, a few funders paying wallets (fan-outs and single payments), over
    far more than TTL_S + KEEP_S so that fundings expire."""
    rng, found = random.Random(seed), []
    for n in range(slots):
        pairs = [[f"F{rng.randrange(6)}", f"w{rng.randrange(300)}"] for _ in range(rng.randrange(0, 9))]
        found.append({"slot": 1000 + n, "time_s": 1.7e9 + n * 4.0, "fundings": seeding(pairs),
                      "sol_usd": rng.choice([None, 140.0 + n])})
    return found


def test_a_slot_is_appended_once_whatever_its_parts_and_replicas(redis_conn):
    """Every part of a slot (one event per mint) carries its context: 150 parts appended the
    same fundings 150 times to the shared document's compare-and-set. Now once, and a replica
    that took no part of the slot reads it too."""
    a, b = replica(), replica()
    slot = {"slot": 7, "time_s": 1.7e9, "fundings": seeding([["F", "x"], ["F", "y"], ["F", "z"], ["T", "tip"]])}
    for log in (a, b, a, b):
        view = log.sync(redis_conn, slot, ttl_s=TTL_S)
    assert redis_conn.xlen(CHAIN_FUNDING_LOG) == 1
    elsewhere = replica().sync(redis_conn, None, ttl_s=TTL_S)
    for seen in (view, elsewhere, a.sync(redis_conn, None, ttl_s=TTL_S)):
        funders = FundersAsOf(seen, slot=7, time_s=1.7e9, ttl_s=TTL_S)
        assert dict(funders) == {"x": "F", "y": "F", "z": "F"}  # a tip of one is no seeding


def test_every_process_has_the_same_view_however_it_read_the_log(redis_conn, monkeypatch):
    """One replica reads after every slot, another every 37 slots, a third only at the end
    (a new process, in pages), and a process without Redis applies them one by one: the same
    wallets and funders, the same services, the same prices."""
    from kades.chain import slotlog
    monkeypatch.setattr(slotlog, "PAGE", 7)
    found = records(3, 600)
    step, every_37, late, offline = replica(), replica(), replica(), replica()
    for n, record in enumerate(found):
        step.sync(redis_conn, record, ttl_s=TTL_S)
        offline.sync(None, record, ttl_s=TTL_S)
        if n % 37 == 0:
            every_37.sync(redis_conn, None, ttl_s=TTL_S)
    views = [log.sync(redis_conn, None, ttl_s=TTL_S) for log in (step, every_37, late)]
    views.append(offline.sync(None, None, ttl_s=TTL_S))
    assert all(view == views[0] for view in views[1:])
    assert views[0]["funded"] and len(views[0]["sol_usd"]) == PRICES_KEPT
    # what expired went: every funding kept is within the TTL (and KEEP_S) of the newest
    newest = max(e[1] for entries in views[0]["funded"].values() for e in entries)
    assert newest == views[0]["newest_s"]
    assert min(e[1] for entries in views[0]["funded"].values() for e in entries) > found[0]["time_s"]


def test_a_process_away_longer_than_the_log_keeps_builds_its_view_again(redis_conn):
    """What a process read last was trimmed from the stream while it was away: it cannot know
    what went between, so it takes the stream as a new process would."""
    found = records(5, 200)
    away, writer = replica(), replica()
    for record in found[:50]:
        before = away.sync(redis_conn, record, ttl_s=TTL_S)
    for record in found[50:]:
        writer.sync(redis_conn, record, ttl_s=TTL_S)
    redis_conn.xtrim(CHAIN_FUNDING_LOG, maxlen=20, approximate=False)  # its last read went
    rebuilt = away.sync(redis_conn, None, ttl_s=TTL_S)
    assert rebuilt == replica().sync(redis_conn, None, ttl_s=TTL_S)
    assert rebuilt["sol_usd"] != before["sol_usd"]  # the prices of the slots trimmed went too


def test_a_slot_priced_long_before_the_slot_analysed_still_prices_it(redis_conn):
    """whale-detection kept the SOL price of 64 slots, fewer than the reorder buffer's 75 of
    lateness: a slot released 75 slots late, whose block had no price of its own, had lost
    the price of every slot before it."""
    log = SlotLog(WHALES_FUNDING_LOG, WHALES_FUNDING_SLOTS)
    log.sync(redis_conn, {"slot": 100, "time_s": 40.0, "fundings": [], "sol_usd": 150.0}, ttl_s=TTL_S)
    for n in range(1, 120):
        view = log.sync(redis_conn, {"slot": 100 + n, "time_s": 40.0 + 0.4 * n, "fundings": [],
                                     "sol_usd": 150.0 + n}, ttl_s=TTL_S)
    assert price_as_of(view, 100, 80.0) == 150.0


def test_the_shared_document_of_the_code_before_is_taken_into_the_log(redis_conn):
    """Upgraded, the functions read the log only: the hour's fundings and prices in the old
    shared document would have been lost, the insiders and split wallets they name unseen
    for an hour. A process's first sync appends them slot by slot and deletes the document."""
    from kades.chain.funding import record_fundings
    from kades.jsontext import compact_json
    from kades.keys import WHALES_FUNDINGS_DOCUMENT
    before = record_fundings(None, [["F", "a"], ["F", "b"], ["F", "c"]], slot=5, time_s=2.0, ttl_s=TTL_S)
    record_fundings(before, [["G", "a"], ["G", "d"], ["G", "e"]], slot=9, time_s=3.6, ttl_s=TTL_S)
    document = {**before.doc(), "sol_usd": [[5, 2.0, 150.0], [8, 3.2, 151.0]]}
    redis_conn.set(WHALES_FUNDINGS_DOCUMENT, compact_json(document))
    log = SlotLog(WHALES_FUNDING_LOG, WHALES_FUNDING_SLOTS, WHALES_FUNDINGS_DOCUMENT)
    view = log.sync(redis_conn, {"slot": 9, "time_s": 3.6, "fundings": [["G", "a"], ["G", "d"], ["G", "e"]]},
                    ttl_s=TTL_S)
    assert view["funded"] == before.funded and view["services"] == before.services
    assert view["sol_usd"] == document["sol_usd"]
    assert redis_conn.exists(WHALES_FUNDINGS_DOCUMENT) == 0
    assert redis_conn.xlen(WHALES_FUNDING_LOG) == 3  # slots 5, 8 and 9, each once
    assert SlotLog(WHALES_FUNDING_LOG, WHALES_FUNDING_SLOTS).sync(redis_conn, None, ttl_s=TTL_S) == view


def test_a_replay_of_slots_older_than_every_slot_kept_appends_nothing(redis_conn, monkeypatch):
    """The slots appended are remembered up to SEEN_KEPT: one older than all of them (a day's
    dead letters replayed) was let in again by each of its parts, and each append had every
    process take it in. Its fundings have expired anyway."""
    from kades.chain import slotlog
    monkeypatch.setattr(slotlog, "SEEN_KEPT", 5)
    log = replica()
    for slot in range(100, 110):
        log.sync(redis_conn, {"slot": slot, "time_s": slot * 0.4, "fundings": [["F", f"w{slot}"]]}, ttl_s=TTL_S)
    for slot in (50, 104, 50):
        log.sync(redis_conn, {"slot": slot, "time_s": slot * 0.4, "fundings": [["F", f"late{slot}"]]}, ttl_s=TTL_S)
    assert redis_conn.xlen(CHAIN_FUNDING_LOG) == 10
    log.sync(redis_conn, {"slot": 110, "time_s": 44.0, "fundings": [["F", "w110"]]}, ttl_s=TTL_S)
    assert redis_conn.xlen(CHAIN_FUNDING_LOG) == 11  # a new slot still is


def test_the_watermark_follows_the_committed_slots_links(redis_conn):
    """Every slot up to the watermark has a part committed: a slot whose previous slot is in
    moves it on, through the slots that came before their turn; a slot without a link waits,
    but the watermark is never further behind the newest slot than the lateness."""
    redis_conn.delete(CHAIN_WATERMARK, CHAIN_WATERMARK_AHEAD, CHAIN_WATERMARK_BLOCKED)
    log = SlotLog(CHAIN_FUNDING_LOG, CHAIN_FUNDING_SLOTS,
                  watermark_keys=(CHAIN_WATERMARK, CHAIN_WATERMARK_AHEAD, CHAIN_WATERMARK_BLOCKED))

    def arrived(slot, previous, time_s=None):  # blocks 0.4 s apart
        time_s = 1.7e9 + 0.4 * slot if time_s is None else time_s
        return log.arrived(redis_conn, slot, previous, time_s, lateness_slots=75, ttl_s=TTL_S)[0] - B

    B = 10_000
    assert arrived(B + 100, B + 99) == 25    # the first starts it the lateness before
    assert arrived(B + 176, B + 175) == 101  # the newest less the lateness: 100 is in
    assert arrived(B + 103, B + 102) == 101  # 102 not committed yet
    assert arrived(B + 102, B + 101) == 103  # and 103 waited for it
    assert arrived(B + 102, B + 101) == 103  # a redelivery changes nothing
    assert arrived(B + 110, None) == 103     # no link: 104-109 may still come
    assert arrived(B + 190, B + 189) == 115  # the newest less the lateness: 110 is in
    assert redis_conn.zrange(CHAIN_WATERMARK_AHEAD, 0, -1) == [b"10176", b"10190"]
    assert log.sync(redis_conn, None, ttl_s=TTL_S)["watermark"] == B + 115
    # a block days of slots past the newest, at its true time: not taken
    assert arrived(B + 1_000_190, B + 189, time_s=1.7e9 + 0.4 * (B + 191)) == 115
    assert redis_conn.hget(CHAIN_WATERMARK, "newest") == b"10190"
    # one RESTART_SLOTS behind the newest (the newest was untrue, or a replay): again from it
    assert arrived(B + 190 - RESTART_SLOTS - 1, None) == 190 - RESTART_SLOTS - 1 - 75
    assert redis_conn.zrange(CHAIN_WATERMARK_AHEAD, 0, -1) == [b"%d" % (B + 190 - RESTART_SLOTS - 1)]
    assert 0 < redis_conn.ttl(CHAIN_WATERMARK) and 0 < redis_conn.ttl(CHAIN_WATERMARK_AHEAD)
    assert SlotLog(CHAIN_FUNDING_LOG, CHAIN_FUNDING_SLOTS).sync(redis_conn, None, ttl_s=TTL_S)["watermark"] is None
    # mints a commit left waiting for the watermark: given back by the commit that moves it there
    w = log.arrived(redis_conn, B + 5000, B + 4999, 1.7e9 + 0.4 * (B + 5000), lateness_slots=75,
                    ttl_s=TTL_S, blocked={"M1": B + 5001, "M2": B + 5002})
    assert w == (B + 5000 - 75, [])
    assert log.arrived(redis_conn, B + 5001, B + 5000, 1.7e9 + 0.4 * (B + 5001), lateness_slots=75,
                       ttl_s=TTL_S) == (B + 5001 - 75, [])   # 5,000 is not in yet
    assert log.arrived(redis_conn, B + 4999, B + 4925, 1.7e9 + 0.4 * (B + 4999), lateness_slots=75,
                       ttl_s=TTL_S) == (B + 5001, ["M1"])
    assert redis_conn.zrange(CHAIN_WATERMARK_BLOCKED, 0, -1) == [b"M2"]
    log.block(redis_conn, {"M3": B + 5001}, ttl_s=TTL_S)  # a flush's: given back by the next commit
    log.block(redis_conn, {"M3": B + 9000}, ttl_s=TTL_S)  # (a later need does not delay it)
    assert log.arrived(redis_conn, B + 5002, B + 5001, 1.7e9 + 0.4 * (B + 5002), lateness_slots=75,
                       ttl_s=TTL_S) == (B + 5002, ["M3", "M2"])
    assert log.sync(None, None, ttl_s=TTL_S)["watermark"] is None  # offline: none


def test_an_events_retry_gets_the_mints_it_took_from_the_blocked_set(redis_conn):
    """A commit that moved the watermark took mints from the blocked set and released their
    slots in the same request; its reply lost, the Broker retries the event, and the retry
    must release (or read from the outbox) the same mints: they are no longer in the set."""
    keys = (CHAIN_WATERMARK, CHAIN_WATERMARK_AHEAD, CHAIN_WATERMARK_BLOCKED)
    redis_conn.delete(*keys)
    log = SlotLog(CHAIN_FUNDING_LOG, CHAIN_FUNDING_SLOTS, watermark_keys=keys)
    outbox = outbox_key("chain-analysis", "/s", "event-1")
    redis_conn.delete(unblocked_key(outbox))

    def arrived(slot, previous, **kw):
        return log.arrived(redis_conn, slot, previous, 1.7e9 + 0.4 * slot, lateness_slots=75,
                           ttl_s=TTL_S, **kw)[1]

    assert arrived(900, None, blocked={"A": 905, "B": 990}) == []  # the watermark at 825
    assert arrived(980, 979, outbox=outbox) == ["A"]       # 905: the newest less the lateness
    log.block(redis_conn, {"C": 905}, ttl_s=TTL_S)
    assert arrived(980, 979, outbox=outbox) == ["A"]       # the retry: A again, not C
    assert arrived(981, 980) == ["C"]                      # C goes with the next commit
    assert 0 < redis_conn.ttl(unblocked_key(outbox)) <= OUTBOX_TTL_S


def test_the_prices_kept_are_the_merge_of_every_batch_in_any_order():
    """A batch of prices after the kept ones, in slot order, is appended without the merge's
    sort; any other (late, shuffled, repeated: the newest kept slot again, a slot twice in
    the batch) is merged. Either way the kept prices are the newest PRICES_KEPT of everything
    applied, each once, in slot order, in a new list: a view read before keeps its own."""
    rng = random.Random(7)
    for _ in range(30):
        log, applied = SlotLog("a", "b"), set()
        slots = list(range(1000, 1000 + rng.randrange(50, 700)))
        if rng.random() < 0.5:
            rng.shuffle(slots)
        at = 0
        while at < len(slots):
            batch = slots[at:at + rng.randrange(1, 12)]
            at += len(batch)
            if applied and rng.random() < 0.3:
                batch = [max(applied)] + batch  # the newest kept slot again, first
            if batch and rng.random() < 0.2:
                batch.append(batch[-1])  # twice in a row
            batch += rng.sample(sorted(applied), min(len(applied), rng.randrange(0, 3)))  # again
            records = [{"slot": s, "time_s": 0.4 * s, "fundings": [], "sol_usd": 100.0 + s % 97}
                       for s in batch]
            seen = log._view(TTL_S, None)["sol_usd"]
            seen_before = [list(p) for p in seen]
            log._apply(records, TTL_S)
            applied.update(batch)
            expected = [[s, 0.4 * s, 100.0 + s % 97] for s in sorted(applied)][-PRICES_KEPT:]
            assert log._prices == expected
            assert seen == seen_before  # the reader's list untouched
