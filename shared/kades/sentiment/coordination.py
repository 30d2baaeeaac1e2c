"""Coordinated promotion: many near-duplicate posts from new or low-follower accounts.

Paid shilling before a pump looks like one template posted, lightly varied, by many fresh
accounts within minutes. Each post (not a repost) from a *candidate* account (new, or
few followers and of unknown age, or unknown) is reduced to a bottom-k sketch of its word-bigram shingles (stable CRC-32 hashes,
so replicas agree); it is compared with the token's recent candidate posts, and a cluster of
at least `min_authors` distinct authors whose posts resemble it (estimated Jaccard ≥
`similarity`) within `window_s` is flagged, once per window unless the cluster doubles.
Posts of fewer than `min_shingles` bigrams are too short to tell a template from chance.

>>> detector = CoordinatedPromotion()
>>> template = "huge news {} dont miss $PEPE2 next 100x gem aping now before CEX listing"
>>> flags = [detector.learn_one(60.0 + i, f"p{i}", f"fresh{i}", template.format(i), True)
...          for i in range(6)]
>>> [f["authors_count"] for f in flags if f]
[5]
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from typing import ClassVar

from kades.sentiment.extraction import visible

_NOISE = re.compile(r"https?://\S+|@\w+|\d+")
_WORDS = re.compile(r"[\w$#']+")
NEW_ACCOUNT_DAYS = 30
LOW_FOLLOWERS = 500


_REPOST = re.compile(r"\s*RT @\w+")


def is_candidate(author_meta: dict | None) -> bool:
    """New accounts, or low-follower ones whose age is unknown, or unknown ones: the ones
    paid campaigns are run from. A known account older than NEW_ACCOUNT_DAYS is none, however
    few its followers: most ordinary users have under 500, and five of them retweeting one
    headline were a coordinated promotion."""
    if not author_meta:
        return True
    age = author_meta.get("account_age_days")
    followers = author_meta.get("followers")
    if age is not None:
        return age < NEW_ACCOUNT_DAYS
    return followers is None or followers < LOW_FOLLOWERS


def is_repost(text: str) -> bool:
    """A retweet ("RT @author: ..."): passed on, not written; copies of it are no template."""
    return bool(_REPOST.match(text))


def sketch(text: str, k: int = 24) -> list[int]:
    """The k smallest CRC-32 hashes of the text's word bigrams (numbers and links dropped)."""
    words = _WORDS.findall(_NOISE.sub(" ", visible(text).lower()))
    shingles = {zlib.crc32(f"{a} {b}".encode()) for a, b in zip(words, words[1:])}
    return sorted(shingles)[:k]


def similarity(left: list[int], right: list[int], k: int = 24) -> float:
    """Estimated Jaccard similarity of two bottom-k sketches."""
    if not left or not right:
        return 0.0
    union = sorted(set(left) | set(right))[:k]
    both = set(left) & set(right)
    return sum(1 for h in union if h in both) / len(union)


@dataclass
class CoordinatedPromotion:
    similarity: float = 0.6
    min_authors: int = 5
    min_shingles: int = 8          # shorter posts collide by chance ("gm $X 🚀")
    window_s: float = 900.0
    max_recent: int = 300
    recent: list = field(default_factory=list)  # [time, post id, author, sketch]
    flagged_until: float = -1.0
    flagged_size: int = 0
    LEARNED: ClassVar[tuple[str, ...]] = ("recent", "flagged_until", "flagged_size")

    def learn_one(self, moment_s: float, post_id: str, author: str, text: str,
                  candidate: bool) -> dict | None:
        """Remember a candidate post; a flag when it completes a large enough cluster."""
        if not candidate:
            return None
        mine = sketch(text)
        if len(mine) < self.min_shingles:
            return None
        horizon = moment_s - self.window_s
        self.recent = [r for r in self.recent if r[0] >= horizon]
        matches = []
        for when, other_id, other_author, other_sketch in self.recent:
            if when <= moment_s + self.window_s:
                score = similarity(mine, other_sketch)
                if score >= self.similarity:
                    matches.append((other_id, other_author, score))
        self.recent.append([moment_s, post_id, author, mine])
        del self.recent[:-self.max_recent]
        authors = {author} | {m[1] for m in matches}
        size = len(authors)
        if size < self.min_authors:
            return None
        if moment_s <= self.flagged_until and size < 2 * self.flagged_size:
            return None
        self.flagged_until, self.flagged_size = moment_s + self.window_s, size
        mean = sum(m[2] for m in matches) / len(matches)
        return {"authors_count": size, "posts_count": len(matches) + 1,
                "post_ids": ([m[0] for m in matches] + [post_id])[-20:],
                "authors": sorted(authors)[:20], "mean_similarity": round(mean, 4),
                "window_s": self.window_s,
                "score": round(min(1.0, 0.5 + 0.5 * mean * min(1.0, size / (4 * self.min_authors))), 4)}

    def to_state(self) -> dict:
        return {name: getattr(self, name) for name in self.LEARNED}

    @classmethod
    def from_state(cls, state: dict | None) -> "CoordinatedPromotion":
        return cls(**{k: v for k, v in (state or {}).items() if k in cls.LEARNED})
