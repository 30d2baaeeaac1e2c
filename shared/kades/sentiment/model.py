"""Per-post sentiment, offline: VADER's rules and word list, extended for crypto chatter.

Nothing is downloaded: VADER's lexicon ships inside the vaderSentiment wheel and the crypto
additions live in `kades.sentiment.lexicon`. On top of VADER:

- phrases and emoji runs become single tokens ("to the moon", "💎🙌", "rug pulled");
- cashtags, mint addresses, URLs and @handles are blanked, so `$MOON` is not read as "moon";
- crypto dominance: when crypto words and ordinary words pull in opposite directions, the
  crypto words win ("great, another rug. thanks dev" is negative) — after VADER's own
  negation handling, so "not a rug" stays positive;
- sarcasm marks ("/s", 🤡, 🙄, "yeah right") turn an apparently positive post negative.

>>> model = CryptoSentiment()
>>> model.score("$BONK to the moon 🚀🚀").label
'positive'
>>> model.score("great, another rug. thanks dev").label
'negative'
>>> model.score("this is not a rug, liquidity locked").label
'positive'
"""
from __future__ import annotations

import functools
import heapq
import re
from dataclasses import dataclass

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer, SentiText

from kades.sentiment import lexicon

LABELS = ("negative", "neutral", "positive")
# |compound| below this is neutral. VADER's authors use 0.05; plain VADER keeps it here. The
# crypto model's value (best macro-F1 among 0.05 … 0.5) was chosen on the *training* split of
# ../shared/data/social, never the held-out one: finance chatter is mostly neutral
# statements carrying a mild word or two.
PLAIN_VADER_THRESHOLD = 0.05
CRYPTO_THRESHOLD = 0.2
CRYPTO_DOMINANCE = 0.25  # weight left to ordinary words that contradict strong crypto words
DOMINANT_CRYPTO_VALENCE = 2.0

_BLANKED = re.compile(r"https?://\S+|\$[A-Za-z][A-Za-z0-9_]{0,14}(?:\.[A-Z]{1,3})?\b|@\w+|"
                      r"\b[1-9A-HJ-NP-Za-km-z]{32,44}\b")
_NOTHING_LEFT = " \t\r\n.,;:!?-_()[]{}'\"/|*&+=<>~`^"


def says_nothing(text: str) -> bool:
    """Whether a post holds nothing but cashtags ($ETH.X, StockTwits' crypto form, too),
    links, handles and addresses, and punctuation: "$SOL" alone, a raid's bare ticker.
    Emoji and numbers are something said."""
    return not _BLANKED.sub(" ", text).strip(_NOTHING_LEFT)


@dataclass(frozen=True, slots=True)
class Score:
    label: str         # positive / neutral / negative
    compound: float    # -1 … 1
    confidence: float  # 0.5 … 1: how far the compound lies from the neutral band's edge


def confidence_of(compound: float, threshold: float) -> float:
    """Heuristic certainty: 0.5 on the neutral band's edge, 1 at |compound| = 1 or 0."""
    size = abs(compound)
    if size < threshold:
        return round(1.0 - 0.5 * size / threshold, 4)
    return round(0.5 + 0.5 * (size - threshold) / max(1e-9, 1.0 - threshold), 4)


def label_of(compound: float, threshold: float) -> str:
    if compound >= threshold:
        return "positive"
    if compound <= -threshold:
        return "negative"
    return "neutral"


def _phrase_pattern() -> re.Pattern:
    """Every phrase, longest first; those starting with a letter only at a word's start. The
    lookbehind and first-character lookaheads let the scan skip most positions at once (an
    alternation of ~70 phrases tried at every character cost ~4x more)."""
    words, marks = [], []
    for phrase in sorted(lexicon.PHRASES, key=len, reverse=True):
        escaped = re.escape(phrase) + (r"(?!\w)" if phrase[-1].isalnum() else "")
        (words if phrase[0].isalnum() else marks).append(escaped)
    word_firsts = "".join(sorted({re.escape(p[0].lower()) for p in lexicon.PHRASES
                                  if p[0].isalnum()}))
    mark_firsts = "".join(sorted({re.escape(p[0]) for p in lexicon.PHRASES
                                  if not p[0].isalnum()}))
    return re.compile(rf"(?<!\w)(?=[{word_firsts}])(?:{'|'.join(words)})"
                      rf"|(?=[{mark_firsts}])(?:{'|'.join(marks)})", re.IGNORECASE)


class _Window:
    """The words around one word, standing in for VADER's SentiText in `sentiment_valence`."""

    __slots__ = ("words_and_emoticons", "is_cap_diff")

    def __init__(self, words: list[str], is_cap_diff: bool):
        self.words_and_emoticons = words
        self.is_cap_diff = is_cap_diff


class LinearVader(SentimentIntensityAnalyzer):
    """VADER's analyzer, scoring every text exactly as it does, in time linear in its length.

    vaderSentiment 3.3.2 is quadratic in a text's words: for every lexicon word its
    `_negation_check` (up to 3 calls) and `_special_idioms_check` lower-case the text's whole
    word list to read at most 3 words before and 2 after it, and `_but_check` finds each
    valence with `list.index` (80 KB of "bad !!! " took ~35 s). Here:

    - `sentiment_valence` (VADER's own, unchanged) is handed the word's window, the 3 words
      before it to the 2 after, with the index within it, in place of the whole SentiText.
      Every rule reads only words i-3 … i+2 and compares i only with 0, 1 and 2 (and the
      list's length only with i+1 and i+2): the index in the window, min(i, 3), compares with
      0, 1 and 2 as i does, and the window ends where the list does when that is within 2
      words of i, so every rule sees what it saw in the whole list.
    - `_but_check` gives the valences VADER's gives, in O(n log n): the same walk, finding
      each value's first equal valence (as `list.index` does, which VADER's relies on,
      repeats and all) from a heap of positions per value instead of scanning the list.

    tests/sentiment/test_model_linear.py checks both against vaderSentiment's own code.
    """

    def sentiment_valence(self, valence, sentitext, item, i, sentiments):
        if item.lower() not in self.lexicon:  # what VADER's does for a word not in the
            sentiments.append(valence)         # lexicon, without building its window
            return sentiments
        start = max(0, i - 3)
        window = _Window(sentitext.words_and_emoticons[start:i + 3], sentitext.is_cap_diff)
        return super().sentiment_valence(valence, window, item, i - start, sentiments)

    @staticmethod
    def _but_check(words_and_emoticons, sentiments):
        but = next((index for index, word in enumerate(words_and_emoticons)
                    if str(word).lower() == "but"), None)
        if but is None:
            return sentiments
        # positions holding each value, a heap each; an entry is stale once its valence has
        # changed (dropped when it comes to the top). Equal values share one key (0 == 0.0).
        holding: dict[float, list[int]] = {}
        for index, value in enumerate(sentiments):
            holding.setdefault(value, []).append(index)  # ascending: already a heap
        for index in range(len(sentiments)):
            sentiment = sentiments[index]
            heap = holding[sentiment]
            while sentiments[heap[0]] != sentiment:
                heapq.heappop(heap)
            first = heap[0]  # sentiments.index(sentiment)
            if first == but:
                continue
            changed = sentiment * (0.5 if first < but else 1.5)
            sentiments[first] = changed
            if changed != sentiment:
                heapq.heappush(holding.setdefault(changed, []), first)
        return sentiments


class CryptoSentiment(LinearVader):
    """VADER with the crypto lexicon, phrase tokens, crypto dominance and sarcasm marks."""

    def __init__(self, *, threshold: float = CRYPTO_THRESHOLD):
        super().__init__()
        self.threshold = threshold
        self.lexicon.update(lexicon.WORDS)
        self.crypto_words = frozenset(lexicon.WORDS)
        self._phrases = _phrase_pattern()
        self._replacements = {key.lower(): value for key, value in lexicon.PHRASES.items()}
        self._sarcasm = re.compile("|".join(
            (r"(?<!\w)" if mark[0].isalnum() else "") + re.escape(mark) + r"(?!\w)"
            for mark in lexicon.SARCASM_MARKS), re.IGNORECASE)

    def prepare(self, text: str) -> str:
        text = _BLANKED.sub(" ", text)
        return self._phrases.sub(lambda m: f" {self._replacements[m.group(0).lower()].strip()} ",
                                 text)

    def score(self, text: str) -> Score:
        return self.score_prepared(self.prepare(text))

    def score_prepared(self, prepared: str) -> Score:
        """The score of a text already through `prepare` (the trained model's features
        prepare it once for both their words and this)."""
        compound = self._compound(prepared)
        if compound > 0 and self._sarcasm.search(prepared):
            compound = -max(compound, self.threshold) * 0.8
        compound = round(compound, 4)
        return Score(label_of(compound, self.threshold), compound,
                     confidence_of(compound, self.threshold))

    def _compound(self, text: str) -> float:
        """VADER's polarity_scores loop, keeping which valences came from crypto words."""
        emojis = self.emojis
        if any(ch in emojis for ch in text):  # VADER's emoji descriptions, as it does itself
            text = "".join(f" {emojis[ch]} " if ch in emojis else ch for ch in text)
        sentitext = SentiText(" ".join(text.split()))
        words = sentitext.words_and_emoticons
        sentiments: list[float] = []
        for i, item in enumerate(words):
            lowered = item.lower()
            if lowered in _BOOSTERS or (lowered == "kind" and i + 1 < len(words)
                                        and words[i + 1].lower() == "of"):
                sentiments.append(0)
                continue
            sentiments = self.sentiment_valence(0, sentitext, item, i, sentiments)
        if not any(sentiments):
            return 0.0
        sentiments = self._but_check(words, sentiments)
        crypto = sum(s for w, s in zip(words, sentiments) if w.lower() in self.crypto_words)
        ordinary = sum(s for w, s in zip(words, sentiments) if w.lower() not in self.crypto_words)
        if abs(crypto) >= DOMINANT_CRYPTO_VALENCE and crypto * ordinary < 0:
            sentiments = [s if w.lower() in self.crypto_words else s * CRYPTO_DOMINANCE
                          for w, s in zip(words, sentiments)]
        return self.score_valence(sentiments, text)["compound"]


def _vader_boosters() -> frozenset[str]:
    from vaderSentiment.vaderSentiment import BOOSTER_DICT
    return frozenset(BOOSTER_DICT)


_BOOSTERS = _vader_boosters()


class PlainVader:
    """Unchanged VADER with its authors' ±0.05 band: the baseline every figure is set beside."""

    def __init__(self, *, threshold: float = PLAIN_VADER_THRESHOLD):
        self.threshold = threshold
        self._analyzer = LinearVader()

    def score(self, text: str) -> Score:
        compound = self._analyzer.polarity_scores(text)["compound"]
        return Score(label_of(compound, self.threshold), compound,
                     confidence_of(compound, self.threshold))


@functools.cache
def lexicon_model() -> CryptoSentiment:
    """One lexicon model per process (building it reads VADER's 7,500-word list: ~30 ms)."""
    return CryptoSentiment()


__all__ = ["CryptoSentiment", "LinearVader", "PlainVader", "Score", "LABELS", "lexicon_model"]
