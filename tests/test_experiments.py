"""docs/: every figure is produced by a script in the repository, and every image link resolves."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT

FIGURES = sorted(p for p in (ROOT / "docs").rglob("*.png"))
SCRIPTS = sorted(p for folder in ("docs", "benchmarks") for p in (ROOT / folder).rglob("*.py"))
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]


def test_there_are_figures():
    assert {p.stem for p in FIGURES} >= {"reversibility", "gradient_check", "sine_tracking", "failure_modes"}


@pytest.mark.parametrize("figure", FIGURES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_figure_has_its_script(figure):
    """A script names the figure (figure_path("stem") or "stem.png") and lives in the same folder or benchmarks/."""
    writers = [s for s in SCRIPTS if s.parent in (figure.parent, ROOT / "benchmarks")
               and (f'figure_path("{figure.stem}")' in s.read_text(encoding="utf-8")
                    or f"{figure.stem}.png" in s.read_text(encoding="utf-8"))]
    assert writers, f"no script in the repository writes {figure.relative_to(ROOT)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_image_links_resolve(page):
    for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
        assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} shows missing {target}"
