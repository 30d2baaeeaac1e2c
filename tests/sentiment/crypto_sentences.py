"""Crypto posts labelled by hand: slang, emojis, negation, sarcasm (a test set, never tuned on).

Shared by tests/sentiment/test_model.py and `make eval` (tests/eval/eval_sentiment.py). Each
entry: (text, expected label, what it exercises).
"""
from __future__ import annotations

SENTENCES: list[tuple[str, str, str]] = [
    # slang
    ("$WIF wagmi, best community on sol", "positive", "slang"),
    ("this coin is going to moon, lfg", "positive", "slang"),
    ("ngmi if you sold $BONK here", "negative", "slang"),
    ("got rekt on that leverage long", "negative", "slang"),
    ("hodl and stop panicking", "positive", "slang"),
    ("aped in early, already 10x", "positive", "slang"),
    ("dev sold the whole supply, classic rug", "negative", "slang"),
    ("it's a honeypot, you can buy but not sell", "negative", "slang"),
    ("paper hands sold the bottom again", "negative", "slang"),
    ("bullish on $JUP long term", "positive", "slang"),
    ("bearish divergence on the 4h, careful", "negative", "slang"),
    ("liquidity pulled 10 minutes after launch", "negative", "slang"),
    ("pump and dump group pushing this one", "negative", "slang"),
    ("this is a scam, stay away", "negative", "slang"),
    ("buy the dip, fundamentals unchanged", "positive", "slang"),
    ("massive dump incoming, whales exiting", "negative", "slang"),
    ("new ATH today for $SOL", "positive", "slang"),
    ("total ponzi, the team is anonymous and the wallet drained", "negative", "slang"),
    # emojis
    ("$BONK 🚀🚀🚀", "positive", "emoji"),
    ("diamond hands only 💎🙌", "positive", "emoji"),
    ("💎🙌 not selling", "positive", "emoji"),
    ("this chart 📈🔥", "positive", "emoji"),
    ("another one bites the dust 📉💀", "negative", "emoji"),
    ("⚠️ contract has a mint function, be careful", "negative", "emoji"),
    ("🚩🚩 dev wallet holds 40%", "negative", "emoji"),
    ("$PEPE 🤡🤡🤡", "negative", "emoji"),
    ("gm 🌞 $SOL", "positive", "emoji"),
    # negation
    ("not a rug, liquidity is locked for a year", "positive", "negation"),
    ("this is not going to moon", "negative", "negation"),
    ("never selling my $WIF", "positive", "negation"),
    ("no way this is a scam, team is doxxed", "positive", "negation"),
    ("not bullish at all on this launch", "negative", "negation"),
    ("i don't trust this dev", "negative", "negation"),
    ("can't sell my tokens, transaction keeps failing", "negative", "negation"),
    # sarcasm
    ("great, another rug. thanks dev", "negative", "sarcasm"),
    ("wow what a surprise, the dev dumped again 🙄", "negative", "sarcasm"),
    ("best investment ever 🤡", "negative", "sarcasm"),
    ("love getting rugged every week /s", "negative", "sarcasm"),
    ("totally legit project, anonymous team and no liquidity lock", "negative", "sarcasm"),
    ("sure buddy, it's definitely going to 100x", "negative", "sarcasm"),
    ("amazing tokenomics, 90% held by one wallet", "negative", "sarcasm"),
    # neutral
    ("what is the contract address for $WIF?", "neutral", "neutral"),
    ("$SOL trading at 142 right now", "neutral", "neutral"),
    ("new pool created on raydium for this token", "neutral", "neutral"),
    ("does anyone know when the snapshot is?", "neutral", "neutral"),
    ("migrating to the new contract tomorrow", "neutral", "neutral"),
    ("volume report for the last 24 hours attached", "neutral", "neutral"),
    ("$BONK listed on another exchange today", "neutral", "neutral"),
]
