"""The line budget: the harness stays small enough to read in one sitting (tinygrad's rule).

Counts non-blank, non-comment lines of harness/*.py and fails past the budget, printing the
biggest files, so growth is a decision and not an accident. Run by `tox -e lint` and a test.
"""

from __future__ import annotations

import sys
from pathlib import Path

BUDGET = 5000  # lines of code in harness/, docstrings included
ROOT = Path(__file__).resolve().parent.parent


def count(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines()
               if line.strip() and not line.strip().startswith("#"))


def main() -> int:
    sizes = sorted(((count(p), p.relative_to(ROOT)) for p in (ROOT / "harness").rglob("*.py")),
                   reverse=True)
    total = sum(n for n, _ in sizes)
    print(f"harness/: {total} lines of code (budget {BUDGET})")
    for n, path in sizes[:5]:
        print(f"  {n:5d} {path}")
    return 0 if total <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
