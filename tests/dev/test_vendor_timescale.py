"""Installing the vendored TimescaleDB build: finding it, and telling whether it can load."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kades.dev import services as devservices, vendor_timescale


@pytest.fixture
def bindir() -> Path:
    try:
        return devservices._postgres_bindir()
    except devservices.DevServiceUnavailable as error:
        pytest.skip(str(error))


def test_the_vendor_folder_is_found_beside_the_repository_for_the_servers_major(tmp_path):
    repo = tmp_path / "main"
    repo.mkdir()
    assert vendor_timescale.find_vendor(repo, "15") is None
    for name in ("timescaledb-2.27.0-pg15", "timescaledb-2.28.3-pg15", "timescaledb-2.28.3-pg16"):
        (tmp_path / "shared" / "vendor" / name / "lib").mkdir(parents=True)
        (tmp_path / "shared" / "vendor" / name / "lib" / "timescaledb.so").write_bytes(b"")
    assert vendor_timescale.find_vendor(repo, "15").name == "timescaledb-2.28.3-pg15"
    assert vendor_timescale.find_vendor(repo, "14") is None


@pytest.mark.skipif(not (shutil.which("nm") and shutil.which("readelf")), reason="no binutils")
def test_missing_server_functions_are_found_by_their_symbols(bindir):
    # A module of PostgreSQL's own calls into the server: all there in `postgres`, none in
    # an unrelated binary (the check that found the vendored build needs a newer server).
    lib_dir = vendor_timescale.pg_dirs(bindir)[0]
    module = lib_dir / "pg_stat_statements.so"
    if not module.is_file():
        pytest.skip(f"{module} is not installed")
    assert vendor_timescale.missing_symbols([module], bindir / "postgres") == set()
    missing = vendor_timescale.missing_symbols([module], Path(shutil.which("readelf")))
    assert {"palloc", "ereport_domain", "errstart"} & missing


def test_an_installed_extension_loads_into_this_server(bindir):
    if not vendor_timescale.installed(bindir):
        pytest.skip("TimescaleDB is not installed for this PostgreSQL")
    assert vendor_timescale.loadable(bindir)
    assert vendor_timescale.server_major(bindir).isdigit()
