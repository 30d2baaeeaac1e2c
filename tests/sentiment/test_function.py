"""The sentiment-analysis handler on real Redis: replies, aggregates, idempotency, bad input."""
from __future__ import annotations

import json

import pytest

from kades.errors import BadRequestError
from kades.events.catalogue import (ANOMALY_DETECTED, PING, SENTIMENT_SCORED, SOCIAL_POSTS,
                                    data_problems, derived_id, new_event)
from kades.keys import SENTIMENT_STATE
from kades.registry import load
from kades.runtime import Context
from kades.sentiment import function as sentiment
from kades.sentiment.aggregates import author_keys, read_sentiment
from kades.simulate.social import simulate_social

BONK = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"


def post(i: int, text: str, minute: int = 0, **extra) -> dict:
    return {"id": f"p{i}", "platform": "x", "author": f"a{i % 7}", "text": text,
            "time": f"2026-01-01T10:{minute:02d}:{i % 60:02d}Z", **extra}


def posts_event(posts: list[dict], event_id: str = "e1", **data) -> object:
    return new_event(SOCIAL_POSTS, "/scraper", {"posts": posts, **data}, event_id=event_id)


def test_registered_under_its_name():
    assert load("sentiment-analysis") is sentiment.FUNCTION
    assert sentiment.FUNCTION.consumes == (SOCIAL_POSTS, PING)  # PING: the stream flush


def test_one_sentiment_reply_per_token_with_its_aggregate(ctx):
    posts = [post(1, "$BONK to the moon 🚀", engagement={"likes": 50}),
             post(2, "$BONK wagmi"), post(3, "$WIF is a rug, dev sold"),
             post(4, f"ca {BONK} looks bullish"), post(5, "nothing about tokens")]
    replies = sentiment.handle_posts(posts_event(posts, tracked=[{"token": BONK, "symbol": "BONK"}]), ctx)
    assert [r.type for r in replies] == [SENTIMENT_SCORED, SENTIMENT_SCORED]
    assert all(not data_problems(r) for r in replies)
    bonk, wif = (r.data for r in replies)
    assert replies[0].subject == BONK and replies[0].id == derived_id(
        posts_event([], "e1"), f"sentiment:{BONK}")
    assert bonk["mentions"] == 3 and bonk["score"] > 0.5 and bonk["label"] == "positive"
    assert bonk["breakdown"] == {"positive": 3, "neutral": 0, "negative": 0}
    assert bonk["unique_authors"] == 3 and bonk["window"] == "1h"
    assert wif["token"] == "$WIF" and wif["score"] < -0.5 and wif["mentions"] == 1


def test_redelivery_changes_nothing_even_without_the_runtime_dedup(ctx, redis_conn):
    event = posts_event([post(i, f"$BONK gm number {i}") for i in range(10)])
    first = sentiment.handle_posts(event, ctx)
    state = redis_conn.get(SENTIMENT_STATE.format(token="$BONK"))
    fresh_replica = Context(ctx.name, settings=ctx.settings)
    again = sentiment.handle_posts(event, fresh_replica)
    assert redis_conn.get(SENTIMENT_STATE.format(token="$BONK")) == state
    assert [r.data for r in again] == [r.data for r in first]
    assert again[0].data["mentions"] == 10


def test_a_post_carried_by_two_events_or_twice_by_one_is_counted_once(ctx):
    """Overlapping scrapes: the aggregates counted a post once per event that carried it
    (duplicates were caught per batch, not per post)."""
    first = sentiment.handle_posts(posts_event([post(i, f"$BONK gm {i}") for i in (1, 2, 3)]), ctx)
    again = sentiment.handle_posts(posts_event([post(i, f"$BONK gm {i}") for i in (2, 3, 4)],
                                               event_id="e2"), ctx)
    assert (first[0].data["mentions"], again[0].data["mentions"]) == (3, 4)
    doubled = sentiment.handle_posts(posts_event([post(9, "$WIF up"), post(9, "$WIF up")],
                                                 event_id="e3"), ctx)
    assert doubled[0].data["mentions"] == 1 and sum(doubled[0].data["breakdown"].values()) == 1


def test_read_sentiment_serves_every_window(ctx, redis_conn):
    sentiment.handle_posts(posts_event([post(i, "$BONK scam, rugged", minute=i,
                                             engagement={"likes": 3}) for i in range(30)]), ctx)
    hour = read_sentiment(redis_conn, "$BONK", "1h")
    assert hour["mentions"] == 30 and hour["label"] == "negative" and -1 <= hour["score"] < -0.5
    assert hour["unique_authors"] == 7 and hour["engagement"]["total"] == 90.0
    assert hour["as_of"] == "2026-01-01T10:29:29Z"
    for timeframe in ("24h", "7d"):
        assert read_sentiment(redis_conn, "$BONK", timeframe)["mentions"] == 30
    empty = read_sentiment(redis_conn, "$NOPE", "24h")
    assert empty["mentions"] == 0 and empty["as_of"] is None and empty["score"] == 0.0
    with pytest.raises(ValueError):
        read_sentiment(redis_conn, "$BONK", "2h")


def test_five_minute_author_buckets_live_hours_and_an_older_window_reads_its_hours(ctx, redis_conn):
    """The 5-minute HyperLogLogs were kept 9 days, like the hour ones: a busy token held
    2,592 to read 12. Kept 2 h, a window older than that counts its hour buckets' authors."""
    from kades.keys import SENTIMENT_AUTHORS_1H, SENTIMENT_AUTHORS_5M
    sentiment.handle_posts(posts_event([post(i, "$BONK gm", minute=i) for i in range(30)]), ctx)
    five = [k for k in redis_conn.scan_iter(SENTIMENT_AUTHORS_5M.format(token="$BONK", bucket="*"))]
    hours = [k for k in redis_conn.scan_iter(SENTIMENT_AUTHORS_1H.format(token="$BONK", bucket="*"))]
    assert five and hours
    assert all(0 < redis_conn.ttl(k) <= sentiment.AUTHORS_5M_TTL_S for k in five)
    assert all(redis_conn.ttl(k) > sentiment.AUTHORS_5M_TTL_S for k in hours)
    assert read_sentiment(redis_conn, "$BONK", "1h")["unique_authors"] == 7
    redis_conn.delete(*five)  # expired
    assert read_sentiment(redis_conn, "$BONK", "1h")["unique_authors"] == 7  # from its hour
    # a window's buckets are renewed together with every post: none expires before the rest
    sentiment.handle_posts(posts_event([post(i, "$BONK gm", minute=i) for i in range(30)],
                                       event_id="again"), ctx)
    oldest = SENTIMENT_AUTHORS_5M.format(token="$BONK", bucket=int(sentiment.epoch_s("2026-01-01T10:00:00Z") // 300))
    redis_conn.expire(oldest, 5)
    sentiment.handle_posts(posts_event([post(40, "$BONK gm", minute=40)], event_id="later"), ctx)
    assert redis_conn.ttl(oldest) > sentiment.AUTHORS_5M_TTL_S - 60


def test_a_full_batch_of_authors_is_counted_in_one_call(redis_conn):
    """count_authors adds a batch's authors in one script call: the largest batch the event
    contract takes, every post by another author, is more than Lua unpacks at once."""
    moment = sentiment.epoch_s("2026-01-01T10:00:00Z")
    posts = [{"platform": "x", "author": f"author{i}"} for i in range(10_000)]
    groups = {"$BONK": [(moment, p, None, ()) for p in posts],
              "$WIF": [(moment - 7200, p, None, ()) for p in posts[:3]]}
    counts = sentiment.count_authors(redis_conn, groups, {"$BONK": {"last": moment},
                                                          "$WIF": {"last": moment - 7200}})
    assert abs(counts["$BONK"] - 10_000) < 300 and counts["$WIF"] == 3
    assert redis_conn.pfcount(*author_keys("$BONK", "1h", moment)) == counts["$BONK"]


def test_tracked_directory_in_redis_resolves_symbols_and_names(ctx, redis_conn):
    sentiment.track_token(redis_conn, BONK, symbol="BONK", name="Bonk Inu")
    replies = sentiment.handle_posts(posts_event([post(1, "bonk inu holders eating"),
                                                  post(2, "$bonk!")]), ctx)
    assert [r.subject for r in replies] == [BONK] and replies[0].data["mentions"] == 2


def test_bad_times_are_a_bad_request_naming_each_post(ctx):
    event = posts_event([post(1, "$A"), {**post(2, "$B"), "time": "2026-01-01T10:00:00"},
                         {**post(3, "$C"), "time": "2026-01-01 10:00:00"}])
    with pytest.raises(BadRequestError) as caught:
        sentiment.handle_posts(event, ctx)
    assert [p.field for p in caught.value.problems] == ["data.posts[1].time", "data.posts[2].time"]


def test_a_batch_naming_too_many_tokens_is_a_bad_request_with_its_other_problems(ctx,
                                                                                redis_conn):
    """A batch of 10,000 posts of 32 cashtags each named 320,000 tokens: one atomic commit
    over all their states and as many reply events. At the cap a batch is analysed."""
    cap = sentiment.MAX_TOKENS_PER_BATCH

    def naming(count: int) -> list[dict]:
        return [post(i, " ".join(f"$T{i}X{j}" for j in range(min(32, count - 32 * i))))
                for i in range((count + 31) // 32)]
    assert len(sentiment.handle_posts(posts_event(naming(cap), "at-cap"), ctx)) == cap
    too_many = [{**post(99_999, "$LATE"), "time": "2026-01-01T10:00:00"}, *naming(cap + 1)]
    with pytest.raises(BadRequestError) as caught:
        sentiment.handle_posts(posts_event(too_many, "past-cap"), ctx)
    assert [p.field for p in caught.value.problems] == ["data.posts[0].time", "data.posts"]
    assert f"{cap:,} at most" in caught.value.problems[1].message
    assert redis_conn.get(SENTIMENT_STATE.format(token=f"$T{cap // 32}X{cap % 32}")) is None


def test_no_token_no_reply(ctx):
    assert sentiment.handle_posts(posts_event([post(1, "just a post")]), ctx) is None
    assert sentiment.handle_posts(posts_event([]), ctx) is None


def test_a_shill_campaign_is_reported_with_its_evidence(ctx):
    sim = simulate_social(seed=3, tokens=["TokenA"], minutes=25, symbols={"TokenA": "SHL"},
                          campaigns=[])
    from datetime import datetime, timezone
    shilled = simulate_social(seed=3, tokens=["TokenA"], minutes=25, symbols={"TokenA": "SHL"},
                              campaigns=[{"token": "TokenA", "kind": "shill",
                                          "start": datetime(2024, 1, 1, 0, 15, tzinfo=timezone.utc)}])
    assert len(shilled.posts) > len(sim.posts)
    anomalies = []
    for event in shilled.events:
        for reply in sentiment.handle_posts(event, ctx) or []:
            if reply.type == ANOMALY_DETECTED:
                anomalies += reply.data["anomalies"]
    promotion = [a for a in anomalies if a["anomaly_type"] == "coordinated_promotion"]
    assert promotion and promotion[0]["token"] == "TokenA"
    details = promotion[0]["details"]
    assert details["authors_count"] >= 5 and len(details["post_ids"]) >= 5
    # authors and posts named with their platform ("x:fresh3"): ids are per platform
    assert details["mean_similarity"] >= 0.6 and all(
        a.split(":", 1)[1].startswith("fresh") for a in details["authors"])
    assert promotion[0]["time"] >= "2024-01-01T00:15:00Z"


def test_state_is_plain_json_and_pruned(ctx, redis_conn):
    posts = [post(i, "$OLD gm", minute=0) for i in range(3)]
    sentiment.handle_posts(posts_event(posts, "old"), ctx)
    late = [{**post(9, "$OLD gm"), "time": "2026-01-12T10:00:00Z"}]
    sentiment.handle_posts(posts_event(late, "late"), ctx)
    state = json.loads(redis_conn.get(SENTIMENT_STATE.format(token="$OLD")))
    assert len(state["m"]) == 1 and len(state["h"]) == 1  # ten-day-old buckets dropped
    assert state["events"] == ["/scraper#old", "/scraper#late"]
    assert read_sentiment(redis_conn, "$OLD", "7d")["mentions"] == 1


def test_a_retry_after_the_sink_failed_sends_the_same_anomalies(ctx):
    """The anomaly reply goes to the sink after the state committed; when the sink fails the
    Broker retries, and the retry must send the campaign's anomalies again, not nothing."""
    from datetime import datetime, timezone
    shilled = simulate_social(seed=3, tokens=["TokenA"], minutes=25, symbols={"TokenA": "SHL"},
                              campaigns=[{"token": "TokenA", "kind": "shill",
                                          "start": datetime(2024, 1, 1, 0, 15, tzinfo=timezone.utc)}])
    for event in shilled.events:
        first = sentiment.handle_posts(event, ctx) or []
        flagged = [r for r in first if r.type == ANOMALY_DETECTED]
        if flagged:
            another_replica = Context(ctx.name, settings=ctx.settings)  # the retry may reach it
            retried = [r for r in sentiment.handle_posts(event, another_replica) or []
                       if r.type == ANOMALY_DETECTED]
            assert [(r.id, r.data) for r in retried] == [(r.id, r.data) for r in flagged]
            return
    raise AssertionError("the campaign raised no anomaly to retry")


def test_a_retried_flush_sends_the_anomalies_its_first_attempt_released(ctx, redis_conn,
                                                                        monkeypatch):
    """The first attempt committed (and emptied the waiting list) before the sink failed;
    the retry found no quiet token and returned nothing: the campaign's anomaly was lost. A
    token listed as waiting whose state expired made the flush a 500 (KeyError) as well."""
    from kades.events.catalogue import new_event
    from kades.keys import SENTIMENT_WAITING
    monkeypatch.setattr(sentiment.time, "time", lambda: 1000.0)
    shill = [{**post(i * 3, f"huge news {i} dont miss $SHL next 100x gem aping now before CEX "
                            "listing"), "author": f"fresh{i}"} for i in range(6)]
    sentiment.handle_posts(posts_event(shill, "shill"), ctx)
    redis_conn.zadd(SENTIMENT_WAITING, {"$GONE": 900.0})  # its state expired meanwhile
    monkeypatch.setattr(sentiment.time, "time", lambda: 2000.0)
    flush = new_event(PING, "/apis/v1/namespaces/kades/pingsources/stream-flush",
                      {"job": "flush"}, event_id="flush-1")
    first = [r for r in sentiment.handle_posts(flush, ctx) or [] if r.type == ANOMALY_DETECTED]
    assert [a["anomaly_type"] for r in first for a in r.data["anomalies"]] == [
        "coordinated_promotion"]
    retried = [r for r in sentiment.handle_posts(flush, Context(ctx.name, settings=ctx.settings))
               or [] if r.type == ANOMALY_DETECTED]
    assert [(r.id, r.data) for r in retried] == [(r.id, r.data) for r in first]


def test_a_retried_flush_sends_the_scores_of_the_tokens_its_first_attempt_flushed(ctx,
                                                                                 monkeypatch):
    """A flush that released posts without an anomaly changed the tokens' scores; its first
    attempt committed (taking them off the waiting list) before the sink failed, and the
    retry, finding no quiet token, sent no score: risk-scoring never saw the change."""
    monkeypatch.setattr(sentiment.time, "time", lambda: 1000.0)
    sentiment.handle_posts(posts_event([post(1, "$BONK wagmi"), post(2, "$WIF gm")], "calm"), ctx)
    monkeypatch.setattr(sentiment.time, "time", lambda: 2000.0)
    flush = new_event(PING, "/apis/v1/namespaces/kades/pingsources/stream-flush",
                      {"job": "flush"}, event_id="flush-2")
    first = [r for r in sentiment.handle_posts(flush, ctx) or [] if r.type == SENTIMENT_SCORED]
    assert sorted(r.subject for r in first) == ["$BONK", "$WIF"]
    assert all(r.data["mentions"] == 1 for r in first)
    retried = [r for r in sentiment.handle_posts(flush, Context(ctx.name, settings=ctx.settings))
               or [] if r.type == SENTIMENT_SCORED]
    assert [(r.id, r.data) for r in retried] == [(r.id, r.data) for r in first]


def test_batches_in_no_order_and_twice_find_what_the_ordered_stream_finds(ctx, redis_conn,
                                                                          monkeypatch):
    """Shuffled within a bounded lateness, some redelivered: the same anomalies, once the
    stream-flush has the last posts analysed, as the batches in order."""
    import random
    from datetime import datetime, timezone
    from kades.events.catalogue import new_event
    sim = simulate_social(seed=3, tokens=["TokenA", "TokenB"], minutes=25,
                          symbols={"TokenA": "SHL", "TokenB": "BNK"},
                          campaigns=[{"token": "TokenA", "kind": "shill",
                                      "start": datetime(2024, 1, 1, 0, 15, tzinfo=timezone.utc)}])

    def run(order) -> list:
        redis_conn.flushdb()
        fresh = Context(ctx.name, settings=ctx.settings)  # a fresh process each run
        clock = iter(range(10**6))
        monkeypatch.setattr(sentiment.time, "time", lambda: float(next(clock)))
        found = {}
        for event in order:
            for reply in sentiment.handle_posts(event, fresh) or []:
                if reply.type == ANOMALY_DETECTED:
                    found[reply.id] = reply.data["anomalies"]
        monkeypatch.setattr(sentiment.time, "time", lambda: 1e9)  # long quiet, then the ping
        flush = new_event(PING, "/apis/v1/namespaces/kades/pingsources/stream-flush",
                          {"job": "flush"}, event_id="flush")
        for reply in sentiment.handle_posts(flush, fresh) or []:
            if reply.type == ANOMALY_DETECTED:
                found[reply.id] = reply.data["anomalies"]
        return sorted((a["token"], a["time"], a["anomaly_type"])
                      for rows in found.values() for a in rows)

    ordered = run(sim.events)
    rng = random.Random(9)
    shuffled = [e for _, e in sorted((i + rng.uniform(0, 3), e) for i, e in enumerate(sim.events))]
    shuffled += rng.sample(sim.events, 10)
    assert ordered and run(shuffled) == ordered


def mentions_of(replies, token: str) -> int:
    return next(r.data["mentions"] for r in replies or [] if r.type == SENTIMENT_SCORED
                and r.data["token"] == token)


def test_overlapping_scrapes_count_a_post_once_across_minutes(ctx):
    """A poller taking the latest 5 posts every minute: posts it saw a few minutes before
    came back past the reorder buffer's 30 s and were counted again (10 posts read 20)."""
    posts = [post(i, f"$OVER gm number {i}", minute=i) for i in range(10)]
    replies = None
    for end in range(5, 11):  # scrapes of posts [end-5, end): 4 of 5 seen the minute before
        replies = sentiment.handle_posts(posts_event(posts[end - 5:end], f"scrape{end}"), ctx)
    assert mentions_of(replies, "$OVER") == 10


def test_a_post_id_belongs_to_its_platform(ctx):
    """Message ids are per platform (Telegram's are small numbers per chat): a Discord post
    with a Telegram post's id was dropped as its copy."""
    telegram = {**post(1, "$CLASH looks great"), "id": "1042", "platform": "telegram"}
    discord = {**post(2, "$CLASH is a rug"), "id": "1042", "platform": "discord"}
    replies = sentiment.handle_posts(posts_event([telegram, discord]), ctx)
    assert mentions_of(replies, "$CLASH") == 2


def test_a_post_id_belongs_to_its_channel_where_the_source_names_one(ctx):
    """A Telegram message id is a small number per chat: two chats' message 7 are two posts,
    one chat's message 7 carried twice is one."""
    def message(i: int, chat: str) -> dict:
        return {**post(i, f"$CHATS gm from {chat}"), "id": "7", "platform": "telegram", "channel": chat}
    replies = sentiment.handle_posts(posts_event([message(1, "-100123"), message(2, "-100456"),
                                                  message(3, "-100123")]), ctx)
    assert mentions_of(replies, "$CHATS") == 2


def test_one_account_flooding_a_minute_is_no_mention_burst(ctx):
    """Two of the real $ETH stream's six bursts were one account each ("a", "as", "fff",
    "nope" typed within a minute); twelve accounts in a minute are still a burst."""
    calm = [{**post(i, "$FLOOD gm", minute=m), "id": f"c{m}-{i}", "author": f"user{(m + i) % 30}"}
            for m in range(20) for i in range(2)]
    spam = [{**post(i, f"$FLOOD {word}", minute=20), "id": f"s{i}", "author": "spammer"}
            for i, word in enumerate(["a", "as", "fff", "nope", "bye", "down", "rn", "x", "y"])]
    quiet = [{**post(0, "$FLOOD gm", minute=m), "id": f"q{m}", "author": "user1"}
             for m in range(21, 25)]
    crowd = [{**post(i, f"$FLOOD {i} up", minute=25), "id": f"w{i}", "author": f"new{i}"}
             for i in range(12)]
    after = [{**post(0, "$FLOOD gm", minute=27), "id": "after", "author": "user2"}]
    bursts = []
    for n, chunk in enumerate((calm, spam, quiet, crowd, after)):  # each released by the next
        for reply in sentiment.handle_posts(posts_event(chunk, f"flood{n}"), ctx) or []:
            if reply.type == ANOMALY_DETECTED:
                bursts += [a["time"][11:16] for a in reply.data["anomalies"]
                           if a["anomaly_type"] == "mention_burst"]
    assert bursts == ["10:25"]


def test_ordinary_accounts_retweeting_a_headline_are_no_campaign(ctx):
    text = "RT @LiveSquawk: $AAPL | Apple Facing Supply Shortage For iPhone 14 Pro Models"
    retweets = [{**post(i, text, minute=i), "id": f"rt{i}", "author": f"reader{i}",
                 "author_meta": {"followers": 120 + 30 * i, "account_age_days": 800}}
                for i in range(5)]
    later = [{**post(9, "$AAPL earnings next week", minute=10), "id": "later",
              "author_meta": {"followers": 9000, "account_age_days": 900}}]  # releases them
    found = [a for event in (posts_event(retweets, "rts"), posts_event(later, "later"))
             for r in sentiment.handle_posts(event, ctx) or []
             if r.type == ANOMALY_DETECTED for a in r.data["anomalies"]]
    assert found == []


def test_a_bare_ticker_says_nothing():
    """"$SOL" alone scored positive, 0.75 sure: every raid's bare ticker lifted the score."""
    from kades.sentiment.model_trained import default_model
    model = default_model()
    for text in ("$SOL", "$WIF", "$ETH.X", "$TSLA $AAPL $BTC.X", " @someone https://x.co/a "):
        assert (model.score(text).label, model.score(text).compound) == ("neutral", 0.0), text
    assert model.score("$SOL 🚀").label == "positive"  # an emoji says something


def test_a_campaign_naming_its_chains_coin_is_not_the_coins_campaign(ctx):
    """Shill templates name their chain's coin ("... gem on $SOL"): SOL got the same
    coordinated_promotion as the coin shilled."""
    text = "huge news {} dont miss $PEPE2 the next 100x gem on $SOL aping now before listing"
    shills = [{**post(i, text.format(i), minute=i), "id": f"sh{i}", "author": f"fresh{i}",
               "author_meta": {"followers": 3, "account_age_days": 2}} for i in range(6)]
    later = [{**post(9, "$PEPE2 and $SOL gm", minute=20), "id": "later"}]  # releases them
    found = [(a["token"], a["anomaly_type"])
             for event in (posts_event(shills, "shill"), posts_event(later, "later"))
             for r in sentiment.handle_posts(event, ctx) or [] if r.type == ANOMALY_DETECTED
             for a in r.data["anomalies"]]
    assert ("$PEPE2", "coordinated_promotion") in found
    assert ("$SOL", "coordinated_promotion") not in found


@pytest.mark.parametrize("bug", ["raised", "unencodable"])
def test_a_token_whose_analysis_raises_is_started_afresh_and_the_others_go_on(ctx, redis_conn, monkeypatch,
                                                                              bug):
    """The bulkhead (kades.runtime.bulkhead): an error no input should cause (a bug) in one
    token's analysis is logged and counted, that token starts afresh without this event's posts
    and gets no summary, and the event's other tokens are analysed and answered; before, the
    event failed at every delivery. `unencodable`: the analysis leaves in the state a value no
    encoder writes, found by the store's encoding in the commit (StateNotEncoded)."""
    from prometheus_client import REGISTRY

    def failed() -> float:
        return REGISTRY.get_sample_value("kades_failed_tokens_total",
                                         {"function": "sentiment-analysis"}) or 0.0
    sentiment.handle_posts(posts_event([post(i, f"$BONK and $WIF gm {i}") for i in range(6)]), ctx)
    real = sentiment.detect

    def detect(token, state, series):  # a bug met by one token only
        if token == "$WIF" and bug == "raised":
            raise ZeroDivisionError("planted")
        if token == "$WIF":
            state["planted"] = object()
        return real(token, state, series)
    monkeypatch.setattr(sentiment, "detect", detect)
    counted = failed()
    event = posts_event([post(i, f"$BONK and $WIF wagmi {i}") for i in range(6, 12)], "e2")
    replies = sentiment.handle_posts(event, ctx)
    assert failed() == counted + 1
    # redelivered (a failure after the commit): answered by the outbox, not counted again
    assert [r.subject for r in sentiment.handle_posts(event, ctx)] == ["$BONK"]
    assert failed() == counted + 1
    assert [(r.type, r.subject) for r in replies] == [(SENTIMENT_SCORED, "$BONK")]
    assert replies[0].data["mentions"] == 12
    assert json.loads(redis_conn.get(SENTIMENT_STATE.format(token="$WIF"))) == {"reorder": {}}
    monkeypatch.setattr(sentiment, "detect", real)
    again = sentiment.handle_posts(posts_event([post(i, f"$WIF gm {i}") for i in range(12, 15)], "e3"), ctx)
    assert [r.data["mentions"] for r in again if r.subject == "$WIF"] == [3]  # analysed again


def test_a_retry_answered_by_its_outbox_names_a_token_with_no_state_and_is_no_500(ctx, monkeypatch):
    """The directory changed between two deliveries of one event: the retry's posts name a
    token the first attempt never stored, its outbox answers, and that token's state (None)
    was read as a dict: a TypeError, a 500 at every retry."""
    real_detect, real_score = sentiment.detect, sentiment.score_posts

    def detect(token, state, series):  # a failed token keeps the first attempt's outbox
        if token == "$WIF":
            raise ZeroDivisionError("planted")
        return real_detect(token, state, series)
    monkeypatch.setattr(sentiment, "detect", detect)
    event = posts_event([post(i, f"$BONK and $WIF gm {i}") for i in range(6)], "retried")
    first = sentiment.handle_posts(event, ctx)
    monkeypatch.setattr(sentiment, "score_posts", lambda posts, directory: {
        **real_score(posts, directory), "$NEWLY": []})
    again = sentiment.handle_posts(event, ctx)
    assert [r.subject for r in again] == [r.subject for r in first] == ["$BONK"]
