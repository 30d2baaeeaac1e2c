"""Liquidity removal (rug pull) and price dumps, per pool, over its liquidity and state records.

Two views of the same pull, whichever the source gives:
- a liquidity record (who removed, exact reserves before/after): removal share of the quote
  side in one transaction, or summed over a short burst;
- pool states alone (reserves after each transaction, e.g. Uniswap Sync events): both
  reserves falling together by the removal share is a withdrawal (a sell would raise the
  token side). A token dumped into the pool shows as price down >= 90% from its recent peak
  while the token reserve grew.
State per pool is a small JSON document: last reserves, creator, LP shares, recent removals,
a monotonic queue of recent price peaks and the time of the last alert of each kind, and who
holds the LP tokens (kades.chain.lp_holders), assessed after every observation.
"""
from __future__ import annotations

from kades.chain import lp_holders
from kades.chain.anomaly import make_anomaly, ramp
from kades.chain.thresholds import ChainThresholds
from kades.risk.scoring import DEFAULT_HALF_LIFE_S
from kades.solana.programs import VAULTS_NOT_PRICED

DETECTOR = "chain.liquidity"
MAX_PEAKS = 64
# Liquidity providers a pool's document keeps, the largest by quote added: it was read only
# for its top LP, and every wallet that ever added stayed (10,000 more a day on a busy pool,
# the whole document read, hashed and written again at every release)
MAX_PROVIDERS = 256


def new_pool_state() -> dict:
    return {"last": None, "creator": None, "lp": {}, "removals": [], "peaks": [],
            "alerted": {}, "last_slot": -1, "slot_signatures": []}


def _cooled(state: dict, kind: str, time_s: float, t: ChainThresholds) -> bool:
    last = state["alerted"].get(kind)
    return last is None or time_s - last >= t.alert_cooldown_s


def _ui_price(base: int, quote: int, record: dict) -> float | None:
    if base <= 0 or quote <= 0:
        return None
    return (quote / 10 ** record["quote_decimals"]) / (base / 10 ** record["base_decimals"])


def _removal(state: dict, pool: str, token: str, obs: dict, share_now: float,
             before: tuple[int, int], after: tuple[int, int], t: ChainThresholds) -> dict | None:
    """Record a removal; an anomaly when it (or the burst it ends) crosses the share."""
    time_s, record = obs["time_s"], obs["record"]
    removed_quote = before[1] - after[1]
    state["removals"] = _burst(state["removals"], time_s, t)
    state["removals"].append([time_s, removed_quote, before[1], record["signature"], obs["slot"]])
    burst_start_reserve = state["removals"][0][2]
    burst_share = (sum(r[1] for r in state["removals"]) / burst_start_reserve
                   if burst_start_reserve > 0 else 0.0)
    share = max(share_now, min(1.0, burst_share))
    if share < t.removal_share or not _cooled(state, "liquidity_removal", time_s, t):
        return None
    state["alerted"]["liquidity_removal"] = time_s
    provider = record.get("provider")
    top_lp = max(state["lp"], key=state["lp"].get) if state["lp"] else None
    by_insider = provider is not None and provider in (state["creator"], top_lp)
    evidence = {
        "summary": f"{share:.0%} of the pool's quote liquidity removed",
        "pool": pool, "provider": provider, "creator": state["creator"], "top_lp": top_lp,
        "signatures": [r[3] for r in state["removals"] if r[1] > 0], "removed_share": round(share, 6),
        "threshold": t.removal_share, "base_reserve_before": before[0], "quote_reserve_before": before[1],
        "base_reserve_after": after[0], "quote_reserve_after": after[1],
        "lp_burned": record.get("lp_amount"), "inferred_from_reserves": provider is None}
    confidence = 0.95 if by_insider else (0.6 if provider is None else 0.8)
    return make_anomaly(token=token, kind="liquidity_removal", detector=DETECTOR, time_s=time_s,
                        severity=ramp(share, t.removal_share, t.removal_share_full),
                        confidence=confidence, evidence=evidence, start_s=state["removals"][0][0],
                        slots=(state["removals"][0][4], obs["slot"]))


def _burst(removals: list, time_s: float, t: ChainThresholds) -> list:
    """The removals (and the adds between them, negative) within the burst window of
    `time_s`, from a removal on."""
    kept = [r for r in removals if time_s - r[0] <= t.removal_burst_s]
    while kept and kept[0][1] <= 0:
        kept.pop(0)
    return kept


def _price_dump(state: dict, pool: str, token: str, obs: dict, base: int, price: float,
                t: ChainThresholds) -> dict | None:
    time_s, record = obs["time_s"], obs["record"]
    # The window's peaks; after a quiet spell, at least the last price (a one-trade dump).
    peaks = [p for p in state["peaks"] if time_s - p[0] <= t.dump_window_s] or state["peaks"][-1:]
    anomaly = None
    if peaks:
        peak_time, peak_price, peak_base, peak_sig, peak_slot = peaks[0]
        drop = 1 - price / peak_price if peak_price > 0 else 0.0  # a price that underflowed to 0
        if drop >= t.dump_drop and base > peak_base and _cooled(state, "rug_price_dump", time_s, t):
            state["alerted"]["rug_price_dump"] = time_s
            anomaly = make_anomaly(
                token=token, kind="rug_price_dump", detector=DETECTOR, time_s=time_s,
                severity=ramp(drop, t.dump_drop, 0.99), confidence=0.8, start_s=peak_time,
                slots=(peak_slot, obs["slot"]),
                evidence={"summary": f"price down {drop:.1%} from its peak as tokens were sold into the pool",
                          "pool": pool, "peak_price": peak_price, "price": price, "drop": round(drop, 6),
                          "threshold": t.dump_drop, "peak_signature": peak_sig,
                          "signature": record["signature"], "base_reserve_at_peak": peak_base,
                          "base_reserve": base, "quote_reserve": record["quote_reserve"]})
    while peaks and peaks[-1][1] <= price:  # monotonic queue: the window's max stays first
        peaks.pop()
    peaks.append([time_s, price, base, record["signature"], obs["slot"]])
    state["peaks"] = peaks[-MAX_PEAKS:]
    return anomaly


def watch_pool(state: dict | None, pool: str, observations: list[dict], t: ChainThresholds, *,
               lp_followed: bool = False, half_life_s: float = DEFAULT_HALF_LIFE_S
               ) -> tuple[dict, list[dict]]:
    """Feed one pool's observations ({kind: state|liquidity|lp_transfers, time_s, slot, record})
    in order. `lp_followed`: the feed has every LP transfer (lp_transfers records: moves
    [source, destination, amount]); Solana blocks do not yet (kades.chain.lp_holders)."""
    state = state or new_pool_state()
    lp = state.setdefault("lp_holders", lp_holders.new_lp_state())
    anomalies: list[dict] = []
    explained = {o["record"]["signature"] for o in observations if o["kind"] == "liquidity"}
    # a record's key: its kind and transaction, and how many of that kind the transaction
    # had before it (a rug removing three positions in one transaction counted the first
    # only, 33 %, and raised nothing; a migration's second pool state was dropped)
    earlier: dict[str, int] = {}
    fresh = []
    # the slot's keys as a set too: looked up in the list, a pool's n records of one slot
    # took n^2 / 2 comparisons
    seen = set(state["slot_signatures"])
    for obs in observations:
        record, slot = obs["record"], obs["slot"]
        key = f'{obs["kind"]}:{record["signature"]}'
        earlier[key] = earlier.get(key, 0) + 1
        key += f":{earlier[key] - 1}" if earlier[key] > 1 else ""  # the first: as before
        if slot < state["last_slot"] or (slot == state["last_slot"] and key in seen):
            continue  # already seen: a late or repeated block changes nothing
        if slot > state["last_slot"]:
            state["last_slot"], state["slot_signatures"] = slot, []
            seen = set()
        state["slot_signatures"].append(key)
        seen.add(key)
        fresh.append(obs)
    # A transaction's liquidity records are judged together, at its last: a position
    # manager's rebalance (every position removed, then added back in the same transaction)
    # read as 100 % of the pool removed, a rug at confidence 0.8 or more
    last_of = {obs["record"]["signature"]: index for index, obs in enumerate(fresh)
               if obs["kind"] == "liquidity"}
    moved: dict[str, list] = {}  # signature -> [quote added (net), its removal, reserves before it]
    for index, obs in enumerate(fresh):
        record, slot = obs["record"], obs["slot"]
        token = record["base_mint"]
        _follow_lp(lp, obs)
        found = lp_holders.assess(lp, pool=pool, token=token, time_s=obs["time_s"], slot=slot,
                                  quote_reserve=_quote_after(state, obs), t=t,
                                  followed=lp_followed, half_life_s=half_life_s)
        anomalies.extend([found] if found else [])
        if obs["kind"] == "lp_transfers":
            continue
        if obs["kind"] == "liquidity":
            after = (record["base_reserve_after"], record["quote_reserve_after"])
            if record["action"] == "create" and state["creator"] is None:
                state["creator"] = record["provider"]
            if record["action"] in ("create", "add"):
                state["lp"][record["provider"]] = state["lp"].get(record["provider"], 0) + record["quote_delta"]
                if len(state["lp"]) > MAX_PROVIDERS:  # read only for its top LP: the largest kept
                    state["lp"] = dict(sorted(state["lp"].items(), key=lambda kv: -kv[1])[:MAX_PROVIDERS])
            tx = moved.setdefault(record["signature"], [0, obs, (record["base_reserve_before"],
                                                              record["quote_reserve_before"])])
            tx[0] += record["quote_delta"]
            if tx[0] < 0 and record["action"] not in ("create", "add"):
                tx[1] = obs  # the evidence's: the transaction's (last) removal
            state["last"] = list(after)
            if index != last_of[record["signature"]]:
                continue
            added, removal, before = moved.pop(record["signature"])
            if added >= 0:
                # an add within a burst of removals takes its quote off the burst's sum: LPs
                # coming and going (six out at 10 % each, six in at 11 %, the reserve never
                # under 90 %) summed to "60 % removed"
                if state["removals"]:
                    state["removals"] = _burst(state["removals"], obs["time_s"], t)
                    state["removals"].append([obs["time_s"], -added, before[1],
                                              record["signature"], slot])
            elif before[1] > 0 and not removal["record"].get("migration"):
                # (a bonding curve handing its reserves to the pool it graduates to is no pull)
                found = _removal(state, pool, token, {**removal, "time_s": obs["time_s"]},
                                 -added / before[1], before, after, t)
                anomalies.extend([found] if found else [])
            continue
        base, quote = record["base_reserve"], record["quote_reserve"]
        last = state["last"]
        if last and last[1] > 0 and last[0] > 0 and record["signature"] not in explained:
            quote_fall, base_fall = (last[1] - quote) / last[1], (last[0] - base) / last[0]
            if quote_fall >= t.removal_share and base_fall >= 0.5 * quote_fall:
                found = _removal(state, pool, token, {**obs, "record": {**record, "provider": None}},
                                 quote_fall, tuple(last), (base, quote), t)
                anomalies.extend([found] if found else [])
        state["last"] = [base, quote]
        # a concentrated-liquidity pool's or a bonding curve's vault ratio is no price
        # (kades.solana.programs: VAULTS_NOT_PRICED)
        price = None if record.get("program") in VAULTS_NOT_PRICED else _ui_price(base, quote, record)
        if price is not None:
            found = _price_dump(state, pool, token, obs, base, price, t)
            anomalies.extend([found] if found else [])
    return state, anomalies


def _follow_lp(lp: dict, obs: dict) -> None:
    """LP minted to, burned by or moved between holders, as the observation says."""
    record = obs["record"]
    if obs["kind"] == "lp_transfers":
        for source, destination, amount in record["moves"]:
            lp_holders.moved(lp, source, destination, amount, time_s=obs["time_s"])
    elif obs["kind"] == "liquidity" and record.get("lp_amount") and record.get("provider"):
        if record["action"] in ("create", "add"):
            lp_holders.minted(lp, record["provider"], record["lp_amount"], creator=record["action"] == "create")
        else:
            lp_holders.removed(lp, record["provider"], record["lp_amount"])


def _quote_after(state: dict, obs: dict) -> int | None:
    record = obs["record"]
    if obs["kind"] == "liquidity":
        return record["quote_reserve_after"]
    return record["quote_reserve"] if obs["kind"] == "state" else (state["last"] or [None, None])[1]
