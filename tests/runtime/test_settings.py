"""Settings from KADES_* variables, each typed as its default."""
from kades.settings import Settings


def test_values_take_the_type_of_their_default():
    config = Settings.from_env({"KADES_DEDUP_TTL_S": "60", "KADES_REDIS_TIMEOUT_S": "0.5",
                                "KADES_LOG_LEVEL": "DEBUG", "K_SINK": "http://sink/"})
    assert (config.dedup_ttl_s, config.redis_timeout_s, config.log_level, config.sink_url) == (
        60, 0.5, "DEBUG", "http://sink/")


def test_a_flag_is_true_only_when_it_says_so():
    assert Settings.from_env({}).webhook_allow_private is False
    for raw, expected in (("true", True), ("1", True), ("Yes", True), ("false", False),
                          ("0", False), ("", False)):
        assert Settings.from_env({"KADES_WEBHOOK_ALLOW_PRIVATE": raw}).webhook_allow_private is expected


def test_chain_thresholds_read_their_own_prefix():
    from kades.chain.thresholds import ChainThresholds
    tuned = ChainThresholds.from_env({"KADES_CHAIN_ACCUMULATION_BUYS": "12",
                                      "KADES_CHAIN_WHALE_WINDOW_S": "600", "KADES_SPLIT_WALLETS": "9"})
    assert (tuned.accumulation_buys, tuned.whale_window_s) == (12, 600.0)
    assert tuned.split_wallets == ChainThresholds().split_wallets  # not its prefix
