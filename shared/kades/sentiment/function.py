"""sentiment-analysis: social post batches → per-token aggregates, sentiment replies, anomalies.

For each batch: score every post (offline, model_trained.default_model), find the tokens each
concerns, then update every concerned token's state in one atomic compare-and-set (kades.runtime.state):
aggregates, burst, shift and coordination detectors. The state remembers the last batches it
took in, so a batch redelivered after a crash (its dedup mark lost) changes nothing. Unique
authors go to HyperLogLogs, which ignore repeats by nature.

Replies: one `ai.kades.sentiment.scored.v1` per token (its 1 h aggregate; the first is the
reply, the rest go to the sink) and one `ai.kades.anomaly.detected.v1` per token with its
anomalies (in parts when over the size limit, kades.events.chunking).

Batches arrive in no order, so each token's posts pass a reorder buffer (kades.runtime.reorder)
before the detectors see them, in post time, once each; the `stream-flush` PingSource has the
posts of tokens that went quiet analysed after the idle timeout.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import redis

from kades.errors import BadRequestError, Problem
from kades.events.catalogue import (ANOMALY_DETECTED, PING, SENTIMENT_SCORED, SOCIAL_POSTS,
                                    derived_id, joined, new_event)
from kades.events.chunking import per_token_replies
from kades.events.envelope import CloudEvent
from kades.keys import (SENTIMENT_AUTHORS_1H, SENTIMENT_AUTHORS_5M, SENTIMENT_DIRECTORY,
                        SENTIMENT_STATE, SENTIMENT_WAITING, outbox_key)
from kades.metrics import LATE_INPUTS
from kades.runtime import Context, Function
from kades.runtime.bulkhead import PASSED_ON, count_failures, log_failure, until_encoded
from kades.runtime.reorder import FLUSH_BATCH, ReorderBuffer, quiet_keys
from kades.runtime.state import StateStore, Waiting
from kades.runtime.ttlcache import TtlCache
from kades.sentiment import aggregates
from kades.sentiment.coordination import CoordinatedPromotion, is_candidate, is_repost
from kades.sentiment.detectors import MentionBurst, SentimentShift
from kades.sentiment.extraction import Directory, extract_tokens, hashtags
from kades.sentiment.model import Score
from kades.sentiment.model_trained import default_model
from kades.solana.programs import USD1, USDC, USDT, WSOL

DIRECTORY_CACHE_S = 30.0
STATE_TTL_S = 9 * 24 * 3600
AUTHORS_TTL_S = 9 * 24 * 3600  # the hour buckets: the 7-day window's, and a day's margin
# The 5-minute buckets serve the 1-hour window of the token's newest post only: kept 9 days
# too, a busy token held 2,592 of them (8-30 MB) to read 12. A window older than this reads
# its hour buckets instead (aggregates.read_sentiment).
AUTHORS_5M_TTL_S = 2 * 3600
EVENTS_REMEMBERED = 32
DETECTOR = "sentiment"


@dataclass(frozen=True)
class Local:
    """sentiment-analysis's per-process state, one per Context (`ctx.local(start)`)."""

    states: StateStore    # the states it last committed, cached
    directory: TtlCache   # the token directory, read from Redis at most every 30 s


def start(ctx: Context) -> Local:
    return Local(StateStore(ttl_s=STATE_TTL_S, max_attempts=8),
                 TtlCache(ttl_s=DIRECTORY_CACHE_S, max_entries=1))


def track_token(client: redis.Redis, token: str, *, symbol: str | None = None,
                name: str | None = None) -> None:
    """Make a token's symbol and name recognisable in posts (seen by every replica in 30 s)."""
    client.hset(SENTIMENT_DIRECTORY, token, json.dumps({"symbol": symbol, "name": name}))


def load_directory(client: redis.Redis, cache: TtlCache) -> Directory:
    """The tracked tokens' directory, as `cache` (Local.directory) last read it."""
    def read() -> Directory:
        return Directory.of([{"token": token.decode(), **json.loads(raw)}
                             for token, raw in client.hgetall(SENTIMENT_DIRECTORY).items()])
    return cache.get_or_load(SENTIMENT_DIRECTORY, read)


def epoch_s(text: str) -> float:
    moment = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    if moment.tzinfo is None:
        raise ValueError(f"time without a UTC offset: {text!r}")
    return moment.timestamp()


# Distinct tokens one batch may name: each is a state in the batch's one atomic commit and a
# reply event (10,000 took 1.6 s; a batch of 10,000 posts of 32 cashtags each would name
# 320,000, block Redis in one script and answer with as many events).
MAX_TOKENS_PER_BATCH = 2_000


def score_posts(posts: list[dict], directory: Directory) -> dict[str, list[tuple]]:
    """Per token, its posts in time order as (epoch s, post, score, hashtags). A 400 names
    every post with an invalid time, and a batch naming more than MAX_TOKENS_PER_BATCH
    tokens."""
    model = default_model()
    groups: dict[str, list[tuple]] = {}
    problems = []
    for index, post in enumerate(posts):
        try:
            moment = epoch_s(post["time"])
        except ValueError as error:
            problems.append(Problem(f"data.posts[{index}].time", str(error)))
            continue
        tokens = extract_tokens(post["text"], directory, post.get("tokens"))
        if not tokens:
            continue
        if len(tokens) > 1:  # (what `detect` needs to know of the post's other tokens)
            post = {**post, "co_named": len(tokens)}
        entry = (moment, post, model.score(post["text"]), hashtags(post["text"]))
        for token in tokens:
            groups.setdefault(token, []).append(entry)
    if len(groups) > MAX_TOKENS_PER_BATCH:
        problems.append(Problem("data.posts", f"the posts name {len(groups):,} tokens; a batch "
                                f"may name {MAX_TOKENS_PER_BATCH:,} at most: send fewer posts"))
    if problems:
        raise BadRequestError("invalid posts", problems)
    for series in groups.values():
        series.sort(key=lambda entry: entry[0])
    return groups


SEEN_KEPT = 5_000  # post keys a token remembers (its last two hours of posts at most)
# The chains' and markets' own coins: a shill template names its coin "on $SOL", and SOL got
# the campaign's coordinated_promotion too. Named beside another token, no campaign's.
BASE_ASSETS = frozenset({"$SOL", "$BTC", "$ETH", "$USDC", "$USDT", "$USD1", WSOL, USDC, USDT, USD1})


def post_key(post: dict) -> str:
    """A post's identity: its id on its platform, and in its channel where the source names
    one (a Discord post with a Telegram post's id was dropped as its copy; so was a message of
    another Telegram chat, whose ids are small numbers per chat). Without one, as before."""
    channel = post.get("channel")
    return f"{post['platform']}:{post['id']}" if channel is None else \
        f"{post['platform']}:{channel}:{post['id']}"


def author_key(post: dict) -> str:
    return f"{post['platform']}:{post['author']}"


def seen_key(post: dict) -> str:
    """What a token's `seen` map keeps of a post: 12 hex digits of its key, a short JSON key
    for a map read and written at every batch."""
    return hashlib.blake2b(post_key(post).encode(), digest_size=6).hexdigest()


def take_in(state: dict, series: list[tuple], marker: str) -> bool:
    """Add the batch's posts to the token's aggregates (time buckets: any order gives the same
    sums) and to the posts it has seen; False, changing nothing, when `marker` (the batch)
    was taken in before."""
    if marker in state.get("events", ()):
        return False
    seen = state.setdefault("seen", {})
    for moment, post, score, tags in series:
        aggregates.add_post(state, moment, post, score.label, score.compound, tags)
        state["last"] = max(state.get("last") or moment, moment)
        seen[seen_key(post)] = int(moment)
    state["events"] = [*state.get("events", ()), marker][-EVENTS_REMEMBERED:]
    aggregates.prune(state)
    # as long as the minute buckets, SEEN_KEPT at most: taken from the front, the oldest
    # taken in (posts come about in time order; one older behind it goes a little later)
    horizon = state["last"] - aggregates.MINUTES_KEPT * 60 if "last" in state else None
    for key in list(seen):
        if len(seen) <= SEEN_KEPT and (horizon is None or seen[key] >= horizon):
            break
        del seen[key]
    return True


def unseen(series: list[tuple], waiting: dict, seen: dict | None = None) -> list[tuple]:
    """The posts of `series` the token has not counted, each once: neither in its reorder
    buffer nor among the posts it saw in the last two hours of post time (`seen`). Two
    overlapping scrapes counted their common posts twice once the overlap passed the reorder
    buffer's 30 s; a copy of a post older than two hours is counted again."""
    known = {entry[1] for entry in waiting.get("pending", ())}
    known.update(entry[1] for entry in waiting.get("recent", ()))
    seen = seen or {}
    fresh, taken = [], set()
    for entry in series:
        key = post_key(entry[1])
        if key not in known and key not in taken and seen_key(entry[1]) not in seen:
            taken.add(key)
            fresh.append(entry)
    return fresh


def detect(token: str, state: dict, series: list[tuple]) -> list[dict]:
    """Run the detectors over `series`, in post time (the reorder buffer's output); their
    anomalies. The detectors' states in `state` move on."""
    burst = MentionBurst.from_state(state.get("burst"))
    shift = SentimentShift.from_state(state.get("shift"))
    coordination = CoordinatedPromotion.from_state(state.get("coordination"))
    anomalies = []
    for moment, post, score, tags in series:
        found = [("mention_burst", burst.learn_one(moment, author_key(post))),
                 ("sentiment_shift", shift.learn_one(score.compound, moment)),
                 ("coordinated_promotion", coordination.learn_one(
                     moment, post_key(post), author_key(post), post["text"],
                     is_candidate(post.get("author_meta")) and not is_repost(post["text"])
                     and not (token in BASE_ASSETS and post.get("co_named", 1) > 1)))]
        anomalies += [_anomaly(token, kind, post, flag) for kind, flag in found if flag]
    state.update(burst=burst.to_state(), shift=shift.to_state(),
                 coordination=coordination.to_state())
    return anomalies


def _anomaly(token: str, kind: str, post: dict, flag: dict) -> dict:
    details = {k: v for k, v in flag.items() if k != "score"}
    details.setdefault("post_ids", [post_key(post)])  # named as coordination's are
    return {"token": token, "time": _utc(epoch_s(post["time"])), "anomaly_type": kind,
            "score": max(0.0, min(1.0, flag["score"])), "detector": f"{DETECTOR}.{kind}",
            "details": details}


def analyse_batch(client: redis.Redis, groups: dict[str, list[tuple]], marker: str, *,
                  store: StateStore, buffer: ReorderBuffer, now_s: float, outbox: str | None = None,
                  flush: bool = False) -> tuple[dict[str, dict], list[dict]]:
    """Take each token's posts into its reorder buffer and analyse what it releases, every
    token committed atomically; (states by token, anomalies). Under `outbox` the anomalies
    are those of the first attempt of the event that committed: a retry after the sink
    failed sends them again instead of finding the posts counted and none left. A `flush`
    keeps its tokens there too: its retry, finding them no longer waiting, gets their states
    back to send their scores again."""
    tokens = list(groups)
    keys = [SENTIMENT_STATE.format(token=t) for t in tokens]
    late, failed = [0], [0]
    reset: set[str] = set()  # tokens whose state did not encode: afresh at every compute

    def compute(states):
        late[0] = failed[0] = 0
        new_states, anomalies = [], []
        for token, state in zip(tokens, states):
            if token in reset:
                failed[0] += 1
                new_states.append({"reorder": {}})
                continue
            try:
                state = dict(state or {})
                waiting = state.pop("reorder", {})
                series = groups[token]
                if not take_in(state, unseen(series, waiting, state.get("seen")), marker):
                    series = []  # the same batch again
                ready, too_late = buffer.admit(waiting, [
                    (moment, post_key(post), [post, score.label, score.compound, tags])
                    for moment, post, score, tags in series], now_s=now_s)
                found = detect(token, state, [
                    (moment, post, Score(label, compound, 0.0), tags)
                    for moment, _, (post, label, compound, tags) in ready])
            except PASSED_ON:
                raise
            except Exception:  # noqa: BLE001 - a bulkhead (kades.runtime.bulkhead): afresh
                log_failure("sentiment-analysis", token)
                failed[0] += 1
                new_states.append({"reorder": {}})
                continue
            late[0] += len(too_late)
            anomalies += found
            new_states.append({**state, "reorder": waiting})
        return new_states, (anomalies, tokens if flush else [])

    # the tokens with posts waiting listed in the commit's own script: no round trip more
    listing = Waiting(SENTIMENT_WAITING, tokens,
                      lambda state: ReorderBuffer.oldest_wait_s(state["reorder"]))
    committed: dict[str, dict] = {}

    def on_commit(states: list[dict]) -> None:  # (not when the outbox answered instead)
        committed.update(zip(tokens, states))
        count_failures("sentiment-analysis", failed[0])
        if late[0]:
            LATE_INPUTS.labels("sentiment-analysis").inc(late[0])
    anomalies, flushed = until_encoded(
        lambda: store.update(client, keys, compute, outbox=outbox, waiting=listing,
                             on_commit=on_commit, keep_empty=lambda: bool(late[0] or failed[0])),
        dict(zip(keys, tokens)), reset, "sentiment-analysis")
    if committed:  # a token's state is kilobytes of JSON (eight days of hour buckets): decoded once
        return committed, anomalies
    tokens = flushed if flush else tokens  # answered by the outbox: the first attempt's tokens
    keys = [SENTIMENT_STATE.format(token=t) for t in tokens]
    return dict(zip(tokens, store.current(client, keys))), anomalies


# KEYS: the HyperLogLogs the batch adds to, then each token's 1 h window of 5-minute ones.
# ARGV: how many of the first, and per each its TTL, its authors' count and its authors; then
# the window's TTL and per token its window's length. Returns each window's count. One call:
# as a pipeline, its forty-odd commands an event cost the client more than the state's commit.
_COUNT_AUTHORS = """
local added, at = tonumber(ARGV[1]), 2
for i = 1, added do
  local ttl, count = ARGV[at], tonumber(ARGV[at + 1])
  for first = at + 2, at + 1 + count, 1000 do  -- unpack's stack holds a few thousand
    redis.call('PFADD', KEYS[i], unpack(ARGV, first, math.min(first + 999, at + 1 + count)))
  end
  redis.call('EXPIRE', KEYS[i], ttl)
  at = at + 2 + count
end
local ttl, key, counts = ARGV[at], added, {}
for w = at + 1, #ARGV do
  local window = {}
  for i = key + 1, key + tonumber(ARGV[w]) do
    redis.call('EXPIRE', KEYS[i], ttl)
    window[#window + 1] = KEYS[i]
  end
  key = key + tonumber(ARGV[w])
  counts[#counts + 1] = redis.call('PFCOUNT', unpack(window))
end
return counts
"""


def count_authors(client: redis.Redis, groups: dict[str, list[tuple]],
                  states: dict[str, dict]) -> dict[str, int]:
    """Add the batch's authors to the HyperLogLogs; each token's unique authors over 1 h.
    A window's 5-minute buckets are given their TTL again together: none of them expires
    before the rest, and an hour read later is whole or gone (read_sentiment)."""
    added: dict[tuple[str, int], list[str]] = {}
    for token, series in groups.items():
        for moment, post, _, _ in series:
            for template, size, ttl_s in ((SENTIMENT_AUTHORS_5M, 300, AUTHORS_5M_TTL_S),
                                          (SENTIMENT_AUTHORS_1H, 3600, AUTHORS_TTL_S)):
                key = template.format(token=token, bucket=int(moment // size))
                added.setdefault((key, ttl_s), []).append(author_key(post))
    windows = [aggregates.author_keys(token, "1h", states[token]["last"]) for token in groups]
    arguments: list = [len(added)]
    for (_, ttl_s), authors in added.items():
        arguments += [ttl_s, len(authors), *authors]
    arguments += [AUTHORS_5M_TTL_S, *map(len, windows)]
    keys = [key for key, _ in added] + [key for window in windows for key in window]
    counts = client.register_script(_COUNT_AUTHORS)(keys=keys, args=arguments) if groups else []
    return {token: int(count) for token, count in zip(groups, counts)}


def handle_posts(event: CloudEvent, ctx: Context) -> list[CloudEvent] | None:
    client, now, local = ctx.redis, time.time(), ctx.local(start)
    if event.type == PING:  # the stream-flush PingSource: release posts of quiet tokens
        groups = {token: [] for token in quiet_keys(client, SENTIMENT_WAITING, now_s=now,
                                                    idle_s=ctx.settings.reorder_idle_s,
                                                    limit=FLUSH_BATCH)}  # the rest next minute
    else:
        directory = load_directory(client, local.directory).merged(event.data.get("tracked", []))
        groups = score_posts(event.data["posts"], directory)
    if not groups and event.type != PING:
        return None
    # A flush without quiet tokens still reads its outbox: a retry of one whose first attempt
    # committed (and emptied the waiting list) before the sink failed gets its anomalies and
    # its tokens back
    states, anomalies = analyse_batch(client, groups, joined(event.source, event.id),
                                      store=local.states, buffer=ReorderBuffer.from_settings(ctx.settings),
                                      now_s=now,
                                      outbox=outbox_key(ctx.name, event.source, event.id),
                                      flush=event.type == PING)
    if event.type == PING:
        groups = {token: [] for token in states}  # a retry's are its first attempt's
    # a token listed as waiting whose state is gone (expired) has no posts to summarise (a
    # KeyError, a 500, past the commit: the other quiet tokens' results were lost with it);
    # nor has one a retry answered by its outbox finds with no state at all (the directory
    # changed between the attempts: a TypeError, a 500 at every retry)
    groups = {token: series for token, series in groups.items()
              if "last" in (states[token] or {})}
    authors = count_authors(client, groups, states)
    replies = []
    for token in groups:
        summary = aggregates.summarise(token, states[token], "1h", authors[token])
        replies.append(new_event(SENTIMENT_SCORED, ctx.source, scored_data(summary),
                                 subject=token, event_id=derived_id(event, f"sentiment:{token}"),
                                 time=summary["as_of"]))
    anomalies.sort(key=lambda a: (a["time"], a["token"], a["anomaly_type"]))
    # one anomaly event per token, in parts under the size limit
    return replies + per_token_replies(event, ctx.source, ANOMALY_DETECTED, "anomalies", anomalies,
                                       purpose="anomalies", time_of=lambda part: part[-1]["time"])


def scored_data(summary: dict) -> dict:
    """The `ai.kades.sentiment.scored.v1` data of a window summary."""
    return {"token": summary["token"], "time": summary["as_of"], "window": summary["timeframe"],
            "score": summary["score"], "label": summary["label"],
            "mentions": summary["mentions"], "unique_authors": summary["unique_authors"],
            "breakdown": summary["breakdown"], "engagement": summary["engagement"],
            "velocity": summary["velocity"]}


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat().replace("+00:00", "Z")


FUNCTION = Function("sentiment-analysis", (SOCIAL_POSTS, PING), handle_posts)
