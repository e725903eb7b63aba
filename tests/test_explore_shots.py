"""The explorer's screenshots in docs/images/: made by scripts/make_explorer_shots.py from the current page."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_explore_browser import SHOTS, need_browser

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"


SCRIPT = SHOTS  # scripts/make_explorer_shots.py, loaded once


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path.name} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_the_required_screenshots_are_made() -> None:
    assert set(SCRIPT.SHOTS) == {"explore_sigmoid.png", "explore_network.png", "explore_layer.png"}


@pytest.mark.parametrize("name", sorted(SCRIPT.SHOTS))
def test_each_screenshot_is_committed_at_its_viewports_size(name: str) -> None:
    path = IMAGES / name
    assert path.is_file(), "run: python scripts/make_explorer_shots.py"
    _, viewport = SCRIPT.SHOTS[name]
    assert png_size(path) == (viewport["width"], viewport["height"])
    assert path.stat().st_size > 20_000  # a drawn graph, not a blank page


def test_the_docs_show_every_screenshot() -> None:
    page = (ROOT / "docs" / "explore.md").read_text(encoding="utf-8")
    for name in SCRIPT.SHOTS:
        assert f"images/{name}" in page


def test_committed_screenshots_match_what_the_script_makes_now(tmp_path: Path) -> None:
    """Regenerated from the current page, each picture is the committed one up to font rendering noise."""
    need_browser()
    from PIL import Image, ImageChops

    SCRIPT.write_all(tmp_path)
    for name in SCRIPT.SHOTS:
        fresh = Image.open(tmp_path / name).convert("RGB")
        committed = Image.open(IMAGES / name).convert("RGB")
        assert fresh.size == committed.size, name
        diff = ImageChops.difference(fresh, committed).convert("L").point(lambda v: 255 if v > 48 else 0)
        changed = sum(diff.histogram()[255:]) / (fresh.width * fresh.height)
        assert changed < 0.01, f"{name}: {changed:.1%} of the pixels differ; run: python scripts/make_explorer_shots.py"
