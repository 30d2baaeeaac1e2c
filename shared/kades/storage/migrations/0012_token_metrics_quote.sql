-- 0012 What a token-metrics row is priced in: the chain's ticks in SOL (its wrapped mint), a
-- feed's in the `quote` its ticks name ('' when they name none). A token traded on the chain
-- and followed by a USD feed had both in one series: the API drew prices a hundred times
-- apart side by side and summed SOL and dollars as one volume. The API reads one quote at a
-- time (kades.storage.analysis). Rows from before keep '' (the tick named no quote then);
-- the API reads the chain's ('' with a `solana:` source) as the wrapped SOL mint.

ALTER TABLE token_metrics ADD COLUMN quote text NOT NULL DEFAULT '';
