"""`make bench` section: `kades solana-source --rpc` against a stand-in node, slots a second
with getBlock requests one after another (FETCH_AHEAD = 1, the baseline: the code before) and
with FETCH_AHEAD in flight, beside the chain's own pace (a slot every 0.4 s).

The stand-in node answers getBlock after ANSWER_S, what a node takes for a block with full
transactions (several MB) over a network: assumed, not measured here (no internet). Each
block is NON_VOTE real mainnet transactions of ../shared/data/solana, repeated (a busy
mainnet slot carries ~400 that are not votes). Events are kept in a list, not sent (the
sending is timed by tests/solana's busy-slot test). Printed, never asserted; skipped without
../shared/data.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: shared_material
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "solana"))  # nodes

import shared_material  # noqa: E402
from nodes import Quiet, serving  # noqa: E402

from kades.solana.poll import FETCH_AHEAD, follow  # noqa: E402
from kades.solana.rpc import SolanaRpc  # noqa: E402

ANSWER_S = 0.3
NON_VOTE = 400
SLOTS = 12
CHAIN_SLOTS_PER_S = 2.5
# a slot the contract takes for a block of now (at most one slot per 0.35 s since 2020-03-16)
TIP = int((time.time() - 1_584_316_800) / 0.45)


class StandInNode(Quiet):
    body = b""

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if request["method"] == "getSlot":
            self.answer(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": TIP}).encode())
            return
        time.sleep(ANSWER_S)
        self.answer(StandInNode.body.replace(b'"id":0', f'"id":{request["id"]}'.encode(), 1))


def real_transactions() -> list[dict]:
    found = []
    for path in sorted((shared_material.DATA / "solana").glob("rpc*/*.json")):
        document = json.loads(path.read_text())
        for tx in document if isinstance(document, list) else [document]:
            if isinstance(tx, dict) and "transaction" in tx and "meta" in tx:
                found.append({"transaction": tx["transaction"], "meta": tx["meta"]})
    return found


def main() -> int:
    txs = real_transactions()
    if not txs:
        print(f"\nsolana-source bench skipped: nothing in {shared_material.DATA / 'solana'}")
        return 0
    block = {"blockTime": int(time.time()) - 60, "parentSlot": 1, "blockhash": "h",
             "transactions": [txs[i % len(txs)] for i in range(NON_VOTE)]}
    StandInNode.body = json.dumps({"jsonrpc": "2.0", "id": 0, "result": block},
                                  separators=(",", ":")).encode()
    rows = []
    with serving(StandInNode) as url:
        for ahead in (1, FETCH_AHEAD):
            sent: list = []
            began, cpu = time.perf_counter(), time.process_time()
            follow(SolanaRpc(url), sent.append, start_slot=TIP - SLOTS, max_slots=SLOTS,
                   fetch_ahead=ahead)
            elapsed = time.perf_counter() - began
            rows.append((ahead, SLOTS / elapsed, 1000 * (time.process_time() - cpu) / SLOTS, len(sent)))
    print(f"\nsolana-source --rpc against a stand-in node answering getBlock in {ANSWER_S * 1000:.0f} ms "
          f"({len(StandInNode.body) / 1e6:.1f} MB blocks of {NON_VOTE} real transactions), {SLOTS} slots; "
          "ratio to one request at a time")
    print(f"{'getBlock in flight':<22}{'slots/s':>9}{'ratio':>8}{'CPU ms/slot':>13}{'events':>8}{'vs chain':>10}")
    for ahead, rate, cpu_ms, events in rows:
        print(f"{ahead:<22}{rate:>9.2f}{rate / rows[0][1]:>7.2f}x{cpu_ms:>13.0f}{events:>8}"
              f"{rate / CHAIN_SLOTS_PER_S:>9.2f}x")
    print(f"goal: keep up with the chain ({CHAIN_SLOTS_PER_S} slots/s): 'vs chain' >= 1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
