"""Which cycle the detector reports does not depend on the process: each replica hashes
strings with its own seed (PYTHONHASHSEED), and the search once walked sets of wallets, so
two replicas given the same transfers named different cycles when several tied."""
from __future__ import annotations

import json
import os
import subprocess
import sys

# Eight ways round from A back to A through the new transfer D -> A, all at the same times:
# A -> Mk -> D for k in 0..7. The reported cycle is one of them, and must be the same one.
SCRIPT = """
import json
from kades.chain.cycles import CyclicTransfers
from kades.chain.rows import Transfer
from kades.chain.state import TokenState
middles = [f"Wallet{k}" for k in range(8)]
edges = [Transfer(1.0, "A", m, 100, f"a{m}", 1) for m in middles]
edges += [Transfer(2.0, m, "D", 100, f"d{m}", 2) for m in middles]
state = TokenState(edges=edges)
back = [Transfer(10.0, "D", "A", 100, "back", 3)]
found = CyclicTransfers().find(state, "TOKEN", back, time_s=10.0, slot=3)
print(json.dumps([a["evidence"]["wallets"] for a in found]))
"""


def test_the_same_transfers_give_the_same_cycle_under_any_hash_seed():
    seen = {}
    for seed in ("0", "1", "2", "3", "4", "5"):
        out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout
        seen[seed] = json.loads(out)
    print({seed: cycles for seed, cycles in seen.items()})
    assert seen["0"] and len(seen["0"]) == 1, seen  # one cycle found
    assert all(cycles == seen["0"] for cycles in seen.values()), seen
