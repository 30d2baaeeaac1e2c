"""Cyclic transfers: a token going A -> B -> ... -> A (2 to 6 hops) within the window.

When a new transfer u -> v arrives, a time-respecting path v -> ... -> u among the window's
earlier transfers (each hop no earlier than the one before, none later than the new one)
closes a cycle. The search meets in the middle: earliest arrival forward from v and latest
departure backward from u, by rounds of hops, always widening the side whose next round
touches fewer edges. A wallet is expanded at most once per round, so a hub wallet with
thousands of transfers costs one scan of its edges at most, and usually none: the search
starts from the quiet end (the old depth-first search revisited wallets and took seconds).
"""
from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter

from kades.chain.anomaly import make_anomaly, ramp
from kades.chain.detector import ChainDetector, alert_once, setting
from kades.chain.rows import Transfer
from kades.chain.state import TokenState

DETECTOR = "chain.cycles"
MAX_EDGES = 5000
MIN_HOP_SHARE = 0.1  # the smallest hop of a cycle against its largest (_round_trip)
_SOURCE, _DESTINATION = attrgetter("source"), attrgetter("destination")


class _Side:
    """One direction of the search: per round, the best time at each wallet reached and the
    edge that reached it (forward: earliest arrival; backward: latest departure)."""

    def __init__(self, start: str, time_s: float, index: dict, *, forward: bool):
        self.rounds = [{start: (time_s, None)}]
        # the wallets reached last round, in the order reached (a dict, not a set: a set's
        # order follows the process's string hashes, and ties would go a different way on
        # another replica)
        self.frontier = {start: None}
        self.index, self.forward = index, forward

    def cost(self) -> int:
        return sum(len(self.index.get(node, ())) for node in self.frontier)

    def widen(self, before_s: float) -> None:
        last = self.rounds[-1]
        labels = dict(last)
        changed = {}
        for node in self.frontier:
            here = last[node][0]
            for edge in self.index.get(node, ()):
                t = edge.time_s
                if self.forward:   # leave `node` no earlier than we got there
                    if t < here or t > before_s:
                        continue
                    other = edge.destination
                    if other not in labels or t < labels[other][0]:
                        labels[other] = (t, edge)
                        changed[other] = None
                else:              # arrive at `node` no later than we must leave it
                    if t > here:
                        continue
                    other = edge.source
                    if other not in labels or t > labels[other][0]:
                        labels[other] = (t, edge)
                        changed[other] = None
        self.rounds.append(labels)
        self.frontier = changed

    def path_to(self, node: str) -> list:
        """Edges from the start to `node` (forward) or from `node` to the start (backward)."""
        edges = []
        for labels in reversed(self.rounds):
            edge = labels[node][1]
            if edge is None:
                break
            edges.append(edge)
            node = edge.source if self.forward else edge.destination
        return edges[::-1] if self.forward else edges


def _path(outgoing: dict, incoming: dict, start: str, goal: str, before_s: float,
          depth: int) -> list | None:
    """Edges of a time-respecting path start -> goal of at most `depth` hops, or None."""
    if start not in outgoing or goal not in incoming:
        return None  # a wallet that never paid out, or one never paid: no way round
    ahead = _Side(start, -1e18, outgoing, forward=True)
    behind = _Side(goal, before_s, incoming, forward=False)
    for _ in range(depth):
        sides = [side for side in (ahead, behind) if side.frontier]
        if not sides:
            return None
        min(sides, key=_Side.cost).widen(before_s)
        met = behind.rounds[-1]
        for node, (arrived, _) in ahead.rounds[-1].items():  # in order reached, as above
            if node in met and arrived <= met[node][0]:
                path = ahead.path_to(node) + behind.path_to(node)
                if path:  # not the empty "path" of a transfer to oneself
                    return path
    return None


def _index(index: dict, wallet: str, edge: Transfer) -> None:
    found = index.get(wallet)
    if found is None:
        index[wallet] = [edge]
    else:
        found.append(edge)


def _round_trip(cycle: list[Transfer]) -> bool:
    """Whether tokens went round: no hop carried under MIN_HOP_SHARE of the largest (0.01 of
    a token out and one raw unit back was a cycle of severity 1)."""
    amounts = [edge.amount for edge in cycle]
    return min(amounts) >= MIN_HOP_SHARE * max(amounts)


@dataclass(frozen=True, kw_only=True)
class CyclicTransfers(ChainDetector):
    """A time-ordered transfer cycle A -> ... -> A of 2 to `max_length` hops within `window_s`,
    closed by one of the slot's new transfers.

    >>> hops = [Transfer(10.0 * k, w, v, 100, f"tx{k}", 1) for k, (w, v) in enumerate(["AB", "BC", "CA"])]
    >>> [a["evidence"]["wallets"] for a in CyclicTransfers().find(TokenState(), "TOKEN", hops,
    ...                                                           time_s=30.0, slot=2)]
    [['A', 'B', 'C', 'A']]
    """

    kind = "cyclic_transfer"
    name = DETECTOR
    window_s: float = setting("cycle_window_s")
    max_length: int = setting("cycle_max_length")
    alert_cooldown_s: float = setting("alert_cooldown_s")

    def find(self, state: TokenState, token: str, new_edges: list[Transfer], *, time_s: float,
             slot: int) -> list[dict]:
        """Cycles closed by `new_edges`, which join the state's window of transfers."""
        oldest_s = time_s - self.window_s
        edges = [e for e in state.edges if e.time_s >= oldest_s][-MAX_EDGES:]
        if not new_edges:  # nothing can close a cycle: the window moves on, no index needed
            state.edges = edges
            return []
        # A cycle through a new edge u -> v needs an edge out of v and one into u (_path's
        # first test). Which wallets have those is two sets, made at C speed; the index (a
        # Python pass over the window) is made only once an edge has both, most blocks never.
        sources, destinations = set(map(_SOURCE, edges)), set(map(_DESTINATION, edges))
        outgoing: dict[str, list] | None = None
        incoming: dict[str, list] = {}
        anomalies = []
        for edge in new_edges:
            start_s, source, destination = edge.time_s, edge.source, edge.destination
            if destination in sources and source in destinations:
                if outgoing is None:  # the window and the new edges so far, as they came
                    outgoing = {}
                    for known in edges:
                        _index(outgoing, known.source, known)
                        _index(incoming, known.destination, known)
                path = _path(outgoing, incoming, destination, source, start_s, self.max_length - 1)
            else:
                path = None
            if path and _round_trip(path + [edge]):
                cycle = path + [edge]
                wallets = [cycle[0].source] + [e.destination for e in cycle]
                key = "cycle:" + ",".join(sorted(set(wallets)))[:200]
                if alert_once(state.alerted, key, time_s, cooldown_s=self.alert_cooldown_s):
                    anomalies.append(make_anomaly(
                        token=token, kind=self.kind, detector=self.name, time_s=time_s,
                        severity=ramp(1.0 / len(cycle), 1.0 / self.max_length, 0.5, floor=0.5), confidence=0.85,
                        start_s=cycle[0].time_s, slots=(cycle[0].slot, slot),
                        evidence={"summary": f"tokens went round a {len(cycle)}-hop cycle",
                                  "wallets": wallets, "amounts": [e.amount for e in cycle],
                                  "signatures": [e.signature for e in cycle], "hops": len(cycle)}))
            if outgoing is not None:
                _index(outgoing, source, edge)
                _index(incoming, destination, edge)
            sources.add(source)
            destinations.add(destination)
            edges.append(edge)
        state.edges = edges[-MAX_EDGES:]
        return anomalies
