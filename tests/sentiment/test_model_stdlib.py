"""The trained model scores with the standard library alone, as it scored with numpy.

Its weights are read from a flat float32 table with `array` (issue 16: importing numpy and
loading an .npz were ~80 ms of every cold start). The predictions must be the ones the numpy
scoring gave: pinned here for a few posts (figures of the numpy version, before the change),
and checked post by post against that scoring (numpy's take and float32 sum over the same
weights) on the crypto test posts and on real posts of ../shared/data/social.
"""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sentiment_corpora
from crypto_sentences import SENTENCES
from shared_material import needs
from kades.sentiment import model_features
from kades.sentiment.model import says_nothing
from kades.sentiment.model_trained import GRAMS, TrainedSentiment

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model() -> TrainedSentiment:
    return TrainedSentiment.load()


class NumpyScoring:
    """The model's probabilities as its numpy version computed them, over its weights."""

    def __init__(self, model: TrainedSentiment):
        heads = [np.frombuffer(head, np.float32) for head in (model.polarity, model.neutrality)]
        self.grams = np.stack([head[:GRAMS] for head in heads], axis=1)
        self.dense = np.stack([head[GRAMS:-1] for head in heads], axis=1).astype(np.float64)
        self.bias = [float(head[-1]) for head in heads]

    def probabilities(self, text: str) -> tuple[float, float, float]:
        indices, dense = model_features.features(text)
        polar_logit, neutral_logit = self.bias
        for value, (to_polar, to_neutral) in zip(dense, self.dense.tolist()):
            polar_logit += value * to_polar
            neutral_logit += value * to_neutral
        if indices:
            rows = self.grams.take(np.fromiter(indices, np.intp, len(indices)), axis=0)
            sums = rows.sum(axis=0) * model_features.gram_weight(indices)
            polar_logit += float(sums[0])
            neutral_logit += float(sums[1])
        polar = 1.0 / (1.0 + math.exp(-polar_logit))
        neutral = 1.0 / (1.0 + math.exp(-neutral_logit))
        return (1.0 - neutral) * (1.0 - polar), neutral, (1.0 - neutral) * polar


def assert_same_as_numpy(model: TrainedSentiment, texts: list[str]) -> None:
    reference = NumpyScoring(model)
    labels = {"negative": 0, "neutral": 1, "positive": 2}
    worst = 0.0
    for text in texts:
        ours, theirs = model.probabilities(text), reference.probabilities(text)
        worst = max(worst, *(abs(a - b) for a, b in zip(ours, theirs)))
        assert max(abs(a - b) for a, b in zip(ours, theirs)) < 1e-6, text
        # the label the numpy scoring's probabilities give, by the model's own rule (a post
        # that says nothing but tickers and links is neutral whatever the heads say)
        negative, neutral, positive = theirs
        expected = (1 if neutral >= model.neutral_band or says_nothing(text)
                    else 2 if positive >= negative else 0)
        assert labels[model.score(text).label] == expected, text
    print(f"\n{len(texts)} posts: largest probability difference to numpy {worst:.1e}")


# (post, (P(negative), P(neutral), P(positive)), label) from the numpy version's scoring
# (NumpyScoring) of the shipped weights, retrained 2026-12-05 on the template split
PINNED = [
    ("$BONK to the moon 🚀🚀", (0.017832182917574668, 0.05299239027434953, 0.9291754268080757),
     "positive"),
    ("great, another rug. thanks dev",
     (0.5980620117213631, 0.20216810747259856, 0.19976988080603844), "negative"),
    ("$SOL trading at 142 right now",
     (0.21712750008811132, 0.5096485076737431, 0.27322399223814553), "positive"),
    ("dev sold, rugged, ngmi 💀", (0.8870567491821298, 0.06617196201082008, 0.04677128880705007),
     "negative"),
    ("Fed holds rates steady; stocks close flat",
     (0.06311108324538879, 0.9273016667339241, 0.009587250020687088), "neutral"),
    ("", (0.12211263415557781, 0.7753539447059745, 0.10253342113844766), "neutral"),
]


@pytest.mark.parametrize("text, probabilities, label", PINNED)
def test_predictions_are_those_of_the_numpy_version(model, text, probabilities, label):
    assert model.probabilities(text) == pytest.approx(probabilities, abs=1e-6)
    assert model.score(text).label == label


def test_same_as_numpy_scoring_on_crypto_posts(model):
    assert_same_as_numpy(model, [text for text, _, _ in SENTENCES])


@pytest.mark.slow  # ~5 s, scoring every post twice
@needs(sentiment_corpora.SOCIAL)
def test_same_as_numpy_scoring_on_real_posts(model):
    """The held-out third of every labelled corpus (~9,400 posts)."""
    texts = [text for name in sentiment_corpora.NAMES
             for text in sentiment_corpora.load(name).part(held_out=True)[0]]
    assert len(texts) > 9000
    assert_same_as_numpy(model, texts)


@pytest.mark.slow  # a fresh interpreter
def test_the_function_scores_without_importing_numpy():
    """The sentiment function's entry point, its handler module and a post scored with the
    shipped model: numpy (~55 ms) is never imported (a fresh interpreter)."""
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'functions/sentiment-analysis')!r})\n"
        "import main\n"
        "from kades.sentiment.model_trained import TrainedSentiment, default_model\n"
        "model = default_model()\n"
        "assert isinstance(model, TrainedSentiment), model\n"
        "assert model.score('$BONK to the moon').label == 'positive'\n"
        "heavy = ('numpy', 'scipy', 'sklearn')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
