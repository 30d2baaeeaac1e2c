"""Detector units: quiet tokens, warm-up, late posts, state round trips through JSON."""
from __future__ import annotations

import json
import math

from kades.sentiment.coordination import CoordinatedPromotion, is_candidate, similarity, sketch
from kades.sentiment.detectors import MentionBurst, SentimentShift


def roundtrip(detector):
    return type(detector).from_state(json.loads(json.dumps(detector.to_state())))


def test_a_quiet_token_needs_a_real_crowd_to_burst():
    burst = MentionBurst()
    for minute in range(0, 120, 10):  # one post every ten minutes
        assert burst.learn_one(60.0 * minute) is None
    flags = [burst.learn_one(60.0 * 130 + s) for s in range(7)]
    assert not any(flags)  # seven posts in a minute: below the minimum count
    flags = [burst.learn_one(60.0 * 131 + s) for s in range(12)]
    assert sum(1 for f in flags if f) == 1  # flagged once, when the minute crosses


def test_burst_state_survives_json_and_ignores_late_posts():
    burst = MentionBurst()
    for second in range(0, 1800, 20):
        burst.learn_one(float(second))
    copy = roundtrip(burst)
    assert copy.to_state() == burst.to_state() and copy.mean > 2.5
    assert copy.learn_one(10.0) is None and copy.to_state() == burst.to_state()


def test_burst_does_not_learn_its_own_burst():
    burst = MentionBurst()
    for second in range(0, 1800, 30):
        burst.learn_one(float(second))
    before = burst.mean
    for second in range(100):
        burst.learn_one(1800.0 + second * 0.5)
    burst.learn_one(1900.0)  # closes the burst minute
    assert burst.mean < before + 0.5


def test_one_surge_is_one_burst_unless_it_doubles():
    burst = MentionBurst()
    for second in range(0, 3600, 30):  # two posts a minute for an hour
        burst.learn_one(float(second))
    flags = [burst.learn_one(3600.0 + 60 * minute + s * 4)
             for minute in range(5) for s in range(12)]  # 12 a minute for five minutes
    assert sum(1 for f in flags if f) == 1  # each minute crossed the threshold: one alert
    later = [burst.learn_one(3600.0 + 60 * 6 + s * 2) for s in range(30)]  # 30 in a minute
    assert sum(1 for f in later if f) == 1  # at least twice the flagged count: a new alert
    quiet_then_again = [burst.learn_one(3600.0 + 60 * 30 + s * 4) for s in range(14)]
    assert sum(1 for f in quiet_then_again if f) == 1  # the episode is over


class LoopedBurst(MentionBurst):
    """The reference: every quiet minute closed one by one, as the recurrence says."""

    def _close_quiet(self, minutes: int) -> None:
        for _ in range(minutes):
            self._close_minute(0)


def test_quiet_minutes_in_closed_form_match_the_loop():
    """Gaps of every length, in warm-up and after it, up to the one-day bound."""
    import random
    rng = random.Random(7)
    fast, slow, moment = MentionBurst(), LoopedBurst(), 0.0
    flags_fast, flags_slow = [], []
    for _ in range(3000):
        moment += rng.choice([0.5, 3.0, 45.0, 300.0, 3600.0, 2 * 86400.0])
        flags_fast.append(fast.learn_one(moment))
        flags_slow.append(slow.learn_one(moment))
        for name in ("mean", "var"):
            assert math.isclose(getattr(fast, name), getattr(slow, name),
                                rel_tol=1e-9, abs_tol=1e-12), name
        assert fast.seen_minutes == slow.seen_minutes
    assert [f is None for f in flags_fast] == [f is None for f in flags_slow]
    assert any(flags_fast)


def test_shift_flags_a_sustained_turn_once():
    shift = SentimentShift()
    flags = [shift.learn_one(0.3 if i % 2 else 0.1) for i in range(60)]
    flags += [shift.learn_one(-0.8) for _ in range(30)]
    found = [f for f in flags if f]
    assert len(found) == 1 and found[0]["direction"] == "negative" and found[0]["before"] > 0
    assert roundtrip(shift).to_state() == shift.to_state()


def test_shift_waits_for_its_grace_period():
    shift = SentimentShift()
    assert not any(shift.learn_one(0.9 if i < 5 else -0.9) for i in range(25))


def test_candidates_and_similarity():
    assert is_candidate(None) and is_candidate({"followers": 10})
    assert is_candidate({"account_age_days": 2}) and not is_candidate(
        {"followers": 5000, "account_age_days": 400})
    # a known account past 30 days is none, however few its followers (most users have few)
    assert not is_candidate({"followers": 10, "account_age_days": 400})
    text = "huge news dont miss $PEPE next 100x gem aping now before the CEX listing"
    assert similarity(sketch(text), sketch(text + " LFG")) >= 0.8
    assert similarity(sketch(text), sketch("totally different words about another coin today")) == 0


def test_established_accounts_and_short_posts_are_not_coordination():
    detector = CoordinatedPromotion()
    text = "huge news dont miss $PEPE next 100x gem aping now before the CEX listing"
    assert not any(detector.learn_one(i, f"p{i}", f"a{i}", text, False) for i in range(10))
    assert not any(detector.learn_one(i, f"q{i}", f"b{i}", "gm $PEPE 🚀", True) for i in range(10))
    flags = [detector.learn_one(100.0 + i, f"r{i}", f"c{i % 3}", text, True) for i in range(10)]
    assert not any(flags)  # three authors repeating themselves are not a crowd
    assert roundtrip(detector).to_state() == detector.to_state()


def test_a_shift_over_days_of_rare_posts_is_no_shift():
    """On a token named once a day the fast average's ten posts spanned ten days: all four
    shifts of the real $ETH stream were such."""
    from kades.sentiment.detectors import SentimentShift
    daily, hourly = SentimentShift(), SentimentShift()
    compounds = [0.6] * 40 + [-0.6] * 20
    daily_flags = [daily.learn_one(c, 86400.0 * i) for i, c in enumerate(compounds)]
    hourly_flags = [hourly.learn_one(c, 600.0 * i) for i, c in enumerate(compounds)]
    assert not any(daily_flags)
    assert [f["direction"] for f in hourly_flags if f] == ["negative"]
