"""The explorer's page in a real browser: Debian's chromium driven by playwright (never ``playwright install``).

Without chromium or playwright these tests skip, except in CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import microgrannd as mg
from microgrannd.explore.examples import demo_network
from microgrannd.explore.steps import MAX_DRAWN, drawn_count, final_grads, fmt, walkthrough

ROOT = Path(__file__).resolve().parents[1]
ALLOWED_SCHEMES = ("file:", "data:", "blob:")


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_explorer_shots", ROOT / "scripts" / "make_explorer_shots.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SHOTS = load_script()


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def need_browser() -> None:
    """Skip without chromium or playwright, but fail in CI."""
    missing = []
    if not (os.path.isfile(SHOTS.CHROMIUM) or shutil.which(SHOTS.CHROMIUM)):
        missing.append(f"chromium ({SHOTS.CHROMIUM}; apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing.append('playwright (pip install ".[browser]")')
    if missing:
        message = "the explorer's browser tests need " + " and ".join(missing)
        if in_ci():
            pytest.fail("CI must install " + message.split(" need ")[1])
        pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need_browser()
    with SHOTS.launch() as b:
        yield b


class Watched:
    """A page with every request, console error and page error recorded."""

    def __init__(self, browser: Any, path: Path, viewport: dict[str, int] | None = None) -> None:
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page = browser.new_page(viewport=viewport or SHOTS.VIEWPORT)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}")
                     if m.type in ("error", "assert") else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        import time

        start = time.perf_counter()
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_function("document.body.dataset.ready === '1'", timeout=SHOTS.OPEN_TIMEOUT_MS)
        self.seconds = time.perf_counter() - start

    def check_clean(self) -> None:
        assert not self.errors, self.errors
        assert self.requests, "the page's own load is a request"
        offending = [u[:120] for u in self.requests if not u.startswith(ALLOWED_SCHEMES)]
        assert not offending, f"network requests: {offending}"

    def step_text(self) -> str:
        return str(self.page.inner_text('[data-role="step"] [data-role="step-text"]'))

    def texts(self, node_id: str) -> list[str]:
        """The lines of text a drawn node shows."""
        return list(self.page.evaluate(
            "(id) => [...document.querySelector(`[data-node-id=\"${id}\"]`).querySelectorAll('text')]"
            ".map((t) => t.textContent)", node_id))

    def count(self, selector: str) -> int:
        return int(self.page.locator(selector).count())

    def close(self) -> None:
        self.check_clean()
        self.page.close()


def sigmoid_page(tmp_path: Path, browser: Any) -> tuple[Watched, mg.Value, Any]:
    x = mg.Value(-1.0, "x")
    e = mg.explore(x.sigmoid(), upstream=3)
    return Watched(browser, e.save(tmp_path / "sigmoid.html")), x, e


def test_sigmoid_keys_step_through_the_chain_rule(tmp_path: Path, browser: Any) -> None:
    w, x, e = sigmoid_page(tmp_path, browser)
    page = w.page
    expected = e.steps()
    assert page.inner_text('[data-role="counter"]') == f"0 / {len(expected)}"
    seen = []
    for k, line in enumerate(expected, start=1):
        page.keyboard.press("ArrowRight")
        assert page.inner_text('[data-role="counter"]') == f"{k} / {len(expected)}"
        seen.append(w.step_text())
        assert seen[-1] == line  # the page and `microgrannd step` print the same line
    panel = "\n".join(seen)
    for number in ("-0.07233", "-0.217", "2.718", "-0.5898"):
        assert number in panel
    s = 1.0 / (1.0 + math.e)
    assert seen[-1].endswith(f"x.grad = {fmt(3 * s * (1 - s))}")
    ix = next(n.index for n in e.graph.nodes if n.value is x)
    assert w.texts(f"v{ix}") == ["x", "data -1", "grad 0.5898"]
    page.keyboard.press("ArrowRight")  # past the end: stays
    assert page.inner_text('[data-role="counter"]') == f"{len(expected)} / {len(expected)}"
    page.keyboard.press("ArrowLeft")
    assert w.step_text() == expected[-2]
    page.keyboard.press("Home")
    assert page.inner_text('[data-role="counter"]').startswith("0 /")
    assert w.texts(f"v{ix}") == ["x", "data -1", "grad ?"]  # nothing computed yet
    page.keyboard.press("End")
    assert w.step_text() == expected[-1]
    # the slider moves with the steps and moves them
    assert page.input_value('[data-role="slider"]') == str(len(expected))
    page.fill('[data-role="slider"]', "3")
    assert page.inner_text('[data-role="counter"]') == f"3 / {len(expected)}"
    # space plays and pauses
    page.keyboard.press(" ")
    page.wait_for_function("Number(document.body.dataset.pos) >= 5", timeout=10_000)
    page.keyboard.press(" ")
    assert page.evaluate("document.body.dataset.playing") == ""
    w.close()


def test_clicking_a_node_shows_its_record_in_full_precision(tmp_path: Path, browser: Any) -> None:
    w, x, e = sigmoid_page(tmp_path, browser)
    g = e.graph
    ix = next(n.index for n in g.nodes if n.value is x)
    w.page.click(f'[data-node-id="v{ix}"]')
    record = w.page.inner_text('[data-role="record"]')
    assert repr(g.nodes[ix].grad) in record and "0.5898357997" in record
    recip = next(n for n in g.nodes if n.value.op == "reciprocal")
    w.page.click(f'[data-node-id="o{recip.index}"]')
    record = w.page.inner_text('[data-role="record"]')
    assert repr(recip.locals[0]) in record and "reciprocal" in record and "sigmoid" in record
    w.close()


def test_collapse_and_expand_the_sigmoid_cluster(tmp_path: Path, browser: Any) -> None:
    w, _, _ = sigmoid_page(tmp_path, browser)
    page = w.page
    expanded = w.count("[data-node-id]")
    assert w.count("[data-scope]") == 1 and w.count("[data-call]") == 0
    page.click('[data-scope] > text')  # the cluster's label collapses it
    page.wait_for_function("document.querySelectorAll('[data-call]').length === 1")
    collapsed = w.count("[data-node-id]")
    # x, the box, the output, the upstream note: sigmoid's four ops, three inner values and two constants are gone
    assert collapsed == expanded - 4 - 3 - 2 + 1
    assert w.count("[data-scope]") == 0
    page.keyboard.press("End")
    assert w.step_text() == "backward 1/1: sigmoid[0] -> x: upstream 3 × local 0.1966 = 0.5898; x.grad = 0.5898"
    page.click("[data-call]")  # a collapsed call expands when clicked
    page.wait_for_function("document.querySelectorAll('[data-scope]').length === 1")
    assert w.count("[data-node-id]") == expanded
    w.close()


def test_the_pages_arithmetic_is_pythons_in_every_state(tmp_path: Path, browser: Any) -> None:
    y, params = demo_network(sizes=(2, 3, 2, 1), seed=3)
    a = mg.Value(0.7, "a")
    y = (y - a) / (a * a + 1.0) + mg.sigmoid(y * a)
    e = mg.explore(y, upstream=-1.5, params=params, collapse=False)
    g = e.graph
    w = Watched(browser, e.save(tmp_path / "net.html"))
    scopes = [s.index for s in g.scopes]
    layers = [s.index for s in g.scopes if s.name == "Layer"]
    for state in ([], scopes, layers, [layers[0]], [s for s in scopes if g.scopes[s].name != "Layer"]):
        w.page.evaluate("(s) => microgrannd.setState(s)", state)
        assert w.page.evaluate("microgrannd.state()") == sorted(state)
        lines = w.page.evaluate("microgrannd.steps()")
        assert lines == [s.text(g) for s in walkthrough(g, set(state))], state
        page_grads = {int(k): v for k, v in w.page.evaluate("microgrannd.grads()").items()}
        assert page_grads == final_grads(g, set(state))  # the same floats, added in the same order
    # fully expanded, they are the floats backward computes
    for v in mg.toposort(y):
        v.grad = 0.0
    y.backward(-1.5)
    w.page.evaluate("microgrannd.setState([])")
    page_grads = {int(k): v for k, v in w.page.evaluate("microgrannd.grads()").items()}
    for n in g.nodes:
        if n.kind != "constant":
            assert page_grads.get(n.index, 0.0) == n.value.grad, n.name
    w.close()


NUMBERS = [0.0, -0.0, 1.0, 3.0, -0.07232948812851325, 2.718281828459045, 0.5898357997244454, 1e-05, 0.0001,
           12345.678, 9999.5, 99995.0, 2.0625, 2.0635, 0.00012345, -1.5e-300, 1.7976931348623157e308, 5e-324,
           123.45, 1234.5, 0.1 + 0.2, math.inf, -math.inf, math.nan, 1 / 3, 2 / 3, 100.0, 1e16]


def test_the_page_formats_numbers_as_python(tmp_path: Path, browser: Any) -> None:
    w, _, _ = sigmoid_page(tmp_path, browser)
    got = w.page.evaluate("(xs) => xs.map((x) => microgrannd.fmt(x === null ? NaN : x))",
                          [x if not math.isnan(x) else None for x in NUMBERS])
    assert got == [fmt(x) for x in NUMBERS]
    w.close()


def test_the_demo_network_opens_collapsed_to_layers_and_expands(tmp_path: Path, browser: Any) -> None:
    y, params = demo_network()
    e = mg.explore(y, params=params)
    path = e.save(tmp_path / "network.html")
    w = Watched(browser, path)
    print(f"\ndemo network page: {path.stat().st_size / 1e6:.2f} MB, {len(e.graph.nodes)} nodes, "
          f"opened and laid out in {w.seconds:.2f} s (in the page: {w.page.evaluate('window.mgTimings')})")
    assert w.seconds < 60
    page = w.page
    names = page.evaluate("[...document.querySelectorAll('[data-scope]')].map((g) => g.dataset.scopeName)")
    assert names == ["MLP"]
    assert w.count("[data-call]") == 3  # three layers
    before = w.count("[data-node-id]")
    page.click("[data-call]")  # the first layer
    page.wait_for_function("document.querySelectorAll('[data-scope]').length === 2")
    assert w.count("[data-call]") == 16 + 2  # its sixteen neurons, the other two layers
    after = w.count("[data-node-id]")
    assert after == before - 1 + 16
    page.click("[data-call]")  # a neuron
    page.wait_for_function("document.querySelectorAll('[data-scope]').length === 3")
    ops = page.evaluate("[...document.querySelectorAll('[data-node-id^=\"o\"]')].map((g) => g.textContent.trim())")
    assert ops.count("×") == 2 and "relu" in ops  # w0·x0, w1·x1, then the bias and relu
    state = set(page.evaluate("microgrannd.state()"))
    assert w.count("[data-node-id]") == drawn_count(e.graph, state) + 1  # and the upstream note
    page.keyboard.press("End")
    assert w.step_text().startswith("backward ")
    w.close()


def test_the_page_refuses_a_state_too_large_to_draw(tmp_path: Path, browser: Any) -> None:
    y, params = demo_network(sizes=(2, 32, 32, 1))
    e = mg.explore(y, params=params)
    assert drawn_count(e.graph, set()) > MAX_DRAWN >= drawn_count(e.graph, e.collapsed)
    w = Watched(browser, e.save(tmp_path / "wide.html"))
    before = w.page.evaluate("microgrannd.state()")
    w.page.evaluate("microgrannd.setState([])")
    assert w.page.evaluate("microgrannd.state()") == before
    assert f"more than the page lays out ({MAX_DRAWN})" in w.page.inner_text('[data-role="message"]')
    w.close()


def test_the_sigmoid_page_opens_quickly_enough(tmp_path: Path, browser: Any) -> None:
    w, _, _ = sigmoid_page(tmp_path, browser)
    size = (tmp_path / "sigmoid.html").stat().st_size
    print(f"\nsigmoid page: {size / 1e6:.2f} MB, opened and laid out in {w.seconds:.2f} s "
          f"(in the page: {w.page.evaluate('window.mgTimings')})")
    assert w.seconds < 30
    w.close()


def odd_graphs() -> dict[str, mg.Value]:
    x = mg.Value(1.5, "x")
    a, b = mg.Value(0.5, "a"), mg.Value(2.0, "b")

    @mg.composite
    def two(u: mg.Value, v: mg.Value) -> tuple[mg.Value, mg.Value]:
        return u * v, u + v

    p, q = two(a, b)
    return {
        "a leaf": mg.Value(2.0, "x"),
        "constants only": mg.Value(2.0, requires_grad=False) * 3.0,
        "a parent used twice, a folded exponent, a power": x * x ** 3.0 + 2 ** x,
        "a call with two outputs": p * q + p,
    }


def test_odd_graphs_step_as_in_python_collapsed_or_not(tmp_path: Path, browser: Any) -> None:
    for k, (name, y) in enumerate(odd_graphs().items()):
        e = mg.explore(y, collapse=True)
        w = Watched(browser, e.save(tmp_path / f"odd{k}.html"))
        for state in (sorted(e.collapsed), []):
            w.page.evaluate("(s) => microgrannd.setState(s)", state)
            assert w.page.evaluate("microgrannd.steps()") == [s.text(e.graph) for s in walkthrough(e.graph, set(state))]
            w.page.keyboard.press("End")
            total = len(walkthrough(e.graph, set(state)))
            assert w.page.inner_text('[data-role="counter"]') == f"{total} / {total}"
        assert w.count("[data-node-id]") >= 2, name
        w.close()


def test_the_notebook_output_runs_in_its_iframe(tmp_path: Path, browser: Any) -> None:
    """What Jupyter (Lab, classic, VS Code) shows: `_repr_html_` inside a host page, the page in a sandboxed iframe."""
    x = mg.Value(-1.0, "x")
    e = mg.explore(x.sigmoid(), upstream=3)
    host = tmp_path / "notebook.html"
    host.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><h1>Out[1]:</h1>'
                    f"{e._repr_html_()}</body></html>", encoding="utf-8")  # notebooks are UTF-8 pages
    page = browser.new_page(viewport=SHOTS.VIEWPORT)
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "assert") else None)
    page.on("pageerror", lambda err: errors.append(str(err)))
    try:
        page.goto(host.resolve().as_uri())
        frame = page.frames[1]  # the explorer, in the iframe's own document
        frame.wait_for_function("document.body.dataset.ready === '1'", timeout=SHOTS.OPEN_TIMEOUT_MS)
        assert frame.locator("[data-node-id]").count() > 0
        page.locator("iframe").click(position={"x": 5, "y": 5})  # focus, as a reader's click would
        for _ in e.steps():
            frame.press("body", "ArrowRight")
        assert frame.inner_text('[data-role="step"] [data-role="step-text"]') == e.steps()[-1]
        assert e.steps()[-1].endswith("x.grad = 0.5898")
        assert not errors, errors
        offending = [u[:120] for u in requests if not u.startswith((*ALLOWED_SCHEMES, "about:"))]
        assert not offending, f"network requests: {offending}"
    finally:
        page.close()
