"""../shared is reached only through tests/shared_material.py, and is never needed at run time.

A plain clone has no ../shared beside it: a test that builds its own path there raises
FileNotFoundError instead of skipping with the reason (issue 12). The scan below finds such
paths in the source: a path climbing above the repository from `__file__` (`parents[3]` in
tests/x/test_y.py, `ROOT.parent`), and strings naming the material (`shared/data/...`).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import shared_material
from shared_material import ROOT, SHARED, absent, needs, require

HELPER = Path(shared_material.__file__).resolve()
# Names that hold the repository root by convention (ROOT = Path(__file__).resolve().parents[N]).
ROOT_NAMES = {"ROOT", "REPO", "REPOSITORY", "REPO_ROOT"}
MATERIAL = re.compile(r"(^|/)shared/(data|schemas|vendor)\b|\.\./shared|/work/shared")


def _levels_up(node: ast.AST, names: dict[str, int]) -> int | None:
    """How many folders above the source file `node` points (None: not a path from it)."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name) and func.id == "Path" and node.args:
            argument = node.args[0]
            return 0 if isinstance(argument, ast.Name) and argument.id == "__file__" else None
        if isinstance(func, ast.Attribute) and func.attr in ("resolve", "absolute"):
            return _levels_up(func.value, names)
        return None
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        below = _levels_up(node.value, names)
        return None if below is None else below + 1
    if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
            and node.value.attr == "parents" and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, int)):
        below = _levels_up(node.value.value, names)
        return None if below is None else below + node.slice.value + 1
    return None


def escapes(source: str, depth: int) -> list[str]:
    """What in `source` reaches ../shared on its own: a module `depth` folders below the
    repository root (tests/x/test_y.py: 3) climbing above it, or a string naming the material."""
    tree = ast.parse(source)
    names = {name: depth for name in ROOT_NAMES}
    for node in tree.body:  # module-level paths from __file__: HERE, ROOT, ...
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            levels = _levels_up(node.value, names)
            if levels is not None:
                names[node.targets[0].id] = levels
    docstrings = {id(node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if MATERIAL.search(node.value):
                found.append(f"line {node.lineno}: {node.value!r}")
        elif isinstance(node, (ast.Attribute, ast.Subscript)):
            levels = _levels_up(node, names)
            if levels is not None and levels > depth:
                found.append(f"line {node.lineno}: {ast.unparse(node)} leaves the repository")
    return found


def test_no_test_and_no_package_module_reaches_shared_material_on_its_own():
    sources = [path for folder in ("tests", "shared/kades", "functions")
               for path in sorted((ROOT / folder).rglob("*.py"))
               if path.resolve() not in (HELPER, Path(__file__).resolve())]
    assert len(sources) > 100
    problems = {}
    for path in sources:
        found = escapes(path.read_text(encoding="utf-8"), len(path.relative_to(ROOT).parts))
        if found:
            problems[str(path.relative_to(ROOT))] = found
    assert not problems, f"use tests/shared_material.py (DATA, SCHEMAS, require, needs): {problems}"


@pytest.mark.parametrize("source", [
    'DATA = Path(__file__).resolve().parents[3] / "shared/data/solana/rpc"',
    'from pathlib import Path\nX = Path(__file__).parents[3] / "x"',
    'REPO = Path(__file__).resolve().parents[2]\nSCHEMAS = REPO.parent / "shared" / "schemas"',
    'ROOT = Path(__file__).resolve().parents[2]\nDATA = ROOT.parent / "x"',
    'from shared_material import ROOT\nSCHEMAS = ROOT.parent / "x"',
    'HERE = Path(__file__).resolve().parent\nX = HERE.parent.parent.parent / "x"',
    'X = Path(__file__).parent.parent.parent.parent',
    'def f():\n    return open("../shared/data/x.csv")',
    'SPEC = "shared/schemas/cloudevents/cloudevents-v1.0.2.schema.json"',
])
def test_the_scan_finds_every_way_the_tests_used_to_reach_it(source):
    assert escapes(source, depth=3)


@pytest.mark.parametrize("source", [
    '"""The tapes in ../shared/data/market/pump_dump/."""\nfrom shared_material import DATA',
    'DATA = shared_material.DATA / "solana/rpc"',
    'ROOT = Path(__file__).resolve().parents[2]\nNOOP = ROOT / "tests/runtime/functions/noop/main.py"',
    'HERE = Path(__file__).resolve().parent\nsys.path.insert(0, str(HERE.parent))',
    'X = ROOT / "shared" / "pyproject.toml"  # the package folder of this repository',
])
def test_the_scan_leaves_paths_inside_the_repository_alone(source):
    assert escapes(source, depth=3) == []


MISSING = SHARED / "schemas" / "no-such-folder"


def test_an_absent_path_is_named_as_the_clone_sees_it_with_the_reason():
    assert absent(MISSING) == ("../shared/schemas/no-such-folder is not beside this clone (real material "
                               "handed to the team; a plain clone skips this test)")
    assert absent(ROOT) is None


def test_require_skips_outside_ci_and_fails_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not beside this clone"):
        require(MISSING)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must have it"):
        require(MISSING)
    assert require(ROOT) == ROOT


def test_the_mark_skips_outside_ci_only(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert needs(MISSING).args == (True,) and "not beside this clone" in needs(MISSING).kwargs["reason"]
    assert needs(ROOT).args == (False,)
    monkeypatch.setenv("CI", "true")
    assert needs(MISSING).args == (False,)
