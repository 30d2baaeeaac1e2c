"""Wash trading, cycles, launch risk and snipers on small hand-made cases with known answers."""
from __future__ import annotations

import random

import pytest

from kades.chain.cycles import CyclicTransfers
from kades.chain.launch import LaunchRisk, Snipers, top_holders
from kades.chain.rows import EarlyBuy, Trade, Transfer
from kades.chain.state import TokenState
from kades.chain.wash import WashTrading
from kades.solana.programs import WSOL

WASH, CYCLES, LAUNCH, SNIPERS = WashTrading(), CyclicTransfers(), LaunchRisk(), Snipers()


def trade(t, wallet, side, base, quote=10**9, slot=1):
    return Trade(t, wallet, 1 if side == "buy" else -1, base, quote, f"sig-{wallet}-{t}", slot)


def edge(t, source, destination, amount=100, slot=1):
    return Transfer(t, source, destination, amount, f"tx-{source}-{destination}-{t}", slot)


def test_self_trading_wallet_is_wash_a_single_round_trip_is_not():
    state = TokenState()
    state.trades = [trade(10 * k, "BOT", "buy" if k % 2 == 0 else "sell", 500) for k in range(6)]
    state.trades += [trade(5, "FAN", "buy", 900), trade(95, "FAN", "sell", 900)]  # one round trip
    (alert,) = WASH.find(state, "TOKEN", time_s=100.0, slot=9)
    assert alert["evidence"]["wallets"] == ["BOT"] and alert["evidence"]["pattern"] == "self_trade"
    assert alert["evidence"]["net_position"] == 0 and alert["evidence"]["turnover"] == 6.0


def test_wallets_linked_by_transfers_form_one_wash_group():
    state = TokenState()
    state.trades = [trade(20 * k, "A", "buy", 700) for k in range(3)] + [trade(20 * k + 9, "B", "sell", 700) for k in range(3)]
    state.edges = [edge(20 * k + 5, "A", "B", 700) for k in range(3)]
    (alert,) = WASH.find(state, "TOKEN", time_s=100.0, slot=9)
    assert alert["evidence"]["wallets"] == ["A", "B"] and alert["evidence"]["pattern"] == "ring"


def test_an_unbalanced_group_is_not_wash():
    state = TokenState()
    state.trades = [trade(10 * k, "BOT", "buy" if k % 2 == 0 else "sell", 500 if k % 2 == 0 else 400) for k in range(6)]
    assert WASH.find(state, "TOKEN", time_s=100.0, slot=9) == []  # net 300 of 2,700 traded: 11%


@pytest.mark.parametrize("hops, fires", [(2, True), (4, True), (6, True), (7, False)])
def test_cycles_of_two_to_six_hops(hops, fires):
    wallets = [f"W{k}" for k in range(hops)]
    new = [edge(10 * k, wallets[k], wallets[(k + 1) % hops]) for k in range(hops)]
    state = TokenState()
    found = CYCLES.find(state, "TOKEN", new, time_s=100.0, slot=9)
    assert bool(found) is fires
    if fires:
        assert found[0]["evidence"]["wallets"] == wallets + ["W0"] and found[0]["evidence"]["hops"] == hops


def test_a_cycle_must_move_forward_in_time():
    backwards = [edge(30, "A", "B"), edge(20, "B", "C"), edge(10, "C", "A")]
    assert CYCLES.find(TokenState(), "TOKEN", sorted(backwards), time_s=100.0, slot=9) == []


def launched(**authorities):
    state = TokenState()
    state.launch = {"creator": "DEV", "time_s": 0.0, "slot": 1, "signature": "L", "supply": 1000,
                       "mint_authority": None, "freeze_authority": None, **authorities}
    return state


def test_launch_risk_lists_every_factor():
    state = launched(mint_authority="DEV", freeze_authority="DEV")
    state.holders = {"DEV": 400, "X": 50}
    (alert,) = LAUNCH.find(state, "TOKEN", creator_launches=3, time_s=10.0, slot=2)
    factors = alert["evidence"]["factors"]
    assert set(factors) == {"mint_authority", "freeze_authority", "top1_holder", "creator_holds", "serial_creator"}
    assert alert["severity"] == pytest.approx(1 - 0.5 * 0.5 * 0.65 * 0.7 * 0.65, abs=1e-4)
    assert LAUNCH.find(state, "TOKEN", creator_launches=3, time_s=20.0, slot=3) == []  # said once


def test_the_top_holders_are_the_largest_positive_ones_ties_in_the_holders_order():
    rng = random.Random(7)
    state = TokenState(holders={f"W{k}": rng.choice([-5, 0, 3, 9, 9, rng.randrange(1, 99)]) for k in range(300)})
    top = top_holders(state, 10)
    # what a stable sort of every positive holding gives (the way before heapq's)
    assert top == sorted(((w, b) for w, b in state.holders.items() if b > 0), key=lambda x: -x[1])[:10]
    assert [b for _, b in top] == sorted((b for b in state.holders.values() if b > 0), reverse=True)[:10]
    assert top_holders(TokenState(holders={"A": 5, "B": 7, "C": 7, "D": 7}), 2) == [("B", 7), ("C", 7)]
    assert top_holders(TokenState(holders={"A": -1, "B": 0}), 10) == []


def test_a_clean_launch_is_not_risky():
    state = launched()
    state.holders = {f"H{k}": 20 for k in range(20)}
    assert LAUNCH.find(state, "TOKEN", creator_launches=1, time_s=10.0, slot=2) == []


def test_snipers_reported_after_the_window_with_bundle_and_insiders():
    state = launched()
    state.first_trade = {"time_s": 0.0, "slot": 1}
    state.early_buys = [EarlyBuy(0.0, f"B{k}", 40, 10**9, f"s{k}", 1) for k in range(4)] + [EarlyBuy(3.0, "LATE", 40, 10**9, "s9", 8)]
    assert SNIPERS.find(state, "TOKEN", funders={}, time_s=4.0, slot=10) == []  # the window is still open
    (alert,) = SNIPERS.find(state, "TOKEN", funders={"B0": "DEV", "B1": "DEV"}, time_s=6.0, slot=15)
    evidence = alert["evidence"]
    assert evidence["bundles"] == {"1": ["B0", "B1", "B2", "B3"]}
    assert evidence["insiders_funded_by_creator"] == ["B0", "B1"] and alert["confidence"] == 0.9
    assert evidence["sniped_supply_share"] == pytest.approx(0.2)


def test_swaps_that_moved_no_tokens_are_not_wash():
    """Swaps recorded with a base amount of 0 divided by zero in the evidence (a 500)."""
    state = TokenState()
    state.trades = [trade(10 * k, "BOT", "buy" if k % 2 == 0 else "sell", 0) for k in range(6)]
    assert WASH.find(state, "TOKEN", time_s=100.0, slot=9) == []


def test_a_set_authority_record_changes_only_an_authority():
    state = launched(mint_authority="DEV")
    state.record_launch({"kind": "set_authority", "signature": "x"}, 5.0, 2)  # no field: KeyError
    state.record_launch({"kind": "set_authority", "signature": "y", "field": "creator",
                         "new_authority": "EVIL"}, 6.0, 3)
    state.record_launch({"kind": "set_authority", "signature": "z", "field": "mint_authority",
                         "new_authority": None}, 7.0, 4)
    assert state.launch["creator"] == "DEV" and state.launch["mint_authority"] is None


def test_the_alert_memory_forgets_what_cooled_down_and_keeps_what_did_not():
    """A token traded by ever new wallets kept one entry per alerted wallet, cluster or
    funder in its state for as long as it traded (132 in 12 h in a soak, read and written
    with every event); an entry older than the cooldown suppresses nothing."""
    from kades.chain.detector import alert_once
    alerted = {"launch_risk": 0.5, "snipers": 30.0}  # not per wallet: kept
    for n in range(1000):
        assert alert_once(alerted, f"dist:w{n}", n * 60.0, cooldown_s=600.0)
    assert {"launch_risk", "snipers"} <= alerted.keys() and len(alerted) == 2 + 10
    assert not alert_once(alerted, "dist:w999", 999 * 60.0 + 10, cooldown_s=600.0)
    assert not alert_once(alerted, "dist:w990", 999 * 60.0 + 10, cooldown_s=600.0)
    assert alert_once(alerted, "dist:w989", 999 * 60.0 + 10, cooldown_s=600.0)


def test_a_swap_between_two_quote_mints_is_no_tokens():
    """SOL/USDC: the base is USDC (the quote preferred is SOL). As USDC's, market makers'
    SOL/USDC trades were wash trading, four in a slot a sniper bundle, a large one a whale."""
    from kades.chain.blockview import token_records
    from kades.solana.programs import USDC, WSOL
    swap = {"base_mint": USDC, "quote_mint": WSOL, "trader": "T", "signature": "s"}
    meme = {**swap, "base_mint": "Meme1111111111111111111111111111111111111111"}
    block = {"swaps": [swap, meme], "transfers": [{"mint": USDC}], "launches": [{"mint": WSOL}]}
    assert list(token_records(block)) == [meme["base_mint"]]


def test_a_pool_between_two_quote_mints_is_no_tokens_and_its_withdrawal_no_rug():
    """Anyone can make a SOL/USDC pool: its pool states and liquidity went with its base,
    USDC, which got a document, an LP tracker and, 80 % withdrawn, liquidity_removal (0.83)
    and liquidity_unlocked alerts, as swaps between two quotes no longer do."""
    from kades.chain import function as chain
    from kades.chain.memory import MemoryStates
    from kades.chain.thresholds import ChainThresholds
    from kades.solana.programs import USDC

    def pool(record: dict, base: str) -> dict:
        return {"signature": "s", "program": "raydium_cpmm", "pool": f"Pool{base[:4]}",
                "base_mint": base, "quote_mint": WSOL, "base_decimals": 6, "quote_decimals": 9,
                "tx_index": 0, **record}

    def liquidity(action: str, before: tuple, after: tuple, lp: int, base: str) -> dict:
        return pool({"action": action, "provider": "LP1", "lp_mint": "LPM", "lp_amount": lp,
                     "base_delta": after[0] - before[0], "quote_delta": after[1] - before[1],
                     "base_reserve_before": before[0], "quote_reserve_before": before[1],
                     "base_reserve_after": after[0], "quote_reserve_after": after[1]}, base)

    def state(reserves: tuple, base: str) -> dict:
        return pool({"base_reserve": reserves[0], "quote_reserve": reserves[1],
                     "price": (reserves[1] / 1e9) / (reserves[0] / 1e6)}, base)
    full, drained = (15_000 * 10**6, 100 * 10**9), (3_000 * 10**6, 20 * 10**9)
    found = {}
    for base in (USDC, "Meme1111111111111111111111111111111111111111"):
        store, t0 = MemoryStates(), 1_767_225_600.0
        for slot, at, liquid, reserves in ((1, t0, [liquidity("create", (0, 0), full, 10**9, base)], full),
                                           (2000, t0 + 800, [], full),
                                           (4000, t0 + 1600, [liquidity("remove", full, drained,
                                                                        8 * 10**8, base)], drained)):
            block = {"slot": slot, "swaps": [], "transfers": [], "launches": [],
                     "liquidity": liquid, "pool_states": [state(reserves, base)]}
            for anomaly in chain.analyse_block(None, block, at, ChainThresholds(), store):
                found.setdefault(anomaly["token"], set()).add(anomaly["anomaly_type"])
    assert USDC not in found  # and a token's pool withdrawn alike is still a rug
    assert found.get("Meme1111111111111111111111111111111111111111", set()) >= {"liquidity_removal"}


def test_a_token_met_mid_life_has_no_snipers_and_its_holdings_weigh_nothing_unknown():
    """The first trade of a token first seen mid-life is no launch (four ordinary buys in one
    slot were a bundle), and without a known supply the holdings seen are not it (a Raydium
    launch's first buyer held "100 %" and made it risky)."""
    state = TokenState()
    state.first_trade = {"time_s": 0.0, "slot": 1}
    state.early_buys = [EarlyBuy(0.0, f"B{k}", 40, 10**9, f"s{k}", 1) for k in range(4)]
    assert SNIPERS.find(state, "TOKEN", funders={}, time_s=6.0, slot=15) == []
    unknown = launched(supply=None, mint_authority="DEV")
    unknown.holders = {"RETAIL": 500}
    (alert,) = LAUNCH.find(unknown, "TOKEN", creator_launches=3, time_s=10.0, slot=2)
    assert set(alert["evidence"]["factors"]) == {"mint_authority", "serial_creator"}
    bundled = launched(supply=None)
    bundled.first_trade = {"time_s": 0.0, "slot": 1}
    bundled.early_buys = state.early_buys
    (alert,) = SNIPERS.find(bundled, "TOKEN", funders={}, time_s=6.0, slot=15)
    assert alert["evidence"]["bundles"] == {"1": ["B0", "B1", "B2", "B3"]}


def test_atomic_arbitrage_is_no_trade_with_oneself_a_volume_bot_is():
    """A bot buying in one pool and selling in another in one transaction closes a price gap
    (its legs were a wash "self_trade"); buying and selling in the same pool in one
    transaction is a volume bot, wash trading."""
    from kades.chain.function import arbitrage_legs

    def leg(sig, side, pool, trader="BOT"):
        return {"signature": sig, "trader": trader, "side": side, "pool": pool}
    swaps = [leg("arb", "buy", "P1"), leg("arb", "sell", "P2"),
             leg("vol", "buy", "P1"), leg("vol", "sell", "P1"),
             leg("two", "buy", "P1", "A"), leg("two", "sell", "P2", "B")]
    assert arbitrage_legs(swaps) == {("arb", "BOT")}


def test_a_sandwich_is_no_trade_with_oneself_a_volume_bot_in_one_slot_is():
    """A MEV bot's front-run and back-run around another trader's buy (one bundle, one
    slot): two legs of one size seconds apart, which wash trading read as a "self_trade" at
    confidence 0.9. A bot buying and selling with no one's trade between them, or around a
    trade the other way, is no sandwich."""
    from kades.chain.function import sandwich_legs

    def swap(index, trader, side, pool="P1"):
        return {"signature": f"s{index}", "trader": trader, "side": side, "pool": pool,
                "tx_index": index}
    sandwich = [swap(3, "MEV", "buy"), swap(4, "USER", "buy"), swap(5, "MEV", "sell")]
    assert sandwich_legs(sandwich) == {("s3", "MEV"), ("s5", "MEV")}
    assert sandwich_legs([swap(3, "BOT", "buy"), swap(4, "BOT", "sell")]) == set()  # volume bot
    assert sandwich_legs([swap(3, "BOT", "buy"), swap(4, "USER", "sell"), swap(5, "BOT", "sell")]) == set()
    assert sandwich_legs([swap(3, "BOT", "buy"), swap(4, "USER", "buy"), swap(9, "BOT", "sell")]) == set()
    assert sandwich_legs([swap(3, "MEV", "buy"), swap(4, "USER", "buy", pool="P2"),
                          swap(5, "MEV", "sell")]) == set()  # the victim in another pool
    assert sandwich_legs([{k: v for k, v in s.items() if k != "tx_index"} for s in sandwich]) == set()


def test_sandwiches_around_a_tokens_buyers_raise_no_wash_trading():
    """Two sandwiches within the hour: the bot's four legs, net zero, a large share of the
    token's volume, were a wash alert; its round trips over several slots still are."""
    from kades.chain.function import analyse_token
    from kades.chain.thresholds import ChainThresholds

    def block(slot, swaps):
        return {"swaps": [{"signature": f"{slot}-{i}", "pool": "P1", "base_amount": base, "quote_mint": WSOL,
                           "quote_amount": 10**9, "tx_index": i, "trader": trader, "side": side}
                          for i, (trader, side, base) in enumerate(swaps)],
                "transfers": [], "launches": [], "liquidity": [], "pool_states": []}
    doc, found = None, []
    for slot in (10, 20, 30):
        doc, anomalies = analyse_token(doc, "TOKEN", block(slot, [
            ("MEV", "buy", 5_000), ("USER", "buy", 100), ("MEV", "sell", 5_000)]),
            {}, {}, 60.0 * slot, slot, ChainThresholds())
        found += anomalies
    assert [a for a in found if a["anomaly_type"] == "wash_trading"] == []
    for slot in (40, 50, 60):  # the same legs a slot apart, no one between: trading with oneself
        doc, anomalies = analyse_token(doc, "TOKEN", block(slot, [("MEV", "buy", 5_000)]),
                                       {}, {}, 60.0 * slot, slot, ChainThresholds())
        found += anomalies
        doc, anomalies = analyse_token(doc, "TOKEN", block(slot + 1, [("MEV", "sell", 5_000)]),
                                       {}, {}, 60.0 * slot + 1, slot + 1, ChainThresholds())
        found += anomalies
    assert [a["anomaly_type"] for a in found if a["anomaly_type"] == "wash_trading"] == ["wash_trading"]


def test_a_wash_ring_cannot_pass_as_a_sandwich_around_its_own_wallet():
    """A ring's buy and sell around a buy of a wallet of its own (linked by a token transfer)
    were taken for a MEV sandwich, and its trades were never judged as wash trading."""
    from kades.chain.function import analyse_token, sandwich_legs
    from kades.chain.thresholds import ChainThresholds

    def block(slot, transfers=()):
        swaps = [{"signature": f"{slot}-{i}", "pool": "P1", "base_amount": base, "quote_amount": 10**9,
                  "quote_mint": WSOL, "tx_index": i, "trader": trader, "side": side}
                 for i, (trader, side, base) in enumerate([("RING", "buy", 5_000), ("RING2", "buy", 100),
                                                            ("RING", "sell", 5_000)])]
        return {"swaps": swaps, "transfers": [{"signature": f"{slot}-t", "source": a, "destination": b,
                                                "amount": 1} for a, b in transfers],
                "launches": [], "liquidity": [], "pool_states": []}
    linked = block(10, [("RING", "RING2")])
    assert sandwich_legs(linked["swaps"]) == {("10-0", "RING"), ("10-2", "RING")}  # alone: a sandwich
    doc, found = None, []
    for slot in (10, 20, 30):  # linked in the first block, by its own transfer
        doc, anomalies = analyse_token(doc, "TOKEN", linked if slot == 10 else block(slot),
                                       {}, {}, 60.0 * slot, slot, ChainThresholds())
        found += anomalies
    (wash,) = [a for a in found if a["anomaly_type"] == "wash_trading"]
    assert set(wash["evidence"]["wallets"]) == {"RING", "RING2"}
    doc, found = None, []  # the same trades by wallets never linked: a sandwich, as before
    for slot in (10, 20, 30):
        doc, anomalies = analyse_token(doc, "TOKEN", block(slot), {}, {}, 60.0 * slot, slot,
                                       ChainThresholds())
        found += anomalies
    assert [a for a in found if a["anomaly_type"] == "wash_trading"] == []


@pytest.mark.parametrize("priced_slots", [range(1, 7), [1]])
def test_a_tokens_sol_and_usd1_trades_share_its_volume_by_value(priced_slots):
    """A token traded in its SOL pool and its USD1 pool (a bonk.fun token): its trades' quotes
    summed raw, a USD1 unit ($1e-6) counted as a lamport ($1.5e-7 at $150 a SOL), and a bot
    trading half the token's volume through the USD1 pool read as 13 % of it: no wash
    trading. Told in lamports at the slot's SOL price (a SOL/USDC trade of the block; for a
    slot without one, the latest the slot log holds), it is half."""
    from kades.chain.codec import TokenCodec
    from kades.chain.function import analyse_block
    from kades.chain.memory import MemoryStates
    from kades.chain.thresholds import ChainThresholds
    from kades.solana.programs import USD1, USDC

    def swap(slot, trader, side, quote_mint, quote_amount, quote_decimals):
        buy = side == "buy"
        return {"signature": f"{slot}-{trader}", "trader": trader, "program": "raydium_cpmm",
                "pool": f"P-{quote_mint[:4]}", "base_mint": "TOKEN", "quote_mint": quote_mint,
                "mint_in": quote_mint if buy else "TOKEN", "mint_out": "TOKEN" if buy else quote_mint,
                "amount_in": quote_amount if buy else 500, "amount_out": 500 if buy else quote_amount,
                "decimals_in": quote_decimals if buy else 6, "decimals_out": 6 if buy else quote_decimals,
                "side": side, "base_amount": 500, "quote_amount": quote_amount, "tx_index": 0}

    sol_price = {**swap(0, "MM", "buy", WSOL, 20 * 10**9, 9), "base_mint": USDC, "mint_out": USDC,
                 "decimals_out": 6, "base_amount": 3_000 * 10**6, "price": 1 / 150.0}  # $3,000 at $150
    store, found = MemoryStates(TokenCodec()), []
    for slot in range(1, 7):
        side = "buy" if slot % 2 else "sell"
        block = {"slot": slot, "block_time": None, "transfers": [], "liquidity": [], "launches": [],
                 "pool_states": [],
                 "swaps": [sol_price] * (slot in priced_slots) + [
                     swap(slot, "BOT", side, USD1, 150 * 10**6, 6),  # $150: 1 SOL
                     swap(slot, f"FAN{slot}", side, WSOL, 10**9, 9)]}  # 1 SOL
        found += analyse_block(None, block, 100.0 + slot, ChainThresholds(), store)
    (wash,) = [a for a in found if a["anomaly_type"] == "wash_trading"]
    assert wash["evidence"]["wallets"] == ["BOT"] and wash["evidence"]["volume_share"] == 0.5


def test_a_market_maker_in_a_token_quoted_pool_is_no_wash_ring():
    """A token/BONK pool (a token quoted in another token): BONK's raw units were summed with
    lamports, so $80 of round trips in 1M BONK took 89 % of a token's volume beside 50 SOL
    of buys in its SOL pool: wash_trading 0.9. Another token's worth is not known: none."""
    from kades.chain.function import analyse_block
    from kades.chain.memory import MemoryStates
    from kades.chain.thresholds import ChainThresholds
    bonk, token = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263", "AToken11111111111111111111111111111111111111"

    def swap(signature, wallet, side, quote, quote_mint, quote_decimals, pool):
        buy = side == "buy"
        return {"signature": signature, "trader": wallet, "pool": pool, "program": "meteora_dlmm",
                "mint_in": quote_mint if buy else token, "mint_out": token if buy else quote_mint,
                "amount_in": quote if buy else 10**7, "amount_out": 10**7 if buy else quote,
                "decimals_in": quote_decimals if buy else 6, "decimals_out": 6 if buy else quote_decimals,
                "base_mint": token, "quote_mint": quote_mint, "side": side,
                "base_amount": 10**7, "quote_amount": quote}
    swaps = [swap(f"o{k}", f"R{k}", "buy", 25 * 10**8, WSOL, 9, "YSOL") for k in range(20)]
    swaps += [swap(f"m{k}", "MM", ("buy", "sell")[k % 2], 10**11, bonk, 5, "YBONK") for k in range(4)]
    store, found = MemoryStates(), []
    for k, record in enumerate(swaps):
        block = {"slot": 1000 + k, "swaps": [record], "transfers": [], "launches": [],
                 "liquidity": [], "pool_states": []}
        found += analyse_block(None, block, 1_767_225_600.0 + 60 * k, ChainThresholds(), store)
    assert [a for a in found if a["anomaly_type"] == "wash_trading"] == []
