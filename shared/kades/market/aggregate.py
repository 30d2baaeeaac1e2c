"""Pure tick normalisation: one canonical shape, whatever the feed sent.

Feeds send times with any offset and in any order, and a retried upload may repeat ticks.
Downstream detectors want every token's ticks in time order, in UTC, each measurement once.
"""
from __future__ import annotations

from datetime import datetime, timezone

from kades.errors import BadRequestError, Problem
from kades.events.catalogue import MAX_AMOUNT

_NUMBERS = ("price", "volume", "liquidity")


def normalise_time(text: str) -> str:
    """An RFC 3339 time as UTC with a `Z` (fraction kept, trailing zeros dropped).

    >>> normalise_time("2024-03-01T12:00:00.500+02:00")
    '2024-03-01T10:00:00.5Z'
    """
    moment = datetime.fromisoformat(text.strip().replace("t", "T").replace("z", "Z"))
    if moment.tzinfo is None:
        raise ValueError(f"time without a UTC offset: {text!r}")
    utc = moment.astimezone(timezone.utc)
    whole = utc.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{utc.microsecond:06d}".rstrip("0")
    return f"{whole}.{fraction}Z" if fraction else f"{whole}Z"


def normalise_ticks(ticks: list[dict], *, default_source: str | None = None) -> list[dict]:
    """Ticks sorted by (token, time), times in UTC, one per (token, time, source, quote).

    A tick without a source gets `default_source` (when given). Ticks sharing a token, time,
    source and quote are one (a feed's USD and SOL prices of a token are two series, as
    temporal-analysis keeps them: merged, dollars and SOL were summed in one volume): an
    exact repeat (a retried upload) is dropped, and different ones (one order filling several
    at one millisecond: 44 % of the pump tapes' volume was dropped with them) are merged,
    their volumes summed, the last one's price and liquidity kept. Numbers become floats;
    absent optional fields stay absent. Every bad time, and every sum of volumes past a
    tick's bound, is reported in one BadRequestError.
    """
    merged: dict[tuple, dict] = {}
    seen: set[tuple] = set()
    problems = []
    for index, tick in enumerate(ticks):
        try:
            time = normalise_time(tick["time"])
        except (ValueError, TypeError) as error:
            problems.append(Problem(f"ticks[{index}].time", str(error)))
            continue
        source = tick.get("source") or default_source
        clean = {"token": tick["token"], "time": time}
        clean.update({name: float(tick[name]) for name in _NUMBERS if tick.get(name) is not None})
        if source:
            clean["source"] = source
        if tick.get("quote"):
            clean["quote"] = tick["quote"]
        key, exact = (tick["token"], time, source, clean.get("quote")), tuple(sorted(clean.items()))
        if exact in seen:
            continue  # the same tick again
        seen.add(exact)
        kept = merged.get(key)
        if kept is None:
            merged[key] = clean
            continue
        volume = kept.get("volume", 0.0) + clean.get("volume", 0.0)
        kept.update(clean)
        if "volume" in kept or volume:
            kept["volume"] = volume
    # fills summed past what a tick may carry: the tick sent on failed its own contract, and
    # temporal-analysis refused the whole event (400, not retried: dead-lettered)
    problems += [Problem("ticks", f"the volumes of {tick['token']} at {tick['time']} from "
                                  f"{tick.get('source')} sum to {tick['volume']:g}, over {MAX_AMOUNT:g}")
                 for tick in merged.values() if tick.get("volume", 0.0) > MAX_AMOUNT]
    if problems:
        raise BadRequestError("invalid ticks", problems)
    # Sort on the instant, not the text: "…:05.5Z" sorts before "…:05Z" as text.
    return sorted(merged.values(),
                  key=lambda clean: (clean["token"], datetime.fromisoformat(clean["time"])))
