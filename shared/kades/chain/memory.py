"""An in-process stand-in for kades.runtime.state.StateStore (offline eval and benchmarks).

Same `update(client, keys, compute)` contract, states kept as JSON round-tripped documents so
that anything Redis could not hold fails here too. The deployed functions always use Redis.
"""
from __future__ import annotations

from kades.runtime.state import JsonCodec


class MemoryStates:
    """`codec` as the StateStore's (benchmarks give chain-analysis's, as its Context does)."""

    def __init__(self, codec=JsonCodec) -> None:
        self.documents: dict[str, str] = {}
        self.codec = codec

    def current(self, client, keys: list[str]) -> list[dict | None]:
        return [self.codec.loads(k, self.documents[k].encode()) if k in self.documents else None
                for k in keys]

    def update(self, client, keys: list[str], compute, *, outbox: str | None = None,
               keep_empty=False):
        # No retries offline, so no outbox to keep (both accepted for the contract).
        states = self.current(client, keys)
        new_states, result = compute(states)
        for key, state in zip(keys, new_states):
            self.documents[key] = self.codec.dumps(key, state).decode()
        return result
