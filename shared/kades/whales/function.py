"""whale-detection: large moves, accumulation, distribution, wallet splitting; replies anomalies.

One Redis document per token plus one shared document of recent SOL fan-outs (funder ->
wallets), all read and written in one optimistic round trip per block.
"""
from __future__ import annotations

import time

from kades.chain.blockview import sol_fundings, token_records
from kades.chain.launch import PUMP_FUN_SUPPLY
from kades.chain.reply import anomalies_reply, event_block_time_s
from kades.chain.thresholds import ChainThresholds, thresholds
from kades.events.catalogue import CHAIN_BLOCK
from kades.events.chunking import assemble
from kades.events.envelope import CloudEvent
from kades.runtime import Context, Function
from kades.market.chain import SOL_USD_KEY, sol_usd_of
from kades.runtime.state import StateStore, outbox_key
from kades.whales import detectors as d

STATE_TTL_S = 7 * 24 * 3600
FUNDING_KEY = "kades:whales:funding"
MAX_FUNDED = 20_000
SOL_USD_REFRESH_S = 30.0
FAN_OUT_WALLETS = 3  # as chain-analysis: tips and fees go to 1-2 wallets, seeding to more
STATES = StateStore(ttl_s=STATE_TTL_S)


def analyse_token(state: dict | None, token: str, records: dict, pool_states: list[dict], funders: dict,
                  time_s: float, slot: int, t: ChainThresholds, sol_usd: float | None = None
                  ) -> tuple[dict, list[dict]]:
    state = state or d.new_state()
    if slot <= state["last_slot"]:
        return state, []
    state["last_slot"] = slot
    window = t.whale_window_s
    state["trades"] = [r for r in state["trades"] if time_s - r[0] <= window][-d.MAX_ROWS:]
    state["sends"] = [r for r in state["sends"] if time_s - r[0] <= window][-d.MAX_ROWS:]
    if any(l.get("program") == "pump_fun" for l in records["launches"]):
        state["supply"] = PUMP_FUN_SUPPLY
    anomalies = []
    states_by_sig = {p["signature"]: p for p in pool_states}
    for swap in records["swaps"]:
        found = d.whale_swap(state, token, swap, time_s, slot, t, sol_usd)  # against the pool before it
        anomalies += [found] if found else []
        side = 1 if swap["side"] == "buy" else -1
        state["trades"].append([time_s, swap["trader"], side, swap["base_amount"], swap["quote_amount"],
                                swap["signature"], slot])
        state["holders"][swap["trader"]] = state["holders"].get(swap["trader"], 0) + side * swap["base_amount"]
        after = states_by_sig.get(swap["signature"])
        if after:
            state["pool"] = [after["base_reserve"], after["quote_reserve"]]
    for p in pool_states:
        state["pool"] = [p["base_reserve"], p["quote_reserve"]]
    for transfer in records["transfers"]:
        state["sends"].append([time_s, transfer["source"], transfer["destination"], transfer["amount"],
                               transfer["signature"], slot])
        for wallet, sign in ((transfer["source"], -1), (transfer["destination"], 1)):
            state["holders"][wallet] = state["holders"].get(wallet, 0) + sign * transfer["amount"]
    if len(state["holders"]) > d.MAX_ROWS:
        state["holders"] = dict(sorted(state["holders"].items(), key=lambda x: -abs(x[1]))[:d.MAX_ROWS])
    state["sizes"] = dict(list(state["sizes"].items())[-d.MAX_ROWS:])
    anomalies += d.accumulation(state, token, funders, time_s, slot, t)
    anomalies += d.distribution(state, token, time_s, slot, t)
    anomalies += d.wallet_splitting(state, token, funders, time_s, slot, t)
    return state, anomalies


def _update_funding(state: dict | None, fundings: list[tuple[str, str]], time_s: float, t: ChainThresholds) -> dict:
    """Wallets seeded by a funder that paid 3+ wallets in one block (recent hour only)."""
    state = state or {"funded": {}}
    fan_out: dict[str, set] = {}
    for funder, wallet in fundings:
        fan_out.setdefault(funder, set()).add(wallet)
    funded = {w: v for w, v in state["funded"].items() if time_s - v[1] <= t.whale_window_s}
    for funder, wallets in fan_out.items():
        if len(wallets) >= FAN_OUT_WALLETS:
            funded.update({w: [funder, time_s] for w in wallets})
    state["funded"] = dict(list(funded.items())[-MAX_FUNDED:])
    return state


def analyse_block(client, block: dict, time_s: float, t: ChainThresholds, store=STATES,
                  sol_usd: float | None = None, *, outbox: str | None = None) -> list[dict]:
    """Every whale detector over one block; `sol_usd` (when known) turns SOL into dollars.
    Under `outbox` a retry of the block gets its first committed attempt's anomalies."""
    slot, tokens = block["slot"], token_records(block)
    sol_usd = sol_usd_of(block) or sol_usd
    pool_states: dict[str, list] = {}
    for p in block.get("pool_states", []):
        pool_states.setdefault(p["base_mint"], []).append(p)
    keys = [f"kades:whales:token:{m}" for m in tokens] + [FUNDING_KEY]

    def compute(states):
        funding = _update_funding(states[-1], sol_fundings(block), time_s, t)
        funders = {w: v[0] for w, v in funding["funded"].items()}
        new_states, anomalies = [], []
        for (token, records), state in zip(tokens.items(), states[:-1]):
            state, found = analyse_token(state, token, records, pool_states.get(token, []), funders, time_s,
                                         slot, t, sol_usd)
            new_states.append(state)
            anomalies += found
        return new_states + [funding], anomalies

    return store.update(client, keys, compute, outbox=outbox)


def handle_block(event: CloudEvent, ctx: Context) -> CloudEvent | None:
    block, cause = assemble(ctx.redis, "whale-detection", event)
    if block is None:
        return None  # a part whose siblings have not all arrived yet
    anomalies = analyse_block(ctx.redis, block, event_block_time_s(event), thresholds(),
                              sol_usd=_known_sol_usd(ctx.redis),
                              outbox=outbox_key(ctx.name, cause.source, cause.id))
    return anomalies_reply(cause, ctx, anomalies, "whale-anomalies")


_sol_usd_cache: list = [None, -1e18]  # [price, monotonic time read]


def _known_sol_usd(client) -> float | None:
    """SOL/USD as market-aggregator last saw it on chain; read from Redis at most every 30 s."""
    if time.monotonic() - _sol_usd_cache[1] >= SOL_USD_REFRESH_S:
        raw = client.get(SOL_USD_KEY)
        _sol_usd_cache[:] = [float(raw) if raw else None, time.monotonic()]
    return _sol_usd_cache[0]


FUNCTION = Function("whale-detection", (CHAIN_BLOCK,), handle_block)
