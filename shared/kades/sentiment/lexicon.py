"""Crypto language added to VADER's own word list (which ships inside the vaderSentiment wheel).

Valences use VADER's scale (-4 … +4; most of its entries lie within ±3). Multi-word phrases
and emoji sequences are first rewritten to one token (`PHRASES`), because VADER looks words up
one at a time. Words written with their meaning in crypto and market chatter in mind; the
finance verbs ("beats", "downgrade") are here because coin chatter borrows them.
"""
from __future__ import annotations

# Crypto slang and market words. Strong negatives (rug, honeypot) outweigh the polite words
# people wrap them in ("great, another rug"): see model.CRYPTO_DOMINANCE.
WORDS: dict[str, float] = {
    # bullish slang
    "moon": 2.6, "mooning": 2.8, "moons": 2.4, "mooned": 2.4, "wagmi": 2.4, "lfg": 2.6,
    "hodl": 1.6, "hodling": 1.6, "bullish": 2.6, "bull": 1.2, "pumping": 1.8,
    "ath": 1.8, "gem": 2.0, "gems": 1.8, "lambo": 2.0, "ape": 1.4, "aped": 1.2, "aping": 1.2,
    "based": 1.4, "alpha": 1.2, "undervalued": 1.8, "breakout": 2.0, "bullrun": 2.4,
    "100x": 2.8, "10x": 2.4, "1000x": 2.8, "send": 1.0, "sending": 1.4, "wen": 0.4,
    "gm": 0.6, "accumulating": 1.2, "accumulate": 1.0, "btfd": 1.4, "giga": 1.0,
    "rally": 2.0, "rallies": 1.8, "rallied": 1.8, "surge": 2.0, "surges": 2.0, "surged": 2.0,
    "soar": 2.2, "soars": 2.2, "soared": 2.2, "jumps": 1.6, "jumped": 1.4, "climbs": 1.4,
    "beats": 1.6, "upgrade": 1.8, "upgrades": 1.8, "upgraded": 1.8, "outperform": 1.8,
    "record": 1.0, "raises": 1.0, "higher": 0.8, "rebound": 1.6, "rebounds": 1.6,
    "gains": 1.8, "profit": 1.8, "profits": 1.8, "green": 1.2, "pumped": 1.2,
    # bearish slang and danger
    "rug": -3.2, "rugged": -3.4, "rugpull": -3.6, "rugs": -3.0, "rugging": -3.2,
    "honeypot": -3.6, "rekt": -3.0, "ngmi": -2.6, "scam": -3.2, "scammer": -3.2,
    "scammers": -3.2, "scammed": -3.2, "scamcoin": -3.4, "ponzi": -3.2, "exploit": -2.6,
    "exploited": -2.8, "hacked": -3.0, "hack": -2.2, "drained": -3.0, "drainer": -3.2,
    "dump": -2.4, "dumping": -2.6, "dumped": -2.6, "dumps": -2.2, "bagholder": -2.2,
    "bagholders": -2.2, "bags": -0.8, "jeet": -1.8, "jeets": -1.8, "fud": -1.6,
    "bearish": -2.6, "bear": -1.0, "crash": -2.6, "crashed": -2.8, "crashing": -2.8,
    "tank": -2.0, "tanked": -2.6, "tanking": -2.6, "plunge": -2.4, "plunges": -2.4,
    "plunged": -2.4, "tumbles": -2.2, "tumbled": -2.2, "slump": -2.0, "slumps": -2.0,
    "sinks": -1.8, "sank": -1.8, "falls": -1.2, "fell": -1.2, "drops": -1.4, "dropped": -1.4,
    "downgrade": -2.0, "downgrades": -2.0, "downgraded": -2.0, "underperform": -1.8,
    "misses": -1.6, "cuts": -1.2, "lower": -0.8, "lowers": -1.2, "weak": -1.6, "weakness": -1.6,
    "rugger": -3.2, "devsold": -3.0, "abandoned": -2.2, "dead": -2.4, "deadcoin": -3.0,
    "shitcoin": -2.2, "shill": -1.4, "shilling": -1.6, "shilled": -1.4, "paperhands": -1.6,
    "exitscam": -3.6, "bleeding": -2.2, "liquidated": -2.8, "wrecked": -2.8, "red": -1.0,
    "selloff": -2.2, "capitulation": -2.2, "insolvent": -3.0, "bankrupt": -3.2,
    "losses": -2.0, "loss": -1.6, "down": -0.8, "warning": -1.6, "beware": -2.4,
    "sus": -1.8, "fake": -2.4, "stolen": -3.0, "frozen": -1.6, "delisted": -2.6,
    # emoji tokens (see PHRASES): VADER's own emoji file only names them
    "xrocket": 2.4, "xdiamondhands": 2.4, "xfire": 1.8, "xmoonemoji": 2.0, "xmoneybag": 1.8,
    "xchartup": 2.0, "xgreenup": 1.6, "xbull": 1.8, "xclown": -2.8, "xwarning": -2.2,
    "xchartdown": -2.0, "xskull": -1.6, "xpoop": -2.2, "xredflag": -2.6, "xtoilet": -2.4,
    "xtoothsad": -1.4, "xrollingeyes": -1.6,
    # phrase tokens (see PHRASES)
    "xtothemoon": 3.0, "xrugpull": -3.6, "xexitscam": -3.6, "xdevsold": -3.0,
    "xbuythedip": 1.6, "xdiamondhand": 2.2, "xpaperhands": -1.6, "xnotfinancialadvice": 0.0,
    "xallin": 1.4, "xdyor": -0.4, "xfewunderstand": 1.6, "xpriceprediction": 0.0,
    "xliquiditypulled": -3.6, "xliquidityremoved": -3.6, "xlockedliquidity": 1.2,
    "xsoldout": -1.2, "xgoingtozero": -3.2, "xwenlambo": 1.6, "xlfg": 2.6,
    "xpumpanddump": -3.4, "xstayaway": -2.8, "xcantsell": -3.2, "xcannotsell": -3.2,
    "xtakeprofit": 0.8, "xallbeforeyouleave": 0.0,
}

# Rewritten before scoring, longest first (case-insensitive; matched on word edges where
# the key starts or ends with a letter).
PHRASES: dict[str, str] = {
    "to the moon": "xtothemoon", "rug pull": "xrugpull", "rug pulled": "xrugpull",
    "rugpulled": "xrugpull", "exit scam": "xexitscam", "dev sold": "xdevsold",
    "dev dumped": "xdevsold", "buy the dip": "xbuythedip", "buying the dip": "xbuythedip",
    "diamond hands": "xdiamondhand", "paper hands": "xpaperhands",
    "not financial advice": "xnotfinancialadvice", "nfa": "xnotfinancialadvice",
    "all in": "xallin", "few understand": "xfewunderstand", "liquidity pulled": "xliquiditypulled",
    "liquidity removed": "xliquidityremoved", "pulled liquidity": "xliquiditypulled",
    "pulled the liquidity": "xliquiditypulled", "removed liquidity": "xliquidityremoved",
    "locked liquidity": "xlockedliquidity", "liquidity locked": "xlockedliquidity",
    "going to zero": "xgoingtozero", "goes to zero": "xgoingtozero", "wen lambo": "xwenlambo",
    "pump and dump": "xpumpanddump", "pump & dump": "xpumpanddump", "stay away": "xstayaway",
    "can't sell": "xcantsell", "cant sell": "xcantsell", "cannot sell": "xcannotsell",
    "unable to sell": "xcannotsell", "take profit": "xtakeprofit", "taking profit": "xtakeprofit",
    "💎🙌": " xdiamondhands ", "💎🤲": " xdiamondhands ", "💎✋": " xdiamondhands ",
    "🧻🙌": " xpaperhands ", "🚀": " xrocket ", "🔥": " xfire ", "🌕": " xmoonemoji ",
    "🌝": " xmoonemoji ", "💰": " xmoneybag ", "🤑": " xmoneybag ", "📈": " xchartup ",
    "🟢": " xgreenup ", "🐂": " xbull ", "💎": " xdiamondhands ", "🤡": " xclown ",
    "⚠️": " xwarning ", "⚠": " xwarning ", "🚨": " xwarning ", "📉": " xchartdown ",
    "💀": " xskull ", "☠️": " xskull ", "💩": " xpoop ", "🚩": " xredflag ", "🚽": " xtoilet ",
    "😬": " xtoothsad ", "🙄": " xrollingeyes ",
}

# Marks that say the literal words mean their opposite.
SARCASM_MARKS = ("/s", "xclown", "xrollingeyes", "yeah right", "sure buddy", "sure jan",
                 "what could go wrong", "totally legit", "definitely not a scam")

