"""Market ticks from chain blocks: per token, last price, volume and liquidity of one slot.

Prices are in the pool's quote token (SOL for most memecoins), read from the reserves after
the slot's last pool state, else from its last swap. When the block itself prices SOL in a
stablecoin (a SOL/USDC or SOL/USDT pool or swap), `price_usd` is added.
"""
from __future__ import annotations

from kades.events.catalogue import MAX_SOL_USD, MIN_SOL_USD
from kades.keys import SOL_USD
from kades.solana.programs import STABLECOINS, WSOL


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


def chain_ticks(block: dict, *, sol_usd: float | None = None) -> list[dict]:
    """One tick per traded token of the block (stablecoins and SOL themselves excluded), in
    one quote: SOL where any of its pools is SOL-quoted, else its first record's. A record in
    another quote is converted by the slot's SOL price (a stablecoin as a dollar), or left
    out without one: a token traded in its SOL and its USDC pool in one block took its price
    from one and its quote from the other (a price 150 times off: a false price spike) and
    summed SOL and dollars as its volume."""
    time = block.get("block_time")
    sol_usd = sol_usd_of(block) or sol_usd
    records: dict[str, list[tuple[str, dict]]] = {}
    for kind, rows in (("swap", block.get("swaps", [])), ("state", block.get("pool_states", []))):
        for record in rows:
            if record["base_mint"] not in STABLECOINS and record.get("price"):
                records.setdefault(record["base_mint"], []).append((kind, record))
    per_token: dict[str, dict] = {}
    for token, found in records.items():
        quotes = [record["quote_mint"] for _, record in found]
        quote = WSOL if WSOL in quotes else quotes[0]
        tick = per_token[token] = {"volume": 0.0, "quote": quote}
        for kind, record in found:  # swaps, then pool states: the last of each sets the price
            rate = _rate(record["quote_mint"], quote, sol_usd)
            if rate is None:
                continue
            tick["price"] = record["price"] * rate
            tick["source"] = f"solana:{record.get('program', 'pool')}"
            if kind == "swap":
                decimals = record["decimals_in"] if record["side"] == "buy" else record["decimals_out"]
                tick["volume"] += record["quote_amount"] / 10 ** decimals * rate
            else:  # both sides of a constant-product pool are worth the same: 2 x quote side
                tick["liquidity"] = 2 * record["quote_reserve"] / 10 ** record["quote_decimals"] * rate
    ticks = []
    for token, tick in per_token.items():
        if not tick.get("price") or time is None:
            continue
        row = {"token": token, "time": time, "price": tick["price"], "volume": tick["volume"],
               "source": tick["source"], "quote": tick["quote"]}
        if block.get("slot") is not None:  # (block times are whole seconds: 2-3 slots share one)
            row["slot"] = block["slot"]
        if "liquidity" in tick:
            row["liquidity"] = tick["liquidity"]
        if sol_usd and tick["quote"] == WSOL:
            row["price_usd"] = tick["price"] * sol_usd
        elif tick["quote"] in STABLECOINS:
            row["price_usd"] = tick["price"]
        ticks.append(row)
    return ticks
