"""Who funded which wallet with SOL, recorded per slot and read back as of a slot.

chain-analysis (insiders: buyers the creator funded) and whale-detection (wallet splitting,
clusters of accumulating wallets) both keep a document of recent SOL fundings, built in each
process from the log of every slot's fundings (kades.chain.slotlog); this module is the one
place that writes and reads it. A funder counts when it pays 3+ wallets in
one slot (a fan-out: tips go to 1-2) or is a known creator, and stops counting once it has
seeded more than SERVICE_WALLETS wallets in more than SERVICE_SLOTS slots within the
document's hour: an exchange's hot wallet paying withdrawals all along, whose customers
trading one token were a "wallet-splitting" cluster. A farm (a creator's sniper wallets
among them) seeds its wallets in a few slots, however many. Read as of a slot, a funder is
a service only from the slot its payments made it one: what the view holds of later slots
does not change an earlier slot's answer, whatever order the slots came in.

>>> doc = record_fundings(None, [["F", "a"], ["F", "b"], ["F", "c"], ["X", "d"]],
...                       slot=10, time_s=100.0, ttl_s=3600.0)
>>> sorted(FundersAsOf(doc, slot=10, time_s=100.0, ttl_s=3600.0).items())
[('a', 'F'), ('b', 'F'), ('c', 'F')]
>>> dict(FundersAsOf(doc, slot=9, time_s=100.0, ttl_s=3600.0))  # not yet funded at slot 9
{}
"""
from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping

from kades.chain.ordering import KEEP_S

FAN_OUT_WALLETS = 3     # a funder paying 3+ wallets in one slot is seeding them (tips go to 1-2)
FUNDINGS_PER_WALLET = 4  # a wallet's latest fundings kept (the one as of a slot is among them)
FUNDING_TTL_S = 3600.0  # chain-analysis: a funding says who seeded a wallet for an hour
MAX_FUNDED = 20_000     # wallets kept, the latest funded
SERVICE_WALLETS = 100   # more wallets seeded within the hour ...
SERVICE_SLOTS = 20      # ... in more slots: a service paying its users all along, not a farm


def seeding(fundings: list, creators: frozenset = frozenset()) -> list[list[str]]:
    """The (funder, wallet) pairs of one slot that seed wallets: a funder's paying 3+ wallets,
    or one of `creators`', each once, in their order."""
    fan_out: dict[str, dict] = {}
    for funder, wallet in fundings:
        fan_out.setdefault(funder, {})[wallet] = None
    return [[funder, wallet] for funder, wallets in fan_out.items()
            if len(wallets) >= FAN_OUT_WALLETS or funder in creators for wallet in wallets]


class Fundings:
    """Who seeded which wallet, recorded slot by slot: each wallet keeps its latest
    FUNDINGS_PER_WALLET fundings with their slot; after each slot that added one, what is
    older than `ttl_s` + KEEP_S behind the newest funding goes, and past `max_wallets` the
    wallets funded last stay. The same slot twice changes nothing.

    Each slot costs what its own fundings change (and what they push out), not a pass over
    every wallet kept: expiry and the cap take from heaps, and each funder's wallets and slots
    are counted as they change, for the services. So the result of a run of slots is the same
    whether they are recorded one by one, as they come, or all at once, as a process reading
    the slot log afresh does (kades.chain.slotlog)."""

    def __init__(self, *, ttl_s: float, max_wallets: int = MAX_FUNDED):
        self.ttl_s, self.max_wallets = ttl_s, max_wallets
        self.funded: dict[str, list] = {}  # wallet -> [[funder, time_s, slot], ...] by (slot, funder)
        self.newest_s: float | None = None
        self.services: dict[str, int] = {}  # funder -> the slot from which it is a service
        self._expiry: list[tuple] = []    # heap: (time_s, slot, funder, wallet) of each funding
        self._latest: list[tuple] = []    # heap: (a wallet's latest slot, wallet), stale ones too
        self._wallets: dict[str, set] = {}          # funder -> wallets whose fundings name it
        self._slots: dict[str, dict[int, int]] = {}  # funder -> slot -> its fundings kept

    def doc(self) -> dict:
        """What FundersAsOf reads: {"funded", "services", "newest_s"}."""
        return {"funded": self.funded, "services": self.services, "newest_s": self.newest_s}

    def record(self, slot: int, time_s: float, pairs: list) -> bool:
        """Record a slot's seeding pairs ([[funder, wallet], ...] from `seeding`); whether
        anything was added."""
        touched: set[str] = set()
        added = False
        for funder, wallet in pairs:
            old = self.funded.get(wallet, ())
            entry = [funder, time_s, slot]
            if entry in old:
                continue
            new = sorted([*old, entry], key=_by_slot)[-FUNDINGS_PER_WALLET:]
            self._replace(wallet, old, new, touched)
            heapq.heappush(self._expiry, (time_s, slot, funder, wallet))
            added = True
            self.newest_s = time_s if self.newest_s is None else max(self.newest_s, time_s)
        if not added:
            return False
        expiry, horizon = self._expiry, self.ttl_s + KEEP_S
        while expiry and self.newest_s - expiry[0][0] > horizon:
            time_s, slot, funder, wallet = heapq.heappop(expiry)
            old = self.funded.get(wallet, ())
            new = [e for e in old if e != [funder, time_s, slot]]
            if len(new) < len(old):
                self._replace(wallet, old, new, touched)
        while len(self.funded) > self.max_wallets and self._latest:
            # the wallet with the smallest (latest slot, wallet) goes
            latest, wallet = heapq.heappop(self._latest)
            old = self.funded.get(wallet)
            if old and old[-1][2] == latest:
                self._replace(wallet, old, [], touched)
        if len(self._latest) > 4 * len(self.funded) + 1024:  # stale entries: built afresh
            self._latest = [(entries[-1][2], w) for w, entries in self.funded.items()]
            heapq.heapify(self._latest)
        services = dict(self.services)  # a new dict: a reader keeps the one it took
        for funder in touched:
            if (len(self._wallets.get(funder, ())) > SERVICE_WALLETS
                    and len(self._slots.get(funder, ())) > SERVICE_SLOTS):
                services[funder] = self._service_from(funder)
            else:
                services.pop(funder, None)
        self.services = dict(sorted(services.items()))
        return True

    def _service_from(self, funder: str) -> int:
        """The slot from which `funder` is a service: the one its SERVICE_WALLETS + 1-th wallet
        and SERVICE_SLOTS + 1-th slot were paid in. Read as of an earlier slot, its fundings
        are a funder's still: the later payouts a view holds (slots delivered first, or only
        recorded before this one was analysed) say nothing of that slot."""
        firsts = heapq.nsmallest(SERVICE_WALLETS + 1, (
            min(slot for named, _, slot in self.funded[wallet] if named == funder)
            for wallet in self._wallets[funder]))
        return max(firsts[-1], heapq.nsmallest(SERVICE_SLOTS + 1, self._slots[funder])[-1])

    def _replace(self, wallet: str, old, new: list, touched: set) -> None:
        """A wallet's fundings `old` -> `new` (a new list: a reader on another thread keeps the
        old one whole), the funders' counts with them, and its latest slot in the cap's heap
        when that changed (expiry takes by time, which need not follow the slots)."""
        before, after = {e[0] for e in old}, {e[0] for e in new}
        for funder in before - after:
            wallets = self._wallets[funder]
            wallets.discard(wallet)
            if not wallets:  # a funder gone from every wallet is forgotten
                del self._wallets[funder]
        for funder in after - before:
            self._wallets.setdefault(funder, set()).add(wallet)
        touched.update(before, after)
        for entries, step in ((old, -1), (new, 1)):
            for funder, _, slot in entries:
                counts = self._slots.setdefault(funder, {})
                counts[slot] = counts.get(slot, 0) + step
                if not counts[slot]:
                    del counts[slot]
                    if not counts:
                        del self._slots[funder]
        if new:
            self.funded[wallet] = new
            if not old or old[-1][2] != new[-1][2]:
                heapq.heappush(self._latest, (new[-1][2], wallet))
        else:
            self.funded.pop(wallet, None)


def _by_slot(entry: list) -> tuple:
    return entry[2], entry[0]


def record_fundings(fundings: Fundings | None, paid: list, *, slot: int, time_s: float,
                    ttl_s: float, creators: frozenset = frozenset(),
                    max_wallets: int = MAX_FUNDED) -> Fundings:
    """Remember who seeded which wallet in `slot` (a funder paying 3+ wallets, or one of
    `creators`) in `fundings` (a new one for None), and return it."""
    fundings = fundings if fundings is not None else Fundings(ttl_s=ttl_s, max_wallets=max_wallets)
    fundings.record(slot, time_s, seeding(paid, creators))
    return fundings


_UNFUNDED = object()  # FundersAsOf.get's answer for a wallet without a funder
_NEVER = float("inf")  # the slot from which a funder that is no service is one


class FundersAsOf(Mapping):
    """wallet -> its funder as of a slot: the latest funding at or before it, within `ttl_s`."""

    def __init__(self, doc, *, slot: int, time_s: float, ttl_s: float):
        doc = doc.doc() if type(doc) is Fundings else doc  # or a document: {"funded", "services"?}
        self.funded, self.slot, self.time_s, self.ttl_s = doc["funded"], slot, time_s, ttl_s
        self.services: dict[str, int] = doc.get("services", {})  # funder -> from which slot

    def get(self, wallet: str, default=None):
        """As Mapping.get, without a KeyError raised and caught for every wallet nobody funded
        (most of them: the detectors ask for every trader of a window). A service's payment
        says nothing of who controls the wallet: none."""
        for funder, time_s, slot in reversed(self.funded.get(wallet, ())):
            if slot <= self.slot and self.time_s - time_s <= self.ttl_s:
                return default if self.services.get(funder, _NEVER) <= self.slot else funder
        return default

    def as_of(self, wallet: str, slot: int, time_s: float) -> str | None:
        """The wallet's funder as of another slot (a trade's): a funding after it says
        nothing of who seeded the wallet that traded (a cashback bot paying buyers later)."""
        for funder, funded_s, funded_slot in reversed(self.funded.get(wallet, ())):
            if funded_slot <= slot and time_s - funded_s <= self.ttl_s:
                return None if self.services.get(funder, _NEVER) <= slot else funder
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
