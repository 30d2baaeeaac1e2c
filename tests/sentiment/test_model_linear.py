"""Scoring takes time linear in a post's length, and gives exactly vaderSentiment's scores.

vaderSentiment 3.3.2 lower-cases a text's whole word list for every lexicon word (in
`_negation_check` and `_special_idioms_check`) and finds every valence with `list.index` in
`_but_check`: 80 KB of "bad !!! " took ~35 s under every model, and the sentiment function
takes posts of up to 40,000 characters. `LinearVader` (kades.sentiment.model) hands VADER's
rules the words around each word instead, and walks the "but" rule with a heap per value.
No timing is asserted: the rules' reads and the comparisons are counted, and the scores must
be, valence for valence, those of VADER's own code (`VadersOwn*` below) — on long texts, on
generated texts full of VADER's special cases, and on every real post of ../shared/data/social.
"""
from __future__ import annotations

import random
import time

import pytest

import sentiment_corpora
from crypto_sentences import SENTENCES
from shared_material import needs
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
from kades.sentiment.model import CryptoSentiment, LinearVader, PlainVader

LONG = "bad !!! " * 5000  # 40 KB, 10,000 words: ~9 s under VADER's own rules, ~0.1 s here


def _valences_kept(cls):
    """`cls` keeping, as `last`, the valences it summed for its last text (exact reprs, so
    0, 0.0 and -0.0 differ)."""
    class Kept(cls):
        last = None

        def score_valence(self, sentiments, text):
            self.last = [f"{type(s).__name__} {s!r}" for s in sentiments]
            return super().score_valence(sentiments, text)
    return Kept


class VadersOwnCrypto(CryptoSentiment):
    """The crypto model with vaderSentiment's own (quadratic) rules, as before the change."""

    sentiment_valence = SentimentIntensityAnalyzer.sentiment_valence
    _but_check = SentimentIntensityAnalyzer.__dict__["_but_check"]


class Pairs:
    """VADER and the crypto model, each as vaderSentiment's code and as ours."""

    def __init__(self):
        self.vader = (_valences_kept(SentimentIntensityAnalyzer)(), _valences_kept(LinearVader)())
        self.crypto = (_valences_kept(VadersOwnCrypto)(), _valences_kept(CryptoSentiment)())

    def differences(self, texts) -> list[str]:
        """The texts scored differently in any way (VADER's four scores, the crypto model's
        Score, or a single valence)."""
        differing = []
        for text in texts:
            readings = []
            for theirs_or_ours in (0, 1):
                vader, crypto = self.vader[theirs_or_ours], self.crypto[theirs_or_ours]
                vader.last = crypto.last = None
                readings.append((vader.polarity_scores(text), vader.last,
                                 crypto.score(text), crypto.last))
            if readings[0] != readings[1]:
                differing.append(text)
        return differing


@pytest.fixture(scope="module")
def pairs() -> Pairs:
    return Pairs()


def generated(count: int, seed: int = 0) -> list[str]:
    """Texts of VADER's special cases: negations, boosters, "no", "least", idioms, ALL CAPS,
    "but" (and the same few valences repeated, which its `list.index` walk depends on)."""
    vocabulary = (
        "good bad great horrible but BUT But no No not never so this without doubt least at "
        "very kind of sort extremely barely VERY GOOD rug moon rekt wagmi scam love hate ok "
        "nor or :) :( 😁 💀 🚀 ! ? !! isn't don't cannot happy sad dump lol sux").split() + [
        "kiss of death", "to die for", "bad ass", "the shit", "the bomb", "yeah right",
        "beating heart", "kind of", "sort of", "never so", "never this", "without a doubt",
        "at least", "very least", "no or", "no nor", "bus stop", "KISS OF DEATH"]
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        words = rng.choices(vocabulary, k=rng.randint(1, 40))
        if rng.random() < 0.5:
            words = words[:rng.randint(1, 4)] * rng.randint(1, 12)
        texts.append(" ".join(words))
    return texts


class _Reads(LinearVader):
    """Records how many words each of VADER's rules is handed."""

    def __init__(self):
        super().__init__()
        self.handed: list[int] = []

    def _negation_check(self, valence, words_and_emoticons, start_i, i):
        self.handed.append(len(words_and_emoticons))
        return super()._negation_check(valence, words_and_emoticons, start_i, i)

    def _special_idioms_check(self, valence, words_and_emoticons, i):
        self.handed.append(len(words_and_emoticons))
        return super()._special_idioms_check(valence, words_and_emoticons, i)

    def _least_check(self, valence, words_and_emoticons, i):
        self.handed.append(len(words_and_emoticons))
        return super()._least_check(valence, words_and_emoticons, i)


def test_the_rules_read_the_words_around_a_word_not_the_whole_text():
    """VADER's rules were handed all 10,000 words of LONG, and lower-cased them, three times
    for each of its 5,000 "bad"s (1.5e8 words); now at most 6, 3 before the word to 2 after."""
    reader = _Reads()
    reader.polarity_scores(LONG)
    words = len(LONG.split())
    assert len(reader.handed) >= words // 2  # the rules did run, for every "bad"
    assert max(reader.handed) <= 6
    assert sum(reader.handed) <= 6 * 5 * words


class _Counted(float):
    """A valence counting how often it is compared."""

    comparisons = 0

    def __eq__(self, other):
        _Counted.comparisons += 1
        return float.__eq__(self, other)

    def __ne__(self, other):
        _Counted.comparisons += 1
        return float.__ne__(self, other)

    __hash__ = float.__hash__


@pytest.mark.parametrize("words", [200, 3200])
def test_the_but_rule_compares_each_valence_a_bounded_number_of_times(words):
    """VADER's walk looks every valence up with list.index: n²/4 comparisons for n valences
    alike (2.6 million for 3,200). Ours: a few per valence, and the same valences out."""
    text = (["bad", "!!!"] * words)[:words]
    text[words // 2] = "but"
    valences = [-2.5 if word == "bad" else 0 for word in text]
    _Counted.comparisons = 0
    ours = LinearVader._but_check(text, [_Counted(valence) for valence in valences])
    assert _Counted.comparisons <= 8 * words
    assert ours == SentimentIntensityAnalyzer._but_check(text, valences)


def test_a_long_text_scores_as_vaders_own_code_scores_it(pairs):
    """Long texts of every rule, short enough for VADER's own code (~0.2 s each); LONG by
    the new code alone, for the figure (printed, never asserted)."""
    unit = " ".join(generated(40, seed=7))
    texts = ["bad !!! " * 600, "bad but " * 600, "GOOD bad no good " * 300, unit * 3]
    assert pairs.differences(texts) == []
    for model in (PlainVader(), CryptoSentiment()):
        started = time.perf_counter()
        assert model.score(LONG).label == "negative"
        print(f"\n{len(LONG):,} characters, {type(model).__name__}: "
              f"{time.perf_counter() - started:.3f} s (with VADER's own rules: ~9 s)")


def test_same_scores_as_vaders_own_code_on_generated_and_crypto_posts(pairs):
    texts = generated(3000) + [text for text, _, _ in SENTENCES]
    assert pairs.differences(texts) == []


@pytest.mark.slow  # ~10 s: every post scored four times
@needs(sentiment_corpora.SOCIAL)
def test_same_scores_as_vaders_own_code_on_every_real_post(pairs):
    """Every post of every labelled corpus (~27,900), as it is and in capitals."""
    texts = [text for name in sentiment_corpora.NAMES
             for text in sentiment_corpora.load(name).texts]
    assert len(texts) > 27000
    texts += [text.upper() for text in texts[::10]]
    assert pairs.differences(texts) == []
    print(f"\n{len(texts):,} posts: every valence and score the same as vaderSentiment's code")
