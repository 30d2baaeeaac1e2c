"""Liquidity removal and price dumps: known cases, then the real labelled Uniswap V2 pools."""
from __future__ import annotations

import pytest
import shared_material

from kades.chain.liquidity import watch_pool
from kades.chain.thresholds import ChainThresholds
from kades.chain.uniswap_replay import load_labels, pool_observations

POOLS = shared_material.DATA / "liquidity/uniswap_v2_pools"
T = ChainThresholds()
COMMON = {"base_mint": "TOKEN", "quote_mint": "SOL", "base_decimals": 6, "quote_decimals": 9, "pool": "POOL"}


def liquidity(sig, action, provider, before, after, slot):
    record = {**COMMON, "signature": sig, "action": action, "provider": provider,
              "base_delta": after[0] - before[0], "quote_delta": after[1] - before[1],
              "base_reserve_before": before[0], "quote_reserve_before": before[1],
              "base_reserve_after": after[0], "quote_reserve_after": after[1], "lp_amount": 7}
    return {"kind": "liquidity", "time_s": 1000.0 + slot, "slot": slot, "record": record}


def state(sig, base, quote, slot):
    return {"kind": "state", "time_s": 1000.0 + slot, "slot": slot,
            "record": {**COMMON, "signature": sig, "base_reserve": base, "quote_reserve": quote}}


def created(provider="CREATOR"):
    return [liquidity("s0", "create", provider, (0, 0), (10**12, 10**11), 1), state("s0", 10**12, 10**11, 1)]


@pytest.mark.parametrize("share, fires, severity", [(0.4, False, None), (0.5, True, 0.5),
                                                    (0.7, True, 0.75), (0.95, True, 1.0)])
def test_removal_share_sets_severity(share, fires, severity):
    left = (int(10**12 * (1 - share)), int(10**11 * (1 - share)))
    _, anomalies = watch_pool(None, "POOL", created() + [liquidity("s1", "remove", "CREATOR", (10**12, 10**11), left, 2)], T)
    assert bool(anomalies) is fires
    if fires:
        (a,) = anomalies
        assert a["anomaly_type"] == "liquidity_removal" and a["severity"] == severity
        assert a["confidence"] == 0.95  # the pool's creator pulled it
        assert a["evidence"]["signatures"] == ["s1"] and a["evidence"]["quote_reserve_after"] == left[1]


def test_a_burst_of_small_pulls_counts_as_one():
    obs, reserves = created(), (10**12, 10**11)
    for k in range(3):  # three pulls of 25% each within the burst window
        after = (reserves[0] * 3 // 4, reserves[1] * 3 // 4)
        obs.append(liquidity(f"r{k}", "remove", "SOMEONE", reserves, after, 2 + k))
        reserves = after
    _, anomalies = watch_pool(None, "POOL", obs, T)
    (a,) = anomalies
    assert a["evidence"]["signatures"] == ["r0", "r1", "r2"] and a["confidence"] == 0.8
    assert a["evidence"]["removed_share"] == pytest.approx(1 - 0.75 ** 3, abs=1e-6)


def test_reserves_alone_reveal_a_withdrawal_but_not_a_sell():
    withdrawal = [state("a", 10**12, 10**11, 1), state("b", 10**11, 10**10, 2)]
    sell = [state("a", 10**12, 10**11, 1), state("b", 2 * 10**12, 5 * 10**10, 2)]
    assert [a["anomaly_type"] for a in watch_pool(None, "P", withdrawal, T)[1]] == ["liquidity_removal"]
    assert watch_pool(None, "P", sell, T)[1] == []  # price / 4: a sell, no removal, no 90% dump


def test_dump_into_the_pool_is_a_price_dump():
    dump = [state("a", 10**12, 10**11, 1), state("b", 4 * 10**12, 25 * 10**9, 2)]  # price / 16
    (a,) = watch_pool(None, "P", dump, T)[1]
    assert a["anomaly_type"] == "rug_price_dump" and a["evidence"]["drop"] == pytest.approx(1 - 1 / 16)


def test_a_price_that_underflows_to_zero_is_no_peak_to_divide_by():
    """1 lamport against 10**300 tokens: the price is 0.0, and the next state divided by it."""
    tiny = {**COMMON, "quote_decimals": 255, "base_decimals": 0}
    states = [{"kind": "state", "time_s": 1000.0 + n, "slot": n, "record": {
        **tiny, "signature": f"u{n}", "base_reserve": 10**300 + n, "quote_reserve": 1}}
        for n in (1, 2)]
    assert watch_pool(None, "P", states, T)[1] == []


def test_a_replayed_block_changes_nothing():
    obs = created() + [liquidity("s1", "remove", "CREATOR", (10**12, 10**11), (10**11, 10**10), 2)]
    first_state, first = watch_pool(None, "POOL", obs, T)
    again_state, again = watch_pool(first_state, "POOL", obs, T)
    assert first and again == [] and again_state == first_state


@shared_material.needs(POOLS)
def test_real_uniswap_pools_drained_and_dumped_are_flagged_at_the_removal():
    found = {"rug_type1_liquidity_removed": [], "rug_type2_price_dump": []}
    kind = {"rug_type1_liquidity_removed": "liquidity_removal", "rug_type2_price_dump": "rug_price_dump"}
    quiet_active = []
    for row in load_labels(POOLS):
        observations = pool_observations(POOLS, row)
        _, anomalies = watch_pool(None, row["pool"], observations, T)
        if row["label"] in found:
            found[row["label"]].append(any(a["anomaly_type"] == kind[row["label"]] for a in anomalies))
        elif row["label"] == "unlabeled_active" and float(row["liq_MDD"]) > -0.5 and float(row["price_MDD"]) > -0.9:
            # Quiet of pulls and dumps; who holds the LP is tests/chain/test_lp_holders.py's.
            quiet_active.append(not [a for a in anomalies if a["anomaly_type"] != "liquidity_unlocked"])
    for label, hits in found.items():
        print(f"{label}: recall {sum(hits)}/{len(hits)}")
    print(f"active pools without any large drawdown left quiet: {sum(quiet_active)}/{len(quiet_active)}")
    assert all(found["rug_type1_liquidity_removed"]) and len(found["rug_type1_liquidity_removed"]) == 14
    assert all(found["rug_type2_price_dump"]) and len(found["rug_type2_price_dump"]) == 7
    assert quiet_active and all(quiet_active)


def test_lps_coming_and_going_are_no_pull():
    """Six LPs each took 10 % out while six others put 11 % in between: the reserve never fell
    under 90 %, and the burst summed the removals alone to "60 % removed"."""
    observations, reserve, slot = created(), 10**11, 2
    for k in range(6):
        out = reserve // 10
        observations.append(liquidity(f"r{k}", "remove", f"LP{k}", (10**12, reserve),
                                      (10**12, reserve - out), slot))
        reserve -= out
        back = reserve // 9
        observations.append(liquidity(f"a{k}", "add", f"NEW{k}", (10**12, reserve),
                                      (10**12, reserve + back), slot + 1))
        reserve, slot = reserve + back, slot + 2
    _, anomalies = watch_pool(None, "POOL", observations, T)
    assert [a["anomaly_type"] for a in anomalies if a["anomaly_type"] == "liquidity_removal"] == []


@pytest.mark.parametrize("program", ["raydium_clmm", "raydium_launchlab", "meteora_dbc"])
def test_a_concentrated_pools_or_a_curves_vault_ratio_is_no_price_to_dump_from(program):
    """A CLMM pool's vaults hold every position's tokens: sells within a position's range
    moved the real price 19 % and the vault ratio 97 %, a "rug price dump". A bonding curve's
    hold what it has not sold and the quote it raised: a curve that raised 1 and gave 0.9
    back fell 90 % by its vaults and a few % by its (virtual) price."""
    def priced_elsewhere(sig, base, quote, slot):
        observation = state(sig, base, quote, slot)
        observation["record"]["program"] = program
        return observation
    dumped = [priced_elsewhere("s0", 10**12, 10**11, 1), priced_elsewhere("s1", 40 * 10**12, 10**11 // 10, 2)]
    assert watch_pool(None, "POOL", dumped, T)[1] == []
    plain = [state("s0", 10**12, 10**11, 1), state("s1", 40 * 10**12, 10**11 // 10, 2)]
    assert [a["anomaly_type"] for a in watch_pool(None, "POOL", plain, T)[1]] == ["rug_price_dump"]


def test_a_pool_keeps_its_largest_providers_only():
    """Every wallet that ever added stayed in the pool's document (30,000 after three busy
    days, read, hashed and written whole at every release); it is read for its top LP."""
    from kades.chain.liquidity import MAX_PROVIDERS
    observations, reserves = created("WHALE"), (10**12, 10**11)
    for n in range(MAX_PROVIDERS * 3):
        after = (reserves[0] + 10**6, reserves[1] + 10**5 + n)
        observations.append(liquidity(f"add{n}", "add", f"wallet{n}", reserves, after, 2 + n))
        reserves = after
    pool, _ = watch_pool(None, "POOL", observations, T)
    assert len(pool["lp"]) == MAX_PROVIDERS
    assert max(pool["lp"], key=pool["lp"].get) == "WHALE"  # the creator's 1e11: the top LP
    assert "wallet0" not in pool["lp"] and f"wallet{MAX_PROVIDERS * 3 - 1}" in pool["lp"]


def test_positions_removed_in_one_transaction_all_count():
    """A rug removing three positions in one transaction (three remove instructions, a third
    of the pool each): records were told apart by their transaction alone, so the first
    removal counted (33 %) and nothing was raised; in three transactions, 67 %."""
    obs, reserves = created(), (10**12, 10**11)
    for _ in range(3):
        after = (reserves[0] * 2 // 3, reserves[1] * 2 // 3)
        obs.append(liquidity("rug", "remove", "CREATOR", reserves, after, 2))
        reserves = after
    state_after, anomalies = watch_pool(None, "POOL", obs, T)
    (a,) = anomalies
    assert a["anomaly_type"] == "liquidity_removal"
    # the transaction judged as a whole: all three removals, 70 % of the pool
    assert a["evidence"]["removed_share"] == pytest.approx(1 - (2 / 3) ** 3, abs=1e-6)
    assert a["evidence"]["quote_reserve_before"] == 10**11
    assert a["evidence"]["quote_reserve_after"] == reserves[1]
    assert state_after["last"] == [reserves[0], reserves[1]]
    assert watch_pool(state_after, "POOL", obs, T)[1] == []  # the block again: nothing new


@pytest.mark.parametrize("removed_first", [True, False])
def test_a_rebalance_in_one_transaction_is_no_pull(removed_first):
    """A position manager moving its range: every position removed, then added back (or the
    new one added first) in one transaction. Each record was judged alone, and the removal
    read as 100 % of the pool pulled by its top LP, a rug at confidence 0.95."""
    full, empty = (10**12, 10**11), (0, 0)
    moved = (10**12 - 10**9, 10**11 + 10**8)  # added back at another ratio (another range)
    remove = liquidity("rebalance", "remove", "CREATOR", full, empty, 2)
    add = liquidity("rebalance", "add", "CREATOR", empty, moved, 2)
    if not removed_first:  # the new position added first: the reserves double, then fall
        both = (full[0] + moved[0], full[1] + moved[1])
        add = liquidity("rebalance", "add", "CREATOR", full, both, 2)
        remove = liquidity("rebalance", "remove", "CREATOR", both, moved, 2)
    steps = [remove, add] if removed_first else [add, remove]
    pool, anomalies = watch_pool(None, "POOL", created() + steps, T)
    assert anomalies == []
    assert pool["last"] == list(moved)
    # the same two records in two transactions are a pull and a return
    steps[1]["record"] = {**steps[1]["record"], "signature": "later"}
    _, anomalies = watch_pool(None, "POOL", created() + steps, T)
    assert [a["anomaly_type"] for a in anomalies] == (["liquidity_removal"] if removed_first else [])


def test_a_transaction_that_adds_back_little_is_judged_on_what_it_took():
    """Removed whole and a tenth added back in the same transaction: 90 % of the pool left."""
    full = (10**12, 10**11)
    tenth = (full[0] // 10, full[1] // 10)
    steps = [liquidity("rug", "remove", "CREATOR", full, (0, 0), 2),
             liquidity("rug", "add", "CREATOR", (0, 0), tenth, 2)]
    (a,) = watch_pool(None, "POOL", created() + steps, T)[1]
    assert a["anomaly_type"] == "liquidity_removal" and a["confidence"] == 0.95
    assert a["evidence"]["removed_share"] == pytest.approx(0.9)
    assert a["evidence"]["signatures"] == ["rug"] and a["evidence"]["quote_reserve_after"] == tenth[1]


def test_a_bonding_curve_handing_its_reserves_to_its_new_pool_is_no_pull():
    """A launchpad curve's migration (LaunchLab to CPMM, DBC to DAMM: kades.solana.normalise)
    empties the curve into the AMM pool it graduates to: every graduation read as a rug."""
    def graduation(migration):
        removal = liquidity("s1", "remove", "PAYER", (10**12, 10**11), (0, 0), 2)
        removal["record"].update(program="raydium_launchlab", lp_amount=None,
                                 **({"migration": migration} if migration else {}))
        return [*created(), removal, state("s1", 0, 0, 2)]
    migrated = {"program": "raydium_launchlab", "bonding_curve": "POOL", "to": "CPMM"}
    assert watch_pool(None, "POOL", graduation(migrated), T)[1] == []
    pulled = watch_pool(None, "POOL", graduation(None), T)[1]
    assert [a["anomaly_type"] for a in pulled] == ["liquidity_removal"]
