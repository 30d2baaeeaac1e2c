"""Settings from KADES_* variables, each typed as its default; a malformed one is named with
what it expects, an unknown one is reported with the closest known name."""
import logging
import re
from pathlib import Path

import pytest

from kades.errors import KadesError
from kades.settings import (Settings, SettingsError, function_port, known_variables,
                            unknown_variables)


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


def test_a_malformed_value_names_its_variable_and_what_it_expects():
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"KADES_DEDUP_TTL_S": "7d"})
    assert str(raised.value) == "KADES_DEDUP_TTL_S='7d': expected a whole number of seconds"
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, KadesError)


def test_every_malformed_value_is_in_one_error():
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"KADES_DEDUP_TTL_S": "7d", "KADES_REDIS_TIMEOUT_S": "fast",
                           "KADES_MAX_EVENT_BYTES": "16M", "KADES_WEBHOOK_ALLOW_PRIVATE": "maybe",
                           "KADES_LOG_LEVEL": "verbose", "KADES_ALERT_HYSTERESIS": "nan",
                           "KADES_REDIS_URL": "redis://elsewhere/0"})
    assert raised.value.problems == [
        "KADES_LOG_LEVEL='verbose': expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
        "KADES_DEDUP_TTL_S='7d': expected a whole number of seconds",
        "KADES_MAX_EVENT_BYTES='16M': expected a whole number of bytes",
        "KADES_REDIS_TIMEOUT_S='fast': expected a number of seconds",
        "KADES_ALERT_HYSTERESIS='nan': expected a number",
        "KADES_WEBHOOK_ALLOW_PRIVATE='maybe': expected true or false (also 1/0, yes/no, on/off)"]


def test_a_value_out_of_its_range_is_named_with_the_range():
    """KADES_REDIS_TIMEOUT_S=-1 and KADES_DATABASE_POOL_SIZE=0 were taken, and every command
    then failed with a client library's traceback (or called Redis unreachable for 0)."""
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"KADES_REDIS_TIMEOUT_S": "-1", "KADES_DATABASE_POOL_SIZE": "0",
                           "KADES_REDIS_WAIT_REPLICAS": "-2", "KADES_ALERT_DEFAULT_THRESHOLD": "1.5",
                           "KADES_DATABASE_TIMEOUT_S": "0", "KADES_BROKER_OIDC_PORT": "70000"})
    assert raised.value.problems == [
        "KADES_REDIS_TIMEOUT_S='-1': expected a number of seconds above 0",
        "KADES_REDIS_WAIT_REPLICAS='-2': expected a whole number of at least 0",
        "KADES_DATABASE_TIMEOUT_S='0': expected a number of seconds above 0",
        "KADES_DATABASE_POOL_SIZE='0': expected a whole number of at least 1",
        "KADES_ALERT_DEFAULT_THRESHOLD='1.5': expected a number of at most 1",
        "KADES_BROKER_OIDC_PORT='70000': expected a whole number of at most 65535"]
    edges = Settings.from_env({"KADES_REDIS_WAIT_REPLICAS": "0", "KADES_ALERT_DEFAULT_THRESHOLD": "1",
                               "KADES_DATABASE_POOL_SIZE": "1", "KADES_REDIS_TIMEOUT_S": "0.01"})
    assert (edges.redis_wait_replicas, edges.alert_default_threshold, edges.database_pool_size,
            edges.redis_timeout_s) == (0, 1.0, 1, 0.01)


def test_a_redis_or_database_url_of_another_scheme_is_malformed():
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"KADES_REDIS_URL": "garbage", "KADES_DEDUP_TTL_S": "7d",
                           "KADES_DATABASE_URL": "mysql://kades:s3cret@db/kades"})
    assert raised.value.problems == [  # with every other bad variable, the password hidden
        "KADES_DEDUP_TTL_S='7d': expected a whole number of seconds",
        "KADES_REDIS_URL='garbage': expected a redis://, rediss:// or unix:// URL",
        "KADES_DATABASE_URL='mysql://kades:***@db/kades': expected a postgresql:// or "
        "postgres:// URL"]
    for url, message in (("redis://host/abc", "expected a database number, got 'abc'"),
                         ("redis://host/0?db=x", "expected a database number, got 'x'"),
                         ("redis://host:port/0", "Port could not be cast"),
                         ("http://host/0", "expected a redis://")):
        with pytest.raises(SettingsError, match=re.escape(message)):
            Settings.from_env({"KADES_REDIS_URL": url})
    with pytest.raises(SettingsError, match="KADES_DATABASE_URL='garbage': not a PostgreSQL"):
        Settings.from_env({"KADES_DATABASE_URL": "garbage"})


def test_redis_and_database_urls_of_their_schemes_are_taken():
    for url in ("redis://127.0.0.1:6390/0", "rediss://:pw@cache:6380/3", "redis://cache",
                "redis://cache/?db=2", "unix:///run/redis.sock?db=1"):
        assert Settings.from_env({"KADES_REDIS_URL": url}).redis_url == url
    for url in ("postgresql://kades@127.0.0.1:5440/kades", "postgres://db/kades",
                "postgresql://kades@/kades?host=/run/postgresql", "host=db dbname=kades",
                "postgresql://kades@db1:5432,db2:5432/kades?target_session_attrs=read-write"):
        assert Settings.from_env({"KADES_DATABASE_URL": url}).database_url == url


def test_chain_thresholds_and_ports_say_the_same_way_what_is_wrong():
    from kades.chain.thresholds import ChainThresholds
    with pytest.raises(SettingsError, match=r"KADES_CHAIN_WASH_MIN_TRADES='four': expected a "
                                            r"whole number$"):
        ChainThresholds.from_env({"KADES_CHAIN_WASH_MIN_TRADES": "four"})
    with pytest.raises(SettingsError, match=r"KADES_PORT_RISK_SCORING='80o1': expected a whole"):
        function_port("risk-scoring", {"KADES_PORT_RISK_SCORING": "80o1"})
    with pytest.raises(SettingsError, match=r"KADES_PORT_API='70000': expected a port number"):
        function_port("api", {"KADES_PORT_API": "70000"})
    assert function_port("api", {"KADES_PORT_API": " 8001 "}) == 8001


def test_an_unknown_variable_is_named_with_the_closest_known_one():
    assert unknown_variables({"KADES_REDIS_URLL": "x", "KADES_CHAIN_WASH_WINDOW": "60",
                              "KADES_FROBNICATE": "1", "KADES_REDIS_URL": "y", "HOME": "/"}) == {
        "KADES_CHAIN_WASH_WINDOW": "KADES_CHAIN_WASH_WINDOW_S",
        "KADES_FROBNICATE": None,
        "KADES_REDIS_URLL": "KADES_REDIS_URL"}


def test_reading_the_environment_at_start_up_warns_of_a_typo_once(monkeypatch, caplog):
    monkeypatch.setenv("KADES_DATABASE_URLL", "postgresql://nowhere/kades")
    with caplog.at_level(logging.WARNING, logger="kades.settings"):
        Settings.from_env()
        Settings.from_env()  # the same process: said once
    (record,) = [r for r in caplog.records if "KADES_DATABASE_URLL" in r.getMessage()]
    assert record.getMessage() == ("unknown setting KADES_DATABASE_URLL is ignored; "
                                   "did you mean KADES_DATABASE_URL?")
    assert record.fields == {"variable": "KADES_DATABASE_URLL", "closest": "KADES_DATABASE_URL"}


# Unknown on purpose: the typos that tests and docs use to show the warning.
DELIBERATE_TYPOS = {"KADES_REDIS_URLL", "KADES_DATABASE_URLL", "KADES_CHAIN_WASH_WINDOW",
                    "KADES_FROBNICATE", "KADES_SPLIT_WALLETS"}
SCANNED = ("shared", "functions", "tests", "knative", "eventing", "docs", "Makefile",
           "Dockerfile", "README.md")


def test_every_kades_variable_the_repository_mentions_is_known():
    """One list (kades.settings.known_variables) of every KADES_* name any code, manifest,
    test or page uses, so that the start-up warning never flags a real setting."""
    root = Path(__file__).resolve().parents[2]
    paths = [p for name in SCANNED for p in ([root / name] if (root / name).is_file()
                                             else (root / name).rglob("*"))]
    accepted, unknown = known_variables() | DELIBERATE_TYPOS, {}
    for path in paths:
        relative = path.relative_to(root).as_posix()
        if not path.is_file() or "__pycache__" in relative:
            continue
        for name in re.findall(r"KADES_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(errors="replace")):
            if name not in accepted:
                unknown.setdefault(name, relative)
    assert unknown == {}, "add them to kades.settings (a field or OTHER_VARIABLES)"
