"""The labelled social corpora of ../shared/data/social, read the same way by `make model`,
`make eval` and the tests: one label set (negative / neutral / positive), duplicates dropped,
and a fixed held-out third of every corpus.

The held-out third is chosen by the text's template (crc32 of it, mod 3): the text lowercased
without its links, tickers, handles, hashtags, words with a digit and punctuation. So a text
repeated in a corpus (StockTwits reposts) never sits on both sides, nor do a bot's posts that
differ only in a ticker, a figure or punctuation ("$AAPL up 3.2% ..." beside "$MSFT up 1.1%
..."): split by the text
itself, 323 of pyfin's 2,886 held-out posts had such a twin in the training part (151 of
the news set's 3,845, 109 of StockTwits' 2,201), and the held-out figures were the model's on
partly seen posts. The split is the same on every machine without a seed.
"""
from __future__ import annotations

import csv
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from shared_material import DATA

SOCIAL = DATA / "social"


@dataclass(frozen=True)
class Corpus:
    name: str
    path: Path          # the file(s) it is read from, for `absent()`
    classes: tuple      # the labels it has: three, or only the two polar ones
    what: str           # one line for reports
    licence: str
    texts: tuple = ()
    labels: tuple = ()

    def part(self, held_out: bool) -> tuple[list[str], list[str]]:
        """(texts, labels) of the held-out third, or of the other two thirds."""
        keep = [i for i, text in enumerate(self.texts) if is_held_out(text) == held_out]
        return [self.texts[i] for i in keep], [self.labels[i] for i in keep]


_LEFT_OUT = re.compile(r"https?://\S+|[$#@][^\s$#@]+|\S*\d\S*")
_PUNCTUATION = re.compile(r"[^\w\s']")


def template(text: str) -> str:
    """The text lowercased without its links, tickers, handles, hashtags, words with a digit
    (figures, codes) and punctuation: what a bot's posts share."""
    return " ".join(_PUNCTUATION.sub(" ", _LEFT_OUT.sub(" ", text.lower())).split())


def is_held_out(text: str) -> bool:
    """By its template; a text with no words left ("$ETH.X", a link) by itself, as before:
    they would all have been one template, and all held out."""
    key = template(text) or " ".join(text.lower().split())
    return zlib.crc32(key.encode()) % 3 == 0


def _rows(path: Path, text: str, label: str, labels: dict[str, str]) -> tuple[tuple, tuple]:
    seen, texts, gold = set(), [], []
    with open(path, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            mapped = labels.get(row[label])
            key = " ".join(row[text].lower().split())
            if mapped is None or not key or key in seen:  # not a class, empty, or a repeat
                continue
            seen.add(key)
            texts.append(row[text])
            gold.append(mapped)
    return tuple(texts), tuple(gold)


# (name, file, text column, label column, {raw label: label}, classes, what, licence)
_SOURCES = (
    ("pyfin_tweets", "pyfin_tweets/labeled_tweets.csv", "text", "label",
     {"positive": "positive", "neutral": "neutral", "negative": "negative"},
     ("negative", "neutral", "positive"),
     "finance tweets about stocks, hand-labelled (\"uncertain\" left out)", "none stated"),
    ("twitter_financial_news", "twitter_financial_news/sent_train.csv", "text", "label",
     {"0": "negative", "1": "positive", "2": "neutral"}, ("negative", "neutral", "positive"),
     "finance-news tweets about stocks, human-labelled", "MIT"),
    ("stocktwits_eth", "stocktwits_eth/message.csv", "body", "tag",
     {"Bullish": "positive", "Bearish": "negative"}, ("negative", "positive"),
     "$ETH.X StockTwits posts tagged Bullish/Bearish by their posters (untagged left out)",
     "none stated"),
    ("surge_crypto_reddit", "surge_crypto_reddit/sentiment.csv", "Comment Text", "Sentiment",
     {"Positive": "positive", "Negative": "negative"}, ("negative", "positive"),
     "crypto Reddit comments, human-labelled positive/negative", "MIT"),
)
NAMES = tuple(source[0] for source in _SOURCES)


def corpus_paths() -> dict[str, Path]:
    return {name: SOCIAL / file for name, file, *_ in _SOURCES}


def load(name: str) -> Corpus:
    """One corpus, read whole; `twitter_financial_news` joins its train and valid files."""
    for source_name, file, text, label, labels, classes, what, licence in _SOURCES:
        if source_name != name:
            continue
        path = SOCIAL / file
        texts, gold = _rows(path, text, label, labels)
        if name == "twitter_financial_news":  # the valid file too: the third is ours
            more_texts, more_gold = _rows(path.with_name("sent_valid.csv"), text, label, labels)
            seen = {" ".join(t.lower().split()) for t in texts}
            extra = [(t, g) for t, g in zip(more_texts, more_gold)
                     if " ".join(t.lower().split()) not in seen]
            texts += tuple(t for t, _ in extra)
            gold += tuple(g for _, g in extra)
        return Corpus(name, path, classes, what, licence, texts, gold)
    raise KeyError(name)
