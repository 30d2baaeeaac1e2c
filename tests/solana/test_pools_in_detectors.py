"""The chain detectors see PumpSwap and Raydium CPMM pools as they see AMM v4 ones.

Transactions built from the programs' published interfaces (pump_amm: create_pool, buy and
withdraw name the pool first and the pool owns its vaults; raydium_cp_swap: initialize names
the pool state fourth, deposit/withdraw third, and the CPMM authority owns the vaults), normalised, then fed as
chain blocks through chain-analysis's and whale-detection's pure code (state in memory,
each slot released at once).
"""
from __future__ import annotations

import pytest

from kades.chain import function as chain_analysis
from kades.chain.memory import MemoryStates
from kades.chain.thresholds import ChainThresholds
from kades.solana import programs as p
from kades.solana.base58 import b58encode
from kades.solana.normalise import normalise_transaction
from kades.whales import function as whale_detection

CREATOR, WHALE = "Creator111111111111111111111111111111111111", "Whale11111111111111111111111111111111111111"
TOKEN = "Token111111111111111111111111111111111111111"
T = ChainThresholds()


def pool_transaction(program: str, instruction: str, signer: str, base: tuple[int, int], quote: tuple[int, int]) -> dict:
    """`signer` moves tokens against a pool of `program`; base/quote: the pool's (pre, post)."""
    vault_owner = p.RAYDIUM_CPMM_AUTHORITY if program == p.RAYDIUM_CPMM else "Pool1"
    keys = [signer, "Pool1", "VaultT", "VaultSol", "AtaT", "AtaSol", vault_owner, program, "Config1"]
    order = ([0, 8, 6, 1, 2, 3] if instruction == "initialize"  # creator, config, authority, pool state
             else {p.PUMPSWAP: [1, 0, 2, 3, 4, 5, 6], p.RAYDIUM_CPMM: [0, 6, 1, 4, 5, 2, 3]}[program])
    ix = {"programIdIndex": 7, "accounts": order, "data": b58encode(p._anchor("global", instruction) + bytes(24))}
    user = (10**15, 10**15 - (base[1] - base[0])), (10**13, 10**13 - (quote[1] - quote[0]))

    def side(which: int) -> list[dict]:
        rows = [(2, vault_owner, TOKEN, base), (3, vault_owner, p.WSOL, quote), (4, signer, TOKEN, user[0]),
                (5, signer, p.WSOL, user[1])]
        return [{"accountIndex": i, "owner": o, "mint": m, "uiTokenAmount": {"amount": str(v[which]), "decimals": 6 if m == TOKEN else 9}}
                for i, o, m, v in rows]
    return {"transaction": {"signatures": [f"{instruction}-{signer[:5]}"], "message": {
                "accountKeys": keys, "header": {"numRequiredSignatures": 1}, "instructions": [ix]}},
            "meta": {"err": None, "preBalances": [10**9] * len(keys), "postBalances": [10**9] * len(keys),
                     "preTokenBalances": side(0), "postTokenBalances": side(1), "innerInstructions": [], "logMessages": []}}


def block(slot: int, tx: dict) -> dict:
    records, _ = normalise_transaction(tx)
    return {"slot": slot, "block_time": f"2026-01-01T00:00:{slot:02d}Z", **records}


CREATE = {p.PUMPSWAP: "create_pool", p.RAYDIUM_CPMM: "initialize"}
ADD_REMOVE = {p.PUMPSWAP: ("deposit", "withdraw"), p.RAYDIUM_CPMM: ("deposit", "withdraw")}


@pytest.mark.parametrize("program", [p.PUMPSWAP, p.RAYDIUM_CPMM], ids=["pumpswap", "raydium_cpmm"])
def test_a_pool_drained_by_its_creator_is_a_liquidity_removal(program):
    store, found = MemoryStates(), []
    steps = [pool_transaction(program, CREATE[program], CREATOR, (0, 8 * 10**14), (0, 85 * 10**9)),
             pool_transaction(program, ADD_REMOVE[program][1], CREATOR, (8 * 10**14, 8 * 10**13), (85 * 10**9, 85 * 10**8))]
    for slot, tx in enumerate(steps, start=1):
        data = block(slot, tx)
        assert data["liquidity"][0]["program"] == p.AMM_NAMES[program] and data["pool_states"]
        found += chain_analysis.analyse_block(None, data, 1_767_225_600.0 + slot, T, store)
    (anomaly,) = found
    assert anomaly["anomaly_type"] == "liquidity_removal" and anomaly["token"] == TOKEN
    assert anomaly["evidence"]["pool"] == "Pool1" and anomaly["evidence"]["removed_share"] == 0.9
    assert anomaly["evidence"]["provider"] == CREATOR and anomaly["confidence"] == 0.95  # the creator pulled it


def test_a_large_buy_into_a_pumpswap_pool_is_a_whale_movement():
    store, found = MemoryStates(), []
    steps = [pool_transaction(p.PUMPSWAP, "create_pool", CREATOR, (0, 8 * 10**14), (0, 85 * 10**9)),
             pool_transaction(p.PUMPSWAP, "buy", WHALE, (8 * 10**14, 7 * 10**14), (85 * 10**9, 99 * 10**9))]
    for slot, tx in enumerate(steps, start=1):
        found += whale_detection.analyse_block(None, block(slot, tx), 1_767_225_600.0 + slot, T, store)
    (anomaly,) = found
    assert anomaly["anomaly_type"] == "whale_movement" and anomaly["evidence"]["wallet"] == WHALE
    assert anomaly["evidence"]["reasons"]["liquidity_share"] == pytest.approx(14 / 85)
