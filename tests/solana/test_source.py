"""`kades solana-source --replay ... --stdout` on the recorded transactions, in every wrapping."""
from __future__ import annotations

import json

import shared_material

from kades.cli import main
from kades.events.catalogue import CHAIN_BLOCK, data_problems
from kades.events.envelope import from_structured
from kades.solana.block import build_blocks, transactions_of
from kades.solana.source import replay_events

DATA = shared_material.DATA / "solana/rpc"
pytestmark = shared_material.needs(DATA)


def bare(name: str) -> dict:
    document = json.loads((DATA / name).read_text())
    return document[0] if isinstance(document, list) else document


def test_stdout_prints_valid_chain_block_events_per_slot_and_mint(capsys):
    assert main(["solana-source", "--replay", str(DATA), "--stdout"]) == 0
    events = [from_structured(json.loads(line)) for line in capsys.readouterr().out.splitlines()]
    assert len({e.data["slot"] for e in events}) == 20  # the 20 recorded transactions: 20 slots
    assert all(e.type == CHAIN_BLOCK and data_problems(e) == [] for e in events)
    assert all(e.subject == e["partitionkey"] == e.data["part"]["key"] for e in events)
    slots = [e.data["slot"] for e in events]
    assert slots == sorted(slots)


def test_replaying_twice_gives_the_same_event_ids():
    first = [e.id for e in replay_events([str(DATA)])]
    assert first == [e.id for e in replay_events([str(DATA)])]


def test_envelope_array_and_getblock_wrappings_give_the_same_records(tmp_path):
    tx = bare("txparser_pumpfun_buy_bundle.json")
    block = {"parentSlot": tx["slot"] - 1, "blockTime": tx["blockTime"],
             "transactions": [{"transaction": tx["transaction"], "meta": tx["meta"]}]}
    wrappings = {"bare.json": tx, "array.json": [tx], "envelope.json": {"jsonrpc": "2.0", "result": tx},
                 "block.json": {"jsonrpc": "2.0", "result": block}}
    blocks = []
    for name, document in wrappings.items():
        (tmp_path / name).write_text(json.dumps(document))
        blocks.append([e.data for e in replay_events([str(tmp_path / name)])])
    assert all(b == blocks[0] for b in blocks)
    assert sum(len(b["swaps"]) for b in blocks[0]) == 4 and blocks[0][0]["slot"] == tx["slot"]


def test_a_null_result_is_a_skipped_slot_not_an_error():
    assert list(transactions_of({"jsonrpc": "2.0", "result": None})) == []


def test_block_stats_count_failed_transactions():
    tx = bare("txparser_pumpfun_sell_0.json")
    failed = {**tx, "meta": {**tx["meta"], "err": {"InstructionError": [0, "Custom"]}}}
    (block,) = build_blocks([tx, failed])
    assert block["stats"]["transactions"] == 2 and block["stats"]["failed"] == 1
    assert len(block["swaps"]) == 1


def test_replay_says_which_programs_it_read_and_skipped(capsys):
    rpc2 = shared_material.require(shared_material.DATA / "solana/rpc2")
    assert main(["solana-source", "--replay", str(DATA), str(rpc2), "--stdout"]) == 0
    read, skipped = capsys.readouterr().err.splitlines()[-2:]
    assert read.startswith("programs read (records): ") and "pumpswap 13" in read and "raydium_clmm 7" in read
    # the migration's wrapper and the routers' unknown venues: counted, never fatal
    assert "5kZmvKbaqNjSNEnQKEREEKu5r9JkaDRKrQMUvZagCMoz 1" in skipped and "SoLFiHG9TfgtdUXUjWAxi3LtvYuFyDLVhBWxdMZxyCe 1" in skipped


def test_a_sellers_wrapped_sol_account_closed_in_the_sale_still_names_the_seller():
    """A real PumpSwap sell, its seller's wrapped SOL account given a balance before (an
    account the wallet kept, closed by the sale, as many wallets do): with no balance after,
    it was taken for one that held nothing, the SOL the pool paid into it counted nowhere,
    and a fee recipient (out 1,220) became the trader."""
    import copy

    from kades.solana.normalise import normalise_transaction
    from kades.solana.programs import WSOL
    rpc2 = shared_material.require(shared_material.DATA / "solana/rpc2")
    (tx,) = transactions_of(json.loads((rpc2 / "pumpswap_5FoZuu1E.json").read_text()))
    (sale,) = normalise_transaction(tx)[0]["swaps"]
    keys = [k if isinstance(k, str) else k["pubkey"] for k in tx["transaction"]["message"]["accountKeys"]]
    kept = copy.deepcopy(tx)  # the seller's wrapped SOL account, opened and closed in the sale
    kept["meta"]["preTokenBalances"].append({
        "accountIndex": keys.index("7BQmbHNjJ9m2N3G2uhedKmmx6ouLVuNS32L2FZzZRztC"), "mint": WSOL,
        "owner": sale["trader"], "uiTokenAmount": {"amount": "0", "decimals": 9}})
    (again,) = normalise_transaction(kept)[0]["swaps"]
    assert (again["trader"], again["side"], again["amount_out"]) == (
        sale["trader"], "sell", sale["amount_out"]) == (sale["trader"], "sell", 126879)
