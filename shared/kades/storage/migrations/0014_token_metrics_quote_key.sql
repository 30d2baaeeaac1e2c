-- 0014 A token-metrics row's key names its quote (0012 added the column): the key (token,
-- time, source) kept one quote's row a second, so a feed pricing a token in USD and in SOL
-- had whichever came first stored and the other dropped. Rows from before keep their quote
-- ('' or the one they named), so none collides. TimescaleDB 2.x changes the key of a
-- hypertable, compressed chunks included. The new key's index is built while writes to the
-- table wait (one transaction): on a large table, inserts answer 503 (retried) meanwhile.

ALTER TABLE token_metrics DROP CONSTRAINT token_metrics_pkey;
ALTER TABLE token_metrics ADD PRIMARY KEY (token, time, source, quote);
