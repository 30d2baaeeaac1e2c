"""Token movements of a transaction read from its SPL Token / Token-2022 instructions.

Balances say how much each token account holds before and after; the instructions say which
account paid which, in which order. Both are needed: a temporary account (wrapped SOL opened
and closed in the same transaction) has no balance at all, a pool may act twice in one
transaction (pump.fun's migration creates a PumpSwap pool that is traded at once), and a
Token-2022 transfer fee makes the amount received differ from the amount sent.
Layouts: SPL Token's instruction enum (Transfer 3, MintTo 7, Burn 8, TransferChecked 12,
MintToChecked 14, BurnChecked 15, InitializeAccount 1/2/3: 1, 16, 18) and Token-2022's
TransferFeeExtension (26) TransferCheckedWithFee (1); the Associated Token Account program's
Create/CreateIdempotent account order (payer, account, wallet, mint).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from kades.solana import programs as p
from kades.solana.base58 import b58encode
from kades.solana.transaction import Instruction, TransactionView

ATA = "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"
# tag -> (index of source, index of destination) in the instruction's accounts; None: minted/burned
_MOVES = {3: (0, 1), 12: (0, 2), 7: (None, 1), 14: (None, 1), 8: (0, None), 15: (0, None)}
_PARSED = {"transfer": 3, "transferChecked": 12, "mintTo": 7, "mintToChecked": 14, "burn": 8,
           "burnChecked": 15, "transferCheckedWithFee": 12}


@dataclass(frozen=True)
class Move:
    position: int            # index in TransactionView.instructions()
    source: str | None       # None: minted
    destination: str | None  # None: burned
    amount: int              # as sent (a Token-2022 transfer fee is withheld from what arrives)


def _parsed_move(position: int, ix: Instruction) -> Move | None:
    kind, info = ix.parsed.get("type"), ix.parsed.get("info", {})
    if kind not in _PARSED:
        return None
    amount = info.get("amount") or (info.get("tokenAmount") or {}).get("amount")
    if amount is None:
        return None
    source = info.get("source") or (info.get("account") if kind.startswith("burn") else None)
    destination = info.get("destination") or (info.get("account") if kind.startswith("mint") else None)
    return Move(position, source, destination, int(amount))


def token_moves(ixs: list[Instruction]) -> list[Move]:
    """Every transfer, mint and burn of tokens, in execution order."""
    moves = []
    for position, ix in enumerate(ixs):
        if ix.program not in (p.TOKEN, p.TOKEN_2022):
            continue
        if ix.parsed is not None:
            move = _parsed_move(position, ix)
            moves.extend([move] if move else [])
            continue
        data = ix.data or b""
        if data[:2] == b"\x1a\x01" and len(data) >= 10 and len(ix.accounts) >= 3:  # TransferCheckedWithFee
            moves.append(Move(position, ix.accounts[0], ix.accounts[2], struct.unpack_from("<Q", data, 2)[0]))
            continue
        layout = _MOVES.get(data[0]) if len(data) >= 9 else None
        if layout is None or len(ix.accounts) <= max(i for i in layout if i is not None):
            continue
        source, destination = (ix.accounts[i] if i is not None else None for i in layout)
        moves.append(Move(position, source, destination, struct.unpack_from("<Q", data, 1)[0]))
    return moves


def account_owners(view: TransactionView, ixs: list[Instruction]) -> dict[str, str]:
    """token account -> owner: from the balances, and for accounts opened here (perhaps closed
    again, so without a balance) from their InitializeAccount or associated-account creation."""
    owners: dict[str, str] = {}
    for ix in ixs:
        data = ix.data or b""
        if ix.program == ATA and len(ix.accounts) >= 4 and data[:1] in (b"", b"\x00", b"\x01"):
            owners.setdefault(ix.accounts[1], ix.accounts[2])
        elif ix.program in (p.TOKEN, p.TOKEN_2022) and ix.parsed is not None:
            info = ix.parsed.get("info", {})
            if str(ix.parsed.get("type", "")).startswith("initializeAccount") and "owner" in info:
                owners.setdefault(info["account"], info["owner"])
        elif ix.program in (p.TOKEN, p.TOKEN_2022) and data[:1] == b"\x01" and len(ix.accounts) >= 3:
            owners.setdefault(ix.accounts[0], ix.accounts[2])
        elif ix.program in (p.TOKEN, p.TOKEN_2022) and data[:1] in (b"\x10", b"\x12") and len(data) >= 33 and ix.accounts:
            owners.setdefault(ix.accounts[0], b58encode(data[1:33]))
    owners.update({b.account: b.owner for b in view.token_balances() if b.owner})
    return owners


def unrecorded_deltas(view: TransactionView, moves: list[Move], owners: dict[str, str],
                      mints: dict[str, str]) -> dict[tuple[str, str], int]:
    """Per (owner, mint): what moved through token accounts that have no balance after the
    transaction: opened and closed within it, or closed in it (a wrapped SOL account the seller
    had: its pre amount and what the pool paid into it went out as lamports, the swap's output
    counted nowhere, and a fee recipient was taken for the trader). Their mint is their own
    when a balance says it, else the mint of the account on the other side."""
    recorded = {b.account for b in view.token_balances() if not b.closed}
    deltas: dict[tuple[str, str], int] = {}
    for move in moves:
        for account, sign, other in ((move.source, -1, move.destination), (move.destination, 1, move.source)):
            if account is None or account in recorded or account not in owners:
                continue
            mint = mints.get(account) or mints.get(other or "")
            if mint is None:
                continue
            key = (owners[account], mint)
            deltas[key] = deltas.get(key, 0) + sign * move.amount
    return {key: value for key, value in deltas.items() if value}
