"""The docs' pictures: the script builds them, and the committed SVGs are its output."""

from __future__ import annotations

import html
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from _draw_support import need_renderer

ROOT = Path(__file__).resolve().parents[1]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_pictures", ROOT / "scripts" / "make_pictures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = load_script()


def texts(svg: str) -> list[str]:
    """The words an SVG shows, in order (independent of the layout's coordinates)."""
    return [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def test_the_required_pictures_exist() -> None:
    for name in ("sigmoid", "sigmoid_backward", "shopping"):
        assert name in SCRIPT.PICTURES
    for name in SCRIPT.PICTURES:
        assert (ROOT / "docs" / "images" / f"{name}.svg").is_file(), name


def test_the_backward_picture_carries_the_seed_numbers() -> None:
    source = SCRIPT.PICTURES["sigmoid_backward"]().source
    for label in ("local -0.07233\\ngrad -0.217", "local 1\\ngrad -0.217",
                  "local 2.718\\ngrad -0.5898", "local -1\\ngrad 0.5898"):
        assert f'label="{label}"' in source


@pytest.mark.parametrize("name", sorted(SCRIPT.PICTURES))
def test_committed_pictures_are_up_to_date(name: str) -> None:
    need_renderer()
    fresh = SCRIPT.PICTURES[name]().svg()
    committed = (ROOT / "docs" / "images" / f"{name}.svg").read_text(encoding="utf-8")
    assert texts(committed) == texts(fresh), "run: python scripts/make_pictures.py"
