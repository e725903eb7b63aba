"""mg.explore without a browser: the steps, their numbers against backward, collapse, size limits, the page."""

from __future__ import annotations

import html
import json
import math
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

import microgrannd as mg
from microgrannd.draw import GraphTooLargeError
from microgrannd.explore import Explorer, explore
from microgrannd.explore.examples import demo_network
from microgrannd.explore.steps import (
    AUTO_STEPS,
    MAX_DRAWN,
    build,
    drawn_count,
    final_grads,
    fmt,
    units,
    walkthrough,
)
from microgrannd.walk import count_nodes

ROOT = Path(__file__).resolve().parents[1]


def sigmoid_example() -> tuple[mg.Value, mg.Value]:
    x = mg.Value(-1.0, "x")
    return x, x.sigmoid()


def backward_grads(y: mg.Value, upstream: float) -> dict[mg.Value, float]:
    """Every node's grad field after backward(upstream), from fields reset to zero."""
    for v in mg.toposort(y):
        v.grad = 0.0
    y.backward(upstream)
    return {v: v.grad for v in mg.toposort(y)}


# --- the sigmoid example


def test_sigmoid_walkthrough_states_the_chain_rule_with_the_classic_numbers() -> None:
    x, y = sigmoid_example()
    g = build(y, 3.0)
    lines = [s.text(g) for s in walkthrough(g, set())]
    e = math.e
    s = 1.0 / (1.0 + e)  # sigmoid(-1)
    assert [line.split(":")[0] for line in lines] == [
        "forward 1/4", "forward 2/4", "forward 3/4", "forward 4/4", "seed",
        "backward 1/4", "backward 2/4", "backward 3/4", "backward 4/4",
    ]
    assert lines[3].endswith(f"= {fmt(s)}")
    # reciprocal's local derivative -1/(1+e)^2, then 3 times it, then through exp (local e), then mul by -1
    recip_local = -1.0 / (1.0 + e) ** 2
    assert fmt(recip_local) == "-0.07233" and fmt(3 * recip_local) == "-0.217"
    assert f"upstream 3 × local {fmt(recip_local)} = {fmt(3 * recip_local)}" in lines[5]
    assert f"local {fmt(e)} = {fmt(3 * recip_local * e)}" in lines[7] and "2.718" in lines[7] and "-0.5898" in lines[7]
    assert lines[8].endswith("x.grad = 0.5898")
    grads = final_grads(g, set())
    assert grads[g.nodes.index(next(n for n in g.nodes if n.value is x))] == pytest.approx(3 * s * (1 - s), rel=1e-12)


def test_final_grads_are_the_floats_backward_computes() -> None:
    x, y = sigmoid_example()
    g = build(y, 3.0)
    expected = backward_grads(y, 3.0)
    got = final_grads(g, set())
    for n in g.nodes:
        if not n.constant:
            assert got.get(n.index, 0.0) == expected[n.value], n.name  # the same float, not approximately
    assert got[[n.value for n in g.nodes].index(x)] == x.grad


def test_fan_in_sums_in_backwards_order_to_the_same_floats() -> None:
    a, b = mg.Value(0.3, "a"), mg.Value(-1.7, "b")
    c = a * b
    y = (c * a + mg.tanh(c) * b + a / b - (a ** 3.0) * c + mg.exp(b) * c).sigmoid() * a
    expected = backward_grads(y, -2.5)
    g = build(y, -2.5)
    got = final_grads(g, set())
    for n in g.nodes:
        if not n.constant:
            assert got.get(n.index, 0.0) == expected[n.value], n.name
    # a node read several times shows its running sum: grad = c1 + c2 + ... = total
    sums = [s.text(g) for s in walkthrough(g, set()) if s.kind == "backward" and len(s.running) > 2]
    assert sums and all(re.search(r"\.grad = (\S+ \+ )+\S+ = \S+$", line) for line in sums)


def test_collapsed_sigmoid_is_one_unit_with_its_composite_derivative() -> None:
    _, y = sigmoid_example()
    g = build(y, 3.0)
    steps = walkthrough(g, {0})
    assert [s.kind for s in steps] == ["forward", "seed", "backward"]
    s = 1.0 / (1.0 + math.e)
    back = steps[-1]
    assert back.local == [pytest.approx(s * (1 - s), rel=1e-12)]  # d sigmoid / dx from the call's own nodes
    assert back.contribution == pytest.approx(3 * s * (1 - s), rel=1e-12)
    assert back.text(g).startswith("backward 1/1: sigmoid[0] -> x: upstream 3 × local 0.1966 = 0.5898")


@pytest.mark.parametrize("make", [
    lambda a, b: a - b,
    lambda a, b: a / b,
    lambda a, b: a ** b,
    lambda a, b: mg.composite("mine")(lambda u, v: u * v + u)(a, b),
])
def test_every_composite_collapses_and_its_flows_add_up(make: object) -> None:
    a, b = mg.Value(1.3, "a"), mg.Value(0.7, "b")
    y = make(a, b) * a  # type: ignore[operator]
    g = build(y, 1.0)
    assert g.scopes, "the composite is recorded as a scope"
    expected = backward_grads(y, 1.0)
    got = final_grads(g, {s.index for s in g.scopes})
    for n in g.nodes:
        if not n.constant and n.index in got:
            assert got[n.index] == pytest.approx(expected[n.value], rel=1e-12, abs=1e-15)
    for s in g.scopes:
        assert s.inputs and s.outputs and len(s.locals) == len(s.outputs)


def test_expanded_order_is_the_reverse_topological_order() -> None:
    _, y = sigmoid_example()
    g = build(y)
    assert [u.node for u in units(g, set())] == [n.index for n in reversed(g.nodes) if n.value.parents]


# --- collapse: automatic and chosen


def test_the_demo_network_opens_collapsed_to_layers_and_layers_expand_to_neurons() -> None:
    y, params = demo_network()
    assert 900 <= count_nodes(y, 10_000) <= 1100  # micrograd's demo network on one input
    e = explore(y, params=params)
    g = e.graph
    names = {s.index: s.name for s in g.scopes}
    assert {names[k] for k in e.collapsed} == {"Layer", "Neuron"}
    assert all(names[k] != "MLP" for k in e.collapsed)
    assert len(e.steps()) <= AUTO_STEPS
    one_layer = next(s.index for s in g.scopes if s.name == "Layer")
    expanded_layer = walkthrough(g, e.collapsed - {one_layer})
    assert len(expanded_layer) > len(e.steps())
    assert any(s.unit is not None and s.unit.scope >= 0 and g.scopes[s.unit.scope].name == "Neuron"
               for s in expanded_layer)
    neuron = next(s.index for s in g.scopes if s.name == "Neuron" and s.parent == one_layer)
    products = walkthrough(g, e.collapsed - {one_layer, neuron})
    assert any(s.kind == "forward" and s.unit is not None and s.unit.node >= 0
               and g.nodes[s.unit.node].value.op == "mul" for s in products), "an expanded neuron steps through w * x"
    # the weights sit inside their neuron: a collapsed neuron reads only the network's inputs
    assert {g.nodes[i].name for i in g.scopes[neuron].inputs} == {"x0", "x1"}
    assert sum(g.nodes[m].kind == "parameter" for m in g.scopes[neuron].members) == 3  # w0, w1, b


def test_auto_collapse_expands_small_graphs_fully() -> None:
    _, y = sigmoid_example()
    assert explore(y).collapsed == set()


def test_collapse_true_false_names() -> None:
    a = mg.Value(0.5, "a")
    y = mg.sigmoid(a) - a / 2.0 * mg.sigmoid(a)
    g = explore(y).graph
    by_name = {}
    for s in g.scopes:
        by_name.setdefault(s.name, set()).add(s.index)
    assert explore(y, collapse=True).collapsed == {s.index for s in g.scopes}
    assert explore(y, collapse=False).collapsed == set()
    assert explore(y, collapse="sigmoid").collapsed == by_name["sigmoid"]
    assert explore(y, collapse=["sigmoid", "sub"]).collapsed == by_name["sigmoid"] | by_name["sub"]
    with pytest.raises(TypeError):
        explore(y, collapse=[1])  # type: ignore[list-item]


def test_a_call_whose_output_flows_back_into_it_stays_expanded() -> None:
    from microgrannd.modes import _changed

    a, b = mg.Value(0.5, "a"), mg.Value(2.0, "b")
    with mg.scope("loop") as s:
        u = a * b
    v = u * 3.0  # outside the call, then back into it
    with _changed(scope=s):
        z = v * u
    with mg.scope("fine"):
        y = z + 1.0
    g = build(y)
    loop = next(k.index for k in g.scopes if k.name == "loop")
    with pytest.raises(ValueError, match="feed each other"):
        walkthrough(g, {loop})
    e = explore(y, collapse=True)
    assert {g.scopes[k].name for k in e.collapsed} == {"fine"}
    assert e.steps()[-1].endswith(f"b.grad = {fmt(6.0 * a.data * a.data * b.data)}")  # d(3 (ab)^2)/db


# --- size limits


def test_a_65000_node_graph_is_refused_at_once_with_advice() -> None:
    x = mg.Value(1.0, "x")
    terms = [x * float(i) for i in range(1, 21_700)]  # 3 nodes each
    y = terms[0]
    for t in terms[1:]:
        y = y + t
    assert count_nodes(y, 70_000) > 65_000
    start = time.perf_counter()
    with pytest.raises(GraphTooLargeError) as err:
        explore(y)
    assert time.perf_counter() - start < 1.0
    text = str(err.value)
    assert "max_nodes" in text and "explore a part" in text


def test_a_million_node_chain_is_refused_within_a_second() -> None:
    with mg.gc_paused():
        y = mg.Value(0.0, "x")
        for _ in range(1_000_000):
            y = y + 1.0
    start = time.perf_counter()
    with pytest.raises(GraphTooLargeError) as err:
        explore(y, max_nodes=10_000)
    assert time.perf_counter() - start < 1.0
    assert err.value.max_nodes == 10_000 and err.value.count == 10_001


def test_an_opening_state_too_large_to_draw_is_refused() -> None:
    x = mg.Value(1.0, "x")
    y = x
    for _ in range(700):  # no composites: nothing to collapse
        y = y * 1.0001 + x
    g = build(y)
    assert len(g.nodes) < 5000 and drawn_count(g, set()) > MAX_DRAWN
    with pytest.raises(GraphTooLargeError) as err:
        explore(y)
    assert "mg.composite" in str(err.value) and err.value.max_nodes == MAX_DRAWN


def test_drawn_count_counts_values_ops_and_collapsed_calls() -> None:
    _, y = sigmoid_example()
    g = build(y)
    assert drawn_count(g, set()) == 7 + 4  # x, -1, 1 and four values; four ops
    assert drawn_count(g, {0}) == 3  # x, the call, its output


def test_bad_arguments_are_refused() -> None:
    _, y = sigmoid_example()
    with pytest.raises(TypeError):
        explore(1.0)  # type: ignore[arg-type]
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError):
            explore(y, max_nodes=bad)  # type: ignore[arg-type]
    for up in (math.inf, math.nan, "3"):
        with pytest.raises(ValueError):
            explore(y, upstream=up)  # type: ignore[arg-type]


# --- the page


def page_data(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="mg-data">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1), parse_constant=lambda c: pytest.fail(f"bare {c} in the page's JSON"))


def test_the_page_is_one_self_contained_file(tmp_path: Path) -> None:
    _, y = sigmoid_example()
    e = explore(y, upstream=3)
    path = e.save(tmp_path / "graph.html")
    page = path.read_text(encoding="utf-8")
    assert page == e.html()
    assert page.count("</script>") == 3  # Graphviz, the data, the page's script: each closes once
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=", page, re.I)
    assert "@import" not in page and "url(" not in page.split("<script>")[0]
    assert "Viz.js 3.31.0" in page  # the vendored Graphviz, with its notice
    data = page_data(page)
    assert data["upstream"] == 3 and len(data["nodes"]) == len(e.graph.nodes)
    assert [n["grad"] for n in data["nodes"]] == [n.grad for n in e.graph.nodes]  # floats survive JSON exactly


def test_non_finite_numbers_travel_as_strings() -> None:
    x = mg.Value(800.0, "x")
    y = mg.exp(x) * 0.0 + mg.log(x)
    data = page_data(explore(y).html())
    assert "inf" in [n["data"] for n in data["nodes"]]


def test_labels_cannot_break_out_of_the_page() -> None:
    x = mg.Value(1.0, "</script><script>alert(1)</script><!--")
    page = explore(x * 2.0).html()
    assert page.count("</script>") == 3
    assert x.label in [n["label"] for n in page_data(page)["nodes"]]


def test_repr_html_is_an_iframe_holding_the_page() -> None:
    _, y = sigmoid_example()
    e = explore(y)
    frame = e._repr_html_()
    m = re.fullmatch(r'<iframe srcdoc="([^"]*)" [^>]*style="[^"]*height: (\d+)px[^"]*"[^>]*></iframe>', frame)
    assert m is not None
    assert html.unescape(m.group(1)) == e.html()
    assert 400 <= int(m.group(2)) <= 1000
    assert "allow-scripts" in frame
    assert isinstance(e, Explorer) and "steps" in repr(e)


def test_step_lines_are_those_of_the_explorer_and_the_command() -> None:
    _, y = sigmoid_example()
    e = explore(y, upstream=3)
    out = subprocess.run([sys.executable, "-m", "microgrannd", "step", "sigmoid(x)", "x=-1", "--upstream", "3"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.splitlines() == e.steps()


def test_the_wheel_carries_the_assets(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("microgrannd-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for asset in ("page.html", "explore.js", "explore.css", "viz-global.js", "VIZ-JS-LICENSE",
                  "GRAPHVIZ-EPL-1.0-LICENSE", "EXPAT-LICENSE", "README.md"):
        assert f"microgrannd/explore/assets/{asset}" in names
