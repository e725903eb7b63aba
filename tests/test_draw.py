"""The drawing: DOT structure (nodes, edges, clusters, labels, order) and options."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import pytest
from _draw_support import parse

import microgrannd as mg
from microgrannd import Value
from microgrannd.draw import KIND_COLORS, GraphTooLargeError, draw


def sigmoid_graph(x0: float = -1.0) -> tuple[Value, Value]:
    x = Value(x0, "x")
    return x, mg.sigmoid(x)


# --- clusters


def test_sigmoid_is_one_cluster_of_four_op_nodes() -> None:
    _, y = sigmoid_graph()
    dot = parse(draw(y).source)
    assert list(dot.clusters) == ["cluster_0"]
    assert 'label="sigmoid"' in dot.clusters["cluster_0"]
    inside = dot.members("cluster_0")
    ops = [n for n in inside if n in dot.ops()]
    assert sorted(dot.label(n) for n in ops) == sorted(["×", "exp", "+", "1/x"])
    assert len(dot.ops()) == 4  # no op outside the cluster
    # the input stays outside; the -1 and 1 constants made by sigmoid sit inside
    x_node = next(n for n in dot.values() if "<B>x</B>" in dot.nodes[n])
    assert dot.cluster_of[x_node] == ()
    constants = [n for n in inside if "dashed" in dot.nodes[n]]
    assert sorted(dot.label(n) for n in constants) == ["-1", "1"]


def test_the_chain_order_inside_sigmoid() -> None:
    _, y = sigmoid_graph()
    dot = parse(draw(y).source)
    # follow value -> op -> value from the input to the output
    symbols = []
    for tail, head, _ in dot.edges:
        if head in dot.ops() and "dashed" not in dot.nodes[tail]:
            symbols.append(dot.label(head))
    assert symbols == ["×", "exp", "+", "1/x"]


def test_nested_composites_nest() -> None:
    @mg.composite("outer")
    def outer(a: Value) -> Value:
        return mg.sigmoid(a * 2.0) + a

    y = outer(Value(0.3, "a"))
    dot = parse(draw(y).source)
    names = {c: line for c, line in dot.clusters.items()}
    (outer_c,) = [c for c, line in names.items() if '"outer"' in line]
    (inner_c,) = [c for c, line in names.items() if '"sigmoid"' in line]
    assert dot.cluster_parent[inner_c] == (outer_c,)
    assert len([n for n in dot.members(inner_c) if n in dot.ops()]) == 4
    # outer itself holds the mul by 2 and the final add
    assert sorted(dot.label(n) for n in dot.members(outer_c) if n in dot.ops()) == ["+", "×"]


def test_sub_and_div_are_clusters() -> None:
    a, b = Value(3.0, "a"), Value(4.0, "b")
    dot = parse(draw((a - b) / b).source)
    labels = sorted(line.split('"')[1] for line in dot.clusters.values())
    assert labels == ["div", "sub"]


def test_deeply_nested_scopes_draw_without_recursion() -> None:
    x = Value(1.0, "x")
    with contextlib.ExitStack() as stack:
        for _ in range(1500):
            stack.enter_context(mg.scope("s"))
        y = x * 2.0
    dot = parse(draw(y).source)
    assert len(dot.clusters) == 1500


# --- edges: one per parent slot, in order


def test_x_times_x_draws_two_edges() -> None:
    x = Value(3.0, "x")
    dot = parse(draw(x * x).source)
    (op,) = dot.ops()
    into_op = [t for t, h, _ in dot.edges if h == op]
    assert len(into_op) == 2 and into_op[0] == into_op[1]
    assert len(dot.values()) == 2


def test_edges_follow_parent_slots() -> None:
    a, b = Value(1.0, "a"), Value(2.0, "b")
    for first, second in ((a, b), (b, a)):
        dot = parse(draw(first * second).source)
        (op,) = dot.ops()
        tails = [t for t, h, _ in dot.edges if h == op]
        assert len(tails) == 2
        assert f"<B>{first.label}</B>" in dot.nodes[tails[0]]
        assert f"<B>{second.label}</B>" in dot.nodes[tails[1]]


def test_pow_shows_its_exponent_in_the_symbol() -> None:
    x = Value(3.0, "x")
    dot = parse(draw(x**2).source)
    (op,) = dot.ops()
    assert dot.label(op) == "^2"
    assert len(dot.values()) == 2  # x and the result: the exponent is not a node
    assert len(dot.edges) == 2


def test_shopping_graph_counts_and_gradients() -> None:
    apple, n, tax = Value(100.0, "apple"), Value(2.0, "n"), Value(1.1, "tax")
    price = apple * n * tax
    price.backward()
    dot = parse(draw(price).source)
    assert (len(dot.values()), len(dot.ops()), len(dot.edges)) == (5, 2, 6)
    text = " ".join(dot.nodes.values())
    # the shopping example: d price / d apple = 2.2, d count = 110, d tax = 200
    for expected in ("grad 2.2<", "grad 110<", "grad 200<", "data 220<"):
        assert expected in text


# --- what nodes look like


def test_gradients_before_backward_are_marked_not_computed() -> None:
    x, y = sigmoid_graph(0.5)
    before = parse(draw(y).source)
    assert all("grad ?" in before.nodes[v] for v in before.values() if "dashed" not in before.nodes[v])
    assert "grad 0" not in draw(y).source
    y.backward()
    after = draw(y).source
    assert "grad ?" not in after
    assert f"grad {x.grad:.4g}" in after
    assert "grad" not in draw(y, grads=False).source.replace("grad ?", "")


def test_grads_true_shows_fields_even_before_backward() -> None:
    x = Value(2.0, "x")
    assert "grad 0<" in draw(x * 3.0, grads=True).source


def test_kinds_have_distinct_colours() -> None:
    x, w = Value(1.0, "x"), Value(2.0, "w")
    y = x * w + 1.0
    source = draw(y, params=[w]).source
    dot = parse(source)
    colour = {}
    for v in dot.values():
        for kind, c in KIND_COLORS.items():
            if c in dot.nodes[v]:
                colour.setdefault(kind, []).append(v)
    assert len(colour["input"]) == 1 and "<B>x</B>" in dot.nodes[colour["input"][0]]
    assert len(colour["parameter"]) == 1 and "<B>w</B>" in dot.nodes[colour["parameter"][0]]
    assert len(colour["output"]) == 1
    assert len(colour["constant"]) == 1 and "dashed" in dot.nodes[colour["constant"][0]]
    assert len(set(KIND_COLORS.values())) == len(KIND_COLORS)


def test_labels_are_escaped() -> None:
    x = Value(1.0, 'a<b>&"c')
    source = draw(x * 2.0).source
    assert "a&lt;b&gt;&amp;&quot;c" in source


def test_number_format() -> None:
    x = Value(1 / 3, "x")
    assert "data 0.333333<" in draw(x, fmt=".6f".replace("f", "g")).source
    assert "data 0.33<" in draw(x, fmt=lambda v: f"{v:.2f}").source


def test_legend() -> None:
    x = Value(1.0, "x")
    source = draw(x * 2.0, legend=True).source
    assert "legend" in source and "constant" in source and "grad not computed yet" in source


def test_rankdir_and_bad_options() -> None:
    x = Value(1.0, "x")
    assert "rankdir=TB" in draw(x, rankdir="TB").source
    with pytest.raises(ValueError, match="rankdir"):
        draw(x, rankdir="sideways")
    with pytest.raises(ValueError, match="grads"):
        draw(x, grads="maybe")
    with pytest.raises(TypeError):
        draw(1.0)  # type: ignore[arg-type]


# --- determinism, size, depth


def test_same_graph_gives_same_dot() -> None:
    def build() -> str:
        x = Value(0.5, "x")
        return draw(mg.sigmoid(x) * x - x / 3.0 + mg.leaky_relu(x)).source

    assert build() == build()


def test_node_limit_error_suggests_collapse_and_raising() -> None:
    x = Value(1.0, "x")
    y = x
    for _ in range(400):
        y = y * 1.01
    with pytest.raises(GraphTooLargeError, match=r"collapse=True.*max_nodes=801"):
        draw(y)
    assert len(parse(draw(y, max_nodes=801).source).ops()) == 400


def test_long_chain_is_drawn_iteratively() -> None:
    x = Value(1.0, "x")
    y = x
    for _ in range(3000):
        y = y.tanh()
    dot = parse(draw(y, max_nodes=10_000).source)
    assert len(dot.ops()) == 3000 and len(dot.edges) == 6000


# --- collapse


def test_collapse_draws_a_call_as_one_node() -> None:
    _, y = sigmoid_graph()
    d = draw(y, collapse=True)
    dot = parse(d.source)
    assert dot.clusters == {} and dot.ops() == []
    calls = [n for n in dot.nodes if n.startswith("c")]
    assert [dot.label(c) for c in calls] == ["sigmoid"]
    assert len(dot.values()) == 2  # x and y
    assert [(t in dot.values(), h) for t, h, _ in dot.edges] == [(True, calls[0]), (False, dot.values()[1])]
    assert (d.values, d.ops, d.calls, d.clusters) == (2, 0, 1, 0)


def test_collapse_by_name() -> None:
    x = Value(0.5, "x")
    y = mg.sigmoid(x) - mg.leaky_relu(x)
    dot = parse(draw(y, collapse="leaky_relu").source)
    labels = sorted(line.split('"')[1] for line in dot.clusters.values())
    assert labels == ["sigmoid", "sub"]
    assert [dot.label(n) for n in dot.nodes if n.startswith("c")] == ["leaky_relu"]
    # x feeds leaky_relu twice (relu(x), x * -1): one edge per distinct input
    call = next(n for n in dot.nodes if n.startswith("c"))
    assert len([t for t, h, _ in dot.edges if h == call]) == 1
    both = parse(draw(y, collapse=["leaky_relu", "sigmoid"]).source)
    assert sorted(both.label(n) for n in both.nodes if n.startswith("c")) == ["leaky_relu", "sigmoid"]


def test_collapse_counts_against_the_limit() -> None:
    x = Value(0.1, "x")
    y = x
    for _ in range(100):
        y = mg.sigmoid(y)
    with pytest.raises(GraphTooLargeError):
        draw(y)
    assert len(parse(draw(y, collapse=True).source).values()) == 101


# --- the backward view


def test_backward_view_reproduces_the_seed_sigmoid_diagram() -> None:
    x0, g = -1.0, 3.0
    _, y = sigmoid_graph(x0)
    dot = parse(draw(y, backward=True, upstream=g, fmt=".6g").source)
    s = 1.0 / (1.0 + math.exp(-x0))  # the seed's y = 0.268941421
    expected = [  # (op the edge enters, local derivative, gradient flowing back)
        ("1/x", -s * s, -g * s * s),
        ("+", 1.0, -g * s * s),
        ("exp", math.exp(-x0), -g * s * s * math.exp(-x0)),
        ("×", -1.0, g * s * (1 - s)),
    ]
    found = {}
    for k, (_tail, head, attrs) in enumerate(dot.edges):
        if head in dot.ops() and "label=" in attrs:
            found[dot.label(head)] = dot.edge_label(k)
    for op, local, flow in expected:
        assert found[op] == f"local {local:.6g}\\ngrad {flow:.6g}"
    assert f"{g * s * (1 - s):.6g}" == "0.589836"  # the seed's dx at x = -1
    assert "upstream" in dot.nodes and "dir=back" in dot.edges[-1][2]


def test_backward_view_touches_no_grad_field() -> None:
    x, y = sigmoid_graph(0.5)
    draw(y, backward=True, upstream=3.0)
    assert x.grad == 0.0 and y.grad == 0.0


def test_backward_view_of_a_collapsed_call() -> None:
    x0, g = 0.7, 2.0
    x = Value(x0, "x")
    y = mg.sigmoid(x) * 5.0
    dot = parse(draw(y, backward=True, upstream=g, collapse=True, fmt=".6g").source)
    s = 1.0 / (1.0 + math.exp(-x0))
    call = next(n for n in dot.nodes if n.startswith("c"))
    (k,) = [k for k, (_t, h, _a) in enumerate(dot.edges) if h == call]
    assert dot.edge_label(k) == f"local {s * (1 - s):.6g}\\ngrad {g * 5.0 * s * (1 - s):.6g}"


def test_the_top_level_name_draw_is_the_function() -> None:
    assert mg.draw is draw


# --- every primitive in the table draws, and the backward view adds up


@pytest.mark.parametrize("name", sorted(n for n, p in mg.PRIMITIVES.items() if p.arity >= 0))
def test_every_primitive_draws_with_its_symbol_and_local_derivatives(name: str) -> None:
    prim = mg.PRIMITIVES[name]
    inputs = [Value(0.5 + 0.25 * i, f"a{i}") for i in range(prim.arity)]
    args: list[Value | float] = [2.0 if i in prim.constant_args else v for i, v in enumerate(inputs)]
    y = mg.apply(prim, *args)
    dot = parse(draw(y, backward=True, upstream=2.0, fmt=repr).source)
    (op,) = dot.ops()
    folded = "".join(repr(2.0) for _ in prim.constant_args)
    assert dot.label(op) == prim.symbol + folded
    floats = [a if isinstance(a, float) else a.data for a in args]
    ds = prim.derivatives(*floats, y.data)
    labelled = [dot.edge_label(k) for k, (_t, h, _a) in enumerate(dot.edges) if h == op]
    variable_slots = [i for i in range(prim.arity) if i not in prim.constant_args]
    assert labelled == [f"local {ds[i]!r}\\ngrad {2.0 * ds[i]!r}" for i in variable_slots]


@pytest.mark.parametrize(
    "build",
    [
        lambda x, y: x * x + mg.sigmoid(x) * y,
        lambda x, y: (x - y) / (x + y) + mg.tanh(x * y),
        lambda x, y: mg.log(x * x + 1.0) * mg.leaky_relu(y) - x**3,
    ],
)
def test_backward_view_flows_into_a_leaf_add_up(build: Callable[[Value, Value], Value]) -> None:
    x, y = Value(0.7, "x"), Value(-1.3, "y")
    out = build(x, y)
    expected = mg.gradients(out, 1.5)
    dot = parse(draw(out, backward=True, upstream=1.5, fmt=repr).source)
    for leaf in (x, y):
        (node,) = [n for n in dot.values() if f"<B>{leaf.label}</B>" in dot.nodes[n]]
        flows = [
            float(dot.edge_label(k).split("grad ")[1])
            for k, (t, _h, _a) in enumerate(dot.edges)
            if t == node
        ]
        assert math.fsum(flows) == pytest.approx(expected[leaf], rel=1e-12)
        assert f"grad {expected[leaf]!r}<" in dot.nodes[node]
