"""Every path through the engine gives the same number for the same graph.

First-order ``backward``, ``gradients()``, ``backward(create_graph=True)``,
``mg.grad`` (at numbers, and nested inside another ``grad``), and compiled
code (generated and tape) all run the same rules from the primitive table in
the same order, so on random expressions they must agree exactly, not merely
to a tolerance.  Forward mode (``jvp``) runs the same rules but sums the terms
in another order: it must agree to the rounding of those terms.  Saturated
points, where a zero gradient meets an infinite local derivative, must agree
too (0, never NaN).
"""

from __future__ import annotations

import math
import sys

import pytest
from hypothesis import given

import microgrannd as mg
from microgrannd import Value
from microgrannd.testing.gradcheck import _absolute_paths
from microgrannd.testing.strategies import dags, expressions

EPS = sys.float_info.epsilon


def _number(g: object) -> float:
    return g.data if isinstance(g, Value) else float(g)  # type: ignore[arg-type]


def _every_path(f, point: tuple[float, ...]) -> dict[str, list[float]]:
    """d f / d inputs at ``point``, by each path."""
    n = len(point)
    paths: dict[str, list[float]] = {}

    xs = [Value(p) for p in point]
    y = f(*xs)
    if not isinstance(y, Value):
        return {}
    y.backward()
    paths["backward"] = [x.grad for x in xs]

    xs = [Value(p) for p in point]
    grads = mg.gradients(f(*xs))
    paths["gradients"] = [_number(grads.get(x, 0.0)) for x in xs]

    xs = [Value(p) for p in point]
    f(*xs).backward(create_graph=True)
    paths["create_graph"] = [_number(x.grad) for x in xs]

    everything = tuple(range(n))
    paths["grad"] = list(mg.grad(f, argnums=everything)(*point))

    # a gradient taken inside another grad is built as a graph (the create_graph path, fresh inputs)
    seen: list[list[float]] = []

    def outer(*vs):
        gs = mg.grad(f, argnums=everything)(*vs)
        seen.append([_number(g) for g in gs])
        return gs[0]

    mg.grad(outer)(*point)
    paths["nested grad"] = seen[0]

    for method in ("codegen", "tape"):
        _, gs = mg.compile(f, *point, method=method)(*point)
        paths[f"compiled {method}"] = list(gs)

    # forward mode sums the same terms in another order: equal up to rounding (checked apart)
    units = [[1.0 if j == i else 0.0 for j in range(n)] for i in range(n)]
    paths["jvp"] = [mg.jvp(f, point, e)[1] for e in units]
    return paths


def _assert_same(paths: dict[str, list[float]], f=None, point=()) -> None:
    reference = paths.get("backward")
    if reference is None:
        return
    for name, gs in paths.items():
        for i, (a, b) in enumerate(zip(reference, gs, strict=True)):
            same = a == b or (math.isnan(a) and math.isnan(b))
            if name == "jvp" and not same and f is not None:
                # bounded by the rounding of the terms: eps times the sum of |path products|
                xs = [Value(p) for p in point]
                weight = _absolute_paths(f(*xs)).get(xs[i], 0.0)
                same = abs(a - b) <= 64 * EPS * weight
            assert same, f"input {i}: backward gives {a!r}, {name} gives {b!r}"


@given(expressions(variables=2, max_depth=4))
def test_trees_give_the_same_number_on_every_path(expr):
    _assert_same(_every_path(expr, expr.point), expr, expr.point)


@given(dags(variables=2, max_nodes=8))
def test_dags_give_the_same_number_on_every_path(expr):
    _assert_same(_every_path(expr, expr.point), expr, expr.point)


SATURATED = [
    ("sigmoid at -800", mg.sigmoid, -800.0),
    ("sigmoid at 800", mg.sigmoid, 800.0),
    ("tanh(exp(x)) at 800", lambda x: mg.tanh(mg.exp(x)), 800.0),
    ("relu(x) ** 0.5 at -1", lambda x: mg.relu(x) ** 0.5, -1.0),
    ("exp(-x * x) * x at 40", lambda x: mg.exp(x * x * -1.0) * x, 40.0),
]


@pytest.mark.parametrize(("name", "f", "x"), SATURATED, ids=[s[0] for s in SATURATED])
def test_saturated_points_send_nothing_back_on_every_path(name, f, x):
    paths = _every_path(f, (x,))
    _assert_same(paths)
    assert paths["backward"] == [0.0]
