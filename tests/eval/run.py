"""`make eval`: every quality report, one section per capability (tests/eval/eval_*.py).

Each section module has `main() -> int`; it prints precision, recall and whatever else its
capability is judged by, on seeded simulator data and on the real data in ../shared/data.
A clone without ../shared beside it runs every section on the simulated data; each section
says which real corpus it left out.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: shared_material

from shared_material import DATA, absent  # noqa: E402


def main() -> int:
    sys.path.insert(0, str(HERE))
    reason = absent(DATA, plain_clone="runs each section without its real corpus")
    if reason:
        print(reason, flush=True)
    failures = 0
    for path in sorted(HERE.glob("eval_*.py")):
        print(f"\n=== {path.stem[5:]} ===", flush=True)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        failures += int(module.main() or 0) != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
