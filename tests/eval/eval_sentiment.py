"""Sentiment quality: the crypto lexicon model beside plain VADER, measured in the same run,
and precision/recall of bursts, shifts and coordination on seeded social simulations.

Data: the held-out split of ../shared/data/social/twitter_financial_news (finance news
tweets about stocks: this measures transfer, it is not crypto chatter), the hand-labelled
crypto posts of tests/sentiment/crypto_sentences.py, and kades.simulate_social.
"""
from __future__ import annotations

import csv
import dataclasses
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/sentiment"))
sys.path.insert(0, str(ROOT / "tests"))  # shared_material

from shared_material import DATA as SHARED_DATA, absent  # noqa: E402

DATA = SHARED_DATA / "social/twitter_financial_news"

LABELS = ("negative", "neutral", "positive")
DATASET_LABELS = {"0": "negative", "1": "positive", "2": "neutral"}
SEEDS = range(1, 9)


def accuracy_and_macro_f1(predicted: list[str], gold: list[str]) -> tuple[float, float]:
    accuracy = sum(p == g for p, g in zip(predicted, gold)) / len(gold)
    scores = []
    for label in LABELS:
        tp = sum(p == g == label for p, g in zip(predicted, gold))
        fp = sum(p == label != g for p, g in zip(predicted, gold))
        fn = sum(g == label != p for p, g in zip(predicted, gold))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return accuracy, sum(scores) / len(scores)


def compare(title: str, texts: list[str], gold: list[str], models: dict) -> None:
    print(f"\n{title} (n={len(texts)})")
    print(f"  {'model':<28}{'accuracy':>10}{'macro-F1':>10}")
    for name, model in models.items():
        accuracy, macro_f1 = accuracy_and_macro_f1([model.score(t).label for t in texts], gold)
        print(f"  {name:<28}{accuracy:>10.3f}{macro_f1:>10.3f}")


def sentiment_section() -> None:
    from crypto_sentences import SENTENCES
    from kades.sentiment.model import CryptoSentiment, PlainVader
    models = {"plain VADER (±0.05)": PlainVader(), "crypto lexicon (KADES)": CryptoSentiment()}
    texts, gold = [s[0] for s in SENTENCES], [s[1] for s in SENTENCES]
    compare("crypto posts written as tests (slang, emojis, negation, sarcasm)", texts, gold, models)
    held_out = DATA / "sent_valid.csv"
    reason = absent(held_out, plain_clone="leaves this corpus out")
    if reason:
        print(f"\nheld-out finance tweets: skipped, {reason}")
        return
    with open(held_out, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    compare("held-out finance tweets (stocks; transfer, not crypto)",
            [r["text"] for r in rows], [DATASET_LABELS[r["label"]] for r in rows], models)
    model = models["crypto lexicon (KADES)"]
    began = time.perf_counter()
    for row in rows:
        model.score(row["text"])
    print(f"  scoring alone: {len(rows) / (time.perf_counter() - began):,.0f} posts/s (one core)")


def detector_section() -> int:
    import redis

    import social_scoring
    from kades import devservices
    from kades.runtime import Context
    from kades.settings import Settings
    from kades.simulate_social import simulate_social
    config = Settings.from_env()
    redis_url = config.redis_url.rsplit("/", 1)[0] + "/" + os.environ.get("KADES_EVAL_REDIS_DB", "12")
    ctx = Context("sentiment-analysis", settings=dataclasses.replace(config, redis_url=redis_url))
    counts: Counter = Counter()
    posts = 0
    with devservices.services_for(config):  # stops what it had to start
        client = redis.Redis.from_url(redis_url)
        for seed in SEEDS:
            for key in client.scan_iter("kades:sentiment:*", count=1000):  # only our own keys
                client.delete(key)
            sim = simulate_social(seed=seed, minutes=40)
            posts += len(sim.posts)
            social_scoring.tally(social_scoring.run(sim, ctx), sim.labels, counts)
    print(f"\nanomalies on {len(SEEDS)} social simulations (40 min, 5 tokens, one campaign each; "
          f"{posts} posts; a flag counts inside its campaign's window + 60 s)")
    print(f"  {'kind':<24}{'precision':>10}{'recall':>8}{'flags':>7}{'campaigns':>11}")
    for kind, (precision, recall, flags, labelled) in social_scoring.figures(counts).items():
        print(f"  {kind:<24}{precision:>10.2f}{recall:>8.2f}{flags:>7}{labelled:>11}")
    return 0


def main() -> int:
    sentiment_section()
    return detector_section()


if __name__ == "__main__":
    sys.exit(main())
