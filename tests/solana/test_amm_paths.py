"""AMM paths without recorded mainnet data: Orca Whirlpool and Meteora DLMM called directly, a two-hop Jupiter route, PumpSwap deposit/withdraw, Raydium LaunchLab, Meteora DAMM v2 and DBC.

The transactions are built by hand in `json` encoding with the same shape as the RPC's.
"""
from __future__ import annotations

import pytest

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


# Built from the published interfaces (no real example in ../shared/data/solana): PumpSwap
# (pump_amm IDL: deposit/withdraw name the pool first; the pool owns its vaults), Raydium
# LaunchLab (raydium_launchpad IDL: buy_exact_in names pool_state 4, base_vault 7,
# quote_vault 8) and Meteora DAMM v2 (cp_amm IDL: swap names pool_authority 0, pool 1).
def anchor(name: str) -> str:
    return b58encode(p._anchor("global", name) + bytes(24))


def pumpswap(name: str, base: tuple[int, int], quote: tuple[int, int], user: tuple[int, int], user_sol: tuple[int, int],
             lp: tuple[int, int] = (0, 0)):
    keys = [TRADER, "PumpPool1", "VaultX", "VaultSol", "AtaX", "AtaSol", "FeeOwner", "FeeAta", p.PUMPSWAP, "AtaLp"]
    ix = {"programIdIndex": 8, "accounts": [1, 0, 2, 3, 4, 5, 6, 7, 9], "data": anchor(name)}
    return transaction(keys, [ix], [(2, "PumpPool1", X, *base), (3, "PumpPool1", p.WSOL, *quote),
                                    (4, TRADER, X, *user), (5, TRADER, p.WSOL, *user_sol), (7, "FeeOwner", p.WSOL, 5, 5),
                                    (9, TRADER, "LpMint1", *lp)])


def test_pumpswap_deposit_and_withdraw_are_liquidity_of_the_pool():
    records, skipped = normalise_transaction(pumpswap("deposit", (1000, 1500), (400, 600), (700, 200), (300, 100), lp=(0, 90)))
    (added,) = records["liquidity"]
    assert (added["program"], added["pool"], added["action"], added["provider"]) == ("pumpswap", "PumpPool1", "add", TRADER)
    assert (added["lp_mint"], added["lp_amount"]) == ("LpMint1", 90)  # LP minted to the provider
    assert (added["base_delta"], added["quote_delta"], added["quote_reserve_after"]) == (500, 200, 600)
    assert records["swaps"] == [] and records["transfers"] == [] and not skipped
    records, _ = normalise_transaction(pumpswap("withdraw", (1500, 300), (600, 120), (200, 1400), (100, 580), lp=(90, 18)))
    (removed,) = records["liquidity"]
    assert (removed["action"], removed["base_delta"], removed["quote_delta"]) == ("remove", -1200, -480)
    assert (removed["provider"], removed["lp_amount"]) == (TRADER, 72)  # LP burned
    assert records["pool_states"][0]["quote_reserve"] == 120


def test_a_launchlab_buy_reads_the_vaults_it_names():
    keys = [TRADER, "LaunchAuth", "Global", "Platform", "LaunchPool", "AtaX", "AtaSol", "BaseVault", "QuoteVault",
            X, p.WSOL, p.RAYDIUM_LAUNCHLAB]
    ix = {"programIdIndex": 11, "accounts": list(range(11)), "data": anchor("buy_exact_in")}
    tx = transaction(keys, [ix], [(5, TRADER, X, 0, 250), (6, TRADER, p.WSOL, 1000, 900),
                                  (7, "LaunchAuth", X, 10_000, 9_750), (8, "LaunchAuth", p.WSOL, 50, 150)])
    records, _ = normalise_transaction(tx)
    (swap,) = records["swaps"]
    assert (swap["program"], swap["pool"], swap["trader"], swap["side"]) == ("raydium_launchlab", "LaunchPool", TRADER, "buy")
    assert (swap["base_amount"], swap["quote_amount"]) == (250, 100)
    (state,) = records["pool_states"]
    assert (state["base_reserve"], state["quote_reserve"]) == (9_750, 150)
    # a bonding curve's vaults hold the unsold supply and the quote raised: no price (its
    # ratio, 0.0154, is not the curve's); the swap's price is the trade's
    assert state["price"] is None and swap["price"] == 0.4


def test_a_damm_v2_swap_reads_the_vaults_of_its_pool_authority():
    keys = [p.METEORA_DAMM_V2_AUTHORITY, "DammPool", "AtaX", "AtaSol", "VaultX", "VaultSol", TRADER, p.METEORA_DAMM_V2]
    keys[0], keys[6] = TRADER, p.METEORA_DAMM_V2_AUTHORITY  # the fee payer signs first
    ix = {"programIdIndex": 7, "accounts": [6, 1, 2, 3, 4, 5, 0], "data": anchor("swap")}
    tx = transaction(keys, [ix], [(2, TRADER, X, 100, 0), (3, TRADER, p.WSOL, 0, 40),
                                  (4, p.METEORA_DAMM_V2_AUTHORITY, X, 900, 1000),
                                  (5, p.METEORA_DAMM_V2_AUTHORITY, p.WSOL, 500, 460)])
    (swap,) = normalise_transaction(tx)[0]["swaps"]
    assert (swap["program"], swap["pool"], swap["side"], swap["base_amount"], swap["quote_amount"]) == \
        ("meteora_damm_v2", "DammPool", "sell", 100, 40)



def test_a_dbc_swap_reads_the_vaults_of_its_pool_authority_and_prices_by_the_trade():
    """Meteora DBC (dynamic_bonding_curve IDL: swap and swap2 name pool_authority 0, config 1,
    pool 2, the trader's input and output accounts 3 and 4, base_vault 5, quote_vault 6)."""
    auth = "FhVo3mqL8PW5pH5U2CN4XE33DokiyZnUwuGpH2hmHLuM"  # the pool authority: owns every pool's vaults
    keys = [TRADER, auth, "DbcConfig", "DbcPool", "AtaSol", "AtaX", "VaultX", "VaultSol", X, p.WSOL, p.METEORA_DBC]
    for name in ("swap", "swap2"):
        ix = {"programIdIndex": 10, "accounts": [1, 2, 3, 4, 5, 6, 7, 8, 9, 0], "data": anchor(name)}
        tx = transaction(keys, [ix], [(4, TRADER, p.WSOL, 1_000, 700), (5, TRADER, X, 0, 6_000),
                                      (6, auth, X, 800_000, 794_000), (7, auth, p.WSOL, 2_000, 2_300)])
        records, skipped = normalise_transaction(tx)
        (swap,) = records["swaps"]
        assert (swap["program"], swap["pool"], swap["trader"], swap["side"]) == ("meteora_dbc", "DbcPool", TRADER, "buy")
        assert (swap["base_amount"], swap["quote_amount"]) == (6_000, 300)
        assert swap["price"] == pytest.approx(0.05)
        (state,) = records["pool_states"]
        assert (state["pool"], state["quote_reserve"], state["price"]) == ("DbcPool", 2_300, None)
        assert records["transfers"] == [] and not skipped


def test_a_direct_dlmm_swap_is_read_from_the_pairs_reserves():
    """Meteora DLMM (lb_clmm IDL: swap names lb_pair 0, reserve_x 2, reserve_y 3; the pair owns them)."""
    keys = [TRADER, "LbPair1", "Bitmap", "ReserveX", "ReserveSol", "AtaX", "AtaSol", p.METEORA_DLMM]
    ix = {"programIdIndex": 7, "accounts": [1, 2, 3, 4, 5, 6, 0], "data": anchor("swap")}
    tx = transaction(keys, [ix], [(3, "LbPair1", X, 5_000, 4_600), (4, "LbPair1", p.WSOL, 700, 760),
                                  (5, TRADER, X, 0, 400), (6, TRADER, p.WSOL, 60, 0)])
    records, skipped = normalise_transaction(tx)
    (swap,) = records["swaps"]
    assert (swap["program"], swap["pool"], swap["trader"], swap["side"]) == ("meteora_dlmm", "LbPair1", TRADER, "buy")
    assert (swap["base_amount"], swap["quote_amount"]) == (400, 60) and not skipped
    assert records["pool_states"][0]["quote_reserve"] == 760 and records["transfers"] == []


def test_a_pump_fun_buy_that_fills_the_curve_marks_it_complete():
    """pump.fun IDL: TradeEvent (mint, sol_amount, token_amount, is_buy, user, timestamp,
    virtual reserves) then CompleteEvent (user, mint, bonding_curve, timestamp) in the logs."""
    import base64
    import struct

    from kades.solana.base58 import b58decode
    mint, curve = "PumpMint11111111111111111111111111111111111", "Curve111111111111111111111111111111111111111"
    trade = (p.TRADE_EVENT + b58decode(mint).rjust(32, b"\0") + struct.pack("<QQ", 85 * 10**9, 2 * 10**14) + b"\x01"
             + b58decode(TRADER).rjust(32, b"\0") + struct.pack("<qQQ", 1_700_000_000, 115 * 10**9, 279 * 10**12))
    complete = p.COMPLETE_EVENT + b"".join(b58decode(k).rjust(32, b"\0") for k in (TRADER, mint, curve)) + bytes(8)
    keys = [TRADER, "Global", "Fee", mint, curve, p.PUMP_FUN]
    tx = transaction(keys, [{"programIdIndex": 5, "accounts": [1, 2, 3, 4], "data": b58encode(b"\x66" * 8)}], [])
    tx["meta"]["logMessages"] = [f"Program data: {base64.b64encode(e).decode()}" for e in (trade, complete)]
    records, _ = normalise_transaction(tx)
    (swap,) = records["swaps"]
    assert (swap["pool"], swap["side"], swap["quote_amount"]) == (curve, "buy", 85 * 10**9)
    (state,) = records["pool_states"]
    assert state["pool"] == curve and state["complete"] is True


def _trade_event_log(mint: str, *, sol: int, is_buy: bool) -> str:
    """A `Program data:` line holding an Anchor `TradeEvent` (pump.fun's layout)."""
    import base64
    import struct

    from kades.solana.base58 import b58decode
    key = b58decode(mint)[-32:].rjust(32, b"\0")  # 32 bytes, as a public key is
    event = (p.TRADE_EVENT + key + struct.pack("<QQ", sol, 10**12)
             + (b"\x01" if is_buy else b"\x00") + b58decode(TRADER)[-32:].rjust(32, b"\0")
             + struct.pack("<qQQ", 1_700_000_000, 10**11, 10**15))
    return f"Program data: {base64.b64encode(event).decode()}"


def test_another_programs_trade_event_is_not_read_as_pump_funs():
    """Raydium LaunchLab and Moonshot log an Anchor `TradeEvent` too, with pump.fun's
    discriminator: read as pump.fun's, a LaunchLab buy was also a pump.fun sell of 793,100
    SOL. Only what pump.fun logs while it runs is pump.fun's."""
    keys = [TRADER, "LaunchAuth", "Global", "Platform", "LaunchPool", "AtaX", "AtaSol", "BaseVault", "QuoteVault",
            X, p.WSOL, p.RAYDIUM_LAUNCHLAB]
    ix = {"programIdIndex": 11, "accounts": list(range(11)), "data": anchor("buy_exact_in")}
    tx = transaction(keys, [ix], [(5, TRADER, X, 0, 250), (6, TRADER, p.WSOL, 1000, 900),
                                  (7, "LaunchAuth", X, 10_000, 9_750), (8, "LaunchAuth", p.WSOL, 50, 150)])
    tx["meta"]["logMessages"] = [f"Program {p.RAYDIUM_LAUNCHLAB} invoke [1]",
                                 "Program log: Instruction: BuyExactIn",
                                 _trade_event_log(X, sol=793_100 * 10**9, is_buy=False),
                                 f"Program {p.RAYDIUM_LAUNCHLAB} success"]
    records, _ = normalise_transaction(tx)
    assert [swap["program"] for swap in records["swaps"]] == ["raydium_launchlab"]
    # logged by pump.fun (invoked by a bot's program): read, as before
    assert [e.sol_amount for e in p.pump_events([], [
        "Program Bot1111111111111111111111111111111111111 invoke [1]",
        f"Program {p.PUMP_FUN} invoke [2]", _trade_event_log(X, sol=5, is_buy=True),
        f"Program {p.PUMP_FUN} success", _trade_event_log(X, sol=7, is_buy=True),
        "Program Bot1111111111111111111111111111111111111 success"])] == [5]


def test_token_balances_without_owner_stand_for_themselves_and_an_owner_change_moves():
    """`owner` is optional in the RPC's token balances (blocks before it was added): every such
    account was lumped under one owner "", no address, and a replay holding one stopped. An
    account whose owner changed (SPL SetAuthority, a drainer's way) moved nothing."""
    keys = [TRADER, "Acct1", "Acct2", "Acct3"]
    tx = transaction(keys, [], [(1, TRADER, X, 0, 0)])
    tx["meta"]["preTokenBalances"] = [
        {"accountIndex": 1, "mint": X, "uiTokenAmount": {"amount": "500", "decimals": 6}},
        {"accountIndex": 2, "mint": X, "uiTokenAmount": {"amount": "0", "decimals": 6}},
        {"accountIndex": 3, "owner": "Victim", "mint": X, "uiTokenAmount": {"amount": "70", "decimals": 6}}]
    tx["meta"]["postTokenBalances"] = [
        {"accountIndex": 1, "mint": X, "uiTokenAmount": {"amount": "200", "decimals": 6}},
        {"accountIndex": 2, "mint": X, "uiTokenAmount": {"amount": "300", "decimals": 6}},
        {"accountIndex": 3, "owner": "Drainer", "mint": X, "uiTokenAmount": {"amount": "70", "decimals": 6}}]
    from kades.solana.transaction import TransactionView
    view = TransactionView(tx)
    assert view.owner_deltas() == {("Acct1", X): -300, ("Acct2", X): 300,
                                   ("Victim", X): -70, ("Drainer", X): 70}
    # worked out once per view: its ~10 readers a transaction were a third of a block's CPU
    assert view.token_balances() is view.token_balances()
    records, _ = normalise_transaction(tx)
    assert {(t["source"], t["destination"], t["amount"]) for t in records["transfers"]} == {
        ("Acct1", "Acct2", 300), ("Victim", "Drainer", 70)}


def test_a_transaction_without_meta_is_unreadable_not_a_success():
    import pytest

    from kades.solana.transaction import MalformedTransaction
    tx = transaction([TRADER, X], [], [])
    tx["meta"] = None
    with pytest.raises(MalformedTransaction, match="meta is null"):
        normalise_transaction(tx)


def test_a_concentrated_pools_state_carries_no_price_its_swap_does():
    keys = [TRADER, "Whirlpool", "VaultX", "VaultSol", "AtaX", "AtaSol", X, p.WSOL, p.ORCA_WHIRLPOOL]
    ix = {"programIdIndex": 8, "accounts": [0, 1, 4, 2, 5, 3], "data": b58encode(bytes(8))}
    tx = transaction(keys, [ix], [(2, "Whirlpool", X, 10_000, 9_750), (3, "Whirlpool", p.WSOL, 50, 150),
                                  (4, TRADER, X, 0, 250), (5, TRADER, p.WSOL, 1000, 900)])
    records, _ = normalise_transaction(tx)
    (state,) = records["pool_states"]
    assert state["program"] == "orca_whirlpool" and state["price"] is None
    assert [s["price"] for s in records["swaps"]] and records["swaps"][0]["price"] > 0


def launchlab_migration() -> dict:
    """LaunchLab's migrate_to_cpswap (raydium_launchpad IDL: cpswap_pool 5, authority 16,
    pool_state 17, base_vault 19, quote_vault 20, 28 accounts), the full curve's reserves
    moved into the CPMM pool its inner `initialize` creates (pool state 3, vaults owned by
    CPMM's authority)."""
    names = ["Cfg", p.RAYDIUM_CPMM, "CpmmPool", p.RAYDIUM_CPMM_AUTHORITY, "CpLp", "CpVaultX", "CpVaultSol",
             "CpCfg", "CpFee", "CpObs", "Lock", "LockAuth", "LockVault", "LaunchAuth", "LaunchPool",
             "GlobalCfg", "BaseVault", "QuoteVault", "PoolLp", p.TOKEN, "Tok22", "Ata", p.SYSTEM, "Rent",
             "Meta", p.RAYDIUM_LAUNCHLAB]
    keys = [TRADER, X, p.WSOL, *names]
    at = {key: index for index, key in enumerate(keys)}
    migrate = {"programIdIndex": at[p.RAYDIUM_LAUNCHLAB], "accounts": list(range(28)),
               "data": anchor("migrate_to_cpswap")}
    tx = transaction(keys, [migrate], [
        (at["BaseVault"], "LaunchAuth", X, 206_900_000, 0), (at["QuoteVault"], "LaunchAuth", p.WSOL, 85_000, 0),
        (at["CpVaultX"], p.RAYDIUM_CPMM_AUTHORITY, X, 0, 206_900_000),
        (at["CpVaultSol"], p.RAYDIUM_CPMM_AUTHORITY, p.WSOL, 0, 85_000)])
    initialize = {"programIdIndex": at[p.RAYDIUM_CPMM], "data": anchor("initialize"), "accounts": [
        at[k] for k in (TRADER, "CpCfg", p.RAYDIUM_CPMM_AUTHORITY, "CpmmPool", X, p.WSOL, "CpLp",
                        "CpVaultX", "CpVaultSol")]}
    tx["meta"]["innerInstructions"] = [{"index": 0, "instructions": [initialize]}]
    return tx


def test_a_launchlab_curve_handing_over_to_its_cpmm_pool_is_a_migration_both_sides():
    records, _ = normalise_transaction(launchlab_migration())
    by_pool = {record["pool"]: record for record in records["liquidity"]}
    curve, pool = by_pool["LaunchPool"], by_pool["CpmmPool"]
    assert (curve["action"], curve["quote_delta"], curve["program"]) == ("remove", -85_000, "raydium_launchlab")
    assert curve["migration"] == {"program": "raydium_launchlab", "bonding_curve": "LaunchPool", "to": "CpmmPool"}
    assert (pool["action"], pool["quote_reserve_after"], pool["program"]) == ("create", 85_000, "raydium_cpmm")
    assert pool["migration"] == {"program": "raydium_launchlab", "bonding_curve": "LaunchPool"}
    assert records["swaps"] == [] and records["transfers"] == []
    # the curve's other instructions touch no vault of it (its authority is no pool)
    other = launchlab_migration()
    other["transaction"]["message"]["instructions"][0]["data"] = anchor("claim_platform_fee")
    other["meta"]["innerInstructions"] = []
    assert [r["pool"] for r in normalise_transaction(other)[0]["liquidity"]] == []


def test_a_dbc_migration_names_the_virtual_pool_and_the_damm_pool():
    """Meteora DBC's migration_damm_v2 (dynamic_bonding_curve source: virtual_pool 0, the new
    DAMM v2 pool 4, base_vault 17, quote_vault 18)."""
    named = {0: "VirtualPool", 3: "DbcAuth", 4: "DammPool", 17: "BaseVault", 18: "QuoteVault", 19: TRADER}
    accounts = [named.get(k, f"Acct{k}") for k in range(25)]
    keys = [TRADER, *[a for a in accounts if a != TRADER], p.METEORA_DBC]
    ix = {"programIdIndex": len(keys) - 1, "accounts": [keys.index(a) for a in accounts],
          "data": anchor("migration_damm_v2")}
    # its inner initialize_pool_with_dynamic_config (cp_amm IDL: pool_authority 6, pool 7,
    # token_a_vault 11, token_b_vault 12; 21 accounts)
    damm = p.METEORA_DAMM_V2_AUTHORITY
    named = {6: damm, 7: "DammPool", 11: "DammVaultX", 12: "DammVaultSol"}
    inner_accounts = [named.get(k, f"Damm{k}") for k in range(21)]
    keys += [a for a in inner_accounts if a not in keys] + [p.METEORA_DAMM_V2]
    inner = {"programIdIndex": keys.index(p.METEORA_DAMM_V2), "data": anchor("initialize_pool_with_dynamic_config"),
             "accounts": [keys.index(a) for a in inner_accounts]}
    tx = transaction(keys, [ix], [(keys.index("BaseVault"), "DbcAuth", X, 10**9, 0),
                                  (keys.index("QuoteVault"), "DbcAuth", p.WSOL, 84 * 10**3, 0),
                                  (keys.index("DammVaultX"), damm, X, 0, 10**9),
                                  (keys.index("DammVaultSol"), damm, p.WSOL, 0, 84 * 10**3)])
    tx["meta"]["innerInstructions"] = [{"index": 0, "instructions": [inner]}]
    records = normalise_transaction(tx)[0]
    removed, created = sorted(records["liquidity"], key=lambda r: r["action"], reverse=True)
    assert (removed["pool"], removed["action"], removed["quote_delta"]) == ("VirtualPool", "remove", -84_000)
    assert removed["migration"] == {"program": "meteora_dbc", "bonding_curve": "VirtualPool", "to": "DammPool"}
    assert (created["pool"], created["action"], created["program"]) == ("DammPool", "create", "meteora_damm_v2")
    assert created["migration"] == {"program": "meteora_dbc", "bonding_curve": "VirtualPool"}
    assert records["transfers"] == []


LAUNCH_AUTH = "WLHv2UAZm6z4KyaaELi5pjdbJh6RESMva1Rnn8pJVVh"  # LaunchLab's vault authority


def launchlab_claim_and_sell(*, sell: bool) -> dict:
    """A LaunchLab instruction the normaliser does not read (a vested claim: 5,000 tokens out
    of the base vault to the trader), then, when `sell`, a sell_exact_in (3,000 in, 100 out)."""
    keys = [TRADER, LAUNCH_AUTH, "Global", "Platform", "LaunchPool", "AtaX", "AtaSol", "BaseVault", "QuoteVault",
            X, p.WSOL, p.RAYDIUM_LAUNCHLAB, p.TOKEN]

    def moved(source: int, destination: int, amount: int) -> dict:  # SPL Token Transfer (3)
        return {"programIdIndex": 12, "accounts": [source, destination, 1], "data": b58encode(bytes([3]) + amount.to_bytes(8, "little"))}
    claim = {"programIdIndex": 11, "accounts": [0, 1, 4, 7, 5], "data": anchor("claim_vested_token")}
    trade = {"programIdIndex": 11, "accounts": list(range(11)), "data": anchor("sell_exact_in")}
    tx = transaction(keys, [claim, trade] if sell else [claim], [
        (5, TRADER, X, 0, 2_000 if sell else 5_000), (6, TRADER, p.WSOL, 0, 100 if sell else 0),
        (7, LAUNCH_AUTH, X, 100_000, 98_000 if sell else 95_000), (8, LAUNCH_AUTH, p.WSOL, 150, 50 if sell else 150)])
    tx["meta"]["innerInstructions"] = [{"index": 0, "instructions": [moved(7, 5, 5_000)]}] + (
        [{"index": 1, "instructions": [moved(5, 7, 3_000), moved(8, 6, 100)]}] if sell else [])
    return tx


def test_a_curves_claim_is_neither_a_removal_nor_part_of_the_trade_beside_it():
    records, _ = normalise_transaction(launchlab_claim_and_sell(sell=True))
    (swap,) = records["swaps"]
    assert (swap["side"], swap["base_amount"], swap["quote_amount"]) == ("sell", 3_000, 100)
    assert records["liquidity"] == []
    (state,) = records["pool_states"]
    assert (state["base_reserve"], state["quote_reserve"]) == (98_000, 50)
    # alone, its authority is no wallet that sent anything
    records, _ = normalise_transaction(launchlab_claim_and_sell(sell=False))
    assert records["transfers"] == [] and records["liquidity"] == [] and records["swaps"] == []


def test_a_launchlab_curve_is_created_where_its_initialize_names_it():
    """raydium_launchpad IDL: initialize, initialize_v2 and initialize_with_token_2022 name
    pool_state 5, base_mint 6, base_vault 8, quote_vault 9."""
    keys = [TRADER, "Creator", "Global", "Platform", LAUNCH_AUTH, "LaunchPool", X, p.WSOL, "BaseVault",
            "QuoteVault", p.RAYDIUM_LAUNCHLAB]
    for name in ("initialize", "initialize_v2", "initialize_with_token_2022"):
        ix = {"programIdIndex": 10, "accounts": list(range(10)), "data": anchor(name)}
        tx = transaction(keys, [ix], [(8, LAUNCH_AUTH, X, 0, 10**15), (9, LAUNCH_AUTH, p.WSOL, 0, 0)])
        (created,) = normalise_transaction(tx)[0]["liquidity"]
        assert (created["pool"], created["action"], created["base_reserve_after"]) == ("LaunchPool", "create", 10**15)


def test_launchlabs_migrate_to_amm_is_read_in_both_published_layouts():
    """32 accounts (the OpenBook market made too: amm_program 12, amm_pool 13, pool_state 23,
    vaults 25 and 26) or 23 (amm_program 4, amm_pool 5, pool_state 14, vaults 16 and 17)."""
    for count, at in ((32, {12: p.RAYDIUM_V4, 13: "AmmPool", 23: "LaunchPool", 25: "BaseVault", 26: "QuoteVault"}),
                      (23, {4: p.RAYDIUM_V4, 5: "AmmPool", 14: "LaunchPool", 16: "BaseVault", 17: "QuoteVault"})):
        accounts = [TRADER, *[at.get(k, f"Acct{k}") for k in range(1, count)]]
        keys = [*accounts, p.RAYDIUM_LAUNCHLAB]
        ix = {"programIdIndex": count, "accounts": list(range(count)), "data": anchor("migrate_to_amm")}
        tx = transaction(keys, [ix], [(keys.index("BaseVault"), LAUNCH_AUTH, X, 2 * 10**14, 0),
                                      (keys.index("QuoteVault"), LAUNCH_AUTH, p.WSOL, 85 * 10**9, 0)])
        (removed,) = normalise_transaction(tx)[0]["liquidity"]
        assert (removed["pool"], removed["migration"]["to"]) == ("LaunchPool", "AmmPool"), count


def test_usd1_quotes_its_pairs_whatever_the_tokens_address():
    """bonk.fun's LaunchLab pools trade tokens against USD1: with the larger address the
    quote, a token whose address sorts after USD1's was USD1's quote (USD1 analysed as the
    token), and a SOL/USD1 pool made USD1 a token."""
    from kades.solana.swaps import quote_of
    late = "zBonkMint11111111111111111111111111111111bonk"  # sorts after "USD1..."
    assert quote_of(late, p.USD1) == (late, p.USD1) and quote_of(p.USD1, late) == (late, p.USD1)
    assert quote_of(p.USD1, p.WSOL) == (p.USD1, p.WSOL)  # SOL quotes a dollar, as USDC's pairs
    keys = [TRADER, "LaunchAuth", "Global", "Platform", "LaunchPool", "AtaX", "AtaUsd", "BaseVault", "QuoteVault",
            late, p.USD1, p.RAYDIUM_LAUNCHLAB]
    ix = {"programIdIndex": 11, "accounts": list(range(11)), "data": anchor("buy_exact_in")}
    tx = transaction(keys, [ix], [(5, TRADER, late, 0, 250), (6, TRADER, p.USD1, 1000, 900),
                                  (7, "LaunchAuth", late, 10_000, 9_750), (8, "LaunchAuth", p.USD1, 50, 150)])
    (swap,) = normalise_transaction(tx)[0]["swaps"]
    assert (swap["base_mint"], swap["quote_mint"], swap["side"]) == (late, p.USD1, "buy")


def test_a_mint_of_no_decimals_is_an_nft_not_a_launch():
    """A concentrated-liquidity position (Raydium CLMM, Orca Whirlpool) is an NFT: SPL Token's
    InitializeMint2 (tag 20: decimals, mint authority, no freeze authority) of 0 decimals, one
    minted to the position's owner. Each was a token launch, its LP a serial launcher."""
    from kades.solana.base58 import b58decode
    mint = "NewMint11111111111111111111111111111111111"
    # (0 decimals, a billion minted, or none yet, as `spl-token create-token` leaves it: a token)
    for decimals, supply, launched in ((0, 1, False), (6, 10**15, True), (0, 10**9, True), (0, None, True)):
        keys = [TRADER, mint, p.TOKEN, "Ata"]
        init = {"programIdIndex": 2, "accounts": [1],
                "data": b58encode(bytes([20, decimals]) + b58decode(TRADER).rjust(32, b"\0") + b"\0")}
        balances = [] if supply is None else [(3, TRADER, mint, 0, supply)]
        records, _ = normalise_transaction(transaction(keys, [init], balances))
        assert [r["mint"] for r in records["launches"]] == ([mint] if launched else []), (decimals, supply)


def _moved(keys: list[str], source: str, destination: str, authority: str, amount: int) -> dict:
    return {"programIdIndex": keys.index(p.TOKEN), "data": b58encode(b"\x03" + amount.to_bytes(8, "little")),
            "accounts": [keys.index(source), keys.index(destination), keys.index(authority)]}


def _pumpswap_trade(keys: list[str], name: str, user: str, ata_x: str, ata_sol: str) -> dict:
    names = ("PumpPool1", user, "VaultX", "VaultSol", ata_x, ata_sol, "FeeOwner", "FeeAta")
    return {"programIdIndex": keys.index(p.PUMPSWAP), "data": anchor(name), "accounts": [keys.index(a) for a in names]}


def test_a_buy_and_sell_in_one_transaction_are_both_the_traders():
    """A volume bot's round trip: the trader ends down in SOL, and the only owner up in SOL is
    the pool's fee account, which had been named the sell's trader with the fee as its size."""
    keys = [TRADER, "PumpPool1", "VaultX", "VaultSol", "AtaX", "AtaSol", "FeeOwner", "FeeAta", p.PUMPSWAP, p.TOKEN]
    tx = transaction(keys, [_pumpswap_trade(keys, "buy", TRADER, "AtaX", "AtaSol"),
                            _pumpswap_trade(keys, "sell", TRADER, "AtaX", "AtaSol")],
                     [(2, "PumpPool1", X, 100_000, 100_000), (3, "PumpPool1", p.WSOL, 50_000, 50_010),
                      (4, TRADER, X, 0, 0), (5, TRADER, p.WSOL, 5_000, 4_970), (7, "FeeOwner", p.WSOL, 0, 20)])
    tx["meta"]["innerInstructions"] = [
        {"index": 0, "instructions": [_moved(keys, "AtaSol", "VaultSol", TRADER, 1_000),
                                      _moved(keys, "AtaSol", "FeeAta", TRADER, 10),
                                      _moved(keys, "VaultX", "AtaX", "PumpPool1", 2_000)]},
        {"index": 1, "instructions": [_moved(keys, "AtaX", "VaultX", TRADER, 2_000),
                                      _moved(keys, "VaultSol", "AtaSol", "PumpPool1", 980),
                                      _moved(keys, "VaultSol", "FeeAta", "PumpPool1", 10)]}]
    records, _ = normalise_transaction(tx)
    buy, sell = records["swaps"]
    assert (buy["trader"], buy["side"], buy["amount_in"], buy["amount_out"]) == (TRADER, "buy", 1_000, 2_000)
    assert (sell["trader"], sell["side"], sell["amount_in"], sell["amount_out"]) == (TRADER, "sell", 2_000, 980)
    assert sell["pool_amount_out"] == 990 and "signer" not in sell


def test_two_signers_buying_from_one_pool_are_two_swaps_not_a_route():
    """A bundle: two wallets' buys of one pool net to one mint in and one out, as a route's
    hops do, and were one swap of both wallets' SOL for the first wallet."""
    other = "Trader2222222222222222222222222222222222222"
    keys = [TRADER, other, "PumpPool1", "VaultX", "VaultSol", "AtaX", "AtaSol", "AtaX2", "AtaSol2",
            "FeeOwner", "FeeAta", p.PUMPSWAP, p.TOKEN]
    tx = transaction(keys, [_pumpswap_trade(keys, "buy", TRADER, "AtaX", "AtaSol"),
                            _pumpswap_trade(keys, "buy", other, "AtaX2", "AtaSol2")],
                     [(3, "PumpPool1", X, 100_000, 93_000), (4, "PumpPool1", p.WSOL, 50_000, 54_000),
                      (5, TRADER, X, 0, 2_000), (6, TRADER, p.WSOL, 5_000, 4_000),
                      (7, other, X, 0, 5_000), (8, other, p.WSOL, 5_000, 2_000)])
    tx["transaction"]["message"]["header"]["numRequiredSignatures"] = 2
    tx["meta"]["innerInstructions"] = [
        {"index": 0, "instructions": [_moved(keys, "AtaSol", "VaultSol", TRADER, 1_000),
                                      _moved(keys, "VaultX", "AtaX", "PumpPool1", 2_000)]},
        {"index": 1, "instructions": [_moved(keys, "AtaSol2", "VaultSol", other, 3_000),
                                      _moved(keys, "VaultX", "AtaX2", "PumpPool1", 5_000)]}]
    records, _ = normalise_transaction(tx)
    assert sorted((s["trader"], s["amount_in"], s["amount_out"]) for s in records["swaps"]) == \
        sorted([(TRADER, 1_000, 2_000), (other, 3_000, 5_000)])
    assert all("route" not in s for s in records["swaps"])


def test_a_route_whose_output_goes_to_another_wallet_is_sized_by_that_output():
    """The pools paid the signer its middle hop's SOL: that SOL was taken for the route's
    output when the output went to another wallet (amount_out 1,000 of SOL, not 3,000 of Y)."""
    other = "Recipient22222222222222222222222222222222222"
    keys = [TRADER, "PumpPool1", "VaultX", "VaultSol", "AtaX", "AtaSol", "FeeOwner", "FeeAta",
            "PumpPool2", "VaultY", "VaultSol2", "AtaY2", other, p.PUMPSWAP, p.TOKEN]

    def trade(name, pool, base_vault, quote_vault, ata_base):
        names = (pool, TRADER, base_vault, quote_vault, ata_base, "AtaSol", "FeeOwner", "FeeAta")
        return {"programIdIndex": keys.index(p.PUMPSWAP), "data": anchor(name),
                "accounts": [keys.index(a) for a in names]}
    tx = transaction(keys, [trade("sell", "PumpPool1", "VaultX", "VaultSol", "AtaX"),
                            trade("buy", "PumpPool2", "VaultY", "VaultSol2", "AtaY2")],
                     [(2, "PumpPool1", X, 100_000, 102_000), (3, "PumpPool1", p.WSOL, 50_000, 49_000),
                      (4, TRADER, X, 2_000, 0), (5, TRADER, p.WSOL, 5_000, 5_000),
                      (9, "PumpPool2", Y, 100_000, 97_000), (10, "PumpPool2", p.WSOL, 50_000, 51_000),
                      (11, other, Y, 0, 3_000)])
    tx["meta"]["innerInstructions"] = [
        {"index": 0, "instructions": [_moved(keys, "AtaX", "VaultX", TRADER, 2_000),
                                      _moved(keys, "VaultSol", "AtaSol", "PumpPool1", 1_000)]},
        {"index": 1, "instructions": [_moved(keys, "AtaSol", "VaultSol2", TRADER, 1_000),
                                      _moved(keys, "VaultY", "AtaY2", "PumpPool2", 3_000)]}]
    (swap,) = normalise_transaction(tx)[0]["swaps"]
    assert (swap["mint_in"], swap["amount_in"], swap["mint_out"], swap["amount_out"]) == (X, 2_000, Y, 3_000)
    assert swap["route"] == ["PumpPool1", "PumpPool2"] and "pool_amount_out" not in swap
