-- 0005 the anomaly score temporal-analysis gave every tick (the ensemble's score and the
-- member behind it), so that a token's score history can be read beside its prices.
-- One row per (token, time): a redelivered tick inserts nothing.

CREATE TABLE temporal_scores (
    time         timestamptz      NOT NULL,
    token        text             NOT NULL,
    score        double precision NOT NULL CHECK (score >= 0 AND score <= 1),
    top_detector text             NOT NULL DEFAULT '',
    event_source text             NOT NULL DEFAULT '',
    event_id     text             NOT NULL DEFAULT '',
    PRIMARY KEY (token, time)
);
