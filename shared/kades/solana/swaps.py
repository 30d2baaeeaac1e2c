"""Swap records of a transaction, from its pool actions (kades.solana.pools) and who gained what.

Two readings, both from the trader's side:
- pool legs: a pool instruction that took one mint in and gave the other out. The legs of one
  transaction are netted (a multi-hop route through known pools is one swap; not when the
  pools paid two signers: a bundle, a swap each). amount_in is
  what the pools took in, amount_out what reached the trader; `pool_amount_out` what left the
  pools when less arrived (a Token-2022 transfer fee, PumpSwap's pool-side fees);
- a router's transaction (Jupiter, DFlow, Titan, Raydium route) is one swap whatever venues it
  crossed, known pools or programs the normaliser does not read ("venues": the owners of the
  token accounts those programs were handed): what the trader paid, less what other people
  received of it (fees, recorded as transfers), for what the trader received.
The trader is whoever received what the pools gave out, a signer first; `signer` names the
fee payer when it is someone else (a relayer or a router signed).
"""
from __future__ import annotations

from collections import Counter
from typing import NamedTuple

from kades.events.catalogue import MAX_AMOUNT
from kades.solana import programs as p
from kades.solana.transaction import Instruction, TransactionView


def quote_of(mint_a: str, mint_b: str) -> tuple[str, str]:
    """(base, quote): the quote is SOL, then USDC, USDT, USD1; otherwise the larger address."""
    for quote in p.QUOTE_MINTS:
        if quote in (mint_a, mint_b):
            return (mint_b if mint_a == quote else mint_a), quote
    return tuple(sorted((mint_a, mint_b)))  # type: ignore[return-value]


def ui_price(base_amount: int, base_decimals: int, quote_amount: int, quote_decimals: int) -> float | None:
    """Quote units per base unit; None when there is none, or one past what the event contract
    carries (a drained pool of two mints with far apart decimals can price beyond 1e30)."""
    if base_amount <= 0:
        return None
    price = (quote_amount / 10 ** quote_decimals) / (base_amount / 10 ** base_decimals)
    return price if price <= MAX_AMOUNT else None


def swap_record(view: TransactionView, trader: str, program: str, pool: str, mint_in: str, mint_out: str,
                amount_in: int, amount_out: int) -> dict:
    decimals = view.decimals()
    base_mint, quote_mint = quote_of(mint_in, mint_out)
    base_amount, quote_amount = (amount_in, amount_out) if base_mint == mint_in else (amount_out, amount_in)
    record = {"signature": view.signature, "trader": trader, "program": program, "pool": pool,
              "mint_in": mint_in, "mint_out": mint_out, "amount_in": amount_in, "amount_out": amount_out,
              "decimals_in": decimals[mint_in], "decimals_out": decimals[mint_out], "base_mint": base_mint,
              "quote_mint": quote_mint, "side": "sell" if mint_in == base_mint else "buy",
              "base_amount": base_amount, "quote_amount": quote_amount,
              "price": ui_price(base_amount, decimals[base_mint], quote_amount, decimals[quote_mint])}
    if trader != view.fee_payer:
        record["signer"] = view.fee_payer  # someone else signed (relayer, router)
    return record


def _trader(view: TransactionView, deltas: dict, mint_in: str, mint_out: str, not_people: set[str],
            receivers: Counter):
    """Whose movement the swap is: the owner who received what the pools gave out (and paid
    what they took in), a signer first; among those the pools paid themselves (`receivers`),
    when they paid anyone. Someone who sold back what they bought in the same transaction
    gained nothing, so then the one the pools paid, a signer first (not the fee account that
    alone came out ahead). (trader, what they received; None when no one did.)"""
    got = {o: d for (o, m), d in deltas.items() if m == mint_out and d > 0 and o not in not_people}
    paid = {o for (o, m), d in deltas.items() if m == mint_in and d < 0 and o not in not_people}
    paid_by_pools = {o: v for o, v in receivers.items() if v > 0 and o not in not_people}
    both = [o for o in got if o in paid]
    for candidates, amount in (([o for o in both if o in paid_by_pools] or both, got),
                               ([s for s in view.signers if s in paid_by_pools], paid_by_pools),
                               (list(got), got)):
        if candidates:
            signers = [s for s in view.signers if s in candidates]
            trader = signers[0] if signers else max(candidates, key=lambda o: (amount[o], o))
            return trader, amount[trader]
    return view.fee_payer, None


def leg_swaps(view: TransactionView, legs: list, deltas: dict, pool_owners: set[str],
              aggregator: str | None) -> list[dict]:
    """legs: (PoolAction, base, quote). Netted: what the pools took in is what the trader paid
    (a route through known pools is one swap)."""
    net = Counter()
    for action, base, quote in legs:
        net[base] += action.delta[base]
        net[quote] += action.delta[quote]
    paid = [m for m, v in net.items() if v > 0]
    got = [m for m, v in net.items() if v < 0]
    # two signers the pools paid are a bundle of trades, not one trader's route
    paid_signers = {o for action, _, _ in legs for o in action.receivers if o in view.signers}
    routed = len(legs) > 1 and len(paid) == 1 and len(got) == 1 and len(paid_signers) < 2
    groups = [(legs, paid[0], got[0])] if routed else [([leg], None, None) for leg in legs]
    result = []
    for group, mint_in, mint_out in groups:
        action, base, quote = group[0]
        if mint_in is None:
            mint_in, mint_out = (base, quote) if action.delta[base] > 0 else (quote, base)
        amount_in = net[mint_in] if routed else action.delta[mint_in]
        pool_out = -(net[mint_out] if routed else action.delta[mint_out])
        # who the pools paid the swap's output (a route's middle hops paid other mints)
        receivers = sum((leg[0].receivers for leg in group if leg[0].delta[mint_out] < 0), Counter())
        trader, received = _trader(view, deltas, mint_in, mint_out, pool_owners, receivers)
        record = swap_record(view, trader, action.program, action.pool, mint_in, mint_out, amount_in,
                             received or pool_out)
        if record["amount_out"] != pool_out:
            record["pool_amount_out"] = pool_out
        if routed:
            record["route"] = [leg[0].pool for leg in group]
        if aggregator:
            record["aggregator"] = aggregator
        result.append(record)
    return result


class Venue(NamedTuple):
    program: str
    position: int  # the place in the transaction of the first instruction handed its account


def route_venues(view: TransactionView, ixs: list[Instruction]) -> dict[str, Venue]:
    """Pools of programs the normaliser does not know, called inside a route: owner -> venue,
    for the owners of the token accounts they were handed (never a signer's)."""
    owners = {b.account: b.owner for b in view.token_balances()}
    moved = view.owners_moved()  # not the router's own relaying authority
    venues: dict[str, Venue] = {}
    for position, ix in enumerate(ixs):
        if ix.inner and ix.program not in p.PLUMBING:
            for account in ix.accounts:
                owner = owners.get(account)
                if owner is not None and owner not in view.signers and owner in moved:
                    venues.setdefault(owner, Venue(ix.program, position))
    return venues


def _route_trader(view: TransactionView, people: dict) -> tuple[str, str, str] | None:
    """(trader, mint paid, mint received): an owner who gave exactly one mint and got exactly
    one, a signer first; None when that is not one clear owner."""
    traders = {}
    for owner in {o for o, _ in people}:
        mine = {m: d for (o, m), d in people.items() if o == owner}
        gave, got = [m for m, d in mine.items() if d < 0], [m for m, d in mine.items() if d > 0]
        if len(gave) == 1 and len(got) == 1:
            traders[owner] = (gave[0], got[0])
    signers = [s for s in view.signers if s in traders]
    if not signers and len(traders) != 1:
        return None
    trader = signers[0] if signers else next(iter(traders))
    return (trader, *traders[trader])


def route_swap(view: TransactionView, legs: list, venues: dict[str, Venue], deltas: dict,
               pool_owners: set[str], aggregator: str) -> dict | None:
    """A router's transaction as one swap from the trader's side (None when no one trader)."""
    people = {(o, m): d for (o, m), d in deltas.items() if o not in pool_owners and o not in venues}
    found = _route_trader(view, people)
    if found is None:
        return None
    trader, mint_in, mint_out = found
    fees = sum(d for (o, m), d in people.items() if m == mint_in and d > 0 and o != trader)
    amount_in = -people[(trader, mint_in)] - fees
    if amount_in <= 0:
        return None
    # The route's pools in the order they were crossed, known pools and venues alike: its first
    # hop names the swap's pool and program (the last known pool named a TRUMP swap's a JUP/SOL
    # pool, three hops on)
    hops = sorted([(action.position, action.pool, action.program) for action, _, _ in legs]
                  + [(venue.position, owner, venue.program) for owner, venue in venues.items()
                     if owner not in pool_owners])
    pools = [pool for _, pool, _ in hops]
    program = hops[0][2] if hops else aggregator
    record = swap_record(view, trader, program, pools[0] if pools else "", mint_in, mint_out, amount_in,
                         people[(trader, mint_out)])
    net = Counter()
    for action, _, _ in legs:
        net.update({m: action.delta[m] for m in (mint_in, mint_out)})
    if len(hops) == len(legs) and 0 < -net[mint_out] != record["amount_out"]:  # known pools: what they gave
        record["pool_amount_out"] = -net[mint_out]
    record.update(route=pools, aggregator=aggregator)
    return record
