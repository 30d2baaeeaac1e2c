"""normalise_ticks: one canonical shape, whatever order, offsets and repeats a feed sends."""
from __future__ import annotations

import pytest

from kades.errors import BadRequestError
from kades.market.aggregate import normalise_ticks, normalise_time


def test_times_become_utc_with_z():
    assert normalise_time("2024-01-01T02:00:00+02:00") == "2024-01-01T00:00:00Z"
    assert normalise_time("2024-01-01t00:00:00.250z") == "2024-01-01T00:00:00.25Z"
    assert normalise_time("2024-01-01 00:00:00Z") == "2024-01-01T00:00:00Z"


def test_sorted_by_token_then_instant():
    ticks = [{"token": "B", "time": "2024-01-01T00:00:05Z", "price": 1},
             {"token": "A", "time": "2024-01-01T00:00:05Z", "price": 2},
             {"token": "A", "time": "2024-01-01T00:00:04.5Z", "price": 3},
             {"token": "A", "time": "2024-01-01T01:00:00+02:00", "price": 4}]
    out = normalise_ticks(ticks)
    assert [(t["token"], t["price"]) for t in out] == [("A", 4.0), ("A", 3.0), ("A", 2.0), ("B", 1.0)]
    assert out[0]["time"] == "2023-12-31T23:00:00Z"


def test_ticks_of_one_instant_and_source_merge_other_sources_kept():
    ticks = [{"token": "A", "time": "2024-01-01T00:00:00Z", "price": 1, "source": "dex"},
             {"token": "A", "time": "2024-01-01T01:00:00+01:00", "price": 9, "source": "dex"},
             {"token": "A", "time": "2024-01-01T00:00:00Z", "price": 2, "source": "cex"}]
    out = normalise_ticks(ticks)
    assert sorted((t["source"], t["price"]) for t in out) == [("cex", 2.0), ("dex", 9.0)]


def test_fills_of_one_millisecond_are_summed_and_a_repeat_dropped():
    """One order filling several at one millisecond: every fill after the first was dropped
    as a repeat, 44 % of the pump tapes' volume."""
    fill = {"token": "A", "time": "2024-01-01T00:00:00.123Z", "source": "binance", "quote": "USDT"}
    ticks = [{**fill, "price": 1.0, "volume": 1.0}, {**fill, "price": 1.1, "volume": 2.0},
             {**fill, "price": 1.1, "volume": 2.0},  # the same fill again: a retried upload
             {**fill, "price": 1.2, "volume": 4.0}]
    (merged,) = normalise_ticks(ticks)
    assert (merged["price"], merged["volume"], merged["quote"]) == (1.2, 7.0, "USDT")


def test_default_source_fills_and_dedups():
    ticks = [{"token": "A", "time": "2024-01-01T00:00:00Z", "price": 1},
             {"token": "A", "time": "2024-01-01T00:00:00Z", "price": 1, "source": "/feed"}]
    out = normalise_ticks(ticks, default_source="/feed")
    assert out == [{"token": "A", "time": "2024-01-01T00:00:00Z", "price": 1.0, "source": "/feed"}]


def test_optional_fields_stay_absent_and_input_untouched():
    tick = {"token": "A", "time": "2024-01-01T00:00:00+00:00", "price": 1, "volume": 5}
    out = normalise_ticks([tick])
    assert out == [{"token": "A", "time": "2024-01-01T00:00:00Z", "price": 1.0, "volume": 5.0}]
    assert tick["time"] == "2024-01-01T00:00:00+00:00"


def test_every_bad_time_reported_at_once():
    ticks = [{"token": "A", "time": "2024-13-01T00:00:00Z", "price": 1},
             {"token": "A", "time": "2024-01-01T00:00:00", "price": 1},
             {"token": "A", "time": "2024-01-01T00:00:00Z", "price": 1}]
    with pytest.raises(BadRequestError) as caught:
        normalise_ticks(ticks)
    assert [p.field for p in caught.value.problems] == ["ticks[0].time", "ticks[1].time"]


def test_ticks_in_two_quotes_are_two_ticks():
    """A feed's USD and SOL prices of one token at one time, merged as one tick, summed
    dollars and SOL in one volume under the last one's quote."""
    out = normalise_ticks([
        {"token": "T", "time": "2024-01-01T00:00:00Z", "price": 150.0, "volume": 1000.0, "quote": "USD"},
        {"token": "T", "time": "2024-01-01T00:00:00Z", "price": 1.0, "volume": 7.0, "quote": "SOL"}],
        default_source="feed")
    assert sorted((t["quote"], t["price"], t["volume"]) for t in out) == [
        ("SOL", 1.0, 7.0), ("USD", 150.0, 1000.0)]


def test_fills_summing_past_a_ticks_bound_are_a_400_naming_them():
    """Each fill within the feed's bound (1e30), their sum past the tick's: the tick sent on
    failed its own contract, and temporal-analysis refused the whole event."""
    fill = {"token": "A", "time": "2024-01-01T00:00:00Z", "price": 1.0, "volume": 1e30}
    with pytest.raises(BadRequestError) as refused:
        normalise_ticks([fill, {**fill, "price": 2.0}], default_source="feed")
    assert [p.field for p in refused.value.problems] == ["ticks"]
    assert "sum to 2e+30" in refused.value.problems[0].message
