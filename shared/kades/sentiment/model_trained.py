"""The trained sentiment model: two logistic heads over kades.sentiment.model_features.

- polarity: P(positive | the post takes a side), learnt from every labelled polar post;
- neutrality: P(neutral), learnt only from the three-class corpora.

P(neutral) = n, P(positive) = (1 - n)·p, P(negative) = (1 - n)·(1 - p). A post is neutral
when n reaches the model's neutral band (`neutral_band`, chosen when training), else it takes
the likelier side. `compound` (-1 … 1) is the mean of the model's lean, 2p - 1 (shrunk
toward 0 inside the neutral band by (1 - n) / (1 - band)), and the lexicon's compound: it
sets how strong a post is, not its label, so the two may disagree on a post that is nearly
neutral. `confidence` = the certainty of the head that decided: P(neutral) for a neutral
post, else max(p, 1 - p) (0.5 … 1, as the lexicon model's).

The fitted arrays ship in `model_data/` (`sentiment.npz`, loaded with allow_pickle=False,
and `sentiment.json`: how it was trained, on what, and the sha256 of the arrays, checked on
load). `make model` rebuilds both from ../shared/data (tests/sentiment/train_sentiment.py).
Only numpy is needed to score: scikit-learn is used to train, never imported here.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from kades.sentiment import model_features
from kades.sentiment.model import Score

MODEL_DIR = Path(__file__).with_name("model_data")
ARRAYS = ("grams", "dense", "bias")  # (2**BITS, 2), (len(DENSE_NAMES), 2), (2,)


class ModelFileError(ValueError):
    """The shipped model files do not match each other or this code."""


class TrainedSentiment:
    """Scores posts with fitted arrays: column 0 is the polarity head, column 1 neutrality."""

    def __init__(self, grams: np.ndarray, dense: np.ndarray, bias: np.ndarray, *,
                 neutral_band: float, recipe: dict | None = None):
        expected = {"grams": (2 ** model_features.BITS, 2),
                    "dense": (len(model_features.DENSE_NAMES), 2), "bias": (2,)}
        got = {"grams": grams.shape, "dense": dense.shape, "bias": bias.shape}
        if got != expected:
            raise ModelFileError(f"array shapes {got}, this code needs {expected}")
        self.grams = np.asarray(grams, dtype=np.float32)
        self.dense = np.asarray(dense, dtype=np.float64)
        self.bias = np.asarray(bias, dtype=np.float64)
        self._dense, self._bias = self.dense.tolist(), self.bias.tolist()
        self.neutral_band = neutral_band
        self.recipe = recipe or {}

    def probabilities(self, text: str) -> tuple[float, float, float]:
        """(P(negative), P(neutral), P(positive))."""
        return self._read(text)[:3]

    def _read(self, text: str) -> tuple[float, float, float, float]:
        """(P(negative), P(neutral), P(positive), the lexicon's compound)."""
        indices, dense = model_features.features(text)
        polar_logit, neutral_logit = self._bias
        for value, (to_polar, to_neutral) in zip(dense, self._dense):  # five: plain Python
            polar_logit += value * to_polar
            neutral_logit += value * to_neutral
        if indices:  # fromiter + take: a third of the time of indexing with the list
            rows = self.grams.take(np.fromiter(indices, np.intp, len(indices)), axis=0)
            sums = rows.sum(axis=0) * model_features.gram_weight(indices)
            polar_logit += float(sums[0])
            neutral_logit += float(sums[1])
        polar = 1.0 / (1.0 + math.exp(-polar_logit))
        neutral = 1.0 / (1.0 + math.exp(-neutral_logit))
        return ((1.0 - neutral) * (1.0 - polar), neutral, (1.0 - neutral) * polar,
                dense[model_features.DENSE_NAMES.index("lexicon_compound")])

    def score(self, text: str) -> Score:
        negative, neutral, positive, lexical = self._read(text)
        side = positive / (positive + negative) if positive + negative > 0 else 0.5
        # The polarity head's lean, whole outside the neutral band, shrinking to 0 inside it
        # as P(neutral) nears 1; averaged with the lexicon's compound, which knows how strong
        # crypto slang is (the finance corpora barely do) and is the scale the sentiment
        # shift detector's gap was set on.
        lean = (2 * side - 1) * min(1.0, (1 - neutral) / (1 - self.neutral_band))
        compound = 0.5 * lean + 0.5 * lexical
        if neutral >= self.neutral_band:
            label, confidence = "neutral", neutral
        else:
            label, confidence = ("positive" if side >= 0.5 else "negative"), max(side, 1 - side)
        return Score(label, round(compound, 4), round(confidence, 4))

    # -- the files --------------------------------------------------------------------------

    def save(self, directory: Path, recipe: dict) -> dict:
        """Write `sentiment.npz` (float16 weights: half the size, same labels) and
        `sentiment.json` (the recipe, the band and the arrays' sha256); the JSON written."""
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {"grams": self.grams.astype(np.float16), "dense": self.dense.astype(np.float32),
                  "bias": self.bias.astype(np.float32)}
        np.savez_compressed(directory / "sentiment.npz", **arrays)
        meta = {"format": 1, "bits": model_features.BITS,
                "char_ngrams": list(model_features.CHAR_NGRAMS),
                "dense_features": list(model_features.DENSE_NAMES),
                "neutral_band": self.neutral_band, "arrays_sha256": arrays_digest(arrays),
                **recipe}
        (directory / "sentiment.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False)
                                                  + "\n", encoding="utf-8")
        return meta

    @classmethod
    def load(cls, directory: Path = MODEL_DIR) -> TrainedSentiment:
        meta = json.loads((directory / "sentiment.json").read_text(encoding="utf-8"))
        with np.load(directory / "sentiment.npz", allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in ARRAYS}
        problems = []
        if meta.get("format") != 1:
            problems.append(f"format {meta.get('format')!r}, this code reads 1")
        for key, ours in (("bits", model_features.BITS),
                          ("char_ngrams", list(model_features.CHAR_NGRAMS)),
                          ("dense_features", list(model_features.DENSE_NAMES))):
            if meta.get(key) != ours:
                problems.append(f"{key} {meta.get(key)!r}, the features here are {ours!r}")
        if meta.get("arrays_sha256") != arrays_digest(arrays):
            problems.append("the arrays' sha256 is not the one sentiment.json records")
        if problems:
            raise ModelFileError(f"{directory}: " + "; ".join(problems))
        return cls(arrays["grams"], arrays["dense"], arrays["bias"],
                   neutral_band=float(meta["neutral_band"]), recipe=meta)


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the arrays as stored (name, dtype, shape, bytes), independent of zip."""
    digest = hashlib.sha256()
    for name in ARRAYS:
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def shipped_model(directory: Path = MODEL_DIR) -> TrainedSentiment | None:
    """The model shipped in the package; None when it is not there (the lexicon model is
    used instead). Files that are there but do not match this code are an error, not a
    silent fallback."""
    if not (directory / "sentiment.npz").exists():
        return None
    return TrainedSentiment.load(directory)


__all__ = ["ModelFileError", "TrainedSentiment", "arrays_digest", "shipped_model", "MODEL_DIR"]
