"""Sentiment quality: the trained model (shipped in the package, `make model`) beside the
crypto lexicon model and plain VADER, measured in the same run, and precision/recall of
bursts, shifts and coordination on seeded social simulations.

Data: the labelled corpora of ../shared/data/social (tests/sentiment/sentiment_corpora.py):
- held-out thirds: never trained on, scored by the shipped model;
- cross-corpus: a model trained (as `make model` trains, with the shipped model's neutral
  band) on the other corpora only, tested on the whole corpus left out, each in turn;
- in-sample: the shipped model on what it was trained on, apart, for scale;
the hand-labelled crypto posts of tests/sentiment/crypto_sentences.py (the lexicon was tuned
on them, the trained model was not), kades.simulate.social, and for the anomalies' cost on
real posts StockTwits' $ETH.X stream (tests/sentiment/real_stream.py).
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/sentiment"))
sys.path.insert(0, str(ROOT / "tests"))  # shared_material

import real_stream  # noqa: E402
from shared_material import absent  # noqa: E402

LABELS = ("negative", "neutral", "positive")
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
    from kades.sentiment.model import PlainVader, lexicon_model
    from kades.sentiment.model_trained import default_model
    models = {"plain VADER (±0.05)": PlainVader(), "crypto lexicon (KADES)": lexicon_model(),
              "trained (shipped)": default_model()}
    texts, gold = [s[0] for s in SENTENCES], [s[1] for s in SENTENCES]
    compare("crypto posts written as tests (slang, emojis, negation, sarcasm)", texts, gold, models)
    import sentiment_corpora
    reason = absent(sentiment_corpora.SOCIAL, plain_clone="leaves these corpora out")
    if reason:
        print(f"\nlabelled social corpora: skipped, {reason}")
        return
    import train_sentiment
    corpora = {name: sentiment_corpora.load(name) for name in sentiment_corpora.NAMES}
    shipped = models["trained (shipped)"]
    print("\nmacro-F1 per corpus, over the classes it has (on a two-class corpus a neutral "
          "answer is a miss)")
    train_sentiment.report(shipped, corpora)
    cross_corpus(corpora, shipped.neutral_band, models)
    rows = corpora["pyfin_tweets"].part(held_out=True)[0]
    for name, model in models.items():
        began = time.perf_counter()
        for text in rows:
            model.score(text)
        print(f"  scoring alone, {name}: {len(rows) / (time.perf_counter() - began):,.0f} "
              "posts/s (one core, pyfin tweets)")


def cross_corpus(corpora: dict, band: float, baselines: dict) -> None:
    """Train on every corpus but one (training thirds, plus the lexicon posts), test on the
    one left out, whole: a corpus nobody tuned on, as the crypto posts of production are."""
    import train_sentiment
    print(f"\ncross-corpus: trained without the corpus, tested on all of it (band {band})")
    print(f"  {'left out':<24}{'n':>6}{'trained':>9}{'VADER':>8}{'lexicon':>9}")
    for left_out, corpus in corpora.items():
        parts = {name: other.part(held_out=False) for name, other in corpora.items()
                 if name != left_out}
        model = train_sentiment.fit({**parts, "crypto_lexicon": train_sentiment.lexicon_posts()},
                                    neutral_band=band)
        texts, gold = list(corpus.texts), list(corpus.labels)
        figures = [train_sentiment.macro_f1(m, texts, gold, corpus.classes)
                   for m in (model, baselines["plain VADER (±0.05)"],
                             baselines["crypto lexicon (KADES)"])]
        print(f"  {left_out:<24}{len(texts):>6}" + "".join(f"{f:>9.3f}" for f in figures),
              flush=True)


def detector_section() -> int:
    import redis

    import social_scoring
    from kades.dev import services as devservices
    from kades.runtime import Context
    from kades.settings import Settings
    from kades.simulate.social import simulate_social
    config = Settings.from_env()
    redis_url = config.redis_url.rsplit("/", 1)[0] + "/" + os.environ.get("KADES_EVAL_REDIS_DB", "12")
    ctx = Context("sentiment-analysis", settings=dataclasses.replace(config, redis_url=redis_url))
    counts: Counter = Counter()
    posts = 0
    with devservices.services_for(config):  # stops what it had to start
        client = redis.Redis.from_url(redis_url)
        for seed in SEEDS:
            forget_sentiment(client)
            sim = simulate_social(seed=seed, minutes=40)
            posts += len(sim.posts)
            social_scoring.tally(social_scoring.run(sim, ctx), sim.labels, counts)
        print(f"\nanomalies on {len(SEEDS)} social simulations (40 min, 5 tokens, one campaign "
              f"each; {posts} posts; a flag counts inside its campaign's window + 60 s)")
        print(f"  {'kind':<24}{'precision':>10}{'recall':>8}{'flags':>7}{'campaigns':>11}")
        for kind, (precision, recall, flags, labelled) in social_scoring.figures(counts).items():
            print(f"  {kind:<24}{precision:>10.2f}{recall:>8.2f}{flags:>7}{labelled:>11}")
        if (reason := absent(real_stream.STREAM, plain_clone="leaves it out")):
            print(f"\nalerts on a real stream: skipped, {reason}")
        else:
            real_stream_section(ctx, client)
        forget_sentiment(client)  # (the real stream's hour HyperLogLogs would live 9 days)
    return 0


def forget_sentiment(client) -> None:
    """Delete sentiment-analysis's keys, only those, in the eval's Redis database (of the
    Redis `make run` shares)."""
    for key in client.scan_iter("kades:{sentiment}:*", count=1000):
        client.delete(key)


def real_stream_section(ctx, client) -> None:
    """The handler on StockTwits' $ETH.X stream, an event per 15 minutes of posts (the alerts
    are those of one a minute, at a quarter of the cost): alerts per token-day."""
    forget_sentiment(client)
    replay = real_stream.replay(ctx, batch_s=900.0)
    print(f"\nalerts on a real stream, not labelled (every alert counted; budget 1 per token-day): "
          f"StockTwits $ETH.X, {replay.days:.1f} days")
    for token in replay.busy_tokens():
        rates = replay.per_token_day(token)
        print(f"  {token:<8}{replay.posts_by_token[token]:>7} posts  "
              + (", ".join(f"{kind} {rate:.2f}" for kind, rate in rates.items()) or "no alert"))
    every = Counter(anomaly["anomaly_type"] for anomaly in replay.anomalies)
    print(f"  all {len(replay.posts_by_token)} tokens named: {dict(every) or 'no alert'}")
    split = "2022-07-10"  # risk.SENTIMENT_FULL_AUTHORS was set on the days before it
    for part, pick in (("in-sample, to 07-09", lambda t: t < split),
                       ("held out, from 07-10", lambda t: t >= split)):
        print(f"  token-hours at risk >= 0.7 from sentiment alone, {part}: "
              f"{sum(1 for _, hour in replay.alarmed_hours() if pick(hour))} "
              f"(of {len({(r['token'], r['time'][:13]) for r in replay.reports if pick(r['time'])})} reported)")
    days = Counter(post["time"][:10] for post in real_stream.posts())
    busiest = sorted(days, key=days.get, reverse=True)[:4]
    for anomaly in replay.anomalies:
        if anomaly["token"] == real_stream.TOKEN:
            day = anomaly["time"][:10]
            print(f"  {anomaly['time']} {anomaly['anomaly_type']} ({days[day]} posts that day"
                  + (", one of the 4 busiest)" if day in busiest else ")"))


def main() -> int:
    sentiment_section()
    return detector_section()


if __name__ == "__main__":
    sys.exit(main())
