"""The repository's own rules that no tool checks for us."""
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
