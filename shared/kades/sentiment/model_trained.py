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

The fitted weights ship in `model_data/`: `sentiment.f32`, one flat table of little-endian
float32 (the polarity head's HEAD_SIZE weights, then the neutrality head's; each head is a
weight per hashed gram bucket, one per dense feature in DENSE_NAMES' order, then its bias),
and `sentiment.json` (the features, the band, how it was trained and on what, and the
table's sha256, checked on load). Scoring needs only the standard library: the table is read
into an `array` once per process, on first use (a few ms: importing numpy and reading an
.npz took ~80 ms of every cold start), and nothing in the files is ever executed (no
pickle). `make model` rebuilds both from ../shared/data (tests/sentiment/train_sentiment.py,
with scikit-learn, scipy and numpy).
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import sys
from array import array
from collections.abc import Sequence
from pathlib import Path

from kades.sentiment import model_features
from kades.sentiment.model import CryptoSentiment, Score, lexicon_model, says_nothing

MODEL_DIR = Path(__file__).with_name("model_data")
FORMAT = 2
WEIGHTS_FILE, META_FILE = "sentiment.f32", "sentiment.json"
GRAMS = 2 ** model_features.BITS
HEAD_SIZE = GRAMS + len(model_features.DENSE_NAMES) + 1  # gram buckets, dense features, bias
NOTHING_SAID = Score("neutral", 0.0, 1.0)  # a blank text, as the lexicon models score it
_LAYOUT = ("little-endian float32: the polarity head, then the neutrality head; each "
           f"2**{model_features.BITS} gram buckets, then the dense features, then the bias")


class ModelFileError(ValueError):
    """The shipped model files do not match each other or this code."""


class TrainedSentiment:
    """Scores posts with the two heads' weights (each HEAD_SIZE floats: grams, dense, bias)."""

    def __init__(self, polarity: Sequence[float], neutrality: Sequence[float], *,
                 neutral_band: float, recipe: dict | None = None):
        heads = []
        for name, head in (("polarity", polarity), ("neutrality", neutrality)):
            if len(head) != HEAD_SIZE:
                raise ModelFileError(f"the {name} head has {len(head)} weights, this code "
                                     f"needs {HEAD_SIZE} (2**{model_features.BITS} gram "
                                     f"buckets, {len(model_features.DENSE_NAMES)} dense "
                                     "features, the bias)")
            heads.append(head if isinstance(head, array) and head.typecode == "f"
                         else array("f", head))
        self.polarity, self.neutrality = heads
        # a bucket's weight as a Python float, read straight from the table (no copy)
        self._polar_gram = memoryview(self.polarity)[:GRAMS].__getitem__
        self._neutral_gram = memoryview(self.neutrality)[:GRAMS].__getitem__
        self._dense = list(zip(self.polarity[GRAMS:-1], self.neutrality[GRAMS:-1]))
        self._bias = (self.polarity[-1], self.neutrality[-1])
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
        if indices:  # map over the table's items: C loops, ~80 grams a post
            weight = model_features.gram_weight(indices)
            polar_logit += weight * sum(map(self._polar_gram, indices))
            neutral_logit += weight * sum(map(self._neutral_gram, indices))
        polar = 1.0 / (1.0 + math.exp(-polar_logit))
        neutral = 1.0 / (1.0 + math.exp(-neutral_logit))
        return ((1.0 - neutral) * (1.0 - polar), neutral, (1.0 - neutral) * polar,
                dense[model_features.DENSE_NAMES.index("lexicon_compound")])

    def score(self, text: str) -> Score:
        if says_nothing(text):  # an image-only post, a bare ticker: the lexicon's answer, not
            return NOTHING_SAID  # the heads' bias (negative 0.78 sure; "$SOL" positive 0.75)
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
        """Write `sentiment.f32` (both heads, float32) and `sentiment.json` (the features,
        the band, `recipe` and the table's sha256); the JSON written."""
        directory.mkdir(parents=True, exist_ok=True)
        data = _to_little_endian(self.polarity + self.neutrality).tobytes()
        (directory / WEIGHTS_FILE).write_bytes(data)
        meta = {"format": FORMAT, "bits": model_features.BITS,
                "char_ngrams": list(model_features.CHAR_NGRAMS),
                "dense_features": list(model_features.DENSE_NAMES),
                "neutral_band": self.neutral_band,
                "weights": {"file": WEIGHTS_FILE, "layout": _LAYOUT},
                "weights_sha256": hashlib.sha256(data).hexdigest(), **recipe}
        (directory / META_FILE).write_text(json.dumps(meta, indent=1, ensure_ascii=False)
                                           + "\n", encoding="utf-8")
        return meta

    @classmethod
    def load(cls, directory: Path = MODEL_DIR) -> TrainedSentiment:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        problems = []
        if meta.get("format") != FORMAT:
            problems.append(f"format {meta.get('format')!r}, this code reads {FORMAT}")
        for key, ours in (("bits", model_features.BITS),
                          ("char_ngrams", list(model_features.CHAR_NGRAMS)),
                          ("dense_features", list(model_features.DENSE_NAMES))):
            if meta.get(key) != ours:
                problems.append(f"{key} {meta.get(key)!r}, the features here are {ours!r}")
        path = directory / WEIGHTS_FILE
        data = path.read_bytes() if path.exists() else b""
        if len(data) != 2 * HEAD_SIZE * 4:
            problems.append(f"{WEIGHTS_FILE} holds {len(data)} bytes, two heads of "
                            f"{HEAD_SIZE} float32 are {2 * HEAD_SIZE * 4}")
        elif meta.get("weights_sha256") != hashlib.sha256(data).hexdigest():
            problems.append(f"the sha256 of {WEIGHTS_FILE} is not the one {META_FILE} records")
        if problems:
            raise ModelFileError(f"{directory}: " + "; ".join(problems))
        table = array("f")
        table.frombytes(data)
        table = _to_little_endian(table)  # the same swap reads little-endian on big-endian
        return cls(table[:HEAD_SIZE], table[HEAD_SIZE:],
                   neutral_band=float(meta["neutral_band"]), recipe=meta)


def _to_little_endian(table: array) -> array:
    """`table` in little-endian byte order (as it is, on a little-endian machine)."""
    if sys.byteorder == "big":
        table = array(table.typecode, table)
        table.byteswap()
    return table


def shipped_model(directory: Path = MODEL_DIR) -> TrainedSentiment | None:
    """The model shipped in the package; None when it is not there (the lexicon model is
    used instead). Files that are there but do not match this code are an error, not a
    silent fallback."""
    if not (directory / META_FILE).exists():
        return None
    return TrainedSentiment.load(directory)


@functools.cache
def default_model() -> TrainedSentiment | CryptoSentiment:
    """The model posts are scored with, loaded once per process, on first use: the trained
    model shipped in the package, else the lexicon model (kades.sentiment.model)."""
    return shipped_model() or lexicon_model()


__all__ = ["FORMAT", "HEAD_SIZE", "MODEL_DIR", "ModelFileError", "TrainedSentiment",
           "default_model", "shipped_model"]
