"""Cyclic transfers: a token going A -> B -> ... -> A (2 to 6 hops) within the window.

When a new transfer u -> v arrives, a time-ordered path v -> ... -> u among the window's
earlier transfers closes a cycle. The search is depth-bounded, so its cost stays small.
"""
from __future__ import annotations

from kades.chain.anomaly import make_anomaly, ramp
from kades.chain.thresholds import ChainThresholds

DETECTOR = "chain.cycles"
MAX_EDGES = 5000


def _path(adjacency: dict, start: str, goal: str, after_s: float, before_s: float, depth: int) -> list | None:
    """Edges of a time-increasing path start -> goal with at most `depth` hops."""
    stack = [(start, after_s, [])]
    while stack:
        node, since, path = stack.pop()
        for edge in adjacency.get(node, ()):
            time_s, _, destination = edge[0], edge[1], edge[2]
            if time_s < since or time_s > before_s or any(e is edge for e in path):
                continue
            if destination == goal:
                return path + [edge]
            if len(path) + 1 < depth:
                stack.append((destination, time_s, path + [edge]))
    return None


def find_cycles(state: dict, token: str, new_edges: list[list], time_s: float, slot: int,
                t: ChainThresholds) -> list[dict]:
    """Cycles closed by `new_edges` ([time, source, destination, amount, signature, slot])."""
    edges = [e for e in state["edges"] if time_s - e[0] <= t.cycle_window_s][-MAX_EDGES:]
    adjacency: dict[str, list] = {}
    for edge in edges:
        adjacency.setdefault(edge[1], []).append(edge)
    anomalies = []
    for edge in new_edges:
        start_s, source, destination = edge[0], edge[1], edge[2]
        path = _path(adjacency, destination, source, -1e18, start_s, t.cycle_max_length - 1)
        if path:
            cycle = path + [edge]
            wallets = [cycle[0][1]] + [e[2] for e in cycle]
            key = "cycle:" + ",".join(sorted(set(wallets)))[:200]
            if time_s - state["alerted"].get(key, -1e18) >= t.alert_cooldown_s:
                state["alerted"][key] = time_s
                anomalies.append(make_anomaly(
                    token=token, kind="cyclic_transfer", detector=DETECTOR, time_s=time_s,
                    severity=ramp(1.0 / len(cycle), 1.0 / t.cycle_max_length, 0.5, floor=0.5), confidence=0.85,
                    start_s=cycle[0][0], slots=(cycle[0][5], slot),
                    evidence={"summary": f"tokens went round a {len(cycle)}-hop cycle",
                              "wallets": wallets, "amounts": [e[3] for e in cycle],
                              "signatures": [e[4] for e in cycle], "hops": len(cycle)}))
        adjacency.setdefault(source, []).append(edge)
        edges.append(edge)
    state["edges"] = edges[-MAX_EDGES:]
    return anomalies
