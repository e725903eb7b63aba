"""Measure the explorer's two layout options: python scripts/measure_explorer.py.

1. Graphviz in WebAssembly inlined in the page (what microgrannd.explore does):
   every collapse state is laid out in the browser.
2. Layout at save time with the renderer microgrannd finds (microgrannd.render,
   e.g. graphviz-pure): the page carries finished SVG, one per state, and no
   Graphviz; measured here for the opening state only (a page with an SVG
   and the data), plus the time to lay out one state in Python.

For the sigmoid example and micrograd's demo network, prints the file size
and the time chromium takes to open the page (until laid out), best of three.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

import make_explorer_shots as shots  # noqa: E402

import microgrannd as mg  # noqa: E402
from microgrannd.explore.examples import demo_network  # noqa: E402
from microgrannd.render import find_renderer, render_source  # noqa: E402

STATIC = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>static</title></head>
<body><div id="graph">{svg}</div><script type="application/json" id="mg-data">{data}</script>
<script>document.body.dataset.ready = "1";</script></body></html>"""


def best_open(browser: object, path: Path) -> float:
    times = []
    for _ in range(3):
        page, seconds = shots.open_page(browser, path)
        times.append(seconds)
        page.close()
    return min(times)


def main() -> None:
    y_net, params = demo_network()
    cases = {"sigmoid": mg.explore(shots.sigmoid_example(), upstream=3),
             "demo network": mg.explore(y_net, params=params)}
    renderer = find_renderer()
    print(f"renderer for option 2: {renderer}")
    with shots.launch() as browser, tempfile.TemporaryDirectory() as tmp:
        for name, e in cases.items():
            wasm = e.save(Path(tmp) / f"{name}-wasm.html")
            page, _ = shots.open_page(browser, wasm)
            dot = page.evaluate("microgrannd.dot(new Set(microgrannd.state()))")
            page.close()
            start = time.perf_counter()
            svg = render_source(dot, "svg").decode("utf-8")
            layout_seconds = time.perf_counter() - start
            data = e.html().split('id="mg-data">', 1)[1].split("</script>", 1)[0]
            static = Path(tmp) / f"{name}-static.html"
            static.write_text(STATIC.format(svg=svg[svg.index("<svg"):], data=data), encoding="utf-8")
            print(f"{name}: WebAssembly page {wasm.stat().st_size / 1e6:.2f} MB, opens in "
                  f"{best_open(browser, wasm):.2f} s; precomputed page (one state) "
                  f"{static.stat().st_size / 1e6:.2f} MB, opens in {best_open(browser, static):.2f} s, "
                  f"its layout took {layout_seconds:.2f} s in Python")


if __name__ == "__main__":
    main()
