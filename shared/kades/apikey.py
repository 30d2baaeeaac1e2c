"""An API key: `kades_` + 32 base62 characters, kept only as a salted SHA-256 (pure, no I/O).

Neither the API's nor storage's: the api checks a key's form, kades.storage.apikeys keeps
its hash, both from here.

The first 8 characters after the prefix are the key id (stored in clear to find the row);
the whole key is hashed with a per-key random salt and compared in constant time.

>>> key = new_key()
>>> key.startswith("kades_") and len(key) == 38 and is_well_formed(key)
True
>>> salt, digest = hash_key(key)
>>> other = key[:-1] + ("y" if key.endswith("x") else "x")  # one character changed
>>> matches(key, salt, digest), matches(other, salt, digest)
(True, False)
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import unicodedata

PREFIX = "kades_"
BASE62 = string.digits + string.ascii_letters
KEY_LENGTH = 32
TIERS = ("standard", "premium", "enterprise")
_FORMAT = re.compile(rf"^{PREFIX}[0-9A-Za-z]{{{KEY_LENGTH}}}$")
KEY_ID = re.compile(r"[0-9A-Za-z]{8}")  # a key's id: the 8 characters after the prefix


def new_key() -> str:
    return PREFIX + "".join(secrets.choice(BASE62) for _ in range(KEY_LENGTH))


def is_well_formed(key: str) -> bool:
    return bool(_FORMAT.match(key))


def key_id(key: str) -> str:
    return key[len(PREFIX):len(PREFIX) + 8]


def hash_key(key: str, salt: bytes | None = None) -> tuple[bytes, bytes]:
    """(salt, SHA-256 of salt + key)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    return salt, hashlib.sha256(salt + key.encode()).digest()


def matches(key: str, salt: bytes, digest: bytes) -> bool:
    return hmac.compare_digest(hash_key(key, salt)[1], digest)


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a key, or None. A control character (a newline, an escape
    sequence) would make `kades apikey list` print a forged row or drive the terminal."""
    return "a key's name holds no control characters" if _has_control(name) else None


def shown_name(name: str) -> str:
    """`name` to print: as is, or quoted with its control characters escaped (a name stored
    before names were checked, or written to the table by other means).

    >>> print(shown_name("desk"), shown_name("x" + chr(10) + "FAKE" + chr(27) + "[2J"))
    desk 'x\\nFAKE\\x1b[2J'
    """
    return repr(name) if _has_control(name) else name
