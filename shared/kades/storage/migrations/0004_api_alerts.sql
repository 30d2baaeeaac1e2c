-- 0004 api keys, tracked tokens, webhooks and their deliveries (plain PostgreSQL).

-- API keys are shown once at creation and stored only as a salted SHA-256: a key carries
-- 190 random bits, so a slow hash (bcrypt, scrypt) would add latency to every request and
-- no protection. `key_id` is the first 8 characters after `kades_` and finds the row.
CREATE TABLE api_keys (
    key_id       text        PRIMARY KEY,
    salt         bytea       NOT NULL,
    key_hash     bytea       NOT NULL,
    tier         text        NOT NULL CHECK (tier IN ('standard', 'premium', 'enterprise')),
    name         text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

-- One row per (key, token): what that caller asked to watch and from which risk to alert.
CREATE TABLE tracked_tokens (
    key_id           text             NOT NULL REFERENCES api_keys (key_id),
    token            text             NOT NULL,
    alert_threshold  double precision NOT NULL CHECK (alert_threshold >= 0 AND alert_threshold <= 1),
    update_interval  integer          NOT NULL CHECK (update_interval >= 1),
    created_at       timestamptz      NOT NULL DEFAULT now(),
    updated_at       timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (key_id, token)
);
CREATE INDEX tracked_tokens_token_idx ON tracked_tokens (token);

-- The secret signs deliveries (HMAC), so it is kept as given, not hashed.
CREATE TABLE webhooks (
    id          uuid        PRIMARY KEY,
    key_id      text        NOT NULL REFERENCES api_keys (key_id),
    url         text        NOT NULL,
    secret      text        NOT NULL,
    min_level   text        NOT NULL DEFAULT 'high'
                            CHECK (min_level IN ('low', 'medium', 'high', 'critical')),
    tokens      text[]      NOT NULL DEFAULT '{}',   -- empty: every token
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
CREATE INDEX webhooks_key_idx ON webhooks (key_id) WHERE deleted_at IS NULL;

-- The retry queue of webhook deliveries: one row per (webhook, alert event), so a
-- redelivered alert queues nothing new. Workers claim due rows with SKIP LOCKED.
CREATE TABLE webhook_deliveries (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id       uuid        NOT NULL REFERENCES webhooks (id),
    alert_id         text        NOT NULL,
    payload          jsonb       NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status      integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (webhook_id, alert_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
