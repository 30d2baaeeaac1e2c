"""The event contract: envelope (CloudEvents over HTTP) and catalogue (types and data schemas)."""
from kades.events.catalogue import (  # noqa: F401
    ALERT, ANOMALY_DETECTED, CHAIN_BLOCK, MARKET_FEED, MARKET_TICK, RISK_SCORED, SCHEMAS,
    SENTIMENT_SCORED, SOCIAL_POSTS, TOKEN_TRACKED, data_problems, derived_id, new_event,
    now_rfc3339, validate_data)
from kades.events.envelope import (  # noqa: F401
    BATCH_TYPE, STRUCTURED_TYPE, CloudEvent, decode, from_batch, from_binary, from_structured,
    to_batch, to_binary, to_dict, to_structured)
