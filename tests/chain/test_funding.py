"""kades.chain.funding: a wallet's funder as of a slot, read the same whichever way it is asked
(get, [], in, iteration), for wallets funded, funded later, funded too long ago and never."""
from __future__ import annotations

import random

import pytest

from kades.chain.funding import FUNDINGS_PER_WALLET, SERVICE_SLOTS, SERVICE_WALLETS, FundersAsOf, Fundings, \
    record_fundings, seeding
from kades.chain.ordering import KEEP_S


def reference(doc: dict, wallet: str, *, slot: int, time_s: float, ttl_s: float):
    """The latest funding of `wallet` at or before `slot` within `ttl_s`, by brute force."""
    found = [(s, f) for f, t, s in doc.funded.get(wallet, ()) if s <= slot and time_s - t <= ttl_s]
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
    assert list(doc.services) == ["Exchange"]


def test_a_funder_is_a_service_only_from_the_slot_its_payments_made_it_one():
    """Judged on the whole view, a funder whose payouts of later slots (recorded before the
    slot was analysed: delivered first, or merely within the lateness) made it a service was
    one as of its first slot too: the wallets it seeded there lost their funder, and the
    sniper and wallet-splitting alerts with them, depending on delivery order."""
    payouts = [(10, [["F", f"w{n}"] for n in range(4)])]
    payouts += [(slot, [["F", f"u{slot}-{n}"] for n in range(5)])
                for slot in range(13, 13 + SERVICE_SLOTS + 1)]
    answers = []
    for order in (payouts, payouts[::-1]):
        doc = None
        for slot, pairs in order:
            doc = record_fundings(doc, pairs, slot=slot, time_s=slot * 0.4, ttl_s=3600.0)
        assert list(doc.services) == ["F"]  # as of the newest slot
        answers.append([FundersAsOf(doc, slot=at, time_s=at * 0.4, ttl_s=3600.0).get(wallet)
                        for at, wallet in ((11, "w0"), (20, "u13-0"), (40, "w0"), (40, "u33-4"))])
    # 4 wallets at slot 10, 5 a slot from 13: the 101st wallet and the 21st slot come at 32
    assert answers[0] == answers[1] == ["F", "F", None, None]
    assert doc.services == {"F": 32}


def recorded_in_full(doc: dict | None, pairs: list, *, slot: int, time_s: float, ttl_s: float,
                     max_wallets: int) -> dict:
    """The rules Fundings keeps, applied to a whole document at each slot (as the shared
    fundings document was): the reference."""
    doc = doc or {"funded": {}, "newest_s": None, "services": {}}
    funded, added = {w: list(es) for w, es in doc["funded"].items()}, False
    for funder, wallet in pairs:
        entries = funded.setdefault(wallet, [])
        if [funder, time_s, slot] not in entries:
            entries.append([funder, time_s, slot])
            entries.sort(key=lambda e: (e[2], e[0]))
            del entries[:-FUNDINGS_PER_WALLET]
            added = True
    if not added:
        return doc
    newest = max(time_s, doc["newest_s"] or time_s)
    kept = {w: [e for e in es if newest - e[1] <= ttl_s + KEEP_S] for w, es in funded.items()}
    kept = {w: es for w, es in kept.items() if es}
    if len(kept) > max_wallets:
        newest_first = sorted(kept, key=lambda w: (kept[w][-1][2], w), reverse=True)
        kept = {w: kept[w] for w in newest_first[:max_wallets]}
    wallets, slots = {}, {}
    for entries in kept.values():
        for funder in {e[0] for e in entries}:
            wallets[funder] = wallets.get(funder, 0) + 1
        for funder, _, paid_in in entries:
            slots.setdefault(funder, set()).add(paid_in)
    services = {}  # a service from the slot its 101st wallet and 21st slot were paid in
    for funder in sorted(f for f, n in wallets.items() if n > SERVICE_WALLETS and len(slots[f]) > SERVICE_SLOTS):
        firsts = sorted(min(e[2] for e in es if e[0] == funder) for es in kept.values()
                        if any(e[0] == funder for e in es))
        services[funder] = max(firsts[SERVICE_WALLETS], sorted(slots[funder])[SERVICE_SLOTS])
    return {"funded": kept, "newest_s": newest, "services": services}


@pytest.mark.parametrize("seed", range(6))
def test_slot_by_slot_the_same_as_the_whole_document_each_slot(seed):
    """Fundings expires and caps from heaps and counts the services as they change; the
    shared document was pruned and counted whole at each slot. The same wallets, fundings
    (in the same order), services and newest time after every slot: slots out of order and
    twice, fundings expiring, wallets past the cap (then funded again), services coming and
    going."""
    rng, ttl_s, cap, seen_services = random.Random(seed), 30.0, 150, set()
    fundings, reference_doc, capped = Fundings(ttl_s=ttl_s, max_wallets=cap), None, False
    slots = [s for s in range(4000) for _ in range(rng.choice((1, 1, 1, 2)))]  # some twice
    for n in range(0, len(slots) - 6, 7):  # a little out of order
        slots[n:n + 7] = rng.sample(slots[n:n + 7], 7)
    for slot in slots:
        hot = rng.randrange(0, 6) if (slot // 500) % 2 else 0  # an exchange, on and off
        pairs = [["Hot", f"user{rng.randrange(400)}"] for _ in range(hot)]
        pairs += [[f"F{rng.randrange(9)}", f"w{rng.randrange(150)}"] for _ in range(rng.randrange(0, 6))]
        pairs = seeding(pairs, frozenset({"F0"}))
        random.Random(slot).shuffle(pairs)  # the same slot's pairs: the same, in any order
        time_s = slot * 0.4 + rng.choice((0.0, 0.0, 0.0, -20.0, 25.0))  # block times lie at times
        fundings.record(slot, time_s, pairs)
        reference_doc = recorded_in_full(reference_doc, pairs, slot=slot, time_s=time_s,
                                         ttl_s=ttl_s, max_wallets=cap)
        assert fundings.funded == reference_doc["funded"], slot
        assert fundings.services == reference_doc["services"] and fundings.newest_s == reference_doc["newest_s"]
        seen_services.add(tuple(fundings.services))  # (its funders)
        capped = capped or len(fundings.funded) == cap
    assert capped and seen_services >= {(), ("Hot",)}  # the cap was reached, a service came and went
    # funders no wallet names any more are forgotten (a long-lived process met millions)
    named = {e[0] for entries in fundings.funded.values() for e in entries}
    assert set(fundings._wallets) == named and set(fundings._slots) == named


def test_a_wallet_whose_latest_funding_expired_first_is_capped_by_the_one_it_kept():
    """Expiry goes by time, the cap by slot, and a block's time need not follow its slot (an
    event's own time stands in for a missing one): w's funding of slot 20 dated 0 expired
    before its funding of slot 10 dated 500. The cap then looked for w under slot 20, never
    found it, and cut x, funded later, instead."""
    fundings, reference_doc = Fundings(ttl_s=0.0, max_wallets=2), None
    for slot, time_s, pairs in [(20, 0.0, [["G", "w"]]), (10, 500.0, [["F", "w"]]),
                                (30, 700.0, [["H", "x"]]), (40, 700.0, [["H", "y"]])]:
        fundings.record(slot, time_s, pairs)
        reference_doc = recorded_in_full(reference_doc, pairs, slot=slot, time_s=time_s,
                                         ttl_s=0.0, max_wallets=2)
        assert fundings.funded == reference_doc["funded"]
    assert sorted(fundings.funded) == ["x", "y"]
