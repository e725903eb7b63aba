"""The docs' pictures: the script builds them, and the committed SVGs are its output."""

from __future__ import annotations

import html
import importlib.util
import re
import urllib.parse
from pathlib import Path
from types import ModuleType

import pytest
from _draw_support import need_renderer
from test_docs import PAGES, SCHEME, links

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"


def load_script(name: str = "make_pictures") -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = load_script()
PLOTS = load_script("make_plots")
SHOTS = load_script("make_explorer_shots")  # the explorer's screenshots (checked in tests/test_explore_shots.py)


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


def referenced_pictures() -> dict[str, list[str]]:
    """Every file under docs/images/ that README.md or a docs page shows or links: name -> where."""
    found: dict[str, list[str]] = {}
    for page in PAGES:
        for line, target in links(page.read_text(encoding="utf-8")):
            path_part = urllib.parse.unquote(target.partition("#")[0])
            if SCHEME.match(target) or not path_part:
                continue
            dest = (page.parent / path_part).resolve()
            if dest.is_relative_to(IMAGES.resolve()):
                where = f"{page.relative_to(ROOT).as_posix()}:{line}"
                found.setdefault(dest.relative_to(IMAGES.resolve()).as_posix(), []).append(where)
    return found


def test_every_picture_the_docs_show_is_generated_and_every_generated_one_is_shown(tmp_path: Path) -> None:
    need_renderer()
    generated = {p.relative_to(tmp_path).as_posix() for p in SCRIPT.write_all(tmp_path)}
    assert generated == {f"{name}.svg" for name in SCRIPT.PICTURES}
    for name, make in PLOTS.PLOTS.items():  # the plots, from a short run of their demos
        assert make(tmp_path / name, demo_args=["--steps", "20"]).is_file()
        generated.add(name)
    generated |= set(SHOTS.SHOTS)
    referenced = referenced_pictures()
    not_generated = {name: where for name, where in referenced.items() if name not in generated}
    assert not not_generated, f"pictures the docs show that scripts/make_pictures.py does not make: {not_generated}"
    unused = sorted(generated - set(referenced))
    assert not unused, f"pictures no page shows (use them or drop them from the script): {unused}"
    committed = {p.relative_to(IMAGES).as_posix() for p in IMAGES.rglob("*.svg")} | {  # --png copies aside
        p.relative_to(IMAGES).as_posix() for p in IMAGES.glob("*.png") if p.name in PLOTS.PLOTS or p.name in SHOTS.SHOTS
    }
    assert committed == generated, "docs/images/ holds exactly the scripts' pictures: run scripts/make_pictures.py"


def test_the_picture_check_sees_the_docs_pictures() -> None:
    referenced = referenced_pictures()
    assert {"sigmoid.svg", "sigmoid_backward.svg", "shopping.svg"} <= set(referenced)
    assert any(where.startswith("README.md:") for where in referenced["sigmoid.svg"])
