"""The README's measured figures, rendered from benchmarks/figures.json (not a pytest module).

    python -m benchmarks.readme_figures            # rewrite README.md's generated section
    python -m benchmarks.readme_figures --check    # exit 1 if the section is not what renders
    python -m benchmarks.readme_figures --print    # the section on stdout, README.md untouched

The runs behind these figures are not in the repository (results/ is not committed), so
figures.json keeps each figure as its command printed it, in groups that name the command,
the machine, the date and the commit whose README first recorded them. To change a figure:
run its command, edit figures.json, run this script. The README's copy is never typed by hand,
and other files point to its section ("Measured figures") instead of repeating a number.

The section is everything between the lines START and END in README.md; nothing outside them
is touched. tests/test_readme_figures.py runs --check.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from harness.results.atomic import write_atomic
from harness.results.machine import ROOT

FIGURES = Path(__file__).resolve().with_name("figures.json")
README = ROOT / "README.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"
GROUP_KEYS = ("title", "command", "machine", "date", "runs", "recorded", "columns", "rows")
WIDTH = 95  # the README's prose is wrapped at about this width


def load(path: Path = FIGURES) -> list:
    """The groups of figures.json, each checked for the keys a group must have."""
    groups = json.loads(Path(path).read_text())["groups"]
    for number, group in enumerate(groups):
        missing = [key for key in GROUP_KEYS if key not in group]
        if missing:
            raise ValueError(
                f"{path}: group {number} ({group.get('title', 'no title')!r}) "
                f"lacks {', '.join(missing)}; a group has {', '.join(GROUP_KEYS)}"
            )
        for row in group["rows"]:
            if len(row) != len(group["columns"]):
                raise ValueError(
                    f"{path}: group {group['title']!r}: row {row} has {len(row)} "
                    f"cells, expected {len(group['columns'])} (its columns)"
                )
    return groups


def _table(columns: list, rows: list) -> list:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [
        line(columns),
        "| " + " | ".join("---" for _ in columns) + " |",
        *(line(row) for row in rows),
    ]


def _prose(text: str) -> str:
    return textwrap.fill(text, WIDTH, break_long_words=False, break_on_hyphens=False)


def render(groups: list) -> str:
    """The section between the markers, its heading included."""
    lines = [
        "## Measured figures",
        "",
        _prose(
            "Rendered by `python -m benchmarks.readme_figures` from `benchmarks/figures.json`, "
            "which keeps each figure as its command printed it (the raw runs are not committed); "
            "a test fails when this section and that file disagree."
        ),
    ]
    for group in groups:
        lines += [
            "",
            f"### {group['title']}",
            "",
            _prose(
                f"`{group['command']}` on {group['machine']}, {group['date']}: {group['runs']} "
                f"(first in the README at {group['recorded']})."
            ),
            "",
            *_table(group["columns"], group["rows"]),
        ]
        if group.get("notes"):
            lines += ["", _prose(group["notes"])]
    return "\n".join(lines)


def splice(readme: str, section: str) -> str:
    """The README with the text between its markers replaced by section."""
    for marker in (START, END):
        if readme.count(marker) != 1:
            raise ValueError(
                f"README.md has the line {marker!r} {readme.count(marker)} times, "
                "expected once: the generated section lies between "
                f"{START!r} and {END!r}"
            )
    head, rest = readme.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n{section}\n{END}{tail}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 when README.md's section is not what renders",
    )
    action.add_argument("--print", action="store_true", help="print the section, change nothing")
    parser.add_argument("--figures", default=str(FIGURES), help="the figures (JSON)")
    parser.add_argument("--readme", default=str(README), help="the README to render into")
    args = parser.parse_args(argv)
    section = render(load(Path(args.figures)))
    if args.print:
        print(section)
        return 0
    readme = Path(args.readme).read_text()
    wanted = splice(readme, section)
    if args.check:
        if wanted != readme:
            print(
                f"{args.readme}: its figures section is not what {args.figures} renders: "
                "run `python -m benchmarks.readme_figures`",
                file=sys.stderr,
            )
            return 1
        print(f"{args.readme}: the figures section matches {args.figures}")
        return 0
    if wanted != readme:
        write_atomic(args.readme, wanted)
    print(f"{args.readme}: figures section {'rewritten' if wanted != readme else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
