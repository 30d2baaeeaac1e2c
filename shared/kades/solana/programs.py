"""Program ids and the few instruction/event layouts the normaliser reads.

Layouts come from the programs' public IDLs: pump.fun's Anchor events (TradeEvent,
CreateEvent, CompleteEvent) and its migrate instruction, SPL Token's
InitializeMint/InitializeMint2/SetAuthority, the account lists of Raydium AMM v4, CPMM and
LaunchLab, PumpSwap (pump_amm), Meteora DAMM v2 and DBC. Everything else is derived from
balance changes (see pools.py and normalise.py).
"""
from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass

from kades.solana.base58 import b58encode
from kades.solana.transaction import Instruction

PUMP_FUN = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"
RAYDIUM_V4 = "675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8"
RAYDIUM_V4_AUTHORITY = "5Q544fKrFoe6tsEbD7S8EmxGTJYAKtTVhAW5Q5pge4j1"
RAYDIUM_CPMM = "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"
RAYDIUM_CPMM_AUTHORITY = "GpMZbSM2GgvTKHJirzeGfMFoaZ8UR2X7F4v8vHTvxFbL"
ORCA_WHIRLPOOL = "whirLbMiicVdio4qvUfM5KAg6Ct8VwpYzGff3uctyCc"
METEORA_DLMM = "LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo"
METEORA_POOLS = "Eo7WjKq67rjJQSZxS6z3YkapzY3eMj6Xy8X5EQVn5UaB"
METEORA_DAMM_V2 = "cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG"
METEORA_DAMM_V2_AUTHORITY = "HLnpSz9h2S4hiLQ43rnSD9XkcUThA7B8hQMKmDaiTLcC"
PUMPSWAP = "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA"
PUMPSWAP_FEES = "pfeeUxB6jkeY1Hxd7CsFCAjcbHA9rWtchMGdZ6VojVZ"  # fee tiers PumpSwap asks (CPI)
RAYDIUM_CLMM = "CAMMCzo5YL8w4VFF8KVHrK22GGUsp5VTaW7grrKgrWqK"
RAYDIUM_LAUNCHLAB = "LanMV9sAd7wArD4vJFi2qDdfnVhFxYSUg6eADduJ3uj"
METEORA_DBC = "dbcij3LWUppWqq96dh6gJWwBifmcGfLSB5D4DuSMaqN"  # Dynamic Bonding Curve (launchpads)
JUPITER_V6 = "JUP6LkbZbjS1jKKwapdHNy74zcZ3tLUZoi5QNyVTaV4"
# Routers: they move the trader's tokens through pools; the route is one swap for the trader.
AGGREGATORS = {JUPITER_V6: "jupiter_v6", "DF1ow4tspfHX9JwWJsAb9epbkA8hmpSEAtxXy1V27QBH": "dflow",
               "T1TANpTeScyeqVzzgNViGDNrkQ6qHz9KrSBS4aNXvGT": "titan",
               "routeUGWgWzqBWFcrCfv8tritsqukccJPu3q5GPP3xS": "raydium_route"}
TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022 = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
SYSTEM = "11111111111111111111111111111111"

WSOL = "So11111111111111111111111111111111111111112"
LAMPORTS = 10**9  # in one SOL
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
USDT = "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"
# World Liberty's dollar: the quote of LaunchLab's bonk.fun pools (USD1/token). Not a quote,
# it was the base of every such pair whose token's address sorts after it (the larger
# address quotes): the token analysed as USD1's quote, USD1 as the token; SOL/USD1 pools
# made USD1 a token too.
USD1 = "USD1ttGY1N17NEEHLmELoaybftRBUSErhqYiQzvEmuB"
QUOTE_MINTS = (WSOL, USDC, USDT, USD1)  # in order of preference when both sides are quotes
STABLECOINS = (USDC, USDT, USD1)

# AMMs whose vaults the normaliser reads; name used in records.
AMM_NAMES = {RAYDIUM_V4: "raydium_v4", RAYDIUM_CPMM: "raydium_cpmm", ORCA_WHIRLPOOL: "orca_whirlpool",
             METEORA_DLMM: "meteora_dlmm", METEORA_POOLS: "meteora_pools",
             METEORA_DAMM_V2: "meteora_damm_v2", PUMPSWAP: "pumpswap", RAYDIUM_CLMM: "raydium_clmm",
             RAYDIUM_LAUNCHLAB: "raydium_launchlab", METEORA_DBC: "meteora_dbc"}
# Vault owners shared by every pool of a program (the pool id then comes from the instruction).
SHARED_AUTHORITIES = {RAYDIUM_V4_AUTHORITY: RAYDIUM_V4, RAYDIUM_CPMM_AUTHORITY: RAYDIUM_CPMM,
                      METEORA_DAMM_V2_AUTHORITY: METEORA_DAMM_V2}
# Concentrated-liquidity programs: their vaults hold every position's tokens, in or out of
# range, so the vaults' ratio is no price (a -19 % move read as -97 %, a "rug price dump");
# their pool states carry no price, their swaps do (kades.solana.normalise).
CONCENTRATED = {"orca_whirlpool", "raydium_clmm", "meteora_dlmm"}
# Bonding curves whose vaults hold the real tokens only: the supply not sold yet and the quote
# raised, where the curve prices by virtual reserves too. Their vault ratio starts at 0 and
# falls far faster than the curve's price (a curve that raised 1 SOL and gave back 0.9: the
# vaults' ratio -90 %, the curve's price -6 %, a "rug price dump"); their swaps carry the price.
# (pump.fun's pool states are its events' virtual reserves: a price.)
CURVES = {"raydium_launchlab", "meteora_dbc"}
VAULTS_NOT_PRICED = CONCENTRATED | CURVES
# Programs whose pool account (pool_id) owns its vaults: nothing else it names is a vault
# (PumpSwap also names the protocol's and the coin creator's fee accounts).
POOL_OWNS_VAULTS = {PUMPSWAP}
# Programs that carry no market meaning: never counted as skipped.
PLUMBING = {"ComputeBudget111111111111111111111111111111", "11111111111111111111111111111111",
            TOKEN, TOKEN_2022, "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL",
            "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr", "Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo",
            "metaqbxxUerdq28cj1RbAWkYQm3ybzjb6a8bt518x1s", PUMP_FUN, PUMPSWAP_FEES, *AGGREGATORS,
            *AMM_NAMES}
# Addresses that are no token's: programs, and the authorities every pool of a program shares.
# A post naming one ("send to 5Q544…", the Raydium authority) named no coin.
NOT_MINTS = frozenset(PLUMBING | set(SHARED_AUTHORITIES))


def _anchor(kind: str, name: str) -> bytes:
    return hashlib.sha256(f"{kind}:{name}".encode()).digest()[:8]


TRADE_EVENT = _anchor("event", "TradeEvent")
CREATE_EVENT = _anchor("event", "CreateEvent")
COMPLETE_EVENT = _anchor("event", "CompleteEvent")
PUMP_MIGRATE = _anchor("global", "migrate")  # accounts: ..., 3 bonding curve, ..., 9 PumpSwap pool
EVENT_CPI_TAG = bytes.fromhex("e445a52e51cb9a1d")  # Anchor's emit_cpi! instruction tag
# Index of the pool state account in each instruction (Raydium's own account lists).
CPMM_POOL_INDEX = {_anchor("global", "swap_base_input"): 3, _anchor("global", "swap_base_output"): 3,
                   _anchor("global", "deposit"): 2, _anchor("global", "withdraw"): 2,
                   _anchor("global", "initialize"): 3}
RAYDIUM_V4_INITIALIZE = (0, 1)  # initialize, initialize2: the amm id is account 4; others: 1
# PumpSwap (pump_amm IDL): the pool is account 0 of every pool instruction.
PUMPSWAP_NAMES = {_anchor("global", name): name for name in (
    "buy", "sell", "buy_exact_quote_in", "create_pool", "deposit", "withdraw", "boost_buy_and_burn")}
# Meteora DAMM v2 (cp_amm IDL): where its instructions name the pool (the vaults are its pool
# authority's): swap and swap2 name pool_authority 0, pool 1; the three pool creations (the
# one a DBC curve's migration makes among them) pool 6, 7 and 5.
DAMM_V2_POOL_INDEX = {"swap": 1, "swap2": 1, "initialize_pool": 6,
                      "initialize_pool_with_dynamic_config": 7, "initialize_customizable_pool": 5}
DAMM_V2_NAMES = {_anchor("global", name): name for name in DAMM_V2_POOL_INDEX}
# Launchpad bonding curves: where each instruction names (pool, base_vault, quote_vault), and
# for a migration (the curve full, its reserves handed to an AMM pool) the new pool. Their
# vaults are owned by one authority per program, so they are read where named, never by owner;
# an instruction not listed here makes no record (its moves are its own: pools.pool_vaults).
# From the published IDLs: Raydium LaunchLab (raydium_launchpad), Meteora DBC (its source).
CURVE_ACCOUNTS = {
    RAYDIUM_LAUNCHLAB: {
        **{name: (4, 7, 8) for name in ("buy_exact_in", "buy_exact_out", "sell_exact_in", "sell_exact_out")},
        **{name: (5, 8, 9) for name in ("initialize", "initialize_v2", "initialize_with_token_2022")},
        "migrate_to_cpswap": (17, 19, 20, 5), "migrate_to_amm": None},  # (MIGRATE_TO_AMM)
    METEORA_DBC: {
        "swap": (2, 5, 6), "swap2": (2, 5, 6),
        "initialize_virtual_pool_with_spl_token": (5, 6, 7),
        "initialize_virtual_pool_with_token2022": (5, 6, 7),
        "migrate_meteora_damm": (0, 17, 18, 4), "migration_damm_v2": (0, 17, 18, 4)}}
# LaunchLab's migrate_to_amm has two published layouts, told apart by where they name the
# AMM v4 program: 12 in the one that makes the OpenBook market too, 4 in the other
MIGRATE_TO_AMM = {12: (23, 25, 26, 13), 4: (14, 16, 17, 5)}
# The authorities that own every pool's vaults of a launchpad (LaunchLab's "vault_auth_seed"
# PDA, DBC's pool authority): never a wallet. A fee or vested tokens claimed out of a curve,
# alone in a transaction, read as a transfer from one address that every pool shares.
CURVE_AUTHORITIES = {"WLHv2UAZm6z4KyaaELi5pjdbJh6RESMva1Rnn8pJVVh": RAYDIUM_LAUNCHLAB,
                     "FhVo3mqL8PW5pH5U2CN4XE33DokiyZnUwuGpH2hmHLuM": METEORA_DBC}
CURVE_NAMES = {program: {_anchor("global", name): name for name in layouts}
               for program, layouts in CURVE_ACCOUNTS.items()}


def curve_accounts(ix: Instruction) -> tuple[str, ...] | None:
    """(pool, base_vault, quote_vault[, the pool a migration hands over to]) of a launchpad
    curve's instruction; None for any other instruction."""
    name = CURVE_NAMES.get(ix.program, {}).get((ix.data or b"")[:8])
    if name is None:
        return None
    layout = CURVE_ACCOUNTS[ix.program][name] or next(
        (layout for at, layout in MIGRATE_TO_AMM.items()
         if at < len(ix.accounts) and ix.accounts[at] == RAYDIUM_V4), None)
    if layout is None or max(layout) >= len(ix.accounts):
        return None
    return tuple(ix.accounts[index] for index in layout)


def pool_id(ix: Instruction) -> str | None:
    """The pool an instruction acts on, where its account list says (None when not known)."""
    if ix.data is None or not ix.data:
        return None
    if ix.program == RAYDIUM_V4:
        index = 4 if ix.data[0] in RAYDIUM_V4_INITIALIZE else 1
    elif ix.program == RAYDIUM_CPMM:
        index = CPMM_POOL_INDEX.get(ix.data[:8])
    elif ix.program == PUMPSWAP:
        index = 0 if ix.data[:8] in PUMPSWAP_NAMES else None
    elif ix.program == METEORA_DAMM_V2:
        index = DAMM_V2_POOL_INDEX.get(DAMM_V2_NAMES.get(ix.data[:8], ""))
    elif ix.program in CURVE_ACCOUNTS:
        accounts = curve_accounts(ix)
        return accounts[0] if accounts else None
    else:
        return None
    return ix.accounts[index] if index is not None and index < len(ix.accounts) else None


def named_vaults(ix: Instruction) -> set[str] | None:
    """The vaults an instruction names by position (None: find them by their owner; empty: a
    launchpad curve's instruction that names none, CURVE_ACCOUNTS)."""
    if ix.program in CURVE_ACCOUNTS:
        accounts = curve_accounts(ix)
        return set(accounts[1:3]) if accounts else set()
    return None


def migrated_to(ix: Instruction) -> str | None:
    """The AMM pool a launchpad curve's migration hands its reserves to (None: no migration)."""
    accounts = curve_accounts(ix)
    return accounts[3] if accounts and len(accounts) > 3 else None


_NAMES = {PUMPSWAP: PUMPSWAP_NAMES, METEORA_DAMM_V2: DAMM_V2_NAMES, **CURVE_NAMES}


def instruction_name(ix: Instruction) -> str | None:
    """The Anchor instruction's name where the normaliser knows it."""
    return _NAMES.get(ix.program, {}).get((ix.data or b"")[:8])


@dataclass(frozen=True)
class PumpTrade:
    mint: str
    sol_amount: int
    token_amount: int
    is_buy: bool
    user: str
    timestamp: int
    virtual_sol_reserves: int
    virtual_token_reserves: int


@dataclass(frozen=True)
class PumpComplete:
    user: str
    mint: str
    bonding_curve: str


@dataclass(frozen=True)
class PumpCreate:
    name: str
    symbol: str
    uri: str
    mint: str
    bonding_curve: str
    user: str


def _string(data: bytes, offset: int) -> tuple[str, int]:
    (length,) = struct.unpack_from("<I", data, offset)
    start = offset + 4
    return data[start:start + length].decode("utf-8", "replace"), start + length


def decode_pump_event(data: bytes) -> PumpTrade | PumpCreate | PumpComplete | None:
    """A pump.fun TradeEvent, CreateEvent or CompleteEvent (Anchor event bytes, discriminator first)."""
    try:
        if data[:8] == COMPLETE_EVENT and len(data) >= 104:  # the curve is full: ready to migrate
            return PumpComplete(*(b58encode(data[8 + 32 * i: 40 + 32 * i]) for i in range(3)))
        if data[:8] == TRADE_EVENT:
            sol, tokens = struct.unpack_from("<QQ", data, 40)
            timestamp, v_sol, v_tokens = struct.unpack_from("<qQQ", data, 89)
            return PumpTrade(b58encode(data[8:40]), sol, tokens, data[56] == 1,
                             b58encode(data[57:89]), timestamp, v_sol, v_tokens)
        if data[:8] == CREATE_EVENT:
            name, offset = _string(data, 8)
            symbol, offset = _string(data, offset)
            uri, offset = _string(data, offset)
            keys = [b58encode(data[offset + 32 * i: offset + 32 * (i + 1)]) for i in range(3)]
            return PumpCreate(name, symbol, uri, *keys)
    except (struct.error, IndexError):
        return None  # truncated: the balance-based path still sees the trade
    return None


def pump_events(instructions: list[Instruction], logs: list[str]) -> list[PumpTrade | PumpCreate | PumpComplete]:
    """pump.fun events of a transaction: from its self-CPI instructions, else from its logs."""
    from_cpi = [decode_pump_event(ix.data[8:]) for ix in instructions
                if ix.program == PUMP_FUN and ix.data and ix.data[:8] == EVENT_CPI_TAG]
    if any(from_cpi):
        return [e for e in from_cpi if e]
    events = []
    for payload in _data_logged_by(PUMP_FUN, logs, invoked=any(
            ix.program == PUMP_FUN for ix in instructions)):
        try:
            event = decode_pump_event(base64.b64decode(payload))
        except ValueError:
            continue  # not base64: some other program's free text
        if event:
            events.append(event)
    return events


def _data_logged_by(program: str, logs: list[str], *, invoked: bool) -> list[str]:
    """The payloads of the `Program data:` lines `program` logged: those logged while it was
    the program running, by the logs' own invoke and success/failed lines. Other Anchor
    programs log a `TradeEvent` too, with the same discriminator (Raydium LaunchLab,
    Moonshot): read as pump.fun's, a LaunchLab buy was a sell of 793,100 SOL. Logs without
    invoke lines (cut short by a recorder) are taken whole where `invoked` (the program is
    among the transaction's instructions)."""
    if not any(" invoke [" in line for line in logs):
        return [line[len("Program data: "):] for line in logs
                if invoked and line.startswith("Program data: ")]
    running, found = [], []
    for line in logs:
        if line.startswith("Program data: "):
            if running and running[-1] == program:
                found.append(line[len("Program data: "):])
        elif line.startswith("Program ") and " invoke [" in line:
            running.append(line.split(" ", 2)[1])
        elif line.startswith("Program ") and (line.endswith(" success") or " failed" in line):
            if running and line.split(" ", 2)[1] == running[-1]:
                running.pop()
    return found


def mint_authority_changes(ix: Instruction) -> dict | None:
    """SPL Token InitializeMint(2)/SetAuthority on a mint, as a plain dict (None otherwise)."""
    if ix.program not in (TOKEN, TOKEN_2022):
        return None
    if ix.parsed is not None:
        kind, info = ix.parsed.get("type"), ix.parsed.get("info", {})
        if kind in ("initializeMint", "initializeMint2"):
            return {"kind": "initialize_mint", "mint": info.get("mint"), "decimals": info.get("decimals"),
                    "mint_authority": info.get("mintAuthority"), "freeze_authority": info.get("freezeAuthority")}
        if kind == "setAuthority" and info.get("authorityType") in ("mintTokens", "freezeAccount"):
            field = "mint_authority" if info["authorityType"] == "mintTokens" else "freeze_authority"
            return {"kind": "set_authority", "mint": info.get("mint") or info.get("account"),
                    "authority": info.get("authority") or info.get("multisigAuthority"),
                    "field": field, "new_authority": info.get("newAuthority")}
        return None
    data = ix.data or b""
    if data[:1] in (b"\x00", b"\x14") and len(data) >= 35 and ix.accounts:
        freeze = b58encode(data[35:67]) if len(data) >= 67 and data[34] == 1 else None
        return {"kind": "initialize_mint", "mint": ix.accounts[0], "decimals": data[1],
                "mint_authority": b58encode(data[2:34]), "freeze_authority": freeze}
    if data[:1] == b"\x06" and len(data) >= 3 and data[1] in (0, 1) and len(ix.accounts) >= 2:
        new = b58encode(data[3:35]) if data[2] == 1 and len(data) >= 35 else None
        return {"kind": "set_authority", "mint": ix.accounts[0], "authority": ix.accounts[1],
                "field": "mint_authority" if data[1] == 0 else "freeze_authority", "new_authority": new}
    return None


def sol_transfer(ix: Instruction) -> tuple[str, str, int] | None:
    """(source, destination, lamports) of a System Program transfer (None otherwise)."""
    if ix.program != SYSTEM:
        return None
    if ix.parsed is not None:
        info = ix.parsed.get("info", {})
        if ix.parsed.get("type") == "transfer" and "lamports" in info:
            return info["source"], info["destination"], int(info["lamports"])
        return None
    data = ix.data or b""
    if len(data) >= 12 and data[:4] == b"\x02\x00\x00\x00" and len(ix.accounts) >= 2:
        return ix.accounts[0], ix.accounts[1], struct.unpack_from("<Q", data, 4)[0]
    return None
