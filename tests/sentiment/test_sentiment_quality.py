"""Bursts, shifts and coordination on seeded social simulations: precision/recall printed."""
from __future__ import annotations

from collections import Counter

import social_scoring
from kades.simulate.social import simulate_social

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
