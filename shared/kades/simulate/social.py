"""Seeded social chatter about tokens, with labelled campaigns: the social half of the demo.

Every token gets organic chatter (established and small accounts, mixed sentiment, varied
wording). Campaigns are laid on top, each labelled with the anomaly kinds it should raise:

- `hype`: an organic burst (many different accounts, varied, positive) → mention_burst;
- `shill`: one template lightly varied, posted by fresh low-follower accounts within minutes
  (paid promotion before a pump) → coordinated_promotion, mention_burst;
- `fud`: a wave of angry posts after a rug → mention_burst, sentiment_shift.

Pass the market simulation's mints and times (`tokens`, `start`, `campaigns`) to play a shill
campaign before a pump and FUD after the crash in the same story. Same seed, same posts.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from kades.events.catalogue import SOCIAL_POSTS
from kades.events.envelope import CloudEvent
from kades.simulate.market import DEFAULT_START, fake_mint, rfc3339, window_events

KINDS = {"hype": ("mention_burst",), "shill": ("coordinated_promotion", "mention_burst"),
         "fud": ("mention_burst", "sentiment_shift")}
WARM_UP_MIN = 12.0  # organic chatter before the first campaign: the detectors' grace period
PLATFORMS = ("x", "telegram", "discord", "reddit")
_OPENERS = ("", "ok so", "honestly", "gm.", "ngl", "update:", "thoughts?", "fwiw", "lol", "hmm")
_BODIES = {
    "positive": ("{t} looking strong today", "just added more {t}", "chart on {t} is clean",
                 "{t} community is growing fast", "{t} holding support nicely", "bullish on {t}",
                 "{t} volume picking up, nice", "{t} team shipped the update, love it"),
    "neutral": ("anyone tracking {t} volume?", "what is the roadmap for {t}", "{t} listed where?",
                "{t} holders count went up a bit", "watching {t} for now", "is {t} on jupiter yet",
                "who is the dev behind {t}", "{t} chart update in the thread"),
    "negative": ("{t} looks weak, careful", "sold my {t}, too much selling", "not convinced by {t}",
                 "{t} bleeding again", "{t} team silent for days, worried", "{t} lost support, bearish"),
}
_CLOSERS = ("", "", "", "🚀", "👀", "nfa", "dyor", "#solana", "#memecoin", "tbh", "imo")
_SHILL = ("🚨 {t} is the next 100x gem! dev doxxed, liquidity locked, CEX listing soon. "
          "get in before it moons {e}",
          "{t} about to explode 🔥 whales are loading, chart breaking out, dont miss this "
          "one {e}",
          "last chance to grab {t} before the pump, strong team, huge marketing push coming {e}")
_SHILL_SWAPS = {"gem": ("gem", "play", "moonshot"), "soon": ("soon", "next week", "confirmed"),
                "loading": ("loading", "buying", "accumulating"), "strong": ("strong", "solid", "great")}
_FUD = ("{t} rugged, dev sold everything", "liquidity pulled on {t}, scam", "{t} is a honeypot, cant sell",
        "lost everything on {t}, total scam", "{t} dev dumped on us, stay away", "rekt by {t} 💀",
        "{t} exit scam confirmed, reported", "{t} going to zero, absolute rug")
_HYPE = ("{t} just got listed, huge!", "{t} partnership announced, wow", "{t} trending everywhere",
         "{t} ath incoming, volume exploding", "{t} breakout confirmed", "{t} is everywhere today")


@dataclass(frozen=True)
class SocialSimulation:
    seed: int
    posts: list[dict]     # sorted by time
    events: list[CloudEvent]
    labels: list[dict]    # {token, campaign, kinds, start, end}
    tracked: list[dict]   # {token, symbol, name}: what the scraper follows


def _symbol(rng) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "".join(letters[i] for i in rng.integers(0, 26, size=int(rng.integers(3, 6))))


class _Accounts:
    """A seeded population: established accounts, small organic ones, and fresh shill accounts."""

    def __init__(self, rng):
        self.rng, self.fresh = rng, 0

    def organic(self) -> tuple[str, dict]:
        n = int(self.rng.integers(0, 400))
        if n < 250:  # established
            return f"user{n}", {"followers": 500 + n * 97, "account_age_days": 120 + n * 5}
        return f"small{n}", {"followers": n % 200, "account_age_days": 40 + n}

    def new(self) -> tuple[str, dict]:
        self.fresh += 1
        return (f"fresh{self.fresh:05d}{int(self.rng.integers(0, 999)):03d}",
                {"followers": int(self.rng.integers(0, 150)),
                 "account_age_days": float(self.rng.integers(0, 10))})


def _mention(rng, tracked: dict) -> str:
    roll = rng.random()
    if roll < 0.75:
        return f"${tracked['symbol']}"
    return tracked["name"] if roll < 0.9 else tracked["token"]


def _organic_text(rng, mention: str) -> str:
    mood = ("positive", "neutral", "negative")[int(rng.choice(3, p=(0.4, 0.4, 0.2)))]
    body = _BODIES[mood][int(rng.integers(0, len(_BODIES[mood])))].format(t=mention)
    opener = _OPENERS[int(rng.integers(0, len(_OPENERS)))]
    closer = _CLOSERS[int(rng.integers(0, len(_CLOSERS)))]
    return " ".join(part for part in (opener, body, closer) if part)


def _shill_text(rng, template: str, mention: str) -> str:
    text = template.format(t=mention, e="🚀" * int(rng.integers(1, 4)))
    word = list(_SHILL_SWAPS)[int(rng.integers(0, len(_SHILL_SWAPS)))]
    choices = _SHILL_SWAPS[word]
    text = text.replace(word, choices[int(rng.integers(0, len(choices)))], 1)
    return text + ("", " LFG", " nfa", " dont fade this")[int(rng.integers(0, 4))]


def _post(rng, moment: datetime, author: tuple[str, dict], text: str, counter: list) -> dict:
    counter[0] += 1
    name, meta = author
    scale = 1 + meta["followers"] / 500
    return {"id": f"sim-{counter[0]:07d}", "platform": PLATFORMS[int(rng.integers(0, 4))],
            "author": name, "text": text, "time": rfc3339(moment), "author_meta": meta,
            "engagement": {"likes": int(rng.poisson(2 * scale)), "reposts": int(rng.poisson(0.3 * scale)),
                           "replies": int(rng.poisson(0.5 * scale))}}


def _campaign_posts(rng, campaign: dict, tracked: dict, accounts, counter) -> tuple[list, dict]:
    kind, begin = campaign["kind"], campaign["start"]
    minutes = float(campaign.get("minutes", {"hype": 3, "shill": 6, "fud": 5}[kind]))
    per_minute = float(campaign.get("per_minute", {"hype": 14, "shill": 9, "fud": 12}[kind]))
    template = _SHILL[int(rng.integers(0, len(_SHILL)))]
    posts = []
    for _ in range(int(rng.poisson(per_minute * minutes))):
        moment = begin + timedelta(seconds=float(rng.uniform(0, minutes * 60)))
        mention = f"${tracked['symbol']}" if rng.random() < 0.85 else tracked["token"]
        if kind == "shill":
            author, text = accounts.new(), _shill_text(rng, template, mention)
        else:
            lines = _FUD if kind == "fud" else _HYPE
            author = accounts.organic()
            text = " ".join(filter(None, (_OPENERS[int(rng.integers(0, len(_OPENERS)))],
                                          lines[int(rng.integers(0, len(lines)))].format(t=mention),
                                          _CLOSERS[int(rng.integers(0, len(_CLOSERS)))])))
        posts.append(_post(rng, moment, author, text, counter))
    label = {"token": tracked["token"], "campaign": kind, "kinds": list(KINDS[kind]),
             "start": rfc3339(begin), "end": rfc3339(begin + timedelta(minutes=minutes))}
    return posts, label


def _plan(rng, tokens: list[str], start: datetime, minutes: float) -> list[dict]:
    """One campaign per token, after the warm-up, kinds drawn from the seed."""
    room = minutes - WARM_UP_MIN - 8
    if room <= 0:
        return []
    return [{"token": token, "kind": ("hype", "shill", "fud")[int(rng.integers(0, 3))],
             "start": start + timedelta(minutes=WARM_UP_MIN + float(rng.uniform(0, room)))}
            for token in tokens]


def simulate_social(*, seed: int, tokens: list[str] | None = None, start: datetime | None = None,
                    minutes: float = 30, campaigns: list[dict] | None = None,
                    symbols: dict[str, str] | None = None, organic_per_minute: tuple = (1.5, 4.0),
                    batch_s: float = 10.0, source: str = "/kades/social-simulator"
                    ) -> SocialSimulation:
    """Posts about `tokens` (5 fresh mints when None) for `minutes` from `start`.

    `campaigns`: [{token, kind: hype|shill|fud, start: datetime, minutes?, per_minute?}];
    None plans one random campaign per token, [] none at all. `symbols`: token → symbol.
    """
    rng = np.random.default_rng(seed)
    start = start or DEFAULT_START
    tokens = tokens or [fake_mint(rng) for _ in range(5)]
    symbols = symbols or {}
    tracked = []
    for token in tokens:
        symbol = symbols.get(token) or _symbol(rng)
        tracked.append({"token": token, "symbol": symbol, "name": f"{symbol.title()} Coin"})
    by_token = {entry["token"]: entry for entry in tracked}
    accounts, counter, posts, labels = _Accounts(rng), [0], [], []
    for entry in tracked:
        rate = float(rng.uniform(*organic_per_minute))
        for _ in range(int(rng.poisson(rate * minutes))):
            moment = start + timedelta(seconds=float(rng.uniform(0, minutes * 60)))
            posts.append(_post(rng, moment, accounts.organic(),
                               _organic_text(rng, _mention(rng, entry)), counter))
    for campaign in (_plan(rng, tokens, start, minutes) if campaigns is None else campaigns):
        made, label = _campaign_posts(rng, campaign, by_token[campaign["token"]], accounts, counter)
        posts += made
        labels.append(label)
    end = rfc3339(start + timedelta(minutes=minutes))
    posts = sorted((p for p in posts if p["time"] < end), key=lambda p: (p["time"], p["id"]))
    labels.sort(key=lambda label: (label["start"], label["token"]))
    return SocialSimulation(seed, posts, post_events(posts, tracked, seed=seed, start=start,
                                                     batch_s=batch_s, source=source),
                            labels, tracked)


def post_events(posts: list[dict], tracked: list[dict], *, seed: int, start: datetime,
                batch_s: float, source: str) -> list[CloudEvent]:
    """SOCIAL_POSTS events, one per `batch_s` window, in time order (stable ids); a window
    over the size limit in consecutive parts, each with the tracked tokens."""
    batches: dict[int, list[dict]] = {}
    origin = start.timestamp()
    for post in posts:
        moment = datetime.fromisoformat(post["time"].replace("Z", "+00:00")).timestamp()
        batches.setdefault(int((moment - origin) // batch_s), []).append(post)
    return [event for index, batch in sorted(batches.items())
            for event in window_events(batch, SOCIAL_POSTS, "posts", source=source,
                                       name=f"kades-social:{seed}:{origin}:{index}",
                                       extra={"tracked": tracked})]
