"""The tutorial's explorer pages: each worked example links to its page, and the pages are current."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import make_explorer_pages  # noqa: E402

TUTORIAL = ROOT / "docs" / "tutorial.md"


def test_each_backprop_section_links_its_page() -> None:
    text = TUTORIAL.read_text(encoding="utf-8")
    linked = re.findall(r"\]\(explore/(\w+)\.html\)", text)
    assert sorted(linked) == sorted(make_explorer_pages.EXAMPLES)
    for section in range(2, 8):  # the sections that backpropagate by hand
        body = re.split(r"^## ", text, flags=re.M)[section]
        assert "](explore/" in body, f"section {body.splitlines()[0]!r} has no explorer page"


@pytest.mark.parametrize("name", sorted(make_explorer_pages.EXAMPLES))
def test_committed_page_is_what_the_script_makes(name: str) -> None:
    committed = make_explorer_pages.PAGES / f"{name}.html"
    assert committed.exists(), "run: python scripts/make_explorer_pages.py"
    assert committed.read_text(encoding="utf-8") == make_explorer_pages.page(name), (
        f"{committed} is stale: run python scripts/make_explorer_pages.py")


def test_sigmoid_page_carries_the_seed_example_numbers() -> None:
    root, upstream = make_explorer_pages.sigmoid()
    root.backward(upstream)
    x = next(v for v in make_explorer_pages.mg.toposort(root) if v.label == "x")
    assert abs(x.grad - 0.5898358) < 1e-7
    steps = make_explorer_pages.mg.explore(root, upstream=upstream).steps()
    assert steps[-1].endswith("x.grad = 0.5898")
