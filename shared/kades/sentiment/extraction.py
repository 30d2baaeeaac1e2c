"""Which tokens a post is about: cashtags, Solana mint addresses, tracked names and symbols.

A post may concern several tokens. A cashtag of a tracked symbol resolves to its mint; an
unknown cashtag stays a symbol key (`$WIF`), so chatter about untracked coins is still
counted. A base58 word of 32–44 characters counts as a mint only when it decodes to exactly
32 bytes (an ed25519 public key) or is a tracked mint: random base58-looking words do not,
nor do programs' addresses (kades.solana.programs.NOT_MINTS). In
a link, only where the link says it is a token's page (`_on_token_page`): a chart's or an
explorer's link of a pair, a wallet or a transaction names no token.

>>> tracked = Directory.of([{"token": "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263",
...                          "symbol": "BONK", "name": "Bonk"}])
>>> extract_tokens("$bonk and $WIF up, Bonk holders eating", tracked)
['DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263', '$WIF']
>>> extract_tokens("ca: So11111111111111111111111111111111111111112", Directory())
['So11111111111111111111111111111111111111112']
>>> extract_tokens("$100 giveaway, tickets 1111111111111111111111111111111111", Directory())
[]
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from kades.solana.programs import NOT_MINTS

BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {char: index for index, char in enumerate(BASE58_ALPHABET)}
# ASCII bounds: Unicode's \w took the letters of the words around a cashtag for its own, and
# "买入$BONK吧", "$BONK暴涨了" or "$BONKは最高" (no spaces in CJK text) named no token
_CASHTAG = re.compile(r"(?<![A-Za-z0-9_$])\$([A-Za-z][A-Za-z0-9_]{0,14})(?![A-Za-z0-9_])")
_MINT = re.compile(r"(?<![1-9A-HJ-NP-Za-km-z])[1-9A-HJ-NP-Za-km-z]{32,44}(?![1-9A-HJ-NP-Za-km-z])")
# A link (with or without its scheme; it ends at the first character no URL holds, so an
# address glued after it, "图表dexscreener.com/solana/<pair>，CA：<mint>", stays outside) and
# the places that make it a token's page, at the end of what precedes an address in it:
# /token/ and /coin/ (Birdeye, Solscan, GMGN with or without a referral's "<ref>_"),
# pump.fun's own /<mint>, Jupiter's swap/SOL-<mint> and swap/<mint>-SOL, a mint, sell or buy
# parameter (Raydium, Jupiter), BullX's address parameter. Elsewhere a link's address is
# another account's: DexScreener's, DEXTools' and Photon's pages are a pair's, Solscan's
# /account/ and Birdeye's /profile/ a wallet's (each was a phantom token whose sentiment no
# market data ever joined). Possessive quantifiers: a long run of letters or dots is read
# once (with backtracking, 40,000 of them took 9 s).
_LINK = re.compile(r"(?<![a-z0-9.-])(?:https?://)?(?:[a-z0-9-]++\.)++[a-z]{2,}+/[a-z0-9._~:/?#&=%+@!$*-]*+",
                   re.IGNORECASE)
_TOKEN_PATH = re.compile(r"(?:/(?:tokens?|coins?)/(?:[a-z0-9]+_)?|/swap/(?:[a-z0-9]+-)?|"
                         r"[?&](?:(?:input|output)?mint|sell|buy)=|bullx\.io/\S*[?&]address=)$",
                         re.IGNORECASE)
_PUMP_FUN_PAGE = re.compile(r"(?:https?://)?(?:www\.)?pump\.fun/", re.IGNORECASE)
PATH_LOOKBACK = 200  # characters before an address in a link that say whose page it is


def _on_token_page(text: str, link: int, at: int) -> bool:
    """Whether the address at `at`, in the link starting at `link`, is on a token's page."""
    return (_PUMP_FUN_PAGE.fullmatch(text, link, at) is not None
            or _TOKEN_PATH.search(text, max(link, at - PATH_LOOKBACK), at) is not None)


# Invisible format characters (Unicode's Cf: zero-width space and joiners, soft hyphen,
# direction marks, BOM): "$BO\u200bNK" named the phantom "$BO" and not BONK, and a shill
# template salted with them was no longer one template (kades.sentiment.coordination).
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
                        "\u2066-\u206f\ufeff\ufff9-\ufffb]")


def visible(text: str) -> str:
    """The text without its invisible format characters."""
    return _INVISIBLE.sub("", text)


_HASHTAG = re.compile(r"(?<![\w#])#([A-Za-z][A-Za-z0-9_]{1,49})")
_WORD = re.compile(r"[a-z0-9][a-z0-9_']*")
MAX_NAME_WORDS = 4


def base58_decode(text: str) -> bytes:
    """Bytes of a base58 (Bitcoin alphabet) string; ValueError on a foreign character."""
    number = 0
    for char in text:
        if char not in _BASE58_INDEX:
            raise ValueError(f"not base58: {char!r}")
        number = number * 58 + _BASE58_INDEX[char]
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    leading_zeros = len(text) - len(text.lstrip("1"))
    return b"\x00" * leading_zeros + body


def is_mint_address(text: str) -> bool:
    """True for base58 text of 32–44 characters decoding to exactly 32 bytes, neither all
    digits (a number: no key's address is, but the System Program's ones) nor a program's or
    a pool authority's address (kades.solana.programs.NOT_MINTS)."""
    if not 32 <= len(text) <= 44 or text.isdigit() or text in NOT_MINTS:
        return False
    try:
        return len(base58_decode(text)) == 32
    except ValueError:
        return False


AMBIGUOUS = ""  # a symbol or name two tracked tokens share: it names neither


@dataclass
class Directory:
    """Tracked tokens: symbol (upper case) → mint, lower-case name → mint, known mints. A
    symbol or name two tokens share is AMBIGUOUS: copycat coins take a known coin's ticker,
    and "$BONK" went to whichever was added last, a different mint from one event to the
    next (each event's `tracked` list merged anew): one coin's chatter split over three keys.
    Such a cashtag stays the symbol's own key, as an untracked one does."""

    symbols: dict[str, str] = field(default_factory=dict)
    names: dict[tuple[str, ...], str] = field(default_factory=dict)
    mints: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, entries: list[dict]) -> "Directory":
        directory = cls()
        for entry in entries:
            directory.add(entry["token"], entry.get("symbol"), entry.get("name"))
        return directory

    def add(self, token: str, symbol: str | None = None, name: str | None = None) -> None:
        self.mints.add(token)
        if symbol:
            key = symbol.lstrip("$").upper()
            self.symbols[key] = token if self.symbols.get(key, token) == token else AMBIGUOUS
        if name:
            words = tuple(_WORD.findall(name.lower()))
            if 0 < len(words) <= MAX_NAME_WORDS:
                self.names[words] = token if self.names.get(words, token) == token else AMBIGUOUS

    def merged(self, entries: list[dict]) -> "Directory":
        """A copy with `entries` ({token, symbol?, name?}) added; self is left unchanged."""
        copy = Directory(dict(self.symbols), dict(self.names), set(self.mints))
        for entry in entries:
            copy.add(entry["token"], entry.get("symbol"), entry.get("name"))
        return copy


def _names_in(text: str, directory: Directory) -> list[str]:
    """Tracked names (1–4 words, whole words only) in the text, in order of appearance."""
    words = _WORD.findall(text.lower())
    found = []
    for size in range(1, min(MAX_NAME_WORDS, len(words)) + 1):
        for start in range(len(words) - size + 1):
            token = directory.names.get(tuple(words[start:start + size]))
            if token:
                found.append((start, token))
    return [token for _, token in sorted(found)]


MAX_TOKENS_PER_POST = 32  # as many as a source may list (the contract's `tokens`)


def extract_tokens(text: str, directory: Directory, hints: list[str] | None = None) -> list[str]:
    """Tokens the post concerns, in order of first mention, without repeats, the first
    MAX_TOKENS_PER_POST: a post naming 2,000 cashtags took 5 s and gave 2,000 events."""
    found: list[str] = list(hints or ())
    text = visible(text)
    for match in _CASHTAG.finditer(text):
        symbol = match.group(1).upper()
        found.append(directory.symbols.get(symbol) or f"${symbol}")  # (AMBIGUOUS: its own)
    links = None  # found at the first address to place (most posts have none)
    for match in _MINT.finditer(text):
        candidate, at = match.group(0), match.start()
        if candidate not in directory.mints:
            if not is_mint_address(candidate):
                continue
            if links is None:
                links = [(link.start(), link.end()) for link in _LINK.finditer(text)]
            link = next((start for start, end in links if start <= at < end), None)
            if link is not None and not _on_token_page(text, link, at):
                continue
        found.append(candidate)
    if directory.names:
        found.extend(_names_in(text, directory))
    return list(dict.fromkeys(found))[:MAX_TOKENS_PER_POST]


def hashtags(text: str) -> list[str]:
    """Lower-case hashtags of a post, without repeats."""
    return list(dict.fromkeys(tag.lower() for tag in _HASHTAG.findall(text)))
