"""AMM paths without recorded mainnet data: Orca Whirlpool swaps and a two-hop Jupiter route.

The transactions are built by hand in `json` encoding with the same shape as the RPC's.
"""
from __future__ import annotations

from kades.solana import programs as p
from kades.solana.base58 import b58encode
from kades.solana.normalise import normalise_transaction

TRADER, X, Y = "Trader1111111111111111111111111111111111111", "MintX111111111111111111111111111111111111111", "MintY11111111111111111111111111111111111111"


def transaction(keys: list[str], instructions: list[dict], balances: list[tuple]) -> dict:
    """balances: (account index, owner, mint, pre, post)."""
    def side(which):
        return [{"accountIndex": i, "owner": owner, "mint": mint,
                 "uiTokenAmount": {"amount": str(pre if which == "pre" else post), "decimals": 6}}
                for i, owner, mint, pre, post in balances]
    return {"slot": 1, "blockTime": 1_700_000_000,
            "transaction": {"signatures": ["SIG"], "message": {
                "accountKeys": keys, "header": {"numRequiredSignatures": 1}, "instructions": instructions}},
            "meta": {"err": None, "preBalances": [10**9] * len(keys), "postBalances": [10**9] * len(keys),
                     "preTokenBalances": side("pre"), "postTokenBalances": side("post"),
                     "innerInstructions": [], "logMessages": []}}


def test_a_whirlpool_swap_is_read_from_the_pool_vaults():
    keys = [TRADER, "Whirlpool1", "VaultX", "VaultSol", "AtaX", "AtaSol", p.ORCA_WHIRLPOOL, p.TOKEN]
    ix = {"programIdIndex": 6, "accounts": [7, 0, 1, 4, 2, 5, 3], "data": b58encode(b"\xf8\xc6\x9e\x91\xe1\x75\x87\xc8")}
    tx = transaction(keys, [ix], [(2, "Whirlpool1", X, 1000, 900), (3, "Whirlpool1", p.WSOL, 500, 600),
                                  (4, TRADER, X, 0, 100), (5, TRADER, p.WSOL, 100, 0)])
    records, skipped = normalise_transaction(tx)
    (swap,) = records["swaps"]
    assert (swap["program"], swap["pool"], swap["side"], swap["base_amount"], swap["quote_amount"]) == \
        ("orca_whirlpool", "Whirlpool1", "buy", 100, 100)
    assert records["pool_states"][0]["base_reserve"] == 900 and records["transfers"] == [] and not skipped


def test_a_two_hop_route_is_one_swap_for_the_trader():
    keys = [TRADER, "PoolA", "PoolB", "VaultAX", "VaultASol", "VaultBSol", "VaultBY", "AtaX", "AtaY",
            p.JUPITER_V6, p.ORCA_WHIRLPOOL]
    hop_a = {"programIdIndex": 10, "accounts": [1, 3, 4, 7], "data": ""}
    hop_b = {"programIdIndex": 10, "accounts": [2, 5, 6, 8], "data": ""}
    tx = transaction(keys, [{"programIdIndex": 9, "accounts": [0], "data": ""}],
                     [(3, "PoolA", X, 1000, 1100), (4, "PoolA", p.WSOL, 500, 450),
                      (5, "PoolB", p.WSOL, 800, 850), (6, "PoolB", Y, 3000, 2970),
                      (7, TRADER, X, 100, 0), (8, TRADER, Y, 0, 30)])
    tx["meta"]["innerInstructions"] = [{"index": 0, "instructions": [hop_a, hop_b]}]
    records, _ = normalise_transaction(tx)
    (swap,) = records["swaps"]
    assert (swap["mint_in"], swap["amount_in"], swap["mint_out"], swap["amount_out"]) == (X, 100, Y, 30)
    assert swap["route"] == ["PoolA", "PoolB"] and swap["aggregator"] == "jupiter_v6"
    assert len(records["pool_states"]) == 2
