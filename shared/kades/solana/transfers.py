"""Transfers of a transaction: token movements between owners, and wallet-to-wallet SOL."""
from __future__ import annotations

from collections import defaultdict

from kades.solana import programs as p
from kades.solana.transaction import Instruction, TransactionView


def owner_transfers(view: TransactionView, not_people: set[str], out: dict,
                    deltas: dict[tuple[str, str], int] | None = None,
                    moved: list[tuple[str, str, str, int]] = ()) -> None:
    """Owner-to-owner movements. First what the token instructions say (`moved`: source owner,
    destination owner, mint, amount, in order), as far as each side's net change covers it;
    then, per mint, the senders left paired with the receivers left (largest first): a relay
    between them (a router's authority) nets to nothing. Pairing alone took the largest
    sender for every receiver: a migration's 85 SOL, paid into its pool, became the sender of
    the fees a buyer paid. `deltas` per (owner, mint), by default the balances'
    (kades.solana.normalise adds the accounts closed within the transaction)."""
    decimals = view.decimals()
    left = {key: delta for key, delta in (view.owner_deltas() if deltas is None else deltas).items()
            if key[0] not in not_people}
    for source, destination, mint, amount in moved:
        amount = min(amount, -left.get((source, mint), 0), left.get((destination, mint), 0))
        if amount > 0 and source != destination and mint in decimals:
            out["transfers"].append({"signature": view.signature, "mint": mint, "source": source,
                                     "destination": destination, "amount": amount,
                                     "decimals": decimals[mint]})
            left[(source, mint)] += amount
            left[(destination, mint)] -= amount
    by_mint: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for (owner, mint), delta in left.items():
        if delta:
            by_mint[mint].append((owner, delta))
    for mint, moves in by_mint.items():
        senders = sorted(([o, -d] for o, d in moves if d < 0), key=lambda x: (-x[1], x[0]))
        receivers = sorted(([o, d] for o, d in moves if d > 0), key=lambda x: (-x[1], x[0]))
        i = j = 0
        while i < len(senders) and j < len(receivers):
            amount = min(senders[i][1], receivers[j][1])
            out["transfers"].append({"signature": view.signature, "mint": mint, "source": senders[i][0],
                                     "destination": receivers[j][0], "amount": amount,
                                     "decimals": decimals[mint]})
            senders[i][1] -= amount
            receivers[j][1] -= amount
            i += senders[i][1] == 0
            j += receivers[j][1] == 0


def sol_transfers(view: TransactionView, ixs: list[Instruction], out: dict) -> None:
    """Wallet-to-wallet SOL (funding: who seeded which wallet). Only top-level System
    transfers between wallets: wrapping SOL into one's own token account is not a transfer,
    and programs' inner transfers are fees and trades, already read elsewhere."""
    token_accounts = {b.account for b in view.token_balances()}
    for ix in ixs:
        move = None if ix.inner else p.sol_transfer(ix)
        # A destination left with 0 lamports was a temporary account (wrapped SOL, closed).
        if (move and move[2] > 0 and move[1] not in token_accounts and move[0] != move[1]
                and view.post_lamports(move[1]) != 0):
            out["transfers"].append({"signature": view.signature, "mint": p.WSOL, "source": move[0],
                                     "destination": move[1], "amount": move[2], "decimals": 9,
                                     "native": True})
