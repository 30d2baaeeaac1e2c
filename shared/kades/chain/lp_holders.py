"""Who can pull a pool's liquidity: LP supply by holder class, and a warning before the pull.

A pool's LP tokens are its liquidity's title deeds. Burned (sent to a burn address) or locked
(held by a time-lock contract), nobody can withdraw them; held by one wallet, that wallet can
empty the pool in one transaction. A pull needs the deeds, so it shows before it happens: the
wallet that minted them keeps them unlocked, or takes them back out of a locker.

State per pool (plain JSON, kept in the pool document): LP balance per wallet, the burned and
locked amounts, the creator (first LP minter), and the current episode of concentration (its
holder, since when, the stage reached and the scores reported). `assess` turns the state into
at most one `liquidity_unlocked` anomaly, raised in stages as the holder keeps the LP:
- stage 1 after `lp_notice_s`, stage 2 after `lp_lock_grace_s` (real launches lock or burn
  within minutes; kades.chain.thresholds gives the measurements behind the defaults);
- LP taken back out of a locker is stage 2 at once: a lock ends so that it can be spent.
Each anomaly carries the increment that lifts the noisy-OR of the episode's reports to the
stage's target (kades.risk.scoring combines a component's anomalies as 1 - prod(1 - s)), so
repeated reports of a standing condition do not add up past what the evidence says.

>>> lp = new_lp_state()
>>> minted(lp, "CREATOR", 1000, creator=True)
>>> moved(lp, "CREATOR", "1nc1nerator11111111111111111111111111111111", 900)
>>> shares(lp)["burned"], shares(lp)["top_holder"], shares(lp)["top_share"]
(0.9, 'CREATOR', 0.1)
"""
from __future__ import annotations

from kades.chain.anomaly import make_anomaly, ramp
from kades.chain.thresholds import ChainThresholds

DETECTOR = "chain.lp_holders"
KIND = "liquidity_unlocked"
# Where LP tokens go to die. Ethereum: the zero address (Uniswap V2 mints MINIMUM_LIQUIDITY
# there) and 0x…dEaD; Solana: the incinerator, an address without a private key.
BURN_ADDRESSES = frozenset({"0x0000000000000000000000000000000000000000",
                            "0x000000000000000000000000000000000000dead",
                            "1nc1nerator11111111111111111111111111111111"})
# Time-lock contracts holding LP for their depositors until an end date, on Ethereum mainnet
# (both hold the locked LP of the shared Uniswap pools; their own docs and Etherscan labels
# name them). On Solana the lockers (Raydium's LP lock, Streamflow, UNCX) keep each lock in a
# program-derived account, so an owner-level transfer does not name the locker: unknown there.
LOCKERS = {"0x663a5c229c09b049e36dcc11a9b0d4a8eb9db214": "UNCX UniswapV2Locker",
           "0xe2fe530c047f2d85298b07d9333c05737f1435fb": "Team Finance lock"}
# How sure a pull may come, by how long the LP stayed unlocked: stage 1 is "medium", stage 2
# "high" (never "critical": that takes the pull itself) for a creator holding it all, in
# kades.risk.scoring whether it scales evidence short of a rug by 0.85 or not.
STAGE_CONFIDENCE = {1: 0.65, 2: 0.88}
NOT_CREATOR = 0.8                        # a large LP who is not the pool's creator: less often a scam
UNFOLLOWED = 0.5                         # LP transfers and burns not seen (Solana): the holder may have
                                         # burned them; never a level alone, evidence beside others
RESTATE_GAP = 0.04                       # restate a standing episode once it decayed this far below
RESTATE_S = 1800.0                       # ... at most every 30 min (6 h half-life: 0.88 -> 0.83)
MAX_WALLETS = 256                        # the largest LP holders kept; the rest summed in "small"


def _key(address: str) -> str:
    return address.lower() if address.startswith("0x") else address  # base58 is case-sensitive


def holder_class(address: str) -> str:
    key = _key(address)
    return "burned" if key in BURN_ADDRESSES else ("locked" if key in LOCKERS else "wallet")


def new_lp_state() -> dict:
    return {"wallets": {}, "small": 0, "burned": 0, "locked": 0, "creator": None, "unlocked": {},
            "episode": None}


def minted(lp: dict, holder: str, amount: int, *, creator: bool = False) -> None:
    if creator and lp["creator"] is None:
        lp["creator"] = holder
    _credit(lp, holder, amount, None)


def removed(lp: dict, holder: str, amount: int) -> None:
    """`holder` burned `amount` LP to take its share of the reserves out."""
    if holder_class(holder) == "wallet":
        _debit(lp, holder, amount)


def moved(lp: dict, source: str, destination: str, amount: int, *, time_s: float | None = None) -> None:
    """An LP transfer; out of a locker back to a wallet marks that wallet as just unlocked."""
    kind = holder_class(source)
    if kind == "locked":
        lp["locked"] = max(0, lp["locked"] - amount)
    elif kind == "wallet":
        _debit(lp, source, amount)
    _credit(lp, destination, amount, time_s if kind == "locked" else None)


def _debit(lp: dict, holder: str, amount: int) -> None:
    left = lp["wallets"].pop(holder, 0) - amount
    if left > 0:
        lp["wallets"][holder] = left


def _credit(lp: dict, holder: str, amount: int, unlocked_at: float | None) -> None:
    kind = holder_class(holder)
    if kind == "wallet":
        lp["wallets"][holder] = lp["wallets"].get(holder, 0) + amount
        if unlocked_at is not None:
            lp["unlocked"][holder] = unlocked_at
        if len(lp["wallets"]) > MAX_WALLETS:  # the document stays small; small holders are others
            smallest = min((h for h in lp["wallets"] if h != lp["creator"]), key=lambda h: (lp["wallets"][h], h))
            lp["small"] += lp["wallets"].pop(smallest)
            lp["unlocked"].pop(smallest, None)
    else:
        lp[kind] += amount


def shares(lp: dict) -> dict:
    """LP supply by holder class, as shares of the whole supply (0 when there is none)."""
    wallets = lp["wallets"]
    supply = sum(wallets.values()) + lp["small"] + lp["burned"] + lp["locked"]
    top = max(wallets, key=lambda h: (wallets[h], h)) if wallets else None
    part = (lambda v: round(v / supply, 6)) if supply else (lambda v: 0.0)
    creator = wallets.get(lp["creator"], 0)
    return {"supply": supply, "burned": part(lp["burned"]), "locked": part(lp["locked"]),
            "creator": part(creator), "top_holder": top, "top_share": part(wallets[top]) if top else 0.0,
            "others": part(sum(wallets.values()) + lp["small"] - creator)}


def assess(lp: dict, *, pool: str, token: str, time_s: float, slot: int, quote_reserve: int | None,
           t: ChainThresholds, followed: bool, half_life_s: float) -> dict | None:
    """The anomaly this moment adds (None: nothing new). `followed`: LP transfers are seen."""
    if not lp["wallets"]:  # no wallet holds LP (shares would name no top holder): quiet
        lp["episode"] = None
        return None
    now = shares(lp)
    holder, share = now["top_holder"], now["top_share"]
    if holder is None or share < t.lp_holder_share:
        lp["episode"] = None  # burned, locked or spread: quiet
        return None
    episode = lp["episode"]
    if episode is None or episode["holder"] != holder:
        unlocked = lp["unlocked"].pop(holder, None)
        since = time_s - t.lp_lock_grace_s if unlocked is not None else time_s
        episode = lp["episode"] = {"holder": holder, "since": since, "began": time_s, "start_slot": slot,
                                   "stage": 0, "reports": [], "from_locker": unlocked is not None}
    held_s = time_s - episode["since"]
    stage = 2 if held_s >= t.lp_lock_grace_s else (1 if held_s >= t.lp_notice_s else 0)
    if stage == 0:
        return None
    confidence = STAGE_CONFIDENCE[stage] * (1.0 if holder == lp["creator"] else NOT_CREATOR)
    confidence *= 1.0 if followed else UNFOLLOWED
    severity = ramp(share, t.lp_holder_share, t.lp_holder_share_full)
    target = severity * confidence
    standing = _decayed(episode, time_s, half_life_s)
    restate = (stage == episode["stage"] and followed and standing < target - RESTATE_GAP
               and time_s - episode["reports"][-1][0] >= RESTATE_S)
    if not (stage > episode["stage"] or restate) or target <= standing:
        return None
    increment = 1.0 - (1.0 - target) / (1.0 - standing)
    episode["stage"] = stage
    episode["reports"] = [r for r in episode["reports"] if _weight(r, time_s, half_life_s) >= 0.01]
    episode["reports"].append([time_s, round(increment, 4)])
    unlocked_s = time_s - episode["began"]
    evidence = {
        "summary": (f"{share:.0%} of the pool's LP withdrawable by one wallet "
                    f"({'the creator' if holder == lp['creator'] else 'not the creator'}), "
                    + ("just taken back out of a locker" if episode["from_locker"]
                       else f"unlocked for {unlocked_s / 60:.0f} min")),
        "pool": pool, "holder": holder, "holder_is_creator": holder == lp["creator"],
        "creator": lp["creator"], "holder_share": share, "creator_share": now["creator"],
        "burned_share": now["burned"], "locked_share": now["locked"], "others_share": now["others"],
        "lp_supply": now["supply"], "unlocked_for_s": round(unlocked_s, 1), "stage": stage,
        "back_from_locker": episode["from_locker"], "lp_transfers_followed": followed,
        "target_score": round(target, 4), "threshold": t.lp_holder_share,
        "withdrawable_quote": int(quote_reserve * share) if quote_reserve is not None else None}
    anomaly = make_anomaly(token=token, kind=KIND, detector=DETECTOR, time_s=time_s, severity=severity,
                           confidence=confidence, evidence=evidence, start_s=episode["began"],
                           slots=(episode["start_slot"], slot))
    anomaly["score"] = round(increment, 4)  # not severity x confidence: what the episode adds
    return anomaly


def _weight(report: list, time_s: float, half_life_s: float) -> float:
    return report[1] * 0.5 ** ((time_s - report[0]) / half_life_s)


def _decayed(episode: dict, time_s: float, half_life_s: float) -> float:
    """What the episode's reports still weigh in the risk: their decayed scores' noisy-OR,
    as kades.risk.scoring adds up anomalies."""
    left = 1.0
    for report in episode["reports"]:
        left *= 1.0 - _weight(report, time_s, half_life_s)
    return 1.0 - left
