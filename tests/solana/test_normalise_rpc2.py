"""The normaliser on every real mainnet transaction in ../shared/data/solana/rpc2 (exact amounts).

One file per program or route (its README lists each with its source): PumpSwap buy, sell,
buy_exact_quote_in through a router and boost_buy_and_burn (Token-2022 mints among them),
pump.fun's migrate into a PumpSwap pool followed by a buy in the same transaction, Raydium
AMM v4, CPMM and CLMM, Jupiter, DFlow, Titan and Raydium routes through Whirlpool, DLMM,
CLMM, CPMM and programs the normaliser does not read, a Token-2022 transfer, two failed
transactions. Expected values (expected/normalise_rpc2.json) were read off each
transaction's token balances and its token instructions: a swap's amount_in is what the
pools took in (what the trader paid less fees to other people, recorded as transfers),
amount_out what reached the trader; pool_amount_out is what left the pools when a Token-2022
transfer fee (raydium-cpmm_2LMzxp9Y: sent 14,793,785,573, received 14,645,847,717) or
PumpSwap's pool-side fees came between. `signer` is set where
someone other than the trader signed (a relayer). Programs without a real example here
(Raydium LaunchLab, PumpSwap deposit/withdraw, Meteora DAMM v2, direct Whirlpool/DLMM) are
tested on transactions built from their published interfaces: test_amm_paths.py.
"""
from __future__ import annotations

import pytest
import recorded
import shared_material

from kades.solana.normalise import normalise_transaction

DATA = shared_material.DATA / "solana/rpc2"
pytestmark = shared_material.needs(DATA)

KEEP = {"transfers": ("mint", "source", "destination", "amount", "native"),
        "swaps": ("trader", "signer", "program", "pool", "side", "base_mint", "base_amount", "quote_amount",
                  "mint_in", "amount_in", "mint_out", "amount_out", "pool_amount_out"),
        "liquidity": ("pool", "program", "action", "provider", "base_mint", "base_delta", "quote_delta",
                      "base_reserve_after", "quote_reserve_after", "migration"),
        "pool_states": ("pool", "program", "base_reserve", "quote_reserve", "virtual"),
        "launches": ("kind", "mint", "creator", "mint_authority", "freeze_authority")}

EXPECTED = recorded.expected("normalise_rpc2.json")  # per file, the projected records


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


def test_a_token_2022_transfer_fee_makes_received_less_than_sent():
    (swap,) = normalise_transaction(load("raydium-cpmm_2LMzxp9Y.json"))[0]["swaps"]
    assert (swap["pool_amount_out"], swap["amount_out"]) == (14_793_785_573, 14_645_847_717)
    assert swap["signer"] == "AgmLJBMDCqWynYnQiPCuj9ewsNNsBJXyzoUhD9LJzN51"  # a relayer paid the fee
    assert swap["trader"] == "8qrd91GRSF8YdB5HPymSrkoiyZmpSw4ZBYwZ18khAETi"  # whose tokens moved


def test_the_migration_creates_the_pool_before_the_buy():
    records, _ = normalise_transaction(load("pumpfun_31V8YGSQ.json"))
    (created,) = records["liquidity"]
    assert created["action"] == "create" and created["quote_reserve_before"] == 0
    assert created["migration"]["bonding_curve"] == "DCuxErCF1NpwZboQvWHedd12yYiA4tbLUtdoeEizE8Ex"
    first, second = records["pool_states"]
    assert (first["base_reserve"], first["quote_reserve"]) == (created["base_reserve_after"], created["quote_reserve_after"])
    (buy,) = records["swaps"]
    assert second["base_reserve"] == first["base_reserve"] - buy["base_amount"]


def test_the_fees_a_buyer_paid_are_the_buyers_transfers_as_its_instructions_say():
    """Senders were paired with receivers by size alone: the migration's 85 SOL paid into the
    pool made its account the sender of the three fees the buyer's instructions paid, false
    links between wallets for the ring and cluster detectors."""
    records, _ = normalise_transaction(load("pumpfun_31V8YGSQ.json"))
    (buy,) = records["swaps"]
    fees = [t for t in records["transfers"] if not t.get("native")]
    assert len(fees) == 3 and {t["source"] for t in fees} == {buy["trader"]}
    assert sum(t["amount"] for t in fees) == 64_929_885 * 2 + 41_890_249


def test_routers_and_programs_not_read_are_counted_not_fatal():
    _, skipped = normalise_transaction(load("pumpswap_2zNeSn8c.json"))
    assert skipped == {"6m2CDdhRgxpH4WjvdzxAYbGxwdGUz5MziiL5jek2kBma": 1}
    _, skipped = normalise_transaction(load("jupiter_4VhDRLUK.json"))
    assert set(skipped) == {"SoLFiHG9TfgtdUXUjWAxi3LtvYuFyDLVhBWxdMZxyCe", "obriQD1zbpyLz95G5n7nJe6a4DPjpFwa5XYPoNm113y",
                            "3i5JeuZuUxeKtVysUnwQNGerJP2bSMX9fTFfS4Nxe3Br"}


@pytest.mark.parametrize("name", ["jupiter_43VK3TtY.json", "jupiter_58FymkjJ.json"])
def test_failed_transactions_yield_nothing(name):
    records, skipped = normalise_transaction(load(name))
    assert not any(records.values()) and not skipped


def test_mangled_transactions_never_crash_the_normaliser():
    """Seeded: instruction data and account lists cut short or shuffled, inner instructions or
    token balances missing. Unknown shapes are read as far as they go, never fatal."""
    import copy
    import random

    rng = random.Random(15)
    names = sorted(EXPECTED)
    for _ in range(300):
        tx = copy.deepcopy(load(rng.choice(names)))
        meta = tx["meta"]
        groups = [tx["transaction"]["message"]["instructions"]] + [g["instructions"] for g in meta["innerInstructions"]]
        for ix in (ix for group in groups for ix in group):
            roll = rng.random()
            if roll < 0.05:
                ix["data"] = ix["data"][:rng.randint(0, len(ix["data"]))]
            elif roll < 0.1:
                ix["accounts"] = ix["accounts"][:rng.randint(0, len(ix["accounts"]))]
            elif roll < 0.12:
                rng.shuffle(ix["accounts"])
        if rng.random() < 0.2:
            meta["innerInstructions"] = []
        for side in ("preTokenBalances", "postTokenBalances"):
            if meta[side] and rng.random() < 0.2:
                meta[side].pop(rng.randrange(len(meta[side])))
        records, _ = normalise_transaction(tx)
        assert all(r["signature"] == tx["transaction"]["signatures"][0] for rows in records.values() for r in rows)
