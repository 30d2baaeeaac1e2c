"""kades.chain.funding: a wallet's funder as of a slot, read the same whichever way it is asked
(get, [], in, iteration), for wallets funded, funded later, funded too long ago and never."""
from __future__ import annotations

import random

import pytest

from kades.chain.funding import FundersAsOf, record_fundings


def reference(doc: dict, wallet: str, *, slot: int, time_s: float, ttl_s: float):
    """The latest funding of `wallet` at or before `slot` within `ttl_s`, by brute force."""
    found = [(s, f) for f, t, s in doc["funded"].get(wallet, ()) if s <= slot and time_s - t <= ttl_s]
    return max(found)[1] if found else None


def test_every_way_of_asking_gives_the_latest_funding_as_of_the_slot():
    rng, doc = random.Random(4), None
    for slot in range(100, 160):
        fundings = [[f"F{rng.randrange(4)}", f"w{rng.randrange(40)}"] for _ in range(rng.randrange(0, 12))]
        doc = record_fundings(doc, fundings, slot=slot, time_s=slot * 0.4, ttl_s=10.0)
    wallets = [f"w{n}" for n in range(45)]  # w40-w44: never funded
    checked = 0
    for slot in (99, 110, 130, 159, 200):
        funders = FundersAsOf(doc, slot=slot, time_s=slot * 0.4, ttl_s=10.0)
        expected = {w: reference(doc, w, slot=slot, time_s=slot * 0.4, ttl_s=10.0) for w in wallets}
        for wallet, funder in expected.items():
            assert funders.get(wallet, wallet) == (funder or wallet)
            assert (wallet in funders) == (funder is not None)
            if funder is None:
                with pytest.raises(KeyError):
                    funders[wallet]
            else:
                assert funders[wallet] == funder
                checked += 1
        assert dict(funders) == {w: f for w, f in expected.items() if f is not None}
        assert len(funders) == sum(f is not None for f in expected.values())
    assert checked > 20  # some wallets were funded as of some slots, others not


def test_a_service_paying_its_users_is_no_funder():
    """An exchange's hot wallet paying withdrawals (3+ a slot) was a funder, and four of its
    users trading one token a wallet-splitting cluster at confidence 0.85. One that seeded
    more than SERVICE_WALLETS wallets in more than SERVICE_SLOTS slots within the hour is a
    service; a farm, a creator's 150 sniper wallets seeded at once among them, still counts."""
    from kades.chain.funding import SERVICE_WALLETS
    doc = None
    for slot in range(SERVICE_WALLETS // 3 + 1):  # withdrawals, 3 a slot
        doc = record_fundings(doc, [["Exchange", f"user{slot}-{n}"] for n in range(3)],
                              slot=slot, time_s=float(slot), ttl_s=3600.0)
    doc = record_fundings(doc, [["Farm", f"farm{n}"] for n in range(40)], slot=200,
                          time_s=200.0, ttl_s=3600.0)
    doc = record_fundings(doc, [["Creator", f"c{n}"] for n in range(150)], slot=201,
                          time_s=201.0, ttl_s=3600.0, creators=frozenset({"Creator"}))
    doc = record_fundings(doc, [["Other", f"o{n}"] for n in range(3)], slot=202, time_s=202.0,
                          ttl_s=3600.0)  # the creator's 150 wallets, seeded at once, stay its
    funders = FundersAsOf(doc, slot=300, time_s=300.0, ttl_s=3600.0)
    assert funders.get("user0-0") is None and "user5-1" not in funders
    assert funders.get("farm3") == "Farm" and funders.get("c7") == "Creator"
    assert doc["services"] == ["Exchange"]
