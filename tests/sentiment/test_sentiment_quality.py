"""Bursts, shifts and coordination on seeded social simulations: precision/recall printed;
and how often they speak on a real stream (real_stream)."""
from __future__ import annotations

from collections import Counter

import real_stream
import social_scoring
from kades.simulate.social import simulate_social
from shared_material import needs

SEEDS = range(1, 5)


def test_detectors_find_the_campaigns_and_little_else(ctx, redis_conn):
    counts = Counter()
    for seed in SEEDS:
        redis_conn.flushdb()
        sim = simulate_social(seed=seed, minutes=35)
        social_scoring.tally(social_scoring.run(sim, ctx), sim.labels, counts)
    print()
    for kind, (precision, recall, flags, labelled) in social_scoring.figures(counts).items():
        print(f"{kind:<24} precision {precision:.2f} recall {recall:.2f} "
              f"({flags} flags, {labelled} labelled campaigns)")
        assert labelled > 0 and recall >= 0.7 and precision >= 0.6, kind


def test_organic_chatter_alone_raises_no_coordination_and_few_bursts(ctx, redis_conn):
    sim = simulate_social(seed=11, minutes=40, campaigns=[])
    flags = social_scoring.run(sim, ctx)
    kinds = Counter(f["anomaly_type"] for f in flags)
    print(f"\norganic only, {len(sim.posts)} posts: {dict(kinds)}")
    assert kinds["coordinated_promotion"] == 0 and kinds["mention_burst"] <= 1


@needs(real_stream.STREAM)
def test_a_real_stream_stays_within_the_alert_budget(ctx, redis_conn):
    """StockTwits' $ETH.X stream through the handler, from 07-12 to its end (the Merge rally
    and its busiest days, hourly batches: the alerts do not depend on the batch size). Every
    alert counts against the budget of one per token-day, true or not."""
    replay = real_stream.replay(ctx, batch_s=3600.0, since="2022-07-12")
    print(f"\nStockTwits $ETH.X, {replay.days:.1f} days, {sum(replay.posts_by_token.values())} "
          f"token mentions: alerts per token-day")
    busy = replay.busy_tokens()
    assert real_stream.TOKEN in busy and len(busy) >= 3
    for token in busy:
        rates = replay.per_token_day(token)
        print(f"  {token:<6} {replay.posts_by_token[token]:>6} posts  {rates or 'none'}")
        assert sum(rates.values()) <= 1.0, token
    # The stream's own token does see a burst on the rally's busiest days.
    bursts = {a["time"][:10] for a in replay.anomalies
              if a["token"] == real_stream.TOKEN and a["anomaly_type"] == "mention_burst"}
    assert bursts & {"2022-07-16", "2022-07-18", "2022-07-19"}, bursts
    # Sentiment alone: a lone post about a quiet token put it at "high" risk (from 07-12 on,
    # 36 token-hours before risk.SENTIMENT_FULL_AUTHORS, set on the days before 07-10)
    alarmed = replay.alarmed_hours()
    print(f"  token-hours at risk >= 0.7 from sentiment alone: {len(alarmed)} of "
          f"{len({(r['token'], r['time'][:13]) for r in replay.reports})} reported")
    assert replay.reports and alarmed == set()


@needs(real_stream.STREAM)
def test_the_alerts_do_not_depend_on_how_posts_are_batched(ctx, redis_conn):
    """The rally's busiest days sent as 15-minute and as hourly batches: the detectors see
    each token's posts in post time either way (the reorder buffer), so the same alerts."""
    found = []
    for batch_s in (900.0, 3600.0):
        redis_conn.flushdb()
        replay = real_stream.replay(ctx, batch_s=batch_s, since="2022-07-16", until="2022-07-20")
        found.append(sorted((a["time"], a["token"], a["anomaly_type"]) for a in replay.anomalies))
    print(f"\n$ETH.X 07-16 to 07-19: {len(found[0])} alerts either way")
    assert found[0] == found[1] and any(kind == "mention_burst" for _, _, kind in found[0])
