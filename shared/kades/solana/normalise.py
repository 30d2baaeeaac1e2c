"""One Solana transaction -> KADES chain records (transfers, swaps, liquidity, pool states, launches).

Amounts are exact raw integers (base units) with their decimals beside them. What is read
from where:
- pump.fun trades and launches from the program's own events (per trade: user, SOL and token
  amounts, virtual reserves after the trade);
- AMM swaps and liquidity from the pools' vaults, per pool instruction (kades.solana.pools): a
  pool that gains one mint and loses the other is a swap leg, gains both an add, loses both a
  removal; swaps are read from the trader's side (kades.solana.swaps): a route is one swap;
- transfers from owner-level balance changes outside pools (a sender paired with receivers),
  counting token accounts opened and closed within the transaction (kades.solana.movements);
- mint and freeze authorities from SPL Token InitializeMint/SetAuthority.
A failed transaction yields nothing; programs without market meaning are counted in `skipped`.
"""
from __future__ import annotations

from collections import Counter

from kades.solana import programs as p
from kades.solana.movements import Move, account_owners, token_moves, unrecorded_deltas
from kades.solana.pools import PoolAction, pool_actions
from kades.solana.swaps import leg_swaps, quote_of, route_swap, route_venues, ui_price
from kades.solana.transaction import Instruction, TransactionView
from kades.solana.transfers import owner_transfers, sol_transfers

EMPTY_KINDS = ("transfers", "swaps", "liquidity", "pool_states", "launches")


def empty_records() -> dict[str, list]:
    return {kind: [] for kind in EMPTY_KINDS}


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
        if isinstance(event, p.PumpComplete):  # the curve is full: its hand-over to a pool comes next
            for state in out["pool_states"]:
                if state["pool"] == event.bonding_curve:
                    state["complete"] = True
            curves.setdefault(event.mint, event.bonding_curve)
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


def _people_deltas(view: TransactionView, moves: list[Move], owners: dict[str, str]) -> dict:
    """Per (owner, mint) what each owner's token accounts gained or lost, counting accounts
    opened and closed within the transaction (wrapped SOL) from their token instructions."""
    deltas = dict(view.owner_deltas())
    mints = {b.account: b.mint for b in view.token_balances()}
    for key, value in unrecorded_deltas(view, moves, owners, mints).items():
        deltas[key] = deltas.get(key, 0) + value
    return {key: value for key, value in deltas.items() if value}


def owner_moves(view: TransactionView, moves: list[Move], owners: dict[str, str]
                ) -> list[tuple[str, str, str, int]]:
    """The token instructions' moves between owners: (source owner, destination owner, mint,
    amount), where both accounts' owners and the mint are known."""
    mints = {b.account: b.mint for b in view.token_balances()}
    found = []
    for move in moves:
        mint = mints.get(move.source or "") or mints.get(move.destination or "")
        source, destination = owners.get(move.source or ""), owners.get(move.destination or "")
        if mint and source and destination:
            found.append((source, destination, mint, move.amount))
    return found


def _migrations(ixs: list[Instruction]) -> dict[str, dict]:
    """AMM pool -> the bonding curve it took over in this transaction ({program, bonding_curve}):
    pump.fun's `migrate` (to PumpSwap), a launchpad curve's migration (LaunchLab to Raydium AMM
    v4 or CPMM, Meteora DBC to DAMM v1 or v2: programs.CURVE_ACCOUNTS)."""
    found = {}
    for ix in ixs:
        if ix.program == p.PUMP_FUN and (ix.data or b"")[:8] == p.PUMP_MIGRATE and len(ix.accounts) > 9:
            found[ix.accounts[9]] = {"program": "pump_fun", "bonding_curve": ix.accounts[3]}
        elif (pool := p.migrated_to(ix)) is not None:
            found[pool] = {"program": p.AMM_NAMES[ix.program], "bonding_curve": p.pool_id(ix)}
    return found


def _amm_records(view: TransactionView, ixs: list[Instruction], out: dict, moves: list[Move],
                 owners: dict[str, str], deltas: dict) -> set[str]:
    """Swaps, liquidity changes and pool states from AMM vaults; the vault owners."""
    actions, vault_owners = pool_actions(view, ixs, moves, owners)
    decimals, migrations, legs = view.decimals(), _migrations(ixs), []
    handed_to = {migration["bonding_curve"]: pool for pool, migration in migrations.items()}
    for action in actions:
        if len(action.mints) != 2:
            continue
        base, quote = quote_of(*action.mints)
        d_base, d_quote = action.delta[base], action.delta[quote]
        out["pool_states"].append({
            "signature": view.signature, "program": action.program, "pool": action.pool, "base_mint": base,
            "quote_mint": quote, "base_reserve": action.post[base], "base_decimals": decimals[base],
            "quote_reserve": action.post[quote], "quote_decimals": decimals[quote], "virtual": False,
            "price": None if action.program in p.VAULTS_NOT_PRICED else
            ui_price(action.post[base], decimals[base], action.post[quote], decimals[quote])})
        if d_base * d_quote < 0:
            gone = base if d_base < 0 else quote
            if action.burned[gone] < -action.delta[gone]:  # burned out of the vault: no one's trade
                legs.append((action, base, quote))
        elif d_base or d_quote:
            record = _liquidity(view, action, base, quote, vault_owners, decimals)
            if record["action"] == "create" and action.pool in migrations:
                record["migration"] = migrations[action.pool]
            elif record["action"] == "remove" and action.pool in handed_to:  # the curve's side
                record["migration"] = {**migrations[handed_to[action.pool]], "to": handed_to[action.pool]}
            out["liquidity"].append(record)
    aggregators = [p.AGGREGATORS[ix.program] for ix in ixs if ix.program in p.AGGREGATORS]
    venues = route_venues(view, ixs) if aggregators else {}
    routed = route_swap(view, legs, venues, deltas, vault_owners, aggregators[0]) if aggregators else None
    if routed and not any(s["trader"] == routed["trader"] for s in out["swaps"]):  # not a pump.fun hop
        out["swaps"].append(routed)
        return vault_owners | set(venues)
    if legs:
        out["swaps"].extend(leg_swaps(view, legs, deltas, vault_owners, aggregators[0] if aggregators else None))
    return vault_owners


def _liquidity(view, action: PoolAction, base, quote, pool_owners, decimals) -> dict:
    d_base, d_quote = action.delta[base], action.delta[quote]
    adding = d_base >= 0 and d_quote >= 0
    created = adding and action.pre[base] == 0 and action.pre[quote] == 0
    supply = Counter()
    for (owner, mint), delta in view.owner_deltas().items():
        supply[mint] += delta
    lp = [(mint, change) for mint, change in supply.items() if change and mint not in (base, quote)]
    # Who paid into the vaults (or was paid out of them) in this instruction; else by balances.
    moved = {o: v for o, v in (action.payers if adding else action.receivers).items() if o not in pool_owners}
    providers = [(abs(delta), owner) for (owner, mint), delta in view.owner_deltas().items()
                 if mint == base and owner not in pool_owners and (delta < 0) == adding]
    provider = (max(moved, key=lambda o: (moved[o], o)) if moved
                else max(providers)[1] if providers else view.fee_payer)
    return {"signature": view.signature, "program": action.program, "pool": action.pool,
            "action": "create" if created else ("add" if adding else "remove"),
            "provider": provider, "base_mint": base, "quote_mint": quote, "base_decimals": decimals[base],
            "quote_decimals": decimals[quote], "base_delta": d_base, "quote_delta": d_quote,
            "base_reserve_before": action.pre[base], "quote_reserve_before": action.pre[quote],
            "base_reserve_after": action.post[base], "quote_reserve_after": action.post[quote],
            "lp_mint": lp[0][0] if len(lp) == 1 else None, "lp_amount": abs(lp[0][1]) if len(lp) == 1 else None}


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
    moves, owners = token_moves(ixs), account_owners(view, ixs)
    deltas = _people_deltas(view, moves, owners)
    pool_owners = _amm_records(view, ixs, out, moves, owners, deltas)
    pumped = {launch["mint"] for launch in out["launches"]}
    # LP mints of AMM pools are plumbing; their pool shows up as a liquidity "create". Their
    # authority is a program's shared one, or the pool itself (PumpSwap: each pump.fun
    # migration's LP mint was a "launch" by whoever's buy completed the curve)
    pools = {record["pool"] for record in out["liquidity"] + out["pool_states"]} | pool_owners
    # A mint of 0 decimals of which its transaction minted one is no token's launch but an
    # NFT's: a Raydium CLMM or Orca Whirlpool position, a collectible. Each was a launch of its
    # own, its minter a serial launcher. (A token of 0 decimals is minted later, or more.)
    minted = Counter()
    if any(info.get("decimals") == 0 for info in created.values()):
        for (_, mint), delta in view.owner_deltas().items():
            minted[mint] += max(delta, 0)
    for mint, info in created.items():
        authority = info.get("mint_authority")
        nft = info.get("decimals") == 0 and minted[mint] == 1
        if mint not in pumped and authority not in p.SHARED_AUTHORITIES and authority not in pools and not nft:
            out["launches"].append({"signature": view.signature, "creator": view.fee_payer, **info})
    owner_transfers(view, curves | pool_owners | set(p.CURVE_AUTHORITIES), out, deltas,
                    owner_moves(view, moves, owners))
    sol_transfers(view, ixs, out)
    return out, skipped
