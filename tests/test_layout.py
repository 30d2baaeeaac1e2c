"""The repository's own rules that no tool checks for us."""
import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_test_module_names_are_unique():
    # tests/ has no __init__.py files, so pytest imports test modules by base name: two
    # files with one name in different folders would stop the whole run at collection.
    names = Counter(path.name for path in (ROOT / "tests").rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []


def test_every_function_folder_is_thin():
    for main in (ROOT / "functions").glob("*/main.py"):
        assert len(main.read_text().splitlines()) <= 40, f"{main} holds logic: move it to shared/kades"


def test_storage_does_not_depend_on_the_api():
    # the api sits on storage, not the other way round (kades.apikey serves both)
    for module in (ROOT / "shared" / "kades" / "storage").rglob("*.py"):
        assert "kades.api" not in module.read_text().replace("kades.apikey", ""), module


def _kades_imports(module: Path) -> set[str]:
    """The kades modules `module` imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.startswith("kades.")}


def test_the_simulators_import_each_other_without_a_cycle():
    package = ROOT / "shared" / "kades" / "simulate"
    graph = {f"kades.simulate.{path.stem}": {name for name in _kades_imports(path)
                                             if name.startswith("kades.simulate.")}
             for path in package.glob("*.py") if path.stem != "__init__"}
    order = []
    while graph:  # take off the modules that import nothing left; a cycle never empties
        free = sorted(name for name, deps in graph.items() if not deps & graph.keys())
        assert free, f"import cycle among {sorted(graph)}"
        order += free
        for name in free:
            del graph[name]
    assert order[-1] == "kades.simulate.cli"


def test_only_the_tooling_imports_the_simulators_and_the_dev_package():
    # both ship in the package but no function uses them: the CLI and kades.dev do
    package = ROOT / "shared" / "kades"
    for module in package.rglob("*.py"):
        if module.parent in (package / "simulate", package / "dev") or module == package / "cli.py":
            continue
        imported = _kades_imports(module)
        assert not any(name.startswith(("kades.simulate", "kades.dev")) for name in imported), module
    assert not list(package.glob("simulate*.py")) and not (package / "story.py").exists()
    assert not {"devservices.py", "localrun.py", "demo.py"} & {p.name for p in package.glob("*.py")}
