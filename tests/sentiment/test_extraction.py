"""Token extraction: cashtags, validated mint addresses, tracked names and symbols."""
from __future__ import annotations

import pytest

from kades.sentiment.extraction import (Directory, base58_decode, extract_tokens, hashtags,
                                        is_mint_address)

BONK = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"
WSOL = "So11111111111111111111111111111111111111112"
TRACKED = Directory.of([{"token": BONK, "symbol": "BONK", "name": "Bonk"},
                        {"token": "FakeMintOfTheSimulator", "symbol": "DOGWIF", "name": "Dog Wif Hat"}])


@pytest.mark.parametrize("text, valid", [
    (BONK, True), (WSOL, True),
    ("11111111111111111111111111111111", False),  # 32 bytes, but the System Program: no mint
    ("1" * 34, False),               # 34 zero bytes
    ("z" * 44, False),               # more than 32 bytes
    ("DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjn", False),  # a cut address: too few bytes
    ("0" * 40, False), ("O" * 40, False), ("short", False),
])
def test_mint_addresses_are_validated_by_decoding(text, valid):
    assert is_mint_address(text) is valid


def test_base58_round_numbers():
    assert base58_decode("1") == b"\x00" and base58_decode("2") == b"\x01"
    assert base58_decode("5Q") == (58 * 4 + 23).to_bytes(1, "big")
    with pytest.raises(ValueError):
        base58_decode("0OIl")


@pytest.mark.parametrize("text, expected", [
    ("$BONK and $bonk again", [BONK]),
    ("$WIF $POPCAT", ["$WIF", "$POPCAT"]),
    ("$100 giveaway, 1.5$ fee, US$5", []),
    ("买入$BONK吧, $WIF暴涨了, $POPCATは最高", [BONK, "$WIF", "$POPCAT"]),  # CJK: no spaces
    ("A$AP, $BONKTOOLONGFORATICKER1, x$WIF", []),
    (f"ca {BONK} and {WSOL}", [BONK, WSOL]),
    (f"ca:{BONK}!", [BONK]),
    ("random base58 ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijk", []),
    ("dog wif hat is back, bonk too", ["FakeMintOfTheSimulator", BONK]),
    ("the dogwif hat", []),                           # names match whole words only
    ("FakeMintOfTheSimulator", []),                   # too short for a mint
    ("nothing here", []),
])
def test_extract_tokens(text, expected):
    assert extract_tokens(text, TRACKED) == expected


def test_tracked_mints_count_even_when_they_do_not_decode():
    directory = Directory.of([{"token": "z" * 44}])
    assert extract_tokens(f"look {'z' * 44}", directory) == ["z" * 44]
    assert extract_tokens(f"look {'z' * 44}", Directory()) == []


@pytest.mark.parametrize("order", [1, -1])
def test_a_symbol_or_name_two_tracked_tokens_share_names_neither(order):
    """A copycat takes BONK's ticker and name: "$BONK" went to whichever was tracked last, a
    different mint from one event to the next (each event's `tracked` merged anew)."""
    entries = [{"token": BONK, "symbol": "BONK", "name": "Bonk"},
               {"token": "CopycatMint", "symbol": "$bonk", "name": "bonk"}][::order]
    shared = Directory.of(entries)
    assert extract_tokens("$BONK to the moon, bonk!", shared) == ["$BONK"]
    assert extract_tokens("$BONK", Directory.of(entries[:1])) == [entries[0]["token"]]
    assert extract_tokens("$BONK", Directory.of(entries[:1]).merged(entries[1:])) == ["$BONK"]
    same_twice = Directory.of([entries[0], entries[0]])  # one token listed twice: still its
    assert extract_tokens("$BONK", same_twice) == [entries[0]["token"]]


def test_hints_come_first_and_repeats_vanish():
    assert extract_tokens("$BONK", TRACKED, hints=["X", BONK]) == ["X", BONK]


def test_merged_directory_leaves_the_original_alone():
    merged = TRACKED.merged([{"token": "T", "symbol": "$tee"}])
    assert merged.symbols["TEE"] == "T" and "TEE" not in TRACKED.symbols


def test_hashtags():
    assert hashtags("#Solana #solana #memecoin x#no #1") == ["solana", "memecoin"]


def test_a_post_names_at_most_as_many_tokens_as_a_source_may_list():
    """A post naming 2,000 cashtags took 5 s and gave 2,000 events."""
    from kades.sentiment.extraction import MAX_TOKENS_PER_POST, Directory, extract_tokens
    text = " ".join(f"$TOK{n}" for n in range(2000))
    found = extract_tokens(text, Directory())
    assert found == [f"$TOK{n}" for n in range(MAX_TOKENS_PER_POST)]


PAIR = "58oQChx4yWmvKdwLLZzBi4ChoCc2fqCUWBkwMihLYQo2"    # an AMM pool's address (32 bytes)
WALLET = "5Q544fKrFoe6tsEbD7S8EmxGTJYAKtTVhAW5Q5pge4j1"  # an account's


@pytest.mark.parametrize("text, expected", [
    (f"chart https://dexscreener.com/solana/{PAIR}", []),           # a pair's page
    (f"https://photon-sol.tinyastro.io/en/lp/{PAIR}?handle=1", []),
    (f"dev wallet https://solscan.io/account/{WALLET} lol", []),    # a wallet's
    (f"see https://birdeye.so/profile/{WALLET}", []),
    (f"https://pump.fun/coin/{BONK}", [BONK]),                      # a token's page
    (f"new one pump.fun/{BONK} go", [BONK]),
    (f"https://solscan.io/token/{BONK}", [BONK]),
    (f"https://birdeye.so/token/{BONK}?chain=solana", [BONK]),
    (f"gmgn.ai/sol/token/{BONK}", [BONK]),
    (f"https://jup.ag/swap/SOL-{BONK}", [BONK]),
    (f"https://raydium.io/swap/?inputMint=sol&outputMint={BONK}", [BONK]),
    (f"ca {BONK} chart dexscreener.com/solana/{PAIR}", [BONK]),    # the address beside the link
    (f"not pump: xpump.fun/{BONK}", []),
    (f"https://pump.fun/profile/{BONK}", []),                       # pump.fun's page of a wallet
    (f"https://gmgn.ai/sol/token/abc123_{BONK}", [BONK]),           # a referral's link
    (f"https://jup.ag/swap/{BONK}-SOL", [BONK]),
    (f"https://neo.bullx.io/terminal?chainId=1399811149&address={BONK}", [BONK]),
    (f"图表dexscreener.com/solana/{PAIR}，合约地址：{BONK}", [BONK]),   # glued after a link
    (f"(https://dexscreener.com/solana/{PAIR}){BONK}", [BONK]),
])
def test_an_address_in_a_link_is_a_token_only_on_a_tokens_page(text, expected):
    """A chart's or an explorer's link names a pair, a wallet or a transaction as often as a
    token: each such address was a phantom token with sentiment no market data joined."""
    assert extract_tokens(text, Directory()) == expected


def test_a_tracked_mint_counts_in_any_link():
    assert extract_tokens(f"https://dexscreener.com/solana/{BONK}", TRACKED) == [BONK]


@pytest.mark.parametrize("run", ["a" * 100_000, "a." * 50_000, "-" * 100_000])
def test_a_long_run_of_link_like_text_is_read_once(run):
    """A guard against backtracking, not a speed figure: the link pattern without possessive
    quantifiers took 52-98 s on each of these (a post may be 40,000 characters and a batch
    10,000 posts), and takes milliseconds now; 5 s would only fail if it backtracked."""
    import time
    began = time.monotonic()
    assert extract_tokens(run + " " + BONK, Directory()) == [BONK]
    assert time.monotonic() - began < 5.0


def test_invisible_characters_hide_no_token_and_no_template():
    """A zero-width space inside a cashtag named the phantom "$BO" and missed BONK; salted
    through a shill template's words, it made each copy a template of its own."""
    for salt in ("\u200b", "\u200d", "\u00ad", "\ufeff", "\u2060"):
        assert extract_tokens(f"$BO{salt}NK to the moon", Directory()) == ["$BONK"], repr(salt)
    template = "huge news dont miss $PEPE2 next 100x gem aping now before CEX listing"
    salted = "".join(c + "\u200b" if i % 4 == 1 else c for i, c in enumerate(template))
    from kades.sentiment.coordination import similarity, sketch
    assert similarity(sketch(template), sketch(salted)) == 1.0


@pytest.mark.parametrize("text", [
    "send 1 SOL to 5Q544fKrFoe6tsEbD7S8EmxGTJYAKtTVhAW5Q5pge4j1 now",   # Raydium's pool authority
    "the System Program 11111111111111111111111111111111 again",
    "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA is the token program",
    "JUP6LkbZbjS1jKKwapdHNy74zcZ3tLUZoi5QNyVTaV4 routed it"])
def test_a_programs_address_names_no_token(text):
    """Each decodes to 32 bytes, and each was a token whose sentiment no market data joined."""
    assert extract_tokens(text, Directory()) == []
    assert extract_tokens("ca: So11111111111111111111111111111111111111112", Directory()) == [
        "So11111111111111111111111111111111111111112"]  # wrapped SOL is a mint
