"""Dependencies are declared once and locked: the locks match their inputs, every function has
one, and shared/pyproject.toml declares exactly what the kades package imports."""
from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements"
INPUTS = sorted([REQUIREMENTS / "build.txt", REQUIREMENTS / "dev.txt",
                 REQUIREMENTS / "postgres-fallback.txt",
                 *(REQUIREMENTS / "functions").glob("*.txt")])


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a requirements file, following `-r`; comments and hash
    continuation lines dropped."""
    lines = []
    for line in path.read_text().splitlines():
        line = line.split(" #")[0].strip().rstrip("\\").strip()
        if not line or line.startswith(("#", "--hash")):
            continue
        if line.startswith("-r "):
            lines += requirement_lines(path.parent / line[3:].strip())
        else:
            lines.append(line)
    return lines


def pins(path: Path) -> dict[str, str]:
    """{canonical name: pinned version} of a requirements file or lock."""
    found = {}
    for line in requirement_lines(path):
        requirement = Requirement(line)
        (spec,) = requirement.specifier  # inputs and locks pin exactly: one `==`
        assert spec.operator == "==", f"{path.name}: {line} is not pinned with =="
        found[canonicalize_name(requirement.name)] = spec.version
    return found


@pytest.mark.parametrize("source", INPUTS, ids=lambda p: str(p.relative_to(REQUIREMENTS)))
def test_every_lock_pins_what_its_input_pins(source):
    lock = source.with_suffix(".lock")
    assert lock.is_file(), f"{lock} is missing: run `make lock`"
    locked = pins(lock)
    stale = {name: (version, locked.get(name)) for name, version in pins(source).items()
             if locked.get(name) != version}
    assert stale == {}, f"{lock.name} is stale (input, lock): {stale}; run `make lock`"


@pytest.mark.parametrize("source", INPUTS, ids=lambda p: str(p.relative_to(REQUIREMENTS)))
def test_every_locked_package_has_hashes(source):
    entries, current = {}, None
    for line in source.with_suffix(".lock").read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            current = entries.setdefault(line.split()[0], [])
        elif current is not None and "--hash=sha256:" in line:
            current.append(line)
    assert entries and [name for name, hashes in entries.items() if not hashes] == []


def test_every_function_folder_has_its_requirements_and_lock():
    for folder in sorted(p.parent for p in (ROOT / "functions").glob("*/main.py")):
        source = REQUIREMENTS / "functions" / f"{folder.name}.txt"
        assert source.is_file() and source.with_suffix(".lock").is_file(), folder.name


def test_setup_and_the_image_install_the_locks_with_hashes():
    assert "pip install --quiet --require-hashes -r requirements/dev.lock" in (
        ROOT / "Makefile").read_text()
    assert 'pip install --require-hashes -r "requirements/functions/${FUNCTION}.lock"' in (
        ROOT / "Dockerfile").read_text()


def third_party_imports(package: Path) -> set[str]:
    """Top-level names of the modules `package` imports that are neither stdlib nor its own."""
    names = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != package.name}


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "shared/pyproject.toml").read_text())["project"]
    return [Requirement(line) for line in project["dependencies"]]


def build_only() -> set[str]:
    """What building the package needs and running it does not: Cython, whose annotations
    kades.temporal.fused imports when it is there (shared/setup.py)."""
    build = tomllib.loads((ROOT / "shared/pyproject.toml").read_text())["build-system"]
    return {canonicalize_name(Requirement(line).name) for line in build["requires"]}


def test_pyproject_declares_exactly_what_the_package_imports():
    by_module = importlib.metadata.packages_distributions()
    imported = {canonicalize_name(by_module[name][0] if name in by_module else name)
                for name in third_party_imports(ROOT / "shared/kades")}
    names = {canonicalize_name(r.name) for r in declared()}
    assert (imported - names - build_only(), names - imported) == (set(), set()), \
        "(imported but not declared, declared but not imported)"
    assert "cython" in build_only() and "cython" not in names


def test_the_package_is_built_by_the_locked_build_tools():
    """What pyproject's [build-system] asks for is pinned in build.txt within its ranges, and
    both places that build the package take the tools from a lock, not from pip's isolated
    build environment (which would fetch them unhashed)."""
    build = tomllib.loads((ROOT / "shared/pyproject.toml").read_text())["build-system"]
    pinned = pins(REQUIREMENTS / "build.txt")
    for line in build["requires"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pinned and requirement.specifier.contains(pinned[name]), line
    assert "-r build.txt" in (REQUIREMENTS / "dev.txt").read_text()
    # each in this order: the tools are there before the build that does not fetch them
    for path, steps in [("Makefile", ["--require-hashes -r requirements/dev.lock",
                                      "--no-build-isolation -e shared"]),
                        ("Dockerfile", ["pip uninstall --yes wheel",
                                        "--require-hashes -r /src/requirements/build.lock",
                                        "pip wheel --no-deps --no-build-isolation"])]:
        text = (ROOT / path).read_text()
        assert all(step in text for step in steps), path
        assert sorted(steps, key=text.index) == steps, path


def test_the_runtime_pins_only_declared_packages_and_every_one():
    """Beside the declared packages, runtime.txt may pin the packages their extras pull in
    (redis[hiredis] brings hiredis), nothing else: an unused pin would only drift."""
    names, extras = set(), set()
    for requirement in declared():
        names.add(canonicalize_name(requirement.name))
        for line in importlib.metadata.requires(requirement.name) or []:
            extra = Requirement(line)
            if extra.marker and any(extra.marker.evaluate({"extra": e}) for e in requirement.extras):
                extras.add(canonicalize_name(extra.name))
    pinned = set(pins(REQUIREMENTS / "runtime.txt"))
    assert (pinned - names - extras, names - pinned) == (set(), set()), \
        "(pinned but not declared, declared but not pinned)"
