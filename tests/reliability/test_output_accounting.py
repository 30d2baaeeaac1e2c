"""Output accounting, short form: a seeded market and social stream through a clean mesh
gives the expected outputs; the same stream with faults injected after the state commit and
after the database write of temporal-analysis, before and after the sink of
sentiment-analysis, and the broker's chaos switch on, must give each of them exactly once
and nothing else (outputs.py says what is compared and what is left out, and why)."""
from __future__ import annotations

from collections import Counter

import pytest

from outputs import (compare, recent_start, reference_problems, run_stream, stream_settings,
                     tally)
from kades.simulate.story import demo_story

pytestmark = pytest.mark.slow
FAULTS = {("temporal-analysis", "after_state"): 0.04, ("temporal-analysis", "after_db"): 0.04,
          ("sentiment-analysis", "before_sink"): 0.15, ("sentiment-analysis", "after_sink"): 0.15}
CHAOS = {"KADES_BROKER_CHAOS_REORDER_WINDOW": "8", "KADES_BROKER_CHAOS_DUPLICATE_RATE": "0.05",
         "KADES_BROKER_CHAOS_DELAY_RATE": "0.05", "KADES_BROKER_CHAOS_DELAY_MAX_S": "0.3",
         "KADES_BROKER_CHAOS_SEED": "3"}
LATENESS_S = 300.0   # event time; the stream posts ~200 s of it per second
RATE_PER_S = 50.0


def fault_points(rates: dict[tuple[str, str], float]) -> str:
    return ",".join(f"{function}:{step}:{rate}" for (function, step), rate in rates.items())


def test_every_output_present_once_with_faults_at_each_step(kades_env, redis_conn, db_conn,
                                                            tmp_path):
    # 12 minutes: the last 5 (the lateness) stay buffered in both runs, the first 7 give
    # every kind of output and every fault point fires (20 minutes cost ~10 s more a run).
    story = demo_story(seed=8, minutes=12, chain=False, start=recent_start(12))
    base = stream_settings(lateness_s=LATENESS_S)
    where = dict(client=redis_conn, redis_url=kades_env.redis_url,
                 database_url=kades_env.database_url, rate_per_s=RATE_PER_S,
                 redis_cluster=kades_env.redis_cluster)
    reference = run_stream(tmp_path / "clean", story.events, env=base, **where)
    assert not reference_problems(reference)
    assert reference.outputs["temporal_scores rows"] and reference.outputs["anomaly_events rows"]
    faulty = run_stream(tmp_path / "faults", story.events, **where,
                        env={**base, **CHAOS, "KADES_FAULT_POINTS": fault_points(FAULTS),
                             "KADES_FAULT_SEED": "1"})
    tallies = compare(reference, faulty)
    print(f"\nclean {reference.seconds:.1f} s, faulty {faulty.seconds:.1f} s; injected "
          f"{dict(faulty.injected)}; late inputs {faulty.late_inputs}; events sent again "
          f"with other content {faulty.conflicting}")
    for name, t in tallies.items():
        print(f"  {name}: {t}")
    assert faulty.books.balanced, faulty.books.summary()
    assert all(faulty.injected[point] for point in FAULTS), faulty.injected
    assert faulty.late_inputs == 0
    assert reference.conflicting == faulty.conflicting == 0
    assert all(t.exact for t in tallies.values()), tallies


def test_the_tally_sees_missing_duplicated_and_extra_outputs():
    found = Counter({"a": 1, "b": 2, "x": 1})
    t = tally({"a", "b", "c"}, found)
    assert (t.expected, t.once, t.missing, t.duplicated, t.extra) == (3, 1, 1, 1, 1)
    assert not t.exact and tally({"a"}, Counter({"a": 1})).exact
