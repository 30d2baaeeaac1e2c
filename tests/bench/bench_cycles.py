"""`make bench`, cycle search: cost per new transfer with 5,000 earlier transfers in the window
all through one hub wallet (the case that took seconds with a depth-first search), beside the
one pass over the window's edges every block pays anyway (the baseline, measured in the same
run). Figures are printed, never asserted.
"""
from __future__ import annotations

import copy
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chain"))
from test_cycles import CYCLES, edge, hub_state  # noqa: E402  (the hub of the tests)

from kades.chain.cycles import MAX_EDGES  # noqa: E402
from kades.chain.state import TokenState  # noqa: E402


def best_s(work, state: TokenState, repeats: int = 15) -> float:
    best = float("inf")
    for _ in range(repeats):
        fresh = copy.deepcopy(state)
        began = time.perf_counter()
        work(fresh)
        best = min(best, time.perf_counter() - began)
    return best


def window_pass(state: TokenState) -> None:
    """The baseline: filter the window and index every edge by wallet, as each block does."""
    outgoing, incoming = {}, {}
    for e in [e for e in state.edges if e.time_s >= 3100.0 - CYCLES.window_s]:
        outgoing.setdefault(e.source, []).append(e)
        incoming.setdefault(e.destination, []).append(e)


def main() -> int:
    state = hub_state(MAX_EDGES)
    baseline = best_s(window_pass, state)
    cases = {
        "1 stranger pays the hub": [edge(3000.0, "NEW", "HUB")],
        "1 wallet pays the hub back (cycle)": [edge(3000.0, "W0", "HUB")],
        "100 strangers pay the hub": [edge(3000.0 + i, f"N{i}", "HUB") for i in range(100)],
        "100 wallets pay it back (cycles)": [edge(3000.0 + i, f"W{2 * i}", "HUB") for i in range(100)],
    }
    print(f"\ncycle search, {MAX_EDGES:,} earlier transfers through one hub wallet (one core; "
          f"baseline = one pass over the window, {baseline * 1e3:.2f} ms)")
    print(f"{'block':<38}{'ms per block':>14}{'ms per transfer':>17}{'block / baseline':>18}")
    for label, new in cases.items():
        seconds = best_s(lambda s: CYCLES.find(s, "TOKEN", new, time_s=3100.0, slot=9), state)
        print(f"{label:<38}{seconds * 1e3:>14.2f}{seconds * 1e3 / len(new):>17.3f}"
              f"{seconds / baseline:>17.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
