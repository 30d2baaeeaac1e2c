"""The crypto lexicon model against plain VADER on hand-labelled crypto posts."""
from __future__ import annotations

import pytest

from crypto_sentences import SENTENCES
from kades.sentiment.model import LABELS, CryptoSentiment, PlainVader, confidence_of, label_of


@pytest.fixture(scope="module")
def model():
    return CryptoSentiment()


def accuracy(scorer, sentences) -> float:
    return sum(scorer.score(text).label == label for text, label, _ in sentences) / len(sentences)


def test_crypto_model_beats_plain_vader_on_crypto_posts(model):
    ours, plain = accuracy(model, SENTENCES), accuracy(PlainVader(), SENTENCES)
    print(f"\ncrypto sentences: crypto model {ours:.3f}, plain VADER {plain:.3f} (n={len(SENTENCES)})")
    assert ours >= 0.8 and ours >= plain + 0.3


@pytest.mark.parametrize("kind", ["slang", "emoji", "negation", "sarcasm", "neutral"])
def test_every_kind_of_crypto_language_is_mostly_right(model, kind):
    subset = [s for s in SENTENCES if s[2] == kind]
    print(f"\n{kind}: {accuracy(model, subset):.2f} of {len(subset)}")
    assert accuracy(model, subset) >= 0.6


@pytest.mark.parametrize("text, label", [
    ("$MOON announced a new pool", "neutral"),   # a cashtag is not the word "moon"
    ("https://moon.example/rug @rugwatcher", "neutral"),  # neither are links and handles
    ("this is not a rug", "positive"),           # VADER's negation applies to crypto words
    ("great project, love it /s", "negative"),   # sarcasm mark
    ("RUG RUG RUG", "negative"),
])
def test_blanking_negation_and_sarcasm(model, text, label):
    assert model.score(text).label == label


def test_scores_are_bounded_and_labels_follow_the_threshold(model):
    for text, _, _ in SENTENCES:
        score = model.score(text)
        assert -1 <= score.compound <= 1 and 0.5 <= score.confidence <= 1
        assert score.label in LABELS and score.label == label_of(score.compound, model.threshold)
    assert confidence_of(0.0, 0.2) == 1.0 and confidence_of(1.0, 0.2) == 1.0
    assert confidence_of(0.2, 0.2) == 0.5


def test_plain_vader_is_left_unchanged_by_the_crypto_model(model):
    before = PlainVader().score("to the moon, rekt, wagmi").compound
    CryptoSentiment()
    assert PlainVader().score("to the moon, rekt, wagmi").compound == before == 0.0


def test_empty_and_odd_text(model):
    assert model.score("").label == "neutral"
    assert model.score("🚀").label == "positive"
    assert model.score("     \n\t").compound == 0.0
