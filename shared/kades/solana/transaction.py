"""A read-only view of one `getTransaction` / `getBlock` transaction, `json` or `jsonParsed`
(or `base64`, read as `json`: kades.solana.wire).

Both encodings are reduced to the same plain facts: resolved account addresses, the signers,
the instructions in execution order (each outer one followed by its inner ones) and the token
balance of every token account before and after. Nothing here knows any program.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kades.solana.base58 import b58decode
from kades.solana.wire import WireError, decode_transaction


class MalformedTransaction(ValueError):
    """The object is not a transaction as Solana's RPC returns it."""


@dataclass(frozen=True)
class Instruction:
    program: str
    accounts: tuple[str, ...]
    data: bytes | None          # raw bytes (None when the RPC parsed it instead)
    parsed: dict | None         # jsonParsed: {"type": ..., "info": {...}} of known programs
    outer_index: int
    inner: bool


@dataclass(frozen=True)
class TokenBalance:
    account: str
    owner: str
    mint: str
    decimals: int
    pre: int
    post: int
    # who owned the account before, when another than `owner` (an SPL SetAuthority of the
    # account's owner, a drainer's way): the pre amount is theirs (owner_deltas)
    pre_owner: str | None = None
    # a balance before and none after: the account was closed in the transaction (a wrapped
    # SOL account unwrapped), so what it gained went out as lamports, not in a post amount
    closed: bool = False


_JSON_KINDS = {bool: "a boolean", int: "a number", float: "a number", str: "a string",
               list: "an array", dict: "an object"}


def _shaped(value: Any, kind: type, name: str) -> Any:
    """`value` when it is a `kind` (dict or list); else MalformedTransaction saying what
    `name` is instead (a KeyError's or TypeError's text would not say it)."""
    if not isinstance(value, kind):
        found = "null" if value is None else _JSON_KINDS.get(type(value), type(value).__name__)
        raise MalformedTransaction(f"not a Solana transaction: {name} is {found}, not "
                                   f"{_JSON_KINDS[kind]}")
    return value


class TransactionView:
    def __init__(self, tx: dict[str, Any]):
        for key in ("meta", "transaction"):
            if key not in tx:
                raise MalformedTransaction(f"not a Solana transaction: missing {key!r}")
        transaction = tx["transaction"]
        if isinstance(transaction, list):  # [data, "base64"]: the wire bytes
            try:
                transaction = decode_transaction(transaction)
            except WireError as error:
                raise MalformedTransaction(str(error)) from None
        if tx["meta"] is None:  # the node kept no status: it may have failed, and no balances
            raise MalformedTransaction("meta is null: whether it succeeded and what it moved "
                                       "are unknown")
        self.meta = _shaped(tx["meta"], dict, "meta")
        transaction = _shaped(transaction, dict, "transaction")
        try:
            self.message = _shaped(transaction["message"], dict, "transaction.message")
            signatures = _shaped(transaction["signatures"], list, "transaction.signatures")
            raw_keys = _shaped(self.message["accountKeys"], list, "transaction.message.accountKeys")
        except KeyError as error:
            raise MalformedTransaction(f"not a Solana transaction: missing {error}") from None
        if not signatures:
            raise MalformedTransaction("not a Solana transaction: transaction.signatures is empty")
        self.signature = signatures[0]
        self.slot = tx.get("slot")
        self.block_time = tx.get("blockTime")
        parsed_keys = bool(raw_keys) and isinstance(raw_keys[0], dict)
        keys = [k["pubkey"] if parsed_keys else k for k in raw_keys]
        loaded = self.meta.get("loadedAddresses") or {}
        # json encoding: instruction accounts index keys ++ loaded writable ++ loaded readonly.
        self.keys: list[str] = keys + list(loaded.get("writable", [])) + list(loaded.get("readonly", []))
        if parsed_keys:
            self.signers = [k["pubkey"] for k in raw_keys if k.get("signer")]
        else:
            count = self.message.get("header", {}).get("numRequiredSignatures", 1)
            self.signers = keys[:count]
        self._balances: tuple[TokenBalance, ...] | None = None

    @property
    def failed(self) -> bool:
        return self.meta.get("err") is not None

    @property
    def fee_payer(self) -> str:
        return self.keys[0]

    def post_lamports(self, address: str) -> int | None:
        try:
            return self.meta["postBalances"][self.keys.index(address)]
        except (ValueError, IndexError, KeyError):
            return None

    def log_messages(self) -> list[str]:
        return list(self.meta.get("logMessages") or [])

    def _instruction(self, raw: dict, outer_index: int, inner: bool) -> Instruction:
        if "programIdIndex" in raw:  # json encoding: indexes into the resolved keys
            program = self.keys[raw["programIdIndex"]]
            accounts = tuple(self.keys[i] for i in raw.get("accounts", []))
        else:
            program = raw["programId"]
            accounts = tuple(raw.get("accounts", []))
        parsed = raw.get("parsed")
        if parsed is not None and not isinstance(parsed, dict):
            parsed = {"type": str(parsed), "info": {}}  # e.g. spl-memo parses to a string
        data = b58decode(raw["data"]) if isinstance(raw.get("data"), str) else None
        return Instruction(program, accounts, data, parsed, outer_index, inner)

    def instructions(self) -> list[Instruction]:
        """Every instruction in execution order: each outer one, then its inner ones."""
        inner_by_outer = {group["index"]: group["instructions"]
                          for group in self.meta.get("innerInstructions") or []}
        result = []
        for index, raw in enumerate(self.message.get("instructions", [])):
            result.append(self._instruction(raw, index, False))
            result.extend(self._instruction(r, index, True) for r in inner_by_outer.get(index, []))
        return result

    def token_balances(self) -> tuple[TokenBalance, ...]:
        """Every token account seen before or after; a missing side counts as 0. Its owner is
        the later side's; where neither side names one (`owner` is optional: blocks before
        it was added), the account itself stands for its owner: every such account lumped
        under one owner "" made one wallet of them all, and "" is no address. Worked out once
        per view: a transaction's readers (pools, swaps, transfers, owners) ask ~10 times, and
        that was a third of a block's handling."""
        if self._balances is None:
            self._balances = self._token_balances()
        return self._balances

    def _token_balances(self) -> tuple[TokenBalance, ...]:
        merged: dict[int, dict] = {}
        for side in ("pre", "post"):
            for entry in self.meta.get(f"{side}TokenBalances") or []:
                slot = merged.setdefault(entry["accountIndex"], {"pre": 0, "post": 0})
                slot[side] = int(entry["uiTokenAmount"]["amount"])
                slot[f"{side}_owner"] = entry.get("owner") or None
                slot.update(mint=entry["mint"], decimals=int(entry["uiTokenAmount"]["decimals"]))
        balances = []
        for index, b in sorted(merged.items()):
            account = self.keys[index]
            owner = b.get("post_owner") or b.get("pre_owner") or account
            before = b.get("pre_owner") or owner
            balances.append(TokenBalance(account, owner, b["mint"], b["decimals"], b["pre"],
                                         b["post"], None if before == owner else before,
                                         closed="pre_owner" in b and "post_owner" not in b))
        return tuple(balances)

    def owners_moved(self) -> set[str]:
        """Owners with a token account whose balance changed. The others relay what passes
        through them (a router's authority, named in each hop it routes), so they are no pool."""
        return {b.owner for b in self.token_balances() if b.pre != b.post}

    def owner_deltas(self) -> dict[tuple[str, str], int]:
        """Per (owner, mint): post - pre summed over the owner's token accounts (0s dropped);
        an account that changed owners counts its pre amount against the owner before. A
        closed account counts neither: what moved through it is told by its instructions
        (movements.unrecorded_deltas), as for an account opened and closed here."""
        deltas: dict[tuple[str, str], int] = {}
        for balance in self.token_balances():
            if balance.closed:
                continue
            before = (balance.pre_owner or balance.owner, balance.mint)
            after = (balance.owner, balance.mint)
            deltas[before] = deltas.get(before, 0) - balance.pre
            deltas[after] = deltas.get(after, 0) + balance.post
        return {key: value for key, value in deltas.items() if value}

    def decimals(self) -> dict[str, int]:
        return {b.mint: b.decimals for b in self.token_balances()}
