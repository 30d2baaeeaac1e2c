"""chain-analysis: manipulation patterns in chain blocks; replies `ai.kades.anomaly.detected.v1`.

State lives in Redis (kades.runtime.state: one optimistic round trip per block): one document
per pool (liquidity), per token (trades, transfers, holders, launch), per creator (launches)
and one shared document of recent SOL fundings (who seeded which wallet).
"""
from __future__ import annotations

from kades.chain import launch as launches
from kades.chain.blockview import pool_observations, slot_launches, sol_fundings, token_records
from kades.chain.cycles import find_cycles
from kades.chain.liquidity import watch_pool
from kades.chain.reply import anomalies_reply, event_block_time_s
from kades.chain.thresholds import ChainThresholds, thresholds
from kades.chain.wash import find_wash
from kades.events.catalogue import CHAIN_BLOCK
from kades.events.chunking import assemble
from kades.events.envelope import CloudEvent
from kades.runtime import Context, Function
from kades.runtime.state import StateStore, outbox_key

STATE_TTL_S = 7 * 24 * 3600
FUNDING_KEY = "kades:chain:funding"
FUNDING_TTL_S = 3600.0
# A funder paying 3+ wallets in one block is remembered (tips and fees go to 1-2 wallets).
FAN_OUT_WALLETS = 3
MAX_FUNDED = 20_000
STATES = StateStore(ttl_s=STATE_TTL_S)


def new_token_state() -> dict:
    return {"last_slot": -1, "trades": [], "edges": [], "holders": {}, "early_buys": [],
            "first_trade": None, "launch": None, "alerted": {}}


def _record_launch(state: dict, record: dict, time_s: float, slot: int) -> None:
    if record["kind"] in ("create", "initialize_mint") and state["launch"] is None:
        supply = launches.PUMP_FUN_SUPPLY if record.get("program") == "pump_fun" else None
        state["launch"] = {"creator": record.get("creator"), "mint_authority": record.get("mint_authority"),
                           "freeze_authority": record.get("freeze_authority"), "time_s": time_s,
                           "slot": slot, "signature": record["signature"], "supply": supply}
    elif record["kind"] == "set_authority" and state["launch"] is not None:
        state["launch"][record["field"]] = record.get("new_authority")


def analyse_token(state: dict | None, token: str, records: dict, creator_launches: dict, funders: dict,
                  time_s: float, slot: int, t: ChainThresholds) -> tuple[dict, list[dict]]:
    state = state or new_token_state()
    if slot <= state["last_slot"]:
        return state, []  # this slot was analysed already
    state["last_slot"] = slot
    holders = state["holders"]
    for record in records["launches"]:
        _record_launch(state, record, time_s, slot)
    for swap in records["swaps"]:
        side = 1 if swap["side"] == "buy" else -1
        state["trades"].append([time_s, swap["trader"], side, swap["base_amount"], swap["quote_amount"],
                                swap["signature"], slot])
        holders[swap["trader"]] = holders.get(swap["trader"], 0) + side * swap["base_amount"]
        if state["first_trade"] is None:
            state["first_trade"] = {"time_s": time_s, "slot": slot}
        if side > 0 and time_s - state["first_trade"]["time_s"] <= t.sniper_s:
            state["early_buys"].append([time_s, swap["trader"], swap["base_amount"], swap["quote_amount"],
                                        swap["signature"], slot])
    new_edges = []
    for transfer in records["transfers"]:
        amount = transfer["amount"]
        holders[transfer["source"]] = holders.get(transfer["source"], 0) - amount
        holders[transfer["destination"]] = holders.get(transfer["destination"], 0) + amount
        new_edges.append([time_s, transfer["source"], transfer["destination"], amount, transfer["signature"], slot])
    if len(holders) > launches.MAX_HOLDERS:  # keep the largest holders only
        state["holders"] = dict(sorted(holders.items(), key=lambda x: -abs(x[1]))[:launches.MAX_HOLDERS])
    creator = (state["launch"] or {}).get("creator")
    anomalies = find_cycles(state, token, new_edges, time_s, slot, t)
    anomalies += find_wash(state, token, time_s, slot, t)
    anomalies += launches.launch_risk(state, token, creator_launches.get(creator, 0), time_s, slot, t)
    anomalies += launches.find_snipers(state, token, funders, time_s, slot, t)
    return state, anomalies


def _update_funding(state: dict | None, fundings: list[tuple[str, str]], creators: set[str],
                    time_s: float) -> dict:
    """Remember wallets seeded by fan-out funders (3+ wallets in a block) or by creators."""
    state = state or {"funded": {}}
    fan_out: dict[str, set] = {}
    for funder, wallet in fundings:
        fan_out.setdefault(funder, set()).add(wallet)
    funded = {w: v for w, v in state["funded"].items() if time_s - v[1] <= FUNDING_TTL_S}
    for funder, wallets in fan_out.items():
        if len(wallets) >= FAN_OUT_WALLETS or funder in creators:
            funded.update({w: [funder, time_s] for w in wallets})
    state["funded"] = dict(list(funded.items())[-MAX_FUNDED:])
    return state


def analyse_block(client, block: dict, time_s: float, t: ChainThresholds, store=STATES, *,
                  outbox: str | None = None) -> list[dict]:
    """Every detector over one block; `store` keeps the states (Redis; in memory for eval).
    Under `outbox` a retry of the block gets its first committed attempt's anomalies."""
    slot = block["slot"]
    pools = pool_observations(block, time_s)
    tokens = token_records(block)
    launched = slot_launches(block)  # the whole slot's, also in a part of one mint
    block_creators = sorted({l["creator"] for l in launched if l.get("creator")})
    keys = ([f"kades:chain:pool:{p}" for p in pools] + [f"kades:chain:token:{m}" for m in tokens]
            + [f"kades:chain:creator:{c}" for c in block_creators] + [FUNDING_KEY])

    def compute(states):
        pool_states, rest = states[:len(pools)], states[len(pools):]
        token_states, rest = rest[:len(tokens)], rest[len(tokens):]
        creator_states, funding_state = rest[:len(block_creators)], rest[-1]
        anomalies, new_states = [], []
        for (pool, observations), state in zip(pools.items(), pool_states):
            state, found = watch_pool(state, pool, observations, t)
            new_states.append(state)
            anomalies += found
        launches_now: dict[str, int] = {}
        new_creators = []
        for creator, state in zip(block_creators, creator_states):
            state = state or {"launches": []}
            seen = {m for _, m in state["launches"]}
            fresh = [[time_s, l["mint"]] for l in launched
                     if l.get("creator") == creator and l["mint"] not in seen and l["kind"] != "set_authority"]
            state["launches"] = [x for x in state["launches"] + fresh if time_s - x[0] <= t.creator_window_s]
            launches_now[creator] = len(state["launches"])
            new_creators.append(state)
        known_creators = set(block_creators) | {s["launch"]["creator"] for s in token_states
                                                if s and s.get("launch") and s["launch"].get("creator")}
        funding_state = _update_funding(funding_state, sol_fundings(block), known_creators, time_s)
        funders = {w: v[0] for w, v in funding_state["funded"].items()}
        for (token, records), state in zip(tokens.items(), token_states):
            state, found = analyse_token(state, token, records, launches_now, funders, time_s, slot, t)
            new_states.append(state)
            anomalies += found
        return new_states + new_creators + [funding_state], anomalies

    return store.update(client, keys, compute, outbox=outbox)


def handle_block(event: CloudEvent, ctx: Context) -> CloudEvent | None:
    block, cause = assemble(ctx.redis, "chain-analysis", event)
    if block is None:
        return None  # a part whose siblings have not all arrived yet
    anomalies = analyse_block(ctx.redis, block, event_block_time_s(event), thresholds(),
                              outbox=outbox_key(ctx.name, cause.source, cause.id))
    return anomalies_reply(cause, ctx, anomalies, "chain-anomalies")


FUNCTION = Function("chain-analysis", (CHAIN_BLOCK,), handle_block)
