"""AMM pools of a transaction: which token accounts are their vaults, and what each pool
instruction did to them (one `PoolAction` per pool and instruction, in execution order).

Vaults are recognised per program (kades.solana.programs): the pool account owns them
(Whirlpool, Meteora DLMM, Raydium CLMM, PumpSwap), or a program-wide authority does and the
pool comes from the instruction's account list (Raydium AMM v4 and CPMM, Meteora DAMM v2),
or the instruction names them by position (the launchpad curves: Raydium LaunchLab, Meteora
DBC; their other instructions, claims of fees or vested tokens, move the vaults too and are
actions that make no record). A pool touched by one
instruction takes its vaults' balance changes as they are (exact even with Token-2022
transfer fees); a pool touched by several (a pool created and traded in one transaction) has
its vault movements split per instruction from the token instructions (kades.solana.movements).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from kades.solana import programs as p
from kades.solana.movements import Move
from kades.solana.transaction import Instruction, TransactionView


@dataclass
class PoolAction:
    pool: str
    program: str                                   # record name, e.g. "pumpswap"
    position: int                                  # the instruction's place in the transaction
    instruction: str | None                        # its name where the layout is known
    delta: Counter = field(default_factory=Counter)  # mint -> vault change
    pre: Counter = field(default_factory=Counter)
    post: Counter = field(default_factory=Counter)
    payers: Counter = field(default_factory=Counter)     # owner -> paid into the vaults
    receivers: Counter = field(default_factory=Counter)  # owner -> received from the vaults
    burned: Counter = field(default_factory=Counter)     # mint -> burned out of the vaults
    recorded: bool = True  # False: a curve's instruction that is no trade, creation or migration

    @property
    def mints(self) -> list[str]:
        return sorted(set(self.pre) | set(self.post) | set(self.delta))


def pool_vaults(view: TransactionView, ixs: list[Instruction]) -> tuple[dict, dict]:
    """(vault -> (pool, program id), vault -> positions of the pool instructions naming it)."""
    balances = {b.account: b for b in view.token_balances()}
    # a pool's vaults move in its action; Jupiter's authority, named in each hop it routes
    # through a Whirlpool, was taken for a pool (JUP/SOL priced 19 times the real pool's)
    moved = view.owners_moved()
    vaults: dict[str, tuple[str, str]] = {}
    listed: dict[str, list[int]] = defaultdict(list)
    for position, ix in enumerate(ixs):
        if ix.program not in p.AMM_NAMES or (ix.data or b"")[:8] == p.EVENT_CPI_TAG:
            continue
        pool = p.pool_id(ix)
        named = p.named_vaults(ix)
        for account in ix.accounts:
            balance = balances.get(account)
            if balance is None or balance.owner == view.fee_payer:
                continue
            if named is not None:
                found = (pool, ix.program) if account in named and pool else None
            elif ix.program in p.POOL_OWNS_VAULTS:
                found = (pool, ix.program) if pool and balance.owner == pool else None
            elif balance.owner in p.SHARED_AUTHORITIES:
                found = (pool, ix.program) if pool else None
            elif (ix.program not in p.SHARED_AUTHORITIES.values() and balance.owner in ix.accounts
                  and balance.owner not in view.signers and balance.owner in moved):
                found = (balance.owner, ix.program)  # the pool owns its vaults
            else:
                found = None
            if found:
                vaults.setdefault(account, found)
                if vaults[account][0] == found[0]:
                    listed[account].append(position)
    # a curve's other instructions that move its vaults (known from the ones that name them):
    # their moves are their own, not the next trade's (a claim then a sell read as one removal
    # of 67 %, and no sell)
    for position, ix in enumerate(ixs):
        if ix.program in p.CURVE_ACCOUNTS and p.curve_accounts(ix) is None:
            for account in ix.accounts:
                if vaults.get(account, ("", ""))[1] == ix.program:
                    listed[account].append(position)
    return vaults, listed


def pool_actions(view: TransactionView, ixs: list[Instruction], moves: list[Move],
                 owners: dict[str, str]) -> tuple[list[PoolAction], set[str]]:
    """What each pool instruction did to its pool's vaults, in execution order; the vaults' owners."""
    vaults, listed = pool_vaults(view, ixs)
    balances = {b.account: b for b in view.token_balances()}
    by_pool: dict[str, list[str]] = defaultdict(list)
    for account, (pool, _) in vaults.items():
        by_pool[pool].append(account)
    actions: list[PoolAction] = []
    for pool, accounts in by_pool.items():
        program = vaults[accounts[0]][1]
        positions = sorted({q for a in accounts for q in listed[a]})
        made = {q: PoolAction(pool, p.AMM_NAMES[program], q, p.instruction_name(ixs[q]),
                              recorded=ixs[q].program not in p.CURVE_ACCOUNTS
                              or p.curve_accounts(ixs[q]) is not None) for q in positions}

        def action_at(position: int) -> PoolAction:
            earlier = [q for q in positions if q <= position]
            return made[earlier[-1] if earlier else positions[0]]

        for move in moves:
            for account, sign in ((move.source, -1), (move.destination, 1)):
                if account not in accounts:
                    continue
                action, mint = action_at(move.position), balances[account].mint
                action.delta[mint] += sign * move.amount
                other = move.destination if sign < 0 else move.source
                if other is None and sign < 0:
                    action.burned[mint] += move.amount
                elif other is not None and other not in accounts:
                    (action.receivers if sign < 0 else action.payers)[owners.get(other, other)] += move.amount
        running = Counter()
        for account in accounts:
            running[balances[account].mint] += balances[account].pre
        final = Counter()
        for account in accounts:
            final[balances[account].mint] += balances[account].post
        ordered = [made[q] for q in positions]
        # The balances are the truth (a transfer fee arrives short): the last action takes the rest.
        last = next((action for action in reversed(ordered) if action.recorded), ordered[-1])
        for mint in set(running) | set(final):
            moved = sum(a.delta[mint] for a in ordered)
            last.delta[mint] += final[mint] - running[mint] - moved
        for action in ordered:
            action.pre = Counter({m: running[m] for m in set(running) | set(final)})
            running = Counter({m: running[m] + action.delta[m] for m in action.pre})
            action.post = Counter(running)
        actions.extend(action for action in ordered if action.recorded)
    return sorted(actions, key=lambda a: a.position), {balances[a].owner for a in vaults}
