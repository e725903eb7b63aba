"""The hypothesis strategies of microgrannd.testing.strategies."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from microgrannd import PRIMITIVES, Primitive, Value
from microgrannd.ops import power, primitive
from microgrannd.testing import GradcheckError, NumericallyUnreliable, check_grad
from microgrannd.testing.strategies import (
    MARGIN,
    Const,
    Expression,
    Node,
    away_from_zero,
    constants,
    dags,
    expressions,
    operations,
    positive,
    primitive_inputs,
    reals,
)

FIND = settings(database=None, max_examples=2000, phases=[Phase.generate])  # first match, unshrunk


# --- numbers


@given(reals(-2.0, 3.0), positive(0.5, 4.0), away_from_zero(0.25, 2.0), constants(1.5))
def test_number_strategies_stay_in_their_domains(r, p, a, c):
    assert -2.0 <= r <= 3.0
    assert 0.5 <= p <= 4.0
    assert 0.25 <= abs(a) <= 2.0
    assert -1.5 <= c <= 1.5 and round(c, 1) == c
    assert all(math.isfinite(v) for v in (r, p, a, c))


# --- printing


OPS = {op.name: op for op in operations()}


def _expr(variables: int, *nodes: tuple[str, tuple[int | float, ...]]) -> Expression:
    built = [
        Node(OPS[name], tuple(Const(a) if isinstance(a, float) else a for a in args)) for name, args in nodes
    ]
    return Expression(variables, built, (0.5,) * variables)


@pytest.mark.parametrize(
    ("expr", "source"),
    [
        (_expr(1, ("mul", (0, 2.5)), ("tanh", (1,))), "tanh(x0 * 2.5)"),
        (_expr(3, ("add", (0, 1)), ("mul", (3, 2))), "(x0 + x1) * x2"),
        (_expr(3, ("sub", (1, 2)), ("sub", (0, 3))), "x0 - (x1 - x2)"),
        (_expr(1, ("neg", (0,)), ("pow", (1, 2.0))), "(-x0) ** 2.0"),
        (_expr(2, ("power", (0, 1)), ("div", (2, -1.5))), "x0 ** x1 / -1.5"),
        (_expr(1, ("exp", (0,)), ("mul", (1, 1)), ("add", (2, 1))), "v1 = exp(x0)\nv1 * v1 + v1"),
    ],
)
def test_source(expr, source):
    assert expr.source == source
    x = [Value(0.5 + i) for i in range(expr.variables)]
    assert expr.evaluate_source(*x).data == expr(*x).data


def _num(v):
    """The number of a result (a Value, or a float for a constant expression)."""
    return v.data if isinstance(v, Value) else float(v)


@given(expressions(variables=3, max_depth=5))
def test_tree_prints_as_source_that_computes_it(expr):
    assert "\n" not in expr.source  # a tree is one expression
    xs = [Value(v) for v in expr.point]
    out = expr(*xs)
    again = expr.evaluate_source(*[Value(v) for v in expr.point])
    assert _num(again) == _num(out)


@given(dags(variables=3, max_nodes=10))
def test_dag_prints_as_source_that_computes_it(expr):
    out = expr(*[Value(v) for v in expr.point])
    again = expr.evaluate_source(*[Value(v) for v in expr.point])
    assert _num(again) == _num(out)


# --- values and domains


def _check_point(expr: Expression) -> None:
    on_floats = expr(*expr.point)
    on_values = expr(*[Value(v) for v in expr.point])
    assert isinstance(on_floats, float) and math.isfinite(on_floats)
    assert _num(on_values) == on_floats  # the same arithmetic on floats and on Values
    values = list(expr.point)
    for node in expr.nodes:
        args = [a.value if isinstance(a, Const) else values[a] for a in node.args]
        if node.op.valid is not None:
            for k in range(node.op.arity):
                if k in node.op.constant_args:
                    continue
                m = MARGIN * max(1.0, abs(args[k]))
                for shift in (-m, m):
                    moved = list(args)
                    moved[k] += shift
                    assert node.op.valid(*moved), (node.op.name, moved)
        values.append(node.op.call(*args))


@given(expressions(variables=2))
def test_trees_are_valid_with_a_margin_on_floats_and_values(expr):
    _check_point(expr)


@given(dags(variables=2))
def test_dags_are_valid_with_a_margin_on_floats_and_values(expr):
    _check_point(expr)


@pytest.mark.parametrize("name", sorted(n for n, p in PRIMITIVES.items() if p.arity >= 0))
@given(data=st.data())
def test_primitive_inputs_are_in_the_domain(name, data):
    prim = PRIMITIVES[name]
    args = data.draw(primitive_inputs(prim))
    assert len(args) == prim.arity
    assert prim.valid is None or prim.valid(*args)
    for k in prim.constant_args:
        assert round(args[k], 1) == args[k]


# --- coverage of the table


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_operation_is_generated(name):
    find(expressions(), lambda e: name in e.ops_used, settings=FIND)
    find(dags(), lambda e: name in e.ops_used, settings=FIND)


def test_dags_share_nodes():
    def shares(e: Expression) -> bool:
        users = [a for n in e.nodes for a in n.args if isinstance(a, int) and a >= e.variables]
        return len(users) != len(set(users))

    expr = find(dags(), shares, settings=FIND)
    assert "v" in expr.source


@pytest.fixture
def new_primitives() -> Iterator[None]:
    """Two primitives the strategies have never heard of; the table is restored afterwards."""
    before = dict(PRIMITIVES)
    primitive(Primitive(name="cube", arity=1,
        forward=lambda a: a**3,
        derivatives=lambda a, out: (3.0 * a * a,), symbol="³"))
    primitive(Primitive(
        name="scaled_log", arity=2, forward=lambda a, k: k * math.log(a), derivatives=lambda a, k, out: (k / a, 0.0),
        symbol="k·log", domain="x > 0", valid=lambda a, k: a > 0, constant_args=(1,),
    ))
    yield
    PRIMITIVES.clear()
    PRIMITIVES.update(before)


def test_a_new_primitive_enters_the_strategies(new_primitives):
    for strategy in (expressions(), dags()):
        for name in ("cube", "scaled_log"):
            expr = find(strategy, lambda e, name=name: name in e.ops_used, settings=FIND)
            assert f"{name}(" in expr.source
            check_grad(expr, expr.point)
    # its domain is respected: scaled_log's operand is kept positive
    expr = find(expressions(), lambda e: "scaled_log" in e.ops_used and e.point[0] < 0, settings=FIND)
    _check_point(expr)


def test_the_table_is_restored_after_the_test():
    assert "cube" not in PRIMITIVES and "scaled_log" not in PRIMITIVES
    assert "cube" not in {op.name for op in operations()}


# --- points are never chosen by the rule under test


def _operands(expr: Expression, name: str) -> list[float]:
    """The first operand of every node applying ``name``, at the expression's point."""
    values, found = list(expr.point), []
    for node in expr.nodes:
        args = [a.value if isinstance(a, Const) else values[a] for a in node.args]
        if node.op.name == name:
            found.append(args[0])
        values.append(node.op.call(*args))
    return found


@pytest.fixture
def table() -> Iterator[None]:
    """Restore the primitive table after the test."""
    before = dict(PRIMITIVES)
    yield
    PRIMITIVES.clear()
    PRIMITIVES.update(before)


def test_the_strategies_never_call_a_rule(table):
    def refuse(a, out):
        raise AssertionError("a strategy consulted the derivative rule")

    primitive(Primitive(name="cube_spy", arity=1, forward=lambda a: power(a, 3.0), derivatives=refuse, symbol="c"))
    for strategy in (expressions(), dags(), expressions(focus="cube_spy"), dags(focus="cube_spy")):
        find(strategy, lambda e: "cube_spy" in e.ops_used and any(x < 0 for x in _operands(e, "cube_spy")),
             settings=FIND)
    find(primitive_inputs(PRIMITIVES["cube_spy"]), lambda args: args[0] < 0, settings=FIND)


def test_a_rule_that_is_nan_below_zero_is_tested_below_zero(table):
    primitive(Primitive(name="cube_nan", arity=1, forward=lambda a: power(a, 3.0),
                        derivatives=lambda a, out: (3.0 * a * a if a >= 0 else math.nan,), symbol="c"))
    def reveals(e: Expression) -> bool:
        # cube_nan below zero, where its gradient reaches the output (not behind a closed mask)
        if not any(x < 0 for x in _operands(e, "cube_nan")):
            return False
        try:
            check_grad(e, e.point, reject_unreliable=False)
        except GradcheckError:
            return True
        except NumericallyUnreliable:
            return False
        return False

    for strategy in (expressions(), dags()):
        expr = find(strategy, reveals, settings=FIND)
        with pytest.raises(GradcheckError, match="cube_nan's rule is wrong"):
            check_grad(expr, expr.point)


# --- focus on one operation


@given(st.one_of(expressions(max_depth=3, focus="log"), dags(max_nodes=4, focus="log")))
def test_focus_puts_the_operation_in_every_expression(expr):
    assert "log" in expr.ops_used


def test_focus_makes_the_operation_common():
    def share(e: Expression, name: str) -> float:
        return sum(n.op.name == name for n in e.nodes) / len(e.nodes)

    shares = []

    @settings(database=None, max_examples=100)
    @given(dags(focus="sin", max_nodes=8))
    def collect(e):
        shares.append(share(e, "sin"))

    collect()
    assert sum(shares) / len(shares) > 0.3  # about half the operations drawn; some are shifts


def test_focus_must_name_an_operation():
    with pytest.raises(ValueError, match="no operation named 'nope'"):
        find(expressions(focus="nope"), lambda e: True, settings=FIND)
