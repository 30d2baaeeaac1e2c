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


def _imported_closure(modules: list[Path]) -> dict[str, Path]:
    """Every kades module `modules` import, directly or through each other (lazy imports
    included), with the file that first imports it."""
    def module_file(name: str) -> Path | None:
        base = ROOT.joinpath("shared", *name.split("."))
        return next((path for path in (base.with_suffix(".py"), base / "__init__.py")
                     if path.exists()), None)

    seen, todo = {}, list(modules)
    while todo:
        importer = todo.pop()
        for name in _kades_imports(importer):
            parts = name.split(".")  # a package's __init__ runs before its modules
            for prefix in (".".join(parts[:n]) for n in range(2, len(parts) + 1)):
                path = module_file(prefix)
                if path and prefix not in seen:
                    seen[prefix] = importer
                    todo.append(path)
    return seen


def test_the_functions_and_the_dead_letter_package_never_import_the_development_broker():
    # the dev broker is tooling Knative replaces on a cluster; the dead-letter function ships
    mains = sorted((ROOT / "functions").glob("*/main.py"))
    deadletter = sorted((ROOT / "shared" / "kades" / "deadletter").glob("*.py"))
    assert mains and deadletter
    imported = _imported_closure(mains + deadletter)
    assert "kades.deadletter.function" in imported and "kades.runtime" in imported
    leaks = {name: str(by.relative_to(ROOT)) for name, by in imported.items()
             if name == "kades.broker" or name.startswith("kades.broker.")}
    assert leaks == {}, f"imported (module: by): {leaks}"
