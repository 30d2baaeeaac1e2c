"""One Solana transaction -> KADES chain records (transfers, swaps, liquidity, pool states, launches).

Amounts are exact raw integers (base units) with their decimals beside them. What is read
from where:
- pump.fun trades and launches from the program's own events (per trade: user, SOL and token
  amounts, virtual reserves after the trade);
- AMM swaps and liquidity from the pools' vault balances (pre/post token balances): a pool
  that gains one mint and loses the other is a swap leg, gains both an add, loses both a
  removal. The legs of one transaction are netted, so a multi-hop route is one swap;
- transfers from owner-level balance changes outside pools (a sender paired with receivers);
- mint and freeze authorities from SPL Token InitializeMint/SetAuthority.
A failed transaction yields nothing; programs without market meaning are counted in `skipped`.
"""
from __future__ import annotations

from collections import Counter, defaultdict

from kades.solana import programs as p
from kades.solana.transaction import Instruction, TransactionView
from kades.solana.transfers import owner_transfers, sol_transfers

EMPTY_KINDS = ("transfers", "swaps", "liquidity", "pool_states", "launches")


def empty_records() -> dict[str, list]:
    return {kind: [] for kind in EMPTY_KINDS}


def quote_of(mint_a: str, mint_b: str) -> tuple[str, str]:
    """(base, quote): the quote is SOL, then USDC, then USDT; otherwise the larger address."""
    for quote in p.QUOTE_MINTS:
        if quote in (mint_a, mint_b):
            return (mint_b if mint_a == quote else mint_a), quote
    return tuple(sorted((mint_a, mint_b)))  # type: ignore[return-value]


def ui_price(base_amount: int, base_decimals: int, quote_amount: int, quote_decimals: int) -> float | None:
    if base_amount <= 0:
        return None
    return (quote_amount / 10 ** quote_decimals) / (base_amount / 10 ** base_decimals)


def _pump_records(view: TransactionView, ixs: list[Instruction], out: dict, authorities: dict) -> set[str]:
    """Records of pump.fun events; the bonding curves involved (they are pools, not people)."""
    curves: dict[str, str] = {}
    for ix in ixs:  # buy/sell: [global, fee, mint, curve, ...]; create: [mint, auth, curve, ...]
        if ix.program == p.PUMP_FUN and len(ix.accounts) >= 4 and not (ix.data or b"").startswith(p.EVENT_CPI_TAG):
            curves.setdefault(ix.accounts[2], ix.accounts[3])
    for event in p.pump_events(ixs, view.log_messages()):
        if isinstance(event, p.PumpCreate):
            final = authorities.get(event.mint, {})
            out["launches"].append({
                "signature": view.signature, "kind": "create", "program": "pump_fun", "mint": event.mint,
                "creator": event.user, "pool": event.bonding_curve, "name": event.name,
                "symbol": event.symbol, "uri": event.uri, "decimals": final.get("decimals", 6),
                "mint_authority": final.get("mint_authority"), "freeze_authority": final.get("freeze_authority")})
            curves[event.mint] = event.bonding_curve
            continue
        curve = curves.get(event.mint, "")
        base_in = not event.is_buy
        out["swaps"].append({
            "signature": view.signature, "trader": event.user, "program": "pump_fun", "pool": curve,
            "mint_in": event.mint if base_in else p.WSOL, "mint_out": p.WSOL if base_in else event.mint,
            "amount_in": event.token_amount if base_in else event.sol_amount,
            "amount_out": event.sol_amount if base_in else event.token_amount,
            "decimals_in": 6 if base_in else 9, "decimals_out": 9 if base_in else 6,
            "base_mint": event.mint, "quote_mint": p.WSOL, "side": "buy" if event.is_buy else "sell",
            "base_amount": event.token_amount, "quote_amount": event.sol_amount,
            "price": ui_price(event.token_amount, 6, event.sol_amount, 9)})
        out["pool_states"].append({
            "signature": view.signature, "program": "pump_fun", "pool": curve, "base_mint": event.mint,
            "quote_mint": p.WSOL, "base_reserve": event.virtual_token_reserves, "base_decimals": 6,
            "quote_reserve": event.virtual_sol_reserves, "quote_decimals": 9, "virtual": True,
            "price": ui_price(event.virtual_token_reserves, 6, event.virtual_sol_reserves, 9)})
    return set(curves.values())


def _pool_vaults(view: TransactionView, ixs: list[Instruction]) -> dict[str, tuple[str, str]]:
    """token account -> (pool id, program) for every AMM vault this transaction touched."""
    balances = {b.account: b for b in view.token_balances()}
    vaults: dict[str, tuple[str, str]] = {}
    for ix in ixs:
        if ix.program not in p.AMM_NAMES:
            continue
        pool = p.pool_id(ix)
        for account in ix.accounts:
            balance = balances.get(account)
            if balance is None or balance.owner == (view.signers[0] if view.signers else None):
                continue
            if balance.owner in p.SHARED_AUTHORITIES and pool:
                vaults.setdefault(account, (pool, ix.program))
            elif (ix.program not in p.SHARED_AUTHORITIES.values() and balance.owner in ix.accounts
                  and balance.owner not in view.signers):
                vaults.setdefault(account, (balance.owner, ix.program))  # the pool owns its vaults
    return vaults


def _amm_records(view: TransactionView, ixs: list[Instruction], out: dict) -> set[str]:
    """Swaps, liquidity changes and pool states from AMM vaults; the vault owners."""
    vaults = _pool_vaults(view, ixs)
    pools: dict[str, dict] = defaultdict(lambda: {"delta": Counter(), "pre": Counter(), "post": Counter()})
    decimals, owners = view.decimals(), set()
    for balance in view.token_balances():
        if balance.account in vaults:
            pool, program = vaults[balance.account]
            state = pools[pool]
            state["program"] = p.AMM_NAMES[program]
            state["delta"][balance.mint] += balance.post - balance.pre
            state["pre"][balance.mint] += balance.pre
            state["post"][balance.mint] += balance.post
            owners.add(balance.owner)
    legs = []
    for pool, state in pools.items():
        mints = sorted(state["post"] | state["pre"])
        if len(mints) != 2:
            continue
        base, quote = quote_of(*mints)
        d_base, d_quote = state["delta"][base], state["delta"][quote]
        out["pool_states"].append({
            "signature": view.signature, "program": state["program"], "pool": pool, "base_mint": base,
            "quote_mint": quote, "base_reserve": state["post"][base], "base_decimals": decimals[base],
            "quote_reserve": state["post"][quote], "quote_decimals": decimals[quote], "virtual": False,
            "price": ui_price(state["post"][base], decimals[base], state["post"][quote], decimals[quote])})
        if d_base * d_quote < 0:
            legs.append((pool, state, base, quote))
        elif d_base or d_quote:
            out["liquidity"].append(_liquidity(view, pool, state, base, quote, owners, decimals))
    if legs:
        routed_by_jupiter = any(ix.program == p.JUPITER_V6 for ix in ixs)
        out["swaps"].extend(_swaps(view, legs, decimals, "jupiter_v6" if routed_by_jupiter else None))
    return owners


def _liquidity(view, pool, state, base, quote, pool_owners, decimals) -> dict:
    d_base, d_quote = state["delta"][base], state["delta"][quote]
    adding = d_base >= 0 and d_quote >= 0
    created = adding and state["pre"][base] == 0 and state["pre"][quote] == 0
    supply = Counter()
    for (owner, mint), delta in view.owner_deltas().items():
        supply[mint] += delta
    lp = [(mint, change) for mint, change in supply.items() if change and mint not in (base, quote)]
    providers = [(abs(delta), owner) for (owner, mint), delta in view.owner_deltas().items()
                 if mint == base and owner not in pool_owners and (delta < 0) == adding]
    return {"signature": view.signature, "program": state["program"], "pool": pool,
            "action": "create" if created else ("add" if adding else "remove"),
            "provider": max(providers)[1] if providers else view.fee_payer,
            "base_mint": base, "quote_mint": quote, "base_decimals": decimals[base],
            "quote_decimals": decimals[quote], "base_delta": d_base, "quote_delta": d_quote,
            "base_reserve_before": state["pre"][base], "quote_reserve_before": state["pre"][quote],
            "base_reserve_after": state["post"][base], "quote_reserve_after": state["post"][quote],
            "lp_mint": lp[0][0] if len(lp) == 1 else None, "lp_amount": abs(lp[0][1]) if len(lp) == 1 else None}


def _swaps(view, legs, decimals, aggregator: str | None) -> list[dict]:
    """Net the legs: what the pools took in is what the trader paid (a route is one swap)."""
    net = Counter()
    for _, state, base, quote in legs:
        net[base] += state["delta"][base]
        net[quote] += state["delta"][quote]
    paid = [m for m, v in net.items() if v > 0]
    got = [m for m, v in net.items() if v < 0]
    routed = len(legs) > 1 and len(paid) == 1 and len(got) == 1
    groups = [(legs, paid[0], got[0])] if routed else [([leg], None, None) for leg in legs]
    result = []
    for group, mint_in, mint_out in groups:
        pool, state, base, quote = group[0]
        if mint_in is None:
            mint_in, mint_out = (base, quote) if state["delta"][base] > 0 else (quote, base)
        amount_in = net[mint_in] if routed else state["delta"][mint_in]
        amount_out = -(net[mint_out] if routed else state["delta"][mint_out])
        base_mint, quote_mint = quote_of(mint_in, mint_out)
        base_amount = amount_in if base_mint == mint_in else amount_out
        quote_amount = amount_out if base_mint == mint_in else amount_in
        record = {"signature": view.signature, "trader": view.fee_payer, "program": state["program"],
                  "pool": pool, "mint_in": mint_in, "mint_out": mint_out, "amount_in": amount_in,
                  "amount_out": amount_out, "decimals_in": decimals[mint_in],
                  "decimals_out": decimals[mint_out], "base_mint": base_mint, "quote_mint": quote_mint,
                  "side": "sell" if mint_in == base_mint else "buy", "base_amount": base_amount,
                  "quote_amount": quote_amount,
                  "price": ui_price(base_amount, decimals[base_mint], quote_amount, decimals[quote_mint])}
        if routed:
            record["route"] = [leg[0] for leg in group]
        if aggregator:
            record["aggregator"] = aggregator
        result.append(record)
    return result


def _authorities(view, ixs, out) -> dict[str, dict]:
    """Mint authorities as left by this transaction; SetAuthority on older mints is a record."""
    created: dict[str, dict] = {}
    for ix in ixs:
        change = p.mint_authority_changes(ix)
        if change is None:
            continue
        if change["kind"] == "initialize_mint":
            created[change["mint"]] = change
        elif change["mint"] in created:
            created[change["mint"]][change["field"]] = change["new_authority"]
        else:
            out["launches"].append({"signature": view.signature, **change})
    return created


def normalise_transaction(tx: dict) -> tuple[dict[str, list], Counter]:
    """The records of one transaction and the count of instructions of unknown programs."""
    view = TransactionView(tx)
    out = empty_records()
    if view.failed:
        return out, Counter()
    ixs = view.instructions()
    skipped = Counter(ix.program for ix in ixs if ix.program not in p.PLUMBING)
    created = _authorities(view, ixs, out)
    curves = _pump_records(view, ixs, out, created)
    pool_owners = _amm_records(view, ixs, out)
    pumped = {launch["mint"] for launch in out["launches"]}
    for mint, info in created.items():
        # LP mints of AMM pools are plumbing; their pool shows up as a liquidity "create".
        if mint not in pumped and info.get("mint_authority") not in p.SHARED_AUTHORITIES:
            out["launches"].append({"signature": view.signature, "creator": view.fee_payer, **info})
    owner_transfers(view, curves | pool_owners, out)
    sol_transfers(view, ixs, out)
    return out, skipped
