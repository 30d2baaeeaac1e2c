"""`kades apikey` against the test database: create, list, revoke; the key is shown once."""
from __future__ import annotations

import re

import pytest

from kades import exitcodes
from kades.api.cli import main_apikey
from kades.settings import Settings
from kades.storage import apikeys


def test_create_list_revoke(kades_settings, db_conn, capsys):
    assert main_apikey(["create", "--tier", "premium", "--name", "desk"], config=kades_settings) == 0
    created = capsys.readouterr().out
    key_id = re.search(r"key id (\S+) \(premium\)", created).group(1)
    key = created.strip().splitlines()[-1]

    assert main_apikey(["list"], config=kades_settings) == 0
    listed = capsys.readouterr().out
    assert re.search(rf"^{key_id}\s+premium\s+\S+ \S+\s+-\s+desk$", listed, re.MULTILINE)
    assert key not in listed  # never shown again

    assert main_apikey(["revoke", key_id], config=kades_settings) == 0
    assert main_apikey(["revoke", key_id], config=kades_settings) == 1  # no live key left
    capsys.readouterr()
    assert main_apikey(["list"], config=kades_settings) == 0
    assert key_id not in capsys.readouterr().out
    assert main_apikey(["list", "--all"], config=kades_settings) == 0
    revoked = [line for line in capsys.readouterr().out.splitlines() if line.startswith(key_id)]
    assert len(revoked) == 1 and " - " not in revoked[0]


def test_database_away_is_one_line_and_exit_code_3(capsys):
    away = Settings.from_env({"KADES_DATABASE_URL": "postgresql://kades:s3cret@127.0.0.1:1/kades"})
    for argv in (["list"], ["create"], ["revoke", "abcd1234"]):
        assert main_apikey(argv, config=away) == exitcodes.UNAVAILABLE
        err = capsys.readouterr().err
        assert err.startswith("kades apikey: PostgreSQL at "
                              "postgresql://kades:***@127.0.0.1:1/kades is unreachable "
                              "(OperationalError: connection failed")
        assert err.count("\n") == 1 and "Traceback" not in err and "s3cret" not in err


def test_an_unknown_key_is_a_failure_on_stderr(kades_settings, db_conn, capsys):
    assert main_apikey(["revoke", "nokey000"], config=kades_settings) == exitcodes.FAILURE
    assert capsys.readouterr().err == "kades apikey: no live key nokey000\n"


FORGED = "x\nFAKE0000 enterprise 2024-01-01 00:00:00  -                    \x1b[2Jroot"


def test_a_name_with_control_characters_is_refused_at_create(kades_settings, db_conn, capsys):
    # A newline would print a forged row in `list`; an escape sequence would drive the terminal.
    with pytest.raises(SystemExit) as stop:
        main_apikey(["create", "--name", FORGED], config=kades_settings)
    assert stop.value.code == exitcodes.USAGE
    assert "--name: a key's name holds no control characters" in capsys.readouterr().err
    assert apikeys.list_keys(db_conn) == []
    with pytest.raises(ValueError, match="no control characters"):
        apikeys.create_key(db_conn, tier="standard", name="tab\there")


def test_list_shows_a_stored_name_with_control_characters_escaped(kades_settings, db_conn, capsys):
    key_id, _ = apikeys.create_key(db_conn, tier="standard")
    db_conn.execute("UPDATE api_keys SET name = %s WHERE key_id = %s", (FORGED, key_id))
    db_conn.commit()  # written to the table by other means (or before names were checked)
    assert main_apikey(["list"], config=kades_settings) == exitcodes.OK
    out = capsys.readouterr().out
    assert out.count("\n") == 2 and "\x1b" not in out  # the header and one row, no ESC
    assert out.splitlines()[1].endswith(repr(FORGED))


@pytest.mark.parametrize("ttl", ["0", "-60", "ten", str(10 ** 40)])
def test_jwt_with_a_ttl_that_is_no_lifetime_is_a_usage_error(ttl, capsys):
    config = Settings.from_env({"KADES_JWT_SECRET": "s" * 32})
    with pytest.raises(SystemExit) as stop:  # was exit 0 with a token already expired
        main_apikey(["jwt", "abcd1234", "--ttl-s", ttl], config=config)
    assert stop.value.code == exitcodes.USAGE
    assert f"--ttl-s: expected seconds from 1 to 31622400, got {ttl!r}" in capsys.readouterr().err


def test_revoking_a_key_stops_its_webhooks_and_its_thresholds(kades_settings, db_conn,
                                                             redis_conn, capsys):
    """A revoked key's webhook kept receiving signed alerts (and its owner could no longer
    delete it), and its 0.05 threshold kept governing everyone's alerts on the token."""
    import dataclasses
    from kades.keys import TRACKED_THRESHOLDS
    from kades.storage import tracking, webhooks
    revoked, kept = (apikeys.create_key(db_conn, tier="premium")[0] for _ in range(2))
    hook = webhooks.create_webhook(db_conn, key_id=revoked, url="https://partner.example/hook",
                                   secret="s", min_level="low")
    for key, token, threshold in ((revoked, "Shared", 0.05), (kept, "Shared", 0.5),
                                  (revoked, "Alone", 0.1)):
        lowest = tracking.track_token(db_conn, key_id=key, token=token, alert_threshold=threshold,
                                      update_interval=60)
        tracking.publish_threshold(redis_conn, token, lowest)
    webhooks.queue_deliveries(db_conn, [hook["id"]], "alert-1", {"level": "high"})
    db_conn.commit()
    away = dataclasses.replace(kades_settings, redis_url="redis://127.0.0.1:1/0")
    assert main_apikey(["revoke", revoked], config=away) == exitcodes.UNAVAILABLE
    assert apikeys.key_exists(db_conn, revoked)  # Redis away: nothing revoked, to try again
    capsys.readouterr()
    assert main_apikey(["revoke", revoked], config=kades_settings) == exitcodes.OK
    assert capsys.readouterr().out == f"revoked {revoked}: 1 webhook(s) deleted, 2 token(s) untracked\n"
    db_conn.rollback()
    assert [w["id"] for w in webhooks.live_webhooks(db_conn)] == []
    (claimed,) = webhooks.claim_due(db_conn, limit=10, lease_s=30)
    assert claimed["webhook_deleted"]  # the worker drops it, as for a deleted webhook
    assert [r["key_id"] for r in tracking.tracked_tokens(db_conn)] == [kept]
    assert redis_conn.hgetall(TRACKED_THRESHOLDS) == {b"Shared": b"0.5"}


def test_a_key_value_connection_strings_password_is_not_printed(capsys):
    """libpq's key=value form, which KADES_DATABASE_URL may be, was printed whole, password
    and all, where a URL's password is starred."""
    from kades.settings import redact_url
    dsn = "host=127.0.0.1 port=1 dbname=kades user=kades password='s3cr3t x' connect_timeout=1"
    away = Settings.from_env({"KADES_DATABASE_URL": dsn})
    assert main_apikey(["list"], config=away) == exitcodes.UNAVAILABLE
    err = capsys.readouterr().err
    assert "s3cr3t" not in err and "password=***" in err, err
    assert redact_url("host=h password=p4ss user=u") == "host=h password=*** user=u"
