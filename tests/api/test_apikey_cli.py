"""`kades apikey` against the test database: create, list, revoke; the key is shown once."""
from __future__ import annotations

import re

from kades import exitcodes
from kades.api.cli import main_apikey
from kades.settings import Settings


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
