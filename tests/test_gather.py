"""gather: a recorded choice by a data index, the same on every path, never differentiable in the index.

Every path (``backward``, ``gradients()``, ``backward(create_graph=True)``,
``mg.grad`` and a nested ``grad``, compiled code by generation and by tape,
forward mode) must give the same gradients through ``gather``, with exactly
0.0 for the entries not chosen and for the index, and a compiled function
must choose anew at every call, first and second order.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

import microgrannd as mg
from microgrannd import DomainError, Value
from microgrannd.testing import check_primitive


def _number(g: Any) -> float:
    return g.data if isinstance(g, Value) else float(g)


# Functions of (index, a, b, c): gathers of leaves, of interior nodes, of
# constants, a chosen entry used twice, and an index that is itself gathered.
FUNCTIONS = {
    "leaves": lambda i, a, b, c: mg.gather([a, b, c], i) * a,
    "interior": lambda i, a, b, c: mg.gather([a * b, mg.tanh(c), b + a], i) ** 2 + c,
    "constants": lambda i, a, b, c: mg.gather([a, 2.5, b * c], i) * mg.exp(b),
    "twice": lambda i, a, b, c: mg.gather([a, b, a], i) * mg.gather([c, c, b], i),
    "gathered index": lambda i, a, b, c: mg.gather([a, b, c], mg.gather([2.0, 0.0, 1.0], i)) * b,
}


def _every_path(f: Any, point: list[float]) -> dict[str, list[float]]:
    n = len(point)
    paths: dict[str, list[float]] = {}
    xs = [Value(p) for p in point]
    f(*xs).backward()
    paths["backward"] = [x.grad for x in xs]
    xs = [Value(p) for p in point]
    grads = mg.gradients(f(*xs))
    paths["gradients"] = [_number(grads.get(x, 0.0)) for x in xs]
    xs = [Value(p) for p in point]
    f(*xs).backward(create_graph=True)  # the index is a Value: the rule records its choice
    paths["create_graph"] = [_number(x.grad) for x in xs]
    everything = tuple(range(n))
    paths["grad"] = list(mg.grad(f, argnums=everything)(*point))
    seen: list[list[float]] = []

    def outer(*vs: Any) -> Any:
        gs = mg.grad(f, argnums=everything)(*vs)
        seen.append([_number(g) for g in gs])
        return gs[1]

    mg.grad(outer)(*point)
    paths["nested grad"] = seen[0]
    for method in ("codegen", "tape"):
        _, gs = mg.compile(f, *point, method=method)(*point)
        paths[f"compiled {method}"] = list(gs)
    units = [[1.0 if j == k else 0.0 for j in range(n)] for k in range(n)]
    paths["jvp"] = [mg.jvp(f, point, e)[1] for e in units]
    return paths


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_every_path_agrees_exactly(name: str) -> None:
    f = FUNCTIONS[name]
    rng = random.Random(name)
    for index in (0.0, 1.0, 2.0):
        for _ in range(5):
            point = [index] + [rng.uniform(-2, 2) for _ in range(3)]
            paths = _every_path(f, point)
            reference = paths["backward"]
            assert reference[0] == 0.0  # nothing for the index
            for path, got in paths.items():
                assert got == reference, (path, point)


def test_only_the_chosen_entry_gets_the_gradient() -> None:
    table = [Value(float(k)) for k in range(5)]
    for index in range(5):
        i = Value(float(index))
        for v in table:
            v.grad = 0.0
        (mg.gather(table, i) * 3.0).backward()
        assert [v.grad for v in table] == [3.0 if k == index else 0.0 for k in range(5)]
        assert i.grad == 0.0


def test_gather_matches_indexing_and_rows() -> None:
    rows = [[Value(1.0), Value(2.0)], [Value(3.0), Value(4.0)], [Value(5.0), Value(6.0)]]
    picked = mg.gather(rows, Value(2.0))
    assert [v.data for v in picked] == [5.0, 6.0] and all(v.op == "gather" for v in picked)
    assert mg.gather(rows, 1) is rows[1]  # an int index is plain indexing: no node
    assert mg.gather([1.0, 2.0, 3.0], 2) == 3.0
    assert mg.apply("gather", 1.0, 7.0, 8.0) == 8.0  # on numbers, through the table


def test_second_derivatives_through_a_value_index() -> None:
    """The derivative's graph gathers too: differentiating it again is right, compiled as well."""
    def f(i: Any, a: Any, b: Any) -> Any:
        return mg.gather([a * a * b, mg.sin(a), b], i) * a

    def d2(i: Any, a: Any, b: Any) -> Any:  # d/da of d f/da, by nested grad
        return mg.grad(lambda a: mg.grad(lambda a: f(i, a, b))(a))(a)

    expected = {0: lambda a, b: 6 * a * b, 1: lambda a, b: 2 * math.cos(a) - a * math.sin(a), 2: lambda a, b: 0.0}
    c = mg.compile(lambda i, a, b: mg.grad(lambda a: f(i, a, b))(a), 0.0, 0.5, 0.25)
    rng = random.Random(3)
    for _ in range(10):
        index, a, b = rng.randrange(3), rng.uniform(-2, 2), rng.uniform(-2, 2)
        i = Value(float(index))
        assert _number(d2(i, a, b)) == pytest.approx(expected[index](a, b), rel=1e-12, abs=1e-12)
        # compiled: the first derivative's graph chose by the traced index, so each call chooses anew
        value, (gi, ga, _) = c(float(index), a, b)
        assert value == _number(mg.grad(lambda a, i=i, b=b: f(i, a, b))(a))
        assert gi == 0.0
        assert ga == pytest.approx(expected[index](a, b), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("method", ["codegen", "tape"])
def test_a_bad_index_is_a_clear_error_everywhere(method: str) -> None:
    table = [Value(1.0), Value(2.0), Value(3.0)]
    for bad in (3.0, -1.0, 1.5, math.nan, math.inf):
        with pytest.raises(DomainError, match=r"gather\(.*index must be an integer from 0 to 2, for 3 values"):
            mg.gather(table, Value(bad))
    c = mg.compile(lambda i, xs: mg.gather(xs, i), 0.0, [1.0, 2.0, 3.0], method=method)
    assert c(2.0, [1.0, 2.0, 3.0]) == (3.0, (0.0, [0.0, 0.0, 1.0]))
    for bad in (3.0, 0.5, math.nan):
        with pytest.raises(DomainError, match="index must be an integer"):
            c(bad, [1.0, 2.0, 3.0])
    with pytest.raises(DomainError, match="from 0 to 2"):
        mg.gather(table, 3)
    with pytest.raises(TypeError, match="a Value or an int, not float"):
        mg.gather(table, 1.0)
    with pytest.raises(TypeError, match="not bool"):
        mg.gather(table, True)
    with pytest.raises(TypeError, match="non-empty"):
        mg.gather([], Value(0.0))
    with pytest.raises(ValueError, match="length 2"):
        mg.gather([[1.0, 2.0], [3.0]], Value(0.0))


def test_a_traced_python_index_says_to_use_gather() -> None:
    with pytest.raises(mg.TraceError, match=r"mg\.gather"):
        mg.compile(lambda i, xs: xs[i], 0.0, [1.0, 2.0])


def test_check_primitive_declines_a_variadic_primitive() -> None:
    with pytest.raises(ValueError, match="fixed arity"):
        check_primitive("gather")


def test_the_table_entry_and_the_drawing() -> None:
    prim = mg.PRIMITIVES["gather"]
    assert prim.arity == -1 and prim.differentiable
    assert prim.forward(1.0, 4.0, 5.0) == 5.0 and math.isnan(prim.forward(2.0, 4.0, 5.0))
    assert prim.derivatives(1.0, 4.0, 5.0, 5.0) == (0.0, 0.0, 1.0)
    y = mg.gather([Value(4.0, "a"), Value(5.0, "b")], Value(1.0, "i"))
    assert prim.symbol in mg.tree(y)
