"""Market ticks from chain blocks: per token, last price, volume and liquidity of one slot.

Prices are in SOL, read from the reserves after the slot's last pool state, else from its
last swap (a stablecoin-quoted record converted by SOL's price); liquidity is every pool of
the token's (merge_pool_liquidity). When the block itself prices SOL in a stablecoin (a pool or
swap of SOL against USDC, USDT or USD1), or one seen within the hour did, `price_usd` is added.
"""
from __future__ import annotations

import math

from kades.events.catalogue import MAX_AMOUNT, MAX_SOL_USD, MAX_TICK_POOLS, MIN_SOL_USD
from kades.keys import MARKET_POOLS, SOL_USD
from kades.solana.programs import CONCENTRATED, LAMPORTS, STABLECOINS, WSOL


MIN_PRICE_DOLLARS = 1_000.0  # the stablecoin a slot's SOL price needs behind it
SOL_USD_TTL_S = 3600  # the SOL price kept an hour at most, then unknown again
# Keep the SOL price of the newest slot only: blocks come in no order, and the last block
# to arrive set it, an older slot's price after a newer one's (KEYS[1] = "price slot")
_NOTE_NEWER = """
local kept = redis.call('GET', KEYS[1])
if kept then
  local slot = tonumber(string.match(kept, ' (%d+)$'))
  if slot and slot >= tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'EX', ARGV[3])
return 1
"""


def note_sol_usd(client, price: float, slot: int) -> bool:
    """Keep `price` as SOL's unless a newer slot's is kept; whether it was kept."""
    return bool(client.register_script(_NOTE_NEWER)(
        keys=[SOL_USD], args=[repr(float(price)), int(slot), SOL_USD_TTL_S]))


def read_sol_usd(client) -> float | None:
    """SOL's price as the newest slot seen within the hour gave it (None: none seen)."""
    kept = client.get(SOL_USD)
    return float(kept.split()[0]) if kept else None


def sol_usd_of(block: dict) -> float | None:
    """SOL in USD from the block's own SOL/stablecoin trades and pools (base = the stablecoin);
    a part of a split block carries the whole slot's in its context (kades.solana.parts).

    The median weighted by the dollars behind each price (a swap's stablecoin amount, a
    pool's stablecoin reserve): a pool anyone can make prices SOL at anything, and its one
    trade priced SOL at 1e-30 $ for every whale check of the next hour; real SOL/USDC volume
    outweighs it, and a slot with less than MIN_PRICE_DOLLARS behind its prices says nothing
    (the price seen before stands). Prices outside [MIN_SOL_USD, MAX_SOL_USD] say nothing."""
    if "context" in block:
        return block["context"].get("sol_usd")
    quotes: list[tuple[float, float]] = []  # (SOL in USD, the dollars behind it)
    for record in list(block.get("swaps", [])) + list(block.get("pool_states", [])):
        if record.get("quote_mint") != WSOL or record.get("base_mint") not in STABLECOINS \
                or not record.get("price"):
            continue
        usd = 1.0 / record["price"]  # the record prices one dollar in SOL
        if MIN_SOL_USD <= usd <= MAX_SOL_USD:
            quotes.append((usd, _dollars(record)))
    if sum(weight for _, weight in quotes) < MIN_PRICE_DOLLARS:
        return None  # a made-up pool alone in its slot: the price seen before stands
    return _weighted_median(quotes)


def _dollars(record: dict) -> float:
    """The stablecoin behind a SOL/stablecoin record: a swap's amount, a pool's reserve."""
    if "base_reserve" in record:
        return record["base_reserve"] / 10 ** record.get("base_decimals", 6)
    decimals = record.get("decimals_out" if record.get("side") == "buy" else "decimals_in", 6)
    return record.get("base_amount", 0) / 10 ** decimals


def _rate(quote: str, target: str, sol_usd: float | None) -> float | None:
    """What one unit of `quote` is in `target` (SOL or a stablecoin, a stablecoin as a
    dollar); None when it cannot be told (no SOL price, or another quote)."""
    if quote == target or (quote in STABLECOINS and target in STABLECOINS):
        return 1.0
    if sol_usd and quote == WSOL and target in STABLECOINS:
        return sol_usd
    if sol_usd and quote in STABLECOINS and target == WSOL:
        return 1.0 / sol_usd
    return None


def quote_lamports(swap: dict, sol_usd: float | None) -> int:
    """A swap's quote amount in lamports, so that a token's trades in its SOL pool and in its
    stablecoin pool add up (a wash group's share of the volume, a buyer's mean size): SOL's
    as it is, a stablecoin's at `sol_usd` (the slot's SOL price). In raw units, the same
    dollar was 6.7 times as many lamports as USD1 or USDC units at $150 a SOL. A stablecoin
    without a SOL price known stays in its own raw units; another token's worth is not known
    here, so it counts as none: 1M BONK (about $20) as a million lamports' thousand times over
    made an $80 market maker 89 % of a token's volume, a wash_trading alert (0.9)."""
    amount, quote = swap["quote_amount"], swap["quote_mint"]
    if quote != WSOL and quote not in STABLECOINS:
        return 0
    rate = None if quote == WSOL else _rate(quote, WSOL, sol_usd)
    if rate is None:
        return amount
    decimals = swap["decimals_in"] if swap["side"] == "buy" else swap["decimals_out"]
    return round(amount / 10 ** decimals * rate * LAMPORTS)


def _weighted_median(quotes: list[tuple[float, float]]) -> float:
    """The value at half the total weight (> 0)."""
    quotes.sort()
    total = sum(weight for _, weight in quotes)
    running = 0.0
    for value, weight in quotes:
        running += weight
        if running >= total / 2:
            return value
    return quotes[-1][0]


def chain_ticks(block: dict, *, sol_usd: float | None = None,
                unpriced: list[dict] | None = None) -> list[dict]:
    """One tick per traded token of the block (stablecoins and SOL themselves excluded),
    always in SOL: a record quoted in a stablecoin is converted by the slot's SOL price, and
    left out without one, as a record in any other quote is. A token's unit came from its
    records of the block: SOL in one block and dollars in the next (its USDC pool alone
    traded) moved its price 150 times (a false price spike, then a pump), and a SOL and a
    USDC record in one block took the price from one and the quote from the other.

    A tick's `pools` maps each pool the block has a state of to [the block's slot, its
    liquidity in SOL] (both sides: 2 x the quote reserve), and `liquidity` is their sum: the
    token's, once `merge_pool_liquidity` has added the pools this block did not touch.
    A pool state without a price (a pool drained of one side) still gives its pool's
    liquidity; a token the block prices nowhere gets no tick, and goes to `unpriced`, if
    given, as {token, pools}: its pools' states are kept all the same. Dropped, a drained
    pool's last liquidity before the pull stood in every later tick of its token."""
    time, slot = block.get("block_time"), block.get("slot")
    sol_usd = sol_usd_of(block) or sol_usd
    records: dict[str, list[tuple[str, dict]]] = {}
    for kind, rows in (("swap", block.get("swaps", [])), ("state", block.get("pool_states", []))):
        for record in rows:
            if record["base_mint"] not in STABLECOINS and (record.get("price") or (
                    kind == "state" and record.get("program") not in CONCENTRATED)):
                records.setdefault(record["base_mint"], []).append((kind, record))
    ticks = []
    for token, found in records.items():
        tick: dict = {"volume": 0.0, "pools": {}}
        for kind, record in found:  # swaps, then pool states: the last of each sets the price
            # the source, the program of the token's last record whatever its quote: a row's
            # key (token, second, source), and a retry that could convert one more record
            # (SOL's price known by then) named another and stored the slot a second time
            tick["source"] = f"solana:{record.get('program', 'pool')}"
            rate = _rate(record["quote_mint"], WSOL, sol_usd)
            if rate is None:
                continue
            if record.get("price") and record["price"] * rate <= MAX_AMOUNT:
                # (a stablecoin price near the bound is past it in SOL: a tick no function
                # downstream takes, so the record prices nothing, as one in another quote)
                tick["price"] = record["price"] * rate
            if kind == "swap":
                decimals = record["decimals_in"] if record["side"] == "buy" else record["decimals_out"]
                tick["volume"] += record["quote_amount"] / 10 ** decimals * rate
            else:  # both sides of a constant-product pool are worth the same: 2 x quote side
                tick["pools"][record["pool"]] = [
                    slot or 0, 2 * record["quote_reserve"] / 10 ** record["quote_decimals"] * rate]
        if not tick.get("price") or time is None:
            if tick["pools"] and unpriced is not None:
                unpriced.append({"token": token, "pools": tick["pools"]})
            continue
        row = {"token": token, "time": time, "price": tick["price"], "volume": tick["volume"],
               "source": tick["source"], "quote": WSOL}
        if slot is not None:  # (block times are whole seconds: 2-3 slots share one)
            row["slot"] = slot
        if tick["pools"]:
            row["pools"] = tick["pools"]
            row["liquidity"] = math.fsum(liquidity for _, liquidity in tick["pools"].values())
        if sol_usd:
            row["price_usd"] = tick["price"] * sol_usd
        ticks.append(row)
    return ticks


POOLS_TTL_S = 7 * 24 * 3600  # a token's pools forgotten a week after its last pool state
# Per token (KEYS[i]), per pool its two newest states: "slot liquidity[ slot liquidity]", the
# newest first (blocks come in no order: a block handled late finds the state of its slot, or
# one before, in the second); answers each token's kept pools (HGETALL). ARGV: slot, ttl, most
# pools, then per key: n, n (pool, liquidity).
_MERGE_POOLS = """
local slot, ttl, most, at, out = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), 4, {}
for i, key in ipairs(KEYS) do
  local n = tonumber(ARGV[at])
  at = at + 1
  for j = 1, n do
    local pool, liquidity = ARGV[at], ARGV[at + 1]
    at = at + 2
    local state = slot .. ' ' .. liquidity
    local kept = redis.call('HGET', key, pool)
    if not kept then
      if redis.call('HLEN', key) < most then redis.call('HSET', key, pool, state) end
    else
      local a, b, c, d = string.match(kept, '^(%d+) (%S+) ?(%d*) ?(%S*)$')
      local newest, older = tonumber(a), tonumber(c)
      if newest < slot then
        redis.call('HSET', key, pool, state .. ' ' .. a .. ' ' .. b)
      elseif newest == slot then
        redis.call('HSET', key, pool, state .. (older and (' ' .. c .. ' ' .. d) or ''))
      elseif not older or older <= slot then
        redis.call('HSET', key, pool, a .. ' ' .. b .. ' ' .. state)
      end
    end
  end
  redis.call('EXPIRE', key, ttl)
  out[i] = redis.call('HGETALL', key)
end
return out
"""


def merge_pool_liquidity(client, slot: int, ticks: list[dict]) -> None:
    """Set each tick's liquidity to its token's: the state of every pool of it seen (kept in
    Redis), not the pools of this block alone. A token with a 400 SOL and a 20 SOL pool read
    as a 95 % liquidity pull whenever only the small one traded (a false liquidity_drop at
    score 1). Each tick's `pools` becomes every pool kept, [slot, liquidity] each: the block's
    own states, and of the others the newest state at or before the block's slot (none when
    both states kept are later). Blocks come in no order, so what is kept may miss an earlier
    slot's state; temporal-analysis sums the pools again in slot order (kades.temporal.pools).
    A later slot's state was no news to it, and made a busy token's ticks, which wait in its
    reorder buffer, carry every pool."""
    pooled = [tick for tick in ticks if tick.get("pools")]
    if not pooled:
        return
    args: list = [int(slot), POOLS_TTL_S, MAX_TICK_POOLS]
    for tick in pooled:
        args.append(len(tick["pools"]))
        for pool, (_, liquidity) in tick["pools"].items():
            args += [pool, repr(float(liquidity))]
    kept = client.register_script(_MERGE_POOLS)(
        keys=[MARKET_POOLS.format(token=tick["token"]) for tick in pooled], args=args)
    for tick, flat in zip(pooled, kept):
        pools, names = {}, set()
        for pool, value in zip(flat[::2], flat[1::2]):
            names.add(pool := pool.decode() if isinstance(pool, bytes) else pool)
            if (state := _state_at(value.split(), slot)) is not None:
                pools[pool] = state
        for pool, state in tick["pools"].items():  # the block's own, as they are in it
            if pool in names:  # (not kept: past the most pools, not counted)
                pools[pool] = state
        tick["pools"] = pools
        tick["liquidity"] = math.fsum(liquidity for _, liquidity in pools.values())


def _state_at(fields: list, slot: int) -> list | None:
    """[slot, liquidity] of the newest of a pool's kept states (fields: slot, liquidity, and
    maybe an older slot and liquidity) at or before `slot`; None if both are later."""
    for at in range(0, len(fields) - 1, 2):
        if int(fields[at]) <= slot:
            return [int(fields[at]), float(fields[at + 1])]
    return None
