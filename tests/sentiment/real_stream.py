"""A real social stream replayed through sentiment-analysis: what its alerts cost a user.

The detectors' precision and recall come from simulations (social_scoring); this says how often
they speak on real posts nobody labelled for them. ../shared/data/social/stocktwits_eth is 29
days of StockTwits' `$ETH.X` stream (2022-06-25 to 2022-07-24, 14,423 unique posts). It is not
calm: ETH rallied on news of the Merge's date (2022-07-14 onwards) and the stream's busiest
days are 07-16 to 07-19. So every alert on it is counted, true or not: an upper bound on the
false alerts per token-day. Nothing was tuned on it (the detectors' parameters were set on the
simulator before it was first run, 2026-12-01).

The posts are sent as a scraper polling every `batch_s` would send them (one SOCIAL_POSTS event
per window with posts, tracking nothing: cashtags become symbol keys such as `$ETH`), through
the real handler on a real Redis, in time order. The detectors see each token's posts in post
time whatever the batches (the reorder buffer), so the alerts do not depend on `batch_s`
(60 s, 15 min and 1 h batches gave the same 12 alerts on the whole stream; a test checks
15 min against 1 h on the busiest days); larger batches only cost less.
"""
from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

from kades.events.catalogue import ANOMALY_DETECTED, SENTIMENT_SCORED
from kades.runtime import Context
from kades.sentiment import function as sentiment
from kades.simulate.social import post_events
from shared_material import DATA

STREAM = DATA / "social/stocktwits_eth/message.csv"
TOKEN = "$ETH"          # the stream's own token, as the handler keys it
# A token is counted over the days it was talked about at least this much (a coin named in
# a few ETH posts has no stream of its own here).
MIN_POSTS = 200


def posts() -> list[dict]:
    """The stream's unique posts in time order, as a scraper would send them."""
    seen, found = set(), []
    with open(STREAM, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["message_id"] in seen or not row["body"].strip():
                continue
            seen.add(row["message_id"])
            found.append({"id": row["message_id"], "platform": "stocktwits",
                          "author": row["username"], "text": row["body"][:4000],
                          "time": row["created_at"],
                          "engagement": {"likes": int(row["likes"] or 0)}})
    return sorted(found, key=lambda post: (post["time"], post["id"]))


@dataclass
class Replay:
    """What the handler raised on the stream."""

    anomalies: list[dict] = field(default_factory=list)
    reports: list[dict] = field(default_factory=list)  # the sentiment.scored data sent
    posts_by_token: Counter = field(default_factory=Counter)
    days: float = 0.0

    def per_token_day(self, token: str = TOKEN) -> dict[str, float]:
        """Alerts per day of the stream, by kind, for one token."""
        counts = Counter(a["anomaly_type"] for a in self.anomalies if a["token"] == token)
        return {kind: round(counts[kind] / self.days, 3) for kind in sorted(counts)}

    def alarmed_hours(self, threshold: float = 0.7) -> set[tuple[str, str]]:
        """(token, hour) of the reports whose risk, from sentiment alone, reaches `threshold`
        (the default alert threshold): what this stream's sentiment would alert on."""
        from kades.risk.function import sentiment_evidence
        from kades.risk.scoring import absorb, risk_at
        hours = set()
        for report in self.reports:
            state = absorb(None, sentiment_evidence(report))
            if risk_at(state, report["token"], state["latest"])["score"] >= threshold:
                hours.add((report["token"], report["time"][:13]))
        return hours

    def busy_tokens(self) -> list[str]:
        return [token for token, n in self.posts_by_token.most_common() if n >= MIN_POSTS]


def _moment(post: dict) -> datetime:
    return datetime.fromisoformat(post["time"].replace("Z", "+00:00"))


def events_of(stream: list[dict], *, batch_s: float) -> list:
    """SOCIAL_POSTS events of `stream`, one per `batch_s` window with posts, in time order."""
    start = _moment(stream[0]).replace(second=0, tzinfo=timezone.utc)
    return post_events(stream, [], seed=0, start=start, batch_s=batch_s,
                       source="/kades/replay/stocktwits-eth")


def replay(ctx: Context, *, batch_s: float = 60.0, since: str = "", until: str = "~") -> Replay:
    """Every anomaly sentiment-analysis raises on the stream from `since` to before `until`
    (RFC 3339 prefixes; by default all of it), and how many posts each token had. Redis
    under ctx: cleared by the caller."""
    stream = [post for post in posts() if since <= post["time"] < until]
    start, end = (_moment(stream[index]) for index in (0, -1))
    ctx = Context(ctx.name, settings=ctx.settings)  # a fresh process: nothing cached
    result = Replay(days=(end - start).total_seconds() / 86400.0)
    for event in events_of(stream, batch_s=batch_s):
        for reply in sentiment.handle_posts(event, ctx) or []:
            if reply.type == ANOMALY_DETECTED:
                result.anomalies += reply.data["anomalies"]
            elif reply.type == SENTIMENT_SCORED:
                result.reports.append(reply.data)
    for post in stream:
        for token in sentiment.extract_tokens(post["text"], sentiment.Directory.of([]), None):
            result.posts_by_token[token] += 1
    return result
