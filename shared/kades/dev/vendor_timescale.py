"""TimescaleDB for local development and tests, from the build handed to the team.

TimescaleDB is in no package registry these machines reach, so `../shared/vendor/` beside
the repository holds an unmodified build for this machine image
(`timescaledb-<version>-pg<major>/`: `lib/*.so` and `extension/*`). `ensure_installed` copies
it into the server's directories when it is there and we are root, as its README says.

The build was compiled against a later minor release of PostgreSQL than the image ships: it
calls server functions (`heap_datum_check`) that only the Debian security update exports, and
the server refuses to start with it preloaded. So before installing, the symbols the build
needs are checked against the server binary (with binutils' nm and readelf, installed with
apt when missing), and the server packages are upgraded from Debian's archive (`apt-get
install --only-upgrade`) when some are missing. The files are copied each under a temporary
name and renamed into place, `timescaledb.control` (what `installed` looks for) last: a copy
cut short is copied again at the next start.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from kades.errors import KadesError


class TimescaleInstallError(KadesError, RuntimeError):
    """The vendored TimescaleDB could not be installed or cannot load into this server."""


def pg_dirs(bindir: Path) -> tuple[Path, Path] | None:
    """(pkglibdir, extension dir) of the server in `bindir`; None without its pg_config."""
    pg_config = bindir / "pg_config"
    if not pg_config.is_file():
        return None
    share, lib = subprocess.run([str(pg_config), "--sharedir", "--pkglibdir"],
                                capture_output=True, text=True, check=True).stdout.split()
    return Path(lib), Path(share) / "extension"


def installed(bindir: Path) -> bool:
    """Whether the server in `bindir` has the timescaledb extension files (the control file
    is the last one `ensure_installed` puts in place)."""
    dirs = pg_dirs(bindir)
    return bool(dirs) and (dirs[1] / "timescaledb.control").is_file() and \
        (dirs[0] / "timescaledb.so").is_file()


def server_major(bindir: Path) -> str:
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True,
                         text=True, check=True).stdout
    return re.search(r"\) (\d+)", out)[1]


def find_vendor(repo_root: Path, major: str) -> Path | None:
    """The newest `../shared/vendor/timescaledb-*-pg<major>` beside `repo_root`, if any."""
    found = sorted((Path(repo_root).parent / "shared" / "vendor").glob(
        f"timescaledb-*-pg{major}"))
    return found[-1] if found and (found[-1] / "lib" / "timescaledb.so").is_file() else None


def _symbols(path: Path, *, defined: bool) -> set[str]:
    """Dynamic symbols an ELF file defines, or needs (strong references only)."""
    flag = "--defined-only" if defined else "--undefined-only"
    out = subprocess.run(["nm", "-D", flag, str(path)], capture_output=True, text=True,
                         check=True).stdout
    fields = (line.split() for line in out.splitlines())
    return {f[-1].split("@")[0] for f in fields if f and (defined or f[-2] == "U")}


def _needed_libraries(path: Path) -> list[Path]:
    """The system libraries `path` links against (libc, libm, libssl ...), as found."""
    dynamic = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True,
                             check=True).stdout
    names = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    found = dict(re.findall(r"^\s*(\S+) \(libc6,x86-64[^)]*\) => (\S+)$", cache, re.M))
    return [Path(found[name]) for name in names if name in found]


BINUTILS = ("nm", "readelf")


def require_binutils() -> None:
    """nm and readelf, which tell what a build calls: installed with apt (binutils) when they
    are missing and we are root; a TimescaleInstallError saying so when they cannot be."""
    if all(shutil.which(tool) for tool in BINUTILS):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        _apt_install("--no-install-recommends", "binutils")
        if all(shutil.which(tool) for tool in BINUTILS):
            return
    raise TimescaleInstallError("telling whether TimescaleDB loads into this PostgreSQL needs "
                                "nm and readelf, which are not installed: apt-get install "
                                "binutils")


def missing_symbols(libraries: list[Path], server: Path) -> set[str]:
    """Functions that `libraries` call and neither the `server` binary, the libraries
    themselves nor the system libraries they link against define (`require_binutils`)."""
    require_binutils()
    needed = set().union(*(_symbols(lib, defined=False) for lib in libraries))
    linked = {server, *libraries}  # the server's own libraries serve the extension too
    providers = linked | {d for lib in linked for d in _needed_libraries(lib)}
    return needed - set().union(*(_symbols(p, defined=True) for p in providers))


def _apt_install(*arguments: str) -> None:
    """`apt-get update`, then `apt-get install -y` `arguments`."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *arguments]):
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode:
            raise TimescaleInstallError(f"{' '.join(command)} failed: {done.stderr.strip()}")


def _upgrade_server(major: str) -> None:
    _apt_install("--only-upgrade", f"postgresql-{major}", f"postgresql-client-{major}")


def _put_in_place(source: Path, target: Path, mode: int) -> None:
    """Copy `source` to `target` under a temporary name beside it, then rename it there: no
    file is ever half-written under its own name."""
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(handle)
    try:
        shutil.copyfile(source, partial)
        os.chmod(partial, mode)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def ensure_installed(bindir: Path, repo_root: Path) -> str | None:
    """Install the vendored build into the server of `bindir` when it is beside `repo_root`
    and not installed yet, or installed but not loadable (a server not upgraded: root only);
    what was done, or None when nothing was to do."""
    if os.geteuid() != 0 or (installed(bindir) and loadable(bindir)):
        return None
    major = server_major(bindir)
    vendor = find_vendor(repo_root, major)
    if vendor is None:
        return None
    libraries = sorted((vendor / "lib").glob("*.so"))
    done = []
    if missing_symbols(libraries, bindir / "postgres"):
        _upgrade_server(major)
        done.append(f"upgraded postgresql-{major} (the build needs a newer minor release)")
        still = missing_symbols(libraries, bindir / "postgres")
        if still:
            raise TimescaleInstallError(f"{vendor.name} needs server functions this PostgreSQL"
                                        f" does not have: {', '.join(sorted(still))}")
    lib_dir, extension_dir = pg_dirs(bindir)
    # the control file last, and gone meanwhile (an install that does not load is replaced):
    # until it is there, installed() is false and the next start copies again
    (extension_dir / "timescaledb.control").unlink(missing_ok=True)
    for source in libraries:
        _put_in_place(source, lib_dir / source.name, 0o755)
    for source in sorted((vendor / "extension").iterdir(),
                         key=lambda path: path.name == "timescaledb.control"):
        _put_in_place(source, extension_dir / source.name, 0o644)
    done.append(f"installed {vendor.name} from {vendor.parent}")
    return "; ".join(done)


def loadable(bindir: Path) -> bool:
    """Whether the installed extension can be preloaded by the server of `bindir`."""
    if not installed(bindir):
        return False
    lib_dir = pg_dirs(bindir)[0]
    return not missing_symbols(sorted(lib_dir.glob("timescaledb*.so")), bindir / "postgres")
