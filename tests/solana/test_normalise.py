"""The normaliser on every real mainnet transaction in ../shared/data/solana/rpc (exact amounts).

Expected values (expected/normalise_rpc.json) were read off each transaction's pre/post token
balances and token instructions (a wrapped-SOL account opened and closed within the
transaction has no balance: what it paid is read from its Transfer instructions, as the
pool creation fee of coinpusher_28FDVn-raydium-cp-initialize and
coinpusher_3iySYF-raydium-v4-initialize), and, for pump.fun, checked against the bonding
curve's lamport change, which equals the event's SOL amount.
"""
from __future__ import annotations

import copy

import pytest
import recorded
import shared_material

from kades.solana.normalise import normalise_transaction

DATA = shared_material.DATA / "solana/rpc"
pytestmark = shared_material.needs(DATA)

KEEP = {"transfers": ("mint", "source", "destination", "amount", "native"),
        "swaps": ("trader", "pool", "side", "base_mint", "base_amount", "quote_amount",
                  "mint_in", "amount_in", "mint_out", "amount_out"),
        "liquidity": ("pool", "action", "provider", "base_mint", "base_delta", "quote_delta",
                      "base_reserve_after", "quote_reserve_after", "lp_amount"),
        "pool_states": ("pool", "base_reserve", "quote_reserve", "virtual"),
        "launches": ("kind", "mint", "creator", "mint_authority", "freeze_authority")}

EXPECTED = recorded.expected("normalise_rpc.json")  # per file, the projected records


def load(name: str) -> dict:
    return recorded.load(DATA, name)


def projected(records: dict[str, list]) -> dict[str, list]:
    return recorded.projected(records, KEEP)


def test_every_recorded_transaction_is_covered():
    assert sorted(p.name for p in DATA.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_records_are_exact(name):
    records, _ = normalise_transaction(load(name))
    assert projected(records) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_record_names_its_transaction(name):
    tx = load(name)
    records, _ = normalise_transaction(tx)
    signature = tx["transaction"]["signatures"][0]
    assert all(r["signature"] == signature for rows in records.values() for r in rows)


def test_a_transaction_that_failed_on_chain_yields_nothing():
    tx = copy.deepcopy(load("txparser_pumpfun_buy_0.json"))
    tx["meta"]["err"] = {"InstructionError": [2, {"Custom": 6002}]}
    records, skipped = normalise_transaction(tx)
    assert not any(records.values()) and not skipped


def test_unknown_programs_are_counted_not_fatal():
    _, skipped = normalise_transaction(load("txparser_photon_pumpfun_buy_0.json"))
    assert skipped == {"BSfD6SHZigAfDWSjzD5Q41jw8LmKwtmjskPH9XW1mrRW": 1}


def test_swap_prices_are_quote_per_base_in_ui_units():
    records, _ = normalise_transaction(load("txparser_pumpfun_buy_0.json"))
    swap = records["swaps"][0]
    assert swap["price"] == pytest.approx((3_000_000_000 / 1e9) / (56_716_561_396_327 / 1e6))


def test_a_jupiter_route_is_one_swap_for_the_trader():
    records, _ = normalise_transaction(load("txparser_jupiterAggregatorV6_Route_1.json"))
    assert len(records["swaps"]) == 1 and records["swaps"][0]["aggregator"] == "jupiter_v6"
