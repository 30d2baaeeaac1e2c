"""`kades apikey` against the test database: create, list, revoke; the key is shown once."""
from __future__ import annotations

import re

from kades.api.cli import main_apikey


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
