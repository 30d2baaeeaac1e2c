-- 0010 The chain slots a token-metrics row holds. Block times are whole seconds and two or
-- three Solana slots share one, so market-aggregator's ticks of one token, source and second
-- came in several events and the key (token, time, source) kept whichever arrived first.
-- A row now merges the slots of its second (kades.storage.repository.insert_token_metrics):
-- volume summed, price and liquidity the newest slot's, each slot once however often its
-- block is delivered. Feed ticks carry no slot ('{}') and keep one row per key as before.

ALTER TABLE token_metrics ADD COLUMN slots bigint[] NOT NULL DEFAULT '{}';
