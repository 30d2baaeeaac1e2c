"""Mention bursts and sentiment shifts of one token, as small classes over JSON-able state.

Both learn from the token's own history. `MentionBurst` counts mentions per minute (the
distinct authors of the minute, when the author is given: one account typing "a", "as",
"fff" seven times in a minute was a burst on the real $ETH stream) against an exponentially
weighted per-minute baseline; a quiet token's baseline is floored, and a
burst needs a minimum count, so three posts in a minute about a token that sees one an hour
are not a burst. A flagged minute teaches the baseline only up to the threshold (the burst
must not make itself normal). `SentimentShift` compares a fast and a slow moving average of
post compounds.

>>> burst = MentionBurst()
>>> flags = [burst.learn_one(60.0 * m + s) for m in range(30) for s in (1, 30)]
>>> [f for f in flags if f]
[]
>>> flags = [burst.learn_one(60.0 * 30 + s) for s in range(20)]
>>> [round(f["count"]) for f in flags if f]
[9]
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import ClassVar


@dataclass
class MentionBurst:
    """Per-minute mention counts against the token's own baseline."""

    alpha: float = 1 / 60          # baseline memory: about an hour of minutes
    floor_per_minute: float = 0.5  # quiet tokens: never expect fewer than this
    sigmas: float = 4.0
    min_count: int = 8
    grace_minutes: int = 10        # history needed before flagging anything
    # One surge, one alert: within this many minutes of a flag only a minute with at least
    # twice its count is flagged again (a real surge crosses the threshold minute after minute).
    episode_minutes: int = 15
    minute: int | None = None
    count: int = 0
    mean: float = 0.0
    var: float = 0.0
    seen_minutes: int = 0
    flagged_minute: int | None = None
    flagged_count: int = 0
    authors: list[str] = field(default_factory=list)  # the current minute's, as short digests

    def threshold(self) -> float:
        expected = max(self.mean, self.floor_per_minute)
        spread = math.sqrt(max(self.var, expected))  # at least Poisson spread
        return max(float(self.min_count), expected + self.sigmas * spread + 1.0)

    def _close_minute(self, count: float) -> None:
        limit = self.threshold()
        count = min(count, limit)  # what a flagged minute teaches the baseline
        self.seen_minutes += 1
        alpha = max(self.alpha, 1.0 / self.seen_minutes)  # a plain mean until warmed up
        delta = count - self.mean
        self.mean += alpha * delta
        self.var = (1 - alpha) * (self.var + alpha * delta * delta)

    def _close_quiet(self, minutes: int) -> None:
        """Close `minutes` minutes without a mention (zeros). Once the rate is fixed (warmed
        up) in closed form: a token named once a day would otherwise loop over a day of
        minutes at each post. With f = (1 - alpha)^k, k zeros take the mean m to f m and the
        variance v to f (v + m^2 (1 - f)) (the recurrence solved; tests/sentiment check it
        against the loop)."""
        while minutes > 0 and self.alpha < 1.0 / (self.seen_minutes + 1):  # still a plain mean
            self._close_minute(0)
            minutes -= 1
        if minutes > 0:
            kept = (1.0 - self.alpha) ** minutes
            self.var = kept * (self.var + self.mean * self.mean * (1.0 - kept))
            self.mean *= kept
            self.seen_minutes += minutes

    def learn_one(self, moment_s: float, author: str | None = None) -> dict | None:
        """Count one mention at `moment_s`, by `author` (counted once a minute; None: every
        mention counts); a flag the first time its minute crosses the threshold.

        Mentions older than the current minute are ignored (late posts cannot move a past minute).
        """
        minute = int(moment_s // 60)
        if self.minute is None:
            self.minute = minute
        elif minute < self.minute:
            return None
        elif minute > self.minute:
            self._close_minute(self.count)
            self._close_quiet(min(minute - self.minute - 1, 24 * 60))  # bounded: a day
            self.minute, self.count, self.authors = minute, 0, []
        if author is not None:
            digest = format(zlib.crc32(author.encode()), "08x")
            if digest in self.authors:
                return None
            self.authors.append(digest)
        self.count += 1
        limit = self.threshold()
        if (self.seen_minutes >= self.grace_minutes and self.count >= limit
                and self.flagged_minute != minute and self._new_episode(minute)):
            self.flagged_minute, self.flagged_count = minute, self.count
            expected = max(self.mean, self.floor_per_minute)
            return {"minute_start_s": minute * 60, "count": self.count,
                    "baseline_per_minute": round(self.mean, 4), "threshold": round(limit, 2),
                    "score": round(min(1.0, 1.0 - expected / self.count), 4)}
        return None

    def _new_episode(self, minute: int) -> bool:
        return (self.flagged_minute is None or minute - self.flagged_minute >= self.episode_minutes
                or self.count >= 2 * self.flagged_count)

    LEARNED: ClassVar[tuple[str, ...]] = ("minute", "count", "mean", "var", "seen_minutes",
                                          "flagged_minute", "flagged_count", "authors")

    def to_state(self) -> dict:
        """Only what was learned: parameters come from the code, so a change applies at once."""
        return {name: getattr(self, name) for name in self.LEARNED}

    @classmethod
    def from_state(cls, state: dict | None) -> "MentionBurst":
        return cls(**{k: v for k, v in (state or {}).items() if k in cls.LEARNED})


@dataclass
class SentimentShift:
    """A fast moving average of post compounds leaving the slow one by more than `gap`, the
    fast one's last `recent_posts` posts written within `recent_span_s`: on a token named
    once a day the "fast" average spans ten days, and all four shifts of the real $ETH
    stream were such (a $GBTC "negative" flag on a post scoring +0.73)."""

    fast_alpha: float = 0.1
    slow_alpha: float = 0.02
    gap: float = 0.5
    grace_posts: int = 30
    cooldown_posts: int = 40
    recent_posts: int = 10
    recent_span_s: float = 6 * 3600.0
    fast: float = 0.0
    slow: float = 0.0
    posts: int = 0
    flagged_at: int = -10**9
    times: list[float] = field(default_factory=list)  # the last recent_posts posts' times

    def learn_one(self, compound: float, moment_s: float | None = None) -> dict | None:
        if moment_s is not None:
            self.times = [*self.times, moment_s][-self.recent_posts:]
        if self.posts == 0:
            self.fast = self.slow = compound
        else:
            self.fast += self.fast_alpha * (compound - self.fast)
            # The slow average learns a new regime only gradually (clipped input), so the
            # return to normal after a FUD wave is not flagged as a second shift.
            clipped = min(self.slow + self.gap, max(self.slow - self.gap, compound))
            self.slow += self.slow_alpha * (clipped - self.slow)
        self.posts += 1
        moved = self.fast - self.slow
        recent = moment_s is None or (len(self.times) == self.recent_posts
                                      and self.times[-1] - self.times[0] <= self.recent_span_s)
        if (self.posts >= self.grace_posts and abs(moved) >= self.gap and recent
                and self.posts - self.flagged_at >= self.cooldown_posts):
            self.flagged_at = self.posts
            return {"direction": "negative" if moved < 0 else "positive",
                    "before": round(self.slow, 4), "after": round(self.fast, 4),
                    "score": round(min(1.0, abs(moved)), 4)}
        return None

    LEARNED: ClassVar[tuple[str, ...]] = ("fast", "slow", "posts", "flagged_at", "times")

    def to_state(self) -> dict:
        return {name: getattr(self, name) for name in self.LEARNED}

    @classmethod
    def from_state(cls, state: dict | None) -> "SentimentShift":
        return cls(**{k: v for k, v in (state or {}).items() if k in cls.LEARNED})
