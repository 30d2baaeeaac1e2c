"""Features of the trained sentiment model: hashed word and character n-grams plus the
crypto lexicon's own reading. One definition, used to train (`make model`) and to score.

Hashing (crc32 into 2**BITS buckets) instead of a vocabulary: nothing of the training text is
shipped with the model, and a word never seen in training costs nothing. crc32 is the same on
every machine and Python version (Python's own `hash` is salted per process).

>>> indices, dense = features("$BONK to the moon 🚀 https://x.co/a")
>>> len(dense) == len(DENSE_NAMES) and all(0 <= i < 2 ** BITS for i in indices)
True
>>> dense[0] > 0.5  # the lexicon's compound
True
"""
from __future__ import annotations

import functools
import math
import re
from zlib import crc32

from kades.sentiment.model import CryptoSentiment, lexicon_model

BITS = 18
_MASK = 2 ** BITS - 1
CHAR_NGRAMS = (3, 4)   # inside words, padded with a space each side
# Lexicon features (its compound, which side of its neutral band it falls) and the post's
# length: long posts rarely say nothing (Reddit comments beside tweets).
DENSE_NAMES = ("lexicon_compound", "lexicon_positive", "lexicon_negative", "lexicon_neutral",
               "log_words")

_MARKERS = ((re.compile(r"https?://\S+|www\.\S+"), " xurl "),
            (re.compile(r"\$[A-Za-z][A-Za-z0-9_.]{0,14}\b"), " xcashtag "),
            (re.compile(r"@\w+"), " xuser "),
            (re.compile(r"\b[1-9A-HJ-NP-Za-km-z]{32,44}\b"), " xaddress "),
            (re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?!\w)"), " 0 "))
_TOKEN = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")


def prepare(text: str) -> str:
    """Links, cashtags, handles, addresses and numbers become markers, crypto phrases and
    emojis one token each (the lexicon model's own `prepare`)."""
    for pattern, marker in _MARKERS:
        text = pattern.sub(marker, text)
    return lexicon_model().prepare(text)


def words(prepared: str) -> list[str]:
    """Lower-cased word tokens of a prepared text; each emoji and punctuation mark a token."""
    return _TOKEN.findall(prepared.lower())


def features(text: str) -> tuple[list[int], list[float]]:
    """(hashed bucket of every word, word bigram and in-word character 3-4-gram, repeats
    kept: each counts `gram_weight(indices)`; the dense lexicon features)."""
    prepared = prepare(text)
    tokens = words(prepared)
    indices = [crc32(f"b {a} {b}".encode()) & _MASK for a, b in zip(tokens, tokens[1:])]
    for word in tokens:
        indices += _word_grams(word)
    reader: CryptoSentiment = lexicon_model()
    compound, threshold = reader.score_prepared(prepared).compound, reader.threshold
    dense = [compound, float(compound >= threshold), float(compound <= -threshold),
             float(abs(compound) < threshold), math.log1p(len(tokens)) / 4.0]
    return indices, dense


def gram_weight(indices: list[int]) -> float:
    """What each gram of a post counts: posts of any length weigh alike (1/sqrt(n))."""
    return 1.0 / math.sqrt(len(indices)) if indices else 0.0


@functools.lru_cache(maxsize=16384)  # ~0.7 KB a word: ~11 MB when full
def _word_grams(word: str) -> tuple[int, ...]:
    """The buckets of a word and its character n-grams (cached: words repeat across posts)."""
    grams = [f"w {word}"]
    if len(word) > 1:
        padded = f" {word} "
        for n in CHAR_NGRAMS:
            grams += [padded[i:i + n] for i in range(len(padded) - n + 1)]
    return tuple(crc32(gram.encode()) & _MASK for gram in grams)


__all__ = ["BITS", "CHAR_NGRAMS", "DENSE_NAMES", "features", "gram_weight", "prepare", "words"]
