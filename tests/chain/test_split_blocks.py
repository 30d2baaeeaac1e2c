"""A chain block split per mint and into parts (kades.solana.parts) gives the consumers the
same results as the whole block, in any order of its parts: on the real recorded mainnet
transactions and on a simulated ~20,000-record block."""
from __future__ import annotations

import json
import random

import pytest
import shared_material

from kades.chain import function as chain
from kades.chain.memory import MemoryStates
from kades.chain.thresholds import ChainThresholds
from kades.chain.blockview import block_time_s
from kades.events.catalogue import MAX_EVENT_BYTES, data_problems
from kades.events.chunking import assemble, event_bytes, join_parts
from kades.events.envelope import CloudEvent
from kades.market.chain import chain_ticks
from kades.simulate.chain import simulate_chain
from kades.solana.block import build_blocks, transactions_of
from kades.solana.normalise import EMPTY_KINDS
from kades.solana.parts import SlotLinks, split_block
from kades.solana.source import recorded_files
from kades.whales import function as whales

SOURCE = "/kades/solana-source"
T = ChainThresholds()


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def recorded_blocks(folder: str) -> list[dict]:
    path = shared_material.require(shared_material.DATA / "solana" / folder)
    transactions = [tx for f in recorded_files([str(path)])
                    for tx in transactions_of(json.loads(f.read_text()))]
    return build_blocks(transactions)


def large_block(records: int = 20_000) -> dict:
    """Every record of a long simulation in one slot: ~20,000 records over 12 mints + SOL."""
    sim = simulate_chain(seed=11, minutes=300)
    block = {"slot": sim.events[-1].data["slot"], "block_time": sim.events[-1].data["block_time"],
             "stats": {"transactions": 0, "failed": 0, "skipped_programs": {}},
             **{kind: [] for kind in EMPTY_KINDS}}
    for event in sim.events:
        for kind in EMPTY_KINDS:
            block[kind].extend(event.data[kind])
    total = sum(len(block[k]) for k in EMPTY_KINDS)
    assert total >= records * 0.9, total
    return block


def run(blocks: list[dict]) -> tuple[list, list, dict, dict]:
    """Anomalies of both detectors and market ticks, and the detectors' final states."""
    chain_store, whale_store, found, ticks = MemoryStates(), MemoryStates(), [], []
    for block in blocks:
        time_s = block_time_s(block, None)
        found += chain.analyse_block(None, block, time_s, T, store=chain_store)
        found += whales.analyse_block(None, block, time_s, T, store=whale_store)
        ticks += chain_ticks(block)
    return (sorted(map(canonical, found)), sorted(map(canonical, ticks)),
            {k: json.loads(v) for k, v in chain_store.documents.items()},
            {k: json.loads(v) for k, v in whale_store.documents.items()})


def as_delivered(blocks: list[dict], seed: int) -> list[dict]:
    """The split events of every slot, shuffled within the slot, parts joined as a consumer
    joins them (the last part of a mint completes its group)."""
    rng, delivered = random.Random(seed), []
    for block in blocks:
        events = split_block(block, source=SOURCE)
        rng.shuffle(events)
        waiting: dict[str, list] = {}
        for event in events:
            part = event.data.get("part")
            if part is None:  # a slot without records: one event, no part
                delivered.append(event.data)
                continue
            waiting.setdefault(part["group"], []).append(event.data)
            if len(waiting[part["group"]]) == part["count"]:
                delivered.append(join_parts(waiting.pop(part["group"])))
        assert not waiting
    return delivered


def records_of(blocks) -> list[str]:
    return sorted(canonical([kind, r]) for b in blocks for kind in EMPTY_KINDS for r in b[kind])


@pytest.mark.parametrize("folder", ["rpc", "rpc2"])
def test_real_blocks_give_the_same_anomalies_ticks_and_states_split_or_whole(folder):
    blocks = recorded_blocks(folder)
    whole = run(blocks)
    for seed in range(3):
        assert run(as_delivered(blocks, seed)) == whole
    events = [e for b in blocks for e in split_block(b, source=SOURCE)]
    assert records_of(e.data for e in events) == records_of(blocks)
    assert all(data_problems(e) == [] and event_bytes(e) < MAX_EVENT_BYTES for e in events)


def test_a_20000_record_block_is_cut_into_small_events_that_conserve_every_record():
    block = large_block()
    events = split_block(block, source=SOURCE)
    assert len(events) > 13  # more parts than mints: some mints need several
    assert all(event_bytes(e) < MAX_EVENT_BYTES for e in events)
    assert all(data_problems(e) == [] for e in events)
    assert records_of(e.data for e in events) == records_of([block])  # none lost, none twice
    for event in events:
        part = event.data["part"]
        assert event.subject == event["partitionkey"] == part["key"]
        assert {r.get("base_mint") or r["mint"] for k in EMPTY_KINDS for r in event.data[k]} == {part["key"]}
    by_group: dict[str, list] = {}
    for event in events:
        by_group.setdefault(event.data["part"]["group"], []).append(event.data["part"])
    assert all(sorted(p["index"] for p in parts) == list(range(1, parts[0]["count"] + 1))
               for parts in by_group.values())
    assert len({e.id for e in events}) == len(events)
    assert [e.id for e in split_block(block, source=SOURCE)] == [e.id for e in events]  # replays


def test_a_20000_record_block_gives_the_same_results_split_or_whole():
    block = large_block()
    assert run(as_delivered([block], seed=5)) == run([block])


def test_simulated_stream_gives_the_same_results_split_or_whole():
    sim = simulate_chain(seed=3, minutes=30)
    blocks = [e.data for e in sim.events]
    whole = run(blocks)
    assert whole[0]  # the scenarios raise anomalies
    assert run(as_delivered(blocks, seed=1)) == whole


def test_assemble_waits_for_every_part_in_redis_whatever_the_order(redis_conn):
    block = large_block()
    events = [e for e in split_block(block, source=SOURCE) if e.data["part"]["count"] > 1]
    group = events[0].data["part"]["group"]
    parts = [e for e in events if e.data["part"]["group"] == group]
    random.Random(2).shuffle(parts)
    results = [assemble(redis_conn, "test", e) for e in parts]
    assert all(data is None for data, _ in results[:-1])
    whole, cause = results[-1]
    assert cause.id == group and whole == join_parts([e.data for e in parts])
    # a redelivered part completes it again, with the same id: replies are deduplicated
    again, cause_again = assemble(redis_conn, "test", parts[0])
    assert again == whole and cause_again.id == group
    single = CloudEvent(dict(parts[0].attributes), {**parts[0].data, "part": {**parts[0].data["part"], "count": 1}})
    assert assemble(redis_conn, "test", single) == (single.data, single)


def test_a_part_past_its_count_is_refused_and_never_completes_a_group(redis_conn):
    """"9 of 4" passed the contract, and four stored parts made a group whole whichever they
    were: the slot was analysed without its part 2 (42 of 60 swaps), and the real part 2,
    arriving later, was dropped as a duplicate slot."""
    block = large_block()
    events = [e for e in split_block(block, source=SOURCE) if e.data["part"]["count"] > 2]
    group = events[0].data["part"]["group"]
    parts = sorted((e for e in events if e.data["part"]["group"] == group),
                   key=lambda e: e.data["part"]["index"])
    count = parts[0].data["part"]["count"]
    stray = CloudEvent({**parts[0].attributes, "id": "stray"},
                       {**parts[0].data, "part": {**parts[0].data["part"], "index": count + 5}})
    assert [p.field for p in data_problems(stray)] == ["data.part.index"]
    for event in [*parts[:1], *parts[2:], stray]:  # every part but the second, and the stray
        assert assemble(redis_conn, "stray-test", event)[0] is None
    whole, _ = assemble(redis_conn, "stray-test", parts[1])
    assert whole == join_parts([e.data for e in parts])


def test_a_sources_links_are_in_every_part_and_the_contract_checks_them():
    """Every part of a mint says the slot's previous slot and the mint's (joined, the group
    keeps them); a link at or after its own slot is refused, naming each."""
    block = large_block()
    links = SlotLinks(block["slot"] - 50)
    links.sent(block["slot"] - 3, ["elsewhere"])
    mint = next(e.subject for e in split_block(block, source=SOURCE) if e.data["part"]["count"] > 2)
    links.sent(block["slot"] - 7, [mint])  # (its slot then, an older one of another run: kept as said)
    events = split_block(block, source=SOURCE, links=links)
    assert {e.data["previous_slot"] for e in events} == {block["slot"] - 7}
    assert {e.data["previous_mint_slots"][e.subject] for e in events if e.subject == mint} == {block["slot"] - 7}
    assert {e.data["previous_mint_slots"][e.subject] for e in events if e.subject != mint} == {block["slot"] - 51}
    parts = [e.data for e in events if e.subject == mint]
    assert join_parts(parts)["previous_mint_slots"] == {mint: block["slot"] - 7}
    assert all(data_problems(e) == [] for e in events)
    wrong = CloudEvent({**events[0].attributes, "id": "wrong"},
                       {**events[0].data, "previous_slot": block["slot"],
                        "previous_mint_slots": {"a": block["slot"] + 1, "b": 1.5, "c": 3}})
    assert sorted(p.field for p in data_problems(wrong)) == ["data.previous_mint_slots.b"]
    wrong.data["previous_mint_slots"].pop("b")
    assert sorted(p.field for p in data_problems(wrong)) == ["data.previous_mint_slots.a", "data.previous_slot"]


def test_a_source_forgets_the_least_recent_mints_and_says_so_by_its_horizon():
    links = SlotLinks(1000, max_mints=2)
    assert links.mint_previous("A") == 999 and links.previous is None
    links.sent(1000, ["A", "B"])
    links.sent(1001, ["A"])
    links.sent(1002, ["C"])   # B, least recently seen, forgotten: its last slot is the horizon
    assert (links.mint_previous("A"), links.mint_previous("B"), links.mint_previous("C")) == (1001, 1000, 1002)
    assert links.mint_previous("new") == 1000 and links.previous == 1002


def test_a_pool_state_or_liquidity_change_names_its_pool():
    """Every "" pool record of every token went to one pool document (kades:{chain}:pool:),
    and two tokens' pool states read as a 100 % liquidity removal; a swap's pool may be "",
    unknown, as the normaliser writes it."""
    from kades.events.catalogue import CHAIN_BLOCK, example, new_event
    data = example(CHAIN_BLOCK)
    state = {"signature": "s", "pool": "", "base_mint": "MintA" + "1" * 38,
             "quote_mint": "So11111111111111111111111111111111111111112", "base_reserve": 1,
             "quote_reserve": 1, "base_decimals": 6, "quote_decimals": 9}
    change = {"signature": "s", "pool": "", "action": "remove", "program": "raydium_v4"}
    event = new_event(CHAIN_BLOCK, "/tests", {**data, "pool_states": [state], "liquidity": [change]})
    fields = {p.field for p in data_problems(event)}
    assert {"data.pool_states[0].pool", "data.liquidity[0].pool"} <= fields


def test_a_slot_of_thousands_of_launches_still_fits_every_event():
    """The context carried every launch of the slot: 3,000 cheap mint-authority changes
    (~0.0006 SOL of fees) made every event of the slot, an empty part too, larger than an
    event may be, and solana-source exited on that slot at every restart. The launches take
    half the context's budget at most, the rest counted."""
    sim = simulate_chain(seed=3, minutes=30)
    block = next(e.data for e in sim.events if e.data["swaps"] and e.data["launches"])
    launch = block["launches"][0]
    flood = [{**launch, "kind": "set_authority", "signature": f"sig{n:05d}",
              "mint": f"Mint{n:05d}" + "x" * 36, "tx_index": 1000 + n} for n in range(3_000)]
    block = {**block, "launches": block["launches"] + flood}
    events = split_block(block, source=SOURCE)
    assert all(event_bytes(e) < MAX_EVENT_BYTES for e in events)
    assert all(data_problems(e) == [] for e in events)
    assert records_of(e.data for e in events) == records_of([block])  # the records all kept
    context = events[0].data["context"]
    assert 0 < len(context["launches"]) < len(block["launches"])
    assert context["launches_dropped"] == len(block["launches"]) - len(context["launches"])
    assert context["launches"] == [{"mint": l["mint"], "creator": l.get("creator"), "kind": l["kind"]}
                                   for l in block["launches"][:len(context["launches"])]]
