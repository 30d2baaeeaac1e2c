"""LP holders: burned, locked, kept by the creator; a warning before the pull, not only at it.

Known cases first (pool observations as the replay and the normaliser give them), then the
34 real Uniswap V2 pools through the risk scorer (tests/chain/lp_warning.py), with the
figures printed and asserted with a margin below what was measured.
"""
from __future__ import annotations

import lp_warning
import pytest
import shared_material

from kades.chain import lp_holders
from kades.chain.anomaly import rfc3339
from kades.chain.liquidity import watch_pool
from kades.chain.thresholds import ChainThresholds
from kades.events.catalogue import ANOMALY_KINDS
from kades.risk.scoring import update_risk

T = ChainThresholds()
COMMON = {"base_mint": "TOKEN", "quote_mint": "SOL", "base_decimals": 6, "quote_decimals": 9, "pool": "POOL"}
INCINERATOR = "1nc1nerator11111111111111111111111111111111"
UNCX = "0x663A5C229c09b049E36dCc11a9B0d4a8Eb9db214"
POOLS = shared_material.DATA / "liquidity/uniswap_v2_pools"


def create(provider="CREATOR", lp=1000, at=0.0):
    return {"kind": "liquidity", "time_s": at, "slot": int(at), "record": {
        **COMMON, "signature": f"c{at}", "action": "create", "provider": provider, "lp_amount": lp,
        "base_delta": 10**12, "quote_delta": 10**11, "base_reserve_before": 0, "quote_reserve_before": 0,
        "base_reserve_after": 10**12, "quote_reserve_after": 10**11}}


def add(provider, lp, at):
    obs = create(provider, lp, at)
    obs["record"].update(action="add", signature=f"a{at}")
    return obs


def moves(at, *triples):
    return {"kind": "lp_transfers", "time_s": at, "slot": int(at),
            "record": {**COMMON, "signature": f"m{at}", "moves": [list(m) for m in triples]}}


def state(at):
    return {"kind": "state", "time_s": at, "slot": int(at),
            "record": {**COMMON, "signature": f"s{at}", "base_reserve": 10**12, "quote_reserve": 10**11}}


def ticks(start, end, step=60.0):
    return [state(start + k * step) for k in range(int((end - start) / step) + 1)]


def run(observations, **kw):
    _, anomalies = watch_pool(None, "POOL", observations, T, **{"lp_followed": True, **kw})
    return [a for a in anomalies if a["anomaly_type"] == lp_holders.KIND]


def risk_levels(anomalies, until):
    """The token's risk level after each LP anomaly and at `until`."""
    state, levels = None, []
    for a in anomalies + [None]:
        state, risk = update_risk(state, "TOKEN", [a] if a else [], now=a["time"] if a else rfc3339(until))
        levels.append(risk["level"])
    return levels


def test_the_kind_feeds_the_chain_component():
    assert ANOMALY_KINDS[lp_holders.KIND] == "chain"


def test_a_creator_keeping_all_lp_unlocked_goes_medium_then_high():
    found = run([create()] + ticks(60, 3600))
    assert [a["evidence"]["stage"] for a in found] == [1, 2, 2]  # the last: restated as it decays
    first, second, _ = found
    assert first["time"] == rfc3339(T.lp_notice_s) and second["time"] == rfc3339(T.lp_lock_grace_s)
    assert second["evidence"]["holder_is_creator"] and second["evidence"]["holder_share"] == 1.0
    assert second["evidence"]["withdrawable_quote"] == 10**11
    print("levels after each report, then an hour on:", risk_levels(found, 3600.0))
    assert risk_levels(found, 3600.0) == ["medium", "high", "high", "high"]


@pytest.mark.parametrize("where", ["0x000000000000000000000000000000000000dEaD", INCINERATOR, UNCX])
def test_lp_burned_or_locked_within_the_grace_stays_quiet(where):
    found = run([create(), *ticks(60, 240), moves(250, ("CREATOR", where, 1000)), *ticks(300, 7200)])
    assert found == []


def test_locking_after_a_notice_ends_the_episode():
    found = run([create(), *ticks(60, 360), moves(400, ("CREATOR", UNCX, 1000)), *ticks(420, 7200)])
    assert [a["evidence"]["stage"] for a in found] == [1]  # nothing after the lock: the notice decays


def test_widely_held_lp_stays_quiet():
    spread = [create("CREATOR", 400)] + [add(f"LP{k}", 200, 10.0 + k) for k in range(3)]
    assert run(spread + ticks(60, 7200)) == []


def test_the_holders_kept_are_bounded_and_the_rest_still_counts():
    lp = lp_holders.new_lp_state()
    lp_holders.minted(lp, "CREATOR", 10_000, creator=True)
    for k in range(lp_holders.MAX_WALLETS + 50):
        lp_holders.minted(lp, f"LP{k:04d}", 10 + k)
    held = lp_holders.shares(lp)
    assert len(lp["wallets"]) == lp_holders.MAX_WALLETS and "CREATOR" in lp["wallets"]
    assert held["supply"] == 10_000 + sum(10 + k for k in range(lp_holders.MAX_WALLETS + 50))
    assert held["creator"] + held["others"] == pytest.approx(1.0, abs=1e-5)


def test_half_burned_lowers_the_severity_below_high():
    found = run([create(), moves(30, ("CREATOR", INCINERATOR, 300)), *ticks(60, 3600)])
    assert found and max(a["evidence"]["target_score"] for a in found) < 0.7
    assert found[-1]["evidence"]["burned_share"] == 0.3 and found[-1]["evidence"]["creator_share"] == 0.7


def test_lp_taken_back_out_of_a_locker_is_high_at_once():
    locked = [create(), moves(100, ("CREATOR", UNCX, 1000)), *ticks(160, 7200, 600)]
    unlock = moves(8000, (UNCX, "CREATOR", 1000))
    found = run(locked + [unlock, state(8010)])
    (a,) = found
    assert a["evidence"]["back_from_locker"] and a["evidence"]["stage"] == 2 and a["time"] == rfc3339(8000)
    assert a["evidence"]["unlocked_for_s"] == 0 and "locker" in a["evidence"]["summary"]
    assert risk_levels(found, 8010.0)[0] == "high"


def test_the_pull_itself_ends_the_episode():
    pull = {"kind": "liquidity", "time_s": 2000.0, "slot": 2000, "record": {
        **COMMON, "signature": "r", "action": "remove", "provider": "CREATOR", "lp_amount": 1000,
        "base_delta": -10**12, "quote_delta": -10**11, "base_reserve_before": 10**12,
        "quote_reserve_before": 10**11, "base_reserve_after": 0, "quote_reserve_after": 0}}
    found = run([create(), *ticks(60, 1800), pull, *ticks(2060, 9000)])
    assert [a["evidence"]["stage"] for a in found] == [1, 2]


def test_a_standing_episode_is_restated_as_the_risk_decays_but_never_past_its_target():
    found = run([create()] + ticks(60, 48 * 3600, 600))
    assert len(found) > 2 and all(a["evidence"]["stage"] == 2 for a in found[2:])
    state = None
    for a in found:
        state, risk = update_risk(state, "TOKEN", [a], now=a["time"])
        assert risk["score"] <= found[1]["evidence"]["target_score"] + 1e-3
    assert risk["level"] == "high"


def test_without_lp_transfers_the_warning_stays_below_medium():
    """Solana blocks carry LP mints and burns of liquidity instructions only: a burn of LP
    outside them is not seen, so unfollowed holders weigh less (never a level on their own)."""
    found = run([create()] + ticks(60, 48 * 3600, 600), lp_followed=False)
    assert len(found) == 2 and max(a["evidence"]["target_score"] for a in found) < 0.5
    assert risk_levels(found, 1000.0)[-1] == "low"


def test_replayed_twice_the_pool_reports_once():
    observations = [create()] + ticks(60, 3600)
    state, first = watch_pool(None, "POOL", observations, T, lp_followed=True)
    _, again = watch_pool(state, "POOL", observations, T, lp_followed=True)
    assert len(first) >= 2 and again == []


@shared_material.needs(POOLS)
def test_real_pools_risk_high_before_the_pull_and_rarely_without_one():
    results = lp_warning.replay_all(POOLS)
    for part, held in (("tuning", False), ("held-out", True)):
        f = lp_warning.figures([r for r in results if r["held_out"] is held])
        print(f"{part}: {f}")
        # Measured: tuning 4/9 warned (3 by >= 10 min), held-out 4/5 (4 by >= 10 min); the
        # pull and dump detectors alone warn 0/9 and 1/5. Margins: one pool fewer each.
        assert f["warned"] >= f["warned_baseline"] + (2 if held else 3)
        assert f["warned_10min"] >= (3 if held else 2)
        # Never-drained pools brought to high earlier (or only) by the LP holders: measured
        # 7/14 tuning, 4/6 held-out (most kept 100% of the LP unlocked for days; 6 of the 11
        # had half their WETH withdrawn later). Margin: one pool more each.
        assert f["others_high_by_lp"] <= (5 if held else 8)
    drained = [r for r in results if r["label"] == lp_warning.DRAINED]
    assert sum(1 for r in drained if (r["lead_s"]["with"] or 0) >= 600) >= 6  # measured 7/14


def solana_block(slot, minutes, *, liquidity=(), reserves=(10**15, 10**11)):
    pool = {"signature": f"sig{slot}", "tx_index": 0, "pool": "RaydiumPool", "base_mint": "Mint1",
            "quote_mint": "So11111111111111111111111111111111111111112", "base_decimals": 6, "quote_decimals": 9}
    state = {**pool, "program": "raydium_cpmm", "base_reserve": reserves[0], "quote_reserve": reserves[1],
             "virtual": False, "price": reserves[1] / 1e9 / (reserves[0] / 1e6)}
    return {"slot": slot, "block_time": rfc3339(1.7e9 + minutes * 60), "transfers": [], "swaps": [],
            "launches": [], "pool_states": [state],
            "liquidity": [{**pool, **change, "program": "raydium_cpmm"} for change in liquidity]}


def test_chain_analysis_warns_of_a_solana_pool_whose_creator_keeps_its_lp():
    """Wired as deployed: a Raydium pool's create record (LP minted to the creator, as the
    normaliser reads it from the LP mint's supply) and later pool states, through analyse_block."""
    from kades.chain import function as chain_function
    from kades.chain.blockview import block_time_s
    from kades.chain.memory import MemoryStates
    from kades.events.catalogue import ANOMALY_DETECTED, data_problems, new_event
    created = {"action": "create", "provider": "Creator1", "lp_mint": "LpMint1", "lp_amount": 10**9,
               "base_delta": 10**15, "quote_delta": 10**11, "base_reserve_before": 0,
               "quote_reserve_before": 0, "base_reserve_after": 10**15, "quote_reserve_after": 10**11}
    blocks = [solana_block(1000, 0, liquidity=[created])] + [solana_block(1000 + 150 * k, 1.0 * k)
                                                              for k in range(1, 21)]
    store, found = MemoryStates(), []
    for block in blocks:
        found += chain_function.analyse_block(None, block, block_time_s(block, None), T, store)
    warnings = [a for a in found if a["anomaly_type"] == lp_holders.KIND]
    assert [a["evidence"]["stage"] for a in warnings] == [1, 2]
    assert warnings[-1]["evidence"]["holder"] == "Creator1" and not warnings[-1]["evidence"]["lp_transfers_followed"]
    assert new_event(ANOMALY_DETECTED, "test", {"anomalies": warnings}, subject="Mint1") is not None
    assert data_problems(new_event(ANOMALY_DETECTED, "test", {"anomalies": warnings}, subject="Mint1")) == []
