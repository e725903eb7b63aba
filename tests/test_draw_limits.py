"""Big graphs: draw refuses them after counting only up to its limit, tree cuts them; count_nodes."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest
from _draw_support import parse

import microgrannd as mg
from microgrannd import Value, nn
from microgrannd.draw import GraphTooLargeError, _collapse_rule, _count_shown, _Layout, draw
from microgrannd.tree import tree
from microgrannd.walk import count_nodes, toposort

# --- walk.count_nodes


def test_count_nodes_counts_each_node_once_and_stops_past_the_limit() -> None:
    x, w = Value(2.0, "x"), Value(3.0, "w")
    p = x * w
    y = (p + x) * p  # p is used twice, x twice: x, w, p, p + x, y
    total = len(toposort(y))
    assert total == 5
    assert count_nodes(y, 100) == total
    assert count_nodes(y, total) == total
    for limit in range(1, total):
        assert count_nodes(y, limit) == limit + 1
    leaf = Value(1.0)
    assert count_nodes(leaf, 1) == 1 and count_nodes(leaf, 10) == 1


def test_count_nodes_counts_constants_and_folded_exponents() -> None:
    x = Value(1.5, "x")
    y = x**2.0 + 1.0  # x, the exponent 2, x**2, the constant 1, the sum
    assert count_nodes(y, 50) == len(toposort(y)) == 5


def test_count_nodes_on_a_diamond_lattice_stays_linear() -> None:
    # 2**60 paths from the top to x: a walk that followed paths instead of nodes would never end
    x = Value(1.0, "x")
    y = x
    for _ in range(60):
        y = y * y + y
    assert count_nodes(y, 10_000) == len(toposort(y)) == 1 + 60 * 2


# --- draw refuses big graphs fast, with advice


def chain(n: int) -> Value:
    y = Value(1.0, "x")
    for _ in range(n):
        y = y.tanh()
    return y


def training_step_graph() -> Value:
    """micrograd's demo loss: MLP(2, [16, 16, 1]) on 100 points, hinge plus L2 (about 65,000 nodes)."""
    rng = random.Random(0)
    model = nn.MLP(2, [16, 16, 1], rng=0)
    X = [[rng.uniform(-2, 2), rng.uniform(-2, 2)] for _ in range(100)]
    y = [1 if a * b > 0 else -1 for a, b in X]
    scores = [model([Value(a), Value(b)]) for a, b in X]
    losses = [(1 + -yi * s).relu() for yi, s in zip(y, scores, strict=True)]
    return sum(losses) * (1.0 / len(losses)) + 1e-4 * sum(p * p for p in model.parameters())


@pytest.fixture(scope="module")
def step() -> Iterator[Value]:
    with mg.gc_paused():
        loss = training_step_graph()
    yield loss


def refusal(root: Value, **options: object) -> tuple[GraphTooLargeError, float]:
    start = time.perf_counter()
    with pytest.raises(GraphTooLargeError) as info:
        draw(root, **options)  # type: ignore[arg-type]
    return info.value, time.perf_counter() - start


def test_a_training_step_is_refused_fast_with_advice(step: Value) -> None:
    assert count_nodes(step, 100_000) > 60_000
    e, seconds = refusal(step)
    assert seconds < 5  # about 0.05 s; generous, machines are noisy
    assert e.max_nodes == 300 and e.count > 300
    message = str(e)
    assert "max_nodes=300" in message and "collapse=True" in message
    assert "'Layer'" in message and "collapse='Layer'" in message  # the calls the graph records
    assert "more than 10,000 values" in message and not e.exact


def test_collapse_is_counted_before_refusing(step: Value) -> None:
    e, seconds = refusal(step, collapse=["Layer", "l2"])
    assert seconds < 5
    assert e.count > 300 and "collapse=True" in str(e)
    e, _ = refusal(step, collapse=True)
    assert "collapse=True" not in str(e)  # already collapsed: no such advice


def test_a_million_node_chain_is_refused_fast() -> None:
    with mg.gc_paused():
        y = chain(1_000_000)
    for options in ({}, {"collapse": True}, {"max_nodes": 5000}):
        e, seconds = refusal(y, **options)
        assert seconds < 5  # about 0.1 s (it took 10 s when draw laid the graph out first)
        assert not e.exact and "more than 10,000" in str(e)


def test_an_exact_count_tells_the_limit_that_would_do() -> None:
    y = chain(400)
    e, _ = refusal(y)
    assert e.exact and e.count == 401
    assert "max_nodes=401" in str(e)
    assert draw(y, max_nodes=401).values == 401


def test_a_collapsed_graph_above_the_raw_count_but_within_the_limit_is_drawn() -> None:
    x = Value(0.3, "x")
    y = x
    for _ in range(50):
        y = mg.sigmoid(y)  # 50 calls of 4 ops each: 401 values, 51 when collapsed
    assert count_nodes(y, 10_000) > 300
    d = draw(y, collapse="sigmoid")
    assert d.values == 51 and d.calls == 50


# --- the bounded count agrees with the layout


def graphs() -> dict[str, Value]:
    x, w, b = Value(0.5, "x"), Value(-1.5, "w"), Value(0.25, "b")
    model = nn.MLP(2, [3, 2, 1], rng=3)
    out = model([Value(0.5, "x1"), Value(-1.0, "x2")])
    shared = mg.sigmoid(x * w + b)
    return {
        "network": nn.hinge(out, 1) + nn.l2(model.parameters(), 1e-4),
        "shared constant": mg.sigmoid(x) + mg.sigmoid(x) * 2.0,
        "nested": mg.sigmoid(mg.leaky_relu(x) - shared) / (x + 1.0),
        "pow": (x**2.0 + w**2.0) ** 0.5,
    }


@pytest.mark.parametrize("collapse", [False, True, "Layer", ["Layer", "l2"], "Neuron", "sigmoid", "MLP"])
@pytest.mark.parametrize("name", sorted(graphs()))
def test_the_bounded_count_equals_what_the_drawing_shows(name: str, collapse: object) -> None:
    root = graphs()[name]
    params = nn.module.live_parameters()
    lay = _Layout(root, collapse, lambda v: v in params)  # type: ignore[arg-type]
    shown = sum(lay.visible(v) for v in lay.nodes)
    count, _ = _count_shown(root, _collapse_rule(collapse), lambda v: v in params, 10_000)  # type: ignore[arg-type]
    assert count == shown
    assert draw(root, collapse=collapse).values == shown  # type: ignore[arg-type]
    if shown > 2:
        assert _count_shown(root, _collapse_rule(collapse), lambda v: v in params, shown - 2)[0] == shown - 1  # type: ignore[arg-type]


# --- a network layer by layer


def test_a_network_collapsed_to_layers_hides_its_weights_in_the_layer_boxes() -> None:
    model = nn.MLP(2, [16, 16, 1], rng=0)
    loss = nn.hinge(model([Value(0.5, "x1"), Value(-1.0, "x2")]), 1) + nn.l2(model.parameters(), 1e-4)
    d = draw(loss, collapse=["Layer", "l2"])
    assert d.values <= 50 and d.calls == 4
    dot = parse(d.source)
    calls = sorted(dot.label(n) for n in dot.nodes if n.startswith("c"))
    assert calls == ["Layer\\n17 parameters", "Layer\\n272 parameters", "Layer\\n48 parameters",
                     "l2\\n337 parameters"]
    assert "tooltip=parameter" not in d.source  # every weight is inside a box
    assert [line.split('"')[1] for line in dot.clusters.values()] == ["MLP", "hinge"]
    # the penalty drawn out: its 337 uses of the parameters show them all
    with pytest.raises(GraphTooLargeError):
        draw(loss, collapse="Layer")


def test_a_parameter_used_outside_the_collapsed_calls_stays_visible() -> None:
    x, w, b = Value(0.5, "x"), Value(-1.5, "w"), Value(0.25, "b")
    inner = mg.sigmoid(w)  # w used inside the call ...
    y = inner * x + w * b  # ... and outside it
    d = draw(y, collapse=True, params=[w, b])
    assert d.source.count("tooltip=parameter") == 2
    only_inside = draw(mg.sigmoid(w) * x, collapse=True, params=[w])
    assert "tooltip=parameter" not in only_inside.source
    assert "sigmoid\\n1 parameter" in only_inside.source


# --- tree cuts big graphs


def test_tree_of_a_million_node_chain_is_cut_at_its_limit() -> None:
    with mg.gc_paused():
        y = chain(1_000_000)
    start = time.perf_counter()
    text = tree(y)
    seconds = time.perf_counter() - start
    assert seconds < 5  # about 0.01 s (it took 17 s and 2 GB before the limit)
    lines = text.splitlines()
    assert len(lines) == 1001 and lines[-1].startswith("... cut after 1,000 lines")
    assert "max_nodes=None" in lines[-1]
    assert len(tree(y, max_nodes=10).splitlines()) == 11


def test_tree_within_its_limit_is_not_cut_and_shared_nodes_are_tagged_only_when_shown_twice() -> None:
    x = Value(2.0, "x")
    s = x * x
    y = s + s
    full = tree(y)
    assert "cut" not in full and full.count("[#") == 4  # s and x each tagged, then referenced
    assert len(full.splitlines()) == 5
    assert tree(y, max_nodes=5) == full
    four = tree(y, max_nodes=4).splitlines()
    assert len(four) == 5 and four[-1].startswith("... cut after 4 lines")
    assert "[#" not in four[1] and four[2].endswith("[#1]")  # only x is seen twice within the cut
    assert "[#" not in tree(y, max_nodes=3)  # no tag promises a reference that is cut off
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="max_nodes"):
            tree(y, max_nodes=bad)  # type: ignore[arg-type]
