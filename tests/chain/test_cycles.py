"""The cycle search: the same answers as an exhaustive search, and hub wallets at full size."""
from __future__ import annotations

import random

import pytest

from kades.chain.cycles import MAX_EDGES, CyclicTransfers, _path
from kades.chain.rows import Transfer
from kades.chain.state import TokenState

CYCLES = CyclicTransfers()


def edge(t, source, destination, amount=100, slot=1):
    return Transfer(t, source, destination, amount, f"tx-{source}-{destination}-{t}", slot)


def exhaustive(edges: list, start: str, goal: str, before_s: float, depth: int) -> bool:
    """Every time-respecting walk of up to `depth` hops: the reference answer."""
    def walk(node, since, hops):
        for e in edges:
            if e[1] == node and since <= e[0] <= before_s:
                if e[2] == goal or (hops + 1 < depth and walk(e[2], e[0], hops + 1)):
                    return True
        return False
    return walk(start, -1e18, 0)


def indexes(edges):
    outgoing, incoming = {}, {}
    for e in edges:
        outgoing.setdefault(e[1], []).append(e)
        incoming.setdefault(e[2], []).append(e)
    return outgoing, incoming


@pytest.mark.parametrize("seed", range(30))
def test_the_search_agrees_with_an_exhaustive_one(seed):
    rng = random.Random(seed)
    wallets = [f"W{k}" for k in range(rng.randint(3, 8))]
    edges = [edge(float(t), *rng.sample(wallets, 2)) for t in rng.sample(range(100), 25)]
    outgoing, incoming = indexes(edges)
    for _ in range(20):
        start, goal = rng.sample(wallets, 2)
        before, depth = float(rng.randint(0, 100)), rng.randint(1, 5)
        path = _path(outgoing, incoming, start, goal, before, depth)
        assert (path is not None) is exhaustive(edges, start, goal, before, depth)
        if path:  # a real path: linked wallets, times never going back, none too late
            assert path[0][1] == start and path[-1][2] == goal and len(path) <= depth
            assert all(a[2] == b[1] and a[0] <= b[0] for a, b in zip(path, path[1:]))
            assert path[-1][0] <= before


def hub_state(n: int) -> TokenState:
    """`n` transfers through one hub: it pays wallet k, and wallet k+1 pays it back later."""
    state = TokenState()
    state.edges = [edge(k / 2, "HUB", f"W{k}") if k % 2 == 0 else
                      edge(k / 2, f"W{k}", "HUB") for k in range(n)]  # all inside the hour
    return state


def test_a_hub_wallet_at_full_size_still_closes_its_cycles():
    state = hub_state(MAX_EDGES)
    # W0 got paid by the hub first, so paying back closes a two-hop cycle...
    found = CYCLES.find(state, "TOKEN", [edge(3000.0, "W0", "HUB")], time_s=3000.0, slot=9)
    assert [a["evidence"]["wallets"] for a in found] == [["HUB", "W0", "HUB"]]
    # ... and a stranger paying the hub closes none, nor does the hub paying a stranger.
    assert CYCLES.find(state, "TOKEN", [edge(3001.0, "NEW", "HUB"),
                                        edge(3002.0, "HUB", "NEW2")], time_s=3002.0, slot=9) == []
    assert len(state.edges) == MAX_EDGES


def test_a_long_way_round_through_a_hub_is_found():
    state = hub_state(MAX_EDGES - 3)
    state.edges += [edge(3000.0, "W4", "A"), edge(3001.0, "A", "B"), edge(3002.0, "B", "C")]
    (alert,) = CYCLES.find(state, "TOKEN", [edge(3003.0, "C", "HUB")], time_s=3003.0, slot=9)
    assert alert["evidence"]["wallets"] == ["HUB", "W4", "A", "B", "C", "HUB"]


def test_dust_coming_back_is_no_cycle():
    """0.01 of a token out and one raw unit back was a 2-hop cycle of severity 1."""
    from kades.chain.cycles import CyclicTransfers
    from kades.chain.rows import Transfer
    from kades.chain.state import TokenState
    out = Transfer(10.0, "A", "B", 10**7, "t1", 1)
    assert CyclicTransfers().find(TokenState(edges=[out]), "TOKEN", [Transfer(20.0, "B", "A", 1, "t2", 2)],
                                  time_s=20.0, slot=2) == []
    (found,) = CyclicTransfers().find(TokenState(edges=[out]), "TOKEN",
                                      [Transfer(20.0, "B", "A", 9 * 10**6, "t3", 2)], time_s=20.0, slot=2)
    assert found["evidence"]["hops"] == 2
