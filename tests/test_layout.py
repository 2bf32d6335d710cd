"""The README's layout section lists every module of the harness with its one job."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def layout_section() -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(r"^## Layout\n(.*?)(?=^## )", text, re.M | re.S)
    assert found, "README.md has no '## Layout' section"
    return found.group(1)


def listed() -> set:
    """The module paths the section names at the start of a line, each followed by its job."""
    return {
        m.group(1) for m in re.finditer(r"^\s*(harness/[\w/]+\.py)\s+\S", layout_section(), re.M)
    }


def test_every_harness_module_is_in_the_readme_layout_with_its_job():
    modules = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "harness").rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    }
    assert not sorted(modules - listed()), "missing from README.md's layout section"
    assert not sorted(listed() - modules), "listed in README.md's layout but not in harness/"
