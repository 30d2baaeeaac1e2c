"""Per-token sentiment aggregates over 1 h / 24 h / 7 d, kept in the token's Redis state.

The state (one JSON document per token, see kades.sentiment.function) holds minute buckets
for the last two hours and hour buckets for the last eight days; each bucket is
[posts, positive, neutral, negative, weighted compound sum, weight sum, engagement,
engagement of posts with a known follower count, followers of those posts] (integers but for
the two sums, kept to 6 decimals), and hour buckets carry hashtag counts (TAGS_PER_HOUR:
exact up to 20 tags an hour; past that, what is kept depends on the order posts came in).
Unique authors are Redis HyperLogLogs (PFADD is idempotent, so a redelivered batch changes
nothing), per 5 minutes and per hour.

Windows end at the token's latest post time (`as_of`), not the wall clock: a replayed or
recorded stream gives the same figures as a live one.
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import redis

from kades.keys import SENTIMENT_AUTHORS_1H, SENTIMENT_AUTHORS_5M, SENTIMENT_STATE

TIMEFRAMES_S = {"1h": 3600, "24h": 86_400, "7d": 7 * 86_400}
MINUTES_KEPT = 120
HOURS_KEPT = 8 * 24
# Hashtags an hour keeps per token, as Space-Saving counters (Metwally et al., "Efficient
# computation of frequent and top-k elements in data streams", 2005): when they are all taken,
# a new tag takes the place of the least counted and its count plus one, so a tag that comes
# often enough enters whenever it comes. The top 20 were cut after every batch, and a new tag
# (count 1) was cut every time: past its first 20 tags, an hour's trending list was frozen.
# A tag that took another's place is kept as [count, the count it took over]: what it
# certainly had is the difference, which is what trends (a long tail of tags posted once
# each would otherwise trend at the count of the tail).
TAGS_PER_HOUR = 20
N, POS, NEU, NEG, WSUM, W, ENG, ENG_KNOWN, FOLLOWERS = range(9)
_LABEL_SLOT = {"positive": POS, "neutral": NEU, "negative": NEG}


def _tag_count(kept) -> tuple[int, int]:
    """(count, the count it took over) of a kept hashtag counter (an int: exact)."""
    return (kept, 0) if type(kept) is int else (kept[0], kept[1])


def engagement_of(post: dict) -> int | float:
    counts = post.get("engagement") or {}
    return counts.get("likes", 0) + 2 * counts.get("reposts", 0) + counts.get("replies", 0)


def weight_of(post: dict) -> float:
    """Engagement weighting, damped: a post with 1,000 likes counts ~8x one with none."""
    return 1.0 + math.log1p(engagement_of(post))


def add_post(state: dict, moment: float, post: dict, label: str, compound: float,
             tags: list[str] | tuple = ()) -> None:
    """Count one post (and its hashtags) into the minute and hour buckets of `state`."""
    engagement = engagement_of(post)
    followers = (post.get("author_meta") or {}).get("followers")
    weight = weight_of(post)
    # Counts stay integers and the two sums keep 6 decimals: a token's state is ~300 buckets,
    # encoded and decoded at every batch, and a float's shortest repr is what JSON spends on.
    for name, size in (("m", 60), ("h", 3600)):
        bucket = state.setdefault(name, {}).setdefault(str(int(moment // size)), [0] * 9)
        bucket[N] += 1
        bucket[_LABEL_SLOT[label]] += 1
        bucket[WSUM] = round(bucket[WSUM] + weight * compound, 6)
        bucket[W] = round(bucket[W] + weight, 6)
        bucket[ENG] += engagement
        if followers is not None:
            bucket[ENG_KNOWN] += engagement
            bucket[FOLLOWERS] += followers
    if tags:
        counts = state.setdefault("tags", {}).setdefault(str(int(moment // 3600)), {})
        for tag in tags:
            kept = counts.get(tag)
            if kept is not None:
                counts[tag] = kept + 1 if type(kept) is int else [kept[0] + 1, kept[1]]
            elif len(counts) < TAGS_PER_HOUR:
                counts[tag] = 1
            else:  # all taken: the least counted makes room (TAGS_PER_HOUR)
                least = min(counts, key=lambda each: _tag_count(counts[each])[0])
                over = _tag_count(counts.pop(least))[0]
                counts[tag] = [over + 1, over]


def prune(state: dict) -> None:
    """Drop buckets older than what any window or velocity comparison needs."""
    last = state.get("last")
    if last is None:
        return
    for name, size, kept in (("m", 60, MINUTES_KEPT), ("h", 3600, HOURS_KEPT)):
        oldest = int(last // size) - kept
        buckets = state.get(name, {})
        for key in [k for k in buckets if int(k) <= oldest]:
            del buckets[key]
    oldest_hour = int(last // 3600) - HOURS_KEPT
    tags = state.get("tags", {})
    for key in [k for k in tags if int(k) <= oldest_hour]:
        del tags[key]


def _sum_buckets(buckets: dict, first: int, last: int) -> list[float]:
    total = [0.0] * 9
    for key, bucket in buckets.items():
        if first <= int(key) <= last:
            for i, value in enumerate(bucket):
                total[i] += value
    return total


def _window(state: dict, timeframe: str, end: float, shift_s: int = 0) -> list[float]:
    """Bucket sums of the window ending at `end - shift_s` (1 h from minutes, else hours)."""
    span = TIMEFRAMES_S[timeframe]
    if timeframe == "1h":
        last = int((end - shift_s) // 60)
        return _sum_buckets(state.get("m", {}), last - span // 60 + 1, last)
    last = int((end - shift_s) // 3600)
    return _sum_buckets(state.get("h", {}), last - span // 3600 + 1, last)


def author_keys(token: str, timeframe: str, end: float) -> list[str]:
    if timeframe == "1h":
        last = int(end // 300)
        return [SENTIMENT_AUTHORS_5M.format(token=token, bucket=b) for b in range(last - 11, last + 1)]
    last = int(end // 3600)
    hours = TIMEFRAMES_S[timeframe] // 3600
    return [SENTIMENT_AUTHORS_1H.format(token=token, bucket=b) for b in range(last - hours + 1, last + 1)]


def summarise(token: str, state: dict | None, timeframe: str, unique_authors: int) -> dict:
    """The aggregate of one window: what the API serves and the sentiment reply carries."""
    if timeframe not in TIMEFRAMES_S:
        raise ValueError(f"timeframe must be one of {', '.join(TIMEFRAMES_S)}, not {timeframe!r}")
    state = state or {}
    end = state.get("last")
    if end is None:
        return _empty(token, timeframe)
    now = _window(state, timeframe, end)
    before = _window(state, timeframe, end, shift_s=TIMEFRAMES_S[timeframe])
    hours = TIMEFRAMES_S[timeframe] / 3600
    posts = int(now[N])
    score = now[WSUM] / now[W] if now[W] else 0.0
    tags: dict[str, int] = {}
    first_hour = int(end // 3600) - max(1, int(hours)) + 1
    for hour, counts in state.get("tags", {}).items():
        if int(hour) >= first_hour:
            for tag, kept in counts.items():
                count, over = _tag_count(kept)
                tags[tag] = tags.get(tag, 0) + count - over
    covers_previous = timeframe != "7d"  # eight days of hour buckets: no previous week
    return {
        "token": token, "timeframe": timeframe, "as_of": _rfc3339(end),
        "mentions": posts, "unique_authors": unique_authors,
        "score": round(max(-1.0, min(1.0, score)), 4),
        "label": "positive" if score >= 0.05 else "negative" if score <= -0.05 else "neutral",
        "breakdown": {"positive": int(now[POS]), "neutral": int(now[NEU]),
                      "negative": int(now[NEG])},
        "engagement": {"total": float(now[ENG]),
                       "per_post": round(now[ENG] / posts, 4) if posts else 0.0,
                       "rate": round(now[ENG_KNOWN] / now[FOLLOWERS], 6) if now[FOLLOWERS] else None},
        "trending_hashtags": [{"tag": t, "count": c} for t, c in
                              sorted(tags.items(), key=lambda kv: (-kv[1], kv[0]))[:10] if c > 0],
        "velocity": {"mentions_per_hour": round(posts / hours, 4),
                     "previous_mentions": int(before[N]) if covers_previous else None,
                     "change": (round(posts / before[N], 4) if covers_previous and before[N]
                                else None)},
    }


def _empty(token: str, timeframe: str) -> dict:
    return {"token": token, "timeframe": timeframe, "as_of": None, "mentions": 0,
            "unique_authors": 0, "score": 0.0, "label": "neutral",
            "breakdown": {"positive": 0, "neutral": 0, "negative": 0},
            "engagement": {"total": 0.0, "per_post": 0.0, "rate": None},
            "trending_hashtags": [],
            "velocity": {"mentions_per_hour": 0.0, "previous_mentions": None, "change": None}}


def _rfc3339(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def read_sentiment(client: redis.Redis, token: str, timeframe: str) -> dict:
    """The token's aggregate over `timeframe` ("1h", "24h" or "7d"), as the API serves it.

    ValueError for another timeframe; redis errors propagate (the API answers 503).
    """
    if timeframe not in TIMEFRAMES_S:
        raise ValueError(f"timeframe must be one of {', '.join(TIMEFRAMES_S)}, not {timeframe!r}")
    raw = client.get(SENTIMENT_STATE.format(token=token))
    state = json.loads(raw) if raw else None
    if not state or state.get("last") is None:
        return _empty(token, timeframe)
    authors = client.pfcount(*author_keys(token, timeframe, state["last"]))
    summary = summarise(token, state, timeframe, int(authors))
    if timeframe == "1h" and not authors and summary["mentions"]:
        # its 5-minute buckets gone (kept 2 h: sentiment.function.AUTHORS_5M_TTL_S): the two
        # hour buckets the window overlaps, at most its mentions (an upper bound)
        hours = [SENTIMENT_AUTHORS_1H.format(token=token, bucket=int(state["last"] // 3600) - back)
                 for back in (1, 0)]
        summary["unique_authors"] = min(summary["mentions"], int(client.pfcount(*hours)))
    return summary
