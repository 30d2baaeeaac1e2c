"""The demo story: market, social and chain scenarios over the same minutes, labelled.

The market simulator injects spikes and crashes into 5 tokens; the social simulator talks
about those same tokens, with a shill campaign ahead of the first price spike and a wave of
FUD at the first flash crash; the chain simulator plays its scenarios (wash ring, cycle,
soft rug, dump, sniper launch, whales...) on tokens of its own. Every label says which
anomaly kinds count as its detection, so `make run` and the tests can match them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from kades.events.envelope import CloudEvent
from kades.simulate.chain import simulate_chain
from kades.simulate.market import feed_events, simulate_market
from kades.simulate.social import simulate_social
from kades.temporal.threshold import COOLDOWN_S

CHAIN_WINDOW = timedelta(minutes=5)  # chain detectors need a few blocks (accumulation ~2 min)
# A kind alerted again this soon on a token is the same event (kades.temporal.threshold, REPEAT)
REPEAT_S = timedelta(seconds=COOLDOWN_S)


@dataclass(frozen=True)
class Story:
    events: list[CloudEvent]   # every event of every stream, in time order
    labels: list[dict]         # {source, token, kinds, start, end, required}, market ones `repeats`


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# The simulator's spikes and crashes trade heavily (3x volume): a crash on heavy volume is a
# dump too, and a spike on heavy volume a pump.
ALSO = {"flash_crash": ("dump",), "price_spike": ("pump",)}


def demo_story(*, seed: int, minutes: float = 30, start: datetime | None = None,
               chain: bool = True, social: bool = True) -> Story:
    market = simulate_market(seed=seed, minutes=minutes, start=start)
    start = _at(market.ticks[0]["time"])
    events = feed_events(market, source="/kades/demo/market")
    labels = [{"source": "market", "token": l["token"],
               "kinds": [l["kind"], *ALSO.get(l["kind"], ())], "start": l["start"],
               "end": l["end"], "required": not repeats, "repeats": repeats}
              for l, repeats in zip(market.labels, repeated_moves(market.labels))]
    if social:
        tokens = sorted({tick["token"] for tick in market.ticks})
        posts = simulate_social(seed=seed, tokens=tokens, start=start, minutes=minutes,
                                campaigns=_campaigns(market.labels, start,
                                                    start + timedelta(minutes=minutes)))
        events += posts.events
        labels += [{"source": "social", "token": l["token"], "kinds": l["kinds"],
                    "start": l["start"], "end": l["end"], "required": True} for l in posts.labels]
    if chain:
        blocks = simulate_chain(seed=seed, minutes=minutes, start=start)
        events += blocks.events
        for l in blocks.labels:
            begin = datetime.fromtimestamp(l["start_s"], timezone.utc)
            labels.append({"source": "chain", "token": l["token"], "kinds": [l["kind"]],
                           "start": _iso(begin), "end": _iso(begin + CHAIN_WINDOW),
                           "required": l["required"]})
    events.sort(key=lambda event: _at(event.attributes["time"]))
    labels.sort(key=lambda label: label["start"])
    return Story(events, labels)


def repeated_moves(market_labels: list[dict]) -> list[str | None]:
    """For each market label (in time order), the start of the same token's last counted
    label of the same kind if less than REPEAT_S before it, else None. Once the first move was
    alerted, the alert policy takes the second as the first one printing on, unless far
    stronger (kades.temporal.threshold, REPEAT), so it is shown but not required. An
    approximation of the policy's rule, which counts from the alert and covers every kind
    over the threshold at it: a second move after a missed first one is excused too."""
    last: dict[tuple[str, str], datetime] = {}
    repeats = []
    for label in market_labels:
        key, start = (label["token"], label["kind"]), _at(label["start"])
        before = last.get(key)
        repeated = before is not None and start - before < REPEAT_S
        repeats.append(_iso(before) if repeated else None)
        if not repeated:
            last[key] = start
    return repeats


def _campaigns(market_labels: list[dict], start: datetime, end: datetime) -> list[dict]:
    """Shill a token 8 minutes before its first price spike; FUD a token as it crashes."""
    campaigns = []
    spike = next((l for l in market_labels if l["kind"] == "price_spike"
                  and _at(l["start"]) - timedelta(minutes=8) >= start), None)
    if spike:
        campaigns.append({"token": spike["token"], "kind": "shill",
                          "start": _at(spike["start"]) - timedelta(minutes=8)})
    # the latest crash that leaves time to see the wave: the detectors judge a token against
    # its own chatter, so they need some history of it first
    crashes = [l for l in market_labels if l["kind"] == "flash_crash"
               and start + timedelta(minutes=10) <= _at(l["start"]) <= end - timedelta(minutes=6)]
    crash = crashes[-1] if crashes else None
    if crash:
        campaigns.append({"token": crash["token"], "kind": "fud", "start": _at(crash["start"])})
    return campaigns


def detection_of(label: dict, anomalies: list[dict], *, grace_s: float = 60) -> dict | None:
    """The earliest anomaly that detects `label` (its token, one of its kinds, in its window)."""
    # Block times are whole seconds: a detection may carry a time just before the label's.
    begin = _at(label["start"]) - timedelta(seconds=2)
    end = _at(label["end"]) + timedelta(seconds=grace_s)
    hits = [a for a in anomalies if a["token"] == label["token"]
            and a["anomaly_type"] in label["kinds"] and begin <= _at(a["time"]) <= end]
    return min(hits, key=lambda a: _at(a["time"])) if hits else None
