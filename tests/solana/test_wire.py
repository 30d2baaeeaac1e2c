"""Transactions recorded in `base64` (or `base58`) read as their `json` encoding does.

Proven on the real recordings: each `json`-encoded mainnet transaction of ../shared/data is
written back to its wire bytes, and the fee payer's ed25519 signature must verify over the
message part of them, so the bytes are the very ones the chain signed (an encoder off by one
byte fails here). Decoding those bytes must give the transaction back, and normalising it
the same records. Plain-clone cases build their bytes the same way, from a small transaction.
"""
from __future__ import annotations

import base64
import json

import pytest
import shared_material
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kades.solana.base58 import b58decode, b58encode
from kades.solana.normalise import normalise_transaction
from kades.solana.transaction import MalformedTransaction
from kades.solana.wire import WireError, decode_transaction, first_signature

FOLDERS = [shared_material.DATA / "solana/rpc", shared_material.DATA / "solana/rpc2"]


def compact(n: int) -> bytes:
    out = bytearray()
    while True:
        part, n = n & 0x7F, n >> 7
        out.append(part | (0x80 if n else 0))
        if not n:
            return bytes(out)


def message_bytes(message: dict, version) -> bytes:
    """The message as Solana serialises it (the bytes the signatures sign)."""
    header = message["header"]
    legacy = version in (None, "legacy")  # one recording writes version 0 as "0"
    out = bytearray([] if legacy else [0x80 | int(version)])
    out += bytes([header["numRequiredSignatures"], header["numReadonlySignedAccounts"],
                  header["numReadonlyUnsignedAccounts"]])
    out += compact(len(message["accountKeys"])) + b"".join(b58decode(k) for k in message["accountKeys"])
    out += b58decode(message["recentBlockhash"]) + compact(len(message["instructions"]))
    for ix in message["instructions"]:
        data = b58decode(ix["data"])
        out += bytes([ix["programIdIndex"]]) + compact(len(ix["accounts"])) + bytes(ix["accounts"])
        out += compact(len(data)) + data
    if not legacy:
        lookups = message.get("addressTableLookups") or []
        out += compact(len(lookups))
        for lookup in lookups:
            out += b58decode(lookup["accountKey"])
            for field in ("writableIndexes", "readonlyIndexes"):
                out += compact(len(lookup[field])) + bytes(lookup[field])
    return bytes(out)


def wire(tx: dict) -> tuple[bytes, bytes]:
    """(the whole transaction's bytes, its message's bytes)."""
    message = message_bytes(tx["transaction"]["message"], tx.get("version", "legacy"))
    signatures = tx["transaction"]["signatures"]
    return compact(len(signatures)) + b"".join(b58decode(s) for s in signatures) + message, message


def as_base64(tx: dict) -> dict:
    return {**tx, "transaction": [base64.b64encode(wire(tx)[0]).decode(), "base64"]}


def real_transactions() -> list[tuple[str, dict]]:
    found = []
    for folder in FOLDERS:
        for path in sorted(folder.glob("*.json")):
            document = json.loads(path.read_text())
            tx = document[0] if isinstance(document, list) else document
            tx = tx.get("result", tx)
            if isinstance(tx["transaction"]["message"]["accountKeys"][0], str):  # json, not jsonParsed
                found.append((path.name, tx))
    return found


def same_message(decoded: dict, recorded: dict) -> bool:
    """The decoded message is the recorded one (the RPC writes `stackHeight` per instruction
    when it knows it, and v0 lookups only for v0)."""
    plain = lambda ixs: [{k: ix[k] for k in ("programIdIndex", "accounts", "data")} for ix in ixs]  # noqa: E731
    return (decoded["header"] == recorded["header"]
            and decoded["accountKeys"] == recorded["accountKeys"]
            and decoded["recentBlockhash"] == recorded["recentBlockhash"]
            and plain(decoded["instructions"]) == plain(recorded["instructions"])
            and decoded.get("addressTableLookups", []) == (recorded.get("addressTableLookups") or []))


@shared_material.needs(shared_material.DATA / "solana")
def test_real_transactions_read_alike_from_their_signed_wire_bytes():
    transactions = real_transactions()
    assert len(transactions) >= 30
    versions = set()
    for name, tx in transactions:
        whole, message = wire(tx)
        signer = Ed25519PublicKey.from_public_bytes(b58decode(tx["transaction"]["message"]["accountKeys"][0]))
        signer.verify(b58decode(tx["transaction"]["signatures"][0]), message)  # raises if not the signed bytes
        decoded = decode_transaction([base64.b64encode(whole).decode(), "base64"])
        assert decoded["signatures"] == tx["transaction"]["signatures"], name
        assert first_signature([b58encode(whole), "base58"]) == decoded["signatures"][0], name
        assert same_message(decoded["message"], tx["transaction"]["message"]), name
        assert normalise_transaction(as_base64(tx)) == normalise_transaction(tx), name
        versions.add(str(tx.get("version") or "legacy"))
    assert versions == {"legacy", "0"}
    print(f"{len(transactions)} real transactions: signatures verified over the wire bytes, "
          f"base64 reads as json")


def small(version) -> dict:
    keys = [b58encode(bytes([n]) * 32) for n in (1, 2, 3)]
    message = {"header": {"numRequiredSignatures": 1, "numReadonlySignedAccounts": 0,
                          "numReadonlyUnsignedAccounts": 1},
               "accountKeys": keys, "recentBlockhash": b58encode(bytes([9]) * 32),
               "instructions": [{"programIdIndex": 2, "accounts": [0, 1, 2] * 44,
                                 "data": b58encode(bytes(200)), "stackHeight": None}]}
    if version != "legacy":
        message["addressTableLookups"] = [{"accountKey": keys[1], "writableIndexes": [3, 200],
                                           "readonlyIndexes": []}]
    return {"version": version, "meta": {"err": None},
            "transaction": {"signatures": [b58encode(bytes([7]) * 64)], "message": message}}


@pytest.mark.parametrize("version", ["legacy", 0])
def test_a_small_transaction_decodes_in_base64_and_base58(version):
    tx = small(version)
    whole, _ = wire(tx)
    for encoded in ([base64.b64encode(whole).decode(), "base64"], [b58encode(whole), "base58"]):
        decoded = decode_transaction(encoded)
        assert decoded["signatures"] == tx["transaction"]["signatures"]
        assert decoded["message"] == tx["transaction"]["message"]  # 132 accounts, 200 bytes: 2-byte lengths


@pytest.mark.parametrize("encoded, problem", [
    (lambda whole: [base64.b64encode(whole[:-5]).decode(), "base64"], "ends early"),
    (lambda whole: [base64.b64encode(whole + b"\0").decode(), "base64"], "1 bytes after the message"),
    (lambda whole: ["not base64!", "base64"], "not base64"),
    (lambda whole: [base64.b64encode(whole).decode(), "base64+zstd"], r"'base64\+zstd' encoding"),
    (lambda whole: [base64.b64encode(whole[:65] + bytes([0x81]) + whole[66:]).decode(), "base64"],
     "message version 1"),
])
def test_bytes_that_are_no_transaction_are_refused_with_the_reason(encoded, problem):
    whole, _ = wire(small(0))
    with pytest.raises(WireError, match=problem):
        decode_transaction(encoded(whole))
    with pytest.raises(MalformedTransaction, match=problem):  # what the source reports
        normalise_transaction({**small(0), "transaction": encoded(whole)})
