"""A token's aggregates (kades.sentiment.aggregates): what its trending hashtags keep."""
from __future__ import annotations

from kades.sentiment.aggregates import TAGS_PER_HOUR, add_post, prune, summarise


def test_a_tag_that_comes_often_trends_however_many_came_before_it_in_the_hour():
    """Past an hour's first TAGS_PER_HOUR tags, a new tag (count 1) was cut at every batch: the
    hour's list was frozen, and a tag posted 30 times in its second half never trended."""
    state, moment = {}, 3600.0 * 100
    for k in range(TAGS_PER_HOUR + 5):  # many tags once each, then a few twice
        add_post(state, moment + k, {}, "neutral", 0.0, [f"old{k}"] * (1 + (k < 3)))
        state["last"] = moment + k
        prune(state)
    for k in range(30):
        add_post(state, moment + 1000 + k, {}, "positive", 0.5, ["rugpull"])
        state["last"] = moment + 1000 + k
        prune(state)
    trending = summarise("T", state, "1h", unique_authors=1)["trending_hashtags"]
    assert trending[0]["tag"] == "rugpull" and trending[0]["count"] >= 30
    assert len(state["tags"][str(int(moment // 3600))]) <= TAGS_PER_HOUR  # bounded as before


def test_a_long_tail_of_tags_posted_once_does_not_trend_at_its_length():
    """Each of 25 tags posted once: the last five took the places of five others, each at
    the count it took over plus one. What they certainly had is one, or nothing."""
    state, moment = {}, 3600.0 * 100
    for k in range(25):
        add_post(state, moment + k, {}, "neutral", 0.0, [f"tag{k}"])
    state["last"] = moment + 24
    kept = state["tags"][str(int(moment // 3600))]
    assert len(kept) == TAGS_PER_HOUR and "tag24" in kept and "tag0" not in kept
    trending = summarise("T", state, "1h", unique_authors=1)["trending_hashtags"]
    assert {row["count"] for row in trending} == {1}  # never 2 or more: none was posted twice
