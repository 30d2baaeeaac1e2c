"""`make model`: fit the trained sentiment model (kades.sentiment.model_trained) on
../shared/data/social, write it to shared/kades/sentiment/model_data/ and print its figures.

Recipe (deterministic: the splits are by text hash, liblinear has a fixed seed):
- every corpus loses its held-out third (sentiment_corpora.is_held_out), never trained on;
- polarity head: every positive/negative post of the four corpora's training thirds — the
  self-tagged StockTwits and the two-class Reddit set teach polarity beside the finance sets;
- neutrality head: the two three-class corpora only (pyfin_tweets, twitter_financial_news),
  both classes weighted alike;
  untagged StockTwits posts are not neutral, so they are not used at all;
- the crypto lexicon's own words, phrases and emojis (valence at least LEXICON_MIN_VALENCE),
  each one a post labelled by its sign, join both heads as polar examples: the finance
  corpora hardly know memecoin slang ("rekt", "wagmi", 🚀), the project's lexicon does;
- the neutral band: the one of BANDS with the best mean macro-F1 over the four corpora on a
  tuning fifth of the training thirds (heads fitted without it), then both heads refitted on
  the whole training thirds.
Written as kades.sentiment.model_trained reads it (a flat float32 table and a JSON), the
gram weights rounded to float16 precision (gram_weights_in_half_precision). scikit-learn,
scipy and numpy are development dependencies: the function scores with the standard library
alone.
"""
from __future__ import annotations

import argparse
import sys
import time
import zlib
from array import array
from pathlib import Path

import numpy as np
import scipy.sparse as sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests/sentiment"), str(ROOT / "tests")]

import sentiment_corpora  # noqa: E402
from shared_material import absent  # noqa: E402

from kades.sentiment import model_features  # noqa: E402
from kades.sentiment.model import PlainVader, lexicon_model  # noqa: E402
from kades.sentiment.model_trained import GRAMS, MODEL_DIR, TrainedSentiment  # noqa: E402

REGULARISATION_C = 4.0   # inverse L2 strength of both heads (liblinear)
SEED = 16                # liblinear's own (it shuffles only in its dual solver, unused here)
BANDS = (0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
THREE_CLASS = ("pyfin_tweets", "twitter_financial_news", "crypto_lexicon")
LEXICON_MIN_VALENCE = 1.0


def lexicon_posts() -> tuple[list[str], list[str]]:
    """The crypto lexicon as one-word posts: every word, phrase and emoji whose valence is at
    least LEXICON_MIN_VALENCE either way (project-made data, none of ../shared)."""
    from kades.sentiment import lexicon
    valences = dict(lexicon.WORDS)
    entries = [(w, v) for w, v in valences.items() if not w.startswith("x")]
    entries += [(phrase, valences.get(token.strip(), 0.0))
                for phrase, token in lexicon.PHRASES.items()]
    chosen = [(text, v) for text, v in entries if abs(v) >= LEXICON_MIN_VALENCE]
    return [t for t, _ in chosen], ["positive" if v > 0 else "negative" for _, v in chosen]


def matrix(texts: list[str]) -> sparse.csr_matrix:
    """The model's features of `texts` as one sparse row each (grams, then dense)."""
    rows, columns, values, dense = [], [], [], []
    for row, text in enumerate(texts):
        indices, lexical = model_features.features(text)
        weight = model_features.gram_weight(indices)
        rows += [row] * len(indices)
        columns += indices
        values += [weight] * len(indices)
        dense.append(lexical)
    grams = sparse.csr_matrix((np.array(values, np.float64), (rows, columns)),
                              shape=(len(texts), 2 ** model_features.BITS))
    return sparse.hstack([grams, sparse.csr_matrix(np.array(dense, np.float64))]).tocsr()


def _head(features: sparse.csr_matrix, target: np.ndarray, *, balanced: bool = False
          ) -> LogisticRegression:
    return LogisticRegression(C=REGULARISATION_C, solver="liblinear", random_state=SEED,
                              class_weight="balanced" if balanced else None).fit(features, target)


def fit(parts: dict[str, tuple[list[str], list[str]]], *, neutral_band: float
        ) -> TrainedSentiment:
    """Both heads on `parts` ({corpus: (texts, labels)}); neutrality from THREE_CLASS only."""
    texts = [t for texts, _ in parts.values() for t in texts]
    labels = np.array([g for _, labels in parts.values() for g in labels])
    features = matrix(texts)
    polar = labels != "neutral"
    polarity = _head(features[polar], labels[polar] == "positive")
    three = np.concatenate([np.full(len(parts[name][0]), name in THREE_CLASS)
                            for name in parts])
    # balanced: the corpora say "neutral" 32 % (tweets) and 65 % (news) of the time; weighting
    # both classes alike learns what neutral looks like rather than how common it was there
    # (left-out corpora: macro-F1 +0.03 pyfin, +0.05 news; held-out thirds unchanged)
    neutrality = _head(features[three], labels[three] == "neutral", balanced=True)
    return TrainedSentiment(*(array("f", np.append(head.coef_[0], head.intercept_)
                                  .astype(np.float32).tobytes())
                              for head in (polarity, neutrality)),
                            neutral_band=neutral_band)


def gram_weights_in_half_precision(model: TrainedSentiment) -> TrainedSentiment:
    """`model` with its gram weights rounded to float16 (float32 still, in the table): what
    ships. The model's first files (an .npz) held them so, rounded float64 -> float32 ->
    float16 as here: `make model` rebuilds the table shipped bit for bit."""
    heads = []
    for head in (model.polarity, model.neutrality):
        weights = np.frombuffer(head, np.float32).copy()
        weights[:GRAMS] = weights[:GRAMS].astype(np.float16)
        heads.append(array("f", weights.tobytes()))
    return TrainedSentiment(*heads, neutral_band=model.neutral_band)


def macro_f1(model, texts: list[str], gold: list[str], classes: tuple) -> float:
    """Macro-F1 over the classes the corpus has: on a two-class corpus a neutral answer is a
    miss (it lowers recall), as it would be for any model."""
    return float(f1_score(gold, [model.score(t).label for t in texts], labels=list(classes),
                          average="macro", zero_division=0))


def _tuning(text: str) -> bool:
    """A fifth of the training thirds, set aside to choose the neutral band (by template, as
    the held-out third: a bot's twins on both sides would make the band's figures partly seen)."""
    key = sentiment_corpora.template(text) or " ".join(text.lower().split())
    return zlib.crc32(b"tune " + key.encode()) % 5 == 0


def choose_band(corpora: dict) -> tuple[float, dict[float, float]]:
    fitting, tuning = {}, {}
    for name, corpus in corpora.items():
        texts, labels = corpus.part(held_out=False)
        fitting[name] = ([t for t in texts if not _tuning(t)],
                         [g for t, g in zip(texts, labels) if not _tuning(t)])
        tuning[name] = ([t for t in texts if _tuning(t)],
                        [g for t, g in zip(texts, labels) if _tuning(t)])
    model = fit({**fitting, "crypto_lexicon": lexicon_posts()}, neutral_band=0.5)
    means = {}
    for band in BANDS:
        model.neutral_band = band
        figures = [macro_f1(model, *tuning[n], corpora[n].classes) for n in corpora]
        print(f"  band {band}: " + " ".join(f"{f:.3f}" for f in figures))
        means[band] = float(np.mean(figures))
    return max(means, key=means.get), means


def load_corpora() -> dict:
    missing = [reason for path in sentiment_corpora.corpus_paths().values()
               if (reason := absent(path, plain_clone="cannot train the model"))]
    if missing:
        raise SystemExit("make model: " + "; ".join(missing))
    return {name: sentiment_corpora.load(name) for name in sentiment_corpora.NAMES}


def report(model, corpora: dict) -> None:
    """Macro-F1 per corpus, held-out third and in-sample apart, beside VADER and the lexicon."""
    others = {"plain VADER": PlainVader(), "crypto lexicon": lexicon_model()}
    print(f"  {'corpus':<24}{'n':>6}{'trained':>9}{'VADER':>8}{'lexicon':>9}   part")
    for held_out in (True, False):
        for name, corpus in corpora.items():
            texts, gold = corpus.part(held_out)
            figures = [macro_f1(m, texts, gold, corpus.classes)
                       for m in (model, *others.values())]
            print(f"  {name:<24}{len(texts):>6}" + "".join(f"{f:>9.3f}" for f in figures)
                  + ("   held-out third" if held_out else "   in-sample (trained on)"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=MODEL_DIR)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    corpora = load_corpora()
    band, means = choose_band(corpora)
    print("neutral band on the tuning fifth (mean macro-F1): "
          + ", ".join(f"{b}: {m:.3f}" for b, m in means.items()) + f" -> {band}")
    model = gram_weights_in_half_precision(fit(
        {**{n: c.part(held_out=False) for n, c in corpora.items()},
         "crypto_lexicon": lexicon_posts()}, neutral_band=band))
    import sklearn
    recipe = {"trained_on": {n: {"file": str(sentiment_corpora.corpus_paths()[n].relative_to(
                  sentiment_corpora.DATA)), "what": c.what, "licence": c.licence,
                  "posts": len(c.part(held_out=False)[0]),
                  "classes": list(c.classes)} for n, c in corpora.items()}
              | {"crypto_lexicon": {"file": "shared/kades/sentiment/lexicon.py",
                                    "what": "the lexicon's words, phrases and emojis with "
                                            f"|valence| >= {LEXICON_MIN_VALENCE}, one a post",
                                    "licence": "this project's",
                                    "posts": len(lexicon_posts()[0]),
                                    "classes": ["negative", "positive"]}},
              "held_out": "each corpus's third with crc32(the text's template) % 3 == 0 "
                          "(sentiment_corpora.is_held_out)",
              "recipe": "tests/sentiment/train_sentiment.py (make model)",
              "regularisation_C": REGULARISATION_C, "seed": SEED,
              "scikit_learn": sklearn.__version__}
    meta = model.save(args.output, recipe)
    shipped = TrainedSentiment.load(args.output)  # figures of the files as shipped
    print(f"wrote {args.output} (weights sha256 {meta['weights_sha256'][:16]}…, "
          f"{sum(p.stat().st_size for p in args.output.iterdir()) / 1e6:.2f} MB)")
    report(shipped, corpora)
    print(f"({time.perf_counter() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
