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


@pytest.fixture
def fake_server(tmp_path, monkeypatch):
    """A PostgreSQL 15 whose directories are folders of tmp_path, the vendored build beside
    the repository `tmp_path/main`, and us root: what ensure_installed sees, minus apt."""
    lib_dir, extension_dir = tmp_path / "pkglib", tmp_path / "extension"
    vendor = tmp_path / "shared" / "vendor" / "timescaledb-2.28.3-pg15"
    for folder in (lib_dir, extension_dir, vendor / "lib", vendor / "extension", tmp_path / "main"):
        folder.mkdir(parents=True)
    for name in ("timescaledb.so", "timescaledb-2.28.3.so"):
        (vendor / "lib" / name).write_bytes(b"\x7fELF" + bytes(4096))
    for name in ("timescaledb.control", "timescaledb--2.28.3.sql"):
        (vendor / "extension" / name).write_text(f"-- {name}\n")
    monkeypatch.setattr(vendor_timescale, "pg_dirs", lambda bindir: (lib_dir, extension_dir))
    monkeypatch.setattr(vendor_timescale, "server_major", lambda bindir: "15")
    monkeypatch.setattr(vendor_timescale.os, "geteuid", lambda: 0)
    return tmp_path / "bin", tmp_path / "main", lib_dir, extension_dir


def test_without_binutils_the_build_is_not_copied_unchecked(fake_server, monkeypatch):
    """Without nm and readelf the check of the build's symbols found nothing missing: the
    server was not upgraded, the build was copied anyway, and PostgreSQL then did not start."""
    bindir, repo, lib_dir, extension_dir = fake_server
    real_which = shutil.which
    monkeypatch.setattr(vendor_timescale.shutil, "which", lambda name: None
                        if name in vendor_timescale.BINUTILS else real_which(name))
    asked = []  # apt: asked to install binutils, which then are still not there
    monkeypatch.setattr(vendor_timescale, "_apt_install", lambda *args: asked.append(args))
    with pytest.raises(vendor_timescale.TimescaleInstallError, match="apt-get install binutils"):
        vendor_timescale.ensure_installed(bindir, repo)
    assert asked == [("--no-install-recommends", "binutils")]
    assert list(lib_dir.iterdir()) == list(extension_dir.iterdir()) == []
    monkeypatch.setattr(vendor_timescale.os, "geteuid", lambda: 1000)  # not root: no apt
    with pytest.raises(vendor_timescale.TimescaleInstallError, match="nm and readelf"):
        vendor_timescale.missing_symbols([Path("/bin/sh")], Path("/bin/sh"))
    assert len(asked) == 1


def test_a_copy_cut_short_leaves_no_file_half_written_and_is_copied_again(fake_server,
                                                                          monkeypatch):
    bindir, repo, lib_dir, extension_dir = fake_server
    monkeypatch.setattr(vendor_timescale, "missing_symbols", lambda libraries, server: set())
    real_copy, failing = shutil.copyfile, set()

    def copyfile(source, target):  # the disk full halfway through the file
        if Path(source).name in failing:
            Path(target).write_bytes(Path(source).read_bytes()[:100])
            raise OSError(28, "No space left on device")
        return real_copy(source, target)

    monkeypatch.setattr(vendor_timescale.shutil, "copyfile", copyfile)
    whole = {path.name: path.read_bytes() for path in
             (repo.parent / "shared" / "vendor").glob("timescaledb-*/*/*")}
    for cut in ("timescaledb.so", "timescaledb--2.28.3.sql"):
        failing = {cut}
        with pytest.raises(OSError, match="No space left"):
            vendor_timescale.ensure_installed(bindir, repo)
        assert not vendor_timescale.installed(bindir)  # so the next start copies again
        placed = [*lib_dir.iterdir(), *extension_dir.iterdir()]
        assert {path.name for path in placed} <= set(whole), placed  # no partial copy left
        assert all(path.read_bytes() == whole[path.name] for path in placed)  # each one whole
    failing = set()
    assert vendor_timescale.ensure_installed(bindir, repo).startswith("installed timescaledb")
    assert vendor_timescale.installed(bindir)
    assert sorted(p.name for p in extension_dir.iterdir()) == ["timescaledb--2.28.3.sql",
                                                               "timescaledb.control"]


def test_an_install_whose_server_was_not_upgraded_is_repaired(fake_server, monkeypatch):
    """installed() alone was taken as done: a build copied before its server was upgraded
    stayed unloadable for ever."""
    bindir, repo, lib_dir, extension_dir = fake_server
    (lib_dir / "timescaledb.so").write_bytes(b"old")
    (extension_dir / "timescaledb.control").write_text("old")
    upgraded = []
    monkeypatch.setattr(vendor_timescale, "missing_symbols", lambda libraries, server:
                        set() if upgraded else {"heap_datum_check"})
    monkeypatch.setattr(vendor_timescale, "_upgrade_server", upgraded.append)
    assert vendor_timescale.installed(bindir) and not vendor_timescale.loadable(bindir)
    real_copy = shutil.copyfile

    def copy_failing_once(source, target):
        monkeypatch.setattr(vendor_timescale.shutil, "copyfile", real_copy)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(vendor_timescale.shutil, "copyfile", copy_failing_once)
    with pytest.raises(OSError):  # cut short: the old control file is no sign of an install
        vendor_timescale.ensure_installed(bindir, repo)
    assert not vendor_timescale.installed(bindir)
    done = vendor_timescale.ensure_installed(bindir, repo)
    assert upgraded == ["15"] and done.startswith("installed timescaledb-2.28.3-pg15")
    assert vendor_timescale.loadable(bindir)
    assert (lib_dir / "timescaledb.so").read_bytes() != b"old"


def test_a_server_that_cannot_be_checked_is_plain_postgresql_or_a_clear_error(monkeypatch,
                                                                             capsys):
    """Without nm and readelf (a slim image, apt away) `auto` stopped PostgreSQL from starting
    at all: it is plain PostgreSQL then, said; the Apache-2 edition, asked for, is an error."""
    def cannot_tell(bindir):
        raise vendor_timescale.TimescaleInstallError("... needs nm and readelf ...")

    monkeypatch.setattr(vendor_timescale, "ensure_installed", lambda bindir, repo: None)
    monkeypatch.setattr(vendor_timescale, "loadable", cannot_tell)
    assert devservices.timescale_options(Path("/nowhere"), "auto") == []
    assert "TimescaleDB not used: ... needs nm and readelf" in capsys.readouterr().err
    with pytest.raises(devservices.DevServiceUnavailable, match="nm and readelf"):
        devservices.timescale_options(Path("/nowhere"), "apache")
