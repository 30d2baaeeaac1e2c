"""market-aggregator on chain blocks: per-token prices from real swaps and pool states."""
from __future__ import annotations

import pytest
import shared_material

from kades.events.catalogue import MARKET_TICK, data_problems
from kades.keys import SOL_USD
from kades.market.chain import chain_ticks, quote_lamports, sol_usd_of
from kades.market.function import FUNCTION, handle
from kades.runtime import Context
from kades.solana.programs import USD1, USDC, WSOL
from kades.solana.source import replay_events

DATA = shared_material.DATA / "solana/rpc"
MINT = "TokenMint1111111111111111111111111111111111"


def swap(base, price, side="buy", quote=WSOL, quote_amount=2 * 10**9):
    return {"signature": "s", "trader": "T", "program": "raydium_v4", "pool": "P", "base_mint": base,
            "quote_mint": quote, "side": side, "price": price, "quote_amount": quote_amount, "base_amount": 1,
            "decimals_in": 9 if side == "buy" else 6, "decimals_out": 6 if side == "buy" else 9}


def test_a_block_gives_one_tick_per_token_with_volume_liquidity_and_usd():
    block = {"slot": 1, "block_time": "2024-06-01T00:00:00Z",
             "swaps": [swap(MINT, 1e-6), swap(MINT, 2e-6, side="sell"),
                       {**swap(USDC, 1 / 150.0), "base_amount": 3_000 * 10**6}],  # $3,000
             "pool_states": [{"signature": "s", "program": "raydium_v4", "pool": "P", "base_mint": MINT,
                              "quote_mint": WSOL, "base_reserve": 10**15, "quote_reserve": 50 * 10**9,
                              "base_decimals": 6, "quote_decimals": 9, "price": 5e-8}]}
    (tick,) = chain_ticks(block)
    assert tick["token"] == MINT and tick["price"] == 5e-8 and tick["volume"] == 4.0
    assert tick["liquidity"] == 100.0 and tick["price_usd"] == pytest.approx(5e-8 * 150.0)
    assert tick["slot"] == 1  # its place among the ticks of its second (temporal tick_id)


@pytest.mark.parametrize("order", [1, -1])
def test_a_token_traded_in_its_sol_and_its_usdc_pool_is_priced_in_sol(order):
    """The quote came from the first swap and the price from the last: SOL or dollars, 150
    times apart, whichever came last (a false price spike), and SOL plus dollars as volume."""
    sol_swap = swap(MINT, 1e-6)  # 2 SOL
    usdc_swap = swap(MINT, 1.5e-4, quote=USDC, quote_amount=300 * 10**6)  # $300
    usdc_swap["decimals_in"] = 6
    block = {"slot": 1, "block_time": "2024-06-01T00:00:00Z",
             "context": {"sol_usd": 150.0, "fundings": [], "launches": []},
             "swaps": [sol_swap, usdc_swap][::order]}
    (tick,) = chain_ticks(block)
    assert tick["quote"] == WSOL and tick["price"] == pytest.approx(1e-6)
    assert tick["volume"] == pytest.approx(4.0)  # 2 SOL and $300 at $150
    assert tick["price_usd"] == pytest.approx(1.5e-4)
    without_sol_price = {**block, "context": {"sol_usd": None, "fundings": [], "launches": []}}
    (tick,) = chain_ticks(without_sol_price)  # the dollars cannot be told in SOL: left out
    assert (tick["price"], tick["volume"]) == (pytest.approx(1e-6), pytest.approx(2.0))


def test_a_price_past_the_bound_once_in_sol_prices_nothing():
    """A USDC-quoted swap at 1e30 $ (the bound of a record's price) is 2e30 SOL at $0.5 a
    SOL: the tick was past the bound of a tick's price, refused by temporal-analysis and
    dead-lettered. The record now prices nothing; the token's SOL swap still does."""
    huge = {**swap(MINT, 1e30, quote=USDC, quote_amount=300 * 10**6), "decimals_in": 6}
    context = {"sol_usd": 0.5, "fundings": [], "launches": []}
    block = {"slot": 1, "block_time": "2024-06-01T00:00:00Z", "context": context, "swaps": [huge]}
    assert chain_ticks(block) == []
    (tick,) = chain_ticks({**block, "swaps": [swap(MINT, 1e-6), huge]})
    assert tick["price"] == 1e-6 and tick["volume"] == pytest.approx(2.0 + 600.0)
    from kades.events.catalogue import new_event
    assert not data_problems(new_event(MARKET_TICK, "/t", {"ticks": [tick]}))


def test_a_tokens_source_is_the_same_whether_or_not_sols_price_is_known():
    """A row is keyed by token, second and source: the source came from the last record
    that could be priced in SOL, so a retry that knew SOL's price (and converted the USDC
    swap) named another program, and the slot's volume was stored in two rows."""
    usdc_swap = {**swap(MINT, 1.5e-4, quote=USDC, quote_amount=300 * 10**6),
                 "program": "orca_whirlpool", "decimals_in": 6}
    block = {"slot": 1, "block_time": "2024-06-01T00:00:00Z", "swaps": [swap(MINT, 1e-6), usdc_swap]}
    (unknown,) = chain_ticks(block)
    (known,) = chain_ticks(block, sol_usd=150.0)
    assert unknown["source"] == known["source"] == "solana:orca_whirlpool"
    assert (unknown["volume"], known["volume"]) == (pytest.approx(2.0), pytest.approx(4.0))


JUP = "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN"


@pytest.mark.parametrize("quote, decimals, amount, side, sol_usd, lamports", [
    (WSOL, 9, 2 * 10**9 + 1, "buy", 150.0, 2 * 10**9 + 1),  # SOL as it is, to the lamport
    (USD1, 6, 300 * 10**6, "buy", 150.0, 2 * 10**9),        # $300 at $150 a SOL: 2 SOL
    (USDC, 6, 300 * 10**6, "sell", 150.0, 2 * 10**9),       # a sell's quote came out to it
    (USDC, 6, 300 * 10**6, "buy", None, 300 * 10**6),       # no SOL price: its raw units
    (JUP, 6, 5 * 10**6, "buy", 150.0, 0),                   # another token: its worth unknown
])
def test_a_swaps_quote_is_told_in_lamports_where_it_can_be(quote, decimals, amount, side, sol_usd,
                                                           lamports):
    record = {**swap(MINT, 1.0, side=side, quote=quote, quote_amount=amount),
              "decimals_in" if side == "buy" else "decimals_out": decimals}
    assert quote_lamports(record, sol_usd) == lamports


def test_sols_price_follows_the_dollars_behind_it_not_one_made_up_pool():
    """One swap in a USDC/SOL pool anyone can make priced SOL at 1e-30 $, and whale-detection
    valued every swap of the next hour at about nothing."""
    def usdc_swap(usd_per_sol, dollars):  # a buy of USDC: `dollars` of it came out
        return {**swap(USDC, 1 / usd_per_sol), "base_amount": int(dollars * 10**6)}
    real = [usdc_swap(150.0, 20_000), usdc_swap(151.0, 5_000), usdc_swap(149.0, 8_000)]
    fake = usdc_swap(0.02, 1)  # in the band, one dollar behind it
    assert sol_usd_of({"swaps": real}) == 150.0
    assert sol_usd_of({"swaps": [*real, fake, fake, fake]}) == 150.0  # outweighed
    assert sol_usd_of({"swaps": [usdc_swap(1e-30, 10**9)]}) is None  # under MIN_SOL_USD
    assert sol_usd_of({"swaps": [*real, usdc_swap(1e-30, 10**9)]}) == 150.0
    assert sol_usd_of({"swaps": [fake]}) is None  # too little behind it: the last price stands
    pool = {"quote_mint": WSOL, "base_mint": USDC, "price": 1 / 140.0, "base_reserve": 10**13,
            "base_decimals": 6}  # $10M of USDC in the pool outweighs the swaps' $33k
    assert sol_usd_of({"swaps": real, "pool_states": [pool]}) == pytest.approx(140.0)


def test_usd1_is_a_dollar_sols_price_and_its_tokens_quote():
    """bonk.fun's tokens trade against USD1 (kades.solana.programs): a SOL/USD1 pool prices
    SOL as a SOL/USDC one does, a USD1-quoted swap is priced in SOL by it, and a USD1/USDC
    pool is no token's."""
    sol_usd1 = {**swap(USD1, 1 / 150.0), "base_amount": 20_000 * 10**6}  # $20,000 of USD1 bought
    assert sol_usd_of({"swaps": [sol_usd1]}) == 150.0
    in_usd1 = {**swap(MINT, 1.5e-4, quote=USD1, quote_amount=300 * 10**6), "decimals_in": 6}
    block = {"slot": 1, "block_time": "2024-06-01T00:00:00Z", "swaps": [sol_usd1, in_usd1]}
    (tick,) = chain_ticks(block)
    assert tick["token"] == MINT and tick["price"] == pytest.approx(1e-6) and tick["volume"] == pytest.approx(2.0)
    dollars = {**swap(USD1, 1.0, quote=USDC, quote_amount=10**6), "base_amount": 10**6}
    assert chain_ticks({**block, "swaps": [dollars]}) == []


def test_market_aggregator_consumes_chain_blocks():
    assert set(FUNCTION.consumes) == {"ai.kades.market.feed.v1", "ai.kades.chain.block.v1"}


@shared_material.needs(DATA)
def test_real_blocks_become_ticks_stored_once(kades_settings, redis_conn, db_conn):
    ctx = Context("market-aggregator", settings=kades_settings)
    replies = [r for event in replay_events([str(DATA)]) for r in handle(event, ctx) or []]
    ticks = [t for r in replies for t in r.data["ticks"]]
    assert all(r.type == MARKET_TICK and not data_problems(r) for r in replies)
    assert all(r.subject == r.attributes["partitionkey"] == r.data["ticks"][0]["token"] for r in replies)
    assert len(ticks) == 18  # 18 recorded transactions trade or move a SOL pool
    assert redis_conn.get(SOL_USD) is None  # no SOL/stablecoin trade among them
    db_conn.rollback()
    assert db_conn.execute("SELECT count(*) FROM token_metrics").fetchone()[0] == 18


def test_the_sol_price_kept_is_the_newest_slots_whatever_order_blocks_come_in(redis_conn):
    """The last block to arrive set it: an older slot's price after a newer one's."""
    from kades.market.chain import note_sol_usd, read_sol_usd
    redis_conn.set(SOL_USD, "150.0")  # as kept before: a price alone, replaced by any slot's
    assert note_sol_usd(redis_conn, 160.0, 200) and read_sol_usd(redis_conn) == 160.0
    assert not note_sol_usd(redis_conn, 150.0, 100)  # older: the newer stays
    assert read_sol_usd(redis_conn) == 160.0
    assert note_sol_usd(redis_conn, 170.0, 201) and read_sol_usd(redis_conn) == 170.0
    assert 0 < redis_conn.ttl(SOL_USD) <= 3600


def test_slots_sharing_a_second_are_stored_as_one_row_each_slot_once(kades_settings, redis_conn,
                                                                      db_conn):
    """Block times are whole seconds: the second's row sums the slots' volume and holds the
    newest slot's price, whichever block arrives first and however often."""
    from kades.events.catalogue import CHAIN_BLOCK, new_event
    ctx = Context("market-aggregator", settings=kades_settings)

    def block(slot, price, sol):
        return new_event(CHAIN_BLOCK, "/test/solana", {
            "slot": slot, "block_time": "2026-01-15T12:00:00Z", "transfers": [], "liquidity": [],
            "launches": [], "swaps": [swap(MINT, price, quote_amount=sol * 10**9)]})

    newer, older = block(301, 2e-6, 3), block(300, 1e-6, 2)
    for event in (newer, older, newer, older):
        assert handle(event, ctx)
    db_conn.rollback()
    rows = db_conn.execute("SELECT price, volume, slots FROM token_metrics WHERE token = %s",
                           (MINT,)).fetchall()
    assert len(rows) == 1
    assert rows[0][0] == pytest.approx(2e-6) and rows[0][1] == pytest.approx(5.0)
    assert sorted(rows[0][2]) == [300, 301]


def test_a_token_is_priced_in_sol_whichever_of_its_pools_a_block_trades():
    """A block where only the token's USDC pool traded priced it in dollars, the next in SOL:
    150 times apart, a false price spike and pump at score 1."""
    usdc_swap = swap(MINT, 1.5e-4, quote=USDC, quote_amount=300 * 10**6)
    usdc_swap["decimals_in"] = 6
    block = {"slot": 2, "block_time": "2024-06-01T00:00:01Z", "swaps": [usdc_swap],
             "context": {"sol_usd": 150.0, "fundings": [], "launches": []}}
    (tick,) = chain_ticks(block)
    assert tick["quote"] == WSOL and tick["price"] == pytest.approx(1e-6)
    assert tick["volume"] == pytest.approx(2.0) and tick["price_usd"] == pytest.approx(1.5e-4)
    unknown = {**block, "context": {"sol_usd": None, "fundings": [], "launches": []}}
    assert chain_ticks(unknown) == []  # no SOL price: no unit to give it, no tick
    other = {**block, "swaps": [swap(MINT, 3.0, quote="JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN")]}
    assert chain_ticks(other) == []  # another token's units: left out, not a unit of its own


def test_a_tokens_liquidity_is_every_pools_it_has_not_the_pools_one_block_touched(
        kades_settings, redis_conn):
    """A token with a 400 SOL and a 20 SOL pool read as a 95 % liquidity pull in every block
    where only the small pool traded: a false liquidity_drop at score 1."""
    from kades.events.catalogue import CHAIN_BLOCK, new_event
    ctx = Context("market-aggregator", settings=kades_settings)

    def block(slot, *pools):
        states = [{"signature": f"s{slot}{pool}", "program": "raydium_v4", "pool": pool,
                   "base_mint": MINT, "quote_mint": WSOL, "base_reserve": 10**15,
                   "quote_reserve": int(sol * 10**9), "base_decimals": 6, "quote_decimals": 9,
                   "price": 1e-6} for pool, sol in pools]
        event = new_event(CHAIN_BLOCK, "/test/solana", {
            "slot": slot, "block_time": f"2026-01-15T12:00:{slot % 60:02d}Z", "transfers": [],
            "liquidity": [], "launches": [], "swaps": [], "pool_states": states})
        (reply,) = handle(event, ctx)
        (tick,) = reply.data["ticks"]
        assert data_problems(reply) == []
        assert tick["liquidity"] == pytest.approx(sum(sol for _, sol in tick["pools"].values()))
        return tick["liquidity"], tick["pools"]

    assert block(10, ("Big", 200), ("Small", 10)) == (
        pytest.approx(420.0), {"Big": [10, 400.0], "Small": [10, 20.0]})
    assert block(11, ("Small", 11)) == (  # the big pool still counts
        pytest.approx(422.0), {"Big": [10, 400.0], "Small": [11, 22.0]})
    assert block(13, ("Big", 5))[0] == pytest.approx(32.0)  # a real pull of the big pool
    # a block that came late: its own states as they were at its slot, the others' newest at
    # or before it (two kept a pool), none of a later slot: temporal-analysis sums them in
    # slot order (kades.temporal.pools), and the pull at 13 is no news to slot 12
    assert block(12, ("Small", 12)) == (
        pytest.approx(424.0), {"Big": [10, 400.0], "Small": [12, 24.0]})
    assert block(9, ("Big", 190)) == (  # Small's states kept are both later than slot 9
        pytest.approx(380.0), {"Big": [9, 380.0]})
    assert block(14, ("Small", 12))[0] == pytest.approx(34.0)  # still kept: Big's 13, not 9's


def test_a_drained_pool_counts_as_drained_in_its_tokens_later_ticks(kades_settings, redis_conn):
    """A pool state with no price (its quote side pulled to 0: a price of 0, or none) was left
    out whole, and with it the pool's liquidity: the pool's last state before the pull stood
    in every later tick of the token, and temporal-analysis never saw the pull."""
    from kades.events.catalogue import CHAIN_BLOCK, new_event
    ctx = Context("market-aggregator", settings=kades_settings)

    def block(slot, *pools):
        states = [{"signature": f"s{slot}{pool}", "program": "raydium_v4", "pool": pool,
                   "base_mint": MINT, "quote_mint": WSOL, "base_reserve": 10**15,
                   "quote_reserve": int(sol * 10**9), "base_decimals": 6, "quote_decimals": 9,
                   "price": 1e-6 if sol else 0.0} for pool, sol in pools]
        event = new_event(CHAIN_BLOCK, "/test/solana", {
            "slot": slot, "block_time": f"2026-01-15T12:01:{slot % 60:02d}Z", "transfers": [],
            "liquidity": [], "launches": [], "swaps": [], "pool_states": states})
        replies = handle(event, ctx)
        if replies is None:
            return None
        (tick,) = replies[0].data["ticks"]
        return tick["liquidity"], tick["pools"]

    assert block(20, ("Big", 200), ("Small", 10))[0] == pytest.approx(420.0)
    assert block(21, ("Big", 0)) is None  # priced nowhere: no tick, but its pool is kept drained
    assert block(22, ("Small", 11)) == (pytest.approx(22.0), {"Big": [21, 0.0], "Small": [22, 22.0]})
    # drained in the same block as a trade of another pool: in that block's tick at once
    assert block(23, ("Small", 12), ("Big", 0)) == (
        pytest.approx(24.0), {"Big": [23, 0.0], "Small": [23, 24.0]})


def test_a_concentrated_pools_state_stays_out_of_its_tokens_liquidity():
    """Its vaults hold positions in and out of range: 2 x the quote vault is no liquidity."""
    state = {"signature": "s", "program": "raydium_clmm", "pool": "C", "base_mint": MINT,
             "quote_mint": WSOL, "base_reserve": 10**15, "quote_reserve": 10**12,
             "base_decimals": 6, "quote_decimals": 9, "price": None}
    block = {"slot": 5, "block_time": "2024-06-01T00:00:05Z", "swaps": [swap(MINT, 1e-6)],
             "pool_states": [state]}
    unpriced: list = []
    (tick,) = chain_ticks(block, unpriced=unpriced)
    assert "pools" not in tick and "liquidity" not in tick and unpriced == []
    assert chain_ticks({**block, "swaps": []}, unpriced=unpriced) == [] and unpriced == []


def test_sols_price_is_kept_from_a_block_whose_only_trades_are_sols(kades_settings, redis_conn):
    """A block of SOL/USDC swaps alone gave no tick, and returned before keeping SOL's price:
    the blocks after it went without dollars, or with a price up to an hour old."""
    from kades.events.catalogue import CHAIN_BLOCK, new_event
    from kades.market.chain import read_sol_usd
    ctx = Context("market-aggregator", settings=kades_settings)
    event = new_event(CHAIN_BLOCK, "/test/solana", {
        "slot": 7, "block_time": "2026-01-15T12:00:07Z", "transfers": [], "liquidity": [],
        "launches": [], "pool_states": [],
        "swaps": [{**swap(USDC, 1 / 150.0), "base_amount": 3_000 * 10**6}]})
    assert handle(event, ctx) is None
    assert read_sol_usd(redis_conn) == pytest.approx(150.0)
