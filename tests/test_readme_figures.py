"""The README's figures section is what benchmarks/figures.json renders, and nothing else."""

from __future__ import annotations

import json

import pytest

from benchmarks import readme_figures


def test_the_readme_section_is_what_the_figures_render():
    assert readme_figures.main(["--check"]) == 0


def test_a_figure_typed_into_the_readme_fails_the_check_and_rendering_restores_it(tmp_path):
    readme = tmp_path / "README.md"
    text = readme_figures.README.read_text()
    readme.write_text(text.replace("| 02 tiled | 8.0 |", "| 02 tiled | 9.0 |"))
    assert readme_figures.main(["--check", "--readme", str(readme)]) == 1
    assert readme_figures.main(["--readme", str(readme)]) == 0
    assert readme.read_text() == text  # and nothing outside the markers moved


def test_a_readme_without_its_markers_or_a_group_without_its_provenance_is_refused(tmp_path):
    with pytest.raises(ValueError, match="figures:start.*0 times"):
        readme_figures.splice("# a README\n", "section")
    figures = json.loads(readme_figures.FIGURES.read_text())
    del figures["groups"][0]["machine"]
    path = tmp_path / "figures.json"
    path.write_text(json.dumps(figures))
    with pytest.raises(ValueError, match="group 0 .*lacks machine"):
        readme_figures.load(path)
