"""Who funded which wallet with SOL, recorded per slot and read back as of a slot.

chain-analysis (insiders: buyers the creator funded) and whale-detection (wallet splitting,
clusters of accumulating wallets) both keep one shared document of recent SOL fundings; this
module is the one place that writes and reads it. A funder counts when it pays 3+ wallets in
one slot (a fan-out: tips go to 1-2) or is a known creator, and stops counting once it has
seeded more than SERVICE_WALLETS wallets in more than SERVICE_SLOTS slots within the
document's hour: an exchange's hot wallet paying withdrawals all along, whose customers
trading one token were a "wallet-splitting" cluster. A farm (a creator's sniper wallets
among them) seeds its wallets in a few slots, however many.

>>> doc = record_fundings(None, [["F", "a"], ["F", "b"], ["F", "c"], ["X", "d"]],
...                       slot=10, time_s=100.0, ttl_s=3600.0)
>>> sorted(FundersAsOf(doc, slot=10, time_s=100.0, ttl_s=3600.0).items())
[('a', 'F'), ('b', 'F'), ('c', 'F')]
>>> dict(FundersAsOf(doc, slot=9, time_s=100.0, ttl_s=3600.0))  # not yet funded at slot 9
{}
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping

from kades.chain.ordering import KEEP_S

FAN_OUT_WALLETS = 3     # a funder paying 3+ wallets in one slot is seeding them (tips go to 1-2)
FUNDINGS_PER_WALLET = 4  # a wallet's latest fundings kept (the one as of a slot is among them)
FUNDING_TTL_S = 3600.0  # chain-analysis: a funding says who seeded a wallet for an hour
MAX_FUNDED = 20_000     # wallets kept, the latest funded
SERVICE_WALLETS = 100   # more wallets seeded within the hour ...
SERVICE_SLOTS = 20      # ... in more slots: a service paying its users all along, not a farm


def record_fundings(doc: dict | None, fundings: list, *, slot: int, time_s: float,
                    ttl_s: float, creators: frozenset = frozenset(),
                    max_wallets: int = MAX_FUNDED) -> dict:
    """Remember who seeded which wallet in `slot`: a funder paying 3+ wallets, or one of
    `creators`. Each wallet keeps its latest fundings with their slot; what is older than
    `ttl_s` + KEEP_S behind the newest slot seen goes. The same slot twice changes nothing."""
    doc = doc or {"funded": {}, "newest_s": None}
    fan_out: dict[str, set] = {}
    for funder, wallet in fundings:
        fan_out.setdefault(funder, set()).add(wallet)
    funded, added = doc["funded"], False
    for funder, wallets in fan_out.items():
        if len(wallets) < FAN_OUT_WALLETS and funder not in creators:
            continue
        for wallet in wallets:
            entries = funded.setdefault(wallet, [])
            if [funder, time_s, slot] not in entries:
                entries.append([funder, time_s, slot])
                entries.sort(key=lambda e: (e[2], e[0]))
                del entries[:-FUNDINGS_PER_WALLET]
                added = True
    if added:  # prune only when something changed: an unchanged document is not rewritten
        newest = max(time_s, doc.get("newest_s") or time_s)
        doc["newest_s"] = newest
        kept = {w: [e for e in es if newest - e[1] <= ttl_s + KEEP_S] for w, es in funded.items()}
        kept = {w: es for w, es in kept.items() if es}
        if len(kept) > max_wallets:  # the wallets funded last stay
            newest_first = sorted(kept, key=lambda w: (kept[w][-1][2], w), reverse=True)
            kept = {w: kept[w] for w in newest_first[:max_wallets]}
        doc["funded"] = kept
        wallets: dict[str, int] = {}
        slots: dict[str, set] = {}
        for entries in kept.values():
            for funder in {e[0] for e in entries}:
                wallets[funder] = wallets.get(funder, 0) + 1
            for funder, _, paid_in in entries:
                slots.setdefault(funder, set()).add(paid_in)
        doc["services"] = sorted(f for f, n in wallets.items() if n > SERVICE_WALLETS
                                 and len(slots[f]) > SERVICE_SLOTS and f not in creators)
    return doc


_UNFUNDED = object()  # FundersAsOf.get's answer for a wallet without a funder


class FundersAsOf(Mapping):
    """wallet -> its funder as of a slot: the latest funding at or before it, within `ttl_s`."""

    def __init__(self, doc: dict, *, slot: int, time_s: float, ttl_s: float):
        self.funded, self.slot, self.time_s, self.ttl_s = doc["funded"], slot, time_s, ttl_s
        self.services = frozenset(doc.get("services", ()))

    def get(self, wallet: str, default=None):
        """As Mapping.get, without a KeyError raised and caught for every wallet nobody funded
        (most of them: the detectors ask for every trader of a window). A service's payment
        says nothing of who controls the wallet: none."""
        for funder, time_s, slot in reversed(self.funded.get(wallet, ())):
            if slot <= self.slot and self.time_s - time_s <= self.ttl_s:
                return default if funder in self.services else funder
        return default

    def as_of(self, wallet: str, slot: int, time_s: float) -> str | None:
        """The wallet's funder as of another slot (a trade's): a funding after it says
        nothing of who seeded the wallet that traded (a cashback bot paying buyers later)."""
        for funder, funded_s, funded_slot in reversed(self.funded.get(wallet, ())):
            if funded_slot <= slot and time_s - funded_s <= self.ttl_s:
                return None if funder in self.services else funder
        return None

    def __getitem__(self, wallet: str) -> str:
        funder = self.get(wallet, _UNFUNDED)
        if funder is _UNFUNDED:
            raise KeyError(wallet)
        return funder

    def __contains__(self, wallet) -> bool:
        return self.get(wallet, _UNFUNDED) is not _UNFUNDED

    def __iter__(self) -> Iterator[str]:
        return (w for w in self.funded if w in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)
