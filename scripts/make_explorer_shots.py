"""Screenshots of the explorer for the docs: python scripts/make_explorer_shots.py [FOLDER].

Writes into docs/images/ (or FOLDER):

- explore_sigmoid.png: the sigmoid example (upstream 3) in the middle of the backward pass;
- explore_network.png: micrograd's demo network, collapsed to layers;
- explore_layer.png: the same with its first layer expanded.

Drives Debian's chromium (/usr/bin/chromium, or $CHROMIUM) with playwright's
Python package; it never downloads a browser (no ``playwright install``).
tests/test_explore_browser.py uses :func:`launch` and :func:`open_page` too.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import microgrannd as mg  # noqa: E402
from microgrannd.explore.examples import demo_network  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 720}
IMAGES = ROOT / "docs" / "images"
OPEN_TIMEOUT_MS = 120_000


@contextmanager
def launch() -> Iterator[Any]:
    """A headless chromium (the system's) driven by playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Any, path: Path, viewport: dict[str, int] = VIEWPORT) -> tuple[Any, float]:
    """Open the saved page ``path``; return the page once laid out, and the seconds that took."""
    page = browser.new_page(viewport=viewport)
    start = time.perf_counter()
    page.goto(path.resolve().as_uri())
    page.wait_for_function("document.body.dataset.ready === '1'", timeout=OPEN_TIMEOUT_MS)
    return page, time.perf_counter() - start


def sigmoid_example() -> mg.Value:
    """``x = Value(-1.0); y = x.sigmoid()``: the classic example."""
    x = mg.Value(-1.0, "x")
    return x.sigmoid()


SIGMOID_VIEWPORT = {"width": 1180, "height": 560}
NETWORK_VIEWPORT = {"width": 1280, "height": 900}


def shot_sigmoid(browser: Any, folder: Path, target: Path) -> None:
    """The sigmoid example with upstream 3, three steps into the backward pass."""
    page, _ = open_page(browser, mg.explore(sigmoid_example(), upstream=3).save(folder / "sigmoid.html"),
                        SIGMOID_VIEWPORT)
    for _ in range(8):  # 4 forward steps, the seed, 3 backward steps
        page.keyboard.press("ArrowRight")
    page.locator('[data-node-id^="o"]', has_text="exp").click()  # its record
    page.screenshot(path=str(target))
    page.close()


def _network_page(browser: Any, folder: Path) -> Any:
    y, params = demo_network()
    page, _ = open_page(browser, mg.explore(y, params=params).save(folder / "network.html"), NETWORK_VIEWPORT)
    page.keyboard.press("End")
    return page


def shot_network(browser: Any, folder: Path, target: Path) -> None:
    """micrograd's demo network as it opens (collapsed to layers), after the whole walk-through."""
    page = _network_page(browser, folder)
    page.screenshot(path=str(target))
    page.close()


def shot_layer(browser: Any, folder: Path, target: Path) -> None:
    """The demo network with its first layer expanded into neurons."""
    page = _network_page(browser, folder)
    page.locator("[data-call]").first.click()
    page.wait_for_function("document.querySelectorAll('[data-scope]').length === 2")
    page.keyboard.press("End")
    page.screenshot(path=str(target))
    page.close()


# name -> (the function that takes it, the viewport it is taken in: the picture's size)
SHOTS: dict[str, tuple[Callable[[Any, Path, Path], None], dict[str, int]]] = {
    "explore_sigmoid.png": (shot_sigmoid, SIGMOID_VIEWPORT),
    "explore_network.png": (shot_network, NETWORK_VIEWPORT),
    "explore_layer.png": (shot_layer, NETWORK_VIEWPORT),
}


def write_all(folder: Path = IMAGES) -> list[Path]:
    """Take every screenshot into ``folder``; return the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with launch() as browser, tempfile.TemporaryDirectory() as tmp:
        for name, (shoot, _) in SHOTS.items():
            shoot(browser, Path(tmp), folder / name)
            written.append(folder / name)
    return written


if __name__ == "__main__":
    for path in write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else IMAGES):
        print(f"wrote {path}")
