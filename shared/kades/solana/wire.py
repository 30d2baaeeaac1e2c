"""A transaction's wire bytes (what `getTransaction`/`getBlock` return with encoding
`base64`, or the older `base58`) -> the `json` encoding's `transaction` object, so that
recordings of either encoding read alike.

The layout is Solana's: compact-u16 lengths; signatures; then the message, legacy or
versioned (first byte 0x80 | version): header, account keys, recent blockhash, instructions
(program index, account indexes, data) and, from version 0, address table lookups.
"""
from __future__ import annotations

import base64
import binascii

from kades.solana.base58 import b58decode, b58encode


class WireError(ValueError):
    """The bytes are not a Solana transaction."""


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise WireError(f"the transaction ends early: {len(self.data)} bytes, "
                            f"{size} more wanted at byte {self.at}")
        chunk = self.data[self.at:self.at + size]
        self.at += size
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def length(self) -> int:
        """A compact-u16: 7 bits a byte, low bits first, at most three bytes."""
        value = 0
        for shift in (0, 7, 14):
            part = self.byte()
            value |= (part & 0x7F) << shift
            if not part & 0x80:
                return value
        raise WireError("a length longer than a compact-u16")

    def keys(self) -> list[str]:
        return [b58encode(self.take(32)) for _ in range(self.length())]

    def indexes(self) -> list[int]:
        return list(self.take(self.length()))


def wire_bytes(encoded: list) -> bytes:
    """The bytes of `[data, encoding]` as the RPC returns a non-JSON transaction."""
    if not (isinstance(encoded, list) and len(encoded) == 2 and isinstance(encoded[0], str)):
        raise WireError("an encoded transaction is [data, encoding]")
    data, encoding = encoded
    if encoding == "base64":
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error as error:
            raise WireError(f"not base64: {error}") from None
    if encoding in ("base58", "binary"):  # "binary" is the old name of base58
        return b58decode(data)
    raise WireError(f"a transaction in {encoding!r} encoding: record it with encoding "
                    "\"json\", \"jsonParsed\" or \"base64\"")


def first_signature(encoded: list) -> str:
    """The transaction's first signature (its id), read without decoding the message."""
    reader = _Reader(wire_bytes(encoded))
    if not reader.length():
        raise WireError("a transaction without signatures")
    return b58encode(reader.take(64))


def decode_transaction(encoded: list) -> dict:
    """`{"signatures": [...], "message": {...}}` as the `json` encoding gives it."""
    reader = _Reader(wire_bytes(encoded))
    signatures = [b58encode(reader.take(64)) for _ in range(reader.length())]
    first = reader.byte()
    version = first & 0x7F if first & 0x80 else None
    header = [reader.byte() for _ in range(3)] if version is not None else [first, *reader.take(2)]
    message: dict = {
        "header": dict(zip(("numRequiredSignatures", "numReadonlySignedAccounts",
                            "numReadonlyUnsignedAccounts"), header)),
        "accountKeys": reader.keys(), "recentBlockhash": b58encode(reader.take(32))}
    message["instructions"] = [
        {"programIdIndex": reader.byte(), "accounts": reader.indexes(),
         "data": b58encode(reader.take(reader.length())), "stackHeight": None}
        for _ in range(reader.length())]
    if version is not None:
        if version != 0:
            raise WireError(f"message version {version}: only legacy and version 0 exist")
        message["addressTableLookups"] = [
            {"accountKey": b58encode(reader.take(32)), "writableIndexes": reader.indexes(),
             "readonlyIndexes": reader.indexes()} for _ in range(reader.length())]
    if reader.at != len(reader.data):
        raise WireError(f"{len(reader.data) - reader.at} bytes after the message")
    return {"signatures": signatures, "message": message}
